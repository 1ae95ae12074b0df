"""Records of a large evaluation, read as the bot and the CLI read them. Prints, asserts nothing.

For N generated positions (bench/gen_positions.py, seed 16; default 10,000) against
examples/market.json, three fresh evaluations, each read in this order:
1. one record (the middle valid position) — issue 16's "one position's full record ≤ 1 ms";
2. one record in another block (the reader reads on: every column converted);
3. every record.
Then one more evaluation streamed as `alvh evaluate --json` streams it (records built and
dropped a chunk at a time), with the process's peak RSS before and after the stream.
The collector is left as the process has it: a collection that falls into a read is part of
what a reader waits for. Run: .venv/bin/python bench/bench_records.py [--positions N]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bot.engine_files import evaluate_files, evaluation_json_chunks  # noqa: E402

MARKET = HERE.parent / "examples" / "market.json"
TARGET_FIRST_MS = 1.0


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        positions = Path(tmp) / f"pos{n}.json"
        subprocess.run([sys.executable, str(HERE / "gen_positions.py"), str(n), "16",
                        str(positions)], check=True)
        evaluate_files(positions, MARKET)  # warm imports and caches
        print(f"{n:,} generated positions, examples/market.json")
        for run in range(3):
            t0 = time.perf_counter()
            ev, _ = evaluate_files(positions, MARKET)
            t1 = time.perf_counter()
            records = ev.positions
            valid = [k for k, x in enumerate(records._items) if x is None]  # R0s are built
            t2 = time.perf_counter()
            records[valid[len(valid) // 2]]
            t3 = time.perf_counter()
            records[valid[-1]]
            t4 = time.perf_counter()
            list(records)
            t5 = time.perf_counter()
            print(f"  run {run + 1}: pass {t1 - t0:.3f} s · first record {1e3 * (t3 - t2):.2f} ms "
                  f"(target ≤ {TARGET_FIRST_MS:g} ms) · a record in another block "
                  f"{1e3 * (t4 - t3):.1f} ms · every record {t5 - t4:.3f} s")
        del ev, records
        ev, unreadable = evaluate_files(positions, MARKET)
        before = peak_mib()
        t0 = time.perf_counter()
        size = 0
        with open(os.devnull, "wb") as sink:
            for piece in evaluation_json_chunks(ev, unreadable):
                size += len(piece)
                sink.write(piece)
        print(f"  streamed JSON: {size / 2**20:.0f} MiB in {time.perf_counter() - t0:.2f} s; "
              f"peak RSS {before:.0f} MiB before the stream, {peak_mib():.0f} MiB after")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=10_000)
    main(parser.parse_args().positions)
