"""Issue 16's table: each figure beside its target, with the peak memory. Prints, asserts nothing.

    python bench/bench_issue16.py [--code DIR] [--big] [--backtest START] [--no-evaluate]

`--code DIR` measures another checkout (e.g. the starting commit unpacked with `git archive`),
for before/after figures taken on the same machine in the same minute. `--big` adds the
100,000-position rows (minutes on a loaded 2-core machine). Positions come from
bench/gen_positions.py (seed 16) against examples/market.json. The report round and /check
rows are bench/bench_report_round.py and bench/bench_check.py.
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKET = HERE.parent / "examples" / "market.json"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best(fn, runs: int) -> float:
    out = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def positions_file(folder: Path, n: int) -> Path:
    path = folder / f"pos{n}.json"
    subprocess.run([sys.executable, str(HERE / "gen_positions.py"), str(n), "16", str(path)],
                   check=True)
    return path


def cli_seconds(code: Path, positions: Path, runs: int) -> float:
    def once() -> None:
        subprocess.run([sys.executable, "-m", "bot.cli", "evaluate", "--positions",
                        str(positions), "--market", str(MARKET), "--json"], cwd=code,
                       check=True, stdout=subprocess.DEVNULL)
    return best(once, runs)


def cli_peak_rss(code: Path, positions: Path) -> float:
    """Peak RSS (MiB) of one `evaluate --json` run, in a fresh child that reports its own."""
    script = f"""
import resource, subprocess, sys
subprocess.run([sys.executable, "-m", "bot.cli", "evaluate", "--positions", {str(positions)!r},
                "--market", {str(MARKET)!r}, "--json"], cwd={str(code)!r}, check=True,
               stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True)
    return float(out.stdout.strip())


def in_process(code: Path, positions: Path, label: str) -> None:
    """Lazy pass, every record, to_dict, one position's record; run in a child per size."""
    script = f"""
import gc, resource, sys, time
sys.path.insert(0, {str(code)!r})
from pathlib import Path
from bot.engine_files import parse_positions, parse_market, _read_json, _load_history, _load_events
from core.evaluate import evaluate
snap = parse_market(_read_json(Path({str(MARKET)!r}), "m"))
pos, _ = parse_positions(_read_json(Path({str(positions)!r}), "p"))
h, e = _load_history(None), _load_events(None)
evaluate(pos[:1], snap, h, e)  # warm imports and caches
t0 = time.perf_counter(); ev = evaluate(pos, snap, h, e); t1 = time.perf_counter()
# the collector runs at the first allocation after the pass (parse and pass ran with it paused):
# timed on its own, or the first record would carry its bill
gc.collect(0); tc = time.perf_counter()
one = ev.positions[len(pos) // 2].to_dict(); t2 = time.perf_counter()
list(ev.positions); t3 = time.perf_counter()
gc.disable(); dicts = [p.to_dict() for p in ev.positions]; t4 = time.perf_counter(); gc.enable()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{label}: lazy pass {{t1 - t0:.3f}} s, then the collector's catch-up "
      f"{{(tc - t1) * 1e3:.1f}} ms, + every record {{t3 - t2:.3f}} s, "
      f"+ to_dict {{t4 - t3:.3f}} s; one position's record + "
      f"to_dict {{(t2 - tc) * 1e3:.2f}} ms (target <= 1 ms); peak RSS {{peak:.0f}} MiB "
      f"(target <= 500 MiB at 100k)")
"""
    subprocess.run([sys.executable, "-c", script], cwd=code, check=True)


def bsm_row(code: Path) -> None:
    script = f"""
import sys, time
sys.path.insert(0, {str(code)!r}); sys.path.insert(0, {str(HERE)!r})
from bench_pricing import realistic_inputs
from core.pricing import bsm
a = realistic_inputs(1_000_000)
best = min((lambda t0: (bsm(*a), time.perf_counter() - t0)[1])(time.perf_counter())
           for _ in range(9))
print(f"bsm 1M price + Greeks: {{best * 1e3:.1f}} ms = {{1 / best:.2f}} M/s (target >= 10 M/s)")
"""
    subprocess.run([sys.executable, "-c", script], cwd=code, check=True)


def market_row(code: Path) -> None:
    script = f"""
import sys, time
sys.path.insert(0, {str(code)!r})
from pathlib import Path
from bot.engine_files import parse_market, _read_json, _load_history, _load_events
from core.evaluate import evaluate_market
snap = parse_market(_read_json(Path({str(MARKET)!r}), "m"))
h, e = _load_history(None), _load_events(None)
t0 = time.perf_counter(); evaluate_market(snap, h, e); cold = time.perf_counter() - t0
best = min((lambda t0: (evaluate_market(snap, h, e), time.perf_counter() - t0)[1])(
    time.perf_counter()) for _ in range(20))
print(f"market pass (shipped history): first {{cold * 1e3:.1f}} ms, then {{best * 1e3:.2f}} ms")
"""
    subprocess.run([sys.executable, "-c", script], cwd=code, check=True)


def backtest_row(code: Path, start: str) -> None:
    """The monthly program from `start` to the end of the history, 3 variants, in a child."""
    script = f"""
import resource, sys, time
from datetime import date
sys.path.insert(0, {str(code)!r})
import dataclasses
from bot.backtest.config import BacktestConfig
from bot.backtest.market import MarketDays
from bot.backtest.replay import run_backtest
from bot.marketdata.events import load_events
from bot.marketdata.history import load_history
import core.indicators  # scipy.signal, imported before the clock in old and new code alike
m, e = MarketDays.from_history(load_history()), load_events()
cfg = dataclasses.replace(BacktestConfig(), start=date.fromisoformat({start!r}))
c0, t0 = time.process_time(), time.perf_counter()
res = run_backtest(cfg, m, e)
t, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"backtest monthly {{res.dates[0]}}..{{res.dates[-1]}}, {{len(res.dates):,}} sessions, "
      f"3 variants: {{t:.1f}} s ({{t / len(res.dates) * 1e3:.2f}} ms/session; target 1990-2026 "
      f"<= 10 s), CPU {{cpu:.1f}} s (steadier than wall time on a shared machine); "
      f"peak RSS {{peak:.0f}} MiB")
"""
    subprocess.run([sys.executable, "-c", script], cwd=code, check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--code", type=Path, default=HERE.parent)
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backtest", metavar="START", help="add the monthly backtest row from START "
                    "(1990-01-02: the issue's full history; minutes on a loaded machine)")
    ap.add_argument("--no-evaluate", action="store_true", help="skip the evaluate/CLI rows")
    args = ap.parse_args()
    code = args.code.resolve()
    print(f"code: {code}")
    bsm_row(code)
    market_row(code)
    if args.backtest:
        backtest_row(code, args.backtest)
    if args.no_evaluate:
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        p1, p10k = positions_file(folder, 1), positions_file(folder, 10_000)
        in_process(code, p10k, "evaluate 10k")
        c1, c10k = cli_seconds(code, p1, args.runs), cli_seconds(code, p10k, args.runs)
        print(f"CLI evaluate --json: 1 position {c1:.2f} s, 10k {c10k:.2f} s; "
              f"10k minus 1 = {c10k - c1:.2f} s (target <= 0.1 s)")
        print(f"CLI evaluate --json 10k: peak RSS {cli_peak_rss(code, p10k):.0f} MiB")
        if args.big:
            p100k = positions_file(folder, 100_000)
            in_process(code, p100k, "evaluate 100k")
            t100k = cli_seconds(code, p100k, 1)
            print(f"CLI evaluate --json 100k: {t100k:.1f} s, peak RSS "
                  f"{cli_peak_rss(code, p100k):.0f} MiB (target linear, <= 500 MiB)")
    gc.collect()
    print(f"peak RSS of this driver {peak_mib():.0f} MiB (children print their own)")


if __name__ == "__main__":
    main()
