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
    # Params refuses them when built, so the state machine never sees them
    with pytest.raises(ValueError, match=r"ELEVATED 1\.26 % must be above BREACHED 1\.30 %"):
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


# --- real VIX history (shipped copy, loaded by the bot's loader) ------------------------------
# VIX9D is ignored (σ = VIX, as if VIX9D were missing). Levels in VIX terms (EDR % × √252):
#   APPROACHING enter 13.493 exit 12.858 | BREACHED enter 14.922 exit 14.287
#   ELEVATED    enter 20.002 exit 19.367 | EXTREME  enter 25.082 exit 24.447
#   FAST_RISE: a one-session VIX rise ≥ 1.5875 points with VIX ≥ 12.700.


@pytest.fixture(scope="module")
def vix():
    from bot.marketdata.history import default_history_dir, load_history

    return load_history(default_history_dir())["vix"]


def replay_slice(vix, start, end):
    closes = vix.loc[start:end].dropna()
    rep = replay_states(edr_pct(closes.to_numpy()))
    return closes, rep.states.tolist(), rep.fast_rise.tolist()


def test_episode_august_2017(vix):
    # date    VIX    state  why
    # 08-09  11.11   C
    # 08-10  16.04   B      ≥ 14.922; +4.93 → FAST
    # 08-11  15.51   B
    # 08-14  12.33   B      below B exit 14.287, but only one close
    # 08-15  12.04   C      two closes below 14.287 → target(12.04) = CALM
    # 08-16  11.74   C
    # 08-17  15.55   B      FAST (+3.81)
    # 08-18  14.26   B      below 14.287 once
    # 08-21  13.19   C      twice → target(13.19) = CALM (two levels at once)
    # 08-22  11.35   C
    closes, st, fr = replay_slice(vix, "2017-08-09", "2017-08-22")
    assert closes.tolist() == [11.11, 16.04, 15.51, 12.33, 12.04, 11.74, 15.55, 14.26, 13.19,
                               11.35]
    assert st == [C, B, B, B, C, C, B, B, C, C]
    assert fr == [False, True, False, False, False, False, True, False, False, False]


def test_calm_of_2017(vix):
    # Replayed from the first 2017 close. Max VIX 16.04 < 20.002: never ELEVATED; only 15 closes
    # reach 13.493, so CALM dominates (≥ 85 % of the 251 sessions).
    closes, st, _ = replay_slice(vix, "2017-01-01", "2017-12-31")
    assert len(closes) == 251 and closes.max() == 16.04
    assert max(st) == B
    assert st.count(C) / len(st) >= 0.85


def test_episode_volmageddon_february_2018(vix):
    # date    VIX    state  why
    # 01-25  11.58   C
    # 01-26  11.08   C
    # 01-29  13.84   A      ≥ 13.493; +2.76 → FAST
    # 01-30  14.79   A      < 14.922
    # 01-31  13.54   A
    # 02-01  13.47   A      target CALM but 13.47 is not below A's exit 12.858
    # 02-02  17.31   B      FAST (+3.84)
    # 02-05  37.32   X      FAST
    # 02-06  29.98   X
    # 02-07  27.73   X
    # 02-08  33.46   X      FAST (+5.73)
    # 02-09  29.06   X
    # 02-12  25.61   X
    # 02-13  24.97   X      target E, but not below X's exit 24.447
    # 02-14  19.26   X      below 24.447, once (24.97 was not)
    # 02-15  19.13   B      twice → target(19.13) = BREACHED (ELEVATED skipped)
    closes, st, fr = replay_slice(vix, "2018-01-25", "2018-02-15")
    assert closes.tolist() == [11.58, 11.08, 13.84, 14.79, 13.54, 13.47, 17.31, 37.32, 29.98,
                               27.73, 33.46, 29.06, 25.61, 24.97, 19.26, 19.13]
    assert st == [C, C, A, A, A, A, B, X, X, X, X, X, X, X, X, B]
    fast_days = [d.strftime("%m-%d") for d, f in zip(closes.index, fr, strict=True) if f]
    assert fast_days == ["01-29", "02-02", "02-05", "02-08"]
    # official state on 2018-02-05: replay of the 60 closes up to that day
    reading = official_state(edr_pct(vix.loc[:"2018-02-05"].dropna().to_numpy()))
    assert reading.state is EdrState.EXTREME and reading.fast_rise
    assert reading.edr_pct == pytest.approx(37.32 / SQRT252)


def test_episode_march_2020(vix):
    # 02-12 13.74 A | 02-13 14.15 A | 02-14 13.68 A | 02-18 14.83 A (< 14.922) | 02-19 14.38 A
    # 02-20 15.56 B | 02-21 17.08 B (+1.52 < 1.5875: no FAST) | 02-24 25.03 E (< 25.082), FAST
    # 02-25 27.85 X FAST | then every close ≥ 27 → EXTREME; FAST on 02-27 (+11.60),
    # 03-03 (+3.40), 03-05 (+7.63), 03-06 (+2.32), 03-09 (+12.52), 03-11 (+6.60),
    # 03-12 (+21.57), 03-16 (+24.86)
    closes, st, fr = replay_slice(vix, "2020-02-12", "2020-03-20")
    assert closes.iloc[:8].tolist() == [13.74, 14.15, 13.68, 14.83, 14.38, 15.56, 17.08, 25.03]
    assert st == [A] * 5 + [B, B, E] + [X] * (len(st) - 8)
    fast_days = [d.strftime("%m-%d") for d, f in zip(closes.index, fr, strict=True) if f]
    assert fast_days == ["02-24", "02-25", "02-27", "03-03", "03-05", "03-06", "03-09",
                         "03-11", "03-12", "03-16"]
    # official state every session of March–April 2020: EXTREME (all closes ≥ 31.23 > 25.082)
    edr_all = edr_pct(vix.dropna())
    for day in vix.loc["2020-03-02":"2020-04-30"].index:
        assert official_state(edr_all.loc[:day].to_numpy()).state is EdrState.EXTREME, day


def test_wing_pressure_refuses_missing_inputs():
    with pytest.raises(ValueError, match="horizon EDR is missing"):
        wing_pressure(5000.0, 4845.0, 5130.0, np.array([100.0, np.nan]))
    with pytest.raises(ValueError, match="SPX is missing"):
        wing_pressure(float("nan"), 4845.0, 5130.0, 100.0)
