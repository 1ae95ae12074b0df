"""An async TTL cache: one fetch per key per round, shared by every concurrent caller.

Concurrent callers of the same key await one in-flight fetch (no thundering herd at the
scheduled report). A failure is remembered for `failure_ttl_s` (default: the TTL) and re-raised
without a new request, so a source that refuses us (429) is not hammered by every user; the
last good value stays readable through `last_good` so the provider can keep it, marked with its
age. The clock is injectable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    value: Any
    fetched_at: float  # clock seconds


class TTLCache:
    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic,
                 failure_ttl_s: float | None = None):
        self.ttl_s = ttl_s
        self.failure_ttl_s = ttl_s if failure_ttl_s is None else failure_ttl_s
        self.clock = clock
        self._entries: dict[Hashable, Entry] = {}
        self._failures: dict[Hashable, tuple[BaseException, float]] = {}
        self._inflight: dict[Hashable, asyncio.Future] = {}
        self.fetches = 0  # how many fetches actually ran (for tests and logs)

    def fresh(self, key: Hashable, ttl_s: float | None = None) -> Entry | None:
        e = self._entries.get(key)
        ttl = self.ttl_s if ttl_s is None else ttl_s
        if e is not None and self.clock() - e.fetched_at < ttl:
            return e
        return None

    def last_good(self, key: Hashable) -> Entry | None:
        """The last successfully fetched value, however old."""
        return self._entries.get(key)

    def age_s(self, key: Hashable) -> float | None:
        e = self._entries.get(key)
        return None if e is None else self.clock() - e.fetched_at

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[Any]],
                  ttl_s: float | None = None) -> Any:
        """The cached value if fresh, else the result of one shared `fetch()`."""
        e = self.fresh(key, ttl_s)
        if e is not None:
            return e.value
        failed = self._failures.get(key)
        if failed is not None and self.clock() - failed[1] < self.failure_ttl_s:
            raise failed[0]
        fut = self._inflight.get(key)
        if fut is None:
            fut = asyncio.ensure_future(self._run(key, fetch))
            self._inflight[key] = fut
        # shield: one caller being cancelled must not cancel the fetch the others await
        return await asyncio.shield(fut)

    async def _run(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> Any:
        self.fetches += 1
        try:
            value = await fetch()
        except Exception as exc:
            self._failures[key] = (exc, self.clock())
            raise
        else:
            self._entries[key] = Entry(value, self.clock())
            self._failures.pop(key, None)
            return value
        finally:
            self._inflight.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
        self._failures.clear()
