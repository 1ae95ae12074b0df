"""Deterministic positions JSON around the offline sample's spot (examples/market.json, 7485).

Usage: python bench/gen_positions.py N SEED OUT.json — same N and SEED, same bytes.
Mixes SPX/SPXW/XSP condors, some hedged with VIX calls, a few malformed ones (R0 paths).
"""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta

import numpy as np

SPOT = 7485.0
ASOF = date(2026, 7, 9)


def weekdays(start: date, end: date) -> list[date]:
    out, d = [], start
    while d <= end:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def generate(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    expiries = weekdays(date(2026, 7, 10), date(2026, 10, 16))
    vix_expiries = ["2026-07-22", "2026-08-19"]
    positions = []
    for i in range(n):
        root = ["SPXW", "SPX", "XSP"][int(rng.choice(3, p=[0.6, 0.3, 0.1]))]
        scale = 0.1 if root == "XSP" else 1.0
        centre = 5 * round((SPOT + rng.normal(0, 60)) / 5)
        half = 5 * int(rng.integers(20, 80))
        width = 5 * int(rng.integers(5, 15))
        strikes = [centre - half - width, centre - half, centre + half, centre + half + width]
        strikes = [round(k * scale, 1) if scale != 1.0 else k for k in strikes]
        pos = {
            "id": i + 1,
            "label": f"gen {i + 1}",
            "root": root,
            "expiry": expiries[int(rng.integers(len(expiries)))].isoformat(),
            "strikes": strikes,
            "qty": int(rng.integers(1, 10)),
            "entry_credit": round(float(rng.uniform(0.5, 12.0)) * scale, 2),
            "opened": (ASOF - timedelta(days=int(rng.integers(0, 20)))).isoformat(),
        }
        if rng.random() < 0.15:
            pos["roll_credits"] = round(float(rng.uniform(0, 2)) * scale, 2)
        if rng.random() < 0.3:
            pos["hedges"] = [{"kind": "VIX_CALL", "expiry": vix_expiries[int(rng.integers(2))],
                              "strike": int(rng.integers(17, 30)), "qty": int(rng.integers(1, 4)),
                              "cost": round(float(rng.uniform(0.2, 1.5)), 2),
                              "layer": ["L1", "L2", "L3"][int(rng.integers(3))]}]
        u = rng.random()
        if u < 0.01:
            pos["strikes"] = [strikes[1], strikes[0], strikes[2], strikes[3]]  # typo order
        elif u < 0.02:
            del pos["expiry"]  # incomplete
        positions.append(pos)
    return {"positions": positions}


def main() -> None:
    n, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with open(out, "w") as fh:
        json.dump(generate(n, seed), fh, indent=0)
        fh.write("\n")


if __name__ == "__main__":
    main()
