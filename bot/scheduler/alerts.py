"""What the intraday watch alerts on (pure): EDR state moves, roll verdicts worth acting on,
hedge exit signals and breached short strikes. Each alert has a key the store's alert log
makes once per user."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from core.params import DEFAULT_PARAMS

# Roll verdicts worth a message the moment they appear (METHOD §8): act now or stop waiting.
ALERT_OUTCOMES = ("HEDGE_FIRST", "CLEARED", "TAKE_PROFIT", "EXIT_LOSS_LIMIT", "SETTLE_OR_CLOSE")
STATE_ORDER = ("CALM", *(name for name, _ in DEFAULT_PARAMS.state_levels()))


def state_rank(state: str) -> int:
    return STATE_ORDER.index(state) if state in STATE_ORDER else -1


@dataclass(frozen=True)
class Alert:
    key: str  # record_alert key: the same key is never sent twice to a user
    kind: str  # state, roll, exit, breach
    data: dict[str, Any] = field(default_factory=dict)


_VIX_LEVEL = re.compile(r"VIX [0-9.]+ ≥ ([0-9.]+): ")
_LAYER_MARK = re.compile(r"(.+?): mark [0-9.]+ ≥ ")
_LAYER_EXPIRY = re.compile(r"(.+?): [0-9]+ session\(s\) to VIX expiry")


def signal_kind(signal: str) -> str:
    """What a hedge exit signal means, without the live quotes it cites ("VIX 31.4 ≥ 30: sell
    half" → "vix>=30"; "L2 VIX 2026-07-22 20C: mark 3.40 ≥ 3 × cost …" → "mark:L2 VIX
    2026-07-22 20C"), so VIX moving 31.0 → 31.4 → 30.8 is still the same alert."""
    if m := _VIX_LEVEL.match(signal):
        return f"vix>={m[1]}"
    if m := _LAYER_MARK.match(signal):
        return f"mark:{m[1]}"
    if m := _LAYER_EXPIRY.match(signal):
        return f"expiry:{m[1]}"
    if signal.startswith("state CALM and VIX/VIX3M"):
        return "calm-term-structure"
    return re.sub(r"[0-9]+(?:\.[0-9]+)?", "#", signal)  # unknown wording: numbers never key


def market_alerts(market: Any, session: date) -> list[Alert]:
    """The EDR state moved up from the official (last close) state."""
    state, official = getattr(market, "state", ""), getattr(market, "official_state", "")
    if state_rank(state) > state_rank(official) >= 0:
        return [Alert(f"state:{session.isoformat()}:{state}", "state",
                      {"state": state, "official": official, "edr_pct": market.edr_pct})]
    return []


def position_alerts(record: Any, spx: float | None, session: date) -> list[Alert]:
    """Roll verdicts worth acting on, hedge exit signals, and breached short strikes."""
    out: list[Alert] = []
    s = session.isoformat()
    pid = record.position_id
    base = {"position_id": pid, "label": record.label, "strikes": record.strikes}
    roll = record.roll
    if roll is not None and str(roll.outcome) in ALERT_OUTCOMES:
        out.append(Alert(f"roll:{pid}:{roll.outcome}:{s}", "roll",
                         {**base, "outcome": str(roll.outcome), "rule": roll.rule,
                          "reason": roll.reason}))
    se = record.second_engine
    for signal in (se.exit_signals if se is not None else ()):
        out.append(Alert(f"exit:{pid}:{signal_kind(signal)[:80]}:{s}", "exit",
                         {**base, "signal": signal}))
    if spx is not None and record.problems == ():
        k2, k3 = record.strikes[1], record.strikes[2]
        if spx < k2:
            out.append(Alert(f"breach:{pid}:put:{s}", "breach",
                             {**base, "side": "put", "strike": k2, "spx": spx}))
        elif spx > k3:
            out.append(Alert(f"breach:{pid}:call:{s}", "breach",
                             {**base, "side": "call", "strike": k3, "spx": spx}))
    return out


def book_alerts(book_hedge: Any, session: date) -> list[Alert]:
    """Exit signals of the layers held against the whole book (`/hedge book`, METHOD §6b):
    they sit on the book hedge record, not on any position's, so without this a "VIX ≥ 30:
    sell half" for them would never reach the trader between reports."""
    if book_hedge is None:
        return []
    s = session.isoformat()
    return [Alert(f"exit:book:{signal_kind(signal)[:80]}:{s}", "exit",
                  {"position_id": None, "label": "", "signal": signal})
            for signal in book_hedge.exit_signals]
