"""core.indicators against tiny series worked by hand and against plain-Python loop references
written here (no pandas ewm, no shared code with the implementation)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.indicators import ema_sma_seeded, macd, realised_vol, rsi_wilder

NAN = float("nan")


def ref_ema(xs, span):
    """Plain loop: SMA seed over the first `span` non-NaN values, then the EMA recursion."""
    a = 2 / (span + 1)
    out = [NAN] * len(xs)
    start = next((i for i, x in enumerate(xs) if not math.isnan(x)), len(xs))
    seed_at = start + span - 1
    if seed_at >= len(xs):
        return out
    prev = sum(xs[start : seed_at + 1]) / span
    out[seed_at] = prev
    for i in range(seed_at + 1, len(xs)):
        prev = a * xs[i] + (1 - a) * prev
        out[i] = prev
    return out


def ref_rsi(xs, period):
    out = [NAN] * len(xs)
    if len(xs) <= period:
        return out
    gains = [max(xs[i] - xs[i - 1], 0.0) for i in range(1, len(xs))]
    losses = [max(xs[i - 1] - xs[i], 0.0) for i in range(1, len(xs))]
    ag = sum(gains[:period]) / period
    al = sum(losses[:period]) / period

    def value(g, lo):
        if lo == 0:
            return 50.0 if g == 0 else 100.0
        return 100 - 100 / (1 + g / lo)

    out[period] = value(ag, al)
    for i in range(period, len(gains)):
        ag = (ag * (period - 1) + gains[i]) / period
        al = (al * (period - 1) + losses[i]) / period
        out[i + 1] = value(ag, al)
    return out


def assert_nan_close(got, expected, **kw):
    np.testing.assert_allclose(np.asarray(got, float), np.asarray(expected, float),
                               equal_nan=True, **kw)


# --- EMA -------------------------------------------------------------------------------------

def test_ema_by_hand():
    # span 3, α = 0.5: seed mean(1,2,3) = 2; 0.5·4 + 0.5·2 = 3; then 4; then 5
    assert_nan_close(ema_sma_seeded([1, 2, 3, 4, 5, 6], 3), [NAN, NAN, 2, 3, 4, 5])
    # span 2, α = 2/3: seed mean(1,3) = 2; 2/3·2 + 1/3·2 = 2; 2/3·5 + 1/3·2 = 4; 2/3·4 + 4/3 = 4
    assert_nan_close(ema_sma_seeded([1, 3, 2, 5, 4], 2), [NAN, 2, 2, 4, 4])


def test_ema_leading_nan_seeds_on_first_values():
    assert_nan_close(ema_sma_seeded([NAN, 1, 2, 3, 4], 3), [NAN, NAN, NAN, 2, 3])
    assert np.isnan(ema_sma_seeded([1, 2], 3)).all()  # too short: all NaN


def test_ema_interior_nan_and_bad_span_rejected():
    with pytest.raises(ValueError, match="missing value inside"):
        ema_sma_seeded([1, 2, NAN, 4], 2)
    with pytest.raises(ValueError, match="span"):
        ema_sma_seeded([1, 2, 3], 0)


def test_ema_series_keeps_index():
    idx = pd.date_range("2024-01-01", periods=4)
    out = ema_sma_seeded(pd.Series([1.0, 2, 3, 4], index=idx), 2)
    assert isinstance(out, pd.Series) and out.index.equals(idx)
    assert out.iloc[-1] == pytest.approx(2 / 3 * 4 + 1 / 3 * (2 / 3 * 3 + 1 / 3 * 1.5))


@settings(max_examples=80, deadline=None)
@given(
    xs=st.lists(st.floats(1, 1000, allow_nan=False), min_size=1, max_size=60),
    span=st.integers(1, 30),
    lead=st.integers(0, 5),
)
def test_ema_matches_loop_reference(xs, span, lead):
    data = [NAN] * lead + xs
    assert_nan_close(ema_sma_seeded(data, span), ref_ema(data, span), rtol=1e-10)


# --- MACD ------------------------------------------------------------------------------------

def test_macd_small_spans_by_hand():
    # fast 2 (α 2/3), slow 3 (α 1/2), signal 2 on x = 1, 3, 2, 5, 4, 6
    # EMA2: –, 2, 2, 4, 4, 2/3·6 + 4/3 = 16/3
    # EMA3: –, –, 2, 3.5, 3.75, 4.875
    # MACD: –, –, 0, 0.5, 0.25, 16/3 − 4.875 = 0.458333…
    # signal (α 2/3): seed mean(0, 0.5) = 0.25 at index 3; 2/3·0.25 + 1/3·0.25 = 0.25;
    #   2/3·0.458333 + 1/3·0.25 = 0.388889
    line, sig, hist = macd([1, 3, 2, 5, 4, 6], fast=2, slow=3, signal=2)
    assert_nan_close(line, [NAN, NAN, 0, 0.5, 0.25, 16 / 3 - 4.875], atol=1e-12)
    assert_nan_close(sig, [NAN, NAN, NAN, 0.25, 0.25, 2 / 3 * (16 / 3 - 4.875) + 0.25 / 3],
                     atol=1e-12)
    assert_nan_close(hist, np.asarray(line) - np.asarray(sig), atol=1e-12)


def test_macd_12_26_9_against_loop_reference_on_real_spx():
    from bot.marketdata.history import load_history

    spx = load_history(start=pd.Timestamp("2024-01-02").date(),
                       end=pd.Timestamp("2024-06-28").date())["spx"]
    xs = spx.tolist()
    e12, e26 = ref_ema(xs, 12), ref_ema(xs, 26)
    ref_line = [a - b for a, b in zip(e12, e26, strict=True)]
    ref_sig = ref_ema(ref_line, 9)
    line, sig, hist = macd(spx)
    assert isinstance(line, pd.Series) and line.index.equals(spx.index)
    assert np.isnan(line.iloc[24]) and not np.isnan(line.iloc[25])  # first MACD at close 26
    assert np.isnan(sig.iloc[32]) and not np.isnan(sig.iloc[33])  # first signal at close 34
    assert_nan_close(line, ref_line, rtol=1e-9, atol=1e-9)
    assert_nan_close(sig, ref_sig, rtol=1e-9, atol=1e-9)
    assert_nan_close(hist, np.array(ref_line) - np.array(ref_sig), atol=1e-9)


def test_macd_rejects_fast_not_below_slow():
    with pytest.raises(ValueError, match="shorter"):
        macd([1.0] * 40, fast=26, slow=12)


# --- RSI -------------------------------------------------------------------------------------

def test_rsi_by_hand():
    # period 3 on 10, 11, 10.5, 11.5, 11, 12 → changes +1, −0.5, +1, −0.5, +1
    # idx 3: gain 2/3, loss 1/6 → RS 4 → 80
    # idx 4: gain (2·2/3 + 0)/3 = 4/9, loss (2·1/6 + 0.5)/3 = 5/18 → RS 1.6 → 61.538…
    # idx 5: gain (2·4/9 + 1)/3 = 17/27, loss (2·5/18)/3 = 5/27 → RS 3.4 → 77.2727…
    got = rsi_wilder([10, 11, 10.5, 11.5, 11, 12], 3)
    assert_nan_close(got, [NAN, NAN, NAN, 80, 100 - 100 / 2.6, 100 - 100 / 4.4], atol=1e-10)


def test_rsi_edges():
    assert_nan_close(rsi_wilder([1, 2, 3, 4, 5], 2)[2:], [100, 100, 100])  # no losses
    assert_nan_close(rsi_wilder([5, 5, 5, 5], 2)[2:], [50, 50])  # flat
    assert_nan_close(rsi_wilder([5, 4, 3, 2], 2)[2:], [0, 0])  # no gains
    assert np.isnan(rsi_wilder([1, 2, 3], 3)).all()  # needs period + 1 closes


@settings(max_examples=60, deadline=None)
@given(xs=st.lists(st.floats(1, 1000, allow_nan=False), min_size=2, max_size=60),
       period=st.integers(1, 20))
def test_rsi_matches_loop_reference(xs, period):
    got = rsi_wilder(xs, period)
    assert_nan_close(got, ref_rsi(xs, period), rtol=1e-8, atol=1e-8)
    finite = got[~np.isnan(got)]
    assert ((finite >= 0) & (finite <= 100)).all()


# --- realised vol ----------------------------------------------------------------------------

def test_realised_vol_by_hand():
    # returns ln(1.01), ln(100/101), ln(1.02) ≈ 0.00995, −0.00995, 0.01980: sample sd ≈ 0.015155
    # × √252 × 100 ≈ 24.06 vol points
    got = realised_vol([100, 101, 100, 102], 3)
    r = [math.log(101 / 100), math.log(100 / 101), math.log(102 / 100)]
    assert np.isnan(got[:3]).all()
    assert got[3] == pytest.approx(statistics.stdev(r) * math.sqrt(252) * 100, rel=1e-12)
    assert got[3] == pytest.approx(24.06, abs=0.01)


def test_realised_vol_hv20_on_real_spx_matches_loop():
    from bot.marketdata.history import load_history

    spx = load_history(start=pd.Timestamp("2020-02-01").date(),
                       end=pd.Timestamp("2020-04-30").date())["spx"]
    hv = realised_vol(spx, 20)
    xs = spx.tolist()
    for i in range(20, len(xs)):
        r = [math.log(xs[j] / xs[j - 1]) for j in range(i - 19, i + 1)]
        assert hv.iloc[i] == pytest.approx(statistics.stdev(r) * math.sqrt(252) * 100,
                                           rel=1e-10)
    assert hv.loc["2020-03-31"] > 80  # March 2020: realised vol far above VIX-normal levels


def test_realised_vol_rejects_bad_input():
    with pytest.raises(ValueError, match="positive"):
        realised_vol([100, 0, 101, 102], 2)
    with pytest.raises(ValueError, match="at least 2"):
        realised_vol([100, 101, 102], 1)
