"""Records of a large book are built from views of the per-position arrays as Python
containers (core.evaluate._RowViews): the first record read converts its own row, the next in
that row's block the block, a record elsewhere every row at once; a streaming reader gets
block after block. Every reading order gives the same records as converting every column at
once."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

import core.evaluate as E
from bot.engine_files import evaluate_files

ROOT = Path(__file__).resolve().parents[1]
MARKET = ROOT / "examples/market.json"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rows") / "pos.json"
    subprocess.run([sys.executable, str(ROOT / "bench/gen_positions.py"), "300", "16", str(out)],
                   check=True)
    return out


@pytest.fixture(scope="module")
def whole(generated) -> dict[int, dict]:
    """Every record with every column converted at once (one block the size of the book)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(E, "ROW_BLOCK", 10**6)
    try:
        ev, _ = evaluate_files(generated, MARKET)
        return {k: r.to_dict() for k, r in enumerate(ev.positions)}
    finally:
        mp.undo()


@pytest.fixture
def views(monkeypatch) -> list:
    """Every _RowViews made from now on (one per evaluation with a valid position)."""
    made: list = []
    real_init = E._RowViews.__init__

    def spy(self, n, convert):
        made.append(self)
        real_init(self, n, convert)

    monkeypatch.setattr(E._RowViews, "__init__", spy)
    return made


def evaluated(generated):
    ev, _ = evaluate_files(generated, MARKET)
    built = [k for k, x in enumerate(ev.positions._items) if x is None]  # R0s are built already
    return ev, built


def test_records_in_any_reading_order_equal_whole_converted_ones(generated, whole):
    ev, built = evaluated(generated)
    n = len(built)
    assert n > 4 * E.ROW_BLOCK  # several blocks, and a last partial one
    order = list(range(len(ev.positions)))
    random.Random(16).shuffle(order)  # row, then (mostly) another block: every row at once
    assert {k: ev.positions[k].to_dict() for k in order} == whole


def test_row_then_block_then_whole(generated, whole, views):
    ev, built = evaluated(generated)
    (rows,) = views
    j = len(built) - 2  # rows are counted among the valid positions
    assert j % E.ROW_BLOCK  # j − 1 shares j's block
    assert ev.positions[built[j]].to_dict() == whole[built[j]]
    assert rows.whole is None and rows.part[0] == range(j, j + 1)  # its row only
    assert ev.positions[built[j - 1]].to_dict() == whole[built[j - 1]]
    lo = j // E.ROW_BLOCK * E.ROW_BLOCK
    assert rows.whole is None and rows.part[0] == range(lo, min(len(built), lo + E.ROW_BLOCK))
    part = rows.part
    assert ev.positions[built[lo]].to_dict() == whole[built[lo]]
    assert rows.part is part  # the same block: nothing more converted
    assert ev.positions[built[0]].to_dict() == whole[built[0]]  # another block: reads on
    assert rows.whole is not None and rows.part is None
    assert len(rows.whole.wpr) == len(built)


def test_a_streaming_reader_holds_one_block_and_gets_the_same_records(generated, whole, views):
    ev, built = evaluated(generated)
    (rows,) = views
    seen_parts = []
    streamed = {}
    for k in range(len(ev.positions)):
        streamed[k] = ev.positions.transient(k).to_dict()
        assert rows.whole is None
        if rows.part is not None and (not seen_parts or seen_parts[-1] != rows.part[0]):
            seen_parts.append(rows.part[0])
    assert streamed == whole
    n, b = len(built), E.ROW_BLOCK
    assert seen_parts == [range(0, 1)] + [range(lo, min(n, lo + b)) for lo in range(0, n, b)]
    assert all(x is None for k, x in enumerate(ev.positions._items) if k in built)  # none kept


def test_every_field_not_one_per_position_is_declared(generated, monkeypatch):
    """A column whose length is not the book's is converted whole; NOT_ROW_FIELDS names them so
    that one whose length happened to equal the book's would not be split into rows."""
    seen: dict[str, set[int]] = {}
    real = E._position_record

    def spy(i, book, ca, bx, conf, fl, sizing, *args, **kw):
        for ns in (book, ca, bx, conf, fl, sizing, kw["tg"]):
            for name, v in vars(ns).items():
                if isinstance(v, list):
                    seen.setdefault(name, set()).add(len(v))
        return real(i, book, ca, bx, conf, fl, sizing, *args, **kw)

    monkeypatch.setattr(E, "_position_record", spy)
    ev, built = evaluated(generated)
    ev.positions[built[0]]  # its row (dicts)
    seen.clear()
    ev.positions[built[-1]]  # another block: every column a list
    n = len(built)
    odd = {name for name, lengths in seen.items() if lengths != {n}}
    assert odd == set(E.NOT_ROW_FIELDS)
