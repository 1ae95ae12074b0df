"""The live provider through httpx.MockTransport: retries, fallback, cache, kept values."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.marketdata.cboe import CboeProvider
from bot.marketdata.errors import FallbackUnavailable, MarketDataError
from bot.marketdata.parsers import ET
from core.models import Quote

FX = Path(__file__).parent / "fixtures" / "marketdata"
NOW = datetime(2026, 8, 18, 16, 30, tzinfo=ET)  # after hours: the 16:00/16:15 closes expected
PRICES = {"_SPX": 6000.0, "_VIX": 15.2, "_VIX9D": 14.1, "_VIX3M": 17.3, "_VVIX": 88.0}
DFF = "observation_date,DFF\n2026-08-14,3.62\n2026-08-15,3.62\n2026-08-16,.\n2026-08-17,3.61\n"


def quote_json(sym: str, price: float, ltt: str = "2026-08-18T16:14:59") -> bytes:
    return json.dumps({"timestamp": "2026-08-18 20:31:00", "symbol": sym, "data": {
        "symbol": "^" + sym[1:], "current_price": price, "last_trade_time": ltt}}).encode()


class Server:
    """A fake Cboe/CFE/FRED: per-path scripted failures, counts requests."""

    def __init__(self):
        self.hits: dict[str, int] = {}
        self.fail: dict[str, list] = {}  # path fragment -> list of status codes or exceptions
        self.ltt = "2026-08-18T16:14:59"
        self.user_agents: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.user_agents.add(request.headers.get("user-agent", ""))
        key = url.rsplit("/", 1)[-1]
        self.hits[key] = self.hits.get(key, 0) + 1
        for frag, script in self.fail.items():
            if frag in url and script:
                what = script.pop(0)
                if isinstance(what, Exception):
                    raise what
                return httpx.Response(what, text="no")
        if "/quotes/" in url:
            sym = key.removesuffix(".json")
            return httpx.Response(200, content=quote_json(sym, PRICES[sym], self.ltt))
        if "/options/" in url:
            return httpx.Response(200, content=(FX / "chain_junk_a.json").read_bytes())
        if "settlement/csv" in url:
            return httpx.Response(200, content=(FX / "cfe_settlement.csv").read_bytes())
        if "fredgraph" in url:
            return httpx.Response(200, text=DFF)
        return httpx.Response(404)


class FakeFallback:
    def __init__(self, exc: Exception | None = None):
        self.exc = exc
        self.calls: list[str] = []

    async def quote(self, name: str) -> Quote:
        self.calls.append(name)
        if self.exc:
            raise self.exc
        return Quote(value=99.0, asof=datetime(2026, 8, 18, 16, 10, tzinfo=ET),
                     source=f"fake yahoo {name}")

    async def closes(self, name):
        raise FallbackUnavailable("yahoo", "yfinance", "not installed")


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def server():
    return Server()


def provider(server, **kw) -> tuple[CboeProvider, list[float]]:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    args = {"transport": httpx.MockTransport(server), "sleep": sleep, "jitter": lambda: 0.5,
            "retries": 2, "backoff_base_s": 0.5, "fallback": FakeFallback(),
            "clock": Clock()} | kw
    return CboeProvider(**args), slept


async def test_happy_path_snapshot(server):
    p, slept = provider(server)
    snap = await p.snapshot(NOW)
    assert snap.spx.value == 6000.0 and snap.vix.value == 15.2 and snap.vvix.value == 88.0
    assert snap.vix.asof == datetime(2026, 8, 18, 16, 14, 59, tzinfo=ET)
    assert snap.flags == ()
    assert len(snap.chain) == 7  # 5 clean lines + 2 with IV recomputed from mid
    # the settlement of today's (closed) session; monthlies only
    assert [f.symbol for f in snap.vix_futures] == ["VX/Q6", "VX/U6", "VX/V6"]
    assert snap.vix_futures[0].asof == datetime(2026, 8, 18, 16, 15, tzinfo=ET)
    # DFF 3.61 % simple ACT/360 → continuous ACT/365: 365·ln(1 + 0.0361/360)
    assert snap.rate.value == pytest.approx(0.0365996, abs=1e-7)
    assert snap.rate.asof.date() == date(2026, 8, 17)
    assert slept == [] and p.errors == []
    assert all("Mozilla" in ua for ua in server.user_agents)
    await p.aclose()


async def test_retries_with_backoff_on_429_then_success(server):
    server.fail["_VIX.json"] = [429, 503]
    p, slept = provider(server)
    snap = await p.snapshot(NOW)
    assert snap.vix.value == 15.2 and snap.vix.source == "cboe _VIX"
    assert server.hits["_VIX.json"] == 3
    assert slept == [0.5, 1.0]  # base·2^i·(0.5 + jitter 0.5)
    assert p.fallback.calls == []


async def test_404_is_not_retried_and_goes_to_fallback(server):
    server.fail["_VVIX.json"] = [404]
    p, slept = provider(server)
    snap = await p.snapshot(NOW)
    assert server.hits["_VVIX.json"] == 1 and slept == []
    assert snap.vvix.source == "fake yahoo vvix"
    assert p.errors[0].source == "cboe _VVIX" and p.errors[0].field == "http"
    assert "HTTP 404" in p.errors[0].detail


async def test_timeouts_exhaust_retries_then_fallback(server):
    server.fail["_VIX9D.json"] = [httpx.ReadTimeout("slow")] * 3
    p, slept = provider(server)
    snap = await p.snapshot(NOW)
    assert snap.vix9d.value == 99.0 and snap.vix9d.source == "fake yahoo vix9d"
    assert len(slept) == 2 and "timed out" in p.errors[0].detail


async def test_fallback_unavailable_is_flagged_and_value_missing(server):
    server.fail["_VIX.json"] = [500] * 3
    p, _ = provider(server, fallback=FakeFallback(
        FallbackUnavailable("yahoo", "yfinance", "not installed")))
    snap = await p.snapshot(NOW)
    assert snap.vix is None
    assert "MISSING_VIX" in snap.flags and "FALLBACK_UNAVAILABLE" in snap.flags
    assert snap.spx is not None


async def test_fallback_crashing_oddly_never_escapes(server):
    server.fail["_SPX.json"] = [500] * 3
    p, _ = provider(server, fallback=FakeFallback(KeyError("chart")))
    snap = await p.snapshot(NOW)
    assert snap.spx is None and "MISSING_SPX" in snap.flags
    assert any(e.source == "yahoo" for e in p.errors)


async def test_ttl_cache_one_fetch_per_round_shared_by_concurrent_callers(server):
    clock = Clock()
    p, _ = provider(server, clock=clock, cache_ttl_s=60)
    snaps = await asyncio.gather(*(p.snapshot(NOW) for _ in range(10)))
    assert all(s.vix.value == 15.2 for s in snaps)
    assert server.hits["_VIX.json"] == 1 and server.hits["_SPX.json"] == 2  # quote + options
    clock.t += 59
    await p.snapshot(NOW)
    assert server.hits["_VIX.json"] == 1
    clock.t += 2  # past the TTL
    await p.snapshot(NOW)
    assert server.hits["_VIX.json"] == 2


async def test_previous_good_value_is_kept_with_its_own_time(server):
    clock = Clock()
    p, _ = provider(server, clock=clock,
                    fallback=FakeFallback(MarketDataError("yahoo", "vix", "rate limited")))
    first = await p.snapshot(NOW)
    clock.t += 3600
    server.fail["_VIX.json"] = [502] * 3
    later = NOW + timedelta(days=1, hours=-4)  # next session, 12:30 ET: regular session
    snap = await p.snapshot(later)
    # the old value, still dated 2026-08-18 16:14:59, and labelled as kept
    assert (snap.vix.value, snap.vix.asof) == (first.vix.value, first.vix.asof)
    assert snap.vix.source == "cboe _VIX (previous value: fetch failed)"
    assert "STALE_VIX" in snap.flags and "MISSING_VIX" not in snap.flags
    assert any(e.source == "cboe _VIX" and e.field == "http" for e in p.errors)


async def test_malformed_payload_keeps_previous_value(server):
    clock = Clock()
    p, _ = provider(server, clock=clock,
                    fallback=FakeFallback(MarketDataError("yahoo", "spx", "down")))
    first = await p.snapshot(NOW)
    clock.t += 3600
    server.fail["/options/"] = [200]  # body "no": not JSON
    snap = await p.snapshot(NOW)
    assert snap.chain == first.chain
    err = next(e for e in p.errors if e.source == "cboe _SPX options")
    assert err.field == "json"


async def test_chain_failure_without_previous_value_is_missing(server):
    server.fail["/options/"] = [500] * 3
    p, _ = provider(server)
    snap = await p.snapshot(NOW)
    assert snap.chain == {} and "MISSING_CHAIN" in snap.flags


async def test_cfe_falls_back_to_previous_session_when_not_published(server):
    server.fail["dt=2026-08-18"] = [404]
    p, _ = provider(server)
    snap = await p.snapshot(NOW)
    assert snap.vix_futures and snap.vix_futures[0].asof.date() == date(2026, 8, 17)
    assert "STALE_VIX_FUTURES" not in snap.flags  # the session before the last is acceptable


async def test_stale_frozen_quote_in_regular_session(server):
    server.ltt = "2026-08-18T11:00:00"
    p, _ = provider(server)
    snap = await p.snapshot(datetime(2026, 8, 18, 11, 25, tzinfo=ET))
    assert {"STALE_SPX", "STALE_VIX", "STALE_VIX9D", "STALE_VIX3M", "STALE_VVIX"} <= set(
        snap.flags)
    assert snap.vix.value == 15.2  # the value is kept, only flagged


async def test_naive_asof_rejected(server):
    p, _ = provider(server)
    with pytest.raises(ValueError, match="time zone"):
        await p.snapshot(datetime(2026, 8, 18, 12, 0))


async def test_rate_falls_back_to_the_shipped_history_flagged_stale(server):
    import pandas as pd

    server.fail["fredgraph"] = [500] * 3
    frame = pd.DataFrame({"spx": [1.0, 1.0], "vix": [1.0, 1.0], "rate": [0.0367, float("nan")]},
                         index=pd.DatetimeIndex(["2026-07-08", "2026-07-09"]))
    p, _ = provider(server, history_loader=lambda: frame)
    snap = await p.snapshot(NOW)
    assert snap.rate.value == 0.0367 and snap.rate.asof.date() == date(2026, 7, 8)
    assert snap.rate.source == "shipped history FRED DFF"
    assert "STALE_RATE" in snap.flags and "MISSING_RATE" not in snap.flags


async def test_a_refusing_source_is_not_hammered_within_the_ttl(server):
    clock = Clock()
    server.fail["_VVIX.json"] = [429] * 10
    p, _ = provider(server, clock=clock, cache_ttl_s=60)
    await p.snapshot(NOW)
    assert server.hits["_VVIX.json"] == 3  # 1 + 2 retries
    clock.t += 30
    snap = await p.snapshot(NOW)
    assert server.hits["_VVIX.json"] == 3  # failure remembered for the TTL
    assert snap.vvix.source == "fake yahoo vvix"
    clock.t += 31
    await p.snapshot(NOW)
    assert server.hits["_VVIX.json"] == 6


async def test_an_unforeseen_parser_crash_becomes_a_typed_error(server, monkeypatch):
    import bot.marketdata.cboe as cboe

    def boom(raw, source):
        raise KeyError("surprise")

    monkeypatch.setattr(cboe, "parse_quote", boom)
    p, _ = provider(server)
    snap = await p.snapshot(NOW)
    assert snap.vix.source == "fake yahoo vix"
    err = next(e for e in p.errors if e.source == "cboe _VIX")
    assert err.field == "payload" and "KeyError" in err.detail
