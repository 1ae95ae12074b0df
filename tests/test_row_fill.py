"""Records of a large book are built from lists filled a block of rows at a time
(core.evaluate._RowFill): the same records, in any reading order, as converting every column
at once; the first record read converts only its block, a second block the rest."""

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


def records_dicts(ev, order) -> dict[int, dict]:
    return {k: ev.positions[k].to_dict() for k in order}


def test_block_built_records_equal_whole_converted_ones(generated, monkeypatch):
    ev, _ = evaluate_files(generated, MARKET)
    n = len(ev.positions)
    assert n > 4 * E.ROW_BLOCK  # several blocks, and a last partial one
    order = list(range(n))
    random.Random(16).shuffle(order)  # blocks first read from their middle, end, start
    by_blocks = records_dicts(ev, order)
    monkeypatch.setattr(E, "ROW_BLOCK", 10 * n)  # one block: every column converted at once
    whole_ev, _ = evaluate_files(generated, MARKET)
    whole = records_dicts(whole_ev, range(n))
    assert by_blocks == whole
    assert by_blocks[order[0]]["position_id"] != by_blocks[order[1]]["position_id"]


def test_reading_one_record_converts_only_its_block(generated, monkeypatch):
    fills: list = []
    real_fill = E._RowFill.fill

    def spy(self, i):
        fills.append(self)
        real_fill(self, i)

    monkeypatch.setattr(E._RowFill, "fill", spy)
    ev, _ = evaluate_files(generated, MARKET)
    built = [k for k, x in enumerate(ev.positions._items) if x is None]  # R0s are built already
    ev.positions[built[-1]]
    (rows,) = set(fills)
    assert not rows.whole and sum(rows.filled) == 1  # one block of many
    ev.positions[built[-2]]  # the same block: nothing more converted
    assert sum(rows.filled) == 1
    ev.positions[built[0]]  # another block: a reader who goes on; every row at once
    assert len(rows.filled) > 2 and all(rows.filled)


def test_every_field_not_one_per_position_is_declared(generated, monkeypatch):
    """A column whose length is not the book's is converted whole; NOT_ROW_FIELDS names them so
    that one whose length happened to equal the book's would not be split into blocks."""
    seen: dict[str, set[int]] = {}
    real = E._position_record

    def spy(i, book, ca, bx, conf, fl, sizing, *args, **kw):
        for ns in (book, ca, bx, conf, fl, sizing, kw["tg"]):
            for name, v in vars(ns).items():
                if isinstance(v, list):
                    seen.setdefault(name, set()).add(len(v))
        return real(i, book, ca, bx, conf, fl, sizing, *args, **kw)

    monkeypatch.setattr(E, "_position_record", spy)
    ev, _ = evaluate_files(generated, MARKET)
    valid = [k for k, x in enumerate(ev.positions._items) if x is None]  # R0s are built
    ev.positions[valid[-1]]
    n = len(valid)
    odd = {name for name, lengths in seen.items() if lengths != {n}}
    assert odd == set(E.NOT_ROW_FIELDS)
