"""No way across users: another user's id reads exactly like an id that does not exist."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.store import HedgeInput, NotFound, PositionInput, Store

NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
ALICE, BOB, STRANGER = 111, 222, 333  # the stranger never registered


@pytest.fixture(scope="module")
def world(make_shared_database_url):
    store = Store.open(make_shared_database_url("iso", migrated=True), clock=lambda: NOW)
    for tg in (ALICE, BOB):
        store.ensure_user(tg, tg)
    condor = PositionInput("SPX", date(2026, 12, 18), 4845, 4870, 5130, 5155, 1, 3.0, label="b")
    bob_pos = store.add_position(BOB, condor)
    bob_hedge = store.add_hedge(BOB, bob_pos.id, HedgeInput("VIX_CALL", date(2026, 12, 16), 1,
                                                            1.0, strike=22))
    alice_pos = store.add_position(ALICE, condor)
    alice_gone = store.add_position(ALICE, condor)
    store.delete_position(ALICE, alice_gone.id)
    yield store, bob_pos.id, bob_hedge.id, alice_pos.id, alice_gone.id
    store.close()


HEDGE = HedgeInput("VIX_CALL", date(2026, 12, 16), 1, 1.0, strike=22)
LEGS = dict(expiry=date(2027, 1, 15), k1=4800, k2=4825, k3=5200, k4=5225, net_credit=1)

POSITION_CALLS = {
    "get": lambda s, u, i: s.get_position(u, i),
    "close": lambda s, u, i: s.close_position(u, i, 1.0),
    "expire": lambda s, u, i: s.expire_position(u, i, 0),
    "roll": lambda s, u, i: s.roll_position(u, i, **LEGS),
    "delete": lambda s, u, i: s.delete_position(u, i),
    "edit": lambda s, u, i: s.update_position_text(u, i, label="mine now"),
    "hedge": lambda s, u, i: s.add_hedge(u, i, HEDGE),
    "list_hedges": lambda s, u, i: s.list_hedges(u, i),
}
HEDGE_CALLS = {
    "get_hedge": lambda s, u, i: s.get_hedge(u, i),
    "close_hedge": lambda s, u, i: s.close_hedge(u, i, 2.0),
}
MISSING = 987_654
ADVERSARIAL = [0, -1, -MISSING, 2**63, 2**70, 10**30, "1 OR 1=1", "1; DROP TABLE positions",
               "٣", True, 1.0, None, "", "9" * 5000, 10**5000, MISSING]


def _message(fn, store, user, raw):
    with pytest.raises(NotFound) as info:
        fn(store, user, raw)
    assert type(info.value) is NotFound
    return str(info.value)


def _bob_state(store):
    return store.export_user(BOB)


@pytest.mark.parametrize("name", sorted(POSITION_CALLS))
def test_position_ids_of_others_look_missing(world, name):
    store, bob_pos, _, _, alice_gone = world
    fn = POSITION_CALLS[name]
    before = _bob_state(store)
    missing = _message(fn, store, ALICE, MISSING)
    assert missing == f"no position #{MISSING} in your book"
    # Bob's real id, Alice's deleted one, and ids through a user who never registered.
    for user, raw in ((ALICE, bob_pos), (ALICE, alice_gone), (STRANGER, bob_pos)):
        if user == STRANGER and name in ("hedge",):
            continue  # adding needs a registered user: a different, earlier refusal
        assert _message(fn, store, user, raw).replace(str(raw), "N") == \
            missing.replace(str(MISSING), "N")
    for raw in ADVERSARIAL:
        if raw is None and name in ("hedge", "list_hedges"):
            continue  # None there means "the whole book", a legitimate request
        if raw == 10**5000 or raw == "9" * 5000:  # not echoed whole
            assert len(_message(fn, store, ALICE, raw)) < 80
            continue
        shown = raw if isinstance(raw, int) and not isinstance(raw, bool) else repr(raw)
        assert _message(fn, store, ALICE, raw) == f"no position #{shown} in your book"
    assert _bob_state(store) == before


@pytest.mark.parametrize("name", sorted(HEDGE_CALLS))
def test_hedge_ids_of_others_look_missing(world, name):
    store, _, bob_hedge, _, _ = world
    fn = HEDGE_CALLS[name]
    before = _bob_state(store)
    missing = _message(fn, store, ALICE, MISSING)
    assert _message(fn, store, ALICE, bob_hedge).replace(str(bob_hedge), "N") == \
        missing.replace(str(MISSING), "N")
    for raw in ADVERSARIAL:
        _message(fn, store, ALICE, raw)
    assert _bob_state(store) == before


def test_lists_never_show_other_users_rows(world):
    store, bob_pos, bob_hedge, alice_pos, _ = world
    assert [p.id for p in store.list_positions(ALICE, status=None)] == [alice_pos]
    assert [p.id for p in store.list_positions(BOB, status=None)] == [bob_pos]
    assert store.list_hedges(ALICE, status=None) == []
    assert [p.id for p in store.core_positions(ALICE)] == [alice_pos]
    assert store.list_positions(STRANGER) == [] and store.core_positions(STRANGER) == []
    assert all(a.user_id == store.audit_trail(ALICE)[0].user_id
               for a in store.audit_trail(ALICE, limit=100))
    assert bob_hedge not in [h.id for h in store.list_hedges(ALICE, status=None)]


def test_own_id_as_text_still_works(world):
    store, _, _, alice_pos, _ = world
    assert store.get_position(ALICE, f" {alice_pos} ").id == alice_pos
