"""core.market_series: the backtest's whole-history market pass equals the per-day pass bit for
bit (issue 16), on the real close history (../shared/data) at many dates — the warm-up days,
the four sessions missing from Cboe's VIX file, the starts of VIX3M/VIX9D/VVIX, regime changes
(1998, 2008, 2020) — and on synthetic gaps; and `evaluate` gives the same records with it."""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bot.backtest.market import MarketDays
from bot.marketdata.history import load_history
from core import calendar as cal
from core.evaluate import _compute_history_pass, _history_upto, evaluate
from core.market_series import HistorySeries
from core.models import Position
from core.params import Params

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
WINDOW = 120


@pytest.fixture(scope="module")
def market() -> MarketDays:
    return MarketDays.from_history(load_history(SHARED))


@pytest.fixture(scope="module")
def series(market) -> HistorySeries:
    return HistorySeries(market.frame, WINDOW, Params())


def per_day(market: MarketDays, i: int, params: Params):
    asof = market.asof(i)
    return _compute_history_pass(_history_upto(market.history_window(i, WINDOW), asof), params)


def assert_same(got, ref) -> None:
    """Field by field, floats compared by their bits (== would let −0.0 pass for 0.0)."""
    for f in dataclasses.fields(ref):
        a, b = getattr(got, f.name), getattr(ref, f.name)
        if f.name == "indicators":
            assert list(a) == list(b)
            for k in b:
                assert (a[k] is None and b[k] is None) or (
                    np.float64(a[k]).tobytes() == np.float64(b[k]).tobytes()), k
        else:
            assert a == b, f.name
            assert repr(a) == repr(b), f.name


def near_dates(market: MarketDays, days: list[date], span: int = 3) -> list[int]:
    d64 = np.array(market.dates, dtype="datetime64[D]")
    out = set()
    for d in days:
        k = int(np.searchsorted(d64, np.datetime64(d, "D")))
        out.update(range(max(0, k - span), min(len(market), k + span + 1)))
    return sorted(out)


def test_warm_up_rows_are_left_to_the_per_day_pass(market, series):
    for i in range(WINDOW - 1):
        assert series.at(i, market.asof(i)) is None
    i = WINDOW - 1
    assert_same(series.at(i, market.asof(i)), per_day(market, i, Params()))


def test_equal_to_the_per_day_pass_on_the_real_history(market, series):
    p = Params()
    gaps = [date(1991, 3, 1), date(1997, 1, 31), date(1997, 11, 26), date(1999, 12, 31)]
    starts = [date(2006, 3, 1), date(2009, 1, 2), date(2011, 1, 3)]  # VVIX, VIX3M, VIX9D
    shocks = [date(1998, 8, 31), date(2008, 10, 10), date(2020, 3, 16), date(2024, 8, 5)]
    rows = set(near_dates(market, gaps + starts + shocks))
    rows.update(range(WINDOW - 1, WINDOW + 40))  # the first full windows
    rows.update(range(WINDOW, len(market), 97))  # every ~5 months through 36 years
    rows.add(len(market) - 1)
    checked = 0
    for i in sorted(rows):
        got = series.at(i, market.asof(i))
        if i < WINDOW - 1:
            assert got is None
            continue
        assert got is not None, market.dates[i]
        assert_same(got, per_day(market, i, p))
        checked += 1
    assert checked > 150


def test_states_and_indicators_vary_over_the_history(market, series):
    """The rows read are not one repeated value: every EDR state occurs, RSI spans both sides."""
    states, rsi = set(), []
    for i in range(WINDOW, len(market), 23):
        hp = series.at(i, market.asof(i))
        states.add(int(hp.official.state))
        rsi.append(hp.indicators["rsi_spx"])
    assert states == {0, 1, 2, 3, 4}
    assert min(rsi) < 30 < 70 < max(rsi)


def test_a_gap_in_the_closes_falls_back_to_the_per_day_pass(market):
    """A missing VIX close, and a row that is not a session, make every window holding it None
    (the per-day pass decides); windows clear of them still match."""
    frame = market.frame.iloc[2000:2400].copy()
    frame.iloc[200, frame.columns.get_loc("vix")] = np.nan
    saturday = frame.index[300] + pd.Timedelta(days=(5 - frame.index[300].day_of_week) % 7)
    assert not cal.is_session(saturday.date())
    extra = frame.iloc[[300]].copy()
    extra.index = pd.DatetimeIndex([saturday])
    frame = pd.concat([frame, extra]).sort_index()
    s = HistorySeries(frame, WINDOW, Params())
    sat = int(np.flatnonzero(frame.index == saturday)[0])

    def asof(i: int) -> datetime:
        day = frame.index[i].date()
        day = day if cal.is_session(day) else cal.previous_session(day)
        return cal.session_open_close(day)[1] + timedelta(minutes=30)

    for i in range(WINDOW - 1, len(frame)):
        if frame.index[i] == saturday:
            continue
        got = s.at(i, asof(i))
        holds_gap = i - WINDOW < 200 <= i or i - WINDOW < sat <= i
        if holds_gap:
            assert got is None, i
        else:
            ref = _compute_history_pass(
                _history_upto(frame.iloc[i + 1 - WINDOW: i + 1], asof(i)), Params())
            assert_same(got, ref)


def test_asof_before_the_rows_close_is_refused(market, series):
    """Before the day's official VIX close the per-day pass would cut the window a day
    earlier: the series says None rather than hand over the wrong row."""
    i = len(market) - 10
    close = cal.session_open_close(market.dates[i])[1]
    assert series.at(i, close - timedelta(minutes=5)) is None
    assert series.at(i, market.asof(i)) is not None


def test_evaluate_with_the_series_gives_the_same_records(market, series):
    i = int(np.searchsorted(np.array(market.dates, dtype="datetime64[D]"),
                            np.datetime64("2020-03-09", "D")))
    asof, snap = market.asof(i), market.snapshot(i)
    hist = market.history_window(i, WINDOW)
    exp = cal.spx_monthly_expiry(2020, 4)
    s = float(market.spx[i])
    k2, k3 = math.floor(s * 0.9 / 5) * 5, math.ceil(s * 1.1 / 5) * 5
    pos = [Position(id=1, root="SPXW", expiry=exp, k1=k2 - 50, k2=k2, k3=k3, k4=k3 + 50, qty=1,
                    entry_credit=8.0, opened=market.dates[i - 10])]
    hp = series.at(i, asof)
    assert hp is not None
    a = evaluate(pos, snap, hist, None, Params(), asof, history_pass=hp)
    b = evaluate(pos, snap, hist, None, Params(), asof)
    assert a.market == b.market
    assert [r.to_dict() for r in a.positions] == [r.to_dict() for r in b.positions]
    assert a.market.state == "EXTREME"


def test_the_replay_reads_the_series_and_trades_as_without_it(market, monkeypatch):
    """Every evaluated day of a 2018 quarter takes its pass from the series, and the trades and
    equity equal a run where the series is switched off (every day's pass computed per day)."""
    from bot.backtest.config import BacktestConfig
    from bot.backtest.replay import Replay
    from bot.marketdata.events import load_events

    cfg = dataclasses.replace(BacktestConfig(), start=date(2018, 1, 2), end=date(2018, 3, 29))
    events = load_events()
    fast = Replay(cfg, market, events)
    assert all(fast.series.at(i, market.asof(i)) is not None for i in range(fast.lo, fast.hi))
    a = fast.run()
    monkeypatch.setattr(HistorySeries, "at", lambda self, i, asof: None)
    b = Replay(cfg, market, events).run()
    for v in a.books:
        assert [t.row() for t in a.books[v].trades] == [t.row() for t in b.books[v].trades]
        assert a.books[v].equity == b.books[v].equity
    assert sum(len(bk.trades) for bk in a.books.values()) > 0
