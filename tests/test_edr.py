"""core.edr: the state machine against hand-worked sequences (default levels, METHOD §2):

    state        enter  exit (= enter − 0.04)
    APPROACHING  0.85   0.81
    BREACHED     0.94   0.90
    ELEVATED     1.26   1.22
    EXTREME      1.58   1.54
    FAST_RISE: rise ≥ 0.10 pp in one session with EDR ≥ 0.80 %.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from core.calendar import ET
from core.edr import (
    EdrState,
    adaptive_edr_pct,
    edr_pct,
    edr_points,
    horizon_edr,
    implied_sigma,
    implied_sigma_many,
    intraday_state,
    official_state,
    replay_states,
    wing_pressure,
)
from core.models import Event, EventKind
from core.params import Params

C, A, B, E, X = (int(s) for s in EdrState)
P = Params()
SQRT252 = 15.874507866387544  # √252, by hand: 15.8745² = 251.9997…


def states(closes, params=P):
    return replay_states(np.array(closes, dtype=float), params).states.tolist()


def fast(closes, params=P):
    return replay_states(np.array(closes, dtype=float), params).fast_rise.tolist()


# --- σ and EDR -------------------------------------------------------------------------------

def test_implied_sigma_max_rule():
    assert implied_sigma(15.5, 15.0) == (15.5, "VIX")  # contango: VIX9D below, ignored
    assert implied_sigma(15.0, 16.0) == (16.0, "VIX9D")
    assert implied_sigma(15.0, 16.0, vix9d_fresh=False) == (15.0, "VIX")
    assert implied_sigma(15.0, None) == (15.0, "VIX")
    assert implied_sigma(15.0, float("nan")) == (15.0, "VIX")
    assert implied_sigma(15.0, 15.0) == (15.0, "VIX")  # tie goes to VIX
    with pytest.raises(ValueError, match="VIX must be a positive"):
        implied_sigma(-1.0)
    with pytest.raises(ValueError, match="VIX9D must be a positive"):
        implied_sigma(15.0, 0.0)
    sig, src = implied_sigma_many(np.array([15.5, 15.0, 20.0]), np.array([15.0, 16.0, np.nan]))
    assert sig.tolist() == [15.5, 16.0, 20.0]
    assert src.tolist() == ["VIX", "VIX9D", "VIX"]


def test_edr_pct_and_points_worked_example():
    # METHOD §11: VIX 15.5, SPX 5000 → EDR 0.976 %, 48.8 points
    pct = edr_pct(15.5)
    assert pct == pytest.approx(15.5 / SQRT252, rel=1e-12)
    assert round(pct, 3) == 0.976
    assert round(edr_points(5000.0, pct), 1) == 48.8
    np.testing.assert_allclose(edr_pct(np.array([14.9, 20.0])), [0.93861, 1.25988], atol=1e-5)


def test_adaptive_edr():
    # (0.6·16 + 0.4·11) / √252 = 14 / 15.8745
    assert adaptive_edr_pct(16.0, 11.0) == pytest.approx(14 / SQRT252, rel=1e-12)
    assert math.isnan(adaptive_edr_pct(16.0, float("nan")))


# --- the state machine: hand-worked sequences -------------------------------------------------

def test_up_immediately_even_several_levels():
    assert states([0.50, 1.70]) == [C, X]
    assert states([0.86, 0.95, 1.27, 1.59]) == [A, B, E, X]


def test_single_close_below_exit_does_not_step_down():
    # BREACHED (exit 0.90): 0.89 alone is not enough; back to 0.95.
    assert states([1.00, 0.89, 0.95]) == [B, B, B]


def test_two_closes_below_exit_step_down_to_target():
    # 0.89 then 0.88: both below 0.90 → target(0.88) = APPROACHING
    assert states([1.00, 0.89, 0.88]) == [B, B, A]


def test_multi_level_fall_at_once():
    assert states([1.60, 0.70, 0.70]) == [X, X, C]
    assert states([1.60, 1.00, 0.95]) == [X, X, B]  # lands on BREACHED, not ELEVATED


def test_exactly_at_thresholds():
    assert states([0.94]) == [B]  # enter is "≥"
    assert states([0.9399]) == [A]
    assert states([0.85]) == [A]
    assert states([1.58]) == [X]
    # exit is "below": exactly 0.90 is not below BREACHED's exit
    assert states([1.00, 0.90, 0.90]) == [B, B, B]
    assert states([1.00, 0.90, 0.8999, 0.8999]) == [B, B, B, A]


def test_hysteresis_band_holds_state_between_exit_and_enter():
    # 0.92 is under BREACHED's enter (0.94) but above its exit (0.90): stays, however long
    assert states([0.95, 0.92, 0.92, 0.92, 0.91]) == [B] * 5


def test_velocity_exact_rise_counts():
    # 0.75 → 0.85 is a rise of exactly 0.10 (0.09999999999999998 in binary floats)
    assert fast([0.75, 0.85]) == [False, True]
    # 0.70 → 0.80: rise 0.10 and EDR = 0.80 exactly: at least APPROACHING though target is CALM
    assert states([0.70, 0.80]) == [C, A]
    assert fast([0.70, 0.80]) == [False, True]


def test_velocity_below_floor_or_too_small():
    assert states([0.65, 0.79]) == [C, C]  # rise 0.14 but EDR < 0.80
    assert fast([0.65, 0.79]) == [False, False]
    assert states([0.75, 0.84]) == [C, C]  # rise 0.09
    assert fast([0.75, 0.84]) == [False, False]


def test_fast_rise_then_step_down_needs_two_closes_below_exit():
    # FAST_RISE lifts to APPROACHING at 0.81 (exit 0.81); 0.81 is not below; 0.80 once, twice.
    assert states([0.70, 0.81, 0.81, 0.80, 0.80]) == [C, A, A, A, C]


def test_fast_rise_in_higher_state_sets_flag_only():
    assert states([1.30, 1.45]) == [E, E]
    assert fast([1.30, 1.45]) == [False, True]


def test_nan_close_keeps_state_and_is_skipped():
    # the close after the gap compares with 1.00 (last finite): not both below 0.90
    assert states([1.00, np.nan, 0.85, 0.85]) == [B, B, B, A]


def test_custom_trigger_moves_approach():
    p = Params(edr_trigger_pct=1.0)  # approach = 0.9 × 1.0 = 0.90
    assert states([0.89], p) == [C]
    assert states([0.90], p) == [A]
    assert states([0.99], p) == [A]
    assert states([1.00], p) == [B]


def test_non_increasing_thresholds_rejected():
    with pytest.raises(ValueError, match="increase strictly"):
        replay_states(np.array([1.0]), Params(edr_trigger_pct=1.3))  # above ELEVATED 1.26


# --- official and intraday ------------------------------------------------------------------

def test_official_state_replays_only_the_last_60_closes():
    closes = [2.0] + [1.56] * 60
    # whole history: EXTREME (1.56 stays above its exit 1.54); last 60 start at 1.56 → ELEVATED
    assert states(closes)[-1] == X
    reading = official_state(closes)
    assert reading.state is EdrState.ELEVATED
    assert len(reading.last_closes) == 60
    assert reading.edr_pct == 1.56 and reading.prev_close_pct == 1.56
    assert not reading.provisional


def test_official_state_needs_a_close():
    with pytest.raises(ValueError, match="no EDR closes"):
        official_state([np.nan])


def test_intraday_moves_up_never_down():
    off = official_state([1.00, 1.00])
    assert off.state is EdrState.BREACHED
    low = intraday_state(off, 0.50)
    assert low.state is EdrState.BREACHED and low.provisional
    high = intraday_state(off, 1.30)
    assert high.state is EdrState.ELEVATED and high.provisional
    calm = official_state([0.84])
    spike = intraday_state(calm, 0.94)  # +0.10 from the last close
    assert spike.state is EdrState.BREACHED and spike.fast_rise
    small = intraday_state(calm, 0.83, prev_close_edr=0.70)  # +0.13, ≥ 0.80 → APPROACHING
    assert small.state is EdrState.APPROACHING and small.fast_rise


# --- horizon EDR ----------------------------------------------------------------------------

ASOF = datetime(2025, 3, 10, 10, 0, tzinfo=ET)


def test_horizon_without_events_is_sqrt_n():
    got = horizon_edr(48.8, [5.0], [ASOF + timedelta(days=7)], (), "VIX", ASOF)
    assert got[0] == pytest.approx(48.8 * math.sqrt(5), rel=1e-12)  # ≈ 109.1 (METHOD §11)


def test_horizon_events_inside_each_window():
    fomc = Event(ASOF + timedelta(days=2, hours=4), EventKind.FOMC)
    cpi = Event(ASOF + timedelta(days=10, hours=-1, minutes=-30), EventKind.CPI)
    ppi_at_asof = Event(ASOF, EventKind.PPI)  # not strictly after asof: excluded
    ends = [ASOF + timedelta(days=5), ASOF + timedelta(days=20), cpi.when]
    n = np.array([4.0, 14.0, 7.0])
    got = horizon_edr(50.0, n, ends, [fomc, cpi, ppi_at_asof], "VIX", ASOF)
    bump = 1.75**2 - 1  # 2.0625
    expected = 50.0 * np.sqrt([4 + bump, 14 + 2 * bump, 7 + 2 * bump])  # CPI at the end counts
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_horizon_skips_near_events_when_sigma_is_vix9d():
    near = Event(ASOF + timedelta(days=9), EventKind.NFP)  # exactly 9 days: skipped
    far = Event(ASOF + timedelta(days=9, seconds=1), EventKind.OTHER)  # counted, k = 1.25
    end = [ASOF + timedelta(days=30)]
    got = horizon_edr(40.0, [20.0], end, [near, far], "VIX9D", ASOF)
    assert got[0] == pytest.approx(40.0 * math.sqrt(20 + 1.25**2 - 1), rel=1e-12)
    got_vix = horizon_edr(40.0, [20.0], end, [near, far], "VIX", ASOF)
    assert got_vix[0] == pytest.approx(40.0 * math.sqrt(20 + 1.5**2 - 1 + 1.25**2 - 1))


def test_horizon_rejects_bad_input():
    with pytest.raises(ValueError, match="tz-aware"):
        horizon_edr(40.0, [1.0], [ASOF], (), "VIX", datetime(2025, 3, 10))
    with pytest.raises(ValueError, match="sigma source"):
        horizon_edr(40.0, [1.0], [ASOF], (), "VVIX", ASOF)
    with pytest.raises(ValueError, match="≥ 0"):
        horizon_edr(40.0, [-1.0], [ASOF], (), "VIX", ASOF)


# --- WPR ------------------------------------------------------------------------------------

def test_wing_pressure_levels():
    # S 5000, shorts 4845 / 5130: nearest cushion 130 (call side)
    wpr, level = wing_pressure(5000.0, 4845.0, 5130.0, 109.0)
    assert wpr == pytest.approx(109 / 130) and level == "OK"
    wpr, level = wing_pressure(
        np.array([5000.0, 5000.0, 5000.0, 4840.0, 4845.0]),
        4845.0, 5130.0,
        np.array([122.2, 130.0, 121.0, 50.0, 50.0]),
    )
    # 122.2/130 = 0.94 exactly as written → WATCH; 130/130 → TESTED; 121/130 = 0.9308 → OK;
    # S below K2 → cushion −5 → ∞; S at K2 → cushion 0 → ∞
    assert level.tolist() == ["WATCH", "TESTED", "OK", "TESTED", "TESTED"]
    assert np.isinf(wpr[3]) and np.isinf(wpr[4])
