"""Serving every page: the one-at-a-time model queue in front of the result cache.

:meth:`Server.stream` runs a page's ``run(zoo, pixels, settings)`` through
:class:`wne.demo.cache.ResultCache` (kept results, coalesced requests); computations run one
at a time on one worker (``gpu``, e.g. ``spaces.GPU``, wraps them: the device work only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from wne.demo.cache import Flight, ResultCache
from wne.demo.calibration import Defaults
from wne.demo.imaging import LoadedImage, load_image, require_uploaded
from wne.demo.pages import compare
from wne.demo.zoo import Zoo
from wne.settings import EnvSettings

log = logging.getLogger(__name__)

Compute = Callable[[Zoo, np.ndarray, Any], Iterator[Any]]
"""A page's computation: ``run(zoo, pixels, settings)`` yielding partial results, the final last."""


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
        self.cache = ResultCache(mb, env.result_cache_entries)
        self.upload_roots = upload_roots
        self.defaults = Defaults()
        """The page's default working size and checkpoints (set by ``calibrate``)."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wne-models")
        self._started = 0
        self.warmed = False
        """Whether :meth:`warm` has finished."""
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
        key, kind = self.key(fn, pixels, settings), fn.__module__.rsplit(".", 1)[-1]

        def start(flight: Flight) -> None:
            self._pool.submit(self._task, key, flight, fn, pixels, settings)

        source, found = self.cache.lookup(key, kind, start)
        log.info("result cache: %s %s %s (%s)", source, kind, key[:12], self.cache.line())
        if source == "cache":
            yield found
            return
        wait = (lambda: idle(max(0, found.ticket - self._started))) if idle else None
        yield from found.follow(wait)

    def _task(
        self, key: str, flight: Flight, fn: Compute, pixels: np.ndarray, settings: Any
    ) -> None:
        self._started += 1  # only this worker thread writes it
        start, last = time.perf_counter(), None
        try:
            for last in self._device(fn, pixels, settings):
                flight.add(last)
        except BaseException as exc:
            self.cache.finish(key, None, exc)
            return
        log.info("result cache: %s computed in %.3f s", key[:12], time.perf_counter() - start)
        self.cache.finish(key, last)

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
        log.info("result cache warmed with %d example(s): %s", done, self.cache.line())
        self.warmed = True
        return done

    def report(self) -> dict[str, Any]:
        """The result cache's outcomes per computation, its entries and bytes, and whether
        the start-up warming is done: data for the load test (``/cache_stats``)."""
        lru = self.cache.lru
        return {
            "computations": self.cache.counters(),
            "entries": len(lru),
            "bytes": lru.currsize,
            "warmed": self.warmed,
        }
