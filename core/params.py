"""Every default of the ALVH method (METHOD.md §12), in one settings object.

Nothing in `core/` hard-codes a threshold: it reads it from a `Params`. The bot stores per-user
overrides as a plain dict and builds a `Params` with `Params.from_overrides`.

Units are in the field names or comments: `_pct` is percent of SPX (0.94 means 0.94 %),
`_pp` is percentage points of EDR %, `_frac` is a fraction (0.5 = 50 %).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field, fields
from typing import Any

# The largest ATM total variance θ the smile is checked (and priced) for: 200 % vol for a year,
# or VIX 100 at c = 1 for four years. Beyond it the surface is NaN, never an unchecked number.
SSVI_THETA_MAX = 4.0
# η is kept this fraction inside the wing bound, which is strict (Gatheral–Jacquier)
SSVI_WING_MARGIN = 1e-9
# Float noise: thresholds are written as decimals (0.30, 0.94) and compared with binary floats,
# so a computed number this close to a level counts as on it (a delta at the tested level, a
# reading that equals a threshold as written, 0.95 − 0.85 = 0.10; a coverage at a band's edge;
# a count a hair above a whole number). One slack for every such comparison and rounding in the
# engine; not a method parameter: it only decides which side of a level a rounding error falls.
FLOAT_TOL = 1e-9
# Bounds of the engine's caches on pure functions (not method parameters: they change no result,
# only how much is remembered). A calendar date cache holds per-date answers (sessions, closes,
# session fractions) for the few hundred dates an evaluation or a backtest touches repeatedly;
# the smile-term cache holds the index-level knots of the last few snapshots.
CALENDAR_CACHE_SIZE = 4096
SMILE_TERM_CACHE_SIZE = 64
# settlement moments per expiry set: the last sets seen, only for sets this small (a backtest
# day's or a /check's few expiries; a large book's arithmetic outweighs the per-call overhead,
# and its key and value would be large)
SETTLEMENT_CACHE_SIZE = 256
SETTLEMENT_CACHE_MAX_EXPIRIES = 256
# the roll search's strike walk prices the next steps of every walking side in one call: first
# this many, doubling per call up to the maximum (a long walk takes a few calls, not one per
# step; a short one prices at most about twice the strikes it needed). Changes no result.
STRIKE_WALK_WINDOW_FIRST = 2
STRIKE_WALK_WINDOW_MAX = 32
# ... but at most this many priced rows per call over all walking sides (two candidate strikes
# per side in each row, roll._outer_deltas): a large book (a report round's 5,000 positions)
# then walks about two steps per call, instead of pricing up to 32 × its rows for moves most
# rows do not make
STRIKE_WALK_WINDOW_BUDGET = 4096
# Names that were parameters once; `Params.from_overrides` ignores them (stored settings and
# params files of older versions still load). v1's quadratic smile, v1's fixed delta levels,
# 35-DTE time rule and EDR_h-multiple roll tiers: METHOD v2 §13.
RETIRED_PARAMS = frozenset({"smile_atm_ratio", "smile_a", "smile_b", "smile_clamp_lo",
                            "smile_clamp_hi", "short_delta_watch", "short_delta_tested",
                            "short_delta_new", "edr_pressure_delta", "time_trigger_entry_dte",
                            "time_trigger_dte", "roll_tier_breached", "roll_tier_default",
                            "roll_tier_floor", "roll_tier_step"})


@dataclass(frozen=True)
class Params:
    # --- §2 EDR and its state machine -------------------------------------------------
    trading_days_per_year: int = 252  # EDR% = sigma / sqrt(252)
    edr_trigger_pct: float = 0.94  # BREACHED enter level (≈ VIX 14.9)
    edr_approach_ratio: float = 0.9  # approach = 0.9 × trigger when the user moves the trigger
    edr_approach_pct: float | None = None  # None: approach_ratio × trigger
    edr_elevated_pct: float = 1.26  # ≈ VIX 20
    edr_extreme_pct: float = 1.58  # ≈ VIX 25
    edr_hysteresis_pp: float = 0.04  # exit level = enter level − 0.04 pp
    edr_closes_to_step_down: int = 2
    edr_velocity_pp: float = 0.10  # one-session rise that flags FAST_RISE
    edr_velocity_floor_pct: float = 0.80  # FAST_RISE only counts at EDR ≥ 0.80 %
    edr_replay_closes: int = 60  # official state = replay of the last 60 closes
    vix9d_max_age_hours: float = 30.0  # VIX9D "fresh" for the max(V, VIX9D) rule
    # §2 horizon move: k per event kind
    event_multipliers: dict[str, float] = field(
        default_factory=lambda: {"FOMC": 1.75, "CPI": 1.75, "PPI": 1.5, "NFP": 1.5, "OTHER": 1.25}
    )
    event_vix9d_skip_days: int = 9  # skip the event term when σ came from VIX9D and event ≤ 9 d
    adaptive_edr_implied_weight: float = 0.6  # adaptive EDR = 0.6·σ_s + 0.4·HV20
    hv_long_window: int = 20
    hv_short_window: int = 10

    # --- §3 Wing-Pressure Ratio ---------------------------------------------------------
    wpr_watch: float = 0.94
    wpr_tested: float = 1.0
    wpr_horizon_sessions: float = 5.0  # H: WPR looks min(n, H) sessions ahead (one week)

    # --- §1 smile model: SSVI, θ(τ) from the VIX term structure ------------------------------
    smile_c: float = 0.82  # ATM vol / σ_VIX(τ)  (calibrate: the main lever of model prices)
    smile_rho: float = -0.55  # skew (spot-vol correlation of the surface)
    smile_eta: float = 0.60  # curvature level, φ(θ) = η/θ^γ
    smile_gamma: float = 0.5  # power law exponent, (0, ½]
    smile_tenor_vix9d_days: float = 9.0
    smile_tenor_vix_days: float = 30.0
    smile_tenor_vix3m_days: float = 93.0

    # --- rates ------------------------------------------------------------------------------
    rate_default: float = 0.04  # continuous, when no fed-funds reading is available
    dividend_yield: float = 0.013

    # --- §4 confirmations -----------------------------------------------------------------
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    rsi_period: int = 14
    rsi_put_lo: float = 30.0
    rsi_put_hi: float = 45.0
    rsi_put_contra: float = 55.0
    rsi_call_lo: float = 60.0
    rsi_call_hi: float = 70.0
    rsi_call_contra: float = 45.0
    min_closes_for_confirmation: int = 35
    ts_watch: float = 0.917  # VIX/VIX3M
    ts_inverted: float = 1.0
    ts_steep_contango: float = 0.85
    event_vote_window_days: int = 10
    breadth_window: int = 10
    breadth_mean_window: int = 20
    high_impact_events: tuple[str, ...] = ("FOMC", "CPI", "PPI", "NFP")
    fomc_default_time: str = "14:00"  # ET, when an event has no time
    release_default_time: str = "08:30"  # ET, CPI/PPI/NFP

    # --- §5 break-even expansion --------------------------------------------------------
    shocks: tuple[float, ...] = (1.25, 1.5, 2.0)

    # --- §6 second engine -----------------------------------------------------------------
    h_table_approaching: tuple[float, float, float] = (0.0, 0.33, 0.50)  # C ≤1, 2–3, ≥4
    h_table_breached: tuple[float, float, float] = (0.33, 0.50, 0.67)
    h_breached_tested: float = 0.50  # BREACHED, C ≤ 1, TESTED
    h_table_elevated: tuple[float, float, float] = (0.67, 0.67, 0.67)
    # call-side threat with V1 ≤ 0 is NOT_APPLICABLE only while |Δ_K2| < 0.5·|Δ_K3|
    put_safe_delta_ratio: float = 0.5
    vix_dte_min: int = 7
    vix_dte_max: int = 14
    vix_dte_fallback_max: int = 35
    vix_dte_floor: int = 5
    review_sessions_before_expiry: int = 2
    future_model_tenor_days: float = 93.0
    future_calm_premium: float = 0.08  # below V 20: V·(1 + 0.08·min(1, DTE/30))
    future_stress_discount: float = 0.05  # above V 25
    future_calm_below: float = 20.0
    future_stress_above: float = 25.0
    volvol_default: float = 90.0  # VVIX when missing
    volvol_tenor_exponent: float = 0.15
    volvol_clamp_lo: float = 0.6
    volvol_clamp_hi: float = 2.0
    vix_call_delta: float = 0.30
    vix_strike_band_lo: float = 1.15
    vix_strike_band_hi: float = 1.50
    vix_strike_fallback_mult: float = 1.30
    beta_f_tau_days: float = 35.0  # β_F = exp(−DTE/35)
    beta_iv: float = 1.0
    beta_rel: float = -4.5  # calibrate
    beta_down: float = -5.0  # calibrate
    sigma_eps: float = 0.06  # calibrate
    stress_z: float = 1.28
    stress_edr_multiple: float = 2.0  # r* = −2·EDR%
    coverage_efficiency: float = 0.8  # N_target = ceil(0.8·h*·|vega$|/u)
    floor_h_threshold: float = 0.5
    floor_qty_divisor: int = 4  # N_floor = ceil(qty/4)
    hedge_budget_frac: float = 0.02  # of max loss
    hedge_cost_warn_frac: float = 0.35  # of credit
    spread_width_min: float = 5.0
    spread_width_vix_frac: float = 0.5
    exit_vix_half: float = 30.0
    exit_vix_all: float = 50.0
    exit_mark_multiple: float = 3.0
    exit_calm_ts: float = 0.90
    exit_sessions_before_expiry: int = 2

    # --- §7 bands --------------------------------------------------------------------------
    b1_min_coverage: float = 0.33
    b1_max_coverage: float = 1.25
    b3_offset_low: float = 0.20  # h* ≤ 0.5
    b3_offset_high: float = 0.33  # h* ≥ 0.67
    b3_high_h: float = 0.67
    b4_min_sessions: int = 5

    # --- §8 roll clearance -----------------------------------------------------------------
    entry_delta: float = 0.20  # Δ_e, the trader's entry short delta (CNDR convention)
    delta_tested_floor: float = 0.30  # Δ_T = max(0.30, Δ_e + 0.10)
    delta_tested_offset: float = 0.10
    delta_watch_floor: float = 0.25  # Δ_W = max(0.25, Δ_e + 0.05)
    delta_watch_offset: float = 0.05
    edr_pressure_wpr: float = 0.80
    time_trigger_frac: float = 0.47  # TIME at DTE ≤ round(0.47 × entry DTE) (45 → 21)
    short_program_max_dte: int = 7
    swing_program_max_dte: int = 20
    take_profit_frac: float = 0.50
    loss_limit_multiple: float = 2.0
    settle_cutoff: str = "15:30"  # ET on expiry day (AM: the day before)
    event_block_minutes: int = 30
    roll_target_breached_frac: float = 0.75  # Δ* = 0.75·Δ_e when the state is ≥ BREACHED
    roll_fallback_delta_step: float = 0.05  # one fallback to Δ* + 0.05 (kept below Δ_W)
    roll_wpr_max: float = 0.80  # WPR' < 0.80: the new condor carries no EDR_PRESSURE
    roll_width_shrink: tuple[float, float] = (0.80, 0.85)
    roll_target_entry_dte: int = 45
    roll_short_sessions_max: int = 5
    roll_allow_debit: bool = False
    roll_debit_max_width_frac: float = 0.10
    defensive_roll_allowed: bool = False
    defensive_roll_edr_multiple: float = 1.5  # defensive roll: shorts at least 1.5·EDR_h(n')
    defensive_roll_size_frac: float = 0.5
    strike_step: float = 5.0  # SPX strikes on a 5-point grid
    xsp_strike_step: float = 1.0  # XSP (SPX/10) lists 1-point strikes
    market_history_closes: int = 10  # EDR/state closes shown in the market record
    market_next_events: int = 5  # upcoming events shown in the market record
    # /add warns (never refuses) when the entered credit is further than this fraction from the
    # model or chain mid of the condor today (a typo, a per-lot total, or a stale fill)
    credit_check_frac: float = 0.30

    # --- §9 freshness -----------------------------------------------------------------------
    live_quote_max_age_minutes: float = 20.0
    rate_max_age_days: float = 7.0  # older fed-funds reading → STALE_RATE (informational)

    # --- prices a trader can have paid (input bounds, issue 13) ---------------------------
    price_width_tolerance_pts: float = 0.10  # a condor close or roll debit may pass its width by
    vix_price_max: float = 100.0  # points: a VIX option or future above VIX's record close 82.69

    # --- contract multipliers ------------------------------------------------------------
    spx_multiplier: float = 100.0
    vix_option_multiplier: float = 100.0
    vix_future_multiplier: float = 1000.0

    def __post_init__(self) -> None:
        problems = ssvi_problems(self)
        if problems:
            raise ValueError("smile parameters refused: " + "; ".join(problems))

        problems = self.level_problems()
        if problems:
            raise ValueError("; ".join(problems))

    def level_problems(self) -> list[str]:
        """Why these EDR levels cannot work, in words ([] when they can): each state's enter
        level above the one below, and the BREACHED band at least one hysteresis wide (its top,
        ELEVATED's exit = ELEVATED − hysteresis, must stay above the trigger)."""
        numbers = [self.edr_trigger_pct, self.edr_approach_ratio, self.edr_elevated_pct,
                   self.edr_extreme_pct, self.edr_hysteresis_pp]
        if self.edr_approach_pct is not None:
            numbers.append(self.edr_approach_pct)
        if not all((isinstance(x, float) and math.isfinite(x))
                   or (isinstance(x, int) and abs(x) < 1e6) for x in numbers):
            return []  # not numbers at all: the overrides' type check names them
        levels = self.state_levels()
        out = [
            f"{hi_name} {hi:.2f} % must be above {lo_name} {lo:.2f} %"
            for (lo_name, lo), (hi_name, hi) in itertools.pairwise(levels)
            if not hi > lo
        ]
        elevated_exit = self.edr_elevated_pct - self.edr_hysteresis_pp
        if not out and not self.edr_trigger_pct < elevated_exit:
            out.append(
                f"trigger {self.edr_trigger_pct:.2f} % must be below ELEVATED "
                f"{self.edr_elevated_pct:.2f} % − hysteresis {self.edr_hysteresis_pp:.2f} pp "
                f"= {elevated_exit:.2f} %"
            )
        return out

    @property
    def edr_approach(self) -> float:
        """Approach level: explicit, or 0.9 × trigger rounded to 0.01 (0.846 → 0.85)."""
        if self.edr_approach_pct is not None:
            return self.edr_approach_pct
        return round(self.edr_approach_ratio * self.edr_trigger_pct, 2)

    def state_levels(self) -> tuple[tuple[str, float], ...]:
        """(state, enter %) from lowest to highest, CALM excluded."""
        return (
            ("APPROACHING", self.edr_approach),
            ("BREACHED", self.edr_trigger_pct),
            ("ELEVATED", self.edr_elevated_pct),
            ("EXTREME", self.edr_extreme_pct),
        )

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any] | None) -> Params:
        """Defaults with the user's overrides; unknown keys raise ValueError naming them.
        Retired names (`RETIRED_PARAMS`, e.g. the v1 smile's) are ignored, so settings and
        files written before they went still load; `retired_names` lists them for a log."""
        overrides = {k: v for k, v in (overrides or {}).items() if k not in RETIRED_PARAMS}
        if not overrides:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
        return dataclasses.replace(cls(), **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def retired_names(overrides: dict[str, Any] | None) -> list[str]:
    """The override names `Params.from_overrides` ignores because they were retired."""
    return sorted(set(overrides or {}) & RETIRED_PARAMS)


def ssvi_eta_max(rho: float, gamma: float) -> float:
    """The largest η (strictly) free of butterfly arbitrage up to θ = SSVI_THETA_MAX for this
    ρ and γ ∈ (0, ½] (the two conditions of `ssvi_problems` solved for η)."""
    skew = 1.0 + abs(rho)
    wings = 4.0 / (SSVI_THETA_MAX ** (1.0 - gamma) * skew)
    near_money = math.sqrt(4.0 / (SSVI_THETA_MAX ** (1.0 - 2.0 * gamma) * skew))
    return min(wings * (1.0 - SSVI_WING_MARGIN), near_money)


def ssvi_problems(p: Params) -> list[str]:
    """Why the smile parameters would not give an arbitrage-free surface (empty: they do).

    Gatheral–Jacquier (2014), power law φ(θ) = η/θ^γ: free of butterfly arbitrage when
    θφ(θ)(1 + |ρ|) < 4 and θφ(θ)²(1 + |ρ|) ≤ 4 for every θ used, i.e. up to SSVI_THETA_MAX
    for 0 < γ ≤ ½; free of calendar arbitrage for any γ in (0, 1) once θ is non-decreasing."""
    out: list[str] = []
    try:
        c, rho, eta, gamma = (float(x) for x in (p.smile_c, p.smile_rho, p.smile_eta,
                                                  p.smile_gamma))
        tenors = [float(x) for x in (p.smile_tenor_vix9d_days, p.smile_tenor_vix_days,
                                     p.smile_tenor_vix3m_days)]
    except (TypeError, ValueError):
        return ["smile_c, smile_rho, smile_eta, smile_gamma and the tenors must be numbers"]
    if not 0 < c < math.inf:
        out.append(f"smile_c must be positive (got {c})")
    if not -1 < rho < 1:
        out.append(f"smile_rho must lie strictly between −1 and 1 (got {rho})")
    if not 0 < eta < math.inf:
        out.append(f"smile_eta must be positive (got {eta})")
    if not 0 < gamma <= 0.5:
        out.append(f"smile_gamma must lie in (0, 0.5] (got {gamma}): above ½ short tenors "
                   "have butterfly arbitrage")
    if not all(0 < t < math.inf for t in tenors) or not tenors[0] < tenors[1] < tenors[2]:
        out.append(f"smile tenors must be positive and increasing VIX9D < VIX < VIX3M "
                   f"(got {tenors})")
    if out:
        return out
    skew = 1.0 + abs(rho)
    slope = eta * SSVI_THETA_MAX ** (1.0 - gamma) * skew  # θφ(1 + |ρ|) at the largest θ
    if not slope < 4.0:
        out.append(f"η·θ^(1−γ)·(1 + |ρ|) = {slope:.3g} at θ = {SSVI_THETA_MAX:g} must be < 4 "
                   "(butterfly arbitrage in the wings)")
    curvature = eta * eta * SSVI_THETA_MAX ** (1.0 - 2.0 * gamma) * skew  # θφ²(1 + |ρ|)
    if not curvature <= 4.0:
        out.append(f"η²·θ^(1−2γ)·(1 + |ρ|) = {curvature:.3g} must be ≤ 4 "
                   "(butterfly arbitrage near the money)")
    return out


DEFAULT_PARAMS = Params()
