import pytest

from core.params import Params


def test_approach_derives_from_trigger():
    assert Params().edr_approach == 0.85
    assert Params(edr_trigger_pct=1.0).edr_approach == 0.9
    assert Params(edr_approach_pct=0.8).edr_approach == 0.8


def test_overrides_reject_unknown_names():
    assert Params.from_overrides({"edr_trigger_pct": 1.1}).edr_trigger_pct == 1.1
    with pytest.raises(ValueError, match="no_such_param"):
        Params.from_overrides({"no_such_param": 1})


def test_v1_roll_clearance_names_load_and_are_ignored():
    # METHOD v2 §8 replaced v1's fixed delta levels, 35-DTE time rule and EDR_h-multiple roll
    # tiers; settings stored with them still load (the store drops them on the next write)
    from core.params import RETIRED_PARAMS, retired_names

    stored = {"short_delta_watch": 0.3, "short_delta_tested": 0.35, "edr_pressure_delta": 0.2,
              "time_trigger_dte": 14, "roll_tier_breached": 1.75, "take_profit_frac": 0.6}
    p = Params.from_overrides(stored)
    assert p.take_profit_frac == 0.6 and p.entry_delta == 0.20
    assert set(stored) - {"take_profit_frac"} <= RETIRED_PARAMS
    assert retired_names(stored) == sorted(set(stored) - {"take_profit_frac"})
    assert not any(hasattr(p, name) for name in RETIRED_PARAMS)
