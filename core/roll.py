"""Roll clearance R0–R10 (METHOD.md §8) and the roll search, vectorised over positions.

`clear()` evaluates every rule's condition as a boolean array and takes, per position, the first
rule that holds (np.select keeps the order). The closes-count part of R0 sits after R6, because
only the outcomes from R7 on need confirmation (§8 R0: "< 35 closes (for outcomes that need
confirmation)").

The roll search tries, for every position at once, a small fixed sequence of alternatives (new
expiry candidates × strike tiers × widths) and keeps the first that meets every constraint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from core.params import DEFAULT_PARAMS, Params
from core.records import RollOutcome

OUTCOMES = list(RollOutcome)

FLAG_TESTED = "TESTED"
FLAG_WATCH = "WATCH"
FLAG_TIME = "TIME"
FLAG_EDR_PRESSURE = "EDR_PRESSURE"
FLAG_DELTA_DRIFT = "DELTA_DRIFT"
NEED_FLAGS = (FLAG_TESTED, FLAG_TIME, FLAG_EDR_PRESSURE, FLAG_DELTA_DRIFT)

PROGRAM_SHORT, PROGRAM_SWING, PROGRAM_MONTHLY = "SHORT", "SWING", "MONTHLY"

EXECUTION_NOTE = (
    "Send one combo order (close the 4 old legs, open the 4 new legs) near the mid; "
    "do not leg in or out."
)


@dataclass(frozen=True)
class RollFlags:
    tested: np.ndarray
    watch: np.ndarray
    time: np.ndarray
    edr_pressure: np.ndarray
    delta_drift: np.ndarray

    def names(self, i: int) -> tuple[str, ...]:
        pairs = (
            (FLAG_TESTED, self.tested), (FLAG_WATCH, self.watch), (FLAG_TIME, self.time),
            (FLAG_EDR_PRESSURE, self.edr_pressure), (FLAG_DELTA_DRIFT, self.delta_drift),
        )
        return tuple(name for name, arr in pairs if arr[i])

    @property
    def needs_roll(self) -> np.ndarray:
        return self.tested | self.time | self.edr_pressure | self.delta_drift

    @property
    def only_soft_need(self) -> np.ndarray:
        """The need comes only from EDR_PRESSURE / WATCH (DELTA_DRIFT is WATCH-borne)."""
        return self.needs_roll & ~self.tested & ~self.time


def roll_flags(
    d_put: np.ndarray,
    d_call: np.ndarray,
    delta_put: np.ndarray,
    delta_call: np.ndarray,
    wpr: np.ndarray,
    state_at_least_breached: bool,
    entry_dte: np.ndarray,
    dte_now: np.ndarray,
    expiry_today: np.ndarray,
    b2_ok: np.ndarray,
    params: Params = DEFAULT_PARAMS,
) -> RollFlags:
    """§8 flags. Deltas signed (put negative); cushions in the position's own points."""
    p = params
    max_delta = np.maximum(np.abs(delta_put), np.abs(delta_call))
    breached = (d_put <= 0) | (d_call <= 0)
    tested = breached | (max_delta >= p.short_delta_tested) | (wpr >= p.wpr_tested)
    watch = (max_delta >= p.short_delta_watch) | (wpr >= p.wpr_watch)
    time = ((entry_dte >= p.time_trigger_entry_dte) & (dte_now <= p.time_trigger_dte)) | (
        (entry_dte <= p.short_program_max_dte) & expiry_today
    )
    pressure = state_at_least_breached & (
        (wpr >= p.edr_pressure_wpr) | (max_delta >= p.edr_pressure_delta)
    )
    drift = ~b2_ok & watch
    return RollFlags(tested, watch, time, pressure, drift)


@dataclass(frozen=True)
class RuleConditions:
    """One boolean array (n,) per rule, in §8 order. `data_bad` is R0 for bad legs or quotes;
    `few_closes` is R0 for too short a history (checked only from R7 on)."""

    data_bad: np.ndarray
    settle: np.ndarray
    take_profit: np.ndarray
    loss_limit: np.ndarray
    no_need: np.ndarray
    event_block: np.ndarray
    regime_block: np.ndarray
    few_closes: np.ndarray
    hold_unconfirmed: np.ndarray
    hedge_first: np.ndarray
    no_viable_roll: np.ndarray


def clear(c: RuleConditions) -> np.ndarray:
    """Index into `RollOutcome` per position: the first rule that holds, CLEARED otherwise."""
    o = {name: OUTCOMES.index(name) for name in RollOutcome}
    ordered = [
        (c.data_bad, o[RollOutcome.INSUFFICIENT_DATA]),
        (c.settle, o[RollOutcome.SETTLE_OR_CLOSE]),
        (c.take_profit, o[RollOutcome.TAKE_PROFIT]),
        (c.loss_limit, o[RollOutcome.EXIT_LOSS_LIMIT]),
        (c.no_need, o[RollOutcome.ROLL_NOT_NEEDED]),
        (c.event_block, o[RollOutcome.BLOCKED_BY_EVENT]),
        (c.regime_block, o[RollOutcome.BLOCKED_BY_REGIME]),
        (c.few_closes, o[RollOutcome.INSUFFICIENT_DATA]),
        (c.hold_unconfirmed, o[RollOutcome.HOLD_UNCONFIRMED]),
        (c.hedge_first, o[RollOutcome.HEDGE_FIRST]),
        (c.no_viable_roll, o[RollOutcome.NO_VIABLE_ROLL]),
    ]
    conds = [np.asarray(a, dtype=bool) for a, _ in ordered]
    return np.select(conds, [v for _, v in ordered], o[RollOutcome.CLEARED]).astype(np.int64)


def program_of(entry_dte: np.ndarray, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """SHORT ≤ 7 DTE at entry, SWING 8–20, MONTHLY ≥ 21."""
    e = np.asarray(entry_dte)
    return np.select(
        [e <= params.short_program_max_dte, e <= params.swing_program_max_dte],
        [PROGRAM_SHORT, PROGRAM_SWING],
        PROGRAM_MONTHLY,
    ).astype(object)


# --- strike grid helpers ----------------------------------------------------------------------


def floor_to(x: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    return np.floor(np.asarray(x) / step + 1e-9) * step


def ceil_to(x: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    return np.ceil(np.asarray(x) / step - 1e-9) * step


def round_to(x: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    """Nearest grid point, halves rounded up (no banker's rounding)."""
    return np.floor(np.asarray(x) / step + 0.5) * step


# --- the roll search --------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchInputs:
    """Everything the search needs, per candidate position (m,) unless noted."""

    spot: np.ndarray  # own points
    scale: np.ndarray
    strikes: np.ndarray  # (m, 4) current
    qty: np.ndarray
    net_credit: np.ndarray
    cost_to_close: np.ndarray  # current mark
    put_side: np.ndarray  # threat side
    z_threat_now: np.ndarray  # threat-side cushion in EDR_h(n) units now
    step: np.ndarray  # strike grid per position (own points)
    expiry_candidates: list[np.ndarray]  # each (m,) datetime64[D] (NaT = no candidate)
    years: list[np.ndarray]  # per candidate, (m,) ACT/365 years to its settlement
    horizon: list[np.ndarray]  # per candidate, EDR_h(n') (m,) in SPX points
    tier_start: float


@dataclass(frozen=True)
class SearchResult:
    found: np.ndarray  # (m,) bool
    candidate: np.ndarray  # index into expiry_candidates
    strikes: np.ndarray  # (m, 4)
    tier: np.ndarray
    width: np.ndarray
    credit_new: np.ndarray
    r: np.ndarray
    net_credit_new: np.ndarray
    max_loss_new: np.ndarray  # dollars
    max_loss_now: np.ndarray
    delta_put: np.ndarray
    delta_call: np.ndarray
    vega_usd: np.ndarray
    theta_usd: np.ndarray
    years: np.ndarray
    horizon: np.ndarray
    iv: np.ndarray  # (m, 4)
    why_not: np.ndarray  # object: the last constraint that failed


def tiers(start: float, params: Params = DEFAULT_PARAMS) -> list[float]:
    """start, start − step, … down to the floor (never below it)."""
    out, m = [], start
    while m >= params.roll_tier_floor - 1e-9:
        out.append(round(m, 6))
        m -= params.roll_tier_step
    return out


def widths(w_now: np.ndarray, step: np.ndarray, params: Params = DEFAULT_PARAMS) -> list:
    """W, then round5(0.85·W), round5(0.80·W): never wider, each at least one strike step."""
    out = [w_now]
    for f in sorted(params.roll_width_shrink, reverse=True):
        out.append(np.maximum(step, np.minimum(w_now, round_to(f * w_now, step))))
    return out


def search(
    si: SearchInputs,
    price: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple],
    params: Params = DEFAULT_PARAMS,
    max_steps: int = 80,
) -> SearchResult:
    """First viable (expiry candidate, tier, width) per position.

    `price(spot (m,), strikes (m, 4), years (m,))` returns (prices (m,4), deltas (m,4),
    vega$ per condor (m,), Θ$ per condor (m,), iv (m,4)) with the engine's IV model.
    Shorts start at floor/ceil(S ∓ m·EDR_h(n')) and move outward one strike step at a time
    until both |Δ| ≤ 0.20, the threat side's cushion in EDR_h units is no smaller than now, and
    WPR' ≤ 0.80. Then, per width, the economics: R = credit − cost to close ≥ 0 (or a debit up
    to 10 % of width when allowed), MaxLoss' ≤ MaxLoss now.
    """
    p = params
    m = si.spot.shape[0]
    w_now = np.maximum(si.strikes[:, 1] - si.strikes[:, 0], si.strikes[:, 3] - si.strikes[:, 2])
    mult = p.spx_multiplier * si.qty
    max_loss_now = (w_now - si.net_credit) * mult
    found = np.zeros(m, dtype=bool)
    res = {
        "candidate": np.full(m, -1, dtype=np.int64),
        "strikes": np.full((m, 4), np.nan),
        "tier": np.full(m, np.nan), "width": np.full(m, np.nan),
        "credit_new": np.full(m, np.nan), "r": np.full(m, np.nan),
        "net_credit_new": np.full(m, np.nan), "max_loss_new": np.full(m, np.nan),
        "delta_put": np.full(m, np.nan), "delta_call": np.full(m, np.nan),
        "vega_usd": np.full(m, np.nan), "theta_usd": np.full(m, np.nan),
        "years": np.full(m, np.nan), "horizon": np.full(m, np.nan),
        "iv": np.full((m, 4), np.nan),
    }
    why = np.full(m, "no listed expiry in the roll window", dtype=object)
    debit_allowed = np.where(p.roll_allow_debit, p.roll_debit_max_width_frac, 0.0)

    for ci, (exp, yrs, hor) in enumerate(
        zip(si.expiry_candidates, si.years, si.horizon, strict=True)
    ):
        has = ~np.isnat(exp) & ~found
        if not has.any():
            continue
        hor_own = hor * si.scale
        for tier in tiers(si.tier_start, p):
            todo = has & ~found
            if not todo.any():
                break
            idx = np.flatnonzero(todo)
            s, step, h = si.spot[idx], si.step[idx], hor_own[idx]
            y = yrs[idx]
            # minimum distance: the tier, WPR' ≤ 0.80, and the threat side's cushion unchanged
            min_cush = np.maximum(tier * h, h / p.roll_wpr_max)
            put_min = np.where(si.put_side[idx], np.maximum(min_cush, si.z_threat_now[idx] * h),
                               min_cush)
            call_min = np.where(~si.put_side[idx], np.maximum(min_cush, si.z_threat_now[idx] * h),
                                min_cush)
            k2 = floor_to(s - put_min, step)
            k3 = ceil_to(s + call_min, step)
            w0 = w_now[idx]
            ok_delta = np.zeros(idx.size, dtype=bool)
            for _ in range(max_steps):  # outward steps, all positions at once
                k = np.stack([k2 - w0, k2, k3, k3 + w0], axis=1)
                _, deltas, _, _, _ = price(s, k, y)
                put_bad = np.abs(deltas[:, 1]) > p.short_delta_new + 1e-12
                call_bad = np.abs(deltas[:, 2]) > p.short_delta_new + 1e-12
                ok_delta = ~put_bad & ~call_bad
                if ok_delta.all():
                    break
                k2 = np.where(put_bad, k2 - step, k2)
                k3 = np.where(call_bad, k3 + step, k3)
            why[idx[~ok_delta]] = (
                f"no short strike within reach has |Δ| ≤ {p.short_delta_new:.2f}")
            for w in widths(w0, step, p):
                live = ok_delta & ~found[idx]
                if not live.any():
                    break
                k = np.stack([k2 - w, k2, k3, k3 + w], axis=1)
                prices, deltas, vega, theta, iv = price(s, k, y)
                credit = -(prices * np.array([1.0, -1.0, -1.0, 1.0])).sum(axis=1)
                r = credit - si.cost_to_close[idx]
                cn_new = si.net_credit[idx] + r
                ml_new = (w - cn_new) * mult[idx]
                credit_ok = r >= -debit_allowed * w - 1e-12
                loss_ok = ml_new <= max_loss_now[idx] + 1e-9
                good = live & credit_ok & loss_ok
                why[idx[live & ~credit_ok]] = "the new condor's credit does not pay to close"
                why[idx[live & credit_ok & ~loss_ok]] = "the new max loss would exceed today's"
                if not good.any():
                    continue
                g = idx[good]
                found[g] = True
                res["candidate"][g] = ci
                res["strikes"][g] = k[good]
                res["tier"][g] = tier
                res["width"][g] = w[good]
                res["credit_new"][g] = credit[good]
                res["r"][g] = r[good]
                res["net_credit_new"][g] = cn_new[good]
                res["max_loss_new"][g] = ml_new[good]
                res["delta_put"][g] = deltas[good, 1]
                res["delta_call"][g] = deltas[good, 2]
                res["vega_usd"][g] = vega[good] * si.qty[g]
                res["theta_usd"][g] = theta[good] * si.qty[g]
                res["years"][g] = y[good]
                res["horizon"][g] = hor[idx][good]
                res["iv"][g] = iv[good]
                why[g] = ""
    return SearchResult(found=found, max_loss_now=max_loss_now, why_not=why, **res)


def short_expiry_candidates(
    expiry: np.ndarray, listed: Sequence[date], sessions_between: Callable, max_sessions: int
) -> list[np.ndarray]:
    """For the SHORT program: the listed expiries 1..max_sessions sessions after each current
    expiry, nearest first, as `max_sessions` arrays (NaT where fewer exist)."""
    lst = np.array(sorted(listed), dtype="datetime64[D]")
    n = expiry.shape[0]
    out = [np.full(n, np.datetime64("NaT"), dtype="datetime64[D]") for _ in range(max_sessions)]
    if lst.size == 0:
        return out
    start = np.searchsorted(lst, expiry, side="right")
    for j in range(max_sessions):
        pos = start + j
        inside = pos < lst.size
        cand = np.where(inside, lst[np.minimum(pos, lst.size - 1)], np.datetime64("NaT"))
        ok = inside & (sessions_between(expiry, cand) <= max_sessions)
        out[j] = np.where(ok, cand, np.datetime64("NaT")).astype("datetime64[D]")
    return out


def closest_expiry(
    expiry: np.ndarray, listed: Sequence[date], today: date, target_dte: np.ndarray
) -> np.ndarray:
    """For SWING/MONTHLY: the listed expiry after the current one whose DTE from today is closest
    to the target (the original entry DTE)."""
    lst = np.array(sorted(listed), dtype="datetime64[D]")
    n = expiry.shape[0]
    if lst.size == 0:
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    dte = (lst - np.datetime64(today, "D")).astype(np.int64)
    after = lst[None, :] > expiry[:, None]
    dist = np.where(after, np.abs(dte[None, :] - target_dte[:, None]), np.iinfo(np.int64).max)
    best = np.argmin(dist, axis=1)
    ok = after[np.arange(n), best]
    return np.where(ok, lst[best], np.datetime64("NaT")).astype("datetime64[D]")
