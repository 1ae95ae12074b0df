"""The current market snapshot with its timestamps and flags, as plain data (`snapshot_dict`)
and as text (`render_text`); `alvh market` (bot/cli/market.py) prints it."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from bot.marketdata.freshness import QUOTE_FIELDS
from bot.marketdata.provider import MarketDataProvider
from core.calendar import ET, SessionPhase, session_phase
from core.models import Event, MarketSnapshot

NEXT_EVENTS_SHOWN = 5
LABELS = {"spx": "SPX", "vix": "VIX", "vix9d": "VIX9D", "vix3m": "VIX3M", "vvix": "VVIX"}


def _t(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(ET).strftime("%Y-%m-%d %H:%M:%S ET")


def snapshot_dict(snap: MarketSnapshot, provider: MarketDataProvider,
                  events: list[Event]) -> dict[str, Any]:
    """Plain data for --json (the chain is summarised, not dumped)."""
    expiries = Counter((k[0], k[1].isoformat()) for k in snap.chain)
    return {
        "provider": provider.name,
        "asof": snap.asof.isoformat(),
        "phase": session_phase(snap.asof).value,
        "quotes": {
            n: None if (q := getattr(snap, n)) is None else
            {"value": q.value, "asof": q.asof.isoformat(), "source": q.source}
            for n in QUOTE_FIELDS
        },
        "vix_futures": [{"symbol": f.symbol, "expiry": f.expiry.isoformat(), "price": f.price,
                         "asof": f.asof.isoformat()} for f in snap.vix_futures],
        "chain": {"lines": len(snap.chain),
                  "expiries": [{"root": r, "expiry": e, "lines": n}
                               for (r, e), n in sorted(expiries.items(), key=lambda x: x[0][1])],
                  "asof": next(iter(snap.chain.values())).asof.isoformat() if snap.chain
                  else None},
        "rate": None if snap.rate is None else {"value": snap.rate.value,
                                                "asof": snap.rate.asof.isoformat(),
                                                "source": snap.rate.source},
        "div_yield": snap.div_yield,
        "flags": list(snap.flags),
        "errors": [{"source": e.source, "field": e.field, "detail": e.detail}
                   for e in getattr(provider, "errors", [])],
        "next_events": [{"when": e.when.isoformat(), "kind": e.kind.value, "label": e.label}
                        for e in events[:NEXT_EVENTS_SHOWN]],
    }


def render_text(d: dict[str, Any], snap: MarketSnapshot) -> str:
    phase = SessionPhase(d["phase"])
    head = f"Market snapshot as of {_t(snap.asof)}"
    if d["provider"] == "offline":
        head += " (offline sample: not live data)"
    elif phase is not SessionPhase.REGULAR:
        head += " (market closed: values are the last official closes)"
    lines = [head, ""]
    for n in QUOTE_FIELDS:
        q = getattr(snap, n)
        if q is None:
            lines.append(f"  {LABELS[n]:<6} missing")
        else:
            lines.append(f"  {LABELS[n]:<6} {q.value:>10,.2f}   {_t(q.asof)}   {q.source}")
    if snap.vix_futures:
        curve = ", ".join(f"{f.symbol} {f.expiry:%b-%d} {f.price:.2f}" for f in snap.vix_futures)
        lines.append(f"  VX curve (settled {snap.vix_futures[0].asof:%Y-%m-%d}): {curve}")
    else:
        lines.append("  VX curve: missing")
    ch = d["chain"]
    if ch["lines"]:
        exps = ", ".join(f"{e['root']} {e['expiry']}" for e in ch["expiries"])
        lines.append(f"  SPX chain: {ch['lines']} usable lines as of "
                     f"{_t(datetime.fromisoformat(ch['asof']))}; expiries {exps}")
    else:
        lines.append("  SPX chain: missing (the engine will use the model smile)")
    if snap.rate is not None:
        lines.append(f"  Rate   {100 * snap.rate.value:.3f} % continuous, {snap.rate.source}, "
                     f"as of {snap.rate.asof:%Y-%m-%d}")
    lines.append("")
    lines.append("Flags: " + (", ".join(snap.flags) if snap.flags else "none"))
    for e in d["errors"]:
        lines.append(f"  problem: {e['source']}: {e['field']}: {e['detail']}")
    if d["next_events"]:
        lines.append("Events: " + "; ".join(
            f"{e['kind']} {datetime.fromisoformat(e['when']).astimezone(ET):%Y-%m-%d %H:%M} ET"
            for e in d["next_events"]))
    return "\n".join(lines)


async def collect(provider: MarketDataProvider) -> tuple[MarketSnapshot, list[Event]]:
    """(snapshot now, the events from then on), closing the provider after."""
    async with provider:
        snap = await provider.snapshot(datetime.now(ET))
        events = [e for e in await provider.events() if e.when >= snap.asof]
        return snap, events
