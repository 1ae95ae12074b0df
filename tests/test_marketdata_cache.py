"""The TTL cache (injected clock), settings, and the yfinance fallback without yfinance."""

from __future__ import annotations

import asyncio
import sys
import types
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from bot.marketdata.cache import TTLCache
from bot.marketdata.errors import FallbackUnavailable, MarketDataError
from bot.marketdata.settings import MarketDataSettings
from bot.marketdata.yahoo import YahooFallback


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


async def test_ttl_hit_miss_and_expiry():
    clock = Clock()
    cache = TTLCache(30, clock)
    n = 0

    async def fetch():
        nonlocal n
        n += 1
        return n

    assert await cache.get("k", fetch) == 1
    clock.t = 29.9
    assert await cache.get("k", fetch) == 1
    clock.t = 30.0
    assert await cache.get("k", fetch) == 2
    assert await cache.get("other", fetch) == 3  # keyed by what was fetched
    assert cache.age_s("k") == 0.0 and cache.age_s("missing") is None


async def test_concurrent_callers_share_one_inflight_fetch():
    cache = TTLCache(30, Clock())
    gate = asyncio.Event()

    async def fetch():
        await gate.wait()
        return "v"

    tasks = [asyncio.ensure_future(cache.get("k", fetch)) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*tasks) == ["v"] * 20
    assert cache.fetches == 1


async def test_failure_is_not_cached_and_last_good_survives():
    clock = Clock()
    cache = TTLCache(10, clock)

    async def ok():
        return 1

    async def boom():
        raise MarketDataError("cboe _VIX", "http", "HTTP 503")

    await cache.get("k", ok)
    clock.t = 11
    with pytest.raises(MarketDataError):
        await cache.get("k", boom)
    assert cache.last_good("k").value == 1 and cache.age_s("k") == 11
    clock.t = 15  # within the failure TTL: the failure is re-raised, no new request
    with pytest.raises(MarketDataError, match="503"):
        await cache.get("k", ok)
    assert cache.fetches == 2
    clock.t = 21  # past it: fetch again
    assert await cache.get("k", ok) == 1
    assert cache.fetches == 3


async def test_per_call_ttl_override():
    clock = Clock()
    cache = TTLCache(10, clock)
    calls = []

    async def fetch():
        calls.append(1)
        return len(calls)

    await cache.get("daily", fetch, ttl_s=3600)
    clock.t = 100
    assert await cache.get("daily", fetch, ttl_s=3600) == 1


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch():
    cache = TTLCache(30, Clock())
    gate = asyncio.Event()

    async def fetch():
        await gate.wait()
        return "v"

    a = asyncio.ensure_future(cache.get("k", fetch))
    b = asyncio.ensure_future(cache.get("k", fetch))
    await asyncio.sleep(0)
    a.cancel()
    gate.set()
    assert await b == "v"


# --- settings ------------------------------------------------------------------------------

def test_settings_from_env():
    s = MarketDataSettings.from_env({"MARKET_DATA_PROVIDER": "LIVE", "MARKET_DATA_CACHE_TTL": "90",
                                     "ALVH_EXTRA_EVENTS_FILE": "/tmp/x.csv"})
    assert (s.provider, s.cache_ttl_s, s.extra_events_file) == ("live", 90.0, Path("/tmp/x.csv"))
    assert MarketDataSettings.from_env({}).provider == "offline"


@pytest.mark.parametrize(
    ("env", "msg"),
    [
        ({"MARKET_DATA_PROVIDER": "bloomberg"}, "MARKET_DATA_PROVIDER"),
        ({"MARKET_DATA_HTTP_TIMEOUT": "ten"}, "MARKET_DATA_HTTP_TIMEOUT"),
        ({"MARKET_DATA_RETRIES": "-1"}, "retries"),
    ],
)
def test_bad_settings_name_the_variable(env, msg):
    with pytest.raises(ValueError, match=msg):
        MarketDataSettings.from_env(env)


# --- yfinance fallback -------------------------------------------------------------------------

async def test_without_yfinance_the_fallback_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "yfinance", None)  # import fails like a missing extra
    with pytest.raises(FallbackUnavailable) as e:
        await YahooFallback().quote("vix")
    assert e.value.field == "yfinance" and "alvh-bot[yahoo]" in e.value.detail


async def test_yahoo_quote_and_closes_with_a_fake_module(monkeypatch):
    idx = pd.DatetimeIndex(["2026-08-18 15:58", "2026-08-18 15:59"], tz="America/New_York")
    daily = pd.DatetimeIndex(["2026-08-17", "2026-08-18"], tz="America/New_York")

    class Ticker:
        def __init__(self, sym):
            self.sym = sym

        def history(self, period, interval):
            if interval == "1m":
                return pd.DataFrame({"Close": [15.1, 15.3]}, index=idx)
            return pd.DataFrame({"Close": [15.0, 0.0]}, index=daily)

    monkeypatch.setitem(sys.modules, "yfinance", types.SimpleNamespace(Ticker=Ticker))
    q = await YahooFallback().quote("vix")
    assert q.value == 15.3 and q.source == "yahoo ^VIX"
    assert q.asof == datetime.fromisoformat("2026-08-18T15:59:00-04:00")
    s = await YahooFallback().closes("spx")
    assert list(s) == [15.0]  # a zero close is a gap, never a price
    with pytest.raises(MarketDataError):
        await YahooFallback().quote("skew")
