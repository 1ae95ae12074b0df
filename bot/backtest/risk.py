"""Per-trade risk-normalised figures (the CNDR comparison table): every trade in units of its own
risk, r_i = P&L_i / (100 · qty · W_i), W_i its wider wing, so trades of different widths and
eras add up to "widths won or lost".

The metric functions are pure over arrays (tested on hand-built trade lists); `summary` applies
them to one variant of a `BacktestResult`, overall and per decade.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from bot.backtest.replay import BacktestResult, Trade

TRADING_DAYS = 252
DEFAULT_COSTS = {"commission_spx": 1.0, "commission_vix": 1.0, "slippage_frac": 0.25}


@dataclass(frozen=True)
class RiskTrade:
    """What the metrics need of one trade: when its P&L was realised and r_i in widths."""

    exit_date: date
    r: float


def wider_wing(strikes: Sequence[float]) -> float:
    k1, k2, k3, k4 = strikes
    return max(k2 - k1, k4 - k3)


def trade_r(t: Trade, multiplier: float) -> float:
    """r_i in widths: the wider wing of the entry and final condors (a roll may widen it)."""
    w = wider_wing(t.entry_strikes)
    if t.final_strikes is not None:
        w = max(w, wider_wing(t.final_strikes))
    return t.pnl / (multiplier * t.qty * w)


def annual_return_on_risk(trades: Sequence[RiskTrade]) -> float:
    """Mean over calendar years (of the exit dates) of Σ r_i within the year. Only years with
    at least one trade count (a window's partial first/last year is still a year)."""
    if not trades:
        return float("nan")
    by_year: dict[int, float] = {}
    for t in trades:
        by_year[t.exit_date.year] = by_year.get(t.exit_date.year, 0.0) + t.r
    return float(np.mean(list(by_year.values())))


def win_rate(trades: Sequence[RiskTrade]) -> float:
    """Share of trades with r_i > 0 (a zero P&L is not a win)."""
    if not trades:
        return float("nan")
    return sum(t.r > 0 for t in trades) / len(trades)


def max_drawdown_widths(trades: Sequence[RiskTrade]) -> float:
    """Largest peak-to-trough fall of the running Σ r_i in exit order, the peak starting at
    0 (before the first trade); 0 when it never falls."""
    if not trades:
        return 0.0
    run = np.concatenate([[0.0], np.cumsum([t.r for t in sorted(trades, key=_by_exit)])])
    return float((np.maximum.accumulate(run) - run).max())


def worst_month_widths(trades: Sequence[RiskTrade]) -> float:
    """The lowest calendar-month Σ r_i (by exit month) among months with a trade."""
    if not trades:
        return float("nan")
    by_month: dict[tuple[int, int], float] = {}
    for t in trades:
        key = (t.exit_date.year, t.exit_date.month)
        by_month[key] = by_month.get(key, 0.0) + t.r
    return float(min(by_month.values()))


def sharpe_daily(daily_r: np.ndarray) -> float:
    """mean / sd (ddof 1) of daily P&L in widths × √252, zero risk-free rate; flat days count
    as 0."""
    x = np.asarray(daily_r, float)
    if x.size < 2:
        return float("nan")
    sd = float(x.std(ddof=1))
    return float(x.mean()) / sd * math.sqrt(TRADING_DAYS) if sd > 0 else float("nan")


def _by_exit(t: RiskTrade) -> date:
    return t.exit_date


def daily_widths(dates: list[date], equity: np.ndarray, trades: list[Trade],
                 multiplier: float) -> np.ndarray:
    """Each session's equity change in widths of the trade it belongs to: days after entry up
    to the exit (the exit day's settlement move belongs to the trade closing, even when the
    next one enters that close); the entry day itself to the trade entered. Flat days: 0."""
    eq = np.asarray(equity, float)
    change = np.diff(np.concatenate([[0.0], eq]))
    risk = np.full(len(dates), np.nan)
    day64 = np.array(dates, dtype="datetime64[D]")
    for t in trades:
        r_usd = multiplier * t.qty * max(wider_wing(t.entry_strikes),
                                         wider_wing(t.final_strikes or t.entry_strikes))
        end = t.exit_date or dates[-1]
        lo = np.searchsorted(day64, np.datetime64(t.entry_date, "D"))
        hi = np.searchsorted(day64, np.datetime64(end, "D"), side="right")
        seg = risk[lo:hi]
        if seg.size and np.isnan(seg[0]):
            seg[0] = r_usd  # the entry day, unless a closing trade already owns it
        seg[1:] = r_usd
    out = np.zeros(len(dates))
    ok = np.isfinite(risk)
    out[ok] = change[ok] / risk[ok]
    return out


def _block(trades: list[Trade], rts: list[RiskTrade], daily: np.ndarray) -> dict:
    return {
        "annual_return_on_risk": annual_return_on_risk(rts),
        "win_rate": win_rate(rts),
        "max_drawdown_widths": max_drawdown_widths(rts),
        "worst_month_widths": worst_month_widths(rts),
        "sharpe_daily": sharpe_daily(daily),
        "hedge_paid_usd": float(sum(t.hedge_paid_usd for t in trades)),
        "hedge_earned_usd": float(sum(t.hedge_received_usd for t in trades)),
        "trades": len(trades),
    }


def costs_label(result: BacktestResult) -> str:
    """"mid" (no commission, no slippage), "default" (the CLI's defaults) or "custom"."""
    c = result.config
    now = {"commission_spx": c.commission_spx, "commission_vix": c.commission_vix,
           "slippage_frac": c.slippage_frac}
    if not any(now.values()):
        return "mid"
    default_spread = (c.spx_spread_min, c.spx_spread_frac, c.vix_spread_min,
                      c.vix_spread_frac) == (0.10, 0.05, 0.05, 0.05)
    return "default" if now == DEFAULT_COSTS and default_spread else "custom"


def decade_of(d: date) -> str:
    return f"{d.year // 10 * 10}s"


def summary(result: BacktestResult, variant) -> dict:
    """The JSON block of one variant: overall, and `by_decade` (trades by exit date, daily
    Sharpe over the decade's sessions)."""
    mult = result.config.params.spx_multiplier
    trades = [t for t in result.books[variant].trades if t.exit_date is not None]
    rts = [RiskTrade(t.exit_date, trade_r(t, mult)) for t in trades]
    daily = daily_widths(result.dates, result.equity(variant), trades, mult) \
        if result.dates else np.zeros(0)
    out = _block(trades, rts, daily)
    out["costs"] = costs_label(result)
    decades = sorted({decade_of(d) for d in result.dates})
    dec_of_day = np.array([decade_of(d) for d in result.dates])
    out["by_decade"] = {
        dec: _block([t for t in trades if decade_of(t.exit_date) == dec],
                    [r for r in rts if decade_of(r.exit_date) == dec],
                    daily[dec_of_day == dec])
        for dec in decades}
    return out


def variants_json(result: BacktestResult) -> dict:
    return {"variants": {v.value: summary(result, v) for v in result.books}}


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.1%}"


def _num(x: float, fmt: str) -> str:
    return "n/a" if not math.isfinite(x) else format(x, fmt)


def risk_table(result: BacktestResult) -> str:
    """The per-trade risk table in text: one block per variant, overall then each decade."""
    js = variants_json(result)["variants"]
    head = (f"{'variant':<10}{'period':<8}{'trades':>7}{'ret/yr':>9}{'win':>8}"
            f"{'maxDD w':>9}{'worst mo':>10}{'Sharpe':>8}{'hedge paid $':>14}"
            f"{'earned $':>11}")
    lines = [f"Per-trade risk (r = P&L / (100·qty·wider wing)), costs: "
             f"{costs_label(result)}", head]
    for name, v in js.items():
        for period, b in [("all", v), *v["by_decade"].items()]:
            lines.append(
                f"{name:<10}{period:<8}{b['trades']:>7}{_pct(b['annual_return_on_risk']):>9}"
                f"{_pct(b['win_rate']):>8}{_num(b['max_drawdown_widths'], '.2f'):>9}"
                f"{_num(b['worst_month_widths'], '.2f'):>10}{_num(b['sharpe_daily'], '.2f'):>8}"
                f"{b['hedge_paid_usd']:>14,.0f}{b['hedge_earned_usd']:>11,.0f}")
    return "\n".join(lines)
