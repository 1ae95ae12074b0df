"""Small bounded caches for what depends only on one input object of an evaluation (the events
list, a snapshot's option chain): /check and the report round hand the engine the same objects
until the market data are refreshed, and deriving arrays from them again was a few ms a call.

Keyed by the object's identity (the cache holds the object, so its id cannot be reused by
another while cached) and its length, plus extra keys compared by equality (e.g. `Params`).
The engine never changes these inputs in place; a refreshed input is a new object. Cached
numpy arrays are made read-only (`frozen`), so a caller that writes to one fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import Any


class IdentityCache:
    """The last `size` results of `compute(obj, *extra)`, per (obj identity, len(obj), extra)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._entries: list[tuple[Any, int, tuple, Any]] = []

    def get(self, obj: Sized, extra: tuple, compute: Callable[[], Any]) -> Any:
        n = len(obj)
        for held, held_n, held_extra, value in self._entries:
            if held is obj and held_n == n and held_extra == extra:
                return value
        value = compute()
        self._entries.insert(0, (obj, n, extra, value))
        del self._entries[self.size:]
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def frozen(*arrays):
    """The arrays, read-only (they are shared by every caller of a cache)."""
    for a in arrays:
        a.setflags(write=False)
    return arrays
