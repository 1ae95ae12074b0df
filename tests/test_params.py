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
