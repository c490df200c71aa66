"""Serving every page: result cache, coalescing, the one-at-a-time model queue, CPU sizing.

:meth:`Server.stream` runs a page's ``run(zoo, pixels, settings)``: finished results in a
byte-bounded ``cachetools`` LRU; an identical request in flight is followed, not recomputed;
computations run one at a time on one worker (``gpu``, e.g. ``spaces.GPU``, wraps them).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import hashlib
import json
import logging
import math
import os
import pickle
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch
from cachetools import LRUCache

from wne import catalog
from wne.demo.imaging import LoadedImage, load_image, require_uploaded
from wne.demo.pages import compare
from wne.demo.zoo import Zoo
from wne.settings import EnvSettings

log = logging.getLogger(__name__)

Compute = Callable[[Zoo, np.ndarray, Any], Iterator[Any]]
"""A page's computation: ``run(zoo, pixels, settings)`` yielding partial results, the final last."""
MIN_CPU_SIDE = 256
"""The CPU calibration never picks a default working size below this."""


class Flight:
    """One computation's results as they come, for any number of followers."""

    def __init__(self, ticket: int) -> None:
        self.ticket = ticket
        self.values: list[Any] = []
        self.done = False
        self.error: BaseException | None = None
        self.cond = threading.Condition()

    def add(
        self, value: Any = None, *, done: bool = False, error: BaseException | None = None
    ) -> None:
        """Hands a result (or the end, or an error) to the followers."""
        with self.cond:
            if not done:
                self.values.append(value)
            self.done, self.error = done, error
            self.cond.notify_all()

    def follow(self, idle: Callable[[], None] | None = None) -> Iterator[Any]:
        """Yields every result in order, also to a late follower; raises the error."""
        seen = 0
        while True:
            with self.cond:
                if len(self.values) == seen and not self.done:
                    self.cond.wait(0.5)
                new, done, error = self.values[seen:], self.done, self.error
            if error is not None:
                raise error
            seen += len(new)
            yield from new
            if done and seen == len(self.values):
                return
            if not new and idle is not None:
                idle()


class Server:
    """The models behind every page, shared by all requests.

    Args:
        zoo: The loaded models.
        gpu: Wraps the device work (``gpu(fn, duration=callable)``); identity by default.
        cache_mb: The result cache's bound in MiB (default from the environment; 0 keeps none).
        upload_roots: The folders a request's image may come from (None: anywhere).
    """

    def __init__(
        self,
        zoo: Zoo,
        gpu: Callable[..., Any] | None = None,
        cache_mb: float | None = None,
        upload_roots: list[str] | None = None,
    ) -> None:
        self.zoo = zoo
        env = EnvSettings.from_env()
        mb = env.result_cache_mb if cache_mb is None else cache_mb
        self.cache: LRUCache[str, Any] = LRUCache(max(1, int(mb * 2**20)), getsizeof=_size)
        self.entries = env.result_cache_entries  # a bound in entries too
        self.keep = mb > 0 and self.entries > 0
        self.stats: Counter[str] = Counter()
        self.upload_roots = upload_roots
        self.defaults: tuple[int, str, str] = (256, "best", "")
        """The page's default working size and checkpoint choice, and a note on them."""
        self._flights: dict[str, Flight] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wne-models")
        self._tickets = self._started = 0
        hook = gpu or (lambda fn, duration=None: fn)
        self._device = hook(self._device_work, duration=self.gpu_seconds)
        self.in_process = self._device == self._device_work
        h = hashlib.sha256(str(zoo.device).encode())
        for key, model in sorted(zoo.models.items()):  # the weights' sha256, else their bytes
            h.update(key.encode() + str(getattr(model, "wne_config", None)).encode())
            for t in model.state_dict().values() if not getattr(model, "wne_config", None) else ():
                h.update(
                    t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                )
        self._models = h.hexdigest()

    def _device_work(self, fn: Compute, pixels: np.ndarray, settings: Any) -> Iterator[Any]:
        """The only work on the device: the page's computation on this server's models."""
        yield from fn(self.zoo, pixels, settings)

    def gpu_seconds(self, fn: Compute, pixels: np.ndarray, settings: Any) -> int:
        """A generous device-time budget for one computation (ZeroGPU's ``duration``)."""
        steps = getattr(settings, "max_steps", 16)
        return int(min(120, 15 + pixels.size * steps / 2e6))

    def open(self, image: Any, max_side: int) -> LoadedImage:
        """Reads a request's image safely at working size (:func:`wne.demo.imaging.load_image`)."""
        if self.upload_roots is not None:
            require_uploaded(image, self.upload_roots)
        return load_image(image, max_side=max_side)

    def key(self, fn: Compute, pixels: np.ndarray, settings: Any) -> str:
        """The cache key: the computation, the pixels, the settings and the loaded models."""
        h = hashlib.sha256(
            f"{fn.__module__}.{fn.__qualname__}|{pixels.shape}|{pixels.dtype}|".encode()
        )
        h.update(np.ascontiguousarray(pixels).tobytes())
        h.update(json.dumps(asdict(settings), sort_keys=True, default=str).encode())
        h.update(self._models.encode())
        return h.hexdigest()

    def stream(
        self,
        fn: Compute,
        pixels: np.ndarray,
        settings: Any,
        idle: Callable[[int], None] | None = None,
    ) -> Iterator[Any]:
        """A computation's results (the image at working size, dataclass ``settings``): from
        the cache, one in flight, or run now; ``idle`` gets the queue length while waiting."""
        key = self.key(fn, pixels, settings)
        with self._lock:
            hit = self.cache.get(key)
            flight = None if hit is not None else self._flights.get(key)
            source = "cache" if hit is not None else "joined" if flight else "computed"
            self.stats[source] += 1
            if source == "computed":
                self._tickets += 1
                flight = self._flights[key] = Flight(self._tickets)
                self._pool.submit(self._task, key, flight, fn, pixels, settings)
        log.info(
            "result cache: %s %s %s (%s)",
            source,
            fn.__module__.rsplit(".", 1)[-1],
            key[:12],
            self.line(),
        )
        if hit is not None:
            yield hit
            return
        assert flight is not None
        wait = (lambda: idle(max(0, flight.ticket - self._started))) if idle else None
        yield from flight.follow(wait)

    def _task(
        self, key: str, flight: Flight, fn: Compute, pixels: np.ndarray, settings: Any
    ) -> None:
        with self._lock:
            self._started += 1
        start, last = time.perf_counter(), None
        try:
            for last in self._device(fn, pixels, settings):
                flight.add(last)
        except BaseException as exc:
            with self._lock:
                self._flights.pop(key, None)
            flight.add(done=True, error=exc)
            return
        log.info("result cache: %s computed in %.3f s", key[:12], time.perf_counter() - start)
        with self._lock:  # kept before the flight ends: no window for a recompute
            if self.keep and last is not None:
                with contextlib.suppress(ValueError):  # larger than the cache: served, not kept
                    self.cache[key] = last
                while len(self.cache) > self.entries:
                    self.cache.popitem()  # the least recently used
            self._flights.pop(key, None)
        flight.add(done=True)
        if self.keep:
            trim_heap()  # a result may have left the cache

    def line(self) -> str:
        """The counters in one line: hits, joins, computations, bytes kept."""
        s = self.stats
        return (
            f"{s['cache']} hits, {s['joined']} joined, {s['computed']} computed; "
            f"{len(self.cache)} entries, {self.cache.currsize / 2**20:.1f}/"
            f"{self.cache.maxsize / 2**20:.0f} MiB"
        )

    def warm(self, requests: list[tuple[Any, compare.Scene]]) -> int:
        """Computes comparisons into the cache one after the other (e.g. the examples, as
        their buttons send them), so that a request waits for at most one of them."""
        done = 0
        for image, scene in requests:
            try:
                for _ in self.stream(compare.run, self.open(image, scene.max_side).pixels, scene):
                    pass
                done += 1
            except Exception as exc:  # warming is best effort
                log.warning("could not warm the cache with %s: %s", image, exc)
        log.info("result cache warmed with %d example(s): %s", done, self.line())
        return done


def _size(value: Any) -> int:
    """Bytes a result holds (its pickled size)."""
    return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def checkpoint_keys(zoo: Zoo, backbones: Iterable[str], sigma_train: int) -> list[str | None]:
    """The keys every variant of ``backbones`` runs under ``zoo``'s choice."""
    slots = [(b, v) for b in backbones for v in catalog.FAMILIES[b].variants]
    return [zoo.checkpoint(b, v, sigma_train) for b, v in slots]


def cpu_defaults(zoo: Zoo, scene: compare.Scene, target_seconds: float) -> tuple[int, str, str]:
    """``(side, checkpoint choice, note)`` for a comparison on a CPU.

    Times two probes and fits ``overhead + cost · pixels``. The checkpoints are the catalog's
    pick for the device and the latency (:func:`wne.catalog.best_size`, given the comparison's
    time at :data:`MIN_CPU_SIDE` as the seconds of its larger sizes): the best available, else
    the CPU-sized ones. The side is the largest multiple of 16 in [:data:`MIN_CPU_SIDE`, 512]
    within ``target_seconds``.
    """

    def fit(choice: str) -> tuple[float, float]:
        def probe(side: int) -> float:
            yy, xx = np.mgrid[0:side, 0:side] / side
            img = np.stack([0.5 + 0.3 * np.sin(7 * xx + k) * np.cos(5 * yy) for k in range(3)], -1)
            start = time.perf_counter()
            for _ in compare.run(zoo, img.astype(np.float32), replace(scene, checkpoint=choice)):
                pass
            return time.perf_counter() - start

        probe(64)
        small, big = probe(64), probe(128)
        cost = max(big - small, 1e-6) / (128**2 - 64**2)
        return max(small - cost * 64**2, 0.0), cost

    choice, note, st = scene.checkpoint, "", scene.sigma_train
    overhead, cost = fit(choice)
    slow = overhead + cost * MIN_CPU_SIDE**2
    sized = {b: {catalog.get(k).size for k in checkpoint_keys(zoo.select(choice), [b], st) if k}
             for b in scene.backbones}  # fmt: skip
    seconds = dict.fromkeys(set().union(*sized.values()) - {"cpu"}, slow)
    picks = {b: catalog.best_size(b, st, zoo.psnrs, device=zoo.device, seconds=seconds,
                                  budget=target_seconds) for b in scene.backbones}  # fmt: skip
    if any(picks[b] == "cpu" and sized[b] - {"cpu"} for b in scene.backbones):
        choice, (overhead, cost) = "cpu", fit("cpu")
        note = (
            f"On this CPU the best available checkpoints would take {slow:.1f} s for the default "
            f"comparison at {MIN_CPU_SIDE} px (target {target_seconds:g} s): the default is the "
            "CPU-sized checkpoints; choose 'best available' under 'checkpoints' for the others."
        )
    side = int(math.sqrt(max(target_seconds - overhead, 0.0) / cost)) // 16 * 16
    side = max(MIN_CPU_SIDE, min(512, side))
    log.info("CPU calibration: working size %d px, %s checkpoints", side, choice)
    return side, choice, note


@functools.cache
def _glibc() -> Any:
    """glibc's ``mallopt`` and ``malloc_trim``, typed (None off Linux or under another libc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc if sys.platform.startswith("linux") else None


def limit_malloc_arenas(n: int) -> bool:
    """Caps glibc's malloc arenas (RSS climbs under load otherwise); False under
    ``$MALLOC_ARENA_MAX`` or off glibc."""
    if os.environ.get("MALLOC_ARENA_MAX") or (libc := _glibc()) is None:
        return False
    return bool(libc.mallopt(-8, n))  # -8: M_ARENA_MAX in glibc's malloc.h


def trim_heap() -> bool:
    """Hands the heap's free pages back to the system (glibc's ``malloc_trim``): results the
    cache lets go leave holes that RSS keeps otherwise. False off glibc."""
    libc = _glibc()
    return libc is not None and libc.malloc_trim(0) in (0, 1)
