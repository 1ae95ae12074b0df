"""Roll clearance: rule order (first match wins) and flags, against METHOD.md §8 by hand."""

import numpy as np
import pytest

from core.params import Params
from core.records import RollOutcome
from core.roll import (
    RuleConditions,
    ceil_to,
    clear,
    closest_expiry,
    floor_to,
    program_of,
    roll_flags,
    tiers,
    widths,
)

FIELDS = list(RuleConditions.__dataclass_fields__)
# the rule each condition selects, in order
RULE_OF = {
    "data_bad": RollOutcome.INSUFFICIENT_DATA,
    "settle": RollOutcome.SETTLE_OR_CLOSE,
    "take_profit": RollOutcome.TAKE_PROFIT,
    "loss_limit": RollOutcome.EXIT_LOSS_LIMIT,
    "no_need": RollOutcome.ROLL_NOT_NEEDED,
    "event_block": RollOutcome.BLOCKED_BY_EVENT,
    "regime_block": RollOutcome.BLOCKED_BY_REGIME,
    "few_closes": RollOutcome.INSUFFICIENT_DATA,
    "hold_unconfirmed": RollOutcome.HOLD_UNCONFIRMED,
    "hedge_first": RollOutcome.HEDGE_FIRST,
    "no_viable_roll": RollOutcome.NO_VIABLE_ROLL,
}


def conds(**true) -> RuleConditions:
    return RuleConditions(**{f: np.array([f in true]) for f in FIELDS})


def outcome(c: RuleConditions) -> RollOutcome:
    return list(RollOutcome)[int(clear(c)[0])]


def test_nothing_holds_is_cleared():
    assert outcome(conds()) is RollOutcome.CLEARED


@pytest.mark.parametrize("name", FIELDS)
def test_each_rule_alone(name):
    assert outcome(conds(**{name: True})) is RULE_OF[name]


@pytest.mark.parametrize("i", range(len(FIELDS)))
def test_first_match_wins_over_every_later_rule(i):
    earlier = FIELDS[i]
    for later in FIELDS[i + 1:]:
        assert outcome(conds(**{earlier: True, later: True})) is RULE_OF[earlier]


def test_rule_numbers():
    assert [o.rule for o in RollOutcome] == [f"R{i}" for i in range(11)]


def test_vectorised_mixed_rows():
    c = RuleConditions(**{f: np.array([f == "settle", f == "hedge_first", False]) for f in FIELDS})
    got = [list(RollOutcome)[i] for i in clear(c)]
    assert got == [RollOutcome.SETTLE_OR_CLOSE, RollOutcome.HEDGE_FIRST, RollOutcome.CLEARED]


def flags(**kw):
    base = dict(
        d_put=np.array([100.0]), d_call=np.array([100.0]), delta_put=np.array([-0.1]),
        delta_call=np.array([0.1]), wpr=np.array([0.5]), state_at_least_breached=False,
        entry_dte=np.array([30]), dte_now=np.array([25]), expiry_today=np.array([False]),
        b2_ok=np.array([True]),
    )
    base.update({k: (v if isinstance(v, bool) else np.array([v])) for k, v in kw.items()})
    f = roll_flags(**base)
    return set(f.names(0))


def test_flags_by_hand():
    assert flags() == set()
    assert flags(delta_put=-0.30) == {"TESTED", "WATCH"}
    assert flags(delta_put=-0.25) == {"WATCH"}
    assert flags(wpr=1.0) == {"TESTED", "WATCH"}
    assert flags(wpr=0.94) == {"WATCH"}
    assert flags(d_put=-1.0) == {"TESTED"}  # breached
    assert flags(entry_dte=45, dte_now=21) == {"TIME"}
    assert flags(entry_dte=45, dte_now=22) == set()
    assert flags(entry_dte=7, expiry_today=True) == {"TIME"}
    assert flags(state_at_least_breached=True, wpr=0.80) == {"EDR_PRESSURE"}
    assert flags(state_at_least_breached=True, delta_call=0.20) == {"EDR_PRESSURE"}
    assert flags(state_at_least_breached=False, wpr=0.85) == set()
    # B2 failing alone is reported, not a reason to roll; with WATCH it is DELTA_DRIFT
    assert flags(b2_ok=False) == set()
    assert flags(b2_ok=False, delta_put=-0.26) == {"WATCH", "DELTA_DRIFT"}


def test_programs():
    assert program_of(np.array([1, 7, 8, 20, 21, 45])).tolist() == [
        "SHORT", "SHORT", "SWING", "SWING", "MONTHLY", "MONTHLY"]


def test_tiers_and_widths():
    assert tiers(1.5) == [1.5, 1.25, 1.0]
    assert tiers(1.25) == [1.25, 1.0]
    assert tiers(1.0, Params()) == [1.0]
    w = widths(np.array([25.0, 50.0]), np.array([5.0, 5.0]))
    assert [x.tolist() for x in w] == [[25.0, 50.0], [20.0, 45.0], [20.0, 40.0]]
    assert floor_to(np.array([4791.0]), 5.0).tolist() == [4790.0]
    assert ceil_to(np.array([5208.2]), 5.0).tolist() == [5210.0]
    assert floor_to(np.array([4790.0]), 5.0).tolist() == [4790.0]


def test_closest_expiry_to_entry_dte():
    listed = [np.datetime64("2026-12-18"), np.datetime64("2027-01-15"), np.datetime64("2027-02-19")]
    from datetime import date
    got = closest_expiry(np.array(["2026-12-18"], dtype="datetime64[D]"),
                         [x.astype(object) for x in listed], date(2026, 11, 25), np.array([45]))
    assert str(got[0]) == "2027-01-15"  # 51 days vs 86
