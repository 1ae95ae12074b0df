"""`alvh evaluate --json` must print the same bytes whichever encoder runs (orjson or json)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.engine_files import evaluate_files, evaluation_json, evaluation_json_chunks, json_bytes
from core.records import to_jsonable

TRICKY = {
    "small": [9.711646846696686e-05, 7.530003155079004e-09, 1e-05, -1.4e-06, 5e-324, 1e-4],
    "large": [1e16, 1.2345678901234568e17, 9999999999999998.0, -0.0, 1e300],
    "ints": [0, -3, 2**62, 2**70],
    "strings": ["gen 1e-5", "x 0.00001", 'quote ": 1e-5', "tab\t nl\n é ⚠ \u2028", ""],
    "nested": {"empty_list": [], "empty_dict": {}, "none": None, "flag": True},
}


def test_tricky_values_byte_identical():
    assert json_bytes(TRICKY) == json.dumps(TRICKY, indent=2, ensure_ascii=False).encode()


def test_a_bare_small_number_byte_identical():
    # found by hypothesis: a top-level number has no space before it and no line end after it
    for value in (6.103515625e-05, -1.4e-06, 7.5e-09, [6.103515625e-05]):
        assert json_bytes(value) == json.dumps(value, indent=2).encode(), value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_byte_identical(value):
    assert json_bytes(value) == json.dumps(value, indent=2, ensure_ascii=False).encode()


# --- the streamed document (evaluation_json_chunks) equals the whole one --------------------

ROOT = Path(__file__).resolve().parents[1]


def whole(ev, unreadable) -> bytes:
    """The reference: the standard library's encoder over the whole document."""
    return json.dumps(evaluation_json(ev, unreadable), indent=2, ensure_ascii=False).encode()


def streamed(ev, unreadable, chunk: int = 500) -> bytes:
    return b"".join(evaluation_json_chunks(ev, unreadable, chunk))


@dataclass
class _Rec:
    raw: object

    def to_dict(self):
        return to_jsonable(self.raw)  # as the records do: NaN/inf → null, tuples → lists


@dataclass
class _Ev:
    market: _Rec
    positions: list
    book_hedge: _Rec | None = None


raw_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats() | st.sampled_from([-0.0, 5e-324, 1e-5, 9.7e-05, 1e16, float("inf")])
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)
records = st.dictionaries(st.text(min_size=1, max_size=5), raw_values, min_size=1, max_size=4)
unreadables = st.lists(st.tuples(st.integers(0, 9) | st.none(), st.text(max_size=5),
                                 st.lists(st.text(max_size=8), max_size=2)), max_size=2)


@settings(max_examples=150, deadline=None)
@given(records, st.lists(records, max_size=7), unreadables, st.integers(1, 4),
       st.none() | records)
def test_streamed_json_equals_the_whole_document(market, positions, unreadable, chunk, book):
    ev = _Ev(_Rec(market), [_Rec(p) for p in positions], None if book is None else _Rec(book))
    assert streamed(ev, unreadable, chunk) == whole(ev, unreadable)


def test_streamed_json_on_the_examples_and_generated_positions(tmp_path):
    ev, unreadable = evaluate_files(ROOT / "examples/positions.json",
                                    ROOT / "examples/market.json")
    assert streamed(ev, unreadable) == whole(ev, unreadable)
    gen = tmp_path / "pos.json"
    subprocess.run([sys.executable, str(ROOT / "bench/gen_positions.py"), "120", "16", str(gen)],
                   check=True)
    ev, unreadable = evaluate_files(gen, ROOT / "examples/market.json")
    assert len(ev.positions) + len(unreadable) == 120 and unreadable
    reference = whole(ev, unreadable)  # built from records kept by the lazy list
    ev, unreadable = evaluate_files(gen, ROOT / "examples/market.json")
    assert streamed(ev, unreadable, chunk=7) == reference  # records built and dropped
    assert all(x is None or x.roll.rule == "R0" for x in ev.positions._items)  # none kept
