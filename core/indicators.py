"""Indicators on daily closes (METHOD.md §4): SMA-seeded EMA, MACD, Wilder RSI, realised vol.

Pure and vectorised: the EMA recursions run through `scipy.signal.lfilter`. Inputs are 1-D
arrays or pandas Series (a Series in gives a Series out with the same index). Leading NaNs are
allowed (e.g. the MACD line before the slow EMA exists); a NaN after the first value is an
error, because a gap would silently restart or corrupt the recursion: drop or fill gaps first.
Outputs are NaN until enough values exist.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from core.params import DEFAULT_PARAMS

PERCENT = 100.0
RSI_FLAT = 50.0  # no gains and no losses over the window: neither side has momentum


def _prepare(x, name: str) -> tuple[np.ndarray, int, pd.Index | None]:
    """(values, index of the first finite value, pandas index or None)."""
    index = x.index if isinstance(x, pd.Series) else None
    v = np.asarray(x, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"{name}: expected a one-dimensional series (got shape {v.shape})")
    if np.isinf(v).any():
        raise ValueError(f"{name}: values must be finite (got an infinite value)")
    finite = np.flatnonzero(~np.isnan(v))
    if finite.size == 0:
        return v, v.size, index
    first = int(finite[0])
    if np.isnan(v[first:]).any():
        gap = first + int(np.flatnonzero(np.isnan(v[first:]))[0])
        label = index[gap] if index is not None else gap
        raise ValueError(f"{name}: missing value inside the series at {label}; drop or fill gaps")
    return v, first, index


def _wrap(out: np.ndarray, index: pd.Index | None, name: str | None = None):
    return pd.Series(out, index=index, name=name) if index is not None else out


def _check_span(span: int, name: str) -> int:
    if isinstance(span, bool) or not isinstance(span, int | np.integer) or span < 1:
        raise ValueError(f"{name} must be a whole number ≥ 1 (got {span!r})")
    return int(span)


def _seeded_recursion(v: np.ndarray, first: int, span: int, alpha: float) -> np.ndarray:
    """y = SMA(v[first:first+span]) at first+span−1, then y_t = α·v_t + (1 − α)·y_{t−1}."""
    out = np.full(v.shape, np.nan)
    seed_at = first + span - 1
    if seed_at >= v.size:
        return out
    seed = float(np.mean(v[first : seed_at + 1]))
    out[seed_at] = seed
    rest = v[seed_at + 1 :]
    if rest.size:
        out[seed_at + 1 :], _ = lfilter([alpha], [1.0, alpha - 1.0], rest,
                                        zi=[(1.0 - alpha) * seed])
    return out


def ema_sma_seeded(x, span: int):
    """EMA with α = 2/(span + 1), seeded by the SMA of the first `span` values; NaN before."""
    span = _check_span(span, "EMA span")
    v, first, index = _prepare(x, "EMA input")
    return _wrap(_seeded_recursion(v, first, span, 2.0 / (span + 1)), index)


def macd(
    x,
    fast: int = DEFAULT_PARAMS.macd_fast,
    slow: int = DEFAULT_PARAMS.macd_slow,
    signal: int = DEFAULT_PARAMS.macd_signal,
):
    """(MACD, signal, histogram). MACD = EMA_fast − EMA_slow (both SMA-seeded); the signal is
    an EMA of MACD seeded by the SMA of its first `signal` values. With 12/26/9 the first MACD
    is at close 26, the first signal and histogram at close 34."""
    fast, slow, signal = (_check_span(s, n) for s, n in
                          ((fast, "MACD fast"), (slow, "MACD slow"), (signal, "MACD signal")))
    if fast >= slow:
        raise ValueError(f"MACD fast span {fast} must be shorter than slow span {slow}")
    v, first, index = _prepare(x, "MACD input")
    line = (_seeded_recursion(v, first, fast, 2.0 / (fast + 1))
            - _seeded_recursion(v, first, slow, 2.0 / (slow + 1)))
    sig = _seeded_recursion(line, first + slow - 1, signal, 2.0 / (signal + 1))
    hist = line - sig
    return _wrap(line, index, "macd"), _wrap(sig, index, "signal"), _wrap(hist, index, "hist")


def rsi_wilder(x, period: int = DEFAULT_PARAMS.rsi_period):
    """Wilder RSI: average gain and loss seeded by the simple mean of the first `period` changes,
    then smoothed with α = 1/period. First value at close `period` (0-based). All-zero changes
    give 50; no losses give 100."""
    period = _check_span(period, "RSI period")
    v, first, index = _prepare(x, "RSI input")
    out = np.full(v.shape, np.nan)
    d = np.diff(v[first:])
    if d.size >= period:
        alpha = 1.0 / period
        gain = _seeded_recursion(np.maximum(d, 0.0), 0, period, alpha)
        loss = _seeded_recursion(np.maximum(-d, 0.0), 0, period, alpha)
        with np.errstate(divide="ignore", invalid="ignore"):
            rsi = PERCENT - PERCENT / (1.0 + gain / loss)
        rsi = np.where((loss == 0) & (gain > 0), PERCENT, rsi)
        rsi = np.where((loss == 0) & (gain == 0), RSI_FLAT, rsi)
        out[first + 1 :] = rsi
    return _wrap(out, index, "rsi")


def realised_vol(
    closes, window: int, periods_per_year: int = DEFAULT_PARAMS.trading_days_per_year
):
    """Close-to-close realised vol in vol points (15.2 means 15.2 %, like VIX): the sample
    (ddof=1) standard deviation of the last `window` log returns × √252 × 100. The value at
    close i uses closes i−window … i; NaN before."""
    window = _check_span(window, "realised-vol window")
    if window < 2:
        raise ValueError("realised-vol window must be at least 2 returns (sample stdev)")
    v, first, index = _prepare(closes, "realised-vol closes")
    if (v[first:] <= 0).any():
        raise ValueError("realised-vol closes must be positive prices")
    out = np.full(v.shape, np.nan)
    r = np.diff(np.log(v[first:]))
    if r.size >= window:
        windows = np.lib.stride_tricks.sliding_window_view(r, window)
        out[first + window :] = (windows.std(axis=1, ddof=1) * math.sqrt(periods_per_year)
                                 * PERCENT)
    return _wrap(out, index, "hv")
