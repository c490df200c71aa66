"""The demo's result cache: finished results kept in a byte-bounded ``cachetools`` LRU, and
identical requests in flight coalesced (a follower gets the same results as they come).
:class:`Counts` holds its outcomes per computation as data (the load test reads them).
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from cachetools import LRUCache

from wne.demo.process import trim_heap

log = logging.getLogger(__name__)


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


class ResultCache:
    """Finished results by key, bounded in bytes (their pickled size) and in entries, and the
    computations in flight.

    Args:
        mb: The bound in MiB (0 keeps nothing).
        entries: The bound in entries (0 keeps nothing).
    """

    def __init__(self, mb: float, entries: int) -> None:
        self.lru: LRUCache[str, Any] = LRUCache(max(1, int(mb * 2**20)), getsizeof=_size)
        self.entries = entries
        self.keep = mb > 0 and entries > 0
        self.counts: Counter[tuple[str, str]] = Counter()
        """Outcomes per (computation, outcome): ``cache``, ``joined`` or ``computed``."""
        self.flights: dict[str, Flight] = {}
        self.lock = threading.Lock()
        self.tickets = 0
        """Computations begun (a flight's ticket is its number)."""

    def lookup(self, key: str, kind: str, start: Callable[[Flight], None]) -> tuple[str, Any]:
        """``("cache", result)``, ``("joined", flight)``, or ``("computed", flight)`` after
        ``start(flight)`` began a new computation; counted under ``kind``."""
        with self.lock:
            hit = self.lru.get(key)
            flight = None if hit is not None else self.flights.get(key)
            source = "cache" if hit is not None else "joined" if flight else "computed"
            self.counts[kind, source] += 1
            if source == "computed":
                self.tickets += 1
                flight = self.flights[key] = Flight(self.tickets)
                start(flight)
        return source, hit if hit is not None else flight

    def finish(self, key: str, last: Any, error: BaseException | None = None) -> None:
        """Ends ``key``'s flight, keeping its last result (kept before the flight ends: no
        window for a recompute)."""
        flight = self.flights[key]
        try:
            with self.lock:
                if error is None and self.keep and last is not None:
                    self._keep(key, last)
        finally:  # whatever happens here, the followers are released
            with self.lock:
                self.flights.pop(key, None)
            flight.add(done=True, error=error)
        if error is None and self.keep:
            trim_heap()  # a result may have left the cache

    def _keep(self, key: str, last: Any) -> None:
        try:
            self.lru[key] = last
        except ValueError:  # larger than the cache: served, not kept
            return
        except Exception as exc:  # a result that cannot be sized (pickled) is served, not kept
            log.warning("result %s not kept: %s", key[:12], exc)
            return
        while len(self.lru) > self.entries:
            self.lru.popitem()  # the least recently used

    def counters(self) -> dict[str, dict[str, int]]:
        """The outcomes per computation (``{"compare": {"cache": 1, "joined": 0, ...}}``)."""
        out: dict[str, dict[str, int]] = {}
        for (kind, source), n in sorted(self.counts.items()):
            out.setdefault(kind, {"cache": 0, "joined": 0, "computed": 0})[source] = n
        return out

    def totals(self) -> Counter[str]:
        """The outcomes over every computation (``cache``, ``joined``, ``computed``)."""
        return Counter(source for (_, source) in self.counts.elements())

    def line(self) -> str:
        """The counters in one line: hits, joins, computations, bytes kept."""
        total = self.totals()
        return (
            f"{total['cache']} hits, {total['joined']} joined, {total['computed']} computed; "
            f"{len(self.lru)} entries, {self.lru.currsize / 2**20:.1f}/"
            f"{self.lru.maxsize / 2**20:.0f} MiB"
        )


def _size(value: Any) -> int:
    """Bytes a result holds (its pickled size)."""
    return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
