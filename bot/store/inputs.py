"""What a user may write, checked before anything touches the database.

Numbers become `Decimal` (a float 4.35 is read through its shortest repr, so it stays 4.35);
text is stored exactly as given, only its size and encodability are checked. The condor and
hedge rules themselves live in `core.models` and are reused, not repeated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from bot.store.coltypes import MONEY_SCALE
from bot.store.errors import ValidationError
from bot.store.tables import LABEL_MAX_CHARS, NOTES_MAX_CHARS
from core.models import HedgeKind, HedgeLayer, Layer, Position

# Sanity bounds of what a trader can enter (storage limits, not method parameters).
MAX_POINTS = Decimal(100_000)  # strikes, credits, debits, hedge prices (SPX ~ 6,000)
MAX_QTY = 10_000  # contracts per position or hedge layer
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2100, 12, 31)
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)

Number = int | float | Decimal | str
SHOWN_MAX_CHARS = 40  # how much of a bad value is echoed back in a message


def shown(value: object, quote: bool = True) -> str:
    """A bad value as a message shows it: bounded, and safe for integers of any size."""
    if isinstance(value, int) and not isinstance(value, bool) and (
            abs(value) >= 10**SHOWN_MAX_CHARS):
        return "a number too large"
    text = repr(value) if quote else str(value)
    return text if len(text) <= SHOWN_MAX_CHARS else text[:SHOWN_MAX_CHARS] + "…"


def to_decimal(value: object, name: str, problems: list[str], *, allow_negative: bool = False,
               allow_zero: bool = False) -> Decimal | None:
    """`value` as an exact Decimal in range, or None after appending a problem."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        problems.append(f"{name} must be a number (got {shown(value)})")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{name} must be a finite number (got {shown(value, quote=False)})")
        return None
    try:
        if isinstance(value, float):
            d = Decimal(repr(value))  # the shortest repr: 4.35, not 4.3499999999999996447…
        elif isinstance(value, int | Decimal):
            d = Decimal(value)  # any size (str() of a huge int would itself fail)
        else:
            d = Decimal(value.strip())
    except InvalidOperation:
        problems.append(f"{name} must be a number (got {shown(value)})")
        return None
    if not d.is_finite():
        problems.append(f"{name} must be a finite number (got {shown(value, quote=False)})")
        return None
    if d.copy_abs() >= MAX_POINTS:  # copy_abs: abs() would overflow on 1E+1000000
        problems.append(f"{name} must be below {MAX_POINTS:,} (got {shown(value, quote=False)})")
        return None
    if d != d.quantize(_QUANTUM):  # rounding silently would store a number the user never typed
        problems.append(
            f"{name} has more than {MONEY_SCALE} decimals (got {shown(value, quote=False)})")
        return None
    if d < 0 and not allow_negative:
        problems.append(f"{name} must not be negative (got {shown(value, quote=False)})")
        return None
    if d == 0 and not (allow_zero or allow_negative):
        problems.append(f"{name} must be above 0 (got {shown(value, quote=False)})")
        return None
    return d + 0  # normalise -0 to 0


def check_qty(value: object, name: str, problems: list[str]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_QTY:
        problems.append(f"{name} must be a whole number from 1 to {MAX_QTY:,} (got {shown(value)})")
        return None
    return value


def check_date(value: object, name: str, problems: list[str]) -> date | None:
    if isinstance(value, datetime) or not isinstance(value, date):
        problems.append(f"{name} must be a date (got {shown(value)})")
        return None
    if not MIN_DATE <= value <= MAX_DATE:
        problems.append(f"{name} must be between {MIN_DATE} and {MAX_DATE} "
                        f"(got {shown(value, quote=False)})")
        return None
    return value


def check_text(value: object, name: str, max_chars: int, problems: list[str]) -> str | None:
    """Any text up to `max_chars` characters, kept byte for byte (HTML and emoji included)."""
    if not isinstance(value, str):
        problems.append(f"{name} must be text (got {type(value).__name__})")
        return None
    if len(value) > max_chars:
        problems.append(f"{name} is {len(value)} characters; the limit is {max_chars}")
        return None
    if "\x00" in value:  # PostgreSQL cannot store it, and no keyboard types it
        problems.append(f"{name} contains a NUL character")
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        problems.append(f"{name} is not valid Unicode text")
        return None
    return value


@dataclass(frozen=True)
class PositionInput:
    """A condor as the user entered it. Numbers may be int, float, Decimal or numeric text."""

    root: str
    expiry: date
    k1: Number
    k2: Number
    k3: Number
    k4: Number
    qty: int
    entry_credit: Number
    opened: date | None = None  # None: today's exchange date
    roll_credits: Number = 0
    label: str = ""
    notes: str = ""
    entry_delta: Number | None = None  # Δ_e for this position; None: the user's setting


@dataclass(frozen=True)
class CleanPosition:
    root: str
    expiry: date
    k1: Decimal
    k2: Decimal
    k3: Decimal
    k4: Decimal
    qty: int
    entry_credit: Decimal
    roll_credits: Decimal
    opened: date
    label: str
    notes: str
    entry_delta: float | None = None


def clean_position(inp: PositionInput, today: date) -> CleanPosition:
    """Validated, exact values or a ValidationError listing every problem."""
    p: list[str] = []
    ks = [to_decimal(getattr(inp, f"k{i}"), name, p) for i, name in
          enumerate(("long put strike", "short put strike", "short call strike",
                     "long call strike"), 1)]
    qty = check_qty(inp.qty, "quantity", p)
    c0 = to_decimal(inp.entry_credit, "entry credit", p)
    roll = to_decimal(inp.roll_credits, "roll credits", p, allow_negative=True)
    expiry = check_date(inp.expiry, "expiry", p)
    opened = check_date(inp.opened if inp.opened is not None else today, "opened date", p)
    label = check_text(inp.label, "label", LABEL_MAX_CHARS, p)
    notes = check_text(inp.notes, "notes", NOTES_MAX_CHARS, p)
    root = inp.root.strip().upper() if isinstance(inp.root, str) else inp.root
    delta = None
    if inp.entry_delta is not None:
        d = to_decimal(inp.entry_delta, "entry delta", p)
        delta = float(d) if d is not None else None
    if not p:
        # The condor rules (strike order, credit below the wing width, dates) are core's.
        p.extend(Position(
            id=0, root=root, expiry=expiry, k1=float(ks[0]), k2=float(ks[1]), k3=float(ks[2]),
            k4=float(ks[3]), qty=qty, entry_credit=float(c0), opened=opened,
            roll_credits=float(roll), entry_delta=delta,
        ).problems())
    if p:
        raise ValidationError(p, subject="position")
    return CleanPosition(root, expiry, *ks, qty, c0, roll, opened, label, notes, delta)


@dataclass(frozen=True)
class HedgeInput:
    """A VIX hedge layer. `strike2` is the short call of a spread; futures have no strike."""

    kind: str | HedgeKind
    expiry: date
    qty: int
    cost: Number
    strike: Number | None = None
    strike2: Number | None = None
    layer: str | Layer = Layer.L2


@dataclass(frozen=True)
class CleanHedge:
    kind: str
    layer: str
    expiry: date
    qty: int
    cost: Decimal
    strike: Decimal | None
    strike2: Decimal | None


def clean_hedge(inp: HedgeInput) -> CleanHedge:
    p: list[str] = []
    kind = layer = None
    try:
        kind = HedgeKind(str(inp.kind).strip().upper())
    except ValueError:
        p.append(f"hedge kind must be one of {', '.join(HedgeKind)} (got {inp.kind!r})")
    try:
        layer = Layer(str(inp.layer).strip().upper())
    except ValueError:
        p.append(f"hedge layer must be one of {', '.join(Layer)} (got {inp.layer!r})")
    expiry = check_date(inp.expiry, "hedge expiry", p)
    qty = check_qty(inp.qty, "hedge quantity", p)
    cost = to_decimal(inp.cost, "hedge cost", p, allow_zero=True)
    strike = None if inp.strike is None else to_decimal(inp.strike, "hedge strike", p)
    strike2 = None if inp.strike2 is None else to_decimal(inp.strike2, "hedge short strike", p)
    if not p:
        p.extend(HedgeLayer(
            kind=kind, expiry=expiry, qty=qty, cost=float(cost),
            strike=None if strike is None else float(strike),
            strike2=None if strike2 is None else float(strike2), layer=layer,
        ).problems())
        if kind is HedgeKind.VIX_FUTURE and (strike is not None or strike2 is not None):
            p.append("a VIX future has no strike")
        if kind is HedgeKind.VIX_CALL and strike2 is not None:
            p.append("a single VIX call has no second strike (use VIX_CALL_SPREAD)")
    if p:
        raise ValidationError(p, subject="hedge")
    return CleanHedge(str(kind), str(layer), expiry, qty, cost, strike, strike2)
