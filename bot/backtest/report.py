"""Backtest output: the per-variant table, the trades CSV and the equity-curve PNG."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.backtest import MODEL_PRICING_NOTE
from bot.backtest.replay import BacktestResult, Trade

TRADING_DAYS = 252


@dataclass(frozen=True)
class Metrics:
    variant: str
    trades: int
    total_usd: float
    total_return: float  # on risk capital
    annual_return: float  # simple: total / years (fixed size, no compounding)
    win_rate: float
    avg_win: float
    avg_loss: float
    max_drawdown_usd: float
    max_drawdown: float  # of risk capital
    worst_month_usd: float
    sharpe: float
    sortino: float
    hedge_cost_usd: float  # premium paid for VIX hedges
    hedge_pnl_usd: float
    rolls: int
    commissions_usd: float


def _ratio(x: float, y: float) -> float:
    return x / y if y else float("nan")


def metrics(result: BacktestResult, variant) -> Metrics:
    """Daily figures from the equity curve (dollars). Returns are on the risk capital (widest
    wing × 100 × qty, `BacktestResult.risk_capital`); Sharpe and Sortino on daily equity
    changes / risk capital, annualised with √252, zero risk-free rate."""
    book = result.books[variant]
    eq = result.equity(variant)
    cap = result.risk_capital
    trades: list[Trade] = book.trades
    pnl = np.array([t.pnl for t in trades], float)
    wins, losses = pnl[pnl > 0], pnl[pnl <= 0]
    total = float(eq[-1]) if eq.size else 0.0
    years = len(result.dates) / TRADING_DAYS
    daily = np.diff(np.concatenate([[0.0], eq])) / cap if eq.size else np.zeros(0)
    sd = float(daily.std(ddof=1)) if daily.size > 1 else float("nan")
    down = daily[daily < 0]
    dd_sd = float(np.sqrt((down**2).sum() / daily.size)) if daily.size else float("nan")
    mean = float(daily.mean()) if daily.size else float("nan")
    peak = np.maximum.accumulate(np.concatenate([[0.0], eq]))
    dd = float((peak - np.concatenate([[0.0], eq])).max()) if eq.size else 0.0
    worst_month = 0.0
    if eq.size:
        months = np.array([d.year * 12 + d.month for d in result.dates])
        ends = np.flatnonzero(np.r_[months[1:] != months[:-1], True])
        month_eq = np.concatenate([[0.0], eq[ends]])
        worst_month = float(np.diff(month_eq).min())
    return Metrics(
        variant=str(variant.value), trades=len(trades), total_usd=total,
        total_return=total / cap, annual_return=_ratio(total / cap, years),
        win_rate=_ratio(float(wins.size), float(pnl.size)),
        avg_win=float(wins.mean()) if wins.size else float("nan"),
        avg_loss=float(losses.mean()) if losses.size else float("nan"),
        max_drawdown_usd=dd, max_drawdown=dd / cap, worst_month_usd=worst_month,
        sharpe=_ratio(mean, sd) * math.sqrt(TRADING_DAYS),
        sortino=_ratio(mean, dd_sd) * math.sqrt(TRADING_DAYS),
        hedge_cost_usd=float(sum(t.hedge_paid_usd for t in trades)),
        hedge_pnl_usd=float(sum(t.hedge_usd for t in trades)),
        rolls=int(sum(t.rolls for t in trades)),
        commissions_usd=float(sum(t.commissions_usd for t in trades)),
    )


ROWS = (
    ("trades", "Trades", "{:,.0f}"),
    ("total_usd", "Total P&L $", "{:,.0f}"),
    ("total_return", "Total return on risk capital", "{:.1%}"),
    ("annual_return", "Annualised return (simple)", "{:.2%}"),
    ("win_rate", "Win rate", "{:.1%}"),
    ("avg_win", "Average win $", "{:,.0f}"),
    ("avg_loss", "Average loss $", "{:,.0f}"),
    ("max_drawdown_usd", "Max drawdown $", "{:,.0f}"),
    ("max_drawdown", "Max drawdown / risk capital", "{:.1%}"),
    ("worst_month_usd", "Worst month $", "{:,.0f}"),
    ("sharpe", "Sharpe (daily, √252)", "{:.2f}"),
    ("sortino", "Sortino (daily, √252)", "{:.2f}"),
    ("hedge_cost_usd", "Hedge premium paid $", "{:,.0f}"),
    ("hedge_pnl_usd", "Hedge net P&L $", "{:,.0f}"),
    ("rolls", "Rolls", "{:,.0f}"),
    ("commissions_usd", "Commissions $", "{:,.0f}"),
)


def _fmt(fmt: str, x: float) -> str:
    return "n/a" if isinstance(x, float) and not math.isfinite(x) else fmt.format(x)


def table(result: BacktestResult) -> str:
    """The text report: settings, the note on model pricing, one column per variant."""
    c = result.config
    ms = [metrics(result, v) for v in result.books]
    if c.strikes.value == "tier":
        how = f"tier {c.tier:g} EDR_h, width {c.width:g}"
    else:
        wings = (f"wings {c.wing_delta:g} delta" if c.wing_delta is not None
                 else f"width {c.width:g}")
        how = f"shorts {c.short_delta:g} delta, {wings}"
    head = [
        f"ALVH backtest: {c.program.value} program, strikes by {c.strikes.value} ({how}), "
        f"qty {c.qty}",
        (f"Sessions {result.dates[0]} .. {result.dates[-1]} ({len(result.dates):,})"
         if result.dates else "No sessions in the window"),
        f"Risk capital ${result.risk_capital:,.0f}; commissions ${c.commission_spx:g}/SPX "
        f"contract, ${c.commission_vix:g}/VIX contract; slippage {c.slippage_frac:.0%} of the "
        f"assumed bid-ask (SPX max({c.spx_spread_min:g}, {c.spx_spread_frac:.0%}·price), VIX "
        f"max({c.vix_spread_min:g}, {c.vix_spread_frac:.0%}·price))",
        "NOTE: " + MODEL_PRICING_NOTE,
    ]
    if result.interrupted_at is not None:
        head.append(f"INTERRUPTED at {result.interrupted_at}: partial results, open trades "
                    "valued at the last close.")
    if result.skipped_entries:
        head.append(f"{result.skipped_entries} entry day(s) skipped: the modelled credit after "
                    "costs was too small")
    w0 = max(len(label) for _, label, _ in ROWS) + 2
    cols = [m.variant for m in ms]
    lines = [*head, "", "".ljust(w0) + "".join(v.rjust(14) for v in cols)]
    for key, label, fmt in ROWS:
        lines.append(label.ljust(w0) + "".join(_fmt(fmt, getattr(m, key)).rjust(14) for m in ms))
    return "\n".join(lines)


def write_trades(result: BacktestResult, path: Path) -> int:
    rows = [t.row() for b in result.books.values() for t in b.trades]
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(rows[0]) if rows else ["variant"]
    with path.open("w", newline="") as f:
        f.write(f"# {MODEL_PRICING_NOTE}\n")
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def write_equity_png(result: BacktestResult, path: Path) -> None:
    """Equity curves of every variant (matplotlib OO API on an Agg canvas: no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.array(result.dates, dtype="datetime64[D]")
    for v in result.books:
        ax.plot(x, result.equity(v), label=v.value, linewidth=1.0)
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.set_ylabel("cumulative P&L, $")
    c = result.config
    ax.set_title(f"ALVH backtest, {c.program.value} program: equity by variant")
    ax.legend(loc="upper left")
    fig.text(0.01, 0.01, MODEL_PRICING_NOTE, fontsize=7, color="dimgray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
