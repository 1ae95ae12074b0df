"""Bundled FOMC/CPI/PPI events and the operator's extra-events file."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.marketdata.errors import MarketDataError
from bot.marketdata.events import load_events, parse_events
from core.calendar import ET
from core.models import EventKind
from core.params import Params


def test_bundled_list_with_default_times_and_provenance():
    events = load_events()
    assert len(events) == 102  # rows of events_2024_2027.csv
    fomc = next(e for e in events if e.when.date().isoformat() == "2026-07-29")
    assert fomc.kind is EventKind.FOMC
    assert fomc.when == datetime(2026, 7, 29, 14, 0, tzinfo=ET)
    assert fomc.label == "FED_PR_2024-08-09"  # the source key: provenance travels with it
    cpi = next(e for e in events if e.when.date().isoformat() == "2026-07-14")
    assert cpi.kind is EventKind.CPI and cpi.when.hour == 8 and cpi.when.minute == 30
    # winter FOMC is 14:00 EST = 19:00 UTC
    jan = next(e for e in events if e.when.date().isoformat() == "2026-01-28")
    assert jan.when.astimezone(UTC).hour == 19
    assert events == sorted(events, key=lambda e: e.when)
    assert {e.kind for e in events} == {EventKind.FOMC, EventKind.CPI, EventKind.PPI}


def test_operator_file_adds_and_overrides(tmp_path):
    f = tmp_path / "extra.csv"
    f.write_text("date,time,event,label\n"
                 "2026-07-20,10:00,OTHER,Powell testimony\n"
                 "2026-08-07,,NFP,July payrolls\n"
                 "2026-07-29,,FOMC_DECISION,July FOMC (operator)\n"
                 "\n")
    events = load_events(f)
    assert len(events) == 104
    other = next(e for e in events if e.kind is EventKind.OTHER)
    assert other.when == datetime(2026, 7, 20, 10, 0, tzinfo=ET)
    nfp = next(e for e in events if e.kind is EventKind.NFP)
    assert nfp.when == datetime(2026, 8, 7, 8, 30, tzinfo=ET) and nfp.label == "July payrolls"
    fomc = [e for e in events if e.when == datetime(2026, 7, 29, 14, 0, tzinfo=ET)]
    assert [e.label for e in fomc] == ["July FOMC (operator)"]


def test_default_times_come_from_params():
    p = Params(fomc_default_time="14:30", release_default_time="08:00")
    ev = parse_events("date,event\n2026-07-29,FOMC\n2026-07-14,CPI\n", "t", p)
    assert [(e.when.hour, e.when.minute) for e in ev] == [(14, 30), (8, 0)]


def test_every_bad_row_is_named_at_once(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("date,time,event,label\n"
                 "2026/07/20,10:00,OTHER,x\n"
                 "2026-07-21,10:00,ELECTION,x\n"
                 "2026-07-22,25:00,CPI,x\n"
                 "2026-07-23,,CPI,fine\n")
    with pytest.raises(MarketDataError) as e:
        load_events(f)
    err = e.value
    assert err.source == f"events file {f}"
    assert err.field == "3 rows"
    assert "row 2: date must be YYYY-MM-DD" in err.detail
    assert "row 3: event must be one of FOMC, CPI, PPI, NFP, OTHER (got 'ELECTION')" in err.detail
    assert "row 4: time must be HH:MM" in err.detail


def test_single_bad_row_names_the_row():
    with pytest.raises(MarketDataError) as e:
        parse_events("date,event\n2026-13-01,CPI\n", "events file x.csv")
    assert e.value.field == "row 2"


def test_missing_file_and_bad_header(tmp_path):
    with pytest.raises(MarketDataError) as e:
        load_events(tmp_path / "nope.csv")
    assert e.value.field == "file"
    f = tmp_path / "h.csv"
    f.write_text("when,what\n2026-07-20,CPI\n")
    with pytest.raises(MarketDataError) as e:
        load_events(f)
    assert e.value.field == "header"
