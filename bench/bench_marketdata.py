"""Market-data timings (prints figures; no assertions).

    .venv/bin/python bench/bench_marketdata.py

- parse of a full-size SPX chain (~30,000 lines, the size of Cboe's _SPX.json), built by
  repeating the bundled sample's lines over many expiries;
- the offline snapshot, cold and warm;
- 50 concurrent live snapshots through a mock transport (one fetch per source).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.marketdata.cboe import CboeProvider
from bot.marketdata.offline import SAMPLE_DIR, OfflineProvider
from bot.marketdata.parsers import ET, parse_chain

FULL_SIZE_LINES = 30_000


def full_size_chain() -> bytes:
    raw = json.loads((SAMPLE_DIR / "options" / "_SPX.json").read_text())
    base = raw["data"]["options"]
    lines, k = [], 0
    start = date(2026, 7, 9)
    while len(lines) < FULL_SIZE_LINES:
        exp = start + timedelta(days=k)
        k += 1
        for o in base:
            if len(lines) >= FULL_SIZE_LINES:
                break
            sym = o["option"]
            root = sym[:-15]
            lines.append(o | {"option": f"{root}{exp:%y%m%d}{sym[-9:]}"})
    raw["data"]["options"] = lines
    return json.dumps(raw).encode()


def timeit(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


async def concurrent_live(chain: bytes, n: int) -> tuple[float, int]:
    hits = 0
    quote = json.loads((SAMPLE_DIR / "quotes" / "_VIX.json").read_text())

    def handler(req: httpx.Request) -> httpx.Response:
        nonlocal hits
        hits += 1
        url = str(req.url)
        if "/options/" in url:
            return httpx.Response(200, content=chain)
        if "/quotes/" in url:
            return httpx.Response(200, json=quote)
        if "settlement" in url:
            return httpx.Response(200, content=(SAMPLE_DIR / "VX_settlement.csv").read_bytes())
        return httpx.Response(200, text="observation_date,DFF\n2026-07-08,3.62\n")

    p = CboeProvider(transport=httpx.MockTransport(handler))
    now = datetime(2026, 7, 8, 16, 20, tzinfo=ET)
    t = time.perf_counter()
    await asyncio.gather(*(p.snapshot(now) for _ in range(n)))
    dt = time.perf_counter() - t
    await p.aclose()
    return dt, hits


def main() -> None:
    chain = full_size_chain()
    print(f"full-size chain: {FULL_SIZE_LINES} lines, {len(chain) / 1e6:.1f} MB")
    dt, (_, ch) = timeit(lambda: parse_chain(chain, max_dte=60, rate=0.037, div_yield=0.013))
    print(f"parse_chain (json + filters + IV re-solve, ≤60 DTE): {dt * 1000:.0f} ms, "
          f"{len(ch)} usable lines kept")
    t = time.perf_counter()
    p = OfflineProvider()
    asyncio.run(p.snapshot(None))
    cold = time.perf_counter() - t
    warm, _ = timeit(lambda: asyncio.run(p.snapshot(None)))
    print(f"offline snapshot: cold {cold * 1000:.0f} ms, warm {warm * 1000:.2f} ms")
    dt, hits = asyncio.run(concurrent_live(chain, 50))
    print(f"50 concurrent live snapshots (mock transport): {dt * 1000:.0f} ms, "
          f"{hits} HTTP requests")


if __name__ == "__main__":
    main()
