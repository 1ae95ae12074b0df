"""The live provider: Cboe delayed quotes and chain, CFE settlements, Cboe daily CSVs, FRED DFF;
yfinance as the fallback for quotes and closes.

Network policy: a browser-like User-Agent; per-request timeout; retries with exponential
backoff and jitter on 403/429/5xx, timeouts and connection errors (the sleep and the jitter
source are injectable, so tests never sleep); then the fallback; then the previous good value,
kept with its own time (so its age shows) and named in `errors`. Every fetched payload is cached
for `cache_ttl_s` and shared by all concurrent callers (one fetch per evaluation round).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from bot.marketdata.cache import TTLCache
from bot.marketdata.errors import FallbackUnavailable, MarketDataError
from bot.marketdata.events import load_events
from bot.marketdata.freshness import QUOTE_FIELDS, build_snapshot, last_close, sessions_between
from bot.marketdata.history import default_history_dir, fed_funds_to_continuous, load_history
from bot.marketdata.parsers import (
    ET,
    parse_cboe_daily,
    parse_cfe_settlement,
    parse_chain,
    parse_fred,
    parse_quote,
)
from bot.marketdata.provider import MarketDataProvider
from bot.marketdata.yahoo import QuoteFallback, YahooFallback
from core.models import Event, FutureQuote, MarketSnapshot, Quote
from core.params import Params

QUOTE_URL = "https://cdn.cboe.com/api/global/delayed_quotes/quotes/{symbol}.json"
CHAIN_URL = "https://cdn.cboe.com/api/global/delayed_quotes/options/{symbol}.json"
DAILY_URL = "https://cdn.cboe.com/api/global/us_indices/daily_prices/{index}_History.csv"
CFE_URL = "https://www.cboe.com/us/futures/market_statistics/settlement/csv?dt={day}"
FRED_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv?id={series}"
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0 Safari/537.36")
CBOE_SYMBOLS = {"spx": "_SPX", "vix": "_VIX", "vix9d": "_VIX9D", "vix3m": "_VIX3M",
                "vvix": "_VVIX"}
DAILY_INDICES = {"spx": "SPX", "vix": "VIX", "vix9d": "VIX9D", "vix3m": "VIX3M", "vvix": "VVIX"}
RATE_SERIES = "DFF"  # effective fed funds, percent, one row per calendar day
RETRY_STATUSES = frozenset({403, 429})  # plus every 5xx
DAILY_TTL_S = 3600.0  # daily series (closes, settlements, DFF) change once a day
CFE_LOOKBACK_SESSIONS = 3  # if today's settlement file is not out yet, try earlier sessions


class CboeProvider(MarketDataProvider):
    name = "live"

    def __init__(
        self,
        *,
        http_timeout_s: float = 10.0,
        cache_ttl_s: float = 60.0,
        retries: int = 3,
        backoff_base_s: float = 0.5,
        max_chain_dte: int = 60,
        extra_events_file: Path | None = None,
        params: Params | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        fallback: QuoteFallback | None = None,
        history_loader: Callable[[], pd.DataFrame] | None = None,
        **_ignored: object,
    ):
        self.http_timeout_s = http_timeout_s
        self.retries = retries
        self.backoff_base_s = backoff_base_s
        self.max_chain_dte = max_chain_dte
        self.extra_events_file = extra_events_file
        self.params = params or Params()
        self.sleep = sleep
        self.jitter = jitter
        self.cache = TTLCache(cache_ttl_s, clock)
        self.fallback: QuoteFallback = fallback if fallback is not None else YahooFallback()
        self.history_loader = history_loader
        self.errors: list[MarketDataError] = []
        self._client = httpx.AsyncClient(
            transport=transport, timeout=http_timeout_s, follow_redirects=True,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json, text/csv, */*"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- HTTP with retries --------------------------------------------------------------

    async def fetch(self, url: str, source: str) -> bytes:
        """GET with retries on 403/429/5xx/timeouts; a `MarketDataError` once they run out."""
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                base = self.backoff_base_s * 2 ** (attempt - 1)
                await self.sleep(base * (0.5 + self.jitter()))  # jitter in [0.5, 1.5)×base
            try:
                r = await self._client.get(url)
            except httpx.TimeoutException:
                last = f"timed out after {self.http_timeout_s:g} s"
                continue
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__})"
                continue
            if r.status_code == 200:
                return r.content
            last = f"HTTP {r.status_code}"
            if r.status_code not in RETRY_STATUSES and r.status_code < 500:
                break  # 404 and friends will not get better by retrying
        attempts = attempt + 1
        raise MarketDataError(source, "http", f"{last} ({attempts} attempt(s))")

    async def _cached(self, key: tuple, url: str, source: str, parse: Callable[[bytes], Any],
                      ttl_s: float | None = None) -> Any:
        async def go() -> Any:
            raw = await self.fetch(url, source)
            try:
                return await asyncio.to_thread(parse, raw)
            except MarketDataError:
                raise
            except Exception as exc:  # a payload shape no parser rule foresaw: never a crash
                raise MarketDataError(source, "payload",
                                      f"unparseable ({type(exc).__name__}: {exc})") from exc

        return await self.cache.get(key, go, ttl_s)

    def _kept(self, key: tuple, err: MarketDataError) -> Any:
        """The previous good value after a failure (or None), and the failure recorded."""
        self.errors.append(err)
        e = self.cache.last_good(key)
        return None if e is None else e.value

    # --- the pieces of a snapshot ----------------------------------------------------------

    async def _quote(self, name: str, flags: list[str]) -> Quote | None:
        sym = CBOE_SYMBOLS[name]
        key = ("quote", sym)
        try:
            return await self._cached(key, QUOTE_URL.format(symbol=sym), f"cboe {sym}",
                                      lambda raw: parse_quote(raw, f"cboe {sym}"))
        except MarketDataError as err:
            self.errors.append(err)
        try:
            return await self.cache.get(("fallback", name), lambda: self.fallback.quote(name))
        except FallbackUnavailable as err:
            flags.append("FALLBACK_UNAVAILABLE")
            self.errors.append(err)
        except MarketDataError as err:
            self.errors.append(err)
        except Exception as err:  # a fallback library failing in its own way
            self.errors.append(MarketDataError("yahoo", name, f"{type(err).__name__}: {err}"))
        prev = self.cache.last_good(key)
        if prev is None:
            return None
        # the previous good value keeps its own time (so its age shows) and says so
        return dataclasses.replace(prev.value,
                                   source=f"{prev.value.source} (previous value: fetch failed)")

    async def _rate(self) -> Quote | None:
        key = ("fred", RATE_SERIES)

        def parse(raw: bytes) -> Quote:
            s = parse_fred(raw, RATE_SERIES, f"fred {RATE_SERIES}")
            if s.empty:
                raise MarketDataError(f"fred {RATE_SERIES}", RATE_SERIES, "no values")
            when = datetime.combine(s.index[-1].date(), datetime.min.time(), tzinfo=ET)
            return Quote(value=fed_funds_to_continuous(float(s.iloc[-1])), asof=when,
                         source=f"fred {RATE_SERIES} (continuous)")

        try:
            return await self._cached(key, FRED_URL.format(series=RATE_SERIES),
                                      f"fred {RATE_SERIES}", parse, DAILY_TTL_S)
        except MarketDataError as err:
            kept = self._kept(key, err)
        return kept if kept is not None else self._shipped_rate()

    def _shipped_rate(self) -> Quote | None:
        """The last fed-funds reading of the shipped history: old, so flagged STALE_RATE by
        its own date, but closer than a fixed default."""
        try:
            rates = self._shipped_history()["rate"].dropna()
        except (MarketDataError, KeyError) as err:
            self.errors.append(err if isinstance(err, MarketDataError) else
                               MarketDataError("shipped history", "rate", "column missing"))
            return None
        if rates.empty:
            return None
        when = datetime.combine(rates.index[-1].date(), datetime.min.time(), tzinfo=ET)
        return Quote(value=float(rates.iloc[-1]), asof=when, source="shipped history FRED DFF")

    async def _chain(self, rate: float) -> tuple[dict, datetime | None]:
        key = ("chain", "_SPX")
        source = "cboe _SPX options"

        def parse(raw: bytes) -> tuple[Quote, dict]:
            return parse_chain(raw, max_dte=self.max_chain_dte, rate=rate,
                               div_yield=self.params.dividend_yield, source=source)

        try:
            underlying, chain = await self._cached(key, CHAIN_URL.format(symbol="_SPX"), source,
                                                   parse)
        except MarketDataError as err:
            kept = self._kept(key, err)
            if kept is None:
                return {}, None
            underlying, chain = kept
        return chain, underlying.asof

    async def _futures(self, asof: datetime) -> tuple[tuple[FutureQuote, ...], date | None]:
        """The CFE settlement of the last closed session (or the one before, if not out yet)."""
        last = last_close(asof).astimezone(ET).date()
        days = sessions_between(date.fromordinal(last.toordinal() - 10), last)
        days = days[-CFE_LOOKBACK_SESSIONS:][::-1]
        for day in days:
            key = ("cfe", day)
            src = f"cfe settlement {day}"
            try:
                curve = await self._cached(key, CFE_URL.format(day=day.isoformat()), src,
                                           lambda raw, d=day, s=src: parse_cfe_settlement(
                                               raw, d, s), DAILY_TTL_S)
                return curve, day
            except MarketDataError as err:
                self.errors.append(err)
        return (), None

    async def snapshot(self, asof: datetime) -> MarketSnapshot:
        if asof.tzinfo is None:
            raise ValueError("snapshot time must carry a time zone")
        self.errors = []
        flags: list[str] = []
        rate = await self._rate()
        rate_value = rate.value if rate is not None else self.params.rate_default
        results = await asyncio.gather(
            *(self._quote(n, flags) for n in QUOTE_FIELDS),
            self._chain(rate_value),
            self._futures(asof),
        )
        quotes = dict(zip(QUOTE_FIELDS, results[: len(QUOTE_FIELDS)], strict=True))
        chain, chain_asof = results[len(QUOTE_FIELDS)]
        futures, futures_date = results[len(QUOTE_FIELDS) + 1]
        return build_snapshot(asof, quotes, self.params, chain=chain, chain_asof=chain_asof,
                              futures=futures, futures_date=futures_date, rate=rate,
                              extra_flags=flags)

    # --- history and events -------------------------------------------------------------------

    def _shipped_history(self) -> pd.DataFrame:
        if self.history_loader is not None:
            return self.history_loader()
        return load_history(default_history_dir())

    async def _daily(self, name: str) -> tuple[pd.Series | None, str]:
        idx = DAILY_INDICES[name]
        key = ("daily", idx)
        try:
            s = await self._cached(key, DAILY_URL.format(index=idx), f"cboe {idx}_History.csv",
                                   lambda raw: parse_cboe_daily(raw, idx,
                                                                f"cboe {idx}_History.csv"),
                                   DAILY_TTL_S)
            return s, f"cboe {idx}_History.csv"
        except MarketDataError as err:
            self.errors.append(err)
        try:
            s = await self.cache.get(("fallback-closes", name),
                                     lambda: self.fallback.closes(name), DAILY_TTL_S)
            return s, f"yahoo {name}"
        except MarketDataError as err:
            self.errors.append(err)
        except Exception as err:
            self.errors.append(MarketDataError("yahoo", name, f"{type(err).__name__}: {err}"))
        return None, ""

    async def history(self, end: date | None = None) -> pd.DataFrame:
        """Shipped history overlaid with today's Cboe daily files (fallback: yfinance closes),
        filtered to NYSE sessions (Cboe's VIX file has rows on holidays)."""
        self.errors = []
        frame = self._shipped_history().copy()
        sources = {c: "shipped history" for c in frame.columns}
        flags: list[str] = []
        fetched = await asyncio.gather(*(self._daily(n) for n in DAILY_INDICES))
        for name, (series, src) in zip(DAILY_INDICES, fetched, strict=True):
            if series is None:
                flags.append(f"STALE_HISTORY_{name.upper()}")
                continue
            # fetched closes win; shipped rows and columns the fetch lacks are kept
            fresh = series.rename(name).to_frame()
            frame = fresh.combine_first(frame) if len(frame) else fresh
            sources[name] = src
        if len(frame):
            frame.index = pd.DatetimeIndex(frame.index)
            frame = frame.sort_index()
            sessions = pd.DatetimeIndex(
                sessions_between(frame.index[0].date(), frame.index[-1].date()))
            # Cboe's VIX file has rows on NYSE holidays; rows before the calendar stay
            frame = frame[frame.index.isin(sessions) | (frame.index < sessions[0])]
            if end is not None:
                frame = frame.loc[: pd.Timestamp(end)]
        frame.attrs["sources"] = sources
        frame.attrs["flags"] = tuple(flags)
        return frame

    async def events(self) -> list[Event]:
        return load_events(self.extra_events_file, self.params)
