"""Pure parsers for everything a user can type.

Each parser returns a typed value or raises `ParseError(message, usage)`: `message` names the
problem, `usage` shows the correct form. Parsers check *syntax and bounds* only; the method's
semantic rules (strike order, width vs credit, past expiry) live in `core.models.Position.problems`
and the listed-expiry rule in `core.calendar`; `validate_condor` applies both, so no rule is
written twice.

Accepted date forms (documented in docs/commands.md): ISO `2026-12-18`, compact `20261218`, and
broker style `18Dec26` / `18DEC2026`. US `12/18/2026` is refused with a pointer to ISO, because
`03/04` is ambiguous between countries.

Kept whole: one vocabulary. The command parsers are built from the shared token parsers
(numbers, dates, strikes, ids, labels) and share the `USAGE` lines and bounds; split up, every
piece would import every other.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, time
from functools import cache
from zoneinfo import available_timezones

from core import calendar as cal
from core.models import ROOTS, HedgeKind, HedgeLayer, Layer, Position
from core.params import DEFAULT_PARAMS, Params

# --- bounds of what a user may type (UI sanity, not method parameters) ----------------------
MAX_COMMAND_CHARS = 500
MAX_LABEL_CHARS = 64
STRIKE_MIN, STRIKE_MAX = 1.0, 100_000.0
QTY_MIN, QTY_MAX = 1, 1000
PRICE_MAX = 100_000.0  # credit, debit, hedge cost, roll net: points per contract
POSITION_ID_MAX = 2**31 - 1
EDR_TRIGGER_RANGE = (0.30, 3.00)  # % of SPX; ≈ VIX 4.8 .. 47.6
HEDGE_BUDGET_RANGE = (0.0, 20.0)  # % of max loss
TAKE_PROFIT_RANGE = (5.0, 100.0)  # % of net credit
VIX_STRIKE_MAX = 500.0
# Entry short delta Δ_e a user may type (a fraction, or whole delta points like 16 → 0.16);
# core refuses outside (0, 0.5): below 5Δ or above 45Δ is a typing slip, not a condor.
ENTRY_DELTA_RANGE = (0.05, 0.45)

USAGE = {
    "add": ("/add SPXW 2026-12-18 6650/6700/8250/8300 x2 @12.00 [opened 2026-06-01] "
            "[delta 0.16] [label]"),
    "hedge": (
        "/hedge <id>  ·  /hedge <id> add 2 VIX 2026-12-16 22C @1.10  ·  "
        "/hedge <id> add 1 VIX 2026-12-16 22/27C @0.80  ·  /hedge <id> remove <n> [x<qty>] "
        "[@price]"
        "  ·  <id> may be book: /hedge book add 1 VIX 2026-12-16 22C @1.10"
    ),
    "roll": "/roll <id>  ·  /roll <id> done 2027-01-15 5500/5550/6250/6300 @0.40",
    "close": "/close <id> [@debit], e.g. /close 3 @1.20",
    "check": "/check [id], e.g. /check or /check 3",
    "settings": (
        "/settings  ·  /settings <key> <value>, keys: report_time 08:45, "
        "timezone Europe/Berlin, edr_trigger 0.94, hedge_budget 2, take_profit 50, "
        "entry_delta 0.20, alerts on|off, quiet 22:00-07:00|off, chart on|off"
    ),
    "id": "a position number as shown by /positions, e.g. 3",
}


class ParseError(ValueError):
    """What was wrong (`message`) and the correct form (`usage`)."""

    def __init__(self, message: str, usage: str = ""):
        self.message = message
        self.usage = usage
        super().__init__(message + (f" — usage: {usage}" if usage else ""))


# --- typed results ------------------------------------------------------------------------


@dataclass(frozen=True)
class CondorSpec:
    """An iron condor as typed: strikes K1 < K2 < K3 < K4, credit in points per condor."""

    root: str
    expiry: date
    strikes: tuple[float, float, float, float]
    qty: int
    credit: float
    label: str = ""
    opened: date | None = None  # None: the day it is added
    entry_delta: float | None = None  # Δ_e for this position; None: the user's setting

    def to_position(self, opened: date, position_id: int = 0) -> Position:
        """`opened`: the date to use when the spec gives none."""
        k1, k2, k3, k4 = self.strikes
        return Position(
            id=position_id,
            root=self.root,
            expiry=self.expiry,
            k1=k1,
            k2=k2,
            k3=k3,
            k4=k4,
            qty=self.qty,
            entry_credit=self.credit,
            opened=self.opened if self.opened is not None else opened,
            label=self.label,
            entry_delta=self.entry_delta,
        )


@dataclass(frozen=True)
class HedgeSpec:
    """A VIX hedge as typed. `cost` is points per contract (option $100/pt, future $1,000/pt)."""

    kind: HedgeKind
    qty: int
    expiry: date
    cost: float
    strike: float | None = None
    strike2: float | None = None
    layer: Layer = Layer.L2

    def to_layer(self) -> HedgeLayer:
        return HedgeLayer(
            kind=self.kind,
            expiry=self.expiry,
            qty=self.qty,
            cost=self.cost,
            strike=self.strike,
            strike2=self.strike2,
            layer=self.layer,
        )


@dataclass(frozen=True)
class HedgeCommand:
    """`/hedge <id>` (action "list"), `... add <spec>`, `... remove <n> [x<qty>] [@price]`
    (1-based index; qty: part of the line).
    `position_id` None is the whole book (`/hedge book …`, METHOD §6b)."""

    position_id: int | None
    action: str  # "list" | "add" | "remove"
    spec: HedgeSpec | None = None
    index: int | None = None
    price: float | None = None  # remove: closing price, points per contract (optional)
    qty: int | None = None  # remove: contracts sold (None: the whole line)


@dataclass(frozen=True)
class RollCommand:
    """`/roll <id>` (done=False: show the verdict) or `/roll <id> done <expiry> <strikes> @net`.
    `net` is the roll's net R in points per condor: positive credit, negative debit."""

    position_id: int
    done: bool = False
    expiry: date | None = None
    strikes: tuple[float, float, float, float] | None = None
    net: float | None = None


@dataclass(frozen=True)
class CloseCommand:
    position_id: int
    debit: float | None = None  # points per condor paid to close; None: not given


@dataclass(frozen=True)
class QuietHours:
    """No intraday alerts from `start` until `end` (wall clock in the user's zone; `end` may be
    the next day, e.g. 22:00-07:00). `start != end`."""

    start: time
    end: time

    @property
    def overnight(self) -> bool:
        return self.end < self.start

    def format(self) -> str:
        """As typed: `22:00-07:00` (inverse of `parse_quiet_hours`)."""
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class SettingUpdate:
    """One setting. `key` is canonical (see SETTING_KEYS); `value` typed per key."""

    key: str
    value: object


# --- small pieces --------------------------------------------------------------------------

# Right-to-left overrides can make a label display as something else: refused with Cc.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_QTY_RE = re.compile(r"[xX][0-9]+")
_QTY_AFTER_RE = re.compile(r"[0-9]+[xX]")  # "2x": a quantity written the other way round
_NUMBER_RE = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)$")
_SIGNED_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}


def _show(token: str, limit: int = 24) -> str:
    """A user's token quoted for an error message, cut short (never echo a 10,000-char blob)."""
    text = token if len(token) <= limit else token[: limit - 1] + "…"
    return repr(text)


_HHMM_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})")


def parse_hhmm(token: str, what: str, usage: str, example: str = "08:45") -> time:
    """A wall-clock time `HH:MM` on a 24-hour clock (`H:MM` also accepted; ASCII digits only)."""
    m = _HHMM_RE.fullmatch(token)
    if not m:
        raise ParseError(
            f"{what} {_show(token)} must be HH:MM on a 24-hour clock, e.g. {example}", usage
        )
    hours, minutes = int(m[1]), int(m[2])
    if hours == 24 and minutes == 0:
        raise ParseError(f"{what} {_show(token)}: write midnight as 00:00 (HH:MM, 00:00–23:59)",
                         usage)
    if hours > 23:
        raise ParseError(
            f"{what} {_show(token)}: hours run 00–23 on a 24-hour clock (HH:MM, e.g. {example})",
            usage,
        )
    if minutes > 59:
        raise ParseError(f"{what} {_show(token)}: minutes run 00–59 (HH:MM, e.g. {example})",
                         usage)
    return time(hours, minutes)


def check_length(text: str, usage: str = "") -> str:
    if not isinstance(text, str):
        raise ParseError("expected text", usage)
    if len(text) > MAX_COMMAND_CHARS:
        raise ParseError(
            f"message is {len(text)} characters long; commands are at most {MAX_COMMAND_CHARS}",
            usage,
        )
    return text


def split_command(text: str) -> tuple[str, str]:
    """`/add@MyBot SPXW …` → ("add", "SPXW …"). Text without a leading slash → ("", text)."""
    text = check_length(text).strip()
    if not text.startswith("/"):
        return "", text
    head, _, rest = text.partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    return name, rest.strip()


def _tokens(text: str) -> list[str]:
    return text.split()


def parse_number(
    token: str,
    what: str,
    usage: str,
    lo: float,
    hi: float,
    *,
    signed: bool = False,
    lo_inclusive: bool = True,
) -> float:
    """A plain decimal (no exponent, no nan/inf) within [lo, hi] (or (lo, hi])."""
    pattern = _SIGNED_RE if signed else _NUMBER_RE
    if not signed and token.startswith("-") and _SIGNED_RE.match(token):  # a negative number
        raise ParseError(f"{what} {_show(token)} cannot be negative", usage)
    if not pattern.match(token):
        plain = "a plain decimal like 4.35" if re.search(r"[0-9][eE]", token) else "a number"
        hint = ""
        if "$" in token:
            hint = "; leave out the $ sign"
        elif "," in token:
            hint = "; write a decimal point and no thousands separator, e.g. 10.95 or 7000"
        raise ParseError(f"{what} {_show(token)} is not {plain}{hint}", usage)
    value = float(token)
    if not math.isfinite(value):
        raise ParseError(f"{what} {_show(token)} is too large", usage)
    below = value < lo if lo_inclusive else value <= lo
    if below or value > hi:
        low = f"{lo:g} or more" if lo_inclusive else f"above {lo:g}"
        raise ParseError(f"{what} {_show(token)} must be {low} and at most {hi:g}", usage)
    return value


def parse_qty(token: str, usage: str, what: str = "quantity", example: str = "x2") -> int:
    t = token[1:] if token[:1] in ("x", "X") else token
    if not t.isascii() or not t.isdigit():
        raise ParseError(f"{what} {_show(token)} must be a whole number like {example}", usage)
    if len(t) > 7 or not QTY_MIN <= int(t) <= QTY_MAX:
        raise ParseError(f"{what} must be between {QTY_MIN} and {QTY_MAX} (got {_show(t)})", usage)
    return int(t)


def parse_date(token: str, usage: str, what: str = "expiry") -> date:
    t = token.strip().upper()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", t) or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", t)
    if m:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    else:
        m = re.fullmatch(r"(\d{1,2})([A-Z]{3})(\d{2}|\d{4})", t)
        if m and m[2] in _MONTHS:
            y = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
            mo, d = _MONTHS[m[2]], int(m[1])
        elif re.fullmatch(r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}", t):
            raise ParseError(
                f"{what} {_show(token)} is ambiguous: write it as YYYY-MM-DD, e.g. 2026-12-18",
                usage,
            )
        else:
            raise ParseError(
                f"{what} {_show(token)} is not a date; write YYYY-MM-DD, e.g. 2026-12-18", usage
            )
    try:
        return date(y, mo, d)
    except ValueError:
        raise ParseError(f"{what} {_show(token)} is not a real calendar date", usage) from None


def parse_strikes(token: str, usage: str) -> tuple[float, float, float, float]:
    parts = token.split("/")
    if len(parts) != 4:
        raise ParseError(
            f"strikes {_show(token)}: expected four strikes long put/short put/short call/"
            "long call separated by '/', e.g. 6650/6700/8250/8300",
            usage,
        )
    names = ("long put", "short put", "short call", "long call")
    values = tuple(
        parse_number(p, f"{n} strike", usage, STRIKE_MIN, STRIKE_MAX)
        for p, n in zip(parts, names, strict=True)
    )
    return values  # type: ignore[return-value]


def parse_price(
    token: str, what: str, usage: str, *, allow_zero: bool = False, signed: bool = False
) -> float:
    if not token.startswith("@"):
        if _QTY_AFTER_RE.fullmatch(token):  # "2x": a quantity written the other way round
            raise ParseError(f"{_show(token)} reads as a quantity: write it x{token[:-1]}, then "
                             f"the {what} as @4.35", usage)
        raise ParseError(f"{what} {_show(token)} must start with @, e.g. @4.35", usage)
    body = token[1:]
    if signed:
        return parse_number(body, what, usage, -PRICE_MAX, PRICE_MAX, signed=True)
    return parse_number(body, what, usage, 0.0, PRICE_MAX, lo_inclusive=allow_zero)


def parse_position_id(token: str, usage: str = USAGE["id"]) -> int:
    t = token[1:] if token.startswith("#") else token
    if t.isascii() and t.isdigit() and len(t) <= 30 and int(t) > POSITION_ID_MAX:
        raise ParseError(f"no position {t} (see /positions)", usage)
    if t.isascii() and t.isdigit() and len(t) <= 30 and int(t) == 0:
        raise ParseError("no position #0: ids start at 1 (see /positions)", usage)
    if not t.isascii() or not t.isdigit() or len(t) > 10 or not 1 <= int(t) <= POSITION_ID_MAX:
        raise ParseError(
            f"position id {_show(token)} must be a number like 3 (see /positions)", usage
        )
    return int(t)


def parse_label(words: list[str], usage: str) -> str:
    label = " ".join(words)
    if len(label) > MAX_LABEL_CHARS:
        raise ParseError(f"label is {len(label)} characters; at most {MAX_LABEL_CHARS}", usage)
    if any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in label):
        raise ParseError("label contains control characters", usage)
    return label


def parse_root(token: str, usage: str) -> str:
    root = token.upper()
    if root not in ROOTS:
        raise ParseError(f"root {_show(token)} must be one of {', '.join(ROOTS)}", usage)
    return root


# --- /add ----------------------------------------------------------------------------------


def parse_entry_delta(token: str, what: str, usage: str) -> float:
    """`0.16`, `16` (whole delta points) or `16Δ`/`16d` → 0.16, within ENTRY_DELTA_RANGE."""
    t = token.strip()
    body = t[:-1] if t[-1:] in ("Δ", "d", "D") and len(t) > 1 else t
    lo, hi = ENTRY_DELTA_RANGE
    value = parse_number(body, what, usage, 0.0, 100.0, lo_inclusive=False)
    if value >= 1:  # whole delta points
        value = value / 100
    if not lo <= value <= hi:
        raise ParseError(f"{what} {_show(token)} must be between {lo:g} and {hi:g} "
                         f"(or {lo * 100:g} to {hi * 100:g} delta points)", usage)
    return round(value, 6)


_ADD_OPTIONS = ("opened", "delta")


def parse_add(text: str) -> CondorSpec:
    """`SPXW 2026-12-18 6650/6700/8250/8300 x2 @12.00 [opened 2026-06-01] [delta 0.16]
    [label words…]` (after the command). `xN` may be left out (1 condor). Root is
    case-insensitive. `opened DATE` and `delta X` may come in any order after the credit, each
    at most once; the words left are the label."""
    usage = USAGE["add"]
    tokens = _tokens(check_length(text, usage))
    if len(tokens) < 4:
        raise ParseError("expected root, expiry, four strikes and @credit", usage)
    root = parse_root(tokens[0], usage)
    expiry = parse_date(tokens[1], usage)
    strikes = parse_strikes(tokens[2], usage)
    rest = tokens[3:]
    qty = None
    if rest and rest[0][:1] in ("x", "X"):
        qty = parse_qty(rest[0], usage)
        rest = rest[1:]
    if not rest:
        raise ParseError("missing the entry credit, e.g. @4.35", usage)
    if rest[0].isascii() and rest[0].isdigit() and len(rest) > 1 and rest[1].startswith("@"):
        raise ParseError(f"quantity {_show(rest[0])} needs an x in front: x{rest[0]}", usage)
    credit = parse_price(rest[0], "credit", usage)
    rest = rest[1:]
    if rest and _QTY_RE.fullmatch(rest[0]):  # `@10.95 x2`: the quantity after the credit
        if qty is not None:
            raise ParseError("quantity given twice: write xN once, before or after the credit",
                             usage)
        qty = parse_qty(rest[0], usage)
        rest = rest[1:]
    options: dict[str, str] = {}
    while rest and rest[0].lower() in _ADD_OPTIONS:
        key = rest[0].lower()
        if key in options:
            raise ParseError(f"{key} is given twice", usage)
        if len(rest) < 2:
            raise ParseError(f"{key} needs a value, e.g. "
                             f"{'opened 2026-06-01' if key == 'opened' else 'delta 0.16'}", usage)
        options[key] = rest[1]
        rest = rest[2:]
    opened = parse_date(options["opened"], usage, "opened date") if "opened" in options else None
    delta = (parse_entry_delta(options["delta"], "entry delta", usage) if "delta" in options
             else None)
    label = parse_label(rest, usage)
    return CondorSpec(root, expiry, strikes, 1 if qty is None else qty, credit, label, opened,
                     delta)


def format_condor(spec: CondorSpec) -> str:
    """The one-liner for a spec (inverse of `parse_add`)."""
    strikes = "/".join(fmt_num(k) for k in spec.strikes)
    out = f"{spec.root} {spec.expiry.isoformat()} {strikes} x{spec.qty} @{fmt_num(spec.credit)}"
    if spec.opened is not None:
        out += f" opened {spec.opened.isoformat()}"
    if spec.entry_delta is not None:
        out += f" delta {fmt_num(spec.entry_delta)}"
    return f"{out} {spec.label}" if spec.label else out


def fmt_num(x: float) -> str:
    """Shortest exact text of a number: 5600.0 → '5600', 4.35 → '4.35'."""
    if float(x).is_integer():
        return str(int(x))
    text = repr(float(x))
    if "e" in text:  # tiny or huge: write it out in plain decimals
        text = f"{x:.12f}".rstrip("0").rstrip(".")
    return text


def listed_expiry_problem(root: str, expiry: date) -> str | None:
    """None when `expiry` is a listed expiry of `root`; else the reason in words."""
    try:
        listed = cal.spx_expiries(expiry, expiry, root)
    except cal.CalendarRangeError as exc:
        return str(exc)
    if listed:
        return None
    if not cal.is_session(expiry):
        return f"{expiry} ({expiry:%A}) is not a trading day"
    return (
        f"{expiry} is not a listed {root} expiry ({root} expires on the third Friday of the month)"
    )


def validate_condor(spec: CondorSpec, asof: date, position_id: int = 0) -> Position:
    """The spec as a `Position` opened `asof` (or on its `opened` date: not in the future,
    not after expiry), or ParseError naming every problem."""
    problems = spec.to_position(opened=asof, position_id=position_id).problems(asof)
    if spec.opened is not None and spec.opened > asof:
        problems.append(f"opened date {spec.opened} is in the future (today is {asof})")
    if not any("past" in p or "after expiry" in p for p in problems):
        listed = listed_expiry_problem(spec.root, spec.expiry)
        if listed:
            problems.append(listed)
    if problems:
        raise ParseError("; ".join(problems), USAGE["add"])
    return spec.to_position(opened=asof, position_id=position_id)


# --- /hedge --------------------------------------------------------------------------------

_VIX_OPTION_ROOTS = ("VIX", "VIXW")
_VIX_FUTURE_ROOTS = ("VX", "VXF")


BOOK_WORD = "book"  # where the id goes, the whole book: a layer held against every position


def parse_hedge(text: str) -> HedgeCommand:
    """`<id>` | `<id> add <qty> VIX <expiry> <K>C @cost [L1|L2|L3]` (spread `K/K2C`;
    future: `<id> add <qty> VX <expiry> @price`) | `<id> remove <n> [x<qty>] [@price]`; `<id>`
    may be `book` (any case): position_id None."""
    usage = USAGE["hedge"]
    tokens = _tokens(check_length(text, usage))
    if not tokens:
        raise ParseError("which position? give its id, or book for the whole book", usage)
    pid = None if tokens[0].lower() == BOOK_WORD else parse_position_id(tokens[0], usage)
    if len(tokens) == 1:
        return HedgeCommand(pid, "list")
    action = tokens[1].lower()
    if action in ("remove", "rm", "del", "delete", "close", "sell"):
        if not 3 <= len(tokens) <= 5:
            raise ParseError(
                "remove needs the hedge number from the list, e.g. remove 1 [x2] [@price]", usage
            )
        t = tokens[2].lstrip("#")
        if not t.isascii() or not t.isdigit() or len(t) > 6 or int(t) < 1:
            raise ParseError(
                f"hedge number {_show(tokens[2])} must be a whole number like 1", usage
            )
        qty, price = _sold_qty_and_price(tokens[3:], usage)
        return HedgeCommand(pid, "remove", index=int(t), price=price, qty=qty)
    if action != "add":
        raise ParseError(f"unknown hedge action {_show(tokens[1])}: use add or remove", usage)
    return HedgeCommand(pid, "add", spec=parse_hedge_spec(tokens[2:], usage))


def _sold_qty_and_price(tokens: list[str], usage: str) -> tuple[int | None, float | None]:
    """`[x<qty>] [@price]`, in either order: the contracts sold (None: all of the line) and the
    price they went at. A bare number is refused: `2` could be either, and a wrong guess would
    record a sale that did not happen."""
    qty = price = None
    for tok in tokens:
        if tok.startswith("@"):
            if price is not None:
                raise ParseError("give one closing price, e.g. @1.85", usage)
            price = parse_price(tok, "hedge closing price", usage, allow_zero=True)
        elif _QTY_RE.fullmatch(tok) or _QTY_AFTER_RE.fullmatch(tok):
            if qty is not None:
                raise ParseError("give the contracts sold once, e.g. x2", usage)
            qty = parse_qty(tok if tok[:1] in "xX" else "x" + tok[:-1], usage,
                            "contracts sold", "x2")
        elif tok.isascii() and tok.isdigit():
            raise ParseError(f"{_show(tok)} alone is ambiguous: write x{tok} to sell {tok} "
                             f"contract(s) of the line, or @{tok} for the closing price", usage)
        else:
            raise ParseError(f"{_show(tok)} is neither a quantity like x2 nor a price like "
                             "@1.85", usage)
    return qty, price


def parse_hedge_spec(tokens: list[str], usage: str = USAGE["hedge"]) -> HedgeSpec:
    if len(tokens) < 4:
        raise ParseError("expected quantity, VIX, expiry, strike(s) and @cost", usage)
    qty = parse_qty(tokens[0], usage, "hedge quantity", example="2")
    root = tokens[1].upper()
    expiry = parse_date(tokens[2], usage, "hedge expiry")
    rest = tokens[3:]
    layer = Layer.L2
    if rest and rest[-1].upper() in Layer.__members__:
        layer = Layer(rest[-1].upper())
        rest = rest[:-1]
    cost_at = next((k for k, t in enumerate(rest) if t.startswith("@")), None)
    if cost_at is not None and cost_at < len(rest) - 1:  # e.g. "… @0.50 L4": name the extra
        raise ParseError(f"unexpected {_show(' '.join(rest[cost_at + 1:]))} after the cost: only "
                         "a layer may follow it, L1, L2 or L3 (default L2)", usage)
    if root in _VIX_FUTURE_ROOTS:
        if len(rest) != 1:
            raise ParseError("a VIX future is: <qty> VX <expiry> @price", usage)
        price = parse_price(rest[0], "future price", usage)
        return HedgeSpec(HedgeKind.VIX_FUTURE, qty, expiry, price, layer=layer)
    if root not in _VIX_OPTION_ROOTS:
        raise ParseError(
            f"hedge instrument {_show(tokens[1])} must be VIX (calls) or VX (future)", usage
        )
    if len(rest) == 1 and not rest[0].startswith("@"):
        raise ParseError("missing the cost paid per contract, e.g. @1.10", usage)
    if len(rest) != 2:
        raise ParseError("expected the strike (e.g. 22C or 22/27C) then @cost", usage)
    strike_tok = rest[0].upper()
    if not strike_tok.endswith("C"):
        raise ParseError(
            f"strike {_show(rest[0])} must end in C (VIX calls), e.g. 22C or 22/27C", usage
        )
    parts = strike_tok[:-1].split("/")
    if len(parts) > 2:
        raise ParseError(f"strike {_show(rest[0])}: one strike (22C) or a spread (22/27C)", usage)
    strikes = [
        parse_number(p, "VIX strike", usage, 0.0, VIX_STRIKE_MAX, lo_inclusive=False) for p in parts
    ]
    cost = parse_price(rest[1], "hedge cost", usage)
    if len(strikes) == 2:
        if strikes[1] <= strikes[0]:
            raise ParseError(
                f"spread {_show(rest[0])}: the short call must be above the long call", usage
            )
        return HedgeSpec(
            HedgeKind.VIX_CALL_SPREAD, qty, expiry, cost, strikes[0], strikes[1], layer
        )
    return HedgeSpec(HedgeKind.VIX_CALL, qty, expiry, cost, strikes[0], layer=layer)


def format_hedge(spec: HedgeSpec) -> str:
    """Inverse of `parse_hedge_spec` (without the position id and `add`)."""
    if spec.kind is HedgeKind.VIX_FUTURE:
        body = f"{spec.qty} VX {spec.expiry.isoformat()} @{fmt_num(spec.cost)}"
    else:
        k = fmt_num(spec.strike or 0.0)
        if spec.kind is HedgeKind.VIX_CALL_SPREAD:
            k += "/" + fmt_num(spec.strike2 or 0.0)
        body = f"{spec.qty} VIX {spec.expiry.isoformat()} {k}C @{fmt_num(spec.cost)}"
    return body if spec.layer is Layer.L2 else f"{body} {spec.layer.value}"


def vix_expiry_problem(expiry: date) -> str | None:
    try:
        listed = {e.date for e in cal.vix_expiries(expiry, expiry)}
    except cal.CalendarRangeError as exc:
        return str(exc)
    if expiry in listed:
        return None
    return f"{expiry} is not a listed VIX expiry (VIX options expire on Wednesdays)"


def hedge_price_problem(kind: HedgeKind, price: float, strike: float | None = None,
                        strike2: float | None = None, params: Params = DEFAULT_PARAMS
                        ) -> str | None:
    """Why `price` (points per contract) is more than the instrument can be worth, or None: a
    VIX option or future at most `vix_price_max`, a call spread at most its width."""
    ceiling = params.vix_price_max
    if price > ceiling:
        return (f"price {fmt_num(price)} is more than a VIX option or future can be worth: "
                f"at most {fmt_num(ceiling)} points (VIX's record close is 82.69)")
    if kind is HedgeKind.VIX_CALL_SPREAD and strike is not None and strike2 is not None:
        width = strike2 - strike
        if price > width + params.price_width_tolerance_pts:
            return (f"price {fmt_num(price)} is more than the spread can be worth: the "
                    f"spread is {fmt_num(width)} wide")
    return None


def validate_hedge(spec: HedgeSpec, asof: date) -> HedgeLayer:
    layer = spec.to_layer()
    problems = layer.problems()
    price = hedge_price_problem(spec.kind, spec.cost, spec.strike, spec.strike2)
    if price:
        problems.append(price)
    if spec.expiry < asof:
        problems.append(f"hedge expiry {spec.expiry} is in the past")
    else:
        listed = vix_expiry_problem(spec.expiry)
        if listed:
            problems.append(listed)
    if problems:
        raise ParseError("; ".join(problems), USAGE["hedge"])
    return layer


# --- /roll, /close, /check --------------------------------------------------------------


def parse_roll(text: str) -> RollCommand:
    usage = USAGE["roll"]
    tokens = _tokens(check_length(text, usage))
    if not tokens:
        raise ParseError("which position? give its id", usage)
    pid = parse_position_id(tokens[0], usage)
    if len(tokens) == 1:
        return RollCommand(pid)
    if tokens[1].lower() != "done":
        raise ParseError(f"unexpected {_show(tokens[1])}: /roll <id> or /roll <id> done …", usage)
    if len(tokens) != 5:
        raise ParseError("record a roll as: done <new expiry> <four strikes> @<net>", usage)
    expiry = parse_date(tokens[2], usage, "new expiry")
    strikes = parse_strikes(tokens[3], usage)
    net = parse_price(tokens[4], "roll net (credit +, debit −)", usage, signed=True)
    return RollCommand(pid, True, expiry, strikes, net)


def parse_close(text: str) -> CloseCommand:
    usage = USAGE["close"]
    tokens = _tokens(check_length(text, usage))
    if not tokens:
        raise ParseError("which position? give its id", usage)
    if len(tokens) > 2:
        raise ParseError("too many words: /close <id> [@debit]", usage)
    pid = parse_position_id(tokens[0], usage)
    debit = (
        parse_price(tokens[1], "closing debit", usage, allow_zero=True)
        if len(tokens) == 2
        else None
    )
    return CloseCommand(pid, debit)


def parse_check(text: str) -> int | None:
    usage = USAGE["check"]
    tokens = _tokens(check_length(text, usage))
    if not tokens:
        return None
    if len(tokens) > 1:
        raise ParseError("at most one position id", usage)
    return parse_position_id(tokens[0], usage)


# --- /settings ------------------------------------------------------------------------------

SETTING_KEYS = (
    "report_time", "timezone", "edr_trigger", "hedge_budget", "take_profit", "entry_delta",
    "alerts", "quiet", "chart",
)
_SETTING_ALIASES = {
    "time": "report_time",
    "report": "report_time",
    "reporttime": "report_time",
    "tz": "timezone",
    "zone": "timezone",
    "time_zone": "timezone",
    "trigger": "edr_trigger",
    "edr": "edr_trigger",
    "budget": "hedge_budget",
    "tp": "take_profit",
    "takeprofit": "take_profit",
    "delta": "entry_delta",
    "entrydelta": "entry_delta",
    "alert": "alerts",
    "quiet_hours": "quiet",
    "quiethours": "quiet",
    "report_chart": "chart",
    "reportchart": "chart",
}
_ON = ("on", "yes", "true", "1")
_OFF = ("off", "no", "false", "0")
_QUIET_OFF = ("off", "none", "no")
QUIET_EXAMPLE = "22:00-07:00"
# A hyphen, or the en dash a phone keyboard may substitute; nothing else separates the times.
_QUIET_DASHES = re.compile("[-\u2013]")


def parse_quiet_hours(words: list[str], usage: str = USAGE["settings"]) -> QuietHours | None:
    """`HH:MM-HH:MM` → QuietHours (may cross midnight; start ≠ end); `off`/`none` → None."""
    form = f"quiet HH:MM-HH:MM (24-hour, e.g. quiet {QUIET_EXAMPLE}) or quiet off"
    if not words:
        raise ParseError(f"quiet needs a range or off: {form}", usage)
    if len(words) > 1:
        joined = "".join(words)
        if len(words) == 2 and all(_HHMM_RE.fullmatch(w) for w in words):
            raise ParseError(f"quiet hours need a '-' between start and end, with no spaces: "
                             f"quiet {_show('-'.join(words))[1:-1]} — {form}", usage)
        if re.fullmatch(r"[0-9:]+[-\u2013][0-9:]+", joined):
            raise ParseError(f"write the quiet hours without spaces: quiet "
                             f"{_show(joined)[1:-1]} — {form}", usage)
        raise ParseError(f"quiet takes one value, not {len(words)} words: {form}", usage)
    raw = words[0]
    if raw.lower() in _QUIET_OFF:
        return None
    parts = _QUIET_DASHES.split(raw)
    if len(parts) != 2:
        problem = "need a start and an end joined by '-'" if len(parts) < 2 else (
            "have more than one '-'")
        raise ParseError(f"quiet hours {_show(raw)} {problem}: {form}", usage)
    start_text, end_text = parts
    if not start_text or not end_text:
        missing = "start" if not start_text else "end"
        raise ParseError(f"quiet hours {_show(raw)} are missing the {missing} time: {form}", usage)
    start = parse_hhmm(start_text, "quiet hours start", usage, "22:00")
    end = parse_hhmm(end_text, "quiet hours end", usage, "07:00")
    if start == end:
        raise ParseError(
            f"quiet hours {_show(raw)} start and end at the same time; give two different "
            f"times (a range may cross midnight, e.g. {QUIET_EXAMPLE}), or quiet off for none",
            usage,
        )
    return QuietHours(start, end)


# Abbreviations people type for a zone. Some are IANA names too (EST, CET: fixed offsets or
# legacy rules that differ from the city's), so they are refused with the zone they mean.
TZ_ABBREVIATIONS = {
    "ET": "America/New_York", "EST": "America/New_York", "EDT": "America/New_York",
    "EST5EDT": "America/New_York", "CT": "America/Chicago", "CST": "America/Chicago",
    "CDT": "America/Chicago", "CST6CDT": "America/Chicago", "MT": "America/Denver",
    "MST": "America/Denver", "MDT": "America/Denver", "MST7MDT": "America/Denver",
    "PT": "America/Los_Angeles", "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles",
    "PST8PDT": "America/Los_Angeles", "GMT": "Europe/London or UTC", "BST": "Europe/London",
    "WET": "Europe/Lisbon", "CET": "Europe/Berlin", "CEST": "Europe/Berlin",
    "MET": "Europe/Berlin", "EET": "Europe/Athens", "EEST": "Europe/Athens",
    "MSK": "Europe/Moscow", "IST": "Asia/Kolkata", "HKT": "Asia/Hong_Kong",
    "SGT": "Asia/Singapore", "JST": "Asia/Tokyo", "AEST": "Australia/Sydney",
    "AEDT": "Australia/Sydney", "NZST": "Pacific/Auckland", "HST": "Pacific/Honolulu",
}


@cache
def iana_zones() -> frozenset[str]:
    """Every zone name the system's tz database holds (files, never folders like `America`)."""
    return frozenset(available_timezones())


def parse_timezone(raw: str, usage: str = USAGE["settings"]) -> str:
    """An IANA zone name (`Europe/Berlin`, `UTC`). Abbreviations are refused with the zone they
    mean: `EST` is fixed UTC−5, so an 08:45 report would run at 09:45 New York time in July."""
    abbreviation = TZ_ABBREVIATIONS.get(raw.upper())
    if abbreviation:
        raise ParseError(
            f"time zone {_show(raw)} is an abbreviation, which does not follow daylight saving "
            f"time the way the city does; use {abbreviation}", usage)
    if raw not in iana_zones():
        raise ParseError(
            f"time zone {_show(raw)} is not an IANA name like Europe/Berlin or America/New_York",
            usage)
    return raw


def parse_settings(text: str) -> SettingUpdate | None:
    """Empty → None (show the settings). Else `<key> <value>`: report_time HH:MM (24 h),
    timezone IANA, edr_trigger % of SPX, hedge_budget % of max loss, take_profit % of credit,
    entry_delta the entry short delta Δ_e (0.16 or 16),
    alerts on|off, quiet HH:MM-HH:MM|off (value QuietHours, or None to clear), chart on|off
    (the EDR chart with the daily report). Percent values may carry a trailing %."""
    usage = USAGE["settings"]
    tokens = _tokens(check_length(text, usage))
    if not tokens:
        return None
    key = tokens[0].lower().replace("-", "_")
    key = _SETTING_ALIASES.get(key, key)
    if key not in SETTING_KEYS:
        raise ParseError(
            f"unknown setting {_show(tokens[0])}; keys: {', '.join(SETTING_KEYS)}", usage
        )
    if key == "quiet":
        return SettingUpdate(key, parse_quiet_hours(tokens[1:], usage))
    if len(tokens) != 2:
        raise ParseError(f"{key} needs exactly one value", usage)
    raw = tokens[1]
    if key == "entry_delta":
        return SettingUpdate(key, parse_entry_delta(raw, "entry delta", usage))
    if key == "report_time":
        return SettingUpdate(key, parse_hhmm(raw, "report time", usage))
    if key == "timezone":
        return SettingUpdate(key, parse_timezone(raw, usage))
    if key == "alerts":
        word = raw.lower()
        if word in _ON or word in _OFF:
            return SettingUpdate(key, word in _ON)
        raise ParseError(f"alerts {_show(raw)} must be on or off", usage)
    if key == "chart":
        word = raw.lower()
        if word in _ON or word in _OFF:
            return SettingUpdate(key, word in _ON)
        raise ParseError(f"chart {_show(raw)} must be on or off (the EDR chart with the "
                         "daily report)", usage)
    ranges = {
        "edr_trigger": EDR_TRIGGER_RANGE,
        "hedge_budget": HEDGE_BUDGET_RANGE,
        "take_profit": TAKE_PROFIT_RANGE,
    }
    lo, hi = ranges[key]
    value = parse_number(raw.removesuffix("%"), key.replace("_", " ") + " (%)", usage, lo, hi)
    return SettingUpdate(key, value)
