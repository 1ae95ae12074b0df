"""`alvh evaluate --json` must print the same bytes whichever encoder runs (orjson or json)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from bot.engine_files import json_bytes

TRICKY = {
    "small": [9.711646846696686e-05, 7.530003155079004e-09, 1e-05, -1.4e-06, 5e-324, 1e-4],
    "large": [1e16, 1.2345678901234568e17, 9999999999999998.0, -0.0, 1e300],
    "ints": [0, -3, 2**62, 2**70],
    "strings": ["gen 1e-5", "x 0.00001", 'quote ": 1e-5', "tab\t nl\n é ⚠ \u2028", ""],
    "nested": {"empty_list": [], "empty_dict": {}, "none": None, "flag": True},
}


def test_tricky_values_byte_identical():
    assert json_bytes(TRICKY) == json.dumps(TRICKY, indent=2, ensure_ascii=False).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_byte_identical(value):
    assert json_bytes(value) == json.dumps(value, indent=2, ensure_ascii=False).encode()
