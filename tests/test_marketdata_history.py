"""Close history: the offline sample's, and the live overlay of Cboe daily files."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
import numpy as np
import pandas as pd
import pytest

from bot.marketdata.cboe import CboeProvider
from bot.marketdata.errors import MarketDataError
from bot.marketdata.factory import make_provider
from core.models import HISTORY_COLUMNS


async def test_offline_history_ends_at_the_sample_date():
    h = await make_provider("offline").history()
    assert h.index[-1] == pd.Timestamp("2026-07-08")
    assert h.loc["2026-07-08", "spx"] == pytest.approx(7482.71, abs=0.01)
    assert h.loc["2026-07-08", "vix"] == pytest.approx(16.90)
    assert pd.Timestamp("2026-07-03") not in h.index  # NYSE holiday, Cboe has a VIX row
    assert set(HISTORY_COLUMNS) <= set(h.columns)
    assert h.index.is_monotonic_increasing
    short = await make_provider("offline").history(end=date(2026, 6, 30))
    assert short.index[-1] == pd.Timestamp("2026-06-30")


def shipped() -> pd.DataFrame:
    idx = pd.DatetimeIndex(["2024-07-01", "2024-07-02", "2024-07-03"])
    return pd.DataFrame({"spx": [5475.09, 5509.01, 5537.02], "vix": [12.22, 12.03, np.nan],
                         "rate": [0.0541, 0.0541, 0.0541]}, index=idx)


VIX_CSV = ("DATE,OPEN,HIGH,LOW,CLOSE\n07/02/2024,1,1,1,12.03\n07/03/2024,1,1,1,12.22\n"
           "07/04/2024,1,1,1,12.38\n07/05/2024,1,1,1,12.48\n")
SPX_CSV = "DATE,SPX\n07/03/2024,5537.02\n07/05/2024,5567.19\n"


def provider(handler, fallback=None):
    class NoFallback:
        async def quote(self, name):
            raise MarketDataError("yahoo", name, "down")

        async def closes(self, name):
            raise MarketDataError("yahoo", name, "down")

    async def sleep(_):
        return None

    return CboeProvider(transport=httpx.MockTransport(handler), sleep=sleep, retries=1,
                        fallback=fallback or NoFallback(), history_loader=shipped)


async def test_live_history_overlays_cboe_files_and_drops_holidays():
    def handler(req):
        name = str(req.url).rsplit("/", 1)[-1]
        if name == "VIX_History.csv":
            return httpx.Response(200, text=VIX_CSV)
        if name == "SPX_History.csv":
            return httpx.Response(200, text=SPX_CSV)
        return httpx.Response(403)

    p = provider(handler)
    h = await p.history()
    assert list(h.index.strftime("%Y-%m-%d")) == ["2024-07-01", "2024-07-02", "2024-07-03",
                                                   "2024-07-05"]  # 07-04 holiday row dropped
    assert h.loc["2024-07-03", "vix"] == 12.22  # a gap in the shipped copy filled
    assert h.loc["2024-07-05", "spx"] == 5567.19
    assert h.loc["2024-07-01", "vix"] == 12.22  # shipped rows the fetch lacks are kept
    assert np.isnan(h.loc["2024-07-05", "rate"])  # never a made-up value
    assert h.attrs["sources"]["vix"] == "cboe VIX_History.csv"
    assert set(h.attrs["flags"]) == {"STALE_HISTORY_VIX9D", "STALE_HISTORY_VIX3M",
                                     "STALE_HISTORY_VVIX"}
    assert {e.source for e in p.errors} >= {"cboe VVIX_History.csv", "yahoo"}
    h2 = await p.history(end=date(2024, 7, 2))
    assert h2.index[-1] == pd.Timestamp("2024-07-02")


async def test_live_history_uses_yahoo_closes_when_cboe_refuses():
    class Fallback:
        async def quote(self, name):
            raise MarketDataError("yahoo", name, "down")

        async def closes(self, name):
            return pd.Series([5567.19], index=pd.DatetimeIndex(["2024-07-05"]), name=name)

    p = provider(lambda req: httpx.Response(429), Fallback())
    h = await p.history()
    assert h.loc["2024-07-05", "spx"] == 5567.19
    assert h.attrs["sources"]["spx"] == "yahoo spx"
    assert h.attrs["flags"] == ()


def test_history_sync_wrapper_runs():
    h = asyncio.run(make_provider("offline").history(end=date(2026, 7, 1)))
    assert len(h) > 35  # enough closes for MACD/RSI
