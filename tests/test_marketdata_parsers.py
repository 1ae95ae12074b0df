"""Parsers against payloads in the exact Cboe/CFE/FRED shapes, junk included."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from bot.marketdata import parsers as parsers_module
from bot.marketdata.errors import MarketDataError
from bot.marketdata.parsers import (
    ET,
    parse_cboe_daily,
    parse_cfe_settlement,
    parse_chain,
    parse_fred,
    parse_quote,
)

FX = Path(__file__).parent / "fixtures" / "marketdata"


def chain(name="chain_junk_a.json", **kw):
    args = {"max_dte": 60, "rate": 0.04, "div_yield": 0.013} | kw
    return parse_chain((FX / name).read_bytes(), **args)


# --- quotes -----------------------------------------------------------------------------------

def test_quote_is_dated_by_last_trade_time_in_new_york():
    q = parse_quote((FX / "quote_vix_after_hours_a.json").read_bytes(), "cboe _VIX")
    assert q.value == 17.16
    assert q.asof == datetime(2024, 11, 20, 16, 14, 59, tzinfo=ET)
    assert q.asof.utcoffset().total_seconds() == -5 * 3600  # EST in November
    assert q.source == "cboe _VIX"


def test_frozen_after_hours_quote_with_moving_timestamp_keeps_its_time():
    a = parse_quote((FX / "quote_vix_after_hours_a.json").read_bytes())
    b = parse_quote((FX / "quote_vix_after_hours_b.json").read_bytes())
    assert a == b  # the top-level timestamp moved 4 hours; the quote did not


def test_truncated_quote_names_source_and_field():
    with pytest.raises(MarketDataError) as e:
        parse_quote((FX / "quote_truncated.json").read_bytes(), "cboe _VIX")
    assert (e.value.source, e.value.field) == ("cboe _VIX", "json")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ((FX / "quote_no_price.json").read_text(), "data.current_price"),
        ('{"timestamp": "x", "symbol": "_VIX"}', "data"),
        ('{"data": {"current_price": 0, "last_trade_time": "2024-11-20T16:14:59"}}',
         "data.current_price"),
        ('{"data": {"current_price": "17.1", "last_trade_time": "2024-11-20T16:14:59"}}',
         "data.current_price"),
        ('{"data": {"current_price": 17.1}}', "data.last_trade_time"),
        ('{"data": {"current_price": 17.1, "last_trade_time": "yesterday"}}',
         "data.last_trade_time"),
        ("[1, 2]", "json"),
    ],
)
def test_malformed_quotes_are_typed_errors(payload, field):
    with pytest.raises(MarketDataError) as e:
        parse_quote(payload, "cboe _VIX9D")
    assert e.value.source == "cboe _VIX9D"
    assert e.value.field == field


def test_zero_price_is_never_a_value():
    with pytest.raises(MarketDataError, match="positive"):
        parse_quote('{"data": {"current_price": 0.0, "last_trade_time": "2024-11-20T16:14:59"}}')


# --- chain -----------------------------------------------------------------------------------

CLEAN = {
    ("SPXW", date(2026, 8, 28), 5800.0, "P"),
    ("SPXW", date(2026, 8, 28), 6200.0, "C"),
    ("SPXW", date(2026, 8, 28), 6000.0, "C"),
    ("SPXW", date(2026, 8, 28), 6000.0, "P"),
    ("SPX", date(2026, 9, 18), 5700.0, "P"),
}


def bsm_put(S, K, T, r, q, vol):
    from math import erf, exp, log, sqrt

    def N(x):
        return 0.5 * (1 + erf(x / sqrt(2)))

    d1 = (log(S / K) + (r - q + vol * vol / 2) * T) / (vol * sqrt(T))
    d2 = d1 - vol * sqrt(T)
    return K * exp(-r * T) * N(-d2) - S * exp(-q * T) * N(-d1)


def test_chain_keeps_clean_otm_lines_and_drops_junk(monkeypatch):
    # a solver that finds no volatility: the junk lines are dropped
    monkeypatch.setattr(parsers_module, "implied_vol",
                        lambda price, *a: np.full(len(np.atleast_1d(price)), np.nan))
    underlying, ch = chain()
    assert underlying.value == 6000.0
    assert set(ch) == CLEAN
    q = ch[("SPXW", date(2026, 8, 28), 5800.0, "P")]
    assert (q.iv, q.bid, q.ask) == (0.2, 10.0, 10.5)
    assert q.asof == datetime(2026, 8, 18, 16, 14, 59, tzinfo=ET)
    assert all(0.01 < v.iv < 3 for v in ch.values())


def test_junk_iv_lines_are_recomputed_from_mid_with_core_pricing():
    _, ch = chain(rate=0.04, div_yield=0.013)
    exp = date(2026, 8, 28)
    assert set(ch) == CLEAN | {("SPXW", exp, 6100.0, "P"), ("SPXW", exp, 5500.0, "P")}
    # 2026-08-18 16:14:59 ET → 2026-08-28 16:00 ET (PM settled), ACT/365
    T = (9 * 86400 + 23 * 3600 + 45 * 60 + 1) / (365 * 86400)
    for strike, mid in ((6100.0, 109.0), (5500.0, 0.55)):
        iv = ch[("SPXW", exp, strike, "P")].iv
        assert 0.01 < iv < 3 and iv != 4.12
        assert bsm_put(6000.0, strike, T, 0.04, 0.013, iv) == pytest.approx(mid, rel=1e-6)


def test_itm_line_takes_its_clean_otm_twin_iv():
    raw = json.loads((FX / "chain_junk_a.json").read_text())
    twin = dict(raw["data"]["options"][0])  # SPXW 2026-08-28 P 5800, iv 0.2
    twin.update(option="SPXW260828C05800000", bid=205.0, ask=209.0, iv=4.12, delta=-999.0)
    raw["data"]["options"].append(twin)
    _, ch = parse_chain(json.dumps(raw), max_dte=60, rate=0.04, div_yield=0.013)
    assert ch[("SPXW", date(2026, 8, 28), 5800.0, "C")].iv == 0.2


def test_chain_with_moving_timestamp_is_identical():
    assert chain("chain_junk_a.json") == chain("chain_junk_b.json")


def test_chain_dte_slice():
    _, ch = chain(max_dte=20)
    assert {k[1] for k in ch} == {date(2026, 8, 28)}
    _, ch = chain(max_dte=120)
    assert ("SPXW", date(2026, 11, 20), 5000.0, "P") in ch


def test_junk_lines_get_iv_from_mid(monkeypatch):
    calls = {}

    def fake_iv(price, spot, strike, tau, rate, div_yield, is_call):
        calls["args"] = (np.asarray(price), spot, np.asarray(strike), np.asarray(is_call))
        return np.full(len(np.atleast_1d(price)), 0.19)

    monkeypatch.setattr(parsers_module, "implied_vol", fake_iv)
    _, ch = chain()
    exp = date(2026, 8, 28)
    assert ch[("SPXW", exp, 6100.0, "P")].iv == 0.19  # deep ITM, iv 4.12, delta −999
    assert ch[("SPXW", exp, 5500.0, "P")].iv == 0.19  # OTM but iv 0
    price, spot, strike, is_call = calls["args"]
    assert spot == 6000.0
    assert sorted(strike.tolist()) == [5500.0, 6100.0]
    assert sorted(price.tolist()) == [0.55, 109.0]  # mids
    assert not is_call.any()
    # the crossed and no-bid lines were never sent to the solver
    assert ("SPXW", exp, 5000.0, "P") not in ch and ("SPXW", exp, 6300.0, "C") not in ch


def test_solver_output_outside_sane_range_is_dropped(monkeypatch):
    monkeypatch.setattr(parsers_module, "implied_vol", lambda *a: np.array([4.12, np.nan]))
    _, ch = chain()
    assert ("SPXW", date(2026, 8, 28), 6100.0, "P") not in ch


def test_truncated_chain_is_a_typed_error():
    with pytest.raises(MarketDataError) as e:
        chain("chain_truncated.json")
    assert e.value.field == "json"


def test_chain_without_options_list():
    with pytest.raises(MarketDataError) as e:
        parse_chain('{"data": {"current_price": 6000, "last_trade_time": "2026-08-18T16:14:59",'
                    ' "options": {"a": 1}}}', max_dte=60, rate=0.04, div_yield=0.0)
    assert e.value.field == "data.options"


# --- daily CSVs, FRED, CFE ---------------------------------------------------------------------

def test_cboe_daily_keeps_raw_rows_including_holidays():
    s = parse_cboe_daily((FX / "VIX_History_holidays.csv").read_bytes(), "vix", "cboe VIX")
    assert s.loc["2024-07-05"] == 12.48
    assert "2024-07-04" in s.index  # filtering to NYSE sessions is the history builder's job
    assert s.dtype == float


def test_cboe_daily_close_only_layout():
    s = parse_cboe_daily((FX / "VVIX_History.csv").read_text(), "VVIX", "cboe VVIX")
    assert list(s.round(2)) == [80.41, 79.90, 81.22]


def test_cboe_daily_bad_date_names_row():
    with pytest.raises(MarketDataError) as e:
        parse_cboe_daily("DATE,CLOSE\n07/02/2024,12.0\n2024-07-03,12.2\n", "vix", "cboe VIX")
    assert e.value.field == "row 3: DATE"


def test_cboe_daily_missing_column():
    with pytest.raises(MarketDataError) as e:
        parse_cboe_daily("DATE,OPEN\n07/02/2024,12.0\n", "vix", "cboe VIX")
    assert e.value.field == "VIX"


def test_fred_dots_and_blanks_are_missing_not_zero():
    s = parse_fred((FX / "fred_VIXCLS.csv").read_bytes(), "VIXCLS")
    assert list(s.index.strftime("%Y-%m-%d")) == [
        "2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05"]
    assert (s > 0).all()


def test_fred_old_header():
    s = parse_fred((FX / "fred_DFF_old_header.csv").read_text(), "DFF")
    assert list(s) == [5.33, 5.33]


def test_cfe_monthlies_only():
    curve = parse_cfe_settlement((FX / "cfe_settlement.csv").read_bytes(), date(2026, 7, 23))
    assert [f.symbol for f in curve] == ["VX/Q6", "VX/U6", "VX/V6"]  # X6 price 0: left out
    assert [f.price for f in curve] == [19.5133, 20.2246, 20.9009]
    assert curve[0].asof == datetime(2026, 7, 23, 16, 15, tzinfo=ET)


def test_cfe_drops_contracts_expired_before_settlement_date():
    curve = parse_cfe_settlement((FX / "cfe_settlement.csv").read_bytes(), date(2026, 9, 1))
    assert [f.symbol for f in curve] == ["VX/U6", "VX/V6"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("Product,Symbol,Price\nVX,VX/Q6,19\n", "Expiration Date"),
        ("Product,Symbol,Expiration Date,Price\nVX,VX35/U6,2026-09-02,19\n", "Symbol"),
        ("Product,Symbol,Expiration Date,Price\nVX,VX/Q6,08/19/2026,19\n",
         "VX/Q6: Expiration Date"),
        ("", "csv"),
    ],
)
def test_cfe_malformed(text, field):
    with pytest.raises(MarketDataError) as e:
        parse_cfe_settlement(text, date(2026, 7, 23))
    assert e.value.field == field


# --- property: whatever Cboe sends, the chain is clean or the error is typed -------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_num = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32),
                 st.integers(-5, 5000), st.just("x"))
_line = st.fixed_dictionaries({
    "option": st.one_of(
        st.builds(lambda r, d, cp, k: f"{r}2608{d:02d}{cp}{k:08d}",
                  st.sampled_from(["SPX", "SPXW", "VIX"]), st.integers(10, 31),
                  st.sampled_from("CP"), st.integers(4_000_000, 8_000_000)),
        st.text(max_size=12)),
    "bid": _num, "ask": _num, "iv": _num, "delta": _num,
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line, max_size=25))
def test_chain_property_clean_or_typed_error(lines):
    payload = {"timestamp": "2026-08-18 20:30:00", "symbol": "_SPX",
               "data": {"current_price": 6000.0, "last_trade_time": "2026-08-18T16:14:59",
                        "options": lines}}
    try:
        _, ch = parse_chain(payload, max_dte=60, rate=0.04, div_yield=0.013)
    except MarketDataError as e:
        assert e.source and e.field
        return
    for (root, expiry, _strike, cp), q in ch.items():
        assert root in ("SPX", "SPXW") and cp in ("C", "P")
        assert 0 <= (expiry - date(2026, 8, 18)).days <= 60
        assert 0.01 < q.iv < 3 and q.bid > 0 and q.ask > q.bid
        assert np.isfinite([q.iv, q.bid, q.ask]).all()


def test_infinite_or_text_quotes_are_dropped():
    p = {"data": {"current_price": 6000.0, "last_trade_time": "2026-08-18T16:14:59", "options": [
        {"option": "SPXW260828P05800000", "bid": 1.0, "ask": float("inf"), "iv": 0.2},
        {"option": "SPXW260828P05750000", "bid": "1.0", "ask": "n/a", "iv": 0.2},
        {"option": "SPXW260828P05700000", "bid": 1, "ask": 2, "iv": 0.2}]}}
    _, ch = parse_chain(p, max_dte=60, rate=0.04, div_yield=0.0)
    assert list(ch) == [("SPXW", date(2026, 8, 28), 5700.0, "P")]


def test_settled_and_non_session_expiries_are_dropped():
    p = {"data": {"current_price": 6000.0, "last_trade_time": "2026-08-18T16:14:59", "options": [
        {"option": "SPXW260818P05900000", "bid": 0.05, "ask": 0.1, "iv": 0.5},  # settled 16:00
        {"option": "SPXW260822P05900000", "bid": 1.0, "ask": 1.1, "iv": 0.2},  # a Saturday
        {"option": "SPXW260819P05900000", "bid": 1.0, "ask": 1.1, "iv": 0.2}]}}
    _, ch = parse_chain(p, max_dte=60, rate=0.04, div_yield=0.0)
    assert list(ch) == [("SPXW", date(2026, 8, 19), 5900.0, "P")]
    # before the close the same-day line is alive
    p["data"]["last_trade_time"] = "2026-08-18T15:00:00"
    _, ch = parse_chain(p, max_dte=60, rate=0.04, div_yield=0.0)
    assert ("SPXW", date(2026, 8, 18), 5900.0, "P") in ch
