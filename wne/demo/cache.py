"""Identical requests computed once: a bounded result cache, coalescing, one model queue.

A class that opens the same example sends the same request thirty times. The demo
computes it once:

- :class:`ResultCache` keeps finished results, least recently used first out, bounded
  in entries **and** bytes (:func:`nbytes` of the arrays a result holds). A key
  (:func:`request_key`) is the hash of the computation's kind, the image's pixels at
  working size (:func:`pixel_digest`), the validated settings and the sha256 of every
  checkpoint the computation uses, so different pixels, settings or weights never
  share an entry. A request whose computation is already running joins it
  (*coalescing*): it follows the same :class:`Flight` instead of computing again.
- :class:`Flight` is one computation's results as they come: partial values (for
  streaming: the noisy input first, then one model after another), then the final
  value or the error. Any number of requests follow it; a request that goes away
  does not stop it, so its result still lands in the cache.
- :class:`ModelQueue` runs the computations one at a time on one worker thread,
  first come first served (background work, e.g. warming the cache with the
  examples, only when nothing else waits), and tells a waiting request how many
  computations are ahead of it.

Hits, misses and joins are counted (:meth:`ResultCache.stats`) and logged.
Thread-safe throughout; nothing here imports Gradio.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import heapq
import itertools
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "CacheStats",
    "Flight",
    "ModelQueue",
    "ResultCache",
    "cache_from_env",
    "nbytes",
    "pixel_digest",
    "request_key",
]

log = logging.getLogger(__name__)

Publish = Callable[[Any], None]
"""``publish(partial)``: hands a partial result to the requests following a computation."""
Job = Callable[[Publish], Any]
"""``job(publish) -> final``: a computation that may publish partial results."""


def nbytes(value: Any) -> int:
    """Approximate memory held by a result: its arrays, tensors and strings.

    Walks dataclasses, mappings and sequences; each array or tensor is counted
    once even when several fields share it; every other object counts 64 bytes.

    Args:
        value: A result (e.g. a :class:`~wne.demo.compare.Comparison`).

    Returns:
        Bytes.
    """
    seen: set[int] = set()
    total = 0
    stack = [value]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            total += obj.nbytes
        elif isinstance(obj, torch.Tensor):
            total += obj.element_size() * obj.nelement()
        elif isinstance(obj, str | bytes):
            total += len(obj)
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            total += 64
            stack += [getattr(obj, f.name) for f in dataclasses.fields(obj)]
        elif isinstance(obj, dict):
            total += 64
            stack += [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set | frozenset):
            total += 64
            stack += list(obj)
        else:
            total += 64
    return total


def pixel_digest(pixels: np.ndarray) -> str:
    """Hex sha256 of an image's shape, dtype and pixel bytes."""
    arr = np.ascontiguousarray(pixels)
    h = hashlib.sha256(f"{arr.shape}|{arr.dtype.str}|".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def request_key(
    kind: str,
    pixels: np.ndarray,
    settings: dict[str, Any],
    models: Sequence[tuple[str, str]],
    **extra: Any,
) -> str:
    """The cache key of one computation.

    Args:
        kind: The computation (``"compare"``, ``"equivariance"``, ...).
        pixels: The image at working size, as the models get it.
        settings: The validated settings (JSON-ready).
        models: ``(checkpoint key, sha256 of its weights)`` of every model the
            computation uses (``"none"`` for a missing one).
        **extra: Anything else the result depends on (e.g. the backbone, the device).

    Returns:
        A hex sha256 over all of it.
    """
    record = {
        "kind": kind,
        "pixels": pixel_digest(pixels),
        "settings": settings,
        "models": [list(m) for m in models],
        "extra": extra,
    }
    text = json.dumps(record, sort_keys=True, default=str, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


class Flight:
    """One computation's results as they come, for any number of followers.

    The computation calls :meth:`publish` for each partial result, then
    :meth:`finish` with the final one, or :meth:`fail`; :meth:`follow` yields
    every one of them in order, also to a follower that comes late (a flight
    holds a handful of results that share their arrays).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._values: list[Any] = []
        self._done = False
        self._error: BaseException | None = None
        self.started = threading.Event()
        self.ticket: Any = None  # what the scheduler returned (e.g. a ModelQueue ticket)

    def publish(self, value: Any) -> None:
        """Hands a partial result to the followers."""
        with self._cond:
            self._values.append(value)
            self._cond.notify_all()

    def finish(self, value: Any) -> None:
        """Hands the final result to the followers and ends the flight."""
        with self._cond:
            self._values.append(value)
            self._done = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """Ends the flight with an error, raised in every follower."""
        with self._cond:
            self._error = error
            self._done = True
            self._cond.notify_all()

    @property
    def done(self) -> bool:
        """Whether the final result (or an error) is in."""
        with self._cond:
            return self._done

    def follow(self, idle: Callable[[], None] | None = None, poll: float = 0.5) -> Iterator[Any]:
        """Yields the partial results as they come, the final one last.

        Args:
            idle: Called every ``poll`` seconds while nothing new arrives (e.g. to
                tell the user where the request stands).
            poll: Seconds between ``idle`` calls.

        Raises:
            BaseException: The computation's error.
        """
        seen = 0
        while True:
            with self._cond:
                if len(self._values) == seen and not self._done:
                    self._cond.wait(poll)
                new, done, error = self._values[seen:], self._done, self._error
            if error is not None:
                raise error
            seen += len(new)
            yield from new
            if done and not new:
                return
            if not new and idle is not None:
                idle()


@dataclass(frozen=True)
class CacheStats:
    """Counters of a :class:`ResultCache`.

    Attributes:
        hits: Requests served from a finished entry.
        joins: Requests that followed an identical computation in flight.
        misses: Requests that started a computation.
        evictions: Entries dropped for the bounds.
        entries: Entries held now.
        bytes: Their approximate size (:func:`nbytes`).
        max_entries: The entry bound.
        max_bytes: The byte bound.
    """

    hits: int
    joins: int
    misses: int
    evictions: int
    entries: int
    bytes: int
    max_entries: int
    max_bytes: int

    def line(self) -> str:
        """One line for a log or a page: hits, joins, computations, entries and bytes."""
        return (
            f"{self.hits} hits, {self.joins} joined, {self.misses} computed; "
            f"{self.entries}/{self.max_entries} entries, {self.bytes / 2**20:.1f}/"
            f"{self.max_bytes / 2**20:.0f} MiB"
        )


class ResultCache:
    """A thread-safe LRU of finished results that also coalesces requests in flight.

    Args:
        max_entries: Most results kept (0: keep none, still coalesce).
        max_bytes: Most bytes kept (:func:`nbytes`); a larger result is not kept.
        sizeof: How a result's size is measured.

    Raises:
        ValueError: For a negative bound.
    """

    def __init__(
        self,
        max_entries: int = 64,
        max_bytes: int = 256 * 2**20,
        sizeof: Callable[[Any], int] = nbytes,
    ) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise ValueError(f"cache bounds must be >= 0, got {max_entries}, {max_bytes}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._sizeof = sizeof
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._flights: dict[str, Flight] = {}
        self._bytes = 0
        self._hits = self._joins = self._misses = self._evictions = 0

    def stats(self) -> CacheStats:
        """The counters now."""
        with self._lock:
            return CacheStats(
                self._hits,
                self._joins,
                self._misses,
                self._evictions,
                len(self._entries),
                self._bytes,
                self.max_entries,
                self.max_bytes,
            )

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        """Drops every finished entry (flights in progress go on)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _store(self, key: str, value: Any) -> None:
        """Keeps a finished result (lock held), evicting the least recently used."""
        size = self._sizeof(value)
        if self.max_entries == 0 or size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        self._entries[key] = (value, size)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped
            self._evictions += 1

    def stream(
        self,
        key: str,
        job: Job,
        submit: Callable[[Callable[[], None]], Any] | None = None,
        *,
        label: str = "request",
        idle: Callable[[Flight, str], None] | None = None,
    ) -> Iterator[tuple[Any, str]]:
        """The results of a computation: from the cache, an identical one in flight, or run now.

        Args:
            key: The request's key (:func:`request_key`).
            job: ``job(publish) -> final`` computes the result (publishing partials).
            submit: Schedules a zero-argument callable (e.g. :meth:`ModelQueue.submit`;
                its return value becomes the flight's ``ticket``); default: run it in
                this thread before following.
            label: What to call the request in the log.
            idle: ``idle(flight, source)`` while waiting for something new.

        Yields:
            ``(result, source)``: source ``"cache"`` (one final value), ``"joined"``
            (another request's computation) or ``"computed"`` (this one's); partial
            results first, the final one last.

        Raises:
            BaseException: The computation's error (nothing is cached then).
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._hits += 1
            flight = self._flights.get(key) if entry is None else None
            lead = entry is None and flight is None
            if lead:
                flight = self._flights[key] = Flight()
                self._misses += 1
            elif flight is not None:
                self._joins += 1
        source = "cache" if entry is not None else "computed" if lead else "joined"
        log.info("result cache: %s %s %s (%s)", source, label, key[:12], self.stats().line())
        if entry is not None:
            yield entry[0], source
            return
        assert flight is not None
        if lead:
            task = self._task(key, flight, job)
            try:
                flight.ticket = (submit or (lambda fn: fn()))(task)
            except BaseException as exc:  # e.g. the queue is shut down
                self._abandon(key, flight, exc)
                raise
        wait = (lambda: idle(flight, source)) if idle is not None else None
        for value in flight.follow(wait):
            yield value, source

    def _abandon(self, key: str, flight: Flight, error: BaseException) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.fail(error)

    def _task(self, key: str, flight: Flight, job: Job) -> Callable[[], None]:
        """The callable that runs ``job`` for ``flight`` and files its result."""

        def task() -> None:
            flight.started.set()
            start = time.perf_counter()
            try:
                final = job(flight.publish)
            except BaseException as exc:
                self._abandon(key, flight, exc)
                return
            log.info("result cache: %s computed in %.3f s", key[:12], time.perf_counter() - start)
            with self._lock:  # filed before the flight ends: no window for a recompute
                try:
                    self._store(key, final)
                except Exception:  # an unmeasurable result is served, not kept
                    log.exception("result cache: could not keep %s", key[:12])
                if self._flights.get(key) is flight:
                    del self._flights[key]
            flight.finish(final)

        return task


def cache_from_env() -> ResultCache:
    """A :class:`ResultCache` bounded by ``$WNE_RESULT_CACHE_ENTRIES`` (default 64) and
    ``$WNE_RESULT_CACHE_MB`` (default 256); 0 keeps nothing (identical requests in
    flight are still computed once). A bad value is logged and the default used."""

    def bound(name: str, default: int) -> int:
        try:
            return max(0, int(os.environ.get(name, default)))
        except ValueError:
            log.warning("ignoring %s=%r (not an integer)", name, os.environ.get(name))
            return default

    entries = bound("WNE_RESULT_CACHE_ENTRIES", 64)
    return ResultCache(entries, bound("WNE_RESULT_CACHE_MB", 256) * 2**20)


BACKGROUND = 1
"""Priority of background work in a :class:`ModelQueue` (requests have 0)."""


class ModelQueue:
    """Runs computations one at a time on one worker thread, requests first come first served.

    A job submitted with a higher ``priority`` number (:data:`BACKGROUND`) runs only
    when no request waits. Each job runs in a copy of the submitter's
    :mod:`contextvars` context (Gradio's request context, e.g. for ``gr.Progress``
    or ZeroGPU).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._tickets = itertools.count()
        self._running: int | None = None
        self._thread: threading.Thread | None = None

    def submit(self, fn: Callable[[], None], priority: int = 0) -> int:
        """Queues ``fn``; returns its ticket (for :meth:`ahead`).

        ``fn`` handles its own errors (an exception is logged and the queue goes on).
        """
        ctx = contextvars.copy_context()
        with self._cond:
            ticket = next(self._tickets)
            heapq.heappush(self._heap, (priority, ticket, lambda: ctx.run(fn)))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="wne-model-queue", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return ticket

    def ahead(self, ticket: int) -> int:
        """How many computations run or wait before the job of ``ticket`` (0: it runs)."""
        with self._cond:
            if ticket == self._running:
                return 0
            queued = [(p, t) for p, t, _ in self._heap]
            mine = next((pt for pt in queued if pt[1] == ticket), None)
            if mine is None:
                return 0
            return sum(pt < mine for pt in queued) + (self._running is not None)

    def pending(self) -> int:
        """Computations running or waiting."""
        with self._cond:
            return len(self._heap) + (self._running is not None)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                _, ticket, fn = heapq.heappop(self._heap)
                self._running = ticket
            try:
                fn()
            except BaseException:  # a job's own errors are its business
                log.exception("model queue: a job failed")
            finally:
                with self._cond:
                    self._running = None
