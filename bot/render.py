"""Every reply is a Jinja2 template in `templates/` (Telegram HTML); numbers are formatted here.

Templates live at the project's top-level `templates/` folder (the design card fixes it); the
wheel carries a copy as package data in `bot/templates/` (setup.py's build step). They are found
from `ALVH_TEMPLATES_DIR` when set, else in the package (an installed wheel), else at the top of
the checkout. If none exists, `TemplatesMissing` says where it looked, instead of a bare
TemplateNotFound on the first reply.
"""

from __future__ import annotations

import math
import os
import re
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from core.condor import XSP_SCALE
from core.records import CLOSING_OUTCOMES, RollOutcome, data_time

ET = ZoneInfo("America/New_York")
TELEGRAM_LIMIT = 4096
TEMPLATES_ENV = "ALVH_TEMPLATES_DIR"
DISCLAIMER = "Educational tool, not financial advice: check every number before you trade."

# Tags Telegram's HTML parse mode accepts; `split_message` re-balances these across parts.
TELEGRAM_TAGS = ("b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a",
                 "blockquote", "tg-spoiler", "span")


class TemplatesMissing(RuntimeError):
    """The templates folder could not be found."""


def templates_dir() -> Path:
    candidates = []
    if os.environ.get(TEMPLATES_ENV):
        candidates.append(Path(os.environ[TEMPLATES_ENV]))
    here = Path(__file__).resolve().parent
    candidates += [here / "templates", here.parent / "templates"]
    for c in candidates:
        if (c / "start.html.j2").is_file():
            return c
    raise TemplatesMissing(
        "reply templates not found; looked in " + ", ".join(str(c) for c in candidates)
        + f". Run from the source tree or set {TEMPLATES_ENV} to the templates folder."
    )


# --- number formatting (one place) ----------------------------------------------------------


def _bad(x: object) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def fmt_pts(x: float | None, digits: int = 2, unit: str = "pts") -> str:
    """Index points: 4.35 → '4.35 pts'; large values grouped: 5,600 pts. `unit` names whose
    points where two indexes meet ('SPX pts', 'XSP pts')."""
    if _bad(x):
        return "n/a"
    if abs(x) >= 1000 and float(x).is_integer():
        return _minus(f"{x:,.0f} {unit}")
    return _minus(f"{x:,.{digits}f} {unit}")


def fmt_strike(x: float | None) -> str:
    """A strike without unit: 5600 → '5600', 22.5 → '22.5'."""
    if _bad(x):
        return "n/a"
    return f"{x:.0f}" if float(x).is_integer() else f"{x:g}"


def _minus(text: str) -> str:
    """The typographic minus, as a trader's screen shows it; a number that rounds to zero
    carries no sign ("0 %", never "−0 %": a condor at its entry price has lost nothing)."""
    if text[:1] in "+-" and not any(c in "123456789" for c in text):
        text = text[1:]
    return text.replace("-", "−")


def fmt_num(x: float | None, digits: int = 2) -> str:
    """A plain number; ±inf as ∞ (e.g. WPR with a short strike breached), NaN/None as n/a."""
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if _bad(x):
        return "n/a"
    return _minus(f"{x:,.{digits}f}")


def fmt_pct(x: float | None, digits: int = 0, *, fraction: bool = True) -> str:
    """Percent. `fraction=True`: 0.4 → '40 %'; False: 0.94 (already %) → '0.94 %'."""
    if _bad(x):
        return "n/a"
    value = x * 100 if fraction else x
    return _minus(f"{value:.{digits}f} %")


def fmt_usd(x: float | None, digits: int = 0, *, signed: bool = False) -> str:
    """Dollars: 2213.4 → '$2,213'; −40 → '−$40'; `signed` also marks gains: '+$2,213'
    (a value that rounds to zero carries no sign)."""
    if _bad(x):
        return "n/a"
    sign = "-" if x < 0 else "+" if signed and x > 0 else ""
    return _minus(f"{sign}${abs(x):,.{digits}f}")  # no sign when it rounds to zero


def fmt_signed(x: float | None, digits: int = 2) -> str:
    if _bad(x):
        return "n/a"
    return _minus(f"{x:+.{digits}f}")


# a reply names its valuation moment beside its data time when they are further apart than this
VALUED_NOTE_AFTER = timedelta(minutes=30)


def asks_to_sell(exit_signals: tuple[str, ...]) -> bool:
    """An exit signal that asks to sell or close held calls (`core.hedge.exit_signals`' words),
    so the reply adds the command that records the sale."""
    return any("sell" in w or "close" in w for w in exit_signals)


def fmt_dt_et(x: datetime | date | None) -> str:
    """A data time in New York time: '2026-11-24 16:15 ET'; a date as itself."""
    if x is None:
        return "unknown time"
    if isinstance(x, datetime):
        if x.tzinfo is None:
            return x.strftime("%Y-%m-%d %H:%M") + " (no time zone)"
        return x.astimezone(ET).strftime("%Y-%m-%d %H:%M ET")
    return x.isoformat()


def fmt_dt_local(x: datetime | None, tz: str = "America/New_York") -> str:
    if x is None:
        return "unknown time"
    return x.astimezone(ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M %Z")


def fmt_date(x: date | None) -> str:
    if x is None:
        return "n/a"
    return x.strftime("%a %Y-%m-%d")


EVENT_NAMES = {"FOMC": "FOMC decision", "CPI": "CPI release", "PPI": "PPI release",
               "NFP": "jobs report (NFP)", "OTHER": "event"}
# A calendar's source key ("BLS_CPI_T2", "FED_PR_2024-08-09"): one word of capitals, digits,
# "_" and "-". Shown to nobody; a label a person wrote ("Powell speech") is.
_SOURCE_KEY = re.compile(r"^[A-Z0-9][A-Z0-9_.:/-]*$")


def fmt_event(e: object) -> str:
    """A scheduled event as a trader reads it: 'FOMC decision Wed 2026-07-29 14:00 ET'. The
    kind in words; a label only when a person wrote it (never the calendar's source key)."""
    kind = str(getattr(getattr(e, "kind", ""), "value", getattr(e, "kind", "")))
    name = EVENT_NAMES.get(kind, kind.lower() or "event")
    label = str(getattr(e, "label", "") or "").strip()
    if label and not _SOURCE_KEY.match(label) and label.lower() not in name.lower():
        name = label if kind == "OTHER" else f"{name} ({label})"
    when = getattr(e, "when", None)
    if isinstance(when, datetime) and when.tzinfo is not None:
        return f"{name} {when.astimezone(ET):%a %Y-%m-%d %H:%M} ET"
    return f"{name} {fmt_dt_et(when)}"


def words(x: object) -> str:
    """ENUM_NAME → 'enum name'."""
    return str(getattr(x, "value", x)).replace("_", " ").lower()


# --- the answer a trader acts on (one place) -------------------------------------------------

# Every roll verdict (METHOD §8, R0–R10) as the word that leads a position's summary line. Close
# verdicts (R1, R2, R3, R8) read as what to do with the condor; R5–R7 (a roll would be due but
# may not be made now) read "watch"; R4 alone reads "hold". A test checks every outcome maps.
ANSWERS: dict[RollOutcome, str] = {
    RollOutcome.INSUFFICIENT_DATA: "no verdict: data missing",  # R0
    RollOutcome.SETTLE_OR_CLOSE: "settle or close",  # R1
    RollOutcome.TAKE_PROFIT: "take profit",  # R2
    RollOutcome.EXIT_LOSS_LIMIT: "close: loss limit",  # R3
    RollOutcome.ROLL_NOT_NEEDED: "hold",  # R4
    RollOutcome.BLOCKED_BY_EVENT: "watch: event before a roll",  # R5
    RollOutcome.BLOCKED_BY_REGIME: "watch: no roll in this regime",  # R6
    RollOutcome.HOLD_UNCONFIRMED: "watch: unconfirmed",  # R7
    RollOutcome.NO_VIABLE_ROLL: "close: no roll pays",  # R8
    RollOutcome.HEDGE_FIRST: "hedge first (book hedge below)",  # R9
    RollOutcome.CLEARED: "roll: cleared",  # R10
}


def answer(outcome: RollOutcome | str) -> str:
    """The summary line's answer for a roll verdict (an enum or its name)."""
    return ANSWERS[RollOutcome(getattr(outcome, "value", outcome))]


FILTERS = {
    "pts": fmt_pts, "strike": fmt_strike, "num": fmt_num, "pct": fmt_pct, "usd": fmt_usd,
    "signed": fmt_signed, "dt_et": fmt_dt_et, "data_time": data_time,
    "dt_local": fmt_dt_local, "day": fmt_date,
    "words": words, "event": fmt_event, "answer": answer, "asks_to_sell": asks_to_sell,
}


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"),
                                      disabled_extensions=("txt.j2",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(FILTERS)
    env.globals["DISCLAIMER"] = DISCLAIMER
    env.globals["CLOSING_OUTCOMES"] = frozenset(o.value for o in CLOSING_OUTCOMES)
    env.globals["XSP_SCALE"] = XSP_SCALE
    env.globals["VALUED_NOTE_AFTER"] = VALUED_NOTE_AFTER
    return env


_BLANK_RUN = re.compile(r"\n{3,}")


def compile_templates() -> int:
    """Compile every reply template now (Jinja2 keeps them), not on its first reply; how many."""
    env = environment()
    names = sorted(x.name for x in templates_dir().iterdir() if x.name.endswith(".j2"))
    for name in names:
        env.get_template(name)
    return len(names)


def render(kind: str, **data: object) -> str:
    """Render `templates/<kind>.html.j2`; runs of blank lines collapse to one (block breaks)."""
    html = environment().get_template(f"{kind}.html.j2").render(**data)
    return _BLANK_RUN.sub("\n\n", html).strip()


def render_plain(kind: str, **data: object) -> str:
    """Render `templates/<kind>.txt.j2`: plain text (no HTML, no escaping), for a callback's
    toast or a caption."""
    return environment().get_template(f"{kind}.txt.j2").render(**data).strip()


def escape(text: object) -> Markup:
    return Markup.escape(text)


# --- splitting ------------------------------------------------------------------------------

_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^>]*)?)>")


def _open_stack(html: str, stack: list[tuple[str, str]] | None = None
                ) -> list[tuple[str, str]]:
    """Tags left open at the end of `html`, as [(name, full opening tag)]; `stack`: the tags
    open before `html` (not changed)."""
    stack = [] if stack is None else list(stack)
    for m in _TAG_RE.finditer(html):
        closing, name = m[1], m[2].lower()
        if closing:
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][0] == name:
                    del stack[i:]
                    break
        else:
            stack.append((name, m[0]))
    return stack


def _close_tags(stack: list[tuple[str, str]]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    # UTF-16-LE: two bytes per unit (a lone surrogate, passed through, is one unit too)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _chars_within(text: str, units: int) -> int:
    """The longest prefix of `text` (in characters) that is at most `units` UTF-16 units."""
    total = 0
    for i, ch in enumerate(text):
        total += 2 if ord(ch) > 0xFFFF else 1
        if total > units:
            return i
    return len(text)


def _hard_pieces(block: str, limit: int) -> list[str]:
    """A block longer than `limit` UTF-16 units: cut at line ends, else at spaces, never inside
    a tag or an entity."""
    pieces: list[str] = []
    rest = block
    while utf16_len(rest) > limit:
        end = _chars_within(rest, limit)
        window = rest[:end]
        cut = window.rfind("\n")
        if cut <= 0:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = end
        # never inside a tag or an entity
        lt, gt = window.rfind("<", 0, cut), window.rfind(">", 0, cut)
        if lt > gt:
            cut = lt
        amp, semi = window.rfind("&", 0, cut), window.rfind(";", 0, cut)
        if amp > semi and cut - amp <= 10:
            cut = amp
        if cut <= 0:
            cut = end
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n ")
    if rest:
        pieces.append(rest)
    return pieces


def split_message(html: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split a reply into parts of at most `limit` UTF-16 code units (Telegram's count) on block
    boundaries (blank lines), each part valid HTML: tags still open at a cut are closed and
    reopened in the next part. A single block too long for one part is cut at line ends."""
    if utf16_len(html) <= limit:
        return [html]
    # reserve room for closing/reopening tags around a cut
    budget = max(limit - 200, limit // 2)
    blocks: list[str] = []
    for block in html.split("\n\n"):
        blocks.extend(_hard_pieces(block, budget) if utf16_len(block) > budget else [block])
    parts: list[str] = []
    current = ""  # begins with the tags reopened from the previous part
    # the part's length and open tags are carried along, not recounted over the whole part for
    # every block (that was quadratic in the reply's length)
    cur_len, cur_open = 0, []
    for block in blocks:
        if current:
            candidate = f"{current}\n\n{block}"
            cand_len = cur_len + 2 + utf16_len(block)
            # a tag cannot run on into the block unless the part ends inside a "<...": then
            # the whole candidate is scanned, as before
            tail_open = current.rfind("<") > current.rfind(">")
            cand_open = (_open_stack(candidate) if tail_open
                         else _open_stack(block, cur_open))
        else:
            candidate, cand_len, cand_open = block, utf16_len(block), _open_stack(block)
        if current and cand_len + len(_close_tags(cand_open)) > limit:
            parts.append(current + _close_tags(cur_open))
            current = "".join(tag for _, tag in cur_open) + block
            cur_len, cur_open = utf16_len(current), _open_stack(current)
        else:
            current, cur_len, cur_open = candidate, cand_len, cand_open
    if current:
        parts.append(current + _close_tags(cur_open))
    return [p for p in parts if p.strip()]
