"""Roll clearance: rule order (first match wins), flags by hand with a case that fires and one
that just doesn't, delta levels from the entry delta, and the delta-targeted strike placement
against a brute-force scan with a textbook Black-Scholes delta (METHOD.md §8)."""

from datetime import date

import numpy as np
import pytest
from scipy.stats import norm

from core.params import Params
from core.records import RollOutcome
from core.roll import (
    RuleConditions,
    SearchInputs,
    ceil_to,
    clear,
    closest_expiry,
    delta_levels,
    floor_to,
    program_of,
    roll_flags,
    search,
    shorts_at_delta,
    target_deltas,
    time_trigger_dte,
    untested_side_move,
    widths,
)

FIELDS = list(RuleConditions.__dataclass_fields__)
# the rule each condition selects, in §8 order (v2: NO_VIABLE_ROLL before HEDGE_FIRST)
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
    "no_viable_roll": RollOutcome.NO_VIABLE_ROLL,
    "hedge_first": RollOutcome.HEDGE_FIRST,
}


def conds(**true) -> RuleConditions:
    return RuleConditions(**{f: np.array([f in true]) for f in FIELDS})


def outcome(c: RuleConditions) -> RollOutcome:
    return list(RollOutcome)[int(clear(c)[0])]


def test_fields_are_in_rule_order():
    assert list(RULE_OF) == FIELDS


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


@pytest.mark.parametrize("i", range(len(FIELDS)))
def test_a_rule_that_does_not_hold_passes_to_the_next(i):
    # rule i false, every later rule true: the next rule decides (the last: CLEARED)
    later = FIELDS[i + 1:]
    got = outcome(conds(**dict.fromkeys(later, True)))
    assert got is (RULE_OF[later[0]] if later else RollOutcome.CLEARED)


def test_rule_numbers():
    assert [o.rule for o in RollOutcome] == [f"R{i}" for i in range(11)]
    assert RollOutcome.NO_VIABLE_ROLL.rule == "R8"
    assert RollOutcome.HEDGE_FIRST.rule == "R9"
    assert RollOutcome.CLEARED.rule == "R10"


def test_no_viable_roll_beats_hedge_first():
    # I4 at the table level: a hedge is never asked for when no roll exists
    assert outcome(conds(no_viable_roll=True, hedge_first=True)) is RollOutcome.NO_VIABLE_ROLL


def test_vectorised_mixed_rows():
    c = RuleConditions(**{f: np.array([f == "settle", f == "hedge_first", False]) for f in FIELDS})
    got = [list(RollOutcome)[i] for i in clear(c)]
    assert got == [RollOutcome.SETTLE_OR_CLOSE, RollOutcome.HEDGE_FIRST, RollOutcome.CLEARED]


# --- delta levels and the TIME trigger ---------------------------------------------------------


@pytest.mark.parametrize(("entry", "tested", "watch"), [
    (0.10, 0.30, 0.25), (0.16, 0.30, 0.25), (0.20, 0.30, 0.25), (0.22, 0.32, 0.27),
    (0.30, 0.40, 0.35),
])
def test_delta_levels_follow_the_entry_delta(entry, tested, watch):
    d_t, d_w = delta_levels(entry)
    assert float(d_t) == pytest.approx(tested) and float(d_w) == pytest.approx(watch)


@pytest.mark.parametrize(("entry_dte", "trigger"), [
    (45, 21), (44, 21), (35, 16), (30, 14), (28, 13), (21, 10), (8, 4),
])
def test_time_trigger_is_proportional(entry_dte, trigger):
    assert int(time_trigger_dte(entry_dte)) == trigger  # round(0.47 × entry DTE)


def test_target_deltas():
    t, fb = target_deltas(np.array([0.20, 0.16, 0.30]), breached=False)
    assert t.tolist() == pytest.approx([0.20, 0.16, 0.30])
    # the fallback is Δ* + 0.05, kept strictly below Δ_W (0.25 / 0.25 / 0.35)
    assert fb[0] < 0.25 and fb[0] == pytest.approx(0.25, abs=1e-5)
    assert fb[1] == pytest.approx(0.21) and fb[2] < 0.35
    t, fb = target_deltas(np.array([0.20]), breached=True)
    assert t.tolist() == pytest.approx([0.15]) and fb.tolist() == pytest.approx([0.20])


# --- flags: each fires, and just doesn't -------------------------------------------------------


def flags(**kw):
    base = dict(
        d_put=np.array([100.0]), d_call=np.array([100.0]), delta_put=np.array([-0.1]),
        delta_call=np.array([0.1]), wpr_put=np.array([0.5]), wpr_call=np.array([0.5]),
        state_at_least_breached=False, entry_dte=np.array([30]), dte_now=np.array([25]),
        expiry_today=np.array([False]), b2_ok=np.array([True]), entry_delta=0.20,
    )
    base.update({k: (v if isinstance(v, bool | float) and k in ("state_at_least_breached",
                                                                   "entry_delta")
                     else np.array([v])) for k, v in kw.items()})
    f = roll_flags(**base)
    return set(f.names(0))


def test_quiet_condor_has_no_flag():
    assert flags() == set()


def test_tested_by_delta_at_the_tested_level():
    assert flags(delta_put=-0.30) == {"TESTED", "WATCH"}
    assert flags(delta_put=-0.2999) == {"WATCH"}
    assert flags(delta_call=0.30) == {"TESTED", "WATCH"}
    # Δ_e 0.25 → Δ_T 0.35, Δ_W 0.30
    assert flags(delta_put=-0.35, entry_delta=0.25) == {"TESTED", "WATCH"}
    assert flags(delta_put=-0.34, entry_delta=0.25) == {"WATCH"}


def test_tested_by_wpr_and_by_breach():
    assert flags(wpr_put=1.0) == {"TESTED", "WATCH"}
    assert flags(wpr_call=0.999) == {"WATCH"}
    assert flags(d_put=0.0, wpr_put=np.inf) == {"TESTED", "WATCH"}  # spot on the short
    assert flags(d_call=-1.0, wpr_call=np.inf) == {"TESTED", "WATCH"}
    assert "TESTED" not in flags(d_put=0.01, wpr_put=0.9)


def test_watch_at_the_watch_level():
    assert flags(delta_put=-0.25) == {"WATCH"}
    assert flags(delta_put=-0.2499) == set()
    assert flags(delta_put=-0.2999, entry_delta=0.25) == set()  # Δ_W 0.30
    assert flags(wpr_put=0.94) == {"WATCH"}
    assert flags(wpr_put=0.9399) == set()


def test_time_flag():
    assert flags(entry_dte=45, dte_now=21) == {"TIME"}
    assert flags(entry_dte=45, dte_now=22) == set()
    assert flags(entry_dte=30, dte_now=14) == {"TIME"}  # v1 never managed a 30-DTE entry
    assert flags(entry_dte=30, dte_now=15) == set()
    assert flags(entry_dte=8, dte_now=4) == {"TIME"}
    assert flags(entry_dte=8, dte_now=5) == set()
    assert flags(entry_dte=7, dte_now=0, expiry_today=True) == {"TIME"}
    assert flags(entry_dte=7, dte_now=1) == set()


def test_edr_pressure_needs_breached_and_wpr_or_watch_delta():
    assert flags(state_at_least_breached=True, wpr_put=0.80) == {"EDR_PRESSURE"}
    assert flags(state_at_least_breached=True, wpr_call=0.7999) == set()
    assert flags(state_at_least_breached=True, delta_put=-0.25) == {"WATCH", "EDR_PRESSURE"}
    # v1 fired at |Δ| ≥ 0.20, i.e. on every fresh 20Δ condor above the trigger
    assert flags(state_at_least_breached=True, delta_put=-0.20, delta_call=0.20) == set()
    assert flags(state_at_least_breached=False, wpr_put=0.90) == set()


def test_delta_drift_only_while_watch():
    assert flags(b2_ok=False) == set()
    assert flags(b2_ok=False, delta_put=-0.26) == {"WATCH", "DELTA_DRIFT"}
    assert flags(b2_ok=False, wpr_put=0.95) == {"WATCH", "DELTA_DRIFT"}


def test_one_side_tested_flags():
    base = dict(d_put=np.array([-5.0, 100.0, 100.0]), d_call=np.array([100.0, 100.0, 3.0]),
                delta_put=np.array([-0.6, -0.31, -0.1]), delta_call=np.array([0.05, 0.31, 0.1]),
                wpr_put=np.array([np.inf, 0.5, 0.2]), wpr_call=np.array([0.3, 0.5, 1.2]),
                state_at_least_breached=False, entry_dte=np.array([30, 30, 30]),
                dte_now=np.array([25, 25, 25]), expiry_today=np.zeros(3, bool),
                b2_ok=np.ones(3, bool), entry_delta=0.20)
    f = roll_flags(**base)
    assert f.tested_put.tolist() == [True, True, False]
    assert f.tested_call.tolist() == [False, True, True]


# --- programs, widths, grid ----------------------------------------------------------------------


def test_programs():
    assert program_of(np.array([1, 7, 8, 20, 21, 45])).tolist() == [
        "SHORT", "SHORT", "SWING", "SWING", "MONTHLY", "MONTHLY"]


def test_widths_and_grid():
    w = widths(np.array([25.0, 50.0]), np.array([5.0, 5.0]))
    assert [x.tolist() for x in w] == [[25.0, 50.0], [20.0, 45.0], [20.0, 40.0]]
    assert floor_to(np.array([4791.0]), 5.0).tolist() == [4790.0]
    assert ceil_to(np.array([5208.2]), 5.0).tolist() == [5210.0]
    assert floor_to(np.array([4790.0]), 5.0).tolist() == [4790.0]


def test_closest_expiry_to_entry_dte():
    listed = [np.datetime64("2026-12-18"), np.datetime64("2027-01-15"), np.datetime64("2027-02-19")]
    got = closest_expiry(np.array(["2026-12-18"], dtype="datetime64[D]"),
                         [x.astype(object) for x in listed], date(2026, 11, 25), np.array([45]))
    assert str(got[0]) == "2027-01-15"  # 51 days vs 86


# --- delta-targeted placement against a brute-force scan ------------------------------------------

R, Q = 0.04, 0.013


def textbook(spot, strikes, years, vol_of):
    """Black-Scholes with a per-strike vol: price, delta (the test's own formulas)."""
    s = np.asarray(spot, float)[:, None]
    t = np.asarray(years, float)[:, None]
    k = np.asarray(strikes, float)
    sig = vol_of(k / s)
    d1 = (np.log(s / k) + (R - Q + 0.5 * sig * sig) * t) / (sig * np.sqrt(t))
    d2 = d1 - sig * np.sqrt(t)
    call = s * np.exp(-Q * t) * norm.cdf(d1) - k * np.exp(-R * t) * norm.cdf(d2)
    put = k * np.exp(-R * t) * norm.cdf(-d2) - s * np.exp(-Q * t) * norm.cdf(-d1)
    is_call = np.array([False, False, True, True])
    price = np.where(is_call, call, put)
    delta = np.where(is_call, np.exp(-Q * t) * norm.cdf(d1), -np.exp(-Q * t) * norm.cdf(-d1))
    vega = np.zeros(len(s))
    return price, delta, vega, vega, np.broadcast_to(sig, k.shape)


def skew(m):
    """A gentle downside skew (the test's own, not the engine's smile)."""
    return 0.16 - 0.25 * np.log(m)


def make_pricer(spot, years):
    def price(rows, k):
        return textbook(spot[rows], k, years[rows], skew)
    return price


@pytest.mark.parametrize("target", [0.10, 0.16, 0.20, 0.25])
def test_shorts_sit_at_the_innermost_strike_not_above_the_target(target):
    spot = np.array([5000.0, 7487.3])
    years = np.array([45 / 365, 9 / 365])
    rows = np.arange(2)
    move = spot * 0.16 * np.sqrt(years)
    k2, k3, ok = shorts_at_delta(make_pricer(spot, years), rows, spot, np.array([5.0, 5.0]),
                                 move, np.full(2, target))
    assert ok.all()
    for j in range(2):
        grid = np.arange(5.0, 2 * spot[j], 5.0)
        puts = grid[grid < spot[j]]
        calls = grid[grid > spot[j]]
        _, dp, *_ = textbook(np.full(puts.size, spot[j]), np.stack([puts] * 4, axis=1),
                             np.full(puts.size, years[j]), skew)
        _, dc, *_ = textbook(np.full(calls.size, spot[j]), np.stack([calls] * 4, axis=1),
                             np.full(calls.size, years[j]), skew)
        best_put = puts[np.abs(dp[:, 1]) <= target].max()
        best_call = calls[np.abs(dc[:, 2]) <= target].min()
        assert k2[j] == best_put and k3[j] == best_call


def search_inputs(target=0.20, fallback=0.2499, cost=3.0, z_now=0.0, scale=1.0, spot=5000.0):
    years = np.array([45 / 365])
    move = spot * 0.16 * np.sqrt(years)
    week = spot * 0.16 * np.sqrt(5 / 252)
    return SearchInputs(
        spot=np.array([spot]), scale=np.array([scale]),
        strikes=np.array([[4830.0, 4880.0, 5120.0, 5170.0]]), qty=np.array([2.0]),
        net_credit=np.array([4.0]), cost_to_close=np.array([cost]), put_side=np.array([True]),
        z_threat_now=np.array([z_now]), step=np.array([5.0]),
        expiry_candidates=[np.array(["2027-01-15"], dtype="datetime64[D]")], years=[years],
        horizon=[move], wpr_horizon=[np.array([week])], target_delta=np.array([target]),
        fallback_delta=np.array([fallback]))


def run_search(si):
    years = si.years[0]

    def price(ci, rows, k):
        return textbook(si.spot[rows], k, years[rows], skew)

    return search(si, price, Params())


def test_search_meets_every_constraint():
    res = run_search(search_inputs())
    assert res.found[0]
    k = res.strikes[0]
    assert abs(res.delta_put[0]) <= 0.20 and abs(res.delta_call[0]) <= 0.20
    assert res.target_delta[0] == pytest.approx(0.20)
    assert res.r[0] >= 0 and res.max_loss_new[0] <= res.max_loss_now[0]
    assert res.wpr[0] < 0.80
    assert k[1] - k[0] == k[3] - k[2] == 50.0  # width kept


def test_search_falls_back_only_when_the_credit_fails():
    at_target = run_search(search_inputs())
    credit = at_target.credit_new[0]
    # a cost to close just above the target's credit: the fallback delta (more credit) is used
    res = run_search(search_inputs(cost=credit + 0.5))
    assert res.found[0] and res.target_delta[0] == pytest.approx(0.2499)
    assert res.r[0] >= 0
    # far above any credit: nothing, and the reason says so
    res = run_search(search_inputs(cost=40.0))
    assert not res.found[0] and "credit" in res.why_not[0]


def test_search_keeps_the_threat_sides_cushion():
    base = run_search(search_inputs())
    wide = run_search(search_inputs(z_now=1.5))
    assert wide.found[0] or "credit" in wide.why_not[0]
    if wide.found[0]:
        assert 5000.0 - wide.strikes[0][1] >= 1.5 * search_inputs().horizon[0][0] - 1e-9
        assert wide.strikes[0][1] < base.strikes[0][1]


def test_untested_side_move_credit_against_the_textbook():
    spot = np.array([5000.0])
    years = np.array([20 / 365])
    strikes = np.array([[4950.0, 5000.0, 5300.0, 5350.0]])  # put side tested, call far away
    price = make_pricer(spot, years)
    k, credit = untested_side_move(price, strikes, spot, np.array([5.0]),
                                   spot * 0.16 * np.sqrt(years), np.array([0.20]),
                                   np.array([False]))
    assert k[0] < 5300.0  # the call moves in toward the 20Δ strike
    new = np.array([[4950.0, 5000.0, k[0], k[0] + 50.0]])
    p_old, *_ = textbook(spot, strikes, years, skew)
    p_new, *_ = textbook(spot, new, years, skew)
    expected = (p_new[0, 2] - p_new[0, 3]) - (p_old[0, 2] - p_old[0, 3])
    assert credit[0] == pytest.approx(expected, rel=1e-9) and credit[0] > 0
