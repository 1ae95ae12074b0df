"""The history part of the market pass for many days at once (issue 16: the backtest).

The replay evaluates once per session with the trailing `window` closes as its history, and the
market pass re-derived every day, from that window alone, the EDR state replay, MACD, RSI and
realised vol. Here every window is a row of a 2-D array and each recursion runs along the rows
with the same floating-point operations, in the same order, as the one-window code
(`core.evaluate._compute_history_pass` and the `core.indicators` / `core.edr` /
`core.confirm` functions it calls), so a row's pass equals the per-day pass bit for bit
(`tests/test_market_series.py` checks it on the shipped history, warm-up included).

Rows whose window is short (the first `window − 1` rows of the frame) or not clean (a missing
SPX or VIX close, a non-finite EDR, a row that is not an NYSE session) get None: the caller
falls back to the per-day pass. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from core import calendar as cal
from core.confirm import Momentum, breadth_flags
from core.edr import (
    EdrState,
    StateReading,
    _levels,
    edr_pct,
    implied_sigma_many,
    target_states,
)
from core.evaluate import _HistoryPass
from core.indicators import PERCENT, RSI_FLAT
from core.params import DEFAULT_PARAMS, FLOAT_TOL, Params
from core.records import EdrClose

BREADTH_COLUMNS = ("ad_line", "rsp", "spy")


def _col(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in frame.columns:
        return None
    return frame[name].to_numpy(dtype=float, na_value=np.nan)


def _seeded_rows(v: np.ndarray, first: int, span: int, alpha: float) -> np.ndarray:
    """`core.indicators._seeded_recursion` on every row of v (rows clean from `first` on)."""
    out = np.full(v.shape, np.nan)
    seed_at = first + span - 1
    if seed_at >= v.shape[1]:
        return out
    seed = np.mean(np.ascontiguousarray(v[:, first: seed_at + 1]), axis=1)
    out[:, seed_at] = seed
    rest = np.ascontiguousarray(v[:, seed_at + 1:])
    if rest.shape[1]:
        out[:, seed_at + 1:], _ = lfilter([alpha], [1.0, alpha - 1.0], rest, axis=1,
                                          zi=((1.0 - alpha) * seed)[:, None])
    return out


def _macd_rows(w: np.ndarray, p: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`core.indicators.macd` per row (line, signal, histogram)."""
    fast, slow, signal = p.macd_fast, p.macd_slow, p.macd_signal
    line = (_seeded_rows(w, 0, fast, 2.0 / (fast + 1))
            - _seeded_rows(w, 0, slow, 2.0 / (slow + 1)))
    sig = _seeded_rows(line, slow - 1, signal, 2.0 / (signal + 1))
    return line, sig, line - sig


def _rsi_last(w: np.ndarray, period: int) -> np.ndarray:
    """The last value of `core.indicators.rsi_wilder` per row (rows longer than `period`)."""
    d = np.diff(w, axis=1)
    alpha = 1.0 / period
    gain = _seeded_rows(np.maximum(d, 0.0), 0, period, alpha)[:, -1]
    loss = _seeded_rows(np.maximum(-d, 0.0), 0, period, alpha)[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = PERCENT - PERCENT / (1.0 + gain / loss)
    rsi = np.where((loss == 0) & (gain > 0), PERCENT, rsi)
    return np.where((loss == 0) & (gain == 0), RSI_FLAT, rsi)


def _hv_last(log_returns: np.ndarray, window: int) -> np.ndarray:
    """The last value of `core.indicators.realised_vol` per row of log returns; its default
    annualisation (the engine calls it without one)."""
    tail = np.lib.stride_tricks.sliding_window_view(log_returns, window, axis=1)[:, -1, :]
    return (tail.std(axis=1, ddof=1) * math.sqrt(DEFAULT_PARAMS.trading_days_per_year)
            * PERCENT)


def _replay_rows(c: np.ndarray, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """`core.edr.replay_states` on every row (rows of finite EDR closes): states, fast rise."""
    _, exit_ = _levels(p)
    targets = target_states(c, p)
    need = max(1, p.edr_closes_to_step_down)
    tol = FLOAT_TOL
    n, m = c.shape
    states = np.zeros((n, m), dtype=np.int64)
    fast = np.zeros((n, m), dtype=bool)
    state = np.full(n, int(EdrState.CALM), dtype=np.int64)
    for j in range(m):
        x = c[:, j]
        tgt = targets[:, j]
        if j + 1 >= need:
            below = c[:, j + 1 - need: j + 1] < (exit_[state] - tol)[:, None]
            stepping_down = below.all(axis=1)
        else:
            stepping_down = np.zeros(n, dtype=bool)
        state = np.where((tgt > state) | stepping_down, tgt, state)
        if j >= 1:
            f = ((x - c[:, j - 1] >= p.edr_velocity_pp - tol)
                 & (x >= p.edr_velocity_floor_pct - tol))
            fast[:, j] = f
            state = np.where(f, np.maximum(state, int(EdrState.APPROACHING)), state)
        states[:, j] = state
    return states, fast


def _last_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class HistorySeries:
    """History passes of the windows ending at `rows` of `frame` (each `window` rows long).

    `at(i, asof)` returns the pass `core.evaluate.evaluate` would compute from
    `frame.iloc[i + 1 − window: i + 1]` at `asof`, or None where only the per-day pass is sure
    to be right (then the caller passes no precomputed pass)."""

    def __init__(self, frame: pd.DataFrame, window: int, params: Params, rows=None):
        p = self.params = params
        self.window = w = int(window)
        self.frame = frame
        nrow = len(frame)
        rows = np.arange(nrow) if rows is None else np.asarray(rows, dtype=np.int64)
        rows = rows[(rows >= w - 1) & (rows < nrow)]
        self._passes: dict[int, _HistoryPass | None] = {}
        self._row_of: dict[int, int] = {}
        needed = max(p.min_closes_for_confirmation, p.macd_slow + p.macd_signal,
                     p.rsi_period + 1, p.hv_long_window + 1, p.hv_short_window + 1)
        spx, vix = _col(frame, "spx"), _col(frame, "vix")
        if rows.size == 0 or w < needed or spx is None or vix is None:
            return
        index = frame.index
        # a row is clean when the per-day pass keeps it as it is: a session, finite closes
        sessions = pd.DatetimeIndex(cal.sessions_in_range(
            max(index[0].date(), cal.CALENDAR_START), index[-1].date()))
        v9 = _col(frame, "vix9d")
        sig, _ = implied_sigma_many(vix, v9)
        edr = np.asarray(edr_pct(sig, p), float)
        clean = (index.isin(sessions) & np.isfinite(spx) & np.isfinite(vix)
                 & np.isfinite(edr) & (spx > 0))
        bad_before = np.concatenate([[0], np.cumsum(~clean)])
        ok = (bad_before[rows + 1] - bad_before[rows + 1 - w]) == 0
        rows = rows[ok]
        if rows.size == 0:
            return
        idx = rows[:, None] + np.arange(1 - w, 1)[None, :]
        self._compute(frame, rows, idx, spx, vix, edr, p)

    def _compute(self, frame, rows, idx, spx, vix, edr, p: Params) -> None:
        w = self.window
        k = len(rows)
        self._rows = rows
        self._row_of = {int(r): j for j, r in enumerate(rows)}
        self._dates = frame.index
        shown = np.unique(idx[:, -p.market_history_closes:])  # rows whose dates are shown
        self._days = dict(zip(shown.tolist(), (d.date() for d in frame.index[shown]),
                              strict=True))
        rate = _col(frame, "rate")
        if rate is None:
            self._rate_at = None
        else:  # the last finite reading at or before each row, if inside the window
            finite = np.isfinite(rate)
            last = np.maximum.accumulate(np.where(finite, np.arange(len(rate)), -1))
            at = last[rows]
            self._rate_at = np.where(at > rows - w, at, -1)
            self._rate = rate
        # indicators of SPX and VIX: MACD (also the momentum), RSI; HV of SPX
        ind: dict[str, np.ndarray] = {}
        mom: dict[str, tuple[np.ndarray, ...]] = {}
        for name, col in (("spx", spx), ("vix", vix)):
            win = col[idx]
            line, sig, hist = _macd_rows(win, p)
            ind[f"macd_{name}"], ind[f"macd_signal_{name}"] = line[:, -1], sig[:, -1]
            ind[f"macd_hist_{name}"] = hist[:, -1]
            ind[f"rsi_{name}"] = _rsi_last(win, p.rsi_period)
            mom[name] = (line[:, -1], sig[:, -1], hist[:, -1], hist[:, -2])
        log_r = np.diff(np.log(spx[idx]), axis=1)
        ind["hv10"] = _hv_last(log_r, p.hv_short_window)
        ind["hv20"] = _hv_last(log_r, p.hv_long_window)
        self._ind_keys = (
            "macd_spx", "macd_signal_spx", "macd_hist_spx", "rsi_spx",
            "macd_vix", "macd_signal_vix", "macd_hist_vix", "rsi_vix")
        self._ind = ind
        self._mom = mom
        # the official EDR state: replay of the last `edr_replay_closes` closes of the window
        span = min(w, p.edr_replay_closes)
        closes = edr[idx[:, w - span:]]
        self._closes = closes
        self._states, self._fast = _replay_rows(closes, p)
        self._span = span
        self._spx, self._vix = spx, vix
        self._breadth = {c: _col(frame, c) for c in BREADTH_COLUMNS}
        self._has_vix = True
        self._k = k

    def at(self, i: int, asof: datetime) -> _HistoryPass | None:
        """The history pass for the window ending at row i, evaluated at `asof`; None: use the
        per-day pass (row not computed, or `asof`'s last official close is not row i's day)."""
        j = self._row_of.get(int(i))
        if j is None:
            return None
        day = self._days[int(i)]
        if cal.et_date(cal.last_official_close(asof, vix=True)) != day:
            return None
        if i in self._passes:
            return self._passes[i]
        hp = self._build(i, j)
        self._passes[i] = hp
        return hp

    def _build(self, i: int, j: int) -> _HistoryPass:
        p, w = self.params, self.window
        lo = i + 1 - w
        last_rate = None
        if self._rate_at is not None and self._rate_at[j] >= 0:
            last_rate = float(self._rate[self._rate_at[j]])
        closes = self._closes[j]
        states = self._states[j]
        official = StateReading(
            state=EdrState(int(states[-1])), fast_rise=bool(self._fast[j, -1]),
            edr_pct=float(closes[-1]),
            prev_close_pct=float(closes[-2]) if closes.size > 1 else None,
            provisional=False, last_closes=tuple(closes.tolist()),
            last_states=tuple(states.tolist()))
        kk = p.market_history_closes
        shown_states = official.last_states[-kk:]
        dates = [self._days[k] for k in range(i + 1 - len(shown_states), i + 1)]
        closes_hist = tuple(
            EdrClose(d, float(c), EdrState(int(s)).name)
            for d, c, s in zip(dates, official.last_closes[-kk:], shown_states, strict=True))
        indicators = {key: _last_or_none(self._ind[key][j]) for key in self._ind_keys}
        indicators["hv10"] = _last_or_none(self._ind["hv10"][j])
        indicators["hv20"] = _last_or_none(self._ind["hv20"][j])

        def momentum(name: str) -> Momentum | None:
            line, sig, hist, hist_prev = (float(a[j]) for a in self._mom[name])
            if not (math.isfinite(hist) and math.isfinite(hist_prev)):
                return None
            return Momentum(line, sig, hist, hist_prev)

        b = self._breadth
        window = slice(lo, i + 1)

        def part(x):
            return None if x is None else x[window]

        breadth = breadth_flags(self._spx[window], part(b["ad_line"]), part(b["rsp"]),
                                part(b["spy"]), p)
        return _HistoryPass(
            last_rate=last_rate, official=official, closes_hist=closes_hist, closes_n=w,
            indicators=indicators, indicators_asof=self._days[i],
            vix_momentum=momentum("vix"), spx_momentum=momentum("spx"), breadth=tuple(breadth))
