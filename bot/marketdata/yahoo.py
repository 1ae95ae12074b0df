"""yfinance fallback for quotes and daily closes (optional extra: `pip install alvh-bot[yahoo]`).

Imported lazily: without yfinance every call raises `FallbackUnavailable`, which the live
provider turns into the `FALLBACK_UNAVAILABLE` flag. Not used for the chain (its IVs are
unreliable, MARKETDATA.md).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from bot.marketdata.errors import FallbackUnavailable, MarketDataError
from core.models import Quote

TICKERS = {"spx": "^GSPC", "vix": "^VIX", "vix9d": "^VIX9D", "vix3m": "^VIX3M", "vvix": "^VVIX"}
INTRADAY_PERIOD, INTRADAY_INTERVAL = "5d", "1m"  # the last minute bar dates the quote
HISTORY_PERIOD = "1y"


class QuoteFallback(Protocol):
    """What the live provider needs from a fallback (tests pass a fake)."""

    async def quote(self, name: str) -> Quote: ...

    async def closes(self, name: str) -> pd.Series: ...


def _yfinance() -> Any:
    try:
        import yfinance  # type: ignore[import-not-found]
    except ImportError:
        raise FallbackUnavailable(
            "yahoo", "yfinance", "not installed (pip install 'alvh-bot[yahoo]')"
        ) from None
    return yfinance


class YahooFallback:
    name = "yahoo"

    def _ticker(self, name: str) -> tuple[Any, str]:
        yf = _yfinance()
        if name not in TICKERS:
            raise MarketDataError("yahoo", name, "no Yahoo ticker for this field")
        return yf.Ticker(TICKERS[name]), TICKERS[name]

    async def quote(self, name: str) -> Quote:
        tk, sym = self._ticker(name)
        bars = await asyncio.to_thread(tk.history, period=INTRADAY_PERIOD,
                                       interval=INTRADAY_INTERVAL)
        if bars is None or len(bars) == 0 or "Close" not in bars:
            raise MarketDataError(f"yahoo {sym}", "Close", "no intraday bars")
        bars = bars[bars["Close"] > 0].dropna(subset=["Close"])
        if len(bars) == 0:
            raise MarketDataError(f"yahoo {sym}", "Close", "no positive close")
        when = pd.Timestamp(bars.index[-1])
        if when.tzinfo is None:
            raise MarketDataError(f"yahoo {sym}", "index", "bar time has no time zone")
        asof: datetime = when.to_pydatetime()
        return Quote(value=float(bars["Close"].iloc[-1]), asof=asof, source=f"yahoo {sym}")

    async def closes(self, name: str) -> pd.Series:
        tk, sym = self._ticker(name)
        bars = await asyncio.to_thread(tk.history, period=HISTORY_PERIOD, interval="1d")
        if bars is None or len(bars) == 0 or "Close" not in bars:
            raise MarketDataError(f"yahoo {sym}", "Close", "no daily bars")
        idx = pd.DatetimeIndex(bars.index)
        if idx.tz is not None:
            idx = idx.tz_convert("America/New_York").tz_localize(None)
        s = pd.Series(bars["Close"].to_numpy(dtype=float), index=idx.normalize(), name=name)
        return s[s > 0].dropna()
