"""Properties of the replay over random windows and cost settings (hypothesis, few examples:
each example is a real replay)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.backtest.config import BacktestConfig, Program, Variant
from bot.backtest.market import MarketDays
from bot.backtest.replay import run_backtest
from bot.marketdata.events import load_events
from bot.marketdata.history import load_history

HIST = load_history(start=date(2007, 1, 1), end=date(2021, 12, 31))
MARKET = MarketDays.from_history(HIST)
EVENTS = load_events()

windows = st.tuples(st.dates(date(2008, 1, 1), date(2020, 6, 30)), st.integers(20, 60))
costs = st.tuples(st.sampled_from([0.0, 0.65, 1.5]), st.sampled_from([0.0, 0.25, 0.5, 1.0]))
SETTINGS = settings(max_examples=8, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(windows, costs, st.sampled_from(list(Program)))
def test_books_balance_and_static_pays_intrinsic(window, cost, program):
    start, days = window
    commission, slip = cost
    cfg = BacktestConfig(start=start, end=start + timedelta(days=days), program=program,
                         width=25.0 if program is Program.SHORT else 50.0,
                         commission_spx=commission, commission_vix=commission,
                         slippage_frac=slip)
    res = run_backtest(cfg, MARKET, EVENTS)
    if not res.dates:
        return
    for v, book in res.books.items():
        assert sum(t.pnl for t in book.trades) == pytest.approx(res.equity(v)[-1], abs=1e-6)
        for t in book.trades:
            assert t.entry_date <= t.exit_date
            assert t.commissions_usd >= 0 and t.hedge_paid_usd >= 0
    for t in res.books[Variant.STATIC].trades:
        if t.exit_reason != "EXPIRED":
            continue
        s = float(HIST.loc[str(t.entry_expiry), "spx"])
        k1, k2, k3, k4 = t.entry_strikes
        payoff = max(k2 - s, 0) - max(k1 - s, 0) + max(s - k3, 0) - max(s - k4, 0)
        expected = (t.entry_credit - payoff) * 100 * t.qty - 4 * commission * t.qty
        assert t.pnl == pytest.approx(expected, abs=1e-6)


@SETTINGS
@given(windows)
def test_more_slippage_never_helps_the_static_condor(window):
    start, days = window
    end = start + timedelta(days=days)
    totals = []
    for slip in (0.0, 0.5):
        cfg = BacktestConfig(start=start, end=end, slippage_frac=slip,
                             variants=(Variant.STATIC,))
        res = run_backtest(cfg, MARKET, EVENTS)
        totals.append(res.equity(Variant.STATIC)[-1] if res.dates else 0.0)
    assert totals[1] <= totals[0] + 1e-9
