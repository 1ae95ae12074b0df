"""The market-data provider interface (the factory is `bot.marketdata.factory`).

Every provider returns the engine's typed inputs (core/models.py): a `MarketSnapshot` whose
values each carry their own time and source, the close-history frame, and the events. Problems
never become zeros: a missing or stale value is None / kept with its own time, and named in
`snapshot.flags` (`MISSING_<FIELD>`, `STALE_<FIELD>`, METHOD.md §9).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date, datetime

import pandas as pd

from bot.marketdata.errors import MarketDataError
from core.models import Event, MarketSnapshot


class MarketDataProvider(ABC):
    """Async source of snapshots, close history and events."""

    name: str = "abstract"
    #: the latest per-source failures (kept for logs and `alvh market`); reset each snapshot
    errors: list[MarketDataError]

    @abstractmethod
    async def snapshot(self, asof: datetime) -> MarketSnapshot:
        """The market at `asof` (tz-aware): live values for a live provider, the fixed sample
        for the offline one (its `asof` is the sample's close; see OfflineProvider)."""

    @abstractmethod
    async def history(self, end: date | None = None) -> pd.DataFrame:
        """Daily closes up to `end` (inclusive), the frame of core/models.py. `frame.attrs`
        carries `sources` (column → where it came from) and `flags`."""

    @abstractmethod
    async def events(self) -> list[Event]:
        """Scheduled events (bundled plus the operator's file), sorted by time."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release network resources."""

    async def __aenter__(self) -> MarketDataProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
