"""Print timings of the calendar/EDR/indicator hot paths at engine scale (10,000 positions)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import numpy as np

from bot.marketdata.history import _load_history_cached, default_history_dir, load_history
from core import calendar as cal
from core.edr import edr_pct, horizon_edr, official_state, replay_states, wing_pressure
from core.indicators import macd, realised_vol, rsi_wilder
from core.models import Event, EventKind

N = 10_000
ASOF = datetime(2025, 3, 10, 11, 0, tzinfo=cal.ET)


def timed(label: str, fn, repeat: int = 5) -> None:
    fn()  # warm
    best = min(_once(fn) for _ in range(repeat))
    print(f"{label:<58s} {best * 1e3:9.3f} ms")


def _once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    t = time.perf_counter()
    cal._cal.cache_clear()
    cal._cal()
    print(f"{'build XNYS calendar 1990-2028 (once per process)':<58s} "
          f"{(time.perf_counter() - t) * 1e3:9.3f} ms")
    rng = np.random.default_rng(7)
    sessions = np.array(cal.sessions_in_range(date(2025, 3, 10), date(2025, 12, 31)))
    expiries = sessions[rng.integers(0, len(sessions), N)]
    expiries_d64 = expiries.astype("datetime64[D]")
    am = rng.random(N) < 0.2
    timed(f"sessions_to_expiry_many, {N} date objects",
          lambda: cal.sessions_to_expiry_many(ASOF, expiries, am))
    timed(f"sessions_to_expiry_many, {N} datetime64[D]",
          lambda: cal.sessions_to_expiry_many(ASOF, expiries_d64, am))
    ends = cal.settlement_epochs(expiries_d64, am)
    timed(f"settlement_epochs + years_to_settlement_many, {N}",
          lambda: cal.years_to_settlement_many(ASOF, cal.settlement_epochs(expiries_d64, am)))
    n = cal.sessions_to_expiry_many(ASOF, expiries_d64, am)
    kinds = list(EventKind)
    events = [Event(ASOF + timedelta(days=3 * i, hours=3), kinds[i % len(kinds)])
              for i in range(100)]
    timed(f"horizon_edr, {N} positions x 100 events",
          lambda: horizon_edr(48.8, n, ends, events, "VIX", ASOF))
    edr_h = horizon_edr(48.8, n, ends, events, "VIX", ASOF)
    spot = np.full(N, 5000.0)
    k2 = spot - rng.uniform(50, 300, N)
    k3 = spot + rng.uniform(50, 300, N)
    timed(f"wing_pressure, {N}", lambda: wing_pressure(spot, k2, k3, edr_h))
    timed("vix_expiries 2025-2027 with weeklies",
          lambda: cal.vix_expiries(date(2025, 1, 1), date(2027, 12, 31)))

    _load_history_cached.cache_clear()
    t = time.perf_counter()
    hist = load_history(default_history_dir())
    print(f"{'load_history, cold (parse 6 CSVs)':<58s} {(time.perf_counter() - t) * 1e3:9.3f} ms")
    timed("load_history, warm (cached, copy)", lambda: load_history(default_history_dir()))
    vix = hist["vix"].dropna()
    edr = edr_pct(vix.to_numpy())
    timed(f"replay_states over the whole VIX history ({len(edr)} closes)",
          lambda: replay_states(edr))
    timed("official_state (last 60 closes)", lambda: official_state(edr))
    spx = hist["spx"].dropna()
    timed(f"macd 12/26/9 over {len(spx)} SPX closes", lambda: macd(spx))
    timed(f"rsi_wilder 14 over {len(spx)} SPX closes", lambda: rsi_wilder(spx))
    timed(f"realised_vol 20 over {len(spx)} SPX closes", lambda: realised_vol(spx, 20))


if __name__ == "__main__":
    main()
