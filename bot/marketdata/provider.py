"""The market-data provider interface and its factory.

Every provider returns the engine's typed inputs (core/models.py): a `MarketSnapshot` whose
values each carry their own time and source, the close-history frame, and the events. Problems
never become zeros: a missing or stale value is None / kept with its own time, and named in
`snapshot.flags` (`MISSING_<FIELD>`, `STALE_<FIELD>`, METHOD.md §9).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date, datetime
from typing import Any

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


def make_provider(kind: str = "offline", **settings: Any) -> MarketDataProvider:
    """`offline`: the bundled sample (no network). `live`: Cboe, then the yfinance fallback.

    Settings are the fields of `MarketDataSettings` plus, for tests, injectables such as
    `transport`, `sleep`, `clock`, `fallback` (see each provider)."""
    if kind == "offline":
        from bot.marketdata.offline import OfflineProvider

        return OfflineProvider(**settings)
    if kind == "live":
        from bot.marketdata.cboe import CboeProvider

        return CboeProvider(**settings)
    raise ValueError(f"market data provider must be 'offline' or 'live' (got {kind!r})")


def provider_from_env(env: dict[str, str] | None = None, *,
                      offline: bool = False) -> MarketDataProvider:
    """The provider the settings (MARKET_DATA_PROVIDER, …) ask for; `env` overrides the process
    environment key by key; `offline` forces the sample (the operator's extra events apply)."""
    import os

    from bot.marketdata.settings import MarketDataSettings

    s = MarketDataSettings.from_env({**os.environ, **(env or {})})
    common = {"extra_events_file": s.extra_events_file, "max_chain_dte": s.max_chain_dte}
    if offline or s.provider == "offline":
        return make_provider("offline", **common)
    return make_provider("live", **common, http_timeout_s=s.http_timeout_s,
                         cache_ttl_s=s.cache_ttl_s, retries=s.retries,
                         backoff_base_s=s.backoff_base_s)
