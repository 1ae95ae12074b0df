
"""Templates and the renderer: autoescape, StrictUndefined, number formats, message splitting.

Records are built by hand from METHOD.md §11 (the worked example), so these tests do not depend
on the engine's numbers — they pin what a trader reads for given records.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import render as R
from bot.render import render, split_message
from bot.services import CheckResult, HedgeView, Preview, UserSettings
from core.models import HedgeKind, HedgeLayer, Layer, Position
from core.params import Params
from core.records import (
    BandsRecord,
    BreakevenRecord,
    ConfirmationLevel,
    ConfirmationRecord,
    DataRecord,
    EdrClose,
    EdrRecord,
    Evaluation,
    EventRecord,
    Greeks,
    GreeksRecord,
    HedgeRecommendation,
    LayerMark,
    MarketRecord,
    PnlRecord,
    PositionRecord,
    QuoteRecord,
    RollOutcome,
    RollProposal,
    RollRecord,
    SecondEngineRecord,
    SecondEngineStatus,
    SessionLabel,
    ShockRecord,
    ShortSide,
    ShortsRecord,
    ThreatSide,
    WprLevel,
    WprRecord,
    data_time,
)

ET = ZoneInfo("America/New_York")
ASOF = datetime(2026, 7, 8, 16, 15, tzinfo=ET)
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a",
                "blockquote", "tg-spoiler", "span"}


# --- record factory (METHOD §11 numbers) --------------------------------------------------------


def example_position(pid: int = 1, label: str = "", **kw) -> Position:
    base = dict(id=pid, root="SPXW", expiry=date(2026, 7, 15), k1=4845.0, k2=4870.0, k3=5130.0,
                k4=5155.0, qty=1, entry_credit=3.0, opened=date(2026, 7, 8), label=label)
    base.update(kw)
    return Position(**base)


def market_record(**kw) -> MarketRecord:
    q = lambda v: QuoteRecord(v, ASOF, "test")  # noqa: E731
    base = dict(
        asof=ASOF, phase="AFTER_HOURS", label=SessionLabel.CLOSE, spx=q(5000.0), vix=q(15.5),
        vix9d=q(15.0), vix3m=q(17.0), vvix=QuoteRecord(None, None, ""), edr_pct=0.976,
        edr_pts=48.8, edr_source="VIX", state="BREACHED", official_state="BREACHED",
        provisional=False, flags=(),
        history=(EdrClose(date(2026, 7, 7), 0.95, "BREACHED"),
                 EdrClose(date(2026, 7, 8), 0.976, "BREACHED")),
        indicators={"rsi_spx": 41.0, "macd_vix": None}, indicators_asof=date(2026, 7, 8),
        next_events=(EventRecord(datetime(2026, 7, 14, 8, 30, tzinfo=ET), "CPI", "CPI June",
                                 True),),
        term_structure=15.5 / 17.0,
    )
    base.update(kw)
    return MarketRecord(**base)


def recommendation(**kw) -> HedgeRecommendation:
    base = dict(type="VIX_CALL", expiry=date(2026, 7, 29), strikes=(19.0,), qty=1, est_cost=40.0,
                unit_cost=0.40, cost_quoted=True, delta_F=0.3, beta_F=0.67, u=20.0,
                coverage=0.40, stress_offset=0.20, future=16.6, future_source="quoted",
                sigma_v=1.0, dte=21, review_by=date(2026, 7, 27))
    base.update(kw)
    return HedgeRecommendation(**base)


def proposal(**kw) -> RollProposal:
    base = dict(program="SHORT", expiry=date(2026, 7, 17), strikes=(4780.0, 4805.0, 5195.0, 5220.0),
                qty=1, width=25.0, target_delta=0.15, credit_new=3.2, cost_to_close=3.1, r=0.1,
                net_credit=3.1, max_loss=2190.0, max_loss_before=2200.0,
                short_deltas={"put": -0.15, "call": 0.12}, pop=0.73,
                pot={"put": 0.30, "call": 0.24}, breakevens={"lo": 4801.9, "hi": 5198.1},
                wpr=0.7, vega_usd=-80.0, theta_usd=60.0, horizon_pts=120.0,
                hedge_continuity_warning=False, events=("CPI 2026-07-14",),
                execution_note="One combo order near mid; do not leg.", provisional=True,
                asof=ASOF)
    base.update(kw)
    return RollProposal(**base)


def position_record(p: Position, *, status=SecondEngineStatus.RECOMMEND,
                    outcome=RollOutcome.HEDGE_FIRST, with_proposal=False, **kw) -> PositionRecord:
    greeks = Greeks(-2.0, -0.1, -120.0, 55.0)
    base = dict(
        position_id=p.id, label=p.label, root=p.root, expiry=p.expiry,
        strikes=(p.k1, p.k2, p.k3, p.k4), qty=p.qty, net_credit=p.net_credit, dte=7,
        edr=EdrRecord(0.976, 48.8, "VIX", "BREACHED", (), 0.9, 109.0, 5.0, False, ASOF),
        wpr=WprRecord(0.84, WprLevel.OK, 1.19, 130.0, 130.0, ASOF),
        shorts=ShortsRecord(ShortSide(4870.0, -0.20, 0.41, 130.0, 0.19),
                            ShortSide(5130.0, 0.12, 0.25, 130.0, 0.14), ASOF),
        confirmation=ConfirmationRecord(ThreatSide.PUT, {"V1": 1, "V2": 1, "V3": 0, "V4": None},
                                        2, 5, ConfirmationLevel.CONFIRMED, False, date(2026, 7, 8)),
        breakeven=BreakevenRecord(
            {"lo": 4867.0, "hi": 5133.0}, {"lo": -1.24, "hi": 1.22},
            {"lo": 0.22, "hi": 0.21},
            (ShockRecord(1.5, {"lo": -0.82, "hi": 0.81}, {"lo": 0.41, "hi": 0.40},
                         {"lo": 1.2, "hi": 1.2}, -0.5, -50.0),), 1.5, ASOF),
        greeks=GreeksRecord(greeks, Greeks(0.0, 0.0, 0.0, 0.0), greeks, ASOF),
        bands=BandsRecord(False, True, False, None, False, 0.0, (0.4, 1.25), 0.0, 0.2,
                          ("B1", "B3")),
        second_engine=SecondEngineRecord(
            0.5, True, status,
            recommendation() if status in (SecondEngineStatus.RECOMMEND,
                                           SecondEngineStatus.UNDER_BUDGET) else None,
            44.0, 1, 1, 1, 0.0, (), (), "BREACHED and CONFIRMED: target coverage 50 %", ASOF),
        roll=RollRecord(outcome, outcome.rule,
                        "buy 1 VIX 2026-07-29 19C (~$40); coverage 40 %, stress offset 20 %",
                        ("EDR_PRESSURE",), proposal() if with_proposal else None, False),
        pnl=PnlRecord(3.5, -0.5, -50.0, -0.167, 2200.0, 300.0, ASOF),
        data=DataRecord(ASOF, "AFTER_HOURS", SessionLabel.CLOSE, ("MODEL_IV",)),
    )
    base.update(kw)
    return PositionRecord(**base)


def check_result(positions: list[Position], records=None, market=None) -> CheckResult:
    records = records if records is not None else [position_record(p) for p in positions]
    ev = Evaluation(market or market_record(), records)
    return CheckResult(ASOF, ev, positions, "offline", True)


# --- HTML checking ---


class _Balance(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.errors.append(f"tag <{tag}> not allowed by Telegram")
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack})")
        else:
            self.stack.pop()


def assert_telegram_html(html: str) -> None:
    p = _Balance()
    p.feed(html)
    p.close()
    assert not p.errors, p.errors
    assert not p.stack, f"unclosed tags {p.stack}"
    # a bare & or < that is not an entity/tag would be rejected by Telegram
    assert not re.search(r"&(?!(amp|lt|gt|quot|#\d+|#x[0-9a-fA-F]+);)", html), html
    assert len(html) <= R.TELEGRAM_LIMIT


# --- formatting filters ---


def test_number_filters_units():
    assert R.fmt_pts(4.35) == "4.35 pts"
    assert R.fmt_pts(5600.0) == "5,600 pts"
    assert R.fmt_pct(0.4) == "40 %"
    assert R.fmt_pct(0.94, 2, fraction=False) == "0.94 %"
    assert R.fmt_usd(2213.4) == "$2,213"
    assert R.fmt_usd(-40) == "−$40"
    assert R.fmt_signed(-0.25) == "−0.25"
    assert R.fmt_strike(22.5) == "22.5" and R.fmt_strike(5600.0) == "5600"
    for f in (R.fmt_pts, R.fmt_pct, R.fmt_usd, R.fmt_num, R.fmt_signed):
        assert f(None) == "n/a" and f(float("nan")) == "n/a"
    for f in (R.fmt_pts, R.fmt_pct, R.fmt_usd, R.fmt_signed):
        assert f(float("inf")) == "n/a"
    assert R.fmt_num(float("inf")) == "∞"  # WPR when a short strike is breached


def test_a_number_that_rounds_to_zero_has_no_sign():
    # a condor just opened at the mid: P&L −0.0001 pts must not read "−0 %" or "−0.00 pts"
    assert R.fmt_pct(-0.00004) == "0 %" and R.fmt_pct(-0.004) == "0 %"
    assert R.fmt_pts(-0.001) == "0.00 pts" and R.fmt_num(-0.004) == "0.00"
    assert R.fmt_signed(-0.001) == "0.00" and R.fmt_signed(0.001) == "0.00"
    assert R.fmt_usd(-0.4, signed=True) == "$0"
    # a value that does not round to zero keeps its sign
    assert R.fmt_pct(-0.006) == "−1 %" and R.fmt_signed(0.005001) == "+0.01"
    assert R.fmt_pts(-0.01) == "−0.01 pts" and R.fmt_num(-1000.5, 1) == "−1,000.5"


def test_dt_et_converts_to_new_york():
    utc = datetime(2026, 7, 8, 20, 15, tzinfo=ZoneInfo("UTC"))
    assert R.fmt_dt_et(utc) == "2026-07-08 16:15 ET"
    assert R.fmt_dt_et(None) == "unknown time"


# --- environment ---


def test_environment_is_strict_and_escaping():
    env = R.environment()
    assert env.undefined is jinja2.StrictUndefined
    assert env.trim_blocks and env.lstrip_blocks
    with pytest.raises(jinja2.UndefinedError):
        render("start")  # name and data_note missing


def test_missing_record_field_is_an_error_not_blank():
    class Half:
        id = 1  # no root, expiry, strikes…

    with pytest.raises(jinja2.UndefinedError):
        render("positions", positions=[Half()], asof=ASOF)


def test_templates_missing_is_clear(monkeypatch, tmp_path):
    monkeypatch.setenv(R.TEMPLATES_ENV, str(tmp_path / "nowhere"))
    # the env var is only a candidate: the repo folder is still found
    assert (R.templates_dir() / "start.html.j2").is_file()
    monkeypatch.setattr(R, "__file__", str(tmp_path / "pkg" / "render.py"))
    with pytest.raises(R.TemplatesMissing, match="ALVH_TEMPLATES_DIR"):
        R.templates_dir()


def test_html_in_label_is_escaped():
    p = example_position(label="<b>evil</b> & <script>")
    html = render("positions", positions=[p], asof=ASOF)
    assert "&lt;b&gt;evil&lt;/b&gt; &amp; &lt;script&gt;" in html
    assert "<script>" not in html
    assert_telegram_html(html)
    for kind in ("check", "check_detail", "report"):
        html = render(kind, result=check_result([p]))
        assert "<script>" not in html and "&lt;b&gt;evil&lt;/b&gt; &amp;" in html, kind
        assert_telegram_html(html)


# --- every reply kind renders valid Telegram HTML with units, times and the disclaimer ---


def test_check_shows_edr_state_hedge_and_roll_in_plain_words():
    p = example_position()
    html = render("check_detail", result=check_result([p]))
    assert_telegram_html(html)
    assert "<b>EDR</b> 0.98 %" in html and "48.80 pts" in html and "BREACHED" in html  # pts: 2 dp
    assert "Buy 1 VIX 2026-07-29 19C (~$40); coverage 40 %, stress offset 20 %" in html
    assert "hedge first" in html and "Roll: buy 1 VIX 2026-07-29 19C" in html
    assert "as of the close 2026-07-08 16:15 ET" in html  # the data time
    assert "valued" not in html
    assert R.DISCLAIMER in html


def test_an_answer_on_the_last_close_names_the_moment_it_is_valued_at():
    """Honest times: a pre-market answer rests on the last close's quotes but values the P&L at
    the moment of asking; the data label says both (it said the asking time was the close's)."""
    morning = datetime(2026, 7, 9, 8, 45, tzinfo=R.ET)
    mk = market_record(asof=morning)  # its quotes are of the close (ASOF)
    html = render("check", result=check_result([example_position()], market=mk))
    assert "as of the close 2026-07-08 16:15 ET, valued 2026-07-09 08:45 ET" in html
    early = market_record(asof=ASOF + R.VALUED_NOTE_AFTER)  # not further apart than that
    assert "valued" not in render("check", result=check_result([example_position()],
                                                               market=early))
    # the older of SPX and VIX is the data time; with no quote time, the evaluation's moment
    assert data_time(dataclasses.replace(
        mk, spx=dataclasses.replace(mk.spx, asof=ASOF - timedelta(minutes=15)))) == (
        ASOF - timedelta(minutes=15))
    assert data_time(dataclasses.replace(
        mk, spx=dataclasses.replace(mk.spx, asof=None),
        vix=dataclasses.replace(mk.vix, asof=None))) == morning


def test_check_cleared_shows_the_proposal_and_provisional_note():
    p = example_position()
    rec = position_record(p, outcome=RollOutcome.CLEARED, with_proposal=True,
                          status=SecondEngineStatus.STABILISED)
    html = render("check_detail", result=check_result([p], [rec]))
    assert_telegram_html(html)
    assert "2026-07-17 4780/4805/5195/5220" in html
    assert "net +0.10 pts (credit)" in html
    assert "Provisional: confirm after the open." in html
    assert "Hedge: in place" in html


def test_check_unevaluable_position_names_the_problem():
    p = example_position()
    rec = position_record(p, edr=None, wpr=None, shorts=None, confirmation=None, breakeven=None,
                          greeks=None, bands=None, second_engine=None, pnl=None,
                          outcome=RollOutcome.INSUFFICIENT_DATA,
                          problems=("VIX quote is missing",))
    html = render("check_detail", result=check_result([p], [rec]))
    assert_telegram_html(html)
    assert "Could not evaluate: VIX quote is missing" in html


@pytest.mark.parametrize("status", list(SecondEngineStatus))
def test_every_second_engine_status_renders(status):
    p = example_position()
    html = render("check_detail", result=check_result([p], [position_record(p, status=status)]))
    assert_telegram_html(html)
    assert "Hedge:" in html


@pytest.mark.parametrize("stabilised, failing, words", [
    (False, ("B1", "B3"), "not stabilised: failing B1, B3"),
    (False, (), "not stabilised"),
    (True, (), "· stabilised"),
    # nothing the method would buy (budget, call-side threat): never "stabilised: failing …"
    (True, ("B1", "B2"), "stabilised as far as the method goes (nothing it would buy), short of "
                         "B1, B2"),
])
def test_bands_line_never_reads_stabilised_and_failing(stabilised, failing, words):
    p = example_position()
    rec = position_record(p)
    bands = dataclasses.replace(rec.bands, stabilised=stabilised, failing=failing)
    html = render("check_detail",
                  result=check_result([p], [dataclasses.replace(rec, bands=bands)]))
    line = next(x for x in html.splitlines() if x.startswith("<b>Bands</b>"))
    assert line.endswith(words), line
    assert "· stabilised: failing" not in line


@pytest.mark.parametrize("status", [SecondEngineStatus.NOT_APPLICABLE,
                                    SecondEngineStatus.NONE_NEEDED])
@pytest.mark.parametrize("failing", [("B1", "B2"), ("B1",)])
def test_no_hedge_called_for_judges_no_coverage_band(status, failing):
    """A condor no VIX call protects (or needs): "short of B1" and "N target 0, budget 1" read
    as if a hedge were missing. Only B2, a reason to roll, is worth a word."""
    p = example_position()
    rec = position_record(p, status=status)
    bands = dataclasses.replace(rec.bands, stabilised=True, failing=failing)
    html = render("check_detail",
                  result=check_result([p], [dataclasses.replace(rec, bands=bands)]))
    assert_telegram_html(html)
    lines = html.splitlines()
    line = next(x for x in lines if x.startswith("<b>Bands</b>"))
    said = status.value.lower().replace("_", " ")
    assert line.startswith(f"<b>Bands</b> no VIX hedge is called for ({said})")
    assert "B1" not in line and "coverage 0 %" not in line
    assert ("B2 fails" in line) == ("B2" in failing)
    se_line = next(x for x in lines if x.startswith("<b>Second engine</b>"))
    assert se_line.endswith("nothing to size") and "N target" not in se_line


def test_under_budget_with_nothing_left_to_buy_never_says_buy_zero():
    # held layers already match what the budget buys: the engine recommends 0 more contracts
    p = example_position()
    rec = position_record(p, status=SecondEngineStatus.UNDER_BUDGET)
    se = dataclasses.replace(rec.second_engine,
                             recommendation=recommendation(qty=0, est_cost=0.0),
                             coverage_held=0.13)
    html = render("check_detail",
                  result=check_result([p], [dataclasses.replace(rec, second_engine=se)]))
    assert_telegram_html(html)
    assert "Buy 0" not in html
    assert "nothing more to buy" in html
    assert "$44 budget buys (1 × VIX 2026-07-29 19C at 0.40 pts each)" in html
    assert "vega coverage 13 %" in html


def test_detail_roll_market_report_render():
    p = example_position(label="core")
    result = check_result([p], [position_record(p, with_proposal=True)])
    for kind, extra in (("check_detail", {}), ("roll", {}), ("report", {})):
        html = render(kind, result=result, **extra)
        for part in split_message(html):
            assert_telegram_html(part)
        assert R.DISCLAIMER in html
    html = render("market", market=market_record(), offline=True)
    assert_telegram_html(html)
    assert "VIX 15.50 (2026-07-08 16:15 ET)" in html
    assert "VVIX n/a (missing)" in html
    assert "CPI" in html and "2026-07-14 08:30 ET" in html
    # HEDGE_FIRST (R9): the hedge first, the waiting roll shown, but no "place it" instruction
    roll = render("roll", result=result)
    assert_telegram_html(roll)
    assert "Waiting behind the hedge" in roll and "target Δ 0.15" in roll
    assert "/roll 1 done" not in roll
    cleared = check_result([p], [position_record(p, outcome=RollOutcome.CLEARED,
                                                 with_proposal=True,
                                                 status=SecondEngineStatus.STABILISED)])
    roll = render("roll", result=cleared)
    assert_telegram_html(roll)
    assert "/roll 1 done 2026-07-17 4780/4805/5195/5220 @&lt;net&gt;" in roll
    assert "Waiting behind the hedge" not in roll


def test_small_replies_render():
    p = example_position()
    pv = Preview(p, 300.0, 2200.0, 4867.0, 5133.0, ASOF)
    for html in (
        render("add_preview", preview=pv),
        render("add_done", preview=pv),
        render("positions", positions=[], asof=ASOF),
        render("hedge_list", view=HedgeView(p, [], [], None, True), action="list",
               changed=None),
        render("hedge_list",
               view=HedgeView(p, [HedgeLayer(HedgeKind.VIX_CALL_SPREAD, date(2026, 7, 29), 2, 0.8,
                                             22.0, 27.0, Layer.L2, 5)],
                              [LayerMark(0.95, 30.0, True, ASOF)], ASOF, True),
               action="add", changed=HedgeLayer(HedgeKind.VIX_FUTURE, date(2026, 7, 22), 1,
                                                18.5)),
        render("error", message="bad <input>", usage="/add …"),
        render("roll_done", old=p, new=example_position(2, roll_credits=-0.25), net=-0.25),
        render("help", topic=None),
        render("help", topic="hedge"),
        render("start", name="<Ann>", data_note="offline"),
    ):
        assert_telegram_html(html)
    done = render("roll_done", old=p, new=example_position(2, roll_credits=-0.25), net=-0.25)
    assert "net −0.25 pts per condor (debit)" in done and "Net credit now 2.75 pts" in done
    preview = render("add_preview", preview=pv)
    assert "Max profit $300 · max loss $2,200" in preview
    assert "4,867.00 and 5,133.00" in preview


def test_settings_shows_next_report_in_user_zone():
    s = UserSettings(report_time=datetime(2026, 1, 1, 8, 45).time(), timezone="Europe/Berlin",
                     alerts=True, subscribed=True, overrides={}, params=Params(),
                     next_report=datetime(2026, 7, 9, 8, 45, tzinfo=ZoneInfo("Europe/Berlin")),
                     values={"edr_trigger": 0.94, "hedge_budget": 2.0, "take_profit": 50.0})
    html = render("settings", s=s, changed=None)
    assert_telegram_html(html)
    assert "Thu 2026-07-09 08:45 CEST" in html
    assert "EDR trigger 0.94 %" in html and "hedge budget 2.0 %" in html


# --- split_message ---


def test_report_for_many_positions_splits_into_valid_parts():
    positions = [example_position(i, label=f"book <{i}>") for i in range(1, 41)]
    records = [position_record(p, with_proposal=True) for p in positions]
    html = render("report", result=check_result(positions, records))
    assert len(html) > R.TELEGRAM_LIMIT
    parts = split_message(html)
    assert len(parts) > 1
    for part in parts:
        assert_telegram_html(part)
    # nothing lost: every position appears once across the parts
    joined = "\n".join(parts)
    for p in positions:
        assert joined.count(f"<b>#{p.id}</b>") == 1


def test_split_short_message_is_untouched():
    assert split_message("<b>hi</b>") == ["<b>hi</b>"]


def test_split_reopens_a_tag_open_across_blocks():
    block = "line of text " * 20
    html = "<blockquote>" + "\n\n".join([block] * 60) + "</blockquote>"
    parts = split_message(html, limit=1000)
    assert len(parts) > 1
    for part in parts:
        assert part.startswith("<blockquote>") and part.endswith("</blockquote>")
        assert len(part) <= 1000


def test_split_one_huge_block_cuts_at_lines_not_inside_tags():
    html = "\n".join(f"<b>row {i}</b> &amp; more" for i in range(800))
    parts = split_message(html, limit=1000)
    for part in parts:
        assert len(part) <= 1000
        p = _Balance()
        p.feed(part)
        assert not p.errors and not p.stack


_words = st.text(alphabet=st.sampled_from("abc xyz&<>\"'é"), min_size=0, max_size=40)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["b", "i", "code", "u"]), _words), min_size=1,
                max_size=150),
       st.integers(min_value=300, max_value=4096))
def test_split_property_parts_fit_and_balance(blocks, limit):
    html = "\n\n".join(f"<{t}>{R.escape(w)}</{t}> {R.escape(w)}" for t, w in blocks)
    parts = split_message(html, limit=limit)
    assert all(len(p) <= limit for p in parts)
    for part in parts:
        p = _Balance()
        p.feed(part)
        assert not p.errors and not p.stack
    # text is preserved (modulo the block separators)
    strip = lambda s: re.sub(r"\s+", "", s)  # noqa: E731
    assert strip("".join(parts)) == strip(html)


@pytest.mark.parametrize("outcome", [RollOutcome.NO_VIABLE_ROLL, RollOutcome.EXIT_LOSS_LIMIT,
                                     RollOutcome.TAKE_PROFIT, RollOutcome.SETTLE_OR_CLOSE])
@pytest.mark.parametrize("template", ["check", "check_detail", "roll", "report"])
def test_a_close_verdict_never_comes_with_buy_vix_calls(outcome, template):
    # "Buy 1 VIX … 19C" beside "close instead" contradicts itself: the hedge line defers to it
    p = example_position()
    rec = position_record(p, outcome=outcome, status=SecondEngineStatus.RECOMMEND)
    kwargs = {}
    html = render(template, result=check_result([p], [rec]), **kwargs)
    assert_telegram_html(html)
    assert "Buy 1 VIX" not in html and "Hedge #1: <b>buy" not in html
    if template == "check_detail":
        assert "none to buy" in html and "close this condor" in html
        # nor a warning about bands "after this purchase" that is not advised
        rec2 = dataclasses.replace(rec, second_engine=dataclasses.replace(
            rec.second_engine, warnings=("under budget: B1 vega coverage still short of the band "
                                         "after this purchase",)))
        html2 = render(template, result=check_result([p], [rec2]), **kwargs)
        assert "after this purchase" not in html2 and "none to buy" in html2


@pytest.mark.parametrize("status", [SecondEngineStatus.UNECONOMIC_AT_THIS_SIZE,
                                    SecondEngineStatus.UNDER_BUDGET])
def test_a_close_verdict_gives_one_hedge_sentence_whatever_the_sizing_said(status):
    """"uneconomic at this size (budget $34) — hedge target 50 %" under a verdict to close
    sized a hedge nobody should buy; the close verdict decides the hedge line."""
    p = example_position()
    rec = position_record(p, outcome=RollOutcome.NO_VIABLE_ROLL, status=status)
    html = render("check_detail", result=check_result([p], [rec]))
    hedge = next(x for x in html.splitlines() if x.startswith("Hedge:"))
    assert hedge.startswith("Hedge: <b>none to buy</b> — the roll verdict is to close")
    assert "uneconomic" not in hedge and "budget" not in hedge


def test_hedge_first_still_says_buy():
    p = example_position()
    rec = position_record(p, outcome=RollOutcome.HEDGE_FIRST, status=SecondEngineStatus.RECOMMEND)
    html = render("check_detail", result=check_result([p], [rec]))
    assert "Buy 1 VIX 2026-07-29 19C" in html and "none to buy" not in html


@pytest.mark.parametrize("threat, hedged, balanced_words", [
    (ThreatSide.CALL, "put", True),   # a balanced condor: hedged for its put side
    (ThreatSide.PUT, "put", False),
])
def test_second_engine_names_the_score_its_target_was_read_from(threat, hedged, balanced_words):
    """§6 step 0 reads h* from the EDR state and the hedged side's confirmation score. The
    details showed only the threat side's score, so "confirmed (score 2), BREACHED" sat next to
    a 33 % target the table gives for a score ≤ 1 (the put side's)."""
    p = example_position()
    rec = position_record(p)
    conf = dataclasses.replace(rec.confirmation, threat_side=threat, score=2)
    se = dataclasses.replace(rec.second_engine, h_target=0.33, confirmation_score=1,
                             hedged_side=hedged)
    rec = dataclasses.replace(rec, confirmation=conf, second_engine=se)
    html = render("check_detail", result=check_result([p], [rec]))
    assert_telegram_html(html)
    line = next(x for x in html.splitlines() if x.startswith("<b>Second engine</b>"))
    assert "target coverage 33 % (EDR state BREACHED; confirmation score 1 on the put side" \
        in line, line
    assert ("which a balanced condor is hedged for" in line) is balanced_words


def test_xsp_details_name_spx_and_xsp_points_apart():
    """An XSP position's cushions are in XSP points, the EDR and horizon move in SPX points:
    both were written "pts", so a 109-point horizon move read against a 13-point cushion."""
    p = dataclasses.replace(example_position(), root="XSP", k1=486.0, k2=487.0, k3=513.0,
                            k4=514.0, entry_credit=0.5)
    html = render("check_detail", result=check_result([p], [position_record(p)]))
    assert_telegram_html(html)
    assert "= 48.80 SPX pts per session" in html
    assert "sessions: 109.00 SPX pts (10.90 XSP pts)" in html
    assert "cushion put 130.00 XSP pts, call 130.00 XSP pts" in html
    spx = render("check_detail", result=check_result([example_position()]))
    assert "SPX pts" not in spx and "XSP pts" not in spx
    assert "= 48.80 pts per session" in spx and "cushion put 130.00 pts" in spx


def test_a_recorded_roll_says_hedges_moved_only_when_some_did():
    old = example_position(pid=1)
    new = example_position(pid=2, expiry=date(2026, 7, 22))
    bare = render("roll_done", old=old, new=new, net=1.2)
    assert_telegram_html(bare)
    assert "Roll recorded: #1" in bare and "moved" not in bare
    layers = tuple(HedgeLayer(HedgeKind.VIX_CALL, date(2026, 7, 22), 1, 0.5, strike=20.0)
                   for _ in range(2))
    hedged = render("roll_done", old=dataclasses.replace(old, hedges=layers), new=new, net=1.2)
    assert "2 open hedge layers of #1 moved to #2: /hedge 2 lists them." in hedged


@pytest.mark.parametrize("outcome, says", [
    (RollOutcome.NO_VIABLE_ROLL, True), (RollOutcome.TAKE_PROFIT, True),
    (RollOutcome.EXIT_LOSS_LIMIT, True), (RollOutcome.SETTLE_OR_CLOSE, True),
    (RollOutcome.HEDGE_FIRST, False), (RollOutcome.CLEARED, False),
])
def test_a_closing_verdict_gives_the_command_that_records_the_close(outcome, says):
    p = example_position()
    html = render("check_detail", result=check_result([p], [position_record(
        p, outcome=outcome, with_proposal=outcome is RollOutcome.CLEARED)]))
    assert_telegram_html(html)
    assert ("After you close: <code>/close 1 @&lt;debit&gt;</code>" in html) is says
