"""bot.marketdata.history: the shipped copies and the close-history frame. Reference values are
read off the raw CSV lines (quoted in comments) and the SHA-256s of shared/data/README.md."""

from __future__ import annotations

import hashlib
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from bot.marketdata.errors import MarketDataError
from bot.marketdata.history import (
    HistoryFormatError,
    default_history_dir,
    fed_funds_to_continuous,
    load_cboe_daily,
    load_fed_funds,
    load_history,
    load_spx_yahoo,
)
from core.calendar import sessions_in_range
from core.models import HISTORY_COLUMNS

SHIPPED = default_history_dir()

# shared/data/README.md (events file hashed from shared/data directly, it has no README hash)
SHA256 = {
    "VIX_History.csv": "425a8a3bb0112a5e1691966a9a83e275ae1e2711072c1c06deab3108d3f1b0d0",
    "VIX9D_History.csv": "a307898e86645067315ac8b3263e6cd847f188d9e69b20b3931208ede398b939",
    "VIX3M_History.csv": "7a5a6f075475ae19e6384b703bf53cd607aef47577da6b8653ed6da6a742759e",
    "VVIX_History.csv": "abafc34b5b50b9cbe1657758e5c0c2065c229f9eb60a2bf66712d7e77fb3eb49",
    "SPX_History_yahoo_GSPC.csv":
        "e30ca199f9f22ef8a039a9bc44feed87d3380280b21a980ce67987afa242c191",
    "FRED_DFF_fed_funds.csv": "da861bbd6aab36d9a1eb7da36a6fde6af12e88430cbaf22a156dc74585196ef6",
    "VX_settlement_curve_sample.csv":
        "9b6f62135c5cb98336a5882589fe6bbfa3df939eeec83e83345fa83cb6e1bb0a",
    "events_2024_2027.csv": "192b564600ef89efd4f77dfd601f96e2356883252c67114f561e129e88f578fc",
}


@pytest.mark.parametrize("name", sorted(SHA256))
def test_shipped_copies_are_byte_identical(name):
    assert hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest() == SHA256[name]


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return load_history(SHIPPED)


def test_frame_shape_and_index(history):
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert all(history[c].dtype == np.float64 for c in history.columns)
    assert history.index.is_monotonic_increasing and history.index.is_unique
    assert history.index.tz is None
    first, last = history.index[0].date(), history.index[-1].date()
    assert first == date(1990, 1, 2) and last == date(2026, 7, 31)  # VIX file runs longest
    assert list(history.index.date) == sessions_in_range(first, last)


def test_vix_rows_on_nyse_holidays_are_dropped(history):
    raw = load_cboe_daily(SHIPPED / "VIX_History.csv")
    # raw line 8707: "07/04/2024,12.100000,12.350000,12.090000,12.260000"
    assert raw.loc["2024-07-04"] == 12.26
    assert raw.loc["2025-01-09"] == 18.07  # Carter day of mourning, NYSE closed
    for holiday in ("2024-07-04", "2025-01-09", "2022-05-30"):
        assert pd.Timestamp(holiday) not in history.index
    assert history.loc["2024-07-05", "vix"] == 12.48  # CLOSE, not OPEN 12.37


def test_values_from_raw_lines(history):
    # SPX "07/05/2024,...,5567.18994140625" → 5567.19; "01/02/1990,...,359.69000244140625"
    assert history.loc["2024-07-05", "spx"] == 5567.19
    assert history.loc["1990-01-02", "spx"] == 359.69
    assert history.loc["2024-07-05", "vvix"] == 78.80  # DATE,VVIX layout
    assert history.loc["2024-07-05", "vix9d"] == 10.81
    # DFF 5.33 % simple ACT/360 → 365·ln(1 + 0.0533/360) ≈ 0.054036 continuous
    assert history.loc["2024-07-05", "rate"] == pytest.approx(0.054036, abs=1e-6)
    # a session missing from Cboe's VIX file stays NaN (README: 1991-03-01 is missing)
    assert math.isnan(history.loc["1991-03-01", "vix"])
    assert not math.isnan(history.loc["1991-03-01", "spx"])
    assert history.loc["2011-01-03":"2011-01-03", "vix9d"].isna().all()  # before VIX9D starts


def test_start_end_slice():
    h = load_history(SHIPPED, start=date(2018, 2, 1), end=date(2018, 2, 9))
    assert [d.date() for d in h.index] == [
        date(2018, 2, 1), date(2018, 2, 2), date(2018, 2, 5), date(2018, 2, 6),
        date(2018, 2, 7), date(2018, 2, 8), date(2018, 2, 9),
    ]
    assert h.loc["2018-02-05", "vix"] == 37.32


def test_spx_rounding(tmp_path):
    p = tmp_path / "spx.csv"
    p.write_text("DATE,OPEN,HIGH,LOW,CLOSE\n01/02/1990,1,1,1,353.3999938964844\n")
    assert load_spx_yahoo(p).iloc[0] == 353.40


def test_fed_funds_dot_and_empty_are_nan(tmp_path):
    p = tmp_path / "dff.csv"
    p.write_text("date,value\n2024-01-02,5.33\n2024-01-03,.\n2024-01-04,\n2024-01-05,-0.10\n")
    s = load_fed_funds(p)
    assert s.iloc[0] == pytest.approx(365 * math.log(1 + 0.0533 / 360), rel=1e-12)
    assert math.isnan(s.iloc[1]) and math.isnan(s.iloc[2])
    assert s.iloc[3] < 0  # negative policy rates are legal
    assert fed_funds_to_continuous(0.0) == 0.0


@pytest.mark.parametrize(
    "text, field, fragment",
    [
        ("DATE,OPEN,HIGH,LOW,CLOSE\n13/45/2024,1,1,1,12.0\n", "DATE", "row 2"),
        ("DATE,OPEN,HIGH,LOW,CLOSE\n01/02/2024,1,1,1,abc\n", "CLOSE", "'abc'"),
        ("DATE,OPEN,HIGH,LOW,CLOSE\n01/02/2024,1,1,1,\n", "CLOSE", "missing"),
        ("DATE,OPEN,HIGH,LOW,CLOSE\n01/02/2024,1,1,1,-3\n", "CLOSE", "positive"),
        ("DATE,OPEN,HIGH,LOW\n01/02/2024,1,1,1\n", "CLOSE", "column missing"),
        ("DATE,OPEN,HIGH,LOW,CLOSE\n01/02/2024,1,1,1,12\n01/02/2024,1,1,1,13\n", "DATE",
         "repeats"),
        ("DATE,OPEN,HIGH,LOW,CLOSE\n", "file", "no data rows"),
        ("2024-01-02,12.0\n", "DATE", "column missing"),  # no header at all
    ],
)
def test_malformed_cboe_file_names_the_field(tmp_path, text, field, fragment):
    p = tmp_path / "VIX_History.csv"
    p.write_text(text)
    with pytest.raises(HistoryFormatError) as info:
        load_cboe_daily(p)
    err = info.value
    assert err.field == field
    assert fragment in err.detail
    assert "VIX_History.csv" in err.source
    assert isinstance(err, MarketDataError) and isinstance(err, ValueError)


def test_malformed_file_inside_a_folder(tmp_path):
    for name in ("VIX_History.csv", "SPX_History_yahoo_GSPC.csv"):
        (tmp_path / name).write_bytes((SHIPPED / name).read_bytes())
    (tmp_path / "VVIX_History.csv").write_text("DATE,VVIX\n01/02/2024,eighty\n")
    with pytest.raises(HistoryFormatError, match=r"VVIX_History\.csv: VVIX: row 2"):
        load_history(tmp_path)


def test_optional_files_missing_give_nan_columns_required_missing_raise(tmp_path):
    for name in ("VIX_History.csv", "SPX_History_yahoo_GSPC.csv"):
        (tmp_path / name).write_bytes((SHIPPED / name).read_bytes())
    h = load_history(tmp_path, start=date(2024, 7, 1), end=date(2024, 7, 5))
    assert h["vix9d"].isna().all() and h["rate"].isna().all()
    assert h.loc["2024-07-05", "vix"] == 12.48
    (tmp_path / "VIX_History.csv").unlink()
    with pytest.raises(HistoryFormatError, match=r"VIX_History\.csv: file: not found"):
        load_history(tmp_path)
    with pytest.raises(HistoryFormatError, match="not a folder"):
        load_history(tmp_path / "nowhere")


# --- overlay of the recorded official closes ---------------------------------------------------


def _frame() -> pd.DataFrame:
    """Three sessions before the Independence Day weekend (NYSE shut Fri 3 July 2026); the
    1 July row lacks its VIX close (a provider that lags)."""
    index = pd.DatetimeIndex(pd.to_datetime(["2026-06-30", "2026-07-01", "2026-07-02"]),
                             name="date").as_unit("s")
    frame = pd.DataFrame({"spx": [7499.36, 7483.23, 7483.24], "vix": [16.45, np.nan, 16.15],
                          "vix9d": [13.73, np.nan, 12.37], "vix3m": [19.0, 19.16, 19.04],
                          "vvix": [86.87, 89.04, 88.80], "rate": [0.0368] * 3}, index=index)
    frame.attrs["sources"] = {"vix": "shipped history"}
    return frame


def _reading(day: date, **closes: float | None):
    from types import SimpleNamespace

    values = dict.fromkeys(("spx", "vix", "vix9d", "vix3m", "vvix"))
    return SimpleNamespace(session_date=day, **{**values, **closes})


def test_overlay_appends_the_missing_last_sessions_as_nyse_sessions():
    from bot.marketdata.history import overlay_official_closes

    h = _frame()
    out = overlay_official_closes(h, [
        _reading(date(2026, 7, 8), spx=7482.71, vix=16.90, vix9d=14.41),
        _reading(date(2026, 7, 6), spx=7537.43, vix=15.57, vix9d=12.32, vix3m=18.78, vvix=87.09),
    ])
    # Fri 3 July is the observed holiday: after the 2nd come Mon 6, Tue 7, Wed 8 July
    assert list(out.index) == [pd.Timestamp(d) for d in ("2026-06-30", "2026-07-01",
                                                         "2026-07-02", "2026-07-06",
                                                         "2026-07-07", "2026-07-08")]
    assert out.index.name == "date" and out.index.unit == "s" and out.index.tz is None
    assert out.loc["2026-07-06"].tolist()[:5] == [7537.43, 15.57, 12.32, 18.78, 87.09]
    assert out.loc["2026-07-08", "vix"] == 16.90 and math.isnan(out.loc["2026-07-08", "vvix"])
    assert out.loc["2026-07-07"].isna().all()  # no reading that day: a NaN row, not a gap
    assert math.isnan(out.loc["2026-07-06", "rate"])  # readings carry no rate
    assert out.attrs["official_closes"] == (date(2026, 7, 6), date(2026, 7, 8))
    assert out.attrs["sources"] == {"vix": "shipped history"}
    pd.testing.assert_frame_equal(out.iloc[:3], h, check_freq=False)  # the history untouched
    assert list(h.index)[-1] == pd.Timestamp("2026-07-02")  # the input is not changed


def test_overlay_fills_a_nan_vix_row_and_never_overwrites_a_value():
    from bot.marketdata.history import overlay_official_closes

    h = _frame()
    out = overlay_official_closes(h, [
        _reading(date(2026, 7, 1), spx=1.0, vix=16.59, vix9d=13.14, vvix=1.0),
        _reading(date(2026, 7, 2), spx=1.0, vix=99.0, vix9d=99.0),  # its VIX is there
    ])
    assert len(out) == 3
    assert out.loc["2026-07-01"].tolist() == [7483.23, 16.59, 13.14, 19.16, 89.04, 0.0368]
    pd.testing.assert_series_equal(out.loc["2026-07-02"], h.loc["2026-07-02"])
    assert out.attrs["official_closes"] == (date(2026, 7, 1),)


def test_overlay_ignores_non_sessions_and_empty_readings():
    from bot.marketdata.history import overlay_official_closes

    h = _frame()
    assert overlay_official_closes(h, []) is h
    ignored = [_reading(date(2026, 7, 3), spx=7500.0, vix=16.0),  # Independence Day observed
               _reading(date(2026, 7, 4), vix=16.0),  # a Saturday
               _reading(date(2026, 7, 6)),  # no close recorded (a reading from before 0005)
               _reading(date(2026, 7, 7), vix=float("nan"), spx=-1.0)]
    out = overlay_official_closes(h, ignored)
    pd.testing.assert_frame_equal(out, h)
    assert overlay_official_closes(h.iloc[:0], []).empty


def test_overlay_on_an_empty_history_builds_the_sessions_of_the_readings():
    from bot.marketdata.history import overlay_official_closes

    out = overlay_official_closes(_frame().iloc[:0], [_reading(date(2026, 7, 6), vix=15.57),
                                                      _reading(date(2026, 7, 2), vix=16.15)])
    assert list(out.index) == [pd.Timestamp("2026-07-02"), pd.Timestamp("2026-07-06")]
    assert out["vix"].tolist() == [16.15, 15.57]
