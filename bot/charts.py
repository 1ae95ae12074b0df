"""Charts as PNG bytes: the payoff picture of a condor (and of a roll) and the EDR history.

I/O-free: functions take engine data and return bytes. Matplotlib's object API
(`Figure` + `FigureCanvasAgg`) needs no global backend and is safe in worker threads; the bot
calls these in `asyncio.to_thread`. Sized for a phone: 1200 × 900 px, large type, the legend
below the plot (numbers live in the legend, so no label sits on a curve), Okabe–Ito colours
(colour-blind safe), and line styles that differ as well as colours.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from core import calendar as cal
from core.edr import edr_pct, implied_sigma_many
from core.params import DEFAULT_PARAMS, Params
from core.payoff import PayoffCurves

# Okabe & Ito (2008), colour-blind-safe palette
BLACK, ORANGE, SKY, GREEN = "#000000", "#E69F00", "#56B4E9", "#009E73"
YELLOW, BLUE, VERMILLION, PURPLE = "#F0E442", "#0072B2", "#D55E00", "#CC79A7"
GREY = "#777777"

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 6.0, 150  # 1200 × 900 px: full width on a phone
PIXELS = (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))
PNG_COMPRESS_LEVEL = 3  # zlib level 3: ~25 ms faster than the default 6, ~5 % larger
FONT = {"font.size": 13, "axes.titlesize": 14, "axes.labelsize": 13, "legend.fontsize": 11,
        "xtick.labelsize": 12, "ytick.labelsize": 12}
EDR_HISTORY_CLOSES = 120  # issue 8: the last 120 official closes
STATE_COLOURS = {"APPROACHING": YELLOW, "BREACHED": ORANGE, "ELEVATED": VERMILLION,
                 "EXTREME": PURPLE}
BAND_ALPHA = 0.22


class ChartError(ValueError):
    """No chart can be drawn from these inputs; the message says why."""


def _figure() -> Figure:
    import matplotlib

    with matplotlib.rc_context(FONT):  # rc is read when artists are created
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
    return buf.getvalue()


def _dollars(x: float, _pos: int | None = None) -> str:
    return f"−${abs(x):,.0f}" if x < 0 else f"${x:,.0f}"


def _points(x: float, _pos: int | None = None) -> str:
    return f"{x:,.0f}"


def _time_label(asof: datetime) -> str:
    return asof.astimezone(cal.ET).strftime("data as of %Y-%m-%d %H:%M ET")


def _k(x: float) -> str:
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def condor_name(c: PayoffCurves) -> str:
    p = c.position
    strikes = "/".join(_k(k) for k in (p.k1, p.k2, p.k3, p.k4))
    ident = f"#{p.id} " if p.id else ""
    return f"{ident}{p.root} {p.expiry:%Y-%m-%d} {strikes} ×{p.qty}"


# --- payoff ----------------------------------------------------------------------------------


def _payoff_axes(fig: Figure, c: PayoffCurves):
    import matplotlib

    with matplotlib.rc_context(FONT):
        ax = fig.add_subplot()
        band = (c.spot_now - c.edr_h, c.spot_now + c.edr_h)
        ax.axvspan(*band, color=SKY, alpha=BAND_ALPHA, lw=0,
                   label=f"±1 EDR_h now ({_points(band[0])}–{_points(band[1])})")
        ax.axhline(0.0, color=GREY, lw=1.0)
        ax.axvline(c.spot_now, color=BLACK, lw=1.6, ls=":", label=f"SPX now {c.spot_now:,.2f}")
        ax.set_xlabel("SPX (index points)")
        ax.set_ylabel("P&L (US$, whole position)")
        ax.xaxis.set_major_formatter(FuncFormatter(_points))
        ax.yaxis.set_major_formatter(FuncFormatter(_dollars))
        ax.grid(True, alpha=0.3)
        ax.set_xlim(c.spot[0], c.spot[-1])
    return ax


def _strike_lines(ax, c: PayoffCurves, colour: str, prefix: str = "") -> None:
    k = c.strikes_spx
    ax.vlines(k[[1, 2]], 0, 1, transform=ax.get_xaxis_transform(), colors=colour, lw=1.3,
              ls="--", label=f"{prefix}short strikes {_k(k[1])} / {_k(k[2])}")
    ax.vlines(k[[0, 3]], 0, 1, transform=ax.get_xaxis_transform(), colors=colour, lw=1.0,
              ls=(0, (1, 3)), label=f"{prefix}long strikes {_k(k[0])} / {_k(k[3])}")


def _breakevens(ax, c: PayoffCurves, colour: str, prefix: str = "") -> None:
    be = c.breakevens_spx
    ax.plot(be, [0.0, 0.0], ls="none", marker="o", ms=9, mfc="white", mec=colour, mew=2.2,
            label=f"{prefix}break-evens {_k(be[0])} / {_k(be[1])}", zorder=5)


def payoff_png(c: PayoffCurves, asof: datetime) -> bytes:
    """The payoff picture of one position: expiry and T+0 P&L, strikes, break-evens, spot, the
    ±1 EDR_h band and, with hedges held, the combined T+0 P&L."""
    import matplotlib

    fig = _figure()
    ax = _payoff_axes(fig, c)
    with matplotlib.rc_context(FONT):
        ax.plot(c.spot, c.expiry_usd, color=BLUE, lw=3.0, label="at expiry")
        ax.plot(c.spot, c.today_usd, color=ORANGE, lw=2.4, ls="--", label="today (T+0)")
        if c.combined_usd is not None:
            ax.plot(c.spot, c.combined_usd, color=GREEN, lw=2.6, ls="-.",
                    label="today with VIX hedge (VIX moved by SPX, §7)")
        _strike_lines(ax, c, VERMILLION)
        _breakevens(ax, c, BLUE)
        ax.set_title(f"{condor_name(c)}\nP&L over SPX ±3 EDR_h · {_time_label(asof)}")
        fig.legend(loc="outside lower center", ncol=2, frameon=False)
    return _png(fig)


def roll_png(old: PayoffCurves, new: PayoffCurves, asof: datetime) -> bytes:
    """Old and new condor on one chart: each at its own expiry and today, P&L of the whole
    campaign (the new condor carries Cn' = Cn + R)."""
    import matplotlib

    fig = _figure()
    ax = _payoff_axes(fig, old)
    with matplotlib.rc_context(FONT):
        ax.plot(old.spot, old.expiry_usd, color=BLUE, lw=3.0,
                label=f"now: at expiry {old.position.expiry:%m-%d}")
        ax.plot(old.spot, old.today_usd, color=BLUE, lw=1.8, ls="--", label="now: today")
        ax.plot(new.spot, new.expiry_usd, color=PURPLE, lw=3.0,
                label=f"after roll: at expiry {new.position.expiry:%m-%d}")
        ax.plot(new.spot, new.today_usd, color=PURPLE, lw=1.8, ls="--", label="after roll: today")
        _breakevens(ax, old, BLUE, "now: ")
        _breakevens(ax, new, PURPLE, "after roll: ")
        _strike_lines(ax, new, VERMILLION, "new ")
        ax.set_title(f"Roll {condor_name(old)}\n→ {condor_name(new)}\n{_time_label(asof)}")
        fig.legend(loc="outside lower center", ncol=2, frameon=False)
    return _png(fig)


# --- EDR history ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EdrHistory:
    """What the EDR history chart draws: official closes (dates, EDR %) and today's reading."""

    dates: tuple[date, ...]
    edr_pct: np.ndarray
    levels: tuple[tuple[str, float], ...]  # (state, enter %) lowest first
    trigger_pct: float
    today: date | None
    today_pct: float | None
    today_state: str | None


def edr_history(history: pd.DataFrame | None, asof: datetime, params: Params = DEFAULT_PARAMS,
                *, today_pct: float | None = None, today_state: str | None = None,
                count: int = EDR_HISTORY_CLOSES) -> EdrHistory:
    """The last `count` official closes of EDR % up to the last official close before `asof`
    (σ = max(VIX, VIX9D) by `core.edr`, as the engine's state replay reads them)."""
    if history is None or len(history) == 0 or "vix" not in history.columns:
        raise ChartError("no VIX close history to chart")
    last_close = cal.et_date(cal.last_official_close(asof, vix=True))
    h = history[history.index <= pd.Timestamp(last_close)]
    vix = h["vix"].to_numpy(dtype=float, na_value=np.nan)
    v9 = (h["vix9d"].to_numpy(dtype=float, na_value=np.nan) if "vix9d" in h.columns else None)
    sigma, _ = implied_sigma_many(vix, v9)
    edr = np.asarray(edr_pct(sigma, params), float)
    keep = np.isfinite(edr) & (edr > 0)
    dates = tuple(d.date() for d in h.index[keep][-count:])
    if not dates:
        raise ChartError("no VIX close history to chart")
    has_today = today_pct is not None and np.isfinite(today_pct)
    return EdrHistory(dates=dates, edr_pct=edr[keep][-count:], levels=params.state_levels(),
                      trigger_pct=params.edr_trigger_pct,
                      today=cal.et_date(asof) if has_today else None,
                      today_pct=float(today_pct) if has_today else None,
                      today_state=today_state if has_today else None)


def edr_history_png(data: EdrHistory, asof: datetime) -> bytes:
    """EDR % closes with the state bands, the trigger line and today's reading."""
    import matplotlib

    fig = _figure()
    with matplotlib.rc_context(FONT):
        ax = fig.add_subplot()
        x = pd.to_datetime(list(data.dates))
        values = list(data.edr_pct) + ([data.today_pct] if data.today_pct is not None else [])
        top = max(max(values), data.trigger_pct) * 1.08
        bottom = min(min(values), data.levels[0][1]) * 0.92
        bounds = [lvl for _, lvl in data.levels] + [np.inf]
        handles = []
        for (state, lo), hi in zip(data.levels, bounds[1:], strict=True):
            colour = STATE_COLOURS.get(state, GREY)
            ax.axhspan(lo, min(hi, top), color=colour, alpha=BAND_ALPHA, lw=0)
            handles.append(Patch(color=colour, alpha=BAND_ALPHA + 0.2,
                                 label=f"{state} ≥ {lo:.2f} %"))
        ax.plot(x, data.edr_pct, color=BLUE, lw=2.4, label="EDR at the official close")
        ax.axhline(data.trigger_pct, color=VERMILLION, lw=2.2, ls="--",
                   label=f"trigger {data.trigger_pct:.2f} %")
        if data.today_pct is not None:
            state = f" ({data.today_state})" if data.today_state else ""
            ax.plot([pd.Timestamp(data.today)], [data.today_pct], ls="none", marker="D", ms=11,
                    mfc=BLACK, mec="white", mew=1.5, zorder=6,
                    label=f"now {data.today_pct:.2f} %{state}")
        ax.set_ylim(bottom, top)
        ax.set_ylabel("EDR (% of SPX per session)")
        ax.set_xlabel("official close date")
        locator = mdates.AutoDateLocator(maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.grid(True, alpha=0.3)
        ax.set_title(f"EDR, last {len(data.dates)} official closes\n{_time_label(asof)}")
        line_handles, _ = ax.get_legend_handles_labels()
        fig.legend(handles=line_handles + handles, loc="outside lower center", ncol=2,
                   frameon=False)
    return _png(fig)
