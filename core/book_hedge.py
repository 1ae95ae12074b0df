"""One hedge for the book (METHOD.md §6b).

A trader's VIX calls protect the whole book, so the second engine is also sized once per book
(per user): the hedged set H is the positions with h* > 0 that are applicable (and whose roll
verdict is not to close them, decision 35 of docs/engine.md); the book's target h*_book is the
|vega$|-weighted mean of their h*, its vega$ and stress loss are the sums over H, its budget 2 %
of their summed max loss; the VIX expiry is step 1 against every condor of H (it must pass B4
for each of them); steps 2–6 and 9 are core/hedge.py's own functions run on the book's figures.
Held layers recorded against the book or against any position of H count toward it.

Pure and vectorised: one evaluation may hold many books (a report round evaluates every
subscriber at once); positions carry a book number, and every sum is a `bincount` over it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np

from core import calendar as cal
from core.hedge import (
    HeldLayers,
    HeldValues,
    Sizing,
    choose_vix_expiry,
    count_words,
    dvix_dspx,
    exit_lines,
    exit_signals,
    per_owner,
    size_hedges,
    value_held,
)
from core.models import HedgeKind, HedgeLayer
from core.params import DEFAULT_PARAMS, FLOAT_TOL, Params
from core.records import (
    BookHedgeRecord,
    BookMember,
    Greeks,
    HedgeRecommendation,
    LazyBookHedges,
    SecondEngineStatus,
)
from core.records import fast_new as _new


@dataclass(frozen=True)
class BookLayers:
    """Held layers recorded against whole books: `held.owner` is the book number."""

    held: HeldLayers
    values: HeldValues | None

    @classmethod
    def empty(cls) -> BookLayers:
        return cls(HeldLayers.from_positions([]), None)


def book_layers_held(
    layers_by_book: Sequence[Sequence[HedgeLayer]], asof: datetime, days_next: int, vix: float,
    vix3m: float | None, vvix: float | None, futures: dict[date, float], r: float,
    v_star: float, params: Params = DEFAULT_PARAMS,
) -> BookLayers:
    """Book-level layers flattened (owner = book number) and valued as core/evaluate.py values a
    position's layers (Black-76 on each layer's own future, the same stress)."""
    held = HeldLayers.from_positions([SimpleNamespace(hedges=tuple(x)) for x in layers_by_book])
    if held.size == 0:
        return BookLayers.empty()
    ep = cal.settlement_epochs(held.expiry, True)
    years = cal.years_to_settlement_many(asof, ep)
    sessions = cal.sessions_to_expiry_many(asof, held.expiry, True)
    values = value_held(held, cal.et_date(asof), years,
                        np.maximum(years - days_next / 365.0, 0.0), sessions, vix, vix3m, vvix,
                        futures, r, v_star, params)
    return BookLayers(held, values)


@dataclass(frozen=True)
class BookSizing:
    """Per book (nb,) the book's figures and core.hedge.Sizing; per position (n,) membership."""

    member: np.ndarray  # (n,) bool: in its book's hedged set H
    share: np.ndarray  # (n,) |vega$| / vega$_book (NaN outside H)
    book_of: np.ndarray  # (n,) book number
    h_book: np.ndarray  # (nb,)
    vega_book: np.ndarray
    loss_book: np.ndarray  # L_book, $ (negative: a loss)
    max_loss_book: np.ndarray
    sessions_book: np.ndarray  # max n over H (B4 against every member)
    row: np.ndarray  # VIX table row per book (−1: none)
    sizing: Sizing  # one row per book
    layer_counts: np.ndarray  # (nb,) held layers counted


def hedged_set(h: np.ndarray, is_applicable: np.ndarray, closing: np.ndarray) -> np.ndarray:
    """H: h* > 0, applicable, and not advised to close (a hedge for a condor about to be closed
    would outlive it; decision 32 withholds it, §6b leaves it out of the book)."""
    return (np.asarray(h, float) > 0) & np.asarray(is_applicable, bool) & ~np.asarray(closing,
                                                                                      bool)


def size_books(
    book_of: np.ndarray,
    n_books: int,
    h: np.ndarray,
    is_applicable: np.ndarray,
    closing: np.ndarray,
    vega_c: np.ndarray,
    loss_c: np.ndarray,
    qty: np.ndarray,
    max_loss_usd: np.ndarray,
    credit_usd: np.ndarray,
    condor_settle: np.ndarray,
    condor_sessions: np.ndarray,
    v1: int | None,
    table: Any,
    vix_settle: np.ndarray,
    vix_sessions: np.ndarray,
    asof_epoch: float,
    held: HeldLayers,
    held_values: HeldValues | None,
    book_held: BookLayers,
    params: Params = DEFAULT_PARAMS,
) -> BookSizing:
    """§6b for every book at once. Positions' arrays are (n,), `book_of` their book number."""
    p = params
    n = len(book_of)
    nb = n_books
    book_of = np.asarray(book_of, dtype=np.int64)
    member = hedged_set(h, is_applicable, closing)
    w = np.where(member, np.abs(np.asarray(vega_c, float)), 0.0)

    def per_book(x: np.ndarray, mask: np.ndarray = member) -> np.ndarray:
        return np.bincount(book_of, weights=np.where(mask, x, 0.0), minlength=nb)

    vega_book = per_book(w)
    with np.errstate(divide="ignore", invalid="ignore"):
        h_book = np.where(vega_book > 0, per_book(w * h) / vega_book, 0.0)
        share = np.where(member, w / vega_book[book_of], np.nan)
    # a member with no vega (an expiring condor) still counts: plain mean when Σ|vega$| = 0
    n_members = per_book(np.ones(n))
    flat = (vega_book <= 0) & (n_members > 0)
    if flat.any():
        h_book = np.where(flat, per_book(np.asarray(h, float)) / np.maximum(n_members, 1), h_book)
        share = np.where(member & flat[book_of], 1.0 / np.maximum(n_members[book_of], 1), share)
    loss_book = per_book(np.asarray(loss_c, float))
    max_loss_book = per_book(np.asarray(max_loss_usd, float))
    credit_book = per_book(np.asarray(credit_usd, float))
    qty_book = per_book(np.asarray(qty, float))
    # step 1 against every condor of H: outliving all of them is outliving the last; passing
    # B4 for each, sessions ≥ min(n_i, 5) for all i, is sessions ≥ min(max n_i, 5)
    settle_book = np.full(nb, -np.inf)
    sessions_book = np.zeros(nb)
    np.maximum.at(settle_book, book_of[member], np.asarray(condor_settle, float)[member])
    np.maximum.at(sessions_book, book_of[member], np.asarray(condor_sessions, float)[member])
    has = n_members > 0
    row = np.full(nb, -1, dtype=np.int64)
    if table is not None and has.any():
        row[has] = choose_vix_expiry(vix_settle, vix_sessions, asof_epoch, settle_book[has],
                                     sessions_book[has], p)

    # held layers: the book's own, and those of its members
    pos_counts = member[held.owner] if held.size else np.zeros(0, bool)
    parts = []
    if held.size and held_values is not None:
        parts.append((held, held_values, book_of[held.owner], pos_counts))
    if book_held.held.size and book_held.values is not None:
        parts.append((book_held.held, book_held.values, book_held.held.owner,
                      np.ones(book_held.held.size, bool)))
    vega_held = np.zeros(nb)
    stress_held = np.zeros(nb)
    vega_live = np.zeros(nb)
    held_qty = np.zeros(nb)
    n_opt = np.zeros(nb)
    n_bad = np.zeros(nb)
    match = np.zeros((nb, 2))
    layer_counts = np.zeros(nb)
    for lay, val, owner_book, counts in parts:
        def add(x: np.ndarray, owner_book=owner_book, counts=counts) -> np.ndarray:
            return np.bincount(owner_book, weights=np.where(counts, x, 0.0), minlength=nb)

        is_opt = ~lay.is_kind(HedgeKind.VIX_FUTURE)
        life_ok = (val.sessions
                   >= np.minimum(sessions_book[owner_book], p.b4_min_sessions) - FLOAT_TOL)
        vega_held += add(val.vega_usd)
        stress_held += add(val.stress_usd)
        vega_live += add(val.vega_usd * (life_ok | ~is_opt))
        held_qty += add(lay.qty.astype(float))
        n_opt += add(is_opt.astype(float))
        n_bad += add((is_opt & ~life_ok).astype(float))
        layer_counts += add(np.ones(lay.size))
        if table is not None:
            rr = row[owner_book]
            rrow = np.maximum(rr, 0)
            rec_k = np.where(rr >= 0, table.strike[rrow], -np.inf)
            rec_e = np.array(table.dates, dtype="datetime64[D]")[rrow]
            l2 = lay.is_l2() & (rr >= 0) & (lay.expiry >= rec_e) & (lay.strike <= rec_k)
            match[:, 0] += add(lay.qty * (l2 & lay.is_kind(HedgeKind.VIX_CALL)))
            match[:, 1] += add(lay.qty * (l2 & lay.is_kind(HedgeKind.VIX_CALL_SPREAD)))
    b4 = np.array([None if c == 0 else bool(b == 0) for c, b in zip(n_opt, n_bad, strict=True)],
                  dtype=object)
    # every member is hedged for its put side (applicable = put threat, balanced, or V1 > 0),
    # so B3 applies to the book; a book with an empty H has h* = 0: NONE_NEEDED
    sizing = size_hedges(
        np.where(has, h_book, 0.0), np.ones(nb, bool), np.ones(nb, bool), v1, -vega_book,
        loss_book, qty_book, max_loss_book, credit_book, row, table, vega_held, stress_held, match,
        np.ones(nb, bool), b4, p, vega_held_live=vega_live, held_qty=held_qty,
    )
    return BookSizing(
        member=member, share=share, book_of=book_of, h_book=h_book, vega_book=vega_book,
        loss_book=loss_book, max_loss_book=max_loss_book, sessions_book=sessions_book, row=row,
        sizing=sizing, layer_counts=layer_counts,
    )


def judged_on_the_book(pos: Sizing, bs: BookSizing) -> Sizing:
    """The positions' Sizing with every member's B1, B3, B4, stabilised, coverage and stress
    offset replaced by its book's (B2 stays its own); a member buys nothing of its own, and its
    status is the book's."""
    m = bs.member
    if not m.any():
        return pos
    b = bs.book_of
    bk = bs.sizing

    def take(name: str, book_value=None) -> np.ndarray:
        mine = getattr(pos, name)
        theirs = (getattr(bk, name) if book_value is None else book_value)[b]
        out = np.array(mine, dtype=object if mine.dtype == object else mine.dtype, copy=True)
        out[m] = theirs[m]
        return out

    zero = np.zeros(bk.h.shape[0])
    return replace(
        pos,
        b1=take("b1"), b3=take("b3"), b4=take("b4"), stabilised=take("stabilised"),
        status=take("status"), coverage_held=take("coverage_held"),
        coverage_after=take("coverage_after"), offset_held=take("offset_held"),
        offset_after=take("offset_after"), coverage_range_lo=take("coverage_range_lo"),
        offset_min=take("offset_min"), matches=take("matches"),
        to_buy=take("to_buy", zero), to_sell=take("to_sell", zero),
        cost_warning=take("cost_warning", np.zeros(bk.h.shape[0], bool)),
    )


# --- records ------------------------------------------------------------------------------------


def failing_bands(sz: Sizing, j: int) -> tuple[str, ...]:
    """The held-hedge bands row `j` of a sizing fails (B2 is judged elsewhere)."""
    out = []
    if not sz.b1[j]:
        out.append("B1")
    if sz.b3[j] is not None and not sz.b3[j]:
        out.append("B3")
    if sz.b4[j] is not None and not sz.b4[j]:
        out.append("B4")
    return tuple(out)


def book_records(
    keys: Sequence[Any],
    bs: BookSizing,
    positions: Sequence[Any],
    vega_c: np.ndarray,
    h: np.ndarray,
    table: Any,
    review_dates: Sequence[date],
    vix3m: float | None,
    vix: float,
    state: int,
    ts_ratio: float | None,
    book_held: BookLayers,
    asof: datetime,
    params: Params = DEFAULT_PARAMS,
    spx: float = math.nan,
) -> LazyBookHedges:
    """One BookHedgeRecord per book key, each built when first read (`LazyBookHedges`): the
    numbers are all computed here, only the record objects wait. `positions` are the valid
    positions (row i). `spx` turns the book layers' VIX delta into SPX Δ$ (NaN without a
    quote)."""
    p = params
    sz = bs.sizing
    layer_sums = _book_layer_sums(book_held, len(keys), dvix_dspx(vix, spx, p))
    members_of: dict[int, list[int]] = {}
    for i in np.flatnonzero(bs.member).tolist():
        members_of.setdefault(int(bs.book_of[i]), []).append(i)
    # per-book numbers as Python lists once: indexing a list per book is far cheaper than
    # ~30 numpy scalars per book (a report round has a book per user)
    z = SimpleNamespace(**{name: np.asarray(getattr(sz, name)).tolist() for name in (
        "status", "h", "applicable", "n_target", "n_floor", "budget_usd", "n_budget",
        "use_spread", "cost_warning", "coverage_held", "coverage_after", "coverage_range_lo",
        "offset_held", "offset_after", "offset_min", "b1", "b3", "b4", "stabilised",
        "to_sell")})
    b = SimpleNamespace(**{name: np.asarray(getattr(bs, name)).tolist() for name in (
        "row", "h_book", "vega_book", "loss_book", "max_loss_book", "layer_counts")})
    bh = book_held.held
    l2_layers = (np.flatnonzero(bh.is_l2()) if bh.size and book_held.values is not None
                 else np.zeros(0, dtype=np.int64))
    l2_of: dict[int, list[int]] = {}  # book row → its L2 layers, in layer order
    for li, owner in zip(l2_layers.tolist(), bh.owner[l2_layers].tolist() if bh.size else [],
                         strict=True):
        l2_of.setdefault(int(owner), []).append(li)

    recs: dict[int, HedgeRecommendation | None] = {}

    def recommendation(j: int) -> HedgeRecommendation | None:
        """Book j's purchase alone (each member's record names it), made once: a member's
        record need not build the whole book record, whose member list is the book's size."""
        if j not in recs:
            row = int(b.row[j])
            active = z.h[j] > 0 and bool(z.applicable[j])
            recs[j] = (hedge_recommendation(table, row, sz, j, vix3m, review_dates[row], p)
                       if table is not None and row >= 0 and active else None)
        return recs[j]

    def build(j: int) -> BookHedgeRecord:
        key = keys[j]
        status = SecondEngineStatus(z.status[j])
        active = z.h[j] > 0 and bool(z.applicable[j])
        rec = recommendation(j)
        need = int(max(z.n_target[j], z.n_floor[j]))
        warnings: list[str] = []
        if active and status is SecondEngineStatus.UNECONOMIC_AT_THIS_SIZE:
            warnings.append(f"the {p.hedge_budget_frac * 100:g} % budget "
                            f"(${z.budget_usd[j]:,.0f}) buys no VIX call for the whole book: "
                            "hedge by hand or cut size")
        elif active and status is SecondEngineStatus.UNDER_BUDGET:
            warnings.append(f"the {p.hedge_budget_frac * 100:g} % budget "
                            f"(${z.budget_usd[j]:,.0f}) buys {int(z.n_budget[j])} of the "
                            f"{count_words(need, 'call spread' if z.use_spread[j] else 'call')} "
                            "the method sizes toward the target")
        if active and z.cost_warning[j]:
            warnings.append(f"hedge cost exceeds {p.hedge_cost_warn_frac * 100:g} % of the "
                            "book's credit")
        layers = exit_lines(bh, l2_of.get(j, ()), book_held.values.mark,
                            book_held.values.sessions) if j in l2_of else []
        exits = exit_signals(vix, state, ts_ratio, layers, p) if layers else ()
        members = tuple(
            _new(BookMember, position_id=positions[i].id, label=positions[i].label,
                 share=float(bs.share[i]), h_target=float(h[i]), vega=float(abs(vega_c[i])))
            for i in members_of.get(j, ())
        )
        b3 = z.b3[j]
        b4 = z.b4[j]
        layer_greeks, layer_pnl = layer_sums(j)
        return _new(BookHedgeRecord,
            book=key, status=status, recommendation=rec, h_book=float(b.h_book[j]),
            vega_book=float(b.vega_book[j]), stress_loss=float(b.loss_book[j]),
            max_loss=float(b.max_loss_book[j]), budget=float(z.budget_usd[j]),
            n_target=int(z.n_target[j]), n_floor=int(z.n_floor[j]),
            n_budget=int(z.n_budget[j]), coverage_held=float(z.coverage_held[j]),
            coverage_after=float(z.coverage_after[j]),
            coverage_range=(float(z.coverage_range_lo[j]), p.b1_max_coverage),
            stress_offset_held=float(z.offset_held[j]),
            stress_offset_after=float(z.offset_after[j]),
            stress_offset_min=float(z.offset_min[j]), b1=bool(z.b1[j]),
            b3=None if b3 is None else bool(b3), b4=None if b4 is None else bool(b4),
            stabilised=bool(z.stabilised[j]), failing=failing_bands(sz, j) if active else (),
            members=members, layers_counted=int(b.layer_counts[j]),
            book_layers_greeks=layer_greeks, book_layers_pnl=layer_pnl,
            to_sell=int(z.to_sell[j]), warnings=tuple(warnings), exit_signals=exits,
            asof=asof,
        )

    return LazyBookHedges(keys, build, recommendation)


def _book_layer_sums(book_held: BookLayers, n_books: int, vix_per_spx: float
                     ) -> Callable[[int], tuple[Greeks, float]]:
    """Per book, over the layers held against it: Δ$, vega$ and Θ$ (Γ$ 0, as for a position's
    layers), and their unrealised P&L at the model mark, valued as `value_held` values every
    layer. Summed for every book at once; `sums(j)` gives book j's (Greeks, P&L)."""
    held, values = book_held.held, book_held.values
    if values is None or held.size == 0:
        nothing = _new(Greeks, 0.0, 0.0, 0.0, 0.0)
        return lambda j: (nothing, 0.0)
    delta, vega, theta, pnl = (per_owner(x, held.owner, n_books).tolist() for x in (
        values.delta_f_beta, values.vega_usd, values.theta_usd, values.pnl_usd))
    return lambda j: (_new(Greeks, delta[j] * vix_per_spx, 0.0, vega[j], theta[j]), pnl[j])


def hedge_recommendation(table, row: int, sz, k: int, vix3m: float | None, review_by, p: Params
                         ) -> HedgeRecommendation:
    """The purchase record of sizing row `k` (a position's §6 or a book's §6b sizing) at VIX
    table row `row`: what to buy, its cost and what it brings to coverage and stress offset."""
    spread = bool(sz.use_spread[k])
    strikes = ((float(table.strike[row]), float(table.spread_strike2[row])) if spread
               else (float(table.strike[row]),))
    to_buy = int(sz.to_buy[k])
    return _new(HedgeRecommendation,
        type=(HedgeKind.VIX_CALL_SPREAD if spread else HedgeKind.VIX_CALL).value,
        expiry=table.dates[row], strikes=strikes, qty=to_buy,
        est_cost=float(to_buy * sz.unit_cost[k] * p.vix_option_multiplier),
        unit_cost=float(sz.unit_cost[k]),
        cost_quoted=bool(table.ask_quoted[row]) and not spread,
        delta_F=float(table.spread_delta[row] if spread else table.delta[row]),
        beta_F=float(table.beta_f[row]), u=float(sz.unit_u[k]),
        coverage=float(sz.coverage_after[k]), stress_offset=float(sz.offset_after[k]),
        future=float(table.future[row]),
        future_source="quoted" if table.future_quoted[row] else (
            "VIX3M" if vix3m is not None else "regime"),
        sigma_v=float(table.sigma_v[row]), dte=int(table.dte[row]),
        review_by=review_by,
    )
