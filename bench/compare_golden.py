"""Golden comparison: rerun the CLI outputs and compare them byte for byte with a saved set.

    python bench/compare_golden.py capture DIR   # on the reference commit
    python bench/compare_golden.py compare DIR   # after a change: exit 1 on any difference

Outputs: `evaluate --json` on examples/, on 1 and on 10,000 generated positions
(bench/gen_positions.py, seed 16), and the 2018 H1 backtest's trades.csv and report.txt.
With `--full` (after the folder): also the monthly program 1990–2026 (all three variants:
trades.csv, report.txt, the --json table) and the cndr program for 2018 (same three files).
When bytes differ, JSON numbers are also compared to 1e-12 relative to say where.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def run(args: list[str], out: Path | None = None) -> None:
    res = subprocess.run([PY, *args], cwd=ROOT, capture_output=True, check=True)
    if out is not None:
        out.write_bytes(res.stdout)


def backtest(folder: Path, name: str, args: list[str]) -> list[Path]:
    out = folder / name
    run(["-m", "bot.cli", "backtest", *args, "--out", str(out), "--quiet"])
    run(["-m", "bot.cli", "backtest", *args, "--out", str(out / "json"), "--quiet", "--json"],
        out / "risk.json")
    return [out / "trades.csv", out / "report.txt", out / "risk.json"]


def produce(folder: Path, full: bool = False) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    market = "examples/market.json"
    for n in (1, 10_000):
        run(["bench/gen_positions.py", str(n), "16", str(folder / f"pos{n}.json")])
    files = []
    for name, pos in (("ex", "examples/positions.json"), ("g1", str(folder / "pos1.json")),
                      ("g10k", str(folder / "pos10000.json"))):
        out = folder / f"{name}.json"
        run(["-m", "bot.cli", "evaluate", "--positions", pos, "--market", market, "--json"], out)
        files.append(out)
    bt = folder / "bt"
    run(["-m", "bot.cli", "backtest", "--start", "2018-01-01", "--end", "2018-06-30",
         "--out", str(bt), "--quiet"])
    files += [bt / "trades.csv", bt / "report.txt"]
    if full:
        files += backtest(folder, "bt_monthly", ["--start", "1990-01-01", "--end", "2026-12-31"])
        files += backtest(folder, "bt_cndr", ["--program", "cndr", "--start", "2018-01-01",
                                              "--end", "2018-12-31"])
    return files


def close(a, b, path="") -> list[str]:
    if isinstance(a, float) and isinstance(b, float):
        if a == b or (math.isnan(a) and math.isnan(b)):
            return []
        return [] if abs(a - b) <= 1e-12 * max(abs(a), abs(b)) else [f"{path}: {a!r} != {b!r}"]
    if type(a) is not type(b):
        return [f"{path}: type {type(a).__name__} != {type(b).__name__}"]
    if isinstance(a, dict):
        if list(a) != list(b):
            return [f"{path}: keys {list(a)} != {list(b)}"]
        return [d for k in a for d in close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in close(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main() -> int:
    mode, folder = sys.argv[1], Path(sys.argv[2])
    full = "--full" in sys.argv[3:]
    if mode == "capture":
        produce(folder, full)
        return 0
    fresh = produce(folder / "now", full)
    bad = 0
    for new in fresh:
        old = folder / new.relative_to(folder / "now")
        if old.read_bytes() == new.read_bytes():
            print(f"identical  {old.name}")
            continue
        bad += 1
        print(f"DIFFERENT  {old.name}")
        if old.suffix == ".json":
            diffs = close(json.loads(old.read_text()), json.loads(new.read_text()))
            print(f"  {len(diffs)} values differ beyond 1e-12" if diffs else "  equal to 1e-12")
            for d in diffs[:10]:
                print("  ", d)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
