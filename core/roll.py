"""Roll clearance R0–R10 (METHOD.md §8) and the roll search, vectorised over positions.

`clear()` evaluates every rule's condition as a boolean array and takes, per position, the first
rule that holds (the earliest rule wins). The closes-count part of R0 sits after R6, because
only the outcomes from R7 on need confirmation (§8 R0: "< 35 closes (for outcomes that need
confirmation)"). NO_VIABLE_ROLL (R8) comes before HEDGE_FIRST (R9): the method never asks for a
hedge and then says "close instead".

The delta levels follow the trader's entry delta Δ_e: tested Δ_T = max(0.30, Δ_e + 0.10), watch
Δ_W = max(0.25, Δ_e + 0.05). The roll search places the new shorts by delta (Δ* = Δ_e, or
0.75·Δ_e from BREACHED on, one fallback of +0.05 kept below Δ_W when the credit fails), then
applies the cushion and WPR' rules and the economics, for every position at once.

Kept whole: the rule table and the roll search share §8's delta levels and flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy.special import ndtri

from core.params import (
    DEFAULT_PARAMS,
    FLOAT_TOL,
    STRIKE_WALK_WINDOW_BUDGET,
    STRIKE_WALK_WINDOW_FIRST,
    STRIKE_WALK_WINDOW_MAX,
    Params,
)
from core.records import RollOutcome

OUTCOMES = list(RollOutcome)
_OUTCOME_INDEX = {name: OUTCOMES.index(name) for name in RollOutcome}  # built once, not per call

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
# a strike is moved at most this many grid steps while the search looks for its delta; far more
# than the few steps a model-delta first guess needs, and a guard against a runaway walk
MAX_STRIKE_STEPS = 200


def delta_levels(entry_delta, params: Params = DEFAULT_PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """(Δ_T, Δ_W) per position: max(0.30, Δ_e + 0.10), max(0.25, Δ_e + 0.05)."""
    e = np.asarray(entry_delta, dtype=float)
    p = params
    return (np.maximum(p.delta_tested_floor, e + p.delta_tested_offset),
            np.maximum(p.delta_watch_floor, e + p.delta_watch_offset))


def time_trigger_dte(entry_dte, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """round(0.47 × entry DTE), halves up (45 → 21, 30 → 14, 28 → 13)."""
    return np.floor(params.time_trigger_frac * np.asarray(entry_dte, float) + 0.5).astype(np.int64)


@dataclass(frozen=True)
class RollFlags:
    tested: np.ndarray
    watch: np.ndarray
    time: np.ndarray
    edr_pressure: np.ndarray
    delta_drift: np.ndarray
    tested_put: np.ndarray  # the put side alone is tested (breached, |Δ| ≥ Δ_T or WPR ≥ 1)
    tested_call: np.ndarray
    delta_tested: np.ndarray  # Δ_T per position
    delta_watch: np.ndarray  # Δ_W per position
    time_dte: np.ndarray  # the TIME trigger's DTE per position

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
    wpr_put: np.ndarray,
    wpr_call: np.ndarray,
    state_at_least_breached: bool,
    entry_dte: np.ndarray,
    dte_now: np.ndarray,
    expiry_today: np.ndarray,
    b2_ok: np.ndarray,
    entry_delta: np.ndarray | float,
    params: Params = DEFAULT_PARAMS,
) -> RollFlags:
    """§8 flags. Deltas signed (put negative); cushions in the position's own points; WPR per
    side (the one-week move over that side's cushion, ∞ when breached): WPR = the larger."""
    p = params
    d_t, d_w = delta_levels(entry_delta, p)
    a_put, a_call = np.abs(delta_put), np.abs(delta_call)
    max_delta = np.maximum(a_put, a_call)
    wpr = np.maximum(wpr_put, wpr_call)
    tested_put = ((d_put <= 0) | (a_put >= d_t - FLOAT_TOL)
                  | (wpr_put >= p.wpr_tested - FLOAT_TOL))
    tested_call = ((d_call <= 0) | (a_call >= d_t - FLOAT_TOL)
                   | (wpr_call >= p.wpr_tested - FLOAT_TOL))
    tested = tested_put | tested_call
    watch = (max_delta >= d_w - FLOAT_TOL) | (wpr >= p.wpr_watch - FLOAT_TOL)
    entry = np.asarray(entry_dte)
    trig = time_trigger_dte(entry, p)
    short = entry <= p.short_program_max_dte
    time = (~short & (dte_now <= trig)) | (short & expiry_today)
    pressure = state_at_least_breached & (
        (wpr >= p.edr_pressure_wpr - FLOAT_TOL) | (max_delta >= d_w - FLOAT_TOL)
    )
    drift = ~b2_ok & watch
    return RollFlags(tested, watch, time, pressure, drift, tested_put, tested_call,
                     np.broadcast_to(d_t, tested.shape), np.broadcast_to(d_w, tested.shape),
                     trig)


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
    no_viable_roll: np.ndarray
    hedge_first: np.ndarray


def clear(c: RuleConditions) -> np.ndarray:
    """Index into `RollOutcome` per position: the first rule that holds, CLEARED otherwise."""
    o = _OUTCOME_INDEX
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
        (c.no_viable_roll, o[RollOutcome.NO_VIABLE_ROLL]),
        (c.hedge_first, o[RollOutcome.HEDGE_FIRST]),
    ]
    # np.select's answer (the first rule that holds, else CLEARED) from one (rules, n) table:
    # argmax finds the first True per position; the same integers in a few numpy calls
    rows = [np.asarray(a, dtype=bool) for a, _ in ordered]
    if any(r.shape != rows[0].shape for r in rows):
        rows = np.broadcast_arrays(*rows)
    table = np.stack(rows)
    values = np.array([v for _, v in ordered], dtype=np.int64)
    first = values[table.argmax(axis=0)]
    return np.where(table.any(axis=0), first, np.int64(o[RollOutcome.CLEARED]))


def program_of(entry_dte: np.ndarray, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """SHORT ≤ 7 DTE at entry, SWING 8–20, MONTHLY ≥ 21."""
    e = np.asarray(entry_dte)
    return np.where(e <= params.short_program_max_dte, PROGRAM_SHORT,
                    np.where(e <= params.swing_program_max_dte, PROGRAM_SWING,
                             PROGRAM_MONTHLY)).astype(object)


def target_deltas(entry_delta, breached: bool, params: Params = DEFAULT_PARAMS
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(Δ*, fallback) per position: Δ* = Δ_e (CALM/APPROACHING) or 0.75·Δ_e (≥ BREACHED); the
    fallback Δ* + 0.05 is kept strictly below Δ_W, so a new short never starts on WATCH."""
    p = params
    e = np.asarray(entry_delta, dtype=float)
    target = e * p.roll_target_breached_frac if breached else e
    _, d_w = delta_levels(e, p)
    below_watch = d_w - 1e-6
    target = np.minimum(target, below_watch)
    return target, np.minimum(target + p.roll_fallback_delta_step, below_watch)


# --- strike grid helpers ----------------------------------------------------------------------


def floor_to(x: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    return np.floor(np.asarray(x) / step + FLOAT_TOL) * step


def ceil_to(x: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    return np.ceil(np.asarray(x) / step - FLOAT_TOL) * step


def round_to(x: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    """Nearest grid point, halves rounded up (no banker's rounding)."""
    return np.floor(np.asarray(x) / step + 0.5) * step


# --- placing shorts by delta ------------------------------------------------------------------

# price(rows, strikes (r, 4)) → (prices, deltas, vega$ per condor, Θ$ per condor, iv), legs in
# the condor's column order (put, put, call, call), for the rows of the candidate set
RowPricer = Callable[[np.ndarray, np.ndarray], tuple]
# delta(rows, strikes (r, 4)) → the deltas `RowPricer` would give (r, 4), without the rest
RowDelta = Callable[[np.ndarray, np.ndarray], np.ndarray]


def shorts_at_delta(
    price: RowPricer,
    rows: np.ndarray,
    spot: np.ndarray,
    step: np.ndarray,
    move: np.ndarray,
    target: np.ndarray,
    delta: RowDelta | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K2, K3, found) per row: the grid strikes whose |Δ| is closest to `target` without
    exceeding it (the innermost such strike on each side). `delta`: the pricer's deltas
    alone (same bits, cheaper); None: taken from `price`.

    First guess S ∓ N⁻¹(1 − Δ*)·`move` (`move` ≈ the one-sigma move to expiry, own points),
    then every row walks one grid step at a time, all at once: outward while |Δ| > Δ*, inward
    while the next strike in still has |Δ| ≤ Δ*. Never oscillates: a step in is taken only
    onto a strike already known to qualify.
    """
    spot = np.asarray(spot, float)
    t = np.broadcast_to(np.asarray(target, float), spot.shape)
    step = np.broadcast_to(np.asarray(step, float), spot.shape)
    z = ndtri(1.0 - t)
    k2 = floor_to(spot - z * move, step)
    k3 = ceil_to(spot + z * move, step)
    k2 = np.minimum(k2, floor_to(spot, step))
    k3 = np.maximum(k3, ceil_to(spot, step))
    if delta is None:
        def delta(rr: np.ndarray, kk: np.ndarray) -> np.ndarray:
            return price(rr, kk)[1]
    if _exact_grid(k2, k3, step):
        k2, k3 = _walk_windows(delta, rows, k2, k3, step, t, spot)
    else:
        k2, k3 = _walk_steps(delta, rows, k2, k3, step, t, spot)
    k = np.stack([k2, k2, k3, k3], axis=1)
    d = np.abs(np.asarray(delta(rows, k), float))
    found = (d[:, 1] <= t + FLOAT_TOL) & (d[:, 2] <= t + FLOAT_TOL) & (k2 > 0)
    return k2, k3, found


def _walk_steps(delta: RowDelta, rows, k2, k3, step, t, spot) -> tuple[np.ndarray, np.ndarray]:
    """The walk one grid step per pricing call (every walking row priced each step)."""
    k2, k3 = k2.copy(), k3.copy()
    live = np.arange(rows.size)  # rows still walking: only they are priced again
    for _ in range(MAX_STRIKE_STEPS):
        a2, a3, st, tt, sp = k2[live], k3[live], step[live], t[live], spot[live]
        k = np.stack([a2, a2 + st, a3 - st, a3], axis=1)
        d = np.abs(np.asarray(delta(rows[live], k), float))
        put_out = ~(d[:, 0] <= tt + FLOAT_TOL) & (a2 - st > 0)  # NaN reads as "too large"
        call_out = ~(d[:, 3] <= tt + FLOAT_TOL)
        put_in = ~put_out & (d[:, 1] <= tt + FLOAT_TOL) & (a2 + st < sp)
        call_in = ~call_out & (d[:, 2] <= tt + FLOAT_TOL) & (a3 - st > sp)
        moving = put_out | call_out | put_in | call_in
        k2[live] = a2 - st * put_out + st * put_in
        k3[live] = a3 + st * call_out - st * call_in
        live = live[moving]
        if live.size == 0:
            break
    return k2, k3


# strikes are whole numbers below this: every ± step of the walk is then exact in float64
_EXACT_INT = 2.0 ** 50


def _exact_grid(k2: np.ndarray, k3: np.ndarray, step: np.ndarray) -> bool:
    """Strikes and steps are whole numbers (SPX 5-point, XSP 1-point grids): x − s + s == x,
    so a strike reached by a run of steps is the same float however the run is split."""
    parts = (k2, k3, step)
    return all(np.isfinite(a).all() and (np.floor(a) == a).all()
               and (np.abs(a) < _EXACT_INT).all() for a in parts) and bool((step > 0).all())


def _walk_windows(delta: RowDelta, rows, k2, k3, step, t, spot) -> tuple[np.ndarray, np.ndarray]:
    """`_walk_steps`' result with a few pricing calls instead of one per step.

    Each side walks on its own (a leg's delta depends on its own strike only), in one direction
    set by the first step, and moves at every step until its rule fails; once stopped it stays
    (the same strike gives the same delta). So after the first step (priced exactly as the walk
    does), every walking side's next w candidate strikes are priced in one call (rows repeated,
    two candidates per copy: `_outer_deltas`) and the run of moves up to the first failure is
    taken at once, w doubling per call. The step cap (MAX_STRIKE_STEPS moves per side) is
    kept. Same strikes, same deltas (element by element the same operations), same rules: the
    same answer.
    """
    tol_t = t + FLOAT_TOL
    k = np.stack([k2, k2 + step, k3 - step, k3], axis=1)
    d = np.abs(np.asarray(delta(rows, k), float))
    put_out = ~(d[:, 0] <= tol_t) & (k2 - step > 0)  # NaN reads as "too large"
    call_out = ~(d[:, 3] <= tol_t)
    put_in = ~put_out & (d[:, 1] <= tol_t) & (k2 + step < spot)
    call_in = ~call_out & (d[:, 2] <= tol_t) & (k3 - step > spot)
    put_dir = np.where(put_out, -1.0, np.where(put_in, 1.0, 0.0))  # −1 out (down), +1 in (up)
    call_dir = np.where(call_out, 1.0, np.where(call_in, -1.0, 0.0))  # +1 out (up), −1 in
    k2 = k2 + put_dir * step
    k3 = k3 + call_dir * step
    put_live, call_live = put_dir != 0, call_dir != 0
    moves, w = 1, STRIKE_WALK_WINDOW_FIRST
    while moves < MAX_STRIKE_STEPS:
        walking = np.flatnonzero(put_live | call_live)
        if walking.size == 0:
            break
        # two candidates per priced row (below): a row per walking side per two moves
        pairs = max(1, STRIKE_WALK_WINDOW_BUDGET // walking.size)
        w = max(1, min(w, MAX_STRIKE_STEPS - moves, 2 * pairs))
        j = np.arange(w, dtype=float)[None, :]
        st = step[walking, None]
        pd, cd = put_dir[walking, None], call_dir[walking, None]
        # candidate j: out-walks check the strike after j moves (then step past it), in-walks
        # the strike of move j + 1 (moved onto only if it qualifies)
        put_c = k2[walking, None] + np.where(pd < 0, -j, j + 1.0) * st
        call_c = k3[walking, None] + np.where(cd > 0, j, -(j + 1.0)) * st
        put_c = np.where(put_live[walking, None], put_c, k2[walking, None])
        call_c = np.where(call_live[walking, None], call_c, k3[walking, None])
        put_d, call_d = _outer_deltas(delta, rows[walking], put_c, call_c)
        tt = tol_t[walking, None]
        sp = spot[walking, None]
        put_move = np.where(pd < 0, ~(put_d <= tt) & (put_c - st > 0),
                            (put_d <= tt) & (put_c < sp))
        call_move = np.where(cd > 0, ~(call_d <= tt), (call_d <= tt) & (call_c > sp))
        # the run of moves before the first failure (w when none fails)
        n_put = np.where(put_move.all(axis=1), w, np.argmin(put_move, axis=1))
        n_call = np.where(call_move.all(axis=1), w, np.argmin(call_move, axis=1))
        n_put = np.where(put_live[walking], n_put, 0)
        n_call = np.where(call_live[walking], n_call, 0)
        k2[walking] += put_dir[walking] * n_put * step[walking]
        k3[walking] += call_dir[walking] * n_call * step[walking]
        put_live[walking] &= n_put == w
        call_live[walking] &= n_call == w
        moves += w
        w = min(2 * w, STRIKE_WALK_WINDOW_MAX)
    return k2, k3


def _outer_deltas(delta: RowDelta, rows: np.ndarray, put_c: np.ndarray, call_c: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """|Δ| of w put and w call candidate strikes per row ((r, w) each), two of each per priced
    row: a priced row's legs are (put, put, call, call) and a leg's delta depends on its own
    strike and put/call only, so both put columns take a put candidate and both call columns a
    call candidate. Half the pricing of one candidate per row (where the put and call columns
    each priced the same strike twice), the same operations per strike."""
    r, w = put_c.shape
    half = -(-w // 2)
    if 2 * half != w:  # an odd window: the last candidate again, its answer dropped
        put_c = np.concatenate([put_c, put_c[:, -1:]], axis=1)
        call_c = np.concatenate([call_c, call_c[:, -1:]], axis=1)
    kk = np.stack([put_c[:, 0::2], put_c[:, 1::2], call_c[:, 0::2], call_c[:, 1::2]],
                  axis=2).reshape(-1, 4)
    dd = np.abs(np.asarray(delta(np.repeat(rows, half), kk), float)).reshape(r, half, 4)
    put_d = np.empty((r, 2 * half))
    call_d = np.empty((r, 2 * half))
    put_d[:, 0::2], put_d[:, 1::2] = dd[:, :, 0], dd[:, :, 1]
    call_d[:, 0::2], call_d[:, 1::2] = dd[:, :, 2], dd[:, :, 3]
    return put_d[:, :w], call_d[:, :w]


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
    horizon: list[np.ndarray]  # per candidate, EDR_h(n') (m,) in SPX points (whole life)
    wpr_horizon: list[np.ndarray]  # per candidate, the §3 one-week move (m,) in SPX points
    target_delta: np.ndarray  # Δ* (m,)
    fallback_delta: np.ndarray  # Δ* + 0.05 kept below Δ_W (m,)
    min_cushion_multiple: float = 0.0  # defensive roll: shorts at least m·EDR_h(n') away


@dataclass(frozen=True)
class SearchResult:
    found: np.ndarray  # (m,) bool
    candidate: np.ndarray  # index into expiry_candidates
    strikes: np.ndarray  # (m, 4)
    target_delta: np.ndarray
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
    wpr: np.ndarray  # WPR' of the new condor
    iv: np.ndarray  # (m, 4)
    why_not: np.ndarray  # object: the last constraint that failed


def widths(w_now: np.ndarray, step: np.ndarray, params: Params = DEFAULT_PARAMS) -> list:
    """W, then round5(0.85·W), round5(0.80·W): never wider, each at least one strike step."""
    out = [w_now]
    for f in sorted(params.roll_width_shrink, reverse=True):
        out.append(np.maximum(step, np.minimum(w_now, round_to(f * w_now, step))))
    return out


def search(
    si: SearchInputs,
    price: Callable[[int, np.ndarray, np.ndarray], tuple],
    params: Params = DEFAULT_PARAMS,
    delta: Callable[[int, np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> SearchResult:
    """First viable (expiry candidate, target delta, width) per position (§8 steps 2–6).

    `price(ci, rows, strikes (r, 4))` prices condor legs on expiry candidate `ci` for the given
    rows of the candidate set: (prices (r,4), deltas (r,4), vega$ per condor (r,), Θ$ per
    condor (r,), iv (r,4)), with the engine's IVs (chain where quoted, else the smile).
    `delta(ci, rows, strikes)`, optional: the same deltas alone, for the strike walk.

    Per candidate expiry (nearest first): shorts at the grid strikes with |Δ| closest to Δ*
    without exceeding it; the threat side no closer, in EDR_h(n') units, than it is now in
    EDR_h(n) units; then both shorts outward until WPR' < 0.80. Per width (W, then the shrunk
    ones): R = credit − cost to close ≥ 0 (or a debit up to 10 % of width when allowed) and
    MaxLoss' ≤ MaxLoss. Only when the credit fails, once more at the fallback delta.
    """
    p = params
    m = si.spot.shape[0]
    w_now = np.maximum(si.strikes[:, 1] - si.strikes[:, 0], si.strikes[:, 3] - si.strikes[:, 2])
    mult = p.spx_multiplier * si.qty
    max_loss_now = (w_now - si.net_credit) * mult
    found = np.zeros(m, dtype=bool)
    res = {
        "candidate": np.full(m, -1, dtype=np.int64),
        "strikes": np.full((m, 4), np.nan), "target_delta": np.full(m, np.nan),
        "width": np.full(m, np.nan),
        "credit_new": np.full(m, np.nan), "r": np.full(m, np.nan),
        "net_credit_new": np.full(m, np.nan), "max_loss_new": np.full(m, np.nan),
        "delta_put": np.full(m, np.nan), "delta_call": np.full(m, np.nan),
        "vega_usd": np.full(m, np.nan), "theta_usd": np.full(m, np.nan),
        "years": np.full(m, np.nan), "horizon": np.full(m, np.nan), "wpr": np.full(m, np.nan),
        "iv": np.full((m, 4), np.nan),
    }
    why = np.full(m, "no listed expiry in the roll window", dtype=object)
    debit_allowed = p.roll_debit_max_width_frac if p.roll_allow_debit else 0.0

    for ci, (exp, yrs, hor, hor_w) in enumerate(
        zip(si.expiry_candidates, si.years, si.horizon, si.wpr_horizon, strict=True)
    ):
        has = ~np.isnat(exp) & ~found
        if not has.any():
            continue
        credit_failed = np.zeros(m, dtype=bool)
        for attempt, targets in enumerate((si.target_delta, si.fallback_delta)):
            todo = has & ~found & (credit_failed if attempt else True)
            if not todo.any():
                break
            idx = np.flatnonzero(todo)
            s, step, t = si.spot[idx], si.step[idx], targets[idx]
            h_own = hor[idx] * si.scale[idx]
            w_own = hor_w[idx] * si.scale[idx]

            def price_rows(rows, k, _ci=ci):
                return price(_ci, rows, k)

            delta_rows = None if delta is None else (
                lambda rows, k, _ci=ci: delta(_ci, rows, k))
            k2, k3, placed = shorts_at_delta(price_rows, idx, s, step, h_own, t, delta_rows)
            why[idx[~placed]] = "no listed short strike has a delta as small as the target"
            # the threat side no closer (in whole-life sigmas) than now; defensive floor
            threat_min = si.z_threat_now[idx] * h_own
            put_min = np.where(si.put_side[idx], threat_min, 0.0)
            call_min = np.where(~si.put_side[idx], threat_min, 0.0)
            put_min = np.maximum(put_min, si.min_cushion_multiple * h_own)
            call_min = np.maximum(call_min, si.min_cushion_multiple * h_own)
            k2 = np.minimum(k2, floor_to(s - put_min, step))
            k3 = np.maximum(k3, ceil_to(s + call_min, step))
            # WPR' < 0.80 strictly: both cushions beyond the one-week move / 0.80
            wpr_cushion = w_own / p.roll_wpr_max
            k2 = np.minimum(k2, floor_to(s - wpr_cushion - 1e-6, step))
            k3 = np.maximum(k3, ceil_to(s + wpr_cushion + 1e-6, step))
            w0 = w_now[idx]
            live0 = placed & (k2 - w0 > 0)
            for w in widths(w0, step, p):
                live = live0 & ~found[idx]
                if not live.any():
                    break
                k = np.stack([k2 - w, k2, k3, k3 + w], axis=1)
                prices, deltas, vega, theta, iv = price(ci, idx, k)
                credit = -(prices * np.array([1.0, -1.0, -1.0, 1.0])).sum(axis=1)
                r = credit - si.cost_to_close[idx]
                cn_new = si.net_credit[idx] + r
                ml_new = (w - cn_new) * mult[idx]
                delta_ok = ((np.abs(deltas[:, 1]) <= t + FLOAT_TOL)
                            & (np.abs(deltas[:, 2]) <= t + FLOAT_TOL))
                credit_ok = r >= -debit_allowed * w - 1e-12
                loss_ok = ml_new <= max_loss_now[idx] + FLOAT_TOL
                good = live & delta_ok & credit_ok & loss_ok
                why[idx[live & ~delta_ok]] = (
                    "moving the shorts out for cushion raised a short's delta (smile)")
                why[idx[live & delta_ok & ~credit_ok]] = (
                    "the new condor's credit does not pay to close")
                why[idx[live & delta_ok & credit_ok & ~loss_ok]] = (
                    "the new max loss would exceed today's")
                credit_failed[idx[live & delta_ok & ~credit_ok]] = True
                if not good.any():
                    continue
                g = idx[good]
                found[g] = True
                res["candidate"][g] = ci
                res["strikes"][g] = k[good]
                res["target_delta"][g] = t[good]
                res["width"][g] = w[good]
                res["credit_new"][g] = credit[good]
                res["r"][g] = r[good]
                res["net_credit_new"][g] = cn_new[good]
                res["max_loss_new"][g] = ml_new[good]
                res["delta_put"][g] = deltas[good, 1]
                res["delta_call"][g] = deltas[good, 2]
                res["vega_usd"][g] = vega[good] * si.qty[g]
                res["theta_usd"][g] = theta[good] * si.qty[g]
                res["years"][g] = yrs[g]
                res["horizon"][g] = hor[g]
                cushion = np.minimum(s - k2, k3 - s)[good]
                res["wpr"][g] = w_own[good] / cushion
                res["iv"][g] = iv[good]
                why[g] = ""
    return SearchResult(found=found, max_loss_now=max_loss_now, why_not=why, **res)


def moved_untested_spread(strikes: np.ndarray, new_short: np.ndarray, put_untested: np.ndarray
                          ) -> np.ndarray:
    """The condors (m, 4) with the untested side's short at `new_short` and its long moved
    with it, the wing width kept; the tested side as it is."""
    w_put = strikes[:, 1] - strikes[:, 0]
    w_call = strikes[:, 3] - strikes[:, 2]
    return np.where(put_untested[:, None],
                    np.stack([new_short - w_put, new_short, strikes[:, 2], strikes[:, 3]],
                             axis=1),
                    np.stack([strikes[:, 0], strikes[:, 1], new_short, new_short + w_call],
                             axis=1))


def untested_side_move(
    price: RowPricer,
    strikes: np.ndarray,
    spot: np.ndarray,
    step: np.ndarray,
    move: np.ndarray,
    entry_delta: np.ndarray,
    put_untested: np.ndarray,
    delta: RowDelta | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """R8's alternative when exactly one side is tested: move the untested short to Δ_e in the
    same expiry (its wing width kept). → (new short strike, credit in points per condor: the
    new vertical's value minus the old one's; NaN where no valid strike exists)."""
    m = spot.shape[0]
    rows = np.arange(m)
    k2, k3, found = shorts_at_delta(price, rows, spot, step, move, entry_delta, delta)
    new_k = np.where(put_untested, k2, k3)
    # the new untested short must stay on its side of the tested one
    valid = found & np.where(put_untested, k2 < strikes[:, 2], k3 > strikes[:, 1])
    old = strikes
    new = moved_untested_spread(strikes, new_k, put_untested)
    p_old, *_ = price(rows, old)
    p_new, *_ = price(rows, new)
    weight = np.array([1.0, -1.0, -1.0, 1.0])
    credit = (-(np.asarray(p_new, float) * weight).sum(axis=1)
              + (np.asarray(p_old, float) * weight).sum(axis=1))
    return np.where(valid, new_k, np.nan), np.where(valid, credit, np.nan)


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
