"""Chart speed: prints milliseconds per chart (median and worst of several renders) for the
payoff chart (with a hedge), the roll chart and the EDR history chart on the offline sample,
plus the data steps the bot runs before rendering. Target (issue 8): ≤ 300 ms per chart.

Run: .venv/bin/python bench/bench_charts.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import date

from bot import charts
from bot.marketdata.offline import OfflineProvider
from core.evaluate import evaluate_market
from core.models import HedgeKind, HedgeLayer, Position
from core.params import Params
from core.payoff import MarketInputs, payoff_curves

REPEATS = 7


def timed(label: str, fn, repeats: int = REPEATS):
    fn()  # warm-up: font cache, first-call imports
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        runs.append((time.perf_counter() - t0) * 1000)
    print(f"{label:<44} median {statistics.median(runs):7.1f} ms   worst {max(runs):7.1f} ms")
    return out


def main() -> None:
    provider = OfflineProvider()

    async def data():
        return (await provider.snapshot(provider.asof), await provider.history(),
                await provider.events())

    snap, hist, events = asyncio.run(data())
    asof, params = provider.asof, Params()
    ctx = timed("evaluate_market (market inputs)",
                lambda: evaluate_market(snap, hist, events, params, asof))
    m = MarketInputs.from_context(ctx)
    hedge = HedgeLayer(HedgeKind.VIX_CALL, date(2026, 7, 22), 3, 0.8, strike=20.0)
    pos = Position(id=1, root="SPXW", expiry=date(2026, 8, 21), k1=7100, k2=7150, k3=7800,
                   k4=7850, qty=2, entry_credit=4.35, opened=date(2026, 7, 8), hedges=(hedge,))
    new = Position(id=0, root="SPXW", expiry=date(2026, 9, 18), k1=6900, k2=6950, k3=7950,
                   k4=8000, qty=2, entry_credit=4.35, roll_credits=1.2, opened=date(2026, 7, 8))
    curves = timed("payoff_curves (hedged, ~245 grid points)", lambda: payoff_curves(pos, m))
    after = payoff_curves(new, m, half_width=3 * curves.edr_h)
    edr = timed("edr_history (120 closes)",
                lambda: charts.edr_history(hist, asof, params, today_pct=ctx.edr_pct,
                                           today_state="BREACHED"))
    png = timed("payoff_png render (1200x900)", lambda: charts.payoff_png(curves, asof))
    print(f"{'':<44} {len(png) / 1024:.0f} KiB")
    timed("roll_png render (1200x900)", lambda: charts.roll_png(curves, after, asof))
    timed("edr_history_png render (1200x900)", lambda: charts.edr_history_png(edr, asof))


if __name__ == "__main__":
    main()
