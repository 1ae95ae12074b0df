"""Positions as columns: a bulk screen for positions that certainly have no problem, and the
`Book` built from the same columns (issue 16: per-position checks and the per-position Book
were a third of the lazy pass at 10,000 positions).

The screen is conservative: a position passes only when every field has the plain Python type
the engine's own parsers produce (int/float numbers, `date` dates, enum kinds) and every rule of
`Position.problems` and `HedgeLayer.problems`, plus the session checks of
`core.evaluate.position_problems`, holds. Anything
else goes through `position_problems` one by one, which alone words the problems; so the set of
problems, and every record, is the same as checking each position.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from core import calendar as cal
from core.condor import XSP_SCALE, Book
from core.models import (
    AM_SETTLED_ROOTS,
    MAX_ENTRY_DELTA,
    ROOTS,
    HedgeKind,
    HedgeLayer,
    Position,
)

# beyond 2**52 a float no longer holds every integer, and Python's int arithmetic would differ
_EXACT_LIMIT = float(2**52)
_FIELDS = operator.attrgetter("root", "k1", "k2", "k3", "k4", "qty", "entry_credit",
                              "roll_credits", "entry_delta", "opened", "expiry", "hedges")


@dataclass(frozen=True)
class PositionColumns:
    """The fields of a list of positions, one array each; `plain[i]` says row i's numbers and
    dates are exact copies of the position's (plain types), so a Book may be built from them."""

    strikes: np.ndarray  # (n, 4) float, NaN where not a plain number
    qty: np.ndarray  # (n,) float
    net_credit: np.ndarray  # (n,) float, entry credit + roll credits
    expiry: np.ndarray  # (n,) datetime64[D] (NaT where not a date)
    opened: np.ndarray  # (n,) datetime64[D]
    am: np.ndarray  # (n,) bool
    scale: np.ndarray  # (n,) 1 or 0.1
    plain: np.ndarray  # (n,) bool
    clean: np.ndarray  # (n,) bool: certainly no problem (see the module docstring)


def _numbers(col: Sequence, ok: np.ndarray, *, none_ok: bool = False) -> np.ndarray:
    """Floats of a column of plain int/float values; NaN (and ok False) elsewhere. None is NaN
    and keeps ok when `none_ok`."""
    if set(map(type, col)) <= {int, float}:  # the usual column: converted at once
        try:
            out = np.array(col, dtype=float).reshape(len(col))
        except OverflowError:  # an int beyond float: the slow path below says which
            pass
        else:
            exact = np.abs(out) < _EXACT_LIMIT  # False for inf and NaN too
            ok &= exact
            out[~exact] = np.nan
            return out
    out = np.full(len(col), np.nan)
    for i, x in enumerate(col):
        t = type(x)
        if t is float or t is int:
            if -_EXACT_LIMIT < x < _EXACT_LIMIT:
                out[i] = x
            else:
                ok[i] = False
        elif not (none_ok and x is None):
            ok[i] = False
    return out


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _dates(col: Sequence, ok: np.ndarray) -> np.ndarray:
    """datetime64[D] of a column of plain `date` values (NaT, ok False, elsewhere)."""
    out = np.full(len(col), np.datetime64("NaT"), dtype="datetime64[D]")
    plain = np.array([type(x) is date for x in col], dtype=bool).reshape(len(col))
    ok &= plain
    if plain.any():
        days = [x.toordinal() - _EPOCH_ORDINAL for x, y in zip(col, plain, strict=True) if y]
        out[plain] = np.array(days, dtype=np.int64).astype("datetime64[D]")
    return out


_HEDGE_FIELDS = operator.attrgetter("kind", "expiry", "qty", "cost", "strike", "strike2",
                                    "qty_sold")
_CALL_KINDS = (HedgeKind.VIX_CALL, HedgeKind.VIX_CALL_SPREAD)


def _hedges_clean(hedges: Sequence, today: date) -> np.ndarray:
    """Per position: every held layer certainly passes `HedgeLayer.problems` and the expiry
    checks of `position_problems` (no layers: True)."""
    n = len(hedges)
    clean = np.array([h == () for h in hedges], dtype=bool).reshape(n)
    owners = [i for i in np.flatnonzero(~clean).tolist() if type(hedges[i]) is tuple]
    layers = [h for i in owners for h in hedges[i]]
    if not layers:
        return clean
    owner = np.repeat(owners, [len(hedges[i]) for i in owners])
    ok = np.array([type(h) is HedgeLayer for h in layers], dtype=bool)
    kind, expiry, qty, cost, k1, k2, sold = zip(*map(_HEDGE_FIELDS, layers), strict=True)
    ok &= np.array([type(x) is HedgeKind for x in kind], dtype=bool)
    ok &= np.array([type(x) is int and x > 0 for x in qty], dtype=bool)
    ok &= np.array([type(x) is int and x >= 0 for x in sold], dtype=bool)
    cost_f = _numbers(cost, ok)
    call = np.array([x in _CALL_KINDS for x in kind], dtype=bool)
    spread = np.array([x is HedgeKind.VIX_CALL_SPREAD for x in kind], dtype=bool)
    k1_ok, k2_ok = ok.copy(), ok.copy()
    k1_f, k2_f = _numbers(k1, k1_ok), _numbers(k2, k2_ok)
    ok &= k1_ok | ~call  # a future's strike is not read
    ok &= k2_ok | ~spread
    exp = _dates(expiry, ok)
    with np.errstate(invalid="ignore"):
        ok &= (cost_f >= 0) & (~call | (k1_f > 0)) & (~spread | (k2_f > k1_f))
        ok &= exp >= np.datetime64(today, "D")
    if ok.any():
        sessions = {e: cal.is_session(e) for e in set(exp[ok].tolist())}
        ok[ok] = [sessions[e] for e in exp[ok].tolist()]
    bad = np.bincount(owner[~ok], minlength=n) > 0
    clean[np.array(owners)] = ~bad[np.array(owners)]
    return clean


def position_columns(positions: Sequence[Position], today: date) -> PositionColumns:
    """The positions as columns, with the conservative screen (`clean`)."""
    n = len(positions)
    rows = [_FIELDS(p) for p in positions]
    if n:
        root, k1, k2, k3, k4, qty, c0, rc, ed, opened, expiry, hedges = zip(*rows, strict=True)
    else:
        root = k1 = k2 = k3 = k4 = qty = c0 = rc = ed = opened = expiry = hedges = ()
    plain = np.array([type(p) is Position for p in positions], dtype=bool).reshape(n)
    strikes = np.column_stack([_numbers(k, plain) for k in (k1, k2, k3, k4)]).reshape(n, 4)
    qty_ok = np.array([type(x) is int for x in qty], dtype=bool).reshape(n)
    plain &= qty_ok
    qty_f = _numbers(qty, plain)
    c0_f, rc_f = _numbers(c0, plain), _numbers(rc, plain)
    ed_ok = np.ones(n, dtype=bool)
    ed_f = _numbers(ed, ed_ok, none_ok=True)
    plain &= ed_ok
    opened_d, expiry_d = _dates(opened, plain), _dates(expiry, plain)
    roots = np.array(root, dtype=object).reshape(n)
    known_root = np.array([r in ROOTS for r in root], dtype=bool).reshape(n)
    am = np.array([r in AM_SETTLED_ROOTS for r in root], dtype=bool).reshape(n)
    scale = np.where(roots == "XSP", XSP_SCALE, 1.0).astype(float)
    net = c0_f + rc_f
    with np.errstate(invalid="ignore"):
        k = strikes
        ordered = (k[:, 0] > 0) & (k[:, 0] < k[:, 1]) & (k[:, 1] < k[:, 2]) & (k[:, 2] < k[:, 3])
        narrower = np.minimum(k[:, 1] - k[:, 0], k[:, 3] - k[:, 2])
        clean = (plain & known_root & ordered & (qty_f > 0) & (c0_f > 0) & np.isfinite(rc_f)
                 & (net < narrower)
                 & (np.isnan(ed_f) | ((ed_f > 0) & (ed_f < MAX_ENTRY_DELTA)))
                 & (opened_d <= expiry_d) & (expiry_d >= np.datetime64(today, "D")))
    clean &= _hedges_clean(hedges, today)
    if clean.any():
        sessions = {e: cal.is_session(e) for e in set(expiry_d[clean].tolist())}
        clean[clean] = [sessions[e] for e in expiry_d[clean].tolist()]
    return PositionColumns(strikes, qty_f, net, expiry_d, opened_d, am, scale, plain, clean)


def book_from_columns(positions: Sequence[Position], cols: PositionColumns,
                      rows: np.ndarray) -> Book:
    """The Book of positions[rows], from the columns (rows must be `plain`): the same arrays as
    `Book.from_positions`."""
    return Book(
        positions=tuple(positions[i] for i in rows.tolist()),
        strikes=cols.strikes[rows], qty=cols.qty[rows], net_credit=cols.net_credit[rows],
        expiry=cols.expiry[rows], opened=cols.opened[rows], am=cols.am[rows],
        scale=cols.scale[rows],
    )
