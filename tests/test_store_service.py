"""The Store API on a real SQLite file: positions, rolls, hedges, settings, logs, validation."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.store import (
    Conflict,
    HedgeInput,
    NotFound,
    PositionInput,
    Store,
    ValidationError,
)
from bot.store.tables import LABEL_MAX_CHARS, NOTES_MAX_CHARS
from core.models import HedgeKind, HedgeLayer, Layer, Position

NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # 10:30 in New York
ALICE, BOB = 111, 222


@pytest.fixture
def store(make_database_url):
    s = Store.open(make_database_url("alvh", migrated=True), clock=lambda: NOW)
    s.ensure_user(ALICE, ALICE)
    s.ensure_user(BOB, BOB)
    yield s
    s.close()


def condor(**kw) -> PositionInput:
    base = dict(root="SPXW", expiry=date(2026, 12, 18), k1=4845, k2=4870, k3=5130, k4=5155,
                qty=2, entry_credit=4.35, label="Dec")
    base.update(kw)
    return PositionInput(**base)


def test_add_get_list_round_trips_exact_values(store):
    row = store.add_position(ALICE, condor(k2="4870.25", entry_credit=4.35))
    got = store.get_position(ALICE, row.id)
    assert got.entry_credit == Decimal("4.35") and str(got.entry_credit.normalize()) == "4.35"
    assert got.k2 == Decimal("4870.25")
    assert (got.status, got.opened, got.qty, got.root) == ("open", date(2026, 11, 25), 2, "SPXW")
    assert got.opened_at == NOW and got.opened_at.tzinfo is not None
    assert [p.id for p in store.list_positions(ALICE)] == [row.id]
    assert store.list_positions(BOB) == []


def test_core_position_and_hedges(store):
    row = store.add_position(ALICE, condor(roll_credits=0.5))
    store.add_hedge(ALICE, row.id, HedgeInput("VIX_CALL_SPREAD", date(2026, 12, 16), 3, 1.15,
                                              strike=22, strike2=30, layer="l1"))
    store.add_hedge(ALICE, None, HedgeInput("VIX_FUTURE", date(2026, 12, 16), 1, 18.25))
    (pos,) = store.core_positions(ALICE)
    assert isinstance(pos, Position) and pos.validate() is pos
    assert (pos.k1, pos.k4, pos.entry_credit, pos.roll_credits) == (4845.0, 5155.0, 4.35, 0.5)
    assert pos.net_credit == pytest.approx(4.85, abs=1e-12)
    assert pos.opened == date(2026, 11, 25) and pos.label == "Dec"
    (h,) = pos.hedges
    assert (h.kind, h.layer, h.strike, h.strike2, h.qty, h.cost) == (
        HedgeKind.VIX_CALL_SPREAD, Layer.L1, 22.0, 30.0, 3, 1.15)
    (book,) = store.book_hedges(ALICE)
    assert book.kind is HedgeKind.VIX_FUTURE and book.strike is None


def test_accepts_core_inputs_as_the_bot_passes_them(store):
    p = Position(id=0, root="SPX", expiry=date(2026, 12, 18), k1=4845, k2=4870, k3=5130,
                 k4=5155, qty=1, entry_credit=3.0, opened=date(2026, 11, 24), label="core")
    row = store.add_position(ALICE, p)
    assert (row.root, row.opened, row.entry_credit) == ("SPX", date(2026, 11, 24), Decimal(3))
    layer = HedgeLayer(kind=HedgeKind.VIX_CALL, expiry=date(2026, 12, 16), qty=2, cost=0.95,
                       strike=21.0)
    # either argument order after the user
    a = store.add_hedge(ALICE, row.id, layer)
    b = store.add_hedge(ALICE, layer, row.id)
    assert a.position_id == b.position_id == row.id and b.cost == Decimal("0.95")


def test_close_computes_realised_pnl_by_hand(store):
    row = store.add_position(ALICE, condor(qty=3, entry_credit=4.35, roll_credits=1.2))
    closed = store.close_position(ALICE, row.id, debit=2.15)
    # (4.35 + 1.20 − 2.15) × 100 × 3 = 1020.00 dollars
    assert store.get_position(ALICE, row.id).realised_pnl == Decimal("1020.00")
    assert closed.status == "closed" and closed.closed_at == NOW
    assert store.list_positions(ALICE) == []
    assert [p.id for p in store.list_positions(ALICE, status="closed")] == [row.id]
    with pytest.raises(Conflict, match="already closed"):
        store.close_position(ALICE, row.id)


def test_expire_and_close_without_debit(store):
    a = store.add_position(ALICE, condor())
    b = store.add_position(ALICE, condor())
    assert store.close_position(ALICE, a.id).realised_pnl is None
    # expired worthless: the whole 4.35 × 100 × 2 is kept
    assert store.expire_position(ALICE, b.id, 0).realised_pnl == Decimal("870.00")
    assert store.get_position(ALICE, b.id).status == "expired"


def test_roll_is_atomic_and_carries_credits(store):
    old = store.add_position(ALICE, condor(entry_credit=3.0, roll_credits=0.5, notes="n"))
    hedge = store.add_hedge(ALICE, old.id, HedgeInput("VIX_CALL", date(2026, 12, 16), 2, 1.0,
                                                      strike=22))
    was, new = store.roll_position(ALICE, old.id, expiry=date(2027, 1, 15), k1=4800, k2=4825,
                                   k3=5200, k4=5225, net_credit=1.25)
    assert was.status == "rolled" and store.get_position(ALICE, old.id).status == "rolled"
    assert new.parent_id == old.id and new.status == "open"
    # C0 stays 3.00; ΣR = 0.50 + 1.25 = 1.75; Cn = 4.75
    assert (new.entry_credit, new.roll_credits) == (Decimal("3.0"), Decimal("1.75"))
    assert new.label == "Dec" and new.notes == "n"
    (roll,) = store.rolls(ALICE)
    assert (roll.old_id, roll.new_id, roll.net_credit) == (old.id, new.id, Decimal("1.25"))
    assert store.get_hedge(ALICE, hedge.id).position_id == new.id
    with pytest.raises(Conflict):
        store.roll_position(ALICE, old.id, expiry=date(2027, 1, 15), k1=4800, k2=4825,
                            k3=5200, k4=5225, net_credit=1)


def test_failed_roll_changes_nothing(store):
    old = store.add_position(ALICE, condor())
    audit_before = len(store.audit_trail(ALICE, limit=100))
    with pytest.raises(ValidationError, match="short call 4825 must be above short put 4850"):
        store.roll_position(ALICE, old.id, expiry=date(2027, 1, 15), k1=4800, k2=4850,
                            k3=4825, k4=5225, net_credit=1)
    assert store.get_position(ALICE, old.id).status == "open"
    assert store.list_positions(ALICE, status=None) == [store.get_position(ALICE, old.id)]
    assert len(store.audit_trail(ALICE, limit=100)) == audit_before


def test_roll_positional_form_and_debit_roll(store):
    old = store.add_position(ALICE, condor(entry_credit=3.0))
    new_legs = Position(id=0, root="SPXW", expiry=date(2027, 1, 15), k1=4800, k2=4825, k3=5200,
                        k4=5225, qty=2, entry_credit=99.0, opened=date(2026, 11, 25))
    _, new = store.roll_position(ALICE, old.id, new_legs, -0.4)
    assert (new.entry_credit, new.roll_credits) == (Decimal(3), Decimal("-0.4"))


def test_delete_is_soft_hidden_and_audited(store):
    row = store.add_position(ALICE, condor())
    h = store.add_hedge(ALICE, row.id, HedgeInput("VIX_CALL", date(2026, 12, 16), 1, 1.0,
                                                  strike=22))
    store.delete_position(ALICE, row.id)
    with pytest.raises(NotFound):
        store.get_position(ALICE, row.id)
    with pytest.raises(NotFound):
        store.get_hedge(ALICE, h.id)
    assert store.list_positions(ALICE, status=None) == []
    trail = store.audit_trail(ALICE, limit=3)
    assert [a.action for a in trail][:2] == ["position.delete", "hedge.delete"]
    assert json.loads(trail[0].before_json)["deleted_at"] is None
    assert json.loads(trail[0].after_json)["deleted_at"] is not None
    with store.engine.connect() as conn:  # still in the table
        assert conn.exec_driver_sql("SELECT count(*) FROM positions").scalar() == 1


def test_close_hedge_pnl_by_hand(store):
    opt = store.add_hedge(ALICE, None, HedgeInput("VIX_CALL", date(2026, 12, 16), 3, 1.15,
                                                  strike=22))
    fut = store.add_hedge(ALICE, None, HedgeInput("VIX_FUTURE", date(2026, 12, 16), 2, 18.25))
    # options: (2.40 − 1.15) × 100 × 3 = 375; futures: (17.80 − 18.25) × 1000 × 2 = −900
    assert store.close_hedge(ALICE, opt.id, 2.40).realised_pnl == Decimal("375.00")
    assert store.close_hedge(ALICE, fut.id, "17.80").realised_pnl == Decimal("-900.00")
    assert store.list_hedges(ALICE) == []
    assert len(store.list_hedges(ALICE, status=None)) == 2
    with pytest.raises(Conflict):
        store.close_hedge(ALICE, opt.id)


def test_selling_part_of_a_hedge_line_splits_it(store):
    pos = store.add_position(ALICE, condor())
    line = store.add_hedge(ALICE, pos.id, HedgeInput("VIX_CALL", date(2026, 12, 16), 5, 1.15,
                                                     strike=22))
    with pytest.raises(ValidationError, match="holds 5 contract"):
        store.close_hedge(ALICE, line.id, 2.40, qty=6)
    with pytest.raises(ValidationError, match="contracts sold must be a whole number"):
        store.close_hedge(ALICE, line.id, 2.40, qty=0)
    assert [h.qty for h in store.list_hedges(ALICE)] == [5]  # refused: nothing changed
    sold = store.close_hedge(ALICE, line.id, "2.40", qty=2)
    # (2.40 − 1.15) × 100 × 2 = 250 on the two sold; the rest stays open at its cost
    assert (sold.qty, sold.status, sold.close_price, sold.realised_pnl) == (
        2, "closed", Decimal("2.40"), Decimal("250.00"))
    assert sold.id != line.id and sold.position_id == pos.id and sold.cost == line.cost
    (kept,) = store.list_hedges(ALICE)
    assert (kept.id, kept.qty, kept.qty_sold, kept.status, kept.cost, kept.opened_at) == (
        line.id, 3, 2, "open", line.cost, line.opened_at)
    trail = store.audit_trail(ALICE, limit=2)
    assert [a.action for a in trail] == ["hedge.close", "hedge.reduce"]
    assert json.loads(trail[1].before_json)["qty"] == 5
    assert json.loads(trail[1].after_json)["qty"] == 3
    assert trail[0].before_json is None and json.loads(trail[0].after_json)["qty"] == 2
    # the core view holds the 3 still open, 2 sold (less than half: "sell half" still asked);
    # all three contracts sold at last: no split
    assert [(h.qty, h.qty_sold) for h in store.core_positions(ALICE)[0].hedges] == [(3, 2)]
    assert [(h.qty, h.qty_sold) for h in store.open_book(ALICE).positions[0].hedges] == [(3, 2)]
    last = store.close_hedge(ALICE, line.id, "1.00", qty=3)
    assert last.id == line.id and last.realised_pnl == Decimal("-45.00")
    assert store.list_hedges(ALICE) == []
    assert sorted(h.qty for h in store.list_hedges(ALICE, status=None)) == [2, 3]


def test_hedge_on_closed_position_conflicts(store):
    row = store.add_position(ALICE, condor())
    store.close_position(ALICE, row.id)
    with pytest.raises(Conflict, match="hedge an open position"):
        store.add_hedge(ALICE, row.id, HedgeInput("VIX_CALL", date(2026, 12, 16), 1, 1,
                                                  strike=22))


@pytest.mark.parametrize("changes, fragment", [
    (dict(k2=4840), "short put 4840 must be above long put 4845"),
    (dict(qty=0), "quantity must be a whole number from 1 to 10,000"),
    (dict(qty=2.5), "quantity must be a whole number"),
    (dict(qty=True), "quantity must be a whole number"),
    (dict(entry_credit=float("nan")), "entry credit must be a finite number"),
    (dict(entry_credit=float("inf")), "entry credit must be a finite number"),
    (dict(entry_credit="1e400"), "entry credit must be below 100,000"),
    (dict(entry_credit=-1), "entry credit must not be negative"),
    (dict(entry_credit=30), "net credit 30 must be below the narrower wing width 25"),
    (dict(entry_credit=4.35001), "entry credit has more than 4 decimals"),
    (dict(k1="abc"), "long put strike must be a number"),
    (dict(k4=10**9), "long call strike must be below 100,000"),
    (dict(k4=10**5000), "long call strike must be below 100,000"),
    (dict(k4="9" * 5000), "long call strike must be below 100,000"),
    (dict(root="SPY"), "root must be one of SPX, SPXW, XSP"),
    (dict(label="x" * (LABEL_MAX_CHARS + 1)), f"the limit is {LABEL_MAX_CHARS}"),
    (dict(notes="x" * (NOTES_MAX_CHARS + 1)), f"the limit is {NOTES_MAX_CHARS}"),
    (dict(label="a\x00b"), "label contains a NUL character"),
    (dict(label="\ud800"), "label is not valid Unicode text"),
    (dict(label=5), "label must be text"),
    (dict(opened=date(2027, 1, 1)), "opened 2027-01-01 is after expiry 2026-12-18"),
    (dict(expiry="2026-12-18"), "expiry must be a date"),
    (dict(expiry=date(1900, 1, 1)), "expiry must be between"),
])
def test_bad_position_input_is_refused_before_writing(store, changes, fragment):
    with pytest.raises(ValidationError) as info:
        store.add_position(ALICE, condor(**changes))
    assert any(fragment in p for p in info.value.problems), info.value.problems
    assert store.list_positions(ALICE, status=None) == []


def test_every_problem_named_at_once(store):
    with pytest.raises(ValidationError) as info:
        store.add_position(ALICE, condor(qty=-1, entry_credit="x", label="y" * 100))
    assert len(info.value.problems) == 3


@pytest.mark.parametrize("inp, fragment", [
    (HedgeInput("VIX_PUT", date(2026, 12, 16), 1, 1.0, strike=22), "hedge kind must be one of"),
    (HedgeInput("VIX_CALL", date(2026, 12, 16), 1, 1.0), "VIX call strike must be a positive"),
    (HedgeInput("VIX_CALL_SPREAD", date(2026, 12, 16), 1, 1.0, strike=22, strike2=20),
     "short call 20 of the spread must be above long call 22"),
    (HedgeInput("VIX_FUTURE", date(2026, 12, 16), 1, 18.0, strike=22), "no strike"),
    (HedgeInput("VIX_CALL", date(2026, 12, 16), 0, 1.0, strike=22), "hedge quantity"),
    (HedgeInput("VIX_CALL", date(2026, 12, 16), 1, -1.0, strike=22), "must not be negative"),
    (HedgeInput("VIX_CALL", date(2026, 12, 16), 1, 1.0, strike=22, layer="L9"), "layer"),
])
def test_bad_hedge_input(store, inp, fragment):
    with pytest.raises(ValidationError) as info:
        store.add_hedge(ALICE, None, inp)
    assert any(fragment in p for p in info.value.problems), info.value.problems


def test_database_constraints_become_clear_errors(store):
    """Rows that slip past validation (a bug, a hand edit) still meet the database's rules."""
    from sqlalchemy import text

    with store.engine.begin() as conn:
        with pytest.raises(Exception) as info:
            conn.execute(text(
                "INSERT INTO positions (user_id, root, expiry, k1, k2, k3, k4, qty, entry_credit,"
                " roll_credits, label, notes, status, opened, opened_at) VALUES (1, 'SPX',"
                " '2026-12-18', 5000, 4900, 5100, 5200, 1, 1, 0, '', '', 'open', '2026-11-25',"
                " '2026-11-25 00:00:00')"))
        assert "ck_positions_strikes" in str(info.value)
    from bot.store.errors import integrity_error as _integrity_error

    assert isinstance(_integrity_error(info.value), ValidationError)
    # A duplicate user through the API path becomes a Conflict, not a traceback.
    from sqlalchemy import exc

    with store.engine.begin() as conn, pytest.raises(exc.IntegrityError) as dup:
        conn.execute(text("INSERT INTO users (tg_user_id, timezone, report_time, alerts_enabled,"
                          " param_overrides, subscribed, created_at, last_seen_at) VALUES"
                          f" ({ALICE}, 'UTC', '08:00', TRUE, '{{}}', FALSE,"
                          " '2026-11-25 00:00:00', '2026-11-25 00:00:00')"))
    err = _integrity_error(dup.value)
    assert isinstance(err, Conflict) and str(err) == "that record already exists"
    # A hedge pointing at another user's position is refused by the composite foreign key.
    bob_pos = store.add_position(BOB, condor())
    with store.engine.begin() as conn, pytest.raises(exc.IntegrityError) as fk:
        conn.execute(text(
            "INSERT INTO hedges (user_id, position_id, kind, layer, expiry, qty, cost, status,"
            f" opened_at) VALUES (1, {bob_pos.id}, 'VIX_CALL', 'L2', '2026-12-16', 1, 1, 'open',"
            " '2026-11-25 00:00:00')"))
    assert isinstance(_integrity_error(fk.value), Conflict)


def test_settings_validated_and_overrides_merged(store):
    s = store.update_settings(ALICE, timezone="Europe/London", report_time="07:05",
                              quiet_start="22:00", quiet_end="06:30", alerts_enabled=False)
    assert (s.timezone, s.report_time, s.quiet_start, s.alerts_enabled) == (
        "Europe/London", "07:05", "22:00", False)
    store.update_settings(ALICE, param_overrides={"edr_trigger_pct": 1.0})
    s = store.update_settings(ALICE, param_overrides={"wpr_watch": 0.9})
    assert s.param_overrides == {"edr_trigger_pct": 1.0, "wpr_watch": 0.9}
    assert s.params().edr_trigger_pct == 1.0
    s = store.update_settings(ALICE, param_overrides={"edr_trigger_pct": None})
    assert s.param_overrides == {"wpr_watch": 0.9}
    s = store.update_settings(ALICE, param_overrides={"shocks": [1.1, 1.3],
                                                      "event_multipliers": {"FOMC": 2}})
    assert s.params().shocks == (1.1, 1.3) and s.params().event_multipliers == {"FOMC": 2}
    s = store.update_settings(ALICE, param_overrides={"shocks": None,
                                                      "event_multipliers": None})
    assert store.get_settings(ALICE) == s


def test_report_chart_setting_is_off_until_turned_on(store):
    assert store.get_settings(ALICE).report_chart is False  # new users: text only
    s = store.update_settings(ALICE, report_chart=True)
    assert s.report_chart is True and store.get_settings(ALICE).report_chart is True
    assert store.get_settings(BOB).report_chart is False  # one user's setting only
    assert [u.report_chart for u in store.list_subscribers()] == []  # nobody subscribed yet
    store.subscribe(ALICE)
    assert [b.settings.report_chart for b in store.subscriber_books()] == [True]
    assert store.update_settings(ALICE, report_chart=False).report_chart is False


@pytest.mark.parametrize("changes, fragment", [
    (dict(timezone="Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    (dict(timezone="../../etc/passwd"), "unknown time zone"),
    (dict(report_time="25:00"), "report time must be a time HH:MM"),
    (dict(report_time="8:45"), "report time must be a time HH:MM"),
    (dict(report_time="０８:４５"), "report time must be a time HH:MM"),
    (dict(alerts_enabled="yes"), "alerts_enabled must be true or false"),
    (dict(report_chart=1), "report_chart must be true or false (got 1)"),
    (dict(report_chart="on"), "report_chart must be true or false"),
    (dict(param_overrides={"no_such": 1}), "unknown parameter(s): no_such"),
    (dict(param_overrides={"edr_trigger_pct": "high"}), "parameter edr_trigger_pct must look"),
    (dict(param_overrides={"edr_trigger_pct": float("nan")}), "parameter edr_trigger_pct"),
    (dict(param_overrides={"macd_fast": 1.5}), "parameter macd_fast"),
    (dict(param_overrides={"edr_trigger_pct": 10**400}), "parameter edr_trigger_pct"),
    (dict(param_overrides={"shocks": ["big"]}), "parameter shocks"),
    (dict(param_overrides={"event_multipliers": {"FED": 2.0}}), "parameter event_multipliers"),
    (dict(colour="red"), "unknown setting(s): colour"),
])
def test_bad_settings(store, changes, fragment):
    before = store.get_settings(ALICE)
    with pytest.raises(ValidationError) as info:
        store.update_settings(ALICE, **changes)
    assert any(fragment in p for p in info.value.problems), info.value.problems
    assert store.get_settings(ALICE) == before


def test_subscribers_and_users(store):
    store.subscribe(ALICE)
    store.set_subscribed(BOB, True)
    store.unsubscribe(BOB)
    assert [u.tg_user_id for u in store.list_subscribers()] == [ALICE]
    again = store.ensure_user(ALICE, 999)
    assert again.chat_id == 999 and again.subscribed
    with pytest.raises(NotFound, match="send /start"):
        store.add_position(333, condor())
    with pytest.raises(ValidationError, match="telegram user id"):
        store.ensure_user(-5)


def test_report_log_once_per_user_session_kind(store):
    day = date(2026, 11, 25)
    assert store.record_report(ALICE, day, "morning") is True
    assert store.record_report(ALICE, day, "morning") is False
    assert store.record_report(ALICE, day, "close") is True
    assert store.record_report(BOB, day, "morning") is True
    row = store.report_sent(ALICE, day, "morning", ok=False, error="timed out")
    assert (row.delivery_status, row.attempts, row.error, row.sent_at) == (
        "failed", 1, "timed out", None)
    row = store.report_sent(ALICE, day, "morning")
    assert (row.delivery_status, row.attempts, row.error, row.sent_at) == ("sent", 2, None, NOW)
    with pytest.raises(NotFound):
        store.report_sent(ALICE, date(2026, 11, 26), "morning")
    with pytest.raises(ValidationError):
        store.record_report(ALICE, day, "")


def test_alert_log_and_edr_readings(store):
    assert store.record_alert(ALICE, "edr:BREACHED:2026-11-25") is True
    assert store.record_alert(ALICE, "edr:BREACHED:2026-11-25") is False
    assert store.record_alert(BOB, "edr:BREACHED:2026-11-25") is True
    assert store.record_edr_reading(date(2026, 11, 24), 0.91, "APPROACHING", "cboe") is True
    assert store.record_edr_reading(date(2026, 11, 24), 0.99, "BREACHED", "cboe") is False
    assert store.record_edr_reading(date(2026, 11, 21), 0.88, "APPROACHING", "cboe") is True
    assert [(r.session_date.day, r.edr_pct) for r in store.edr_readings(5)] == [(21, 0.88),
                                                                               (24, 0.91)]
    assert store.record_edr_reading(date(2026, 11, 24), 0.99, "BREACHED", "cboe",
                                    replace=True) is True
    assert [r.edr_pct for r in store.edr_readings(1)] == [0.99]
    for bad in (float("nan"), float("inf"), -0.1, 10**400, "0.9", True):
        with pytest.raises(ValidationError, match="EDR % must be a number from 0 to 100"):
            store.record_edr_reading(date(2026, 11, 25), bad, "CALM", "cboe")


def test_audit_trail_records_before_and_after(store):
    row = store.add_position(ALICE, condor())
    store.update_position_text(ALICE, row.id, label="<i>renamed</i>")
    entry = store.audit_trail(ALICE, limit=1)[0]
    assert (entry.action, entry.entity, entry.entity_id) == ("position.edit", "position", row.id)
    assert json.loads(entry.before_json)["label"] == "Dec"
    assert json.loads(entry.after_json)["label"] == "<i>renamed</i>"
    assert json.loads(entry.after_json)["entry_credit"] == "4.35"
    assert store.audit_trail(BOB) == [store.audit_trail(BOB)[0]]  # only Bob's user.create
    assert store.audit_trail(BOB)[0].action == "user.create"


# Any text within the limit, including HTML, quotes, emoji and SQL, comes back byte for byte.
_text = st.text(alphabet=st.characters(blacklist_characters="\x00",
                                       blacklist_categories=("Cs",)), max_size=LABEL_MAX_CHARS)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=_text | st.sampled_from(["'; DROP TABLE positions; --", "<b>&amp;</b>", "🦅👨‍👩‍👧"]),
       notes=st.text(max_size=40))
def test_label_round_trips_exactly(store, label, notes):
    notes = notes.replace("\x00", "")
    row = store.add_position(ALICE, condor(label=label, notes=notes))
    got = store.get_position(ALICE, row.id)
    assert got.label == label and got.notes == notes


def test_last_seen_refreshed_at_most_once_a_minute(make_database_url):
    from datetime import timedelta

    now = [NOW]
    store = Store.open(make_database_url("seen"), clock=lambda: now[0])
    store.ensure_user(ALICE, 1)
    now[0] = NOW + timedelta(seconds=30)
    store.ensure_user(ALICE, 1)
    assert store.export_user(ALICE)["tables"]["users"][0]["last_seen_at"] == NOW.isoformat()
    assert store.ensure_user(ALICE, 2).chat_id == 2  # a new chat id is written at once
    now[0] = NOW + timedelta(seconds=90)
    store.ensure_user(ALICE, 2)
    assert store.export_user(ALICE)["tables"]["users"][0]["last_seen_at"] == now[0].isoformat()
    store.close()


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cost=st.decimals(min_value=0, max_value=Decimal("99999.9999"), places=4),
       strike=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999.9999"), places=4))
def test_any_four_decimal_value_round_trips_exactly(store, cost, strike):
    """SQLite keeps Numeric(12, 4) as a float: every 4-decimal value must still come back."""
    row = store.add_hedge(ALICE, None, HedgeInput("VIX_CALL", date(2026, 12, 16), 1, str(cost),
                                                  strike=str(strike)))
    got = store.get_hedge(ALICE, row.id)
    assert got.cost == cost and got.strike == strike
    assert store.list_positions(ALICE, status="all") == store.list_positions(ALICE, None)


def test_subscriber_books_match_the_per_user_view(store):
    a1 = store.add_position(ALICE, condor(label="a1"))
    a2 = store.add_position(ALICE, condor(label="a2"))
    store.add_position(BOB, condor(label="b"))  # Bob is not subscribed
    store.add_hedge(ALICE, a2.id, HedgeInput("VIX_CALL", date(2026, 12, 16), 2, 1.0, strike=22))
    store.add_hedge(ALICE, None, HedgeInput("VIX_FUTURE", date(2026, 12, 16), 1, 18.0))
    store.close_position(ALICE, a1.id)
    store.subscribe(ALICE)
    (book,) = store.subscriber_books()
    assert book.settings.tg_user_id == ALICE
    assert book.positions == store.core_positions(ALICE)
    assert [p.label for p in book.positions] == ["a2"] and len(book.positions[0].hedges) == 1
    assert book.book_hedges == store.book_hedges(ALICE) and len(book.book_hedges) == 1
    store.subscribe(BOB)
    assert [b.settings.tg_user_id for b in store.subscriber_books()] == [ALICE, BOB]


def test_open_book_is_the_three_reads_of_a_check(store):
    a1 = store.add_position(ALICE, condor(label="a1"))
    a2 = store.add_position(ALICE, condor(label="a2"))
    store.add_position(BOB, condor(label="b"))
    store.add_hedge(ALICE, a2.id, HedgeInput("VIX_CALL", date(2026, 12, 16), 2, 1.0, strike=22))
    store.add_hedge(ALICE, None, HedgeInput("VIX_FUTURE", date(2026, 12, 16), 1, 18.0))
    store.add_hedge(BOB, None, HedgeInput("VIX_CALL", date(2026, 12, 16), 1, 0.5, strike=25))
    closed = store.add_hedge(ALICE, None, HedgeInput("VIX_CALL", date(2026, 12, 16), 1, 0.4,
                                                     strike=30))
    store.close_hedge(ALICE, closed.id, "0.10")
    store.close_position(ALICE, a1.id)
    book = store.open_book(ALICE, ALICE)
    assert book.settings == store.ensure_user(ALICE, ALICE)
    assert book.positions == store.core_positions(ALICE)
    assert [p.label for p in book.positions] == ["a2"] and len(book.positions[0].hedges) == 1
    assert book.book_hedges == store.book_hedges(ALICE)
    assert [h.kind for h in book.book_hedges] == [HedgeKind.VIX_FUTURE]  # Bob's and closed: out
    assert store.open_book(BOB, BOB).positions == store.core_positions(BOB)


def test_open_book_registers_and_refreshes_like_ensure_user(make_database_url):
    from datetime import timedelta

    now = [NOW]
    store = Store.open(make_database_url("book"), clock=lambda: now[0])
    new = store.open_book(ALICE, 7)  # first contact: registered, an empty book
    assert (new.settings.tg_user_id, new.settings.chat_id, new.positions) == (ALICE, 7, [])
    assert store.open_book(ALICE, 8).settings.chat_id == 8  # a new chat id is written at once
    now[0] = NOW + timedelta(seconds=90)
    store.open_book(ALICE, 8)
    assert store.export_user(ALICE)["tables"]["users"][0]["last_seen_at"] == now[0].isoformat()
    store.close()


def test_report_skipped_is_recorded_as_such(store):
    day = date(2026, 11, 25)
    assert store.record_report(ALICE, day, "premarket") is True
    row = store.report_skipped(ALICE, day, "premarket", "missed until after the open")
    assert (row.delivery_status, row.attempts, row.sent_at, row.error) == (
        "skipped", 0, None, "missed until after the open")
    assert store.record_report(ALICE, day, "premarket") is False
    assert store.reports(ALICE)[0].delivery_status == "skipped"


_anything = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**4000),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                      st.decimals(allow_nan=True, allow_infinity=True),
                      st.dates(), st.text(alphabet="0123456789.-e", max_size=12))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k1=_anything, k2=_anything, qty=_anything, credit=_anything, label=_anything,
       expiry=_anything, hedge_cost=_anything, strike=_anything)
def test_any_input_is_stored_or_refused_in_words(store, k1, k2, qty, credit, label, expiry,
                                                 hedge_cost, strike):
    """Whatever arrives, the answer is a stored row or a ValidationError, nothing else."""
    for inp in (condor(k1=k1), condor(k2=k2), condor(qty=qty), condor(entry_credit=credit),
                condor(label=label), condor(expiry=expiry)):
        try:
            row = store.add_position(ALICE, inp)
        except ValidationError as err:
            assert err.problems and all(len(p) < 200 for p in err.problems)
        else:
            assert store.get_position(ALICE, row.id).label == row.label
    try:
        store.add_hedge(ALICE, None, HedgeInput("VIX_CALL", date(2026, 12, 16), 1, hedge_cost,
                                                strike=strike))
    except ValidationError as err:
        assert err.problems
    for bad_id in (k1, qty, label):
        with contextlib.suppress(ValidationError, NotFound, Conflict):
            store.close_position(ALICE, bad_id, credit)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_anything | st.lists(_anything, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                         _anything, max_size=2),
       name=st.sampled_from(["edr_trigger_pct", "macd_fast", "roll_allow_debit", "shocks",
                             "event_multipliers", "edr_approach_pct", "settle_cutoff", "nope"]),
       text=_anything)
def test_any_setting_is_stored_or_refused_in_words(store, value, name, text):
    attempts = [dict(param_overrides={name: value}), dict(timezone=text), dict(report_time=text),
                dict(quiet_start=text), dict(alerts_enabled=text)]
    for changes in attempts:
        try:
            s = store.update_settings(ALICE, **changes)
        except ValidationError as err:
            assert err.problems
        else:
            assert store.get_settings(ALICE) == s
            s.params()  # whatever was accepted builds a Params
    for call in (lambda: store.record_report(ALICE, date(2026, 11, 25), text),
                 lambda: store.record_alert(ALICE, text),
                 lambda: store.update_position_text(ALICE, 1, label=text),
                 lambda: store.roll_position(ALICE, 1, expiry=date(2027, 1, 15), k1=4800,
                                             k2=4825, k3=5200, k4=5225, net_credit=value)):
        with contextlib.suppress(ValidationError, NotFound, Conflict):
            call()


def test_edr_reading_keeps_the_sessions_closes(store):
    assert store.record_edr_reading(date(2026, 7, 8), 1.0646, "BREACHED", "VIX", spx=7482.71,
                                    vix=16.9, vix9d=14.41, vix3m=19.46, vvix=None) is True
    [r] = store.edr_readings()
    assert (r.spx, r.vix, r.vix9d, r.vix3m, r.vvix) == (7482.71, 16.9, 14.41, 19.46, None)
    # a corrected close replaces the closes too; one given as None is unknown again
    store.record_edr_reading(date(2026, 7, 8), 1.07, "BREACHED", "VIX", vix=17.0, replace=True)
    [r] = store.edr_readings()
    assert (r.spx, r.vix, r.vix9d) == (None, 17.0, None)
    for bad in (float("nan"), float("inf"), 0, -16.9, 10**400, "16.9", True):
        with pytest.raises(ValidationError, match="VIX close must be a positive finite number"):
            store.record_edr_reading(date(2026, 7, 9), 1.0, "BREACHED", "VIX", vix=bad)
    assert [r.session_date for r in store.edr_readings()] == [date(2026, 7, 8)]


def test_a_report_is_claimed_again_only_when_its_retry_is_due(store):
    from datetime import UTC, datetime, timedelta

    from bot.store.service import ReportRetry

    policy = ReportRetry(lease_s=600, retry_base_s=60, retry_max_s=900)
    day, t0 = date(2026, 11, 25), datetime(2026, 11, 25, 13, 45, tzinfo=UTC)
    assert store.claim_report(ALICE, day, "premarket", now=t0, policy=policy) is True
    later = t0 + timedelta(minutes=5)
    assert store.claim_report(ALICE, day, "premarket", now=later, policy=policy) is False
    stale = t0 + timedelta(minutes=10)  # the lease is over: the attempt died
    assert store.claim_report(ALICE, day, "premarket", now=stale, policy=policy) is True
    assert store.claim_report(ALICE, day, "premarket", now=stale, policy=policy) is False
    store.report_sent(ALICE, day, "premarket", ok=False, error="TimedOut: Timed out")
    due = stale + timedelta(seconds=60)
    assert store.claim_report(ALICE, day, "premarket", now=due, policy=policy) is True
    assert store.claim_report(ALICE, day, "premarket", now=due, policy=policy) is False
    store.report_sent(ALICE, day, "premarket")
    assert store.claim_report(ALICE, day, "premarket", now=due + timedelta(days=1),
                              policy=policy) is False
    assert store.report_claims(day, "premarket")[ALICE].delivery_status == "sent"
