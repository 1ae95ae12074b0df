"""One number style in every reply (issue 14, part 7): every template in templates/ is rendered
with contexts from a real evaluation of the offline sample (services on a real SQLite store, the
real engine), and the text a trader reads — tags stripped, entities unescaped — is checked:

- the Unicode minus (U+2212) for every negative number, never the ASCII hyphen-minus (dates
  such as 2026-07-08, times 22:00-07:00 and what the user types inside <code> are not numbers);
- a space before % ("12 %", never "12%");
- the same decimals for the same quantity: deltas 2, WPR 2, EDR % 2, VIX 2, SPX 2, index points
  2, dollars 0, probabilities (touch, PoP) 0 %;
- no "nan"/"inf" where a number belongs.

Templates are discovered with a glob, so a new template is covered the day it is added: it is
rendered with the union of every context below, and a template that needs a context of its own
fails here until one is added to CONTEXTS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import re
import sys
from datetime import date
from pathlib import Path

import pytest

from bot import parsing
from bot.marketdata.offline import OfflineProvider
from bot.render import render, templates_dir
from bot.scheduler.alerts import Alert, market_alerts, position_alerts
from bot.services import CheckResult, Services, UserRef
from bot.store import Store
from core.models import HedgeKind, HedgeLayer
from core.records import RollOutcome

sys.path.insert(0, str(Path(__file__).parent))

ANN = UserRef(4242, 4242, "Ann")
# The four-condor session of issue 14, plus one whose P&L and short put delta are negative.
CONDORS = (
    "SPXW 2026-08-21 6950/7000/7850/7900 x1 @22.50",
    "SPXW 2026-08-21 6700/6750/7700/7750 x2 @12.10",
    "SPXW 2026-07-17 7200/7250/7600/7650 x1 @18.40",
    "SPXW 2026-09-18 6900/6950/7750/7800 x3 @30.00",
)
TEMPLATES = sorted(p.name.removesuffix(".html.j2") for p in templates_dir().glob("*.html.j2"))


def _build_contexts(url: str) -> dict[str, list[dict]]:
    async def work() -> dict[str, list[dict]]:
        provider = OfflineProvider()
        clock = lambda: provider.asof  # noqa: E731 - the sample's moment, as the platform does
        store = Store.open(url, clock=clock)
        try:
            svc = Services(store=store, provider=provider, clock=clock)
            start = await svc.start(ANN)
            previews = [await svc.add_position(ANN, text) for text in CONDORS]
            preview = await svc.preview_position(ANN, "SPXW 2026-09-18 6900/6950/7750/7800 "
                                                      "x1 @30.00")
            first = previews[0].position.id
            hedge = parsing.parse_hedge(f"{first} add 2 VIX 2026-07-22 20C @1.10")
            _, added = await svc.hedge_add(ANN, first, hedge.spec)
            spread = parsing.parse_hedge(f"{first} add 1 VIX 2026-07-22 20/25C @0.60 L3")
            await svc.hedge_add(ANN, first, spread.spec)
            view = await svc.hedge_view(ANN, first)
            check = await svc.check(ANN)
            one = await svc.check(ANN, previews[1].position.id)
            report = await svc.report(ANN)
            rolls = [await svc.roll_verdict(ANN, p.position.id) for p in previews]
            market = await svc.market(ANN)
            settings = await svc.settings_get(ANN)
            subscribed = await svc.subscribe(ANN)
            again = await svc.subscribe(ANN)
            changed = await svc.settings_set(ANN, "quiet 22:00-07:00")
            # a debit roll of #3 (net −0.25), then #4 closed at a loss
            third, fourth = previews[2].position.id, previews[3].position.id
            old, new = await svc.record_roll(ANN, parsing.parse_roll(
                f"{third} done 2026-08-21 7100/7150/7700/7750 @-0.25"))
            closed = await svc.close(ANN, fourth, 40.0)
            positions = await svc.list_positions(ANN)
        finally:
            store.close()
        session = date(2026, 7, 9)
        alerts = list(market_alerts(check.market, session))
        for _, record in check.items():
            alerts += position_alerts(record, check.market.spx.value, session)
        pid, label = previews[1].position.id, "Aug wide"
        alerts += [
            Alert("s", "state", {"state": "ELEVATED", "official": "BREACHED",
                                 "edr_pct": check.market.edr_pct}),
            Alert("b", "breach", {"position_id": pid, "label": label, "side": "call",
                                  "strike": 7700.0, "spx": 7712.34}),
            Alert("e", "exit", {"position_id": pid, "label": label,
                                "signal": "VIX 31.40 ≥ 30.00: sell the L2 calls"}),
        ]
        preview_step = dict(root="SPXW", expiry=date(2026, 8, 21))
        return {
            "start": [start, {**start, "subscribed": True}],
            "help": [{"topic": None}, {"topic": "terms"}]
            + [{"topic": t} for t in ("add", "hedge", "roll", "settings")],
            "add_preview": [{"preview": preview}],
            "add_done": [{"preview": p} for p in previews],
            "add_step": [{"step": s, **preview_step}
                         for s in ("root", "expiry", "strikes", "qty", "credit")],
            "alert": [{"alerts": alerts, "market": check.market}],
            "check": [{"result": check, "single": False}, {"result": one, "single": True}],
            "check_detail": [{"result": one}, {"result": check}],
            "report": [{"result": report}],
            "roll": [{"result": r} for r in rolls],
            "roll_done": [{"old": old, "new": new, "net": -0.25}],
            "close": [{"closed": closed}],
            "error": [{"message": "strikes must rise: 7000/6950", "usage": "/add …"}],
            "hedge_list": [{"view": view, "action": "add", "changed": added},
                           {"view": dataclasses.replace(view, hedges=[], marks=[],
                                                        data_asof=None),
                            "action": None, "changed": None}],
            "market": [{"market": market.market, "offline": True}],
            "market_body": [{"mk": market.market}],
            "positions": [{"positions": positions, "asof": provider.asof},
                          {"positions": [], "asof": provider.asof}],
            "settings": [{"s": settings, "changed": None},
                         {"s": subscribed, "changed": "subscribed"},
                         {"s": again, "changed": "subscribed"},
                         {"s": changed, "changed": "quiet"}],
            "_macros": [{}],
        }

    return asyncio.run(work())


def _worked_example_results() -> list[CheckResult]:
    """METHOD §11's worked example through the real engine: before its hedge (R9, hedge first,
    a roll waiting) and after it (R10, cleared, with the proposal): the outcomes the offline
    sample's four condors do not reach."""
    from test_evaluate import ASOF, CPI, condor, snapshot, worked_history

    from core.evaluate import evaluate

    hist = worked_history()
    before = evaluate([condor()], snapshot(), hist, [CPI], asof=ASOF)
    rec = before.book_hedge.recommendation  # §6b: the one purchase is the book's
    layer = HedgeLayer(HedgeKind(rec.type), rec.expiry, rec.qty, rec.unit_cost,
                       strike=rec.strikes[0],
                       strike2=rec.strikes[1] if len(rec.strikes) > 1 else None)
    hedged = condor(hedges=(layer,))
    after = evaluate([hedged], snapshot(), hist, [CPI], asof=ASOF)
    assert before.positions[0].roll.outcome is RollOutcome.HEDGE_FIRST
    assert after.positions[0].roll.outcome is RollOutcome.CLEARED
    return [CheckResult(ASOF, before, [condor()], "worked example", False),
            CheckResult(ASOF, after, [hedged], "worked example", False)]


@pytest.fixture(scope="module")
def contexts(tmp_path_factory) -> dict[str, list[dict]]:
    path = tmp_path_factory.mktemp("style") / "style.db"
    out = _build_contexts(f"sqlite:///{path}")
    for result in _worked_example_results():
        out["check"].append({"result": result, "single": True})
        out["check_detail"].append({"result": result})
        out["roll"].append({"result": result})
        out["report"].append({"result": result})
    return out


_CODE = re.compile(r"<code>.*?</code>", re.S)
_TAG = re.compile(r"<[^>]+>")


def displayed(html_text: str) -> str:
    """What the trader reads, without what they type (<code> holds commands to copy)."""
    return html.unescape(_TAG.sub("", _CODE.sub(" ", html_text)))


# --- the rules -------------------------------------------------------------------------------

NUM = r"\d[\d,]*(?:\.\d+)?"
# A hyphen-minus used as a sign: before a digit, and not inside a date, a time range or a
# word ("VIX3M", "L2"), nor the signed roll net the user types ("@-0.25").
ASCII_NEGATIVE = re.compile(r"(?<![\w.,/@:)\]-])-(?=\d)")
PERCENT_WITHOUT_SPACE = re.compile(r"\d%")
WORDS_FOR_NUMBERS = re.compile(r"\b(nan|inf)\b")
SIGNED = r"[+−]?"
# (what, pattern whose group 1 is the number, decimals it must have)
DECIMALS = (
    ("delta", re.compile(rf"Δ ({SIGNED}{NUM})(?![\d.])"), 2),
    ("WPR", re.compile(rf"\bWPR ({NUM})(?![\d.])"), 2),
    ("EDR %", re.compile(rf"\bEDR ({NUM}) %"), 2),
    ("VIX", re.compile(rf"\bVIX ({NUM})(?![\d.\-C/])"), 2),
    ("SPX", re.compile(rf"\bSPX ({NUM})(?![\d.])"), 2),
    ("points", re.compile(rf"(?<![\d.,])({SIGNED}{NUM}) pts\b"), 2),
    # whole dollars; a rate per index point ("$8.12/pt") and gamma (Γ, $ per point²) are
    # other quantities
    ("dollars", re.compile(rf"(?<!Γ )(?<!Γ −)\$({NUM})(?![\d.]|/pt)"), 0),
    ("probability", re.compile(rf"\b(?:touch|PoP|POP ≈) ({NUM}) %"), 0),
)
_GROUPED_WHOLE = re.compile(r"^\d{1,3}(,\d{3})+$")  # 5,600 pts: a level, whole by design


def style_problems(text: str) -> list[str]:
    out = []
    for m in ASCII_NEGATIVE.finditer(text):
        out.append(f"ASCII minus: …{text[max(0, m.start() - 25):m.end() + 10]}…")
    for m in PERCENT_WITHOUT_SPACE.finditer(text):
        out.append(f"no space before %: …{text[max(0, m.start() - 20):m.end() + 5]}…")
    for m in WORDS_FOR_NUMBERS.finditer(text):
        out.append(f"a word for a number: …{text[max(0, m.start() - 25):m.end() + 5]}…")
    for what, pattern, digits in DECIMALS:
        for m in pattern.finditer(text):
            number = m[1].lstrip("+−")
            got = len(number.split(".")[1]) if "." in number else 0
            if got != digits and not (what == "points" and _GROUPED_WHOLE.match(number)):
                out.append(f"{what} with {got} decimals, not {digits}: "
                           f"…{text[max(0, m.start() - 20):m.end() + 10]}…")
    return out


# --- the rules catch what they are for (so a green run means something) ---------------------


@pytest.mark.parametrize("bad", [
    "P&L -5.20 pts", "short put Δ -0.13", "coverage 12%", "EDR 1.1 %", "WPR 0.6",
    "touch 29.5 %", "mark 12.7 pts", "($1,040.50)", "VIX 16.9 ·", "SPX 7,482.7 ·", "WPR nan",
    "(−$1,040, -43 %)",
])
def test_the_rules_flag_each_kind_of_slip(bad):
    assert style_problems(bad), bad


@pytest.mark.parametrize("good", [
    "2026-07-08 16:15 ET", "quiet 22:00-07:00", "VIX3M 19.46", "L2 VIX 2026-07-22 20C",
    "P&L −5.20 pts/condor (−$1,040, −43 % of max profit)", "short put Δ −0.13, touch 29 %",
    "5,600 pts", "(@0.40 credit, @-0.25 debit)", "|Δ$ net| $8.12/pt", "R0–R10",
    "Buy 1 VIX 2026-07-22 20/25C", "VIX MACD(12,26,9) −0.42 VIX pts",
])
def test_the_rules_let_dates_ranges_and_good_numbers_pass(good):
    assert style_problems(good) == [], good


# --- every template --------------------------------------------------------------------------


def test_every_template_has_a_context_or_renders_with_all_of_them(contexts):
    union: dict = {}
    for variants in contexts.values():
        for ctx in variants:
            union.update(ctx)
    missing = []
    for name in TEMPLATES:
        if name not in contexts:
            try:
                render(name, **union)
            except Exception as exc:  # a new template: give it a context in CONTEXTS
                missing.append(f"{name}: {type(exc).__name__}: {exc}")
    assert not missing, missing


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_numbers_follow_the_house_style(name, contexts):
    variants = contexts.get(name)
    if variants is None:  # rendered with everything we have (see the test above)
        variants = [{k: v for c in contexts.values() for ctx in c for k, v in ctx.items()}]
    problems = []
    for ctx in variants:
        text = displayed(render(name, **ctx))
        problems += style_problems(text)
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_the_sample_gives_the_style_something_to_check(contexts):
    """The contexts carry what the rules are about: negative P&L, deltas and a debit roll."""
    text = displayed(render("check", **contexts["check"][0]))
    assert re.search(r"−\$[\d,]+", text)  # a loss in dollars
    assert re.search(r"Δ −\$\d+/pt", text)  # a negative delta
    assert re.search(r"\d %", text)
    assert "net −0.25 pts" in displayed(render("roll_done", **contexts["roll_done"][0]))


def test_core_sentences_use_the_same_style(contexts):
    """The reasons and warnings come from core/evaluate.py: they follow the house style too."""
    texts = []
    for ctx in contexts["check"]:
        for _, r in ctx["result"].items():
            texts.append(r.roll.reason)
            if r.second_engine is not None:
                texts += [*r.second_engine.warnings, r.second_engine.reason]
    outcomes = {r.roll.rule for ctx in contexts["check"] for _, r in ctx["result"].items()}
    assert {"R4", "R8", "R9", "R10"} <= outcomes
    problems = [p for t in texts for p in style_problems(t)]
    assert not problems, problems


def test_the_templates_folder_is_what_the_test_walks():
    assert len(TEMPLATES) >= 19 and "check" in TEMPLATES and "report" in TEMPLATES
    assert Path(templates_dir()).is_dir()
