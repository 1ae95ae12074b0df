"""Parsers for the exact payload shapes of MARKETDATA.md (Cboe quotes and chain, Cboe daily
CSVs, the CFE settlement CSV, FRED CSVs). Pure functions: bytes in, typed values out; every
problem is a `MarketDataError` naming the source and the field.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from bot.marketdata.errors import MarketDataError
from core.calendar import AM_ROOTS, SECONDS_PER_YEAR, is_session, settlement_epochs
from core.models import ChainKey, FutureQuote, OptionQuote, Quote
from core.pricing import implied_vol

ET = ZoneInfo("America/New_York")
OPTION_SYMBOL = r"^(?P<root>[A-Z]+)(?P<ymd>\d{6})(?P<cp>[CP])(?P<strike>\d{8})$"
STRIKE_SCALE = 1000.0  # strike × 1000 in 8 digits
VX_MONTHLY = r"^VX/[FGHJKMNQUVXZ]\d$"  # weeklies (VX35/U6) carry filler prices
IV_MIN, IV_MAX = 0.01, 3.0  # MARKETDATA.md junk filter for Cboe's decimal `iv`
SPX_ROOTS = ("SPX", "SPXW")
CFE_SETTLEMENT_TIME = time(16, 15)  # VX settles at the VIX close; the CSV carries no time


def _load_json(raw: bytes | str | Mapping[str, Any], source: str) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):
        return raw
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MarketDataError(source, "json", f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise MarketDataError(source, "json", "top level is not an object")
    return obj


def _data_block(obj: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    data = obj.get("data")
    if not isinstance(data, dict):
        raise MarketDataError(source, "data", "missing or not an object")
    return data


def parse_et_time(raw: object, source: str, field: str) -> datetime:
    """Cboe's `last_trade_time`: naive New York time, "2024-11-20T16:14:59"."""
    if not isinstance(raw, str) or not raw:
        raise MarketDataError(source, field, f"missing or not a time string (got {raw!r})")
    try:
        t = datetime.fromisoformat(raw)
    except ValueError:
        raise MarketDataError(source, field, f"not an ISO time (got {raw!r})") from None
    return t.replace(tzinfo=ET) if t.tzinfo is None else t.astimezone(ET)


def _positive(raw: object, source: str, field: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise MarketDataError(source, field, f"missing or not a number (got {raw!r})")
    x = float(raw)
    if not math.isfinite(x) or x <= 0:
        raise MarketDataError(source, field, f"must be a positive number (got {raw!r})")
    return x


def parse_quote(raw: bytes | str | Mapping[str, Any], source: str = "cboe") -> Quote:
    """One Cboe quote JSON → Quote(current_price, last_trade_time). The moving top-level
    `timestamp` is ignored: after hours it advances while the value is frozen."""
    obj = _load_json(raw, source)
    data = _data_block(obj, source)
    value = _positive(data.get("current_price"), source, "data.current_price")
    when = parse_et_time(data.get("last_trade_time"), source, "data.last_trade_time")
    return Quote(value=value, asof=when, source=source)


def _is_session(day: np.datetime64) -> bool:
    try:
        return is_session(day.astype(object))
    except ValueError:  # outside the calendar's range
        return False


def _implied_vol_from_mid(mid, spot, strike, tau, rate, div_yield, is_call) -> np.ndarray:
    """Recompute IV from mid with core.pricing.implied_vol; NaN where no volatility fits (those
    lines are then dropped)."""
    if len(mid) == 0:
        return np.full(0, np.nan)
    iv = implied_vol(mid, spot, strike, tau, rate, div_yield, is_call)
    return np.asarray(iv, dtype=float) * np.ones(len(mid))


def parse_chain(
    raw: bytes | str | Mapping[str, Any],
    *,
    max_dte: int,
    rate: float,
    div_yield: float,
    roots: tuple[str, ...] = SPX_ROOTS,
    source: str = "cboe _SPX options",
) -> tuple[Quote, dict[ChainKey, OptionQuote]]:
    """The SPX options JSON → (underlying quote, chain sliced to 0..max_dte calendar days).

    Kept as quoted: bid > 0, ask > bid, 0.01 < iv < 3, out of the money (K ≥ S calls, K ≤ S
    puts). An in-the-money line with a sane bid/ask takes its clean OTM twin's IV; other
    lines with a sane bid/ask get their IV recomputed from mid (core.pricing.implied_vol),
    else are dropped, as are settled expiries. Every line is dated by the chain's
    `last_trade_time` (the moment its bid/ask snapshot was valid).
    """
    obj = _load_json(raw, source)
    data = _data_block(obj, source)
    underlying = parse_quote(obj, source)
    options = data.get("options")
    if not isinstance(options, list):
        raise MarketDataError(source, "data.options", "missing or not a list")
    if not options:
        return underlying, {}
    try:
        df = pd.DataFrame.from_records(options, columns=["option", "bid", "ask", "iv"])
    except (TypeError, ValueError) as exc:
        raise MarketDataError(source, "data.options", f"malformed elements ({exc})") from None
    parts = df["option"].astype("string").str.extract(OPTION_SYMBOL)
    num = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
           for c in ("bid", "ask", "iv")}
    ok_sym = parts["root"].isin(list(roots)).to_numpy(dtype=bool)
    if not ok_sym.any():
        raise MarketDataError(source, "data.options[].option",
                              f"no {'/'.join(roots)} symbol in {len(df)} lines")
    parts = parts[ok_sym]
    bid, ask, iv = (num[c][ok_sym] for c in ("bid", "ask", "iv"))
    expiry = pd.to_datetime(parts["ymd"], format="%y%m%d", errors="coerce")
    strike = parts["strike"].astype(float).to_numpy() / STRIKE_SCALE
    is_call = (parts["cp"] == "C").to_numpy(dtype=bool)
    asof_day = pd.Timestamp(underlying.asof.date())
    dte = (expiry - asof_day).dt.days.to_numpy(dtype=float)
    in_window = (dte >= 0) & (dte <= max_dte)
    exp_days = expiry.to_numpy().astype("datetime64[D]")
    if in_window.any():  # an expiry that is not an NYSE session is junk
        sessions = {d for d in np.unique(exp_days[in_window]) if _is_session(d)}
        in_window &= np.isin(exp_days, list(sessions))
    tau = np.full(len(strike), np.nan)
    if in_window.any():  # ACT/365 to SPX 09:30 / SPXW close (13:00 on early closes)
        am = np.isin(parts["root"].to_numpy()[in_window], AM_ROOTS)
        settle = settlement_epochs(exp_days[in_window], am)
        tau[in_window] = (settle - underlying.asof.timestamp()) / SECONDS_PER_YEAR
    in_window &= tau > 0  # settled (e.g. today's SPXW after the close): gone, not a quote
    s = underlying.value
    otm = np.where(is_call, strike >= s, strike <= s)
    sane_quote = (bid > 0) & (ask > bid) & np.isfinite(ask)
    good_iv = (iv > IV_MIN) & (iv < IV_MAX)
    keep = in_window & sane_quote & good_iv & otm
    final_iv = np.where(keep, iv, np.nan)
    # An in-the-money line takes the IV of its clean out-of-the-money twin (same root, expiry,
    # strike; put–call parity): its own mid is mostly intrinsic value and its IV noisy.
    line_key = pd.MultiIndex.from_arrays([parts["root"].to_numpy(), parts["ymd"].to_numpy(),
                                          strike, is_call])
    twin_key = pd.MultiIndex.from_arrays([parts["root"].to_numpy(), parts["ymd"].to_numpy(),
                                          strike, ~is_call])
    clean = pd.Series(iv[keep], index=line_key[keep])
    clean = clean[~clean.index.duplicated()]
    twin_iv = clean.reindex(twin_key).to_numpy(dtype=float)
    from_twin = in_window & sane_quote & ~otm & np.isfinite(twin_iv)
    final_iv = np.where(from_twin, twin_iv, final_iv)
    redo = in_window & sane_quote & ~keep & ~from_twin
    if redo.any():
        mid = (bid[redo] + ask[redo]) / 2
        new_iv = _implied_vol_from_mid(mid, s, strike[redo], tau[redo], rate, div_yield,
                                       is_call[redo])
        final_iv[redo] = np.where((new_iv > IV_MIN) & (new_iv < IV_MAX), new_iv, np.nan)
    use = np.isfinite(final_iv)
    roots_u = parts["root"].to_numpy()[use]
    exp_u = [e.date() for e in expiry[use]]
    k_u, cp_u = strike[use], np.where(is_call[use], "C", "P")
    chain = {
        (r, e, float(k), str(c)): OptionQuote(iv=float(v), bid=float(b), ask=float(a),
                                              asof=underlying.asof)
        for r, e, k, c, v, b, a in zip(roots_u, exp_u, k_u, cp_u, final_iv[use], bid[use],
                                       ask[use], strict=True)
    }
    return underlying, chain


def _read_csv(raw: bytes | str, source: str) -> pd.DataFrame:
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw.lstrip("\ufeff")
    if not text.strip():
        raise MarketDataError(source, "csv", "empty file")
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, ValueError) as exc:
        raise MarketDataError(source, "csv", f"unreadable ({exc})") from None


def parse_cboe_daily(raw: bytes | str, column: str, source: str) -> pd.Series:
    """Cboe `daily_prices/<IDX>_History.csv` → closes by date (naive DatetimeIndex).

    Layouts: `DATE,OPEN,HIGH,LOW,CLOSE` (VIX, VIX9D, VIX3M) or `DATE,<IDX>` (VVIX, SKEW, SPX).
    Rows on non-sessions are kept here; `bot.marketdata` filters to XNYS sessions when it
    builds the history frame.
    """
    df = _read_csv(raw, source)
    df.columns = [c.strip().upper() for c in df.columns]
    if "DATE" not in df.columns:
        raise MarketDataError(source, "DATE", "column missing")
    value_col = "CLOSE" if "CLOSE" in df.columns else column.upper()
    if value_col not in df.columns:
        raise MarketDataError(source, value_col, "column missing")
    dates = pd.to_datetime(df["DATE"], format="%m/%d/%Y", errors="coerce")
    values = pd.to_numeric(df[value_col], errors="coerce")
    bad_date = dates.isna()
    if bad_date.any():
        row = int(np.flatnonzero(bad_date.to_numpy())[0]) + 2
        raise MarketDataError(source, f"row {row}: DATE",
                              f"not MM/DD/YYYY (got {df['DATE'].iloc[row - 2]!r})")
    values = values.where(values > 0)  # a zero close is a gap, never a price
    out = pd.Series(values.to_numpy(dtype=float), index=pd.DatetimeIndex(dates), name=column)
    out = out[~out.index.duplicated(keep="last")].sort_index()
    return out.dropna()


def parse_fred(raw: bytes | str, series: str, source: str = "fred") -> pd.Series:
    """FRED `fredgraph.csv` → values by date; `.` and empty are missing (dropped).
    Header `observation_date,<ID>` (or older `DATE,<ID>`, or re-headed `date,value`)."""
    df = _read_csv(raw, source)
    cols = {c.strip().lower(): c for c in df.columns}
    date_col = next((cols[c] for c in ("observation_date", "date") if c in cols), None)
    val_col = next((cols[c] for c in (series.lower(), "value") if c in cols), None)
    if date_col is None:
        raise MarketDataError(source, "observation_date", "column missing")
    if val_col is None:
        raise MarketDataError(source, series, "column missing")
    dates = pd.to_datetime(df[date_col], format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0]) + 2
        raise MarketDataError(source, f"row {row}: {date_col}", "not YYYY-MM-DD")
    values = pd.to_numeric(df[val_col].str.strip().replace({".": None, "": None}),
                           errors="coerce")
    out = pd.Series(values.to_numpy(dtype=float), index=pd.DatetimeIndex(dates), name=series)
    return out.dropna().sort_index()


def parse_cfe_settlement(
    raw: bytes | str, settle_date: date, source: str = "cfe settlement"
) -> tuple[FutureQuote, ...]:
    """CFE `Product,Symbol,Expiration Date,Price` → VX monthlies by expiry (weeklies dropped,
    other products ignored). Each is stamped at the settlement date's 16:15 ET."""
    df = _read_csv(raw, source)
    df.columns = [c.strip() for c in df.columns]
    for col in ("Product", "Symbol", "Expiration Date", "Price"):
        if col not in df.columns:
            raise MarketDataError(source, col, "column missing")
    sym = df["Symbol"].astype("string").str.strip()
    monthly = sym.str.match(VX_MONTHLY).fillna(False).to_numpy(dtype=bool)
    vx = df[monthly & (df["Product"].str.strip() == "VX").to_numpy(dtype=bool)]
    if vx.empty:
        raise MarketDataError(source, "Symbol", "no VX monthly contract (VX/<code><digit>)")
    exp = pd.to_datetime(vx["Expiration Date"].str.strip(), format="%Y-%m-%d", errors="coerce")
    price = pd.to_numeric(vx["Price"], errors="coerce")
    when = datetime.combine(settle_date, CFE_SETTLEMENT_TIME, tzinfo=ET)
    out = []
    for s, e, p in zip(sym[vx.index], exp, price, strict=True):
        if pd.isna(e):
            raise MarketDataError(source, f"{s}: Expiration Date", "not YYYY-MM-DD")
        if not (p > 0):
            continue  # an unsettled contract is left out, never priced at zero
        if e.date() < settle_date:
            continue  # expired before the settlement date
        out.append(FutureQuote(expiry=e.date(), price=float(p), asof=when, symbol=str(s)))
    if not out:
        raise MarketDataError(source, "Price", "no VX monthly with a positive price")
    return tuple(sorted(out, key=lambda f: f.expiry))
