"""Scheduled events: the bundled FOMC/CPI/PPI list plus an operator file of extra events.

Bundled: `bot/data/history/events_2024_2027.csv` (`date,event,source`; provenance in
docs/marketdata.md and shared/data/README.md). Operator file (`ALVH_EXTRA_EVENTS_FILE`):
`date,time,event,label` with ISO dates, optional HH:MM New York time, event one of FOMC, CPI,
PPI, NFP, OTHER (the bundled names FOMC_DECISION, CPI_RELEASE, PPI_RELEASE also work).
Without a time, FOMC is at 14:00 ET and releases at 08:30 ET (Params).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from pathlib import Path

from bot.marketdata.errors import MarketDataError
from bot.marketdata.parsers import ET
from core.models import Event, EventKind
from core.params import Params

BUNDLED_EVENTS = Path(__file__).resolve().parents[1] / "data" / "history" / "events_2024_2027.csv"
EVENT_ALIASES = {"FOMC_DECISION": "FOMC", "CPI_RELEASE": "CPI", "PPI_RELEASE": "PPI",
                 "NFP_RELEASE": "NFP"}
EXTRA_COLUMNS = ("date", "time", "event", "label")


def _kind(raw: str) -> EventKind | None:
    name = EVENT_ALIASES.get(raw.strip().upper(), raw.strip().upper())
    try:
        return EventKind(name)
    except ValueError:
        return None


def _default_time(kind: EventKind, params: Params) -> time:
    hhmm = params.fomc_default_time if kind is EventKind.FOMC else params.release_default_time
    return time.fromisoformat(hhmm)


def parse_events(text: str, source: str, params: Params | None = None) -> list[Event]:
    """Parse an events CSV (bundled or operator layout); every bad row is named at once."""
    params = params or Params()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "date" not in header or "event" not in header:
        raise MarketDataError(source, "header",
                              f"needs columns date,event (and optional time,label); got {header}")
    reader.fieldnames = header
    events: list[Event] = []
    problems: list[str] = []
    for n, row in enumerate(reader, start=2):
        raw_date = (row.get("date") or "").strip()
        raw_time = (row.get("time") or "").strip()
        raw_event = (row.get("event") or "").strip()
        if not raw_date and not raw_event:
            continue  # blank line
        try:
            d = date.fromisoformat(raw_date)
        except ValueError:
            problems.append(f"row {n}: date must be YYYY-MM-DD (got {raw_date!r})")
            continue
        kind = _kind(raw_event)
        if kind is None:
            problems.append(f"row {n}: event must be one of "
                            f"{', '.join(k.value for k in EventKind)} (got {raw_event!r})")
            continue
        if raw_time:
            try:
                t = time.fromisoformat(raw_time)
            except ValueError:
                problems.append(f"row {n}: time must be HH:MM New York time (got {raw_time!r})")
                continue
        else:
            t = _default_time(kind, params)
        label = (row.get("label") or "").strip() or (row.get("source") or "").strip()
        events.append(Event(when=datetime.combine(d, t, tzinfo=ET), kind=kind, label=label))
    if problems:
        field = problems[0].split(":")[0] if len(problems) == 1 else f"{len(problems)} rows"
        raise MarketDataError(source, field, "; ".join(problems))
    return events


def load_events(extra_file: Path | None = None, params: Params | None = None,
                bundled: Path = BUNDLED_EVENTS) -> list[Event]:
    """Bundled events plus the operator's, sorted by time, duplicates (same time and kind)
    merged with the operator's label winning."""
    if not bundled.exists():
        raise MarketDataError("bundled events", str(bundled), "file missing from the install")
    merged: dict[tuple[datetime, EventKind], Event] = {}
    for e in parse_events(bundled.read_text(), f"bundled events {bundled.name}", params):
        merged[(e.when, e.kind)] = e
    if extra_file is not None:
        src = f"events file {extra_file}"
        try:
            text = Path(extra_file).read_text()
        except OSError as exc:
            raise MarketDataError(src, "file", f"cannot read ({exc.strerror or exc})") from None
        for e in parse_events(text, src, params):
            merged[(e.when, e.kind)] = e
    return sorted(merged.values(), key=lambda e: (e.when, e.kind.value))
