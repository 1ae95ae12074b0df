"""The CNDR program: its entry calendar, the per-trade risk metrics on hand-built trade lists,
the JSON shape, and a year of real history checked against the program's invariants."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pytest

from bot.backtest.config import BacktestConfig, Program, StrikeMode, Variant
from bot.backtest.market import MarketDays
from bot.backtest.pricing import leg_quotes, years_to
from bot.backtest.replay import Trade, cndr_entry_expiry, run_backtest
from bot.backtest.risk import (
    RiskTrade,
    annual_return_on_risk,
    daily_widths,
    max_drawdown_widths,
    sharpe_daily,
    trade_r,
    variants_json,
    win_rate,
    worst_month_widths,
)
from bot.marketdata.events import load_events
from bot.marketdata.history import load_history
from core import calendar as cal

# --- the entry calendar ------------------------------------------------------------------------


@pytest.mark.parametrize("today, expiry", [
    (date(2017, 1, 20), date(2017, 2, 17)),  # third Fridays, 28 days apart
    (date(2017, 3, 17), date(2017, 4, 21)),  # 35 days
    (date(2017, 12, 15), date(2018, 1, 19)),  # across the year end
    (date(2014, 3, 21), date(2014, 4, 17)),  # Apr 18 2014 was Good Friday: Thursday's close
    (date(2014, 4, 17), date(2014, 5, 16)),  # the Good Friday expiry is itself an entry day
    (date(2026, 5, 15), date(2026, 6, 18)),  # 19 Jun 2026 (Juneteenth) is the third Friday
])
def test_entry_only_on_monthly_expiry_days(today, expiry):
    assert cndr_entry_expiry(today) == expiry


@pytest.mark.parametrize("today", [
    date(2017, 1, 13),  # second Friday
    date(2017, 1, 19),  # the day before the third Friday
    date(2017, 1, 27),  # fourth Friday
    date(2014, 4, 18),  # Good Friday (no session): the expiry was the Thursday
])
def test_no_entry_on_other_days(today):
    assert cndr_entry_expiry(today) is None


def test_every_entry_day_of_a_decade_is_a_third_friday_or_the_session_before():
    days = [d for d in cal.sessions_in_range(date(2010, 1, 1), date(2019, 12, 31))
            if cndr_entry_expiry(d) is not None]
    assert len(days) == 120  # one a month
    for d in days:
        tf = cal.third_friday(d.year, d.month)
        assert d == tf or (d < tf and not cal.is_session(tf) and cal.next_session(d) > tf)
        assert (cndr_entry_expiry(d) - d).days in (27, 28, 29, 34, 35, 36)


# --- metrics on hand-built trade lists ---------------------------------------------------------

# r: +0.2 (Jan 1999), −0.5 (Jan 1999), +0.3 (Mar 1999), +0.1 (Feb 2000), −0.4 (Feb 2000),
# +0.2 (Jun 2000)
HAND = [RiskTrade(date(1999, 1, 15), 0.2), RiskTrade(date(1999, 1, 29), -0.5),
        RiskTrade(date(1999, 3, 19), 0.3), RiskTrade(date(2000, 2, 18), 0.1),
        RiskTrade(date(2000, 2, 25), -0.4), RiskTrade(date(2000, 6, 16), 0.2)]


def test_annual_return_is_the_mean_of_yearly_sums():
    # 1999: 0.2 − 0.5 + 0.3 = 0.0; 2000: 0.1 − 0.4 + 0.2 = −0.1; mean −0.05
    assert annual_return_on_risk(HAND) == pytest.approx(-0.05)
    assert math.isnan(annual_return_on_risk([]))


def test_win_rate_counts_strictly_positive_trades():
    assert win_rate(HAND) == pytest.approx(4 / 6)
    assert win_rate([RiskTrade(date(2000, 1, 3), 0.0)]) == 0.0


def test_max_drawdown_in_widths():
    # running Σ: 0, .2, −.3, 0, .1, −.3, −.1 → peak .2 then −.3 (0.5); peak .1 then −.3 (0.4)
    assert max_drawdown_widths(HAND) == pytest.approx(0.5)
    # order is by exit date, not by list order
    assert max_drawdown_widths(list(reversed(HAND))) == pytest.approx(0.5)
    # a first loss counts from the starting 0
    assert max_drawdown_widths([RiskTrade(date(2000, 1, 3), -0.7)]) == pytest.approx(0.7)
    assert max_drawdown_widths([RiskTrade(date(2000, 1, 3), 0.3)]) == 0.0


def test_worst_month_in_widths():
    # Jan 99 −0.3, Mar 99 +0.3, Feb 00 −0.3, Jun 00 +0.2 → −0.3
    assert worst_month_widths(HAND) == pytest.approx(-0.3)
    assert worst_month_widths(HAND[2:3]) == pytest.approx(0.3)


def test_sharpe_daily_by_hand():
    x = np.array([0.01, -0.02, 0.03, 0.0])
    # mean 0.005, sd (ddof 1) = sqrt(((.005)² + (.025)² + (.025)² + (.005)²)/3) = 0.0208167
    assert sharpe_daily(x) == pytest.approx(0.005 / 0.0208167 * math.sqrt(252), rel=1e-5)
    assert math.isnan(sharpe_daily(np.zeros(5)))


def _trade(strikes, pnl_usd, qty=1, entry=date(2000, 1, 21), exit_=date(2000, 2, 18),
           final=None):
    t = Trade("static", 1, entry, strikes, exit_, qty, 1.0, exit_date=exit_,
              final_strikes=final or strikes)
    t.condor_usd = pnl_usd
    return t


def test_trade_r_uses_the_wider_wing_and_qty():
    # wings 75 (put) and 40 (call): W = 75; −1,500 $ on 2 lots → −1500 / (100·2·75) = −0.1
    t = _trade((1000, 1075, 1200, 1240), -1500.0, qty=2)
    assert trade_r(t, 100.0) == pytest.approx(-0.1)
    # a roll to a wider condor: the wider of entry and final wings (100)
    t2 = _trade((1000, 1075, 1200, 1240), 500.0, final=(900, 1000, 1200, 1240))
    assert trade_r(t2, 100.0) == pytest.approx(0.05)


def test_daily_widths_split_the_overlap_day_to_the_closing_trade():
    days = [date(2000, 1, 20), date(2000, 1, 21), date(2000, 1, 24), date(2000, 2, 18),
            date(2000, 2, 22)]
    a = _trade((1000, 1050, 1200, 1250), 0.0, entry=days[1], exit_=days[3])  # W 50
    b = _trade((1000, 1100, 1200, 1250), 0.0, entry=days[3], exit_=days[4])  # W 100
    equity = np.array([0.0, -10.0, 90.0, 590.0, 390.0])  # changes 0, −10, 100, 500, −200
    got = daily_widths(days, equity, [a, b], 100.0)
    assert got == pytest.approx([0.0, -10 / 5000, 100 / 5000, 500 / 5000, -200 / 10000])


# --- a year of real history --------------------------------------------------------------------


@pytest.fixture(scope="module")
def year_2018():
    history = load_history(end=date(2019, 3, 31))
    market = MarketDays.from_history(history)
    cfg = BacktestConfig(start=date(2018, 1, 2), end=date(2018, 12, 31), program=Program.CNDR,
                         strikes=StrikeMode.DELTA)
    return market, history, run_backtest(cfg, market, load_events())


def test_cndr_year_keeps_the_program_invariants(year_2018):
    market, history, result = year_2018
    static = result.books[Variant.STATIC].trades
    assert len(static) == 12  # one entry per monthly expiry day of 2018 (Dec's still open)
    p = result.config.params
    for v, book in result.books.items():
        for t in book.trades:
            assert cndr_entry_expiry(t.entry_date) == t.entry_expiry, (v, t.entry_date)
            assert (t.entry_expiry - t.entry_date).days in (28, 35)
    for t in static:
        i = market.dates.index(t.entry_date)
        _, dl = leg_quotes(float(market.spx[i]), np.array([t.entry_strikes]),
                           years_to(market.asof(i), [t.entry_expiry], False),
                           float(market.vix[i]), market.opt("vix9d", i), market.opt("vix3m", i),
                           result.config.params.rate_default if not np.isfinite(market.rate[i])
                           else float(market.rate[i]), p.dividend_yield, p)
        d = np.abs(dl[0])
        assert d[1] <= 0.20 and d[2] <= 0.20, (t.entry_date, d)
        assert d[1] > 0.15 and d[2] > 0.15, (t.entry_date, d)  # the nearest grid strike ≤ 20Δ
        assert 0.03 < d[0] < 0.075 and 0.03 < d[3] < 0.075, (t.entry_date, d)
        if t.exit_reason == "EXPIRED":  # held to expiry, settled on that day's close
            s = float(history.loc[str(t.entry_expiry), "spx"])
            k1, k2, k3, k4 = t.entry_strikes
            intrinsic = (max(k2 - s, 0) - max(k1 - s, 0)) + (max(s - k3, 0) - max(s - k4, 0))
            assert t.exit_date == t.entry_expiry
            assert t.pnl == pytest.approx((t.entry_credit - intrinsic) * 100 - 4.0, abs=1e-6)


def test_json_shape(year_2018):
    _, _, result = year_2018
    js = json.loads(json.dumps(variants_json(result)))
    assert set(js) == {"variants"}
    assert set(js["variants"]) == {"alvh", "no_hedge", "static"}
    keys = {"annual_return_on_risk", "win_rate", "max_drawdown_widths", "worst_month_widths",
            "sharpe_daily", "hedge_paid_usd", "hedge_earned_usd", "trades"}
    for name, v in js["variants"].items():
        assert keys | {"costs", "by_decade"} == set(v), name
        assert v["costs"] == "default"
        assert set(v["by_decade"]) == {"2010s"}
        assert set(v["by_decade"]["2010s"]) == keys
        assert 0 <= v["win_rate"] <= 1  # a fraction, not a percent
    static = js["variants"]["static"]
    assert static["hedge_paid_usd"] == 0 and static["trades"] == 12
    assert js["variants"]["alvh"]["hedge_earned_usd"] >= 0


def test_cli_json_and_params(tmp_path, capsys):
    from bot.cli import main

    params = tmp_path / "p.json"
    params.write_text(json.dumps({"smile_c": 0.84, "smile_rho": -0.5, "smile_eta": 0.6,
                                  "smile_gamma": 0.5}))
    rc = main(["backtest", "--program", "cndr", "--start", "2018-01-02", "--end", "2018-03-31",
               "--variants", "static", "--commission", "0", "--slippage", "0", "--quiet",
               "--json", "--params", str(params), "--out", str(tmp_path / "o")])
    assert rc == 0
    js = json.loads(capsys.readouterr().out)
    s = js["variants"]["static"]
    assert s["costs"] == "mid" and s["trades"] == 3
    assert (tmp_path / "o" / "report.txt").read_text().count("Per-trade risk") == 1
