"""Which provider: `make_provider(kind)` and `provider_from_env()` (MARKET_DATA_PROVIDER, ...).

Apart from the interface (`bot.marketdata.provider`) so that the providers import the interface
and this module imports the providers, never the other way round.
"""

from __future__ import annotations

import os
from typing import Any

from bot.marketdata.provider import MarketDataProvider
from bot.marketdata.settings import MarketDataSettings


def make_provider(kind: str = "offline", **settings: Any) -> MarketDataProvider:
    """`offline`: the bundled sample (no network). `live`: Cboe, then the yfinance fallback.

    Settings are the fields of `MarketDataSettings` plus, for tests, injectables such as
    `transport`, `sleep`, `clock`, `fallback` (see each provider)."""
    if kind == "offline":
        from bot.marketdata.offline import OfflineProvider

        return OfflineProvider(**settings)
    if kind == "live":
        from bot.marketdata.cboe import CboeProvider  # httpx and the live parsers: on demand

        return CboeProvider(**settings)
    raise ValueError(f"market data provider must be 'offline' or 'live' (got {kind!r})")


def provider_from_env(env: dict[str, str] | None = None, *,
                      offline: bool = False) -> MarketDataProvider:
    """The provider the settings (MARKET_DATA_PROVIDER, …) ask for; `env` overrides the process
    environment key by key; `offline` forces the sample (the operator's extra events apply)."""
    s = MarketDataSettings.from_env({**os.environ, **(env or {})})
    common = {"extra_events_file": s.extra_events_file, "max_chain_dte": s.max_chain_dte}
    if offline or s.provider == "offline":
        return make_provider("offline", **common)
    return make_provider("live", **common, http_timeout_s=s.http_timeout_s,
                         cache_ttl_s=s.cache_ttl_s, retries=s.retries,
                         backoff_base_s=s.backoff_base_s)
