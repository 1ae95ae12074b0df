"""Benchmark: the monthly program 1990–2026 with all three variants (issue 16 target ≤ 10 s).
Prints figures and the peak memory; asserts nothing. The time counts from the replay's
construction (which builds the whole-history market series) to its result; imports and
loading the history are printed apart."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core.indicators  # noqa: F401  scipy.signal, imported before the clock (old code: lazily)
from bot.backtest.config import BacktestConfig
from bot.backtest.market import MarketDays
from bot.backtest.replay import run_backtest
from bot.backtest.report import table
from bot.marketdata.events import load_events
from bot.marketdata.history import load_history


def main() -> None:
    t0 = time.perf_counter()
    market = MarketDays.from_history(load_history())
    events = load_events()
    t1 = time.perf_counter()
    res = run_backtest(BacktestConfig(), market, events)
    t2 = time.perf_counter()
    n = len(res.dates)
    print(f"load history + events: {t1 - t0:.2f} s")
    print(f"monthly program {res.dates[0]} .. {res.dates[-1]}: {n:,} sessions, 3 variants: "
          f"{t2 - t1:.1f} s ({(t2 - t1) / n * 1e3:.2f} ms/session; target ≤ 10 s)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")
    print()
    print(table(res))


if __name__ == "__main__":
    main()
