"""`to_jsonable`: what each kind of value becomes (containers take the fast path)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np

from core.records import RollOutcome, to_jsonable


def test_values_and_nested_containers():
    value = {
        1: (1.5, math.nan, [math.inf, None, "x"]),
        "d": {"when": datetime(2026, 7, 9, 16, 0, tzinfo=UTC), "day": date(2026, 7, 9)},
        "e": [RollOutcome.INSUFFICIENT_DATA, np.float64(0.25), np.int64(3), np.array([1.0, 2.0])],
        "t": (),
        "b": True,
    }
    assert to_jsonable(value) == {
        "1": [1.5, None, [None, None, "x"]],
        "d": {"when": "2026-07-09T16:00:00+00:00", "day": "2026-07-09"},
        "e": ["INSUFFICIENT_DATA", 0.25, 3, [1.0, 2.0]],
        "t": [],
        "b": True,
    }
    out = to_jsonable(value)
    assert type(out["1"]) is list and type(out["e"][2]) is int
