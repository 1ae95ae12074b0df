"""Engine per-call overhead (issue 16, round 3): `evaluate` at 1, 20 and 5,000 positions and the
2018 H1 backtest replay. Prints wall and CPU time; asserts nothing.

    python bench/bench_engine.py [--runs N] [--no-backtest]

Positions come from bench/gen_positions.py (seed 16) against examples/market.json with the
shipped history and events, as `alvh evaluate` reads them. Each figure is the median of N runs
(after one warm-up call that fills the import and calendar caches) of the vectorised pass
(`evaluate`) and of the pass plus every position's record (what `/check` and the report read).
CPU time (`time.process_time`) is the steadier figure on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MARKET = ROOT / "examples" / "market.json"
SIZES = (1, 20, 5_000)
BACKTEST_START, BACKTEST_END = date(2018, 1, 1), date(2018, 6, 30)

sys.path.insert(0, str(ROOT))


def timed(fn, runs: int) -> tuple[float, float, float]:
    """Median wall, median CPU and best CPU seconds of `runs` calls."""
    walls, cpus = [], []
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), min(cpus)


def positions_file(folder: Path, n: int) -> Path:
    path = folder / f"pos{n}.json"
    subprocess.run([sys.executable, str(HERE / "gen_positions.py"), str(n), "16", str(path)],
                   check=True)
    return path


def evaluate_rows(runs: int) -> None:
    from bot.engine_files import (
        _load_events,
        _load_history,
        _read_json,
        parse_market,
        parse_positions,
    )
    from core.evaluate import evaluate

    snap = parse_market(_read_json(MARKET, "market"))
    hist, events = _load_history(None), _load_events(None)
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            pos, _ = parse_positions(_read_json(positions_file(Path(tmp), n), "positions"))
            reps = max(3, runs // 10) if n >= 1000 else runs
            evaluate(pos, snap, hist, events)  # warm-up: imports, calendar and snapshot caches
            w, c, cb = timed(lambda p=pos: evaluate(p, snap, hist, events), reps)
            wr, cr, crb = timed(lambda p=pos: list(evaluate(p, snap, hist, events).positions),
                                reps)
            print(f"evaluate {n:>5,} positions: pass wall {w * 1e3:7.2f} ms, CPU {c * 1e3:7.2f} "
                  f"(best {cb * 1e3:7.2f}) ms; + records wall {wr * 1e3:7.2f} ms, CPU "
                  f"{cr * 1e3:7.2f} (best {crb * 1e3:7.2f}) ms (median of {reps})")


def backtest_row(runs: int) -> None:
    import dataclasses

    import core.indicators  # noqa: F401  scipy.signal, imported before the clock
    from bot.backtest.config import BacktestConfig
    from bot.backtest.market import MarketDays
    from bot.backtest.replay import run_backtest
    from bot.marketdata.events import load_events
    from bot.marketdata.history import load_history

    market, events = MarketDays.from_history(load_history()), load_events()
    cfg = dataclasses.replace(BacktestConfig(), start=BACKTEST_START, end=BACKTEST_END)
    out = []
    wall, cpu, best = timed(lambda: out.append(run_backtest(cfg, market, events)), runs)
    res = out[-1]
    n = len(res.dates)
    print(f"backtest monthly {res.dates[0]}..{res.dates[-1]}, {n} sessions, 3 variants: "
          f"replay wall {wall:.2f} s, CPU {cpu:.2f} (best {best:.2f}) s "
          f"({cpu / n * 1e3:.2f} ms CPU per session; median of {runs})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30, help="repeats for 1 and 20 positions")
    ap.add_argument("--backtest-runs", type=int, default=3)
    ap.add_argument("--no-backtest", action="store_true")
    ap.add_argument("--no-evaluate", action="store_true")
    args = ap.parse_args()
    if not args.no_evaluate:
        evaluate_rows(args.runs)
    if not args.no_backtest:
        backtest_row(args.backtest_runs)


if __name__ == "__main__":
    main()
