"""Parsers: hand-checked examples, every kind of bad input, and hypothesis properties (round trip,
arbitrary text only ever raises ParseError, bounds)."""

from __future__ import annotations

import contextlib
from datetime import date, time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot import parsing as P
from bot.parsing import (
    CondorSpec,
    HedgeSpec,
    ParseError,
    format_condor,
    format_hedge,
    parse_add,
    parse_check,
    parse_close,
    parse_hedge,
    parse_roll,
    parse_settings,
    split_command,
    validate_condor,
    validate_hedge,
)
from core.models import HedgeKind, Layer

ASOF = date(2026, 7, 8)  # the offline sample's date


# --- /add ----------------------------------------------------------------------------------------


def test_add_one_liner_from_the_brief():
    spec = parse_add("SPXW 2026-12-18 5600/5650/6150/6200 x2 @4.35")
    assert spec == CondorSpec("SPXW", date(2026, 12, 18), (5600.0, 5650.0, 6150.0, 6200.0), 2,
                              4.35, "")


def test_add_root_case_label_and_default_qty():
    spec = parse_add("spxw 2026-12-18 5600/5650/6150/6200 @4.35  Dec   core <b>x</b>")
    assert spec.root == "SPXW" and spec.qty == 1
    assert spec.label == "Dec core <b>x</b>"  # words joined by one space, stored as given


@pytest.mark.parametrize("token, expected", [
    ("2026-12-18", date(2026, 12, 18)),
    ("20261218", date(2026, 12, 18)),
    ("18Dec26", date(2026, 12, 18)),
    ("18DEC2026", date(2026, 12, 18)),
    ("2026-7-8", date(2026, 7, 8)),
])
def test_date_forms(token, expected):
    assert P.parse_date(token, "u") == expected


@pytest.mark.parametrize("text, fragment", [
    ("SPXW 12/18/2026 5600/5650/6150/6200 @4.35", "ambiguous"),
    ("SPXW 2026-02-30 5600/5650/6150/6200 @4.35", "not a real calendar date"),
    ("SPXW tomorrow 5600/5650/6150/6200 @4.35", "not a date"),
    ("SPY 2026-12-18 5600/5650/6150/6200 @4.35", "root 'SPY'"),
    ("SPXW 2026-12-18 5600/5650/6150 @4.35", "four strikes"),
    ("SPXW 2026-12-18 5600/5650/6150/abc @4.35", "long call strike 'abc' is not a number"),
    ("SPXW 2026-12-18 5600/5650/6150/200000 @4.35", "at most 100000"),
    ("SPXW 2026-12-18 0/5650/6150/6200 @4.35", "1 or more"),
    ("SPXW 2026-12-18 5600/5650/6150/nan @4.35", "is not a number"),
    ("SPXW 2026-12-18 5600/5650/6150/inf @4.35", "is not a number"),
    ("SPXW 2026-12-18 5600/5650/6150/1e5 @4.35", "is not a plain decimal like 4.35"),
    ("SPXW 2026-12-18 5600/5650/6150/6200 x0 @4.35", "between 1 and 1000"),
    ("SPXW 2026-12-18 5600/5650/6150/6200 x1001 @4.35", "between 1 and 1000"),
    ("SPXW 2026-12-18 5600/5650/6150/6200 x-1 @4.35", "whole number"),
    ("SPXW 2026-12-18 5600/5650/6150/6200 x2", "missing the entry credit"),
    ("SPXW 2026-12-18 5600/5650/6150/6200 x2 4.35", "must start with @"),
    # the usual slips, each with the way to write it
    ("SPXW 2026-12-18 5600/5650/6150/6200 2x @4.35", "'2x' reads as a quantity: write it x2"),
    ("SPXW 2026-12-18 5600/5650/6150/6200 x2 @$4.35", "is not a number; leave out the $ sign"),
    ("SPXW 2026-12-18 5600/5650/6150/6200 x2 @4,35", "is not a number; write a decimal point"),
    ("SPXW 2026-12-18 5,600/5650/6150/6200 x2 @4.35", "no thousands separator"),
    ("SPXW 2026-12-18 5600/5650/6150/6200 x2 @0", "above 0"),
    ("SPXW 2026-12-18 5600/5650/6150/6200 x2 @-1", "cannot be negative"),
    ("SPXW 2026-12-18 5600/5650/6150/-6200 x2 @1", "cannot be negative"),
    ("SPXW 2026-12-18", "expected root, expiry, four strikes and @credit"),
    ("SPXW 2026-12-18 5600/5650/6150/6200 @4.35 " + "y" * 65, "at most 64"),
])
def test_add_bad_input_names_the_problem(text, fragment):
    with pytest.raises(ParseError) as e:
        parse_add(text)
    assert fragment in e.value.message
    assert e.value.usage == P.USAGE["add"]


def test_too_long_text_is_refused_without_echoing_it():
    blob = "A" * 10_000
    with pytest.raises(ParseError) as e:
        parse_add(blob)
    assert "10000 characters" in e.value.message and len(str(e.value)) < 300
    with pytest.raises(ParseError) as e:  # a long single token inside the limit is cut short
        parse_add("SPXW " + "9" * 400 + " 1/2/3/4 @1")
    assert len(e.value.message) < 200


@pytest.mark.parametrize("bad", ["a\x00b", "a\x1bb", "evil\u202egnp.exe"])
def test_control_characters_in_label_refused(bad):
    with pytest.raises(ParseError, match="control"):
        parse_add("SPXW 2026-12-18 5600/5650/6150/6200 @4.35 " + bad)


def test_emoji_label_accepted():
    assert parse_add("SPXW 2026-12-18 5600/5650/6150/6200 @4.35 👨\u200d👩 ok").label == (
        "👨\u200d👩 ok")


# --- semantic checks go through core (Position.problems) and the calendar ----------------------


def test_validate_condor_accepts_a_good_condor():
    pos = validate_condor(parse_add("SPXW 2026-12-18 5600/5650/6150/6200 x2 @4.35 core"), ASOF)
    assert (pos.k1, pos.k4, pos.qty, pos.entry_credit, pos.opened) == (5600, 6200, 2, 4.35, ASOF)


@pytest.mark.parametrize("text, fragment", [
    ("SPXW 2026-12-18 5650/5600/6150/6200 @4.35", "short put 5600 must be above long put 5650"),
    ("SPXW 2026-12-18 5600/5650/5640/6200 @4.35", "short call 5640 must be above short put"),
    ("SPXW 2026-12-18 5600/5650/6150/6200 @50", "must be below the narrower wing width 50"),
    ("SPXW 2026-07-01 5600/5650/6150/6200 @4.35", "in the past"),
    ("SPXW 2026-12-19 5600/5650/6150/6200 @4.35", "not a trading day"),  # a Saturday
    ("SPXW 2026-12-25 5600/5650/6150/6200 @4.35", "not a trading day"),  # Christmas
    ("SPX 2026-12-17 5600/5650/6150/6200 @4.35", "not a listed SPX expiry"),  # not 3rd Friday
    ("SPXW 2099-12-18 5600/5650/6150/6200 @4.35", "outside the trading calendar"),
])
def test_validate_condor_semantic_problems(text, fragment):
    with pytest.raises(ParseError) as e:
        validate_condor(parse_add(text), ASOF)
    assert fragment in e.value.message


def test_spx_monthly_third_friday_is_listed():
    validate_condor(parse_add("SPX 2026-12-18 5600/5650/6150/6200 @4.35"), ASOF)


# --- /hedge --------------------------------------------------------------------------------------


def test_hedge_grammar():
    cmd = parse_hedge("3 add 2 VIX 2026-12-16 22C @1.10")
    assert cmd.position_id == 3 and cmd.action == "add"
    assert cmd.spec == HedgeSpec(HedgeKind.VIX_CALL, 2, date(2026, 12, 16), 1.10, 22.0)
    spread = parse_hedge("#3 add 1 vix 2026-12-16 22/27c @0.80 L1").spec
    assert spread.kind is HedgeKind.VIX_CALL_SPREAD and spread.strike2 == 27.0
    assert spread.layer is Layer.L1
    fut = parse_hedge("3 add 1 VX 2026-12-16 @18.50").spec
    assert fut.kind is HedgeKind.VIX_FUTURE and fut.strike is None and fut.cost == 18.5
    assert parse_hedge("3").action == "list"
    rm = parse_hedge("3 remove 2 @2.40")
    assert (rm.action, rm.index, rm.price, rm.qty) == ("remove", 2, 2.4, None)
    part = parse_hedge("book sell 1 x2 @0.95")
    assert (part.position_id, part.index, part.qty, part.price) == (None, 1, 2, 0.95)
    assert parse_hedge("book remove 1 @0.95 2x") == part  # either order, "2x" too
    assert parse_hedge("3 remove 1 X3").qty == 3 and parse_hedge("3 remove 1 X3").price is None


@pytest.mark.parametrize("text, fragment", [
    ("", "which position"),
    ("abc", "position id 'abc'"),
    ("3 buy 1 VIX 2026-12-16 22C @1", "unknown hedge action"),
    ("3 add 1 SPY 2026-12-16 22C @1", "must be VIX"),
    ("3 add 1 VIX 2026-12-16 22P @1", "must end in C"),
    ("3 add 1 VIX 2026-12-16 27/22C @1", "short call must be above"),
    ("3 add 0 VIX 2026-12-16 22C @1", "between 1 and 1000"),
    ("3 add 1 VIX 2026-12-16 22C", "missing the cost"),
    ("3 add 1 VIX 2026-12-16", "expected quantity"),
    ("3 remove x", "whole number"),
    ("3 remove", "remove needs the hedge number"),
    ("3 remove 1 2", "'2' alone is ambiguous: write x2 to sell 2 contract(s) of the line, or @2"),
    ("3 remove 1 x2 x1", "give the contracts sold once"),
    ("3 remove 1 @1 @2", "give one closing price"),
    ("3 remove 1 x0 @1", "between 1 and"),
    ("3 remove 1 half", "'half' is neither a quantity like x2 nor a price like @1.85"),
    ("3 remove 1 x2 @1 L2", "remove needs the hedge number"),
    ("3 add 1 VIX 2026-12-16 22C @0.50 L4", "unexpected 'L4' after the cost: only a layer"),
    ("3 add 1 VX 2026-12-16 @18.5 x L1", "unexpected 'x' after the cost"),
])
def test_hedge_bad_input(text, fragment):
    with pytest.raises(ParseError) as e:
        parse_hedge(text)
    assert fragment in e.value.message


def test_validate_hedge_listed_vix_expiry():
    ok = parse_hedge("3 add 1 VIX 2026-12-16 22C @1").spec
    assert validate_hedge(ok, ASOF).strike == 22.0
    with pytest.raises(ParseError, match="not a listed VIX expiry"):
        validate_hedge(parse_hedge("3 add 1 VIX 2026-12-17 22C @1").spec, ASOF)
    with pytest.raises(ParseError, match="in the past"):
        validate_hedge(parse_hedge("3 add 1 VIX 2026-07-01 22C @1").spec, ASOF)


# --- /roll, /close, /check, /settings --------------------------------------------------------


def test_roll_close_check():
    r = parse_roll("3 done 2027-01-15 5500/5550/6250/6300 @-0.25")
    assert (r.done, r.expiry, r.strikes, r.net) == (True, date(2027, 1, 15),
                                                   (5500.0, 5550.0, 6250.0, 6300.0), -0.25)
    assert parse_roll("3") == P.RollCommand(3)
    assert parse_close("3 @1.20") == P.CloseCommand(3, 1.2)
    assert parse_close("#3") == P.CloseCommand(3, None)
    assert parse_close("3 @0").debit == 0.0  # expired worthless
    assert parse_check("") is None and parse_check(" 7 ") == 7
    for bad, frag in (("3 done 2027-01-15 5500/5550/6250/6300", "record a roll"),
                      ("3 later", "unexpected")):
        with pytest.raises(ParseError, match=frag):
            parse_roll(bad)
    with pytest.raises(ParseError, match="too many"):
        parse_close("3 @1 now")
    with pytest.raises(ParseError, match="at most one"):
        parse_check("1 2")
    with pytest.raises(ParseError, match="no position #0: ids start at 1"):
        parse_check("0")
    with pytest.raises(ParseError, match="no position #0: ids start at 1"):
        parse_check("#000")


@pytest.mark.parametrize("text, key, value", [
    ("report_time 08:45", "report_time", time(8, 45)),
    ("time 7:05", "report_time", time(7, 5)),
    ("tz Europe/Berlin", "timezone", "Europe/Berlin"),
    ("edr_trigger 0.94", "edr_trigger", 0.94),
    ("hedge_budget 2%", "hedge_budget", 2.0),
    ("take-profit 50", "take_profit", 50.0),
    ("alerts OFF", "alerts", False),
    ("alerts on", "alerts", True),
    ("chart on", "chart", True),
    ("chart OFF", "chart", False),
    ("report_chart yes", "chart", True),
    ("report-chart no", "chart", False),
])
def test_settings(text, key, value):
    assert parse_settings(text) == P.SettingUpdate(key, value)


@pytest.mark.parametrize("text, fragment", [
    ("colour blue", "unknown setting"),
    ("report_time 25:00", "HH:MM"),
    ("timezone Mars/Base", "IANA"),
    ("timezone ../../etc/passwd", "IANA"),
    ("edr_trigger 9", "at most 3"),
    ("hedge_budget -1", "cannot be negative"),
    ("take_profit 1000", "at most 100"),
    ("alerts maybe", "on or off"),
    ("alerts", "exactly one value"),
    ("chart daily", "chart 'daily' must be on or off"),
    ("report_chart maybe", "chart 'maybe' must be on or off"),
    ("chart", "chart needs exactly one value"),
    ("chart on please", "chart needs exactly one value"),
])
def test_settings_bad(text, fragment):
    with pytest.raises(ParseError) as e:
        parse_settings(text)
    assert fragment in e.value.message


# --- /settings quiet ---


@pytest.mark.parametrize("text, start, end", [
    ("quiet 22:00-07:00", time(22, 0), time(7, 0)),  # crosses midnight
    ("quiet 12:00-13:30", time(12, 0), time(13, 30)),
    ("quiet_hours 00:00-23:59", time(0, 0), time(23, 59)),
    ("Quiet 7:05-9:00", time(7, 5), time(9, 0)),  # one-digit hour, as for report_time
    ("quiet 23:59-00:00", time(23, 59), time(0, 0)),
    ("quiet 22:00\u201307:00", time(22, 0), time(7, 0)),  # en dash from a phone keyboard
])
def test_settings_quiet(text, start, end):
    assert parse_settings(text) == P.SettingUpdate("quiet", P.QuietHours(start, end))


@pytest.mark.parametrize("text", ["quiet off", "quiet OFF", "quiet none", "quiet_hours no"])
def test_settings_quiet_off_clears(text):
    assert parse_settings(text) == P.SettingUpdate("quiet", None)


def test_quiet_hours_overnight_and_format():
    assert P.QuietHours(time(22), time(7)).overnight
    assert not P.QuietHours(time(7), time(22)).overnight
    assert P.QuietHours(time(7, 5), time(9)).format() == "07:05-09:00"


@pytest.mark.parametrize("text, fragments", [
    ("quiet 24:00-07:00", ("'24:00'", "midnight as 00:00")),
    ("quiet 22:00-24:00", ("quiet hours end", "'24:00'", "00:00")),
    ("quiet 25:00-07:00", ("quiet hours start", "'25:00'", "hours run 00–23")),
    ("quiet 22:60-07:00", ("'22:60'", "minutes run 00–59")),
    ("quiet 7:5-08:00", ("'7:5'", "HH:MM", "24-hour")),
    ("quiet 22:00-7:5", ("quiet hours end", "'7:5'", "HH:MM")),
    ("quiet 22:00-22:00", ("same time", "22:00-07:00", "quiet off")),
    ("quiet 7:00-07:00", ("same time",)),
    ("quiet 22:00", ("'22:00'", "start and an end joined by '-'", "HH:MM-HH:MM")),
    ("quiet 2200-0700", ("start", "'2200'", "HH:MM")),
    ("quiet 22:00 07:00", ("a '-' between start and end", "quiet 22:00-07:00")),
    ("quiet 22:00 - 07:00", ("without spaces", "quiet 22:00-07:00")),
    ("quiet 22:00-07:00 weekdays", ("one value, not 2 words", "HH:MM-HH:MM")),
    ("quiet 22:00-07:00 09:00-10:00", ("one value, not 2 words",)),  # one window only
    ("quiet", ("needs a range or off", "22:00-07:00")),
    ("quiet -07:00", ("missing the start",)),
    ("quiet 22:00-", ("missing the end",)),
    ("quiet 22:00-07:00-08:00", ("more than one '-'",)),
    ("quiet on", ("start and an end",)),
    ("quiet 22.00-07.00", ("'22.00'", "HH:MM")),
    ("quiet ２２:００-07:00", ("HH:MM",)),  # full-width digits: ASCII only
])
def test_settings_quiet_bad(text, fragments):
    with pytest.raises(ParseError) as e:
        parse_settings(text)
    for fragment in fragments:
        assert fragment in e.value.message, (fragment, e.value.message)
    assert "quiet 22:00-07:00|off" in e.value.usage  # the correct form goes with every error


@settings(max_examples=150, deadline=None)
@given(start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
       end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
       alias=st.sampled_from(["quiet", "QUIET", "quiet_hours", "quiet-hours"]))
def test_quiet_round_trip(start, end, alias):
    hours = P.QuietHours(start, end)
    text = f"{alias} {hours.format()}"
    if start == end:
        with pytest.raises(ParseError, match="same time"):
            parse_settings(text)
        return
    # independent reference: the text is exactly the two zero-padded wall times
    assert hours.format() == f"{start.hour:02d}:{start.minute:02d}-{end.hour:02d}:{end.minute:02d}"
    assert parse_settings(text) == P.SettingUpdate("quiet", hours)


def test_split_command():
    assert split_command("/add@AlvhBot SPXW x") == ("add", "SPXW x")
    assert split_command("  hello ") == ("", "hello")


# --- properties ---

_price = st.decimals(min_value="0.01", max_value="999.99", places=2).map(float)
_strike = st.integers(min_value=1, max_value=100_000).map(float) | st.decimals(
    min_value="1", max_value="99999", places=1).map(float)
_label = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF,
                                        exclude_categories=("Cc", "Cs", "Zs")),
                 min_size=1, max_size=20).filter(lambda s: not s.startswith(("x", "X", "@")))


@settings(max_examples=150, deadline=None)
@given(root=st.sampled_from(["SPX", "SPXW", "XSP"]),
       expiry=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
       strikes=st.tuples(_strike, _strike, _strike, _strike),
       qty=st.integers(1, 1000), credit=_price,
       label=st.lists(_label, max_size=3).map(" ".join))
def test_add_round_trip(root, expiry, strikes, qty, credit, label):
    assume(len(label) <= P.MAX_LABEL_CHARS)
    spec = CondorSpec(root, expiry, strikes, qty, credit, label.strip())
    assert parse_add(format_condor(spec)) == spec


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(list(HedgeKind)), qty=st.integers(1, 1000),
       expiry=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
       k=st.decimals(min_value="1", max_value="200", places=1).map(float),
       width=st.decimals(min_value="0.5", max_value="50", places=1).map(float),
       cost=_price, layer=st.sampled_from(list(Layer)))
def test_hedge_round_trip(kind, qty, expiry, k, width, cost, layer):
    if kind is HedgeKind.VIX_FUTURE:
        spec = HedgeSpec(kind, qty, expiry, cost, layer=layer)
    elif kind is HedgeKind.VIX_CALL_SPREAD:
        spec = HedgeSpec(kind, qty, expiry, cost, k, k + width, layer)
    else:
        spec = HedgeSpec(kind, qty, expiry, cost, k, layer=layer)
    assert parse_hedge(f"7 add {format_hedge(spec)}").spec == spec


@settings(max_examples=200, deadline=None)
@given(index=st.integers(1, 999_999), qty=st.none() | st.integers(1, 1000),
       price=st.none() | st.decimals(min_value="0", max_value="999.99", places=2).map(float),
       qty_first=st.booleans(), qty_form=st.sampled_from(["x{}", "X{}", "{}x"]),
       book=st.booleans())
def test_hedge_remove_round_trip(index, qty, price, qty_first, qty_form, book):
    """A sale of part of a line, in any order and quantity spelling, reads back exactly."""
    parts = [] if qty is None else [qty_form.format(qty)]
    if price is not None:
        parts.insert(0 if not qty_first else len(parts), f"@{price}")
    ref = "book" if book else "7"
    cmd = parse_hedge(" ".join([ref, "remove", str(index), *parts]))
    assert (cmd.action, cmd.index, cmd.qty, cmd.price) == ("remove", index, qty, price)
    assert cmd.position_id == (None if book else 7)


_PARSERS = (parse_add, parse_hedge, parse_roll, parse_close, parse_check, parse_settings)
_tokenish = st.lists(st.sampled_from(
    ["SPXW", "spx", "2026-12-18", "18Dec26", "5600/5650/6150/6200", "1/2/3", "x2", "x0", "@4.35",
     "@-1", "@", "add", "remove", "done", "VIX", "VX", "22C", "22/27C", "L1", "3", "#3", "-1",
     "nan", "1e9", "99999999999", "report_time", "tz", "alerts", "on", "25:61", "Europe/Berlin",
     "quiet", "22:00-07:00", "24:00-1:5", "-", "off",
     "<b>", "&amp;", "\x00", "💥"]), max_size=8).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=600) | _tokenish, which=st.sampled_from(_PARSERS))
def test_arbitrary_text_only_raises_parse_error(text, which):
    try:
        which(text)
    except ParseError as e:
        assert e.message and len(e.message) < 400  # names the problem, never echoes a blob
        assert isinstance(e.usage, str)


@settings(max_examples=100, deadline=None)
@given(text=_tokenish)
def test_arbitrary_add_then_validate_only_raises_parse_error(text):
    with contextlib.suppress(ParseError):
        validate_condor(parse_add(text), ASOF)


@settings(max_examples=100, deadline=None)
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_bounds_of_numbers(value):
    token = repr(value)
    try:
        out = P.parse_number(token, "x", "u", P.STRIKE_MIN, P.STRIKE_MAX)
    except ParseError:
        return
    assert P.STRIKE_MIN <= out <= P.STRIKE_MAX and out == out  # finite, in range


@settings(max_examples=100, deadline=None)
@given(n=st.integers(min_value=-10**6, max_value=10**6))
def test_bounds_of_quantity(n):
    try:
        q = P.parse_qty(f"x{n}", "u")
    except ParseError:
        assert not P.QTY_MIN <= n <= P.QTY_MAX
    else:
        assert q == n and P.QTY_MIN <= q <= P.QTY_MAX


# --- /add: opened and delta ---------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(root=st.sampled_from(["SPX", "SPXW", "XSP"]),
       expiry=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
       strikes=st.tuples(_strike, _strike, _strike, _strike),
       qty=st.integers(1, 1000), credit=_price,
       opened=st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
       delta=st.none() | st.integers(5, 45).map(lambda n: n / 100),
       label=st.lists(_label.filter(lambda s: s.lower() not in ("opened", "delta")),
                      max_size=3).map(" ".join))
def test_add_round_trip_with_opened_and_delta(root, expiry, strikes, qty, credit, opened, delta,
                                              label):
    assume(len(label) <= P.MAX_LABEL_CHARS)
    spec = CondorSpec(root, expiry, strikes, qty, credit, label.strip(), opened, delta)
    assert parse_add(format_condor(spec)) == spec


@settings(max_examples=100, deadline=None)
@given(points=st.integers(5, 45), swap=st.booleans(), form=st.sampled_from(["{}", "0.{:02d}",
                                                                             "{}d", "{}Δ"]))
def test_add_delta_forms_and_order(points, swap, form):
    """`delta 16`, `delta 0.16`, `delta 16d`, `delta 16Δ` are all 0.16; opened/delta in either
    order; the words after them are the label."""
    token = form.format(points)
    opts = [f"delta {token}", "opened 2026-06-01"]
    if swap:
        opts.reverse()
    spec = parse_add(f"SPX 2026-08-21 6950/7000/7850/7900 x2 @10.95 {' '.join(opts)} my label")
    assert spec.entry_delta == pytest.approx(points / 100)
    assert spec.opened == date(2026, 6, 1)
    assert spec.label == "my label"


@settings(max_examples=100, deadline=None)
@given(value=st.floats(min_value=0.0001, max_value=99.9, allow_nan=False)
       .filter(lambda v: not (0.05 <= v <= 0.45 or 5 <= v <= 45)))
def test_add_delta_out_of_range_is_refused(value):
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    assume(text not in ("0",) and not (0.05 <= float(text) <= 0.45 or 5 <= float(text) <= 45))
    with pytest.raises(ParseError, match="entry delta"):
        parse_add(f"SPX 2026-08-21 6950/7000/7850/7900 @10.95 delta {text}")


@pytest.mark.parametrize("tail, fragment", [
    ("opened", "opened needs a value"),
    ("delta", "delta needs a value"),
    ("opened 2026-13-01", "opened date"),
    ("opened 06/01/2026", "ambiguous"),
    ("delta abc", "entry delta"),
    ("delta -0.16", "negative"),
    ("delta 0.16 delta 0.2", "given twice"),
    ("opened 2026-06-01 opened 2026-06-02", "given twice"),
])
def test_add_bad_options_name_the_problem(tail, fragment):
    with pytest.raises(ParseError, match=fragment):
        parse_add(f"SPX 2026-08-21 6950/7000/7850/7900 @10.95 {tail}")


@pytest.mark.parametrize("opened, fragment", [
    (date(2026, 7, 9), "in the future"),
    (date(2026, 8, 22), "after expiry"),
])
def test_add_opened_not_in_the_future_nor_after_expiry(opened, fragment):
    spec = parse_add(f"SPX 2026-08-21 6950/7000/7850/7900 @10.95 opened {opened}")
    with pytest.raises(ParseError, match=fragment):
        P.validate_condor(spec, date(2026, 7, 8))


def test_add_opened_mid_life_reaches_the_position():
    spec = parse_add("SPX 2026-08-21 6950/7000/7850/7900 x2 @10.95 opened 2026-06-01 delta 16")
    pos = P.validate_condor(spec, date(2026, 7, 8))
    assert (pos.opened, pos.entry_delta) == (date(2026, 6, 1), 0.16)
    plain = P.validate_condor(parse_add("SPX 2026-08-21 6950/7000/7850/7900 @10.95"),
                              date(2026, 7, 8))
    assert (plain.opened, plain.entry_delta) == (date(2026, 7, 8), None)


@pytest.mark.parametrize("text, value", [("entry_delta 0.16", 0.16), ("delta 16", 0.16),
                                         ("entry-delta 20", 0.20), ("entrydelta 0.45", 0.45)])
def test_settings_entry_delta(text, value):
    upd = parse_settings(text)
    assert upd.key == "entry_delta" and upd.value == pytest.approx(value)


@pytest.mark.parametrize("text", ["entry_delta 0.5", "entry_delta 0.04", "entry_delta 46",
                                  "entry_delta", "entry_delta 0.2 0.3", "entry_delta nan"])
def test_settings_entry_delta_bad(text):
    with pytest.raises(ParseError):
        parse_settings(text)


def test_an_expiry_in_the_past_is_named_alone():
    """The opened date defaults to today, so a past expiry also made "opened … is after expiry"
    of a date the user never typed: only the cause is reported."""
    with pytest.raises(ParseError) as e:
        validate_condor(parse_add("SPXW 2026-07-01 5600/5650/6150/6200 @4.35"), ASOF)
    assert "expiry 2026-07-01 is in the past" in e.value.message
    assert "opened" not in e.value.message
