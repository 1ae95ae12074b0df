"""Build the offline market-data sample (run once; its output is committed).

    .venv/bin/python bot/data/sample/make_sample.py [HISTORY_DIR]

(tests/test_marketdata_offline.py regenerates it into a temporary folder and compares bytes.)

Everything is deterministic (fixed seed, no clock, no network). Inputs: the shipped history
CSVs (Cboe VIX/VIX9D/VIX3M/VVIX, Yahoo ^GSPC, FRED DFF) and the CFE VX settlement sample.
Outputs, in the exact Cboe payload shapes of MARKETDATA.md:

- quotes/_SPX.json, _VIX.json, _VIX9D.json, _VIX3M.json, _VVIX.json: real closes of AS_OF;
- options/_SPX.json: a trimmed SPX/SPXW chain, bid/ask centred on a theoretical value priced
  with BSM on the METHOD.md §1 SSVI surface (core.pricing.ssvi_vol on the real VIX9D/VIX/VIX3M
  of AS_OF), so every mid is the model's and the mids are free of static arbitrage (METHOD §8
  I5; quotes are therefore not on the exchange's tick grid, see docs/marketdata.md), with
  Cboe-style junk on the deep in-the-money lines (iv 0 or 4.12, delta −999) and 0 / 0.05
  quotes on far wings worth less than half a tick;
- VX_settlement.csv: the CFE layout `Product,Symbol,Expiration Date,Price`;
- sample.json: the as-of moment and provenance.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from scipy.stats import norm

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from bot.marketdata.history import fed_funds_to_continuous  # noqa: E402
from core.params import Params  # noqa: E402
from core.pricing import ssvi_vol  # noqa: E402

HERE = Path(__file__).resolve().parent
ET = ZoneInfo("America/New_York")
AS_OF = date(2026, 7, 8)  # last session whose SPX row is a full day (see docs/marketdata.md)
VX_SETTLEMENT_DATE = date(2026, 7, 23)  # the shared VX curve sample's most likely session
SEED = 20260708
SPX_TIME = "16:00:00"  # SPX official close
VIX_TIME = "16:14:59"  # VIX-family and SPX options close at 16:15
PUBLISHED_UTC = "2026-07-08 21:31:07"  # the moving top-level `timestamp`, after hours
# (root, expiry): daily SPXW, the SPX AM monthlies (third Fridays), and one beyond 60 DTE so the
# provider's DTE slice has something to cut
EXPIRIES = [
    ("SPXW", date(2026, 7, 9)), ("SPXW", date(2026, 7, 10)), ("SPX", date(2026, 7, 17)),
    ("SPXW", date(2026, 7, 17)), ("SPXW", date(2026, 7, 24)), ("SPXW", date(2026, 7, 31)),
    ("SPXW", date(2026, 8, 14)), ("SPX", date(2026, 8, 21)), ("SPXW", date(2026, 8, 21)),
    ("SPXW", date(2026, 9, 4)), ("SPX", date(2026, 9, 18)),
]
FINE_GRID, COARSE_GRID = 5.0, 25.0  # strike steps near spot / in the wings
FINE_BAND = 0.03  # ±3 % of spot on the fine grid
WING_SD_DOWN, WING_SD_UP = 4.0, 2.5  # wing range in σ√τ (puts reach further: skew)
DEEP_ITM_SD = 2.0  # beyond this many σ√τ in the money, Cboe's iv/greeks are junk
JUNK_IVS = (0.0, 4.12)
JUNK_DELTA = -999.0
TICK_SMALL = 0.05  # SPX option tick below 3.00
SPREAD_FRAC = 0.02  # bid/ask width ≈ 2 % of theo, at least one tick
MID_FLOOR = TICK_SMALL / 2  # the mid of a 0 / 0.05 far-wing quote
QUOTE_SYMBOLS = {"_SPX": "spx", "_VIX": "vix", "_VIX9D": "vix9d", "_VIX3M": "vix3m",
                 "_VVIX": "vvix"}


def _history_dir(arg: str | None) -> Path:
    for cand in (arg, ROOT / "bot/data/history", Path("/work/shared/data")):
        if cand and (Path(cand) / "VIX_History.csv").exists():
            return Path(cand)
    raise SystemExit("no history directory with VIX_History.csv found")


def _cboe_close(path: Path, col: str = "CLOSE") -> pd.Series:
    df = pd.read_csv(path)
    s = pd.Series(df[col].to_numpy(float), index=pd.to_datetime(df["DATE"], format="%m/%d/%Y"))
    return s


def _two_closes(hist: Path) -> dict[str, tuple[float, float, dict]]:
    files = {"spx": ("SPX_History_yahoo_GSPC.csv", "CLOSE"), "vix": ("VIX_History.csv", "CLOSE"),
             "vix9d": ("VIX9D_History.csv", "CLOSE"), "vix3m": ("VIX3M_History.csv", "CLOSE"),
             "vvix": ("VVIX_History.csv", "VVIX")}
    out = {}
    for name, (fn, col) in files.items():
        df = pd.read_csv(hist / fn)
        df.index = pd.to_datetime(df["DATE"], format="%m/%d/%Y")
        df = df.loc[: pd.Timestamp(AS_OF)]
        row, prev = df.iloc[-1], df.iloc[-2]
        assert df.index[-1].date() == AS_OF, f"{fn} has no row for {AS_OF}"
        ohlc = {k.lower(): round(float(row[k]), 2) for k in ("OPEN", "HIGH", "LOW", "CLOSE")
                if k in df.columns}
        out[name] = (round(float(row[col]), 2), round(float(prev[col]), 2), ohlc)
    return out


def _rate(hist: Path) -> tuple[float, date]:
    df = pd.read_csv(hist / "FRED_DFF_fed_funds.csv", parse_dates=["date"])
    last = df[df["date"] <= pd.Timestamp(AS_OF)].iloc[-1]
    return float(fed_funds_to_continuous(float(last["value"]))), last["date"].date()


def _quote_data(sym: str, close: float, prev: float, ohlc: dict, when: str, iv30: float) -> dict:
    change = round(close - prev, 2)
    return {
        "symbol": "^" + sym[1:], "security_type": "index", "exchange_id": 5,
        "current_price": close, "price_change": change,
        "price_change_percent": round(100 * change / prev, 4), "bid": 0.0, "ask": 0.0,
        "bid_size": 0.0, "ask_size": 0.0, "open": ohlc.get("open", close),
        "high": ohlc.get("high", close), "low": ohlc.get("low", close), "close": close,
        "prev_day_close": prev, "volume": 0.0, "iv30": iv30, "iv30_change": 0.0,
        "iv30_change_percent": 0.0, "seqno": 0,
        "last_trade_time": f"{AS_OF.isoformat()}T{when}", "tick": "down" if change < 0 else "up",
    }


def bsm(spot, strike, tau, r, q, vol, is_call):
    sd = vol * np.sqrt(tau)
    d1 = (np.log(spot / strike) + (r - q + 0.5 * vol**2) * tau) / sd
    d2 = d1 - sd
    df_r, df_q = np.exp(-r * tau), np.exp(-q * tau)
    call = spot * df_q * norm.cdf(d1) - strike * df_r * norm.cdf(d2)
    put = strike * df_r * norm.cdf(-d2) - spot * df_q * norm.cdf(-d1)
    price = np.where(is_call, call, put)
    delta = np.where(is_call, df_q * norm.cdf(d1), -df_q * norm.cdf(-d1))
    gamma = df_q * norm.pdf(d1) / (spot * sd)
    vega = spot * df_q * norm.pdf(d1) * np.sqrt(tau) / 100  # per vol point
    theta_c = (-spot * df_q * norm.pdf(d1) * vol / (2 * np.sqrt(tau))
               - r * strike * df_r * norm.cdf(d2) + q * spot * df_q * norm.cdf(d1))
    theta_p = (-spot * df_q * norm.pdf(d1) * vol / (2 * np.sqrt(tau))
               + r * strike * df_r * norm.cdf(-d2) - q * spot * df_q * norm.cdf(-d1))
    theta = np.where(is_call, theta_c, theta_p) / 365  # per calendar day
    rho = np.where(is_call, strike * tau * df_r * norm.cdf(d2),
                   -strike * tau * df_r * norm.cdf(-d2)) / 100
    return price, delta, gamma, vega, theta, rho


def _quotes(theo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bid, ask) whose mid is the model value (to 4 dp), so the mids are as free of static
    arbitrage as the SSVI surface; a line worth less than half a tick is quoted 0 / 0.05 (its
    mid 0.025 = max(theo, 0.025) keeps the put and call curves convex and monotone)."""
    mid = np.round(np.maximum(theo, MID_FLOOR), 4)
    half = np.round(np.maximum(SPREAD_FRAC * mid, TICK_SMALL) / 2, 4)
    floor = theo < MID_FLOOR
    bid = np.where(floor, 0.0, np.round(mid - half, 4))
    ask = np.where(floor, TICK_SMALL, np.round(mid + half, 4))
    return bid, ask


def _strikes(spot: float, sd: float) -> np.ndarray:
    lo, hi = spot * math.exp(-WING_SD_DOWN * sd), spot * math.exp(WING_SD_UP * sd)
    coarse = np.arange(math.ceil(lo / COARSE_GRID) * COARSE_GRID, hi, COARSE_GRID)
    fine_lo, fine_hi = spot * (1 - FINE_BAND), spot * (1 + FINE_BAND)
    fine = np.arange(math.ceil(fine_lo / FINE_GRID) * FINE_GRID, fine_hi, FINE_GRID)
    return np.unique(np.concatenate([coarse, fine]))


def build_chain(spot: float, levels: tuple[float, float, float], r: float, p: Params,
                rng) -> list[dict]:
    """levels: (VIX, VIX9D, VIX3M) closes of AS_OF, percent."""
    asof = datetime.combine(AS_OF, time(16, 15), tzinfo=ET)
    rows: list[dict] = []
    for root, exp in EXPIRIES:
        settle = datetime.combine(exp, time(9, 30) if root == "SPX" else time(16, 0), tzinfo=ET)
        tau = (settle - asof).total_seconds() / (365 * 86400)
        q = p.dividend_yield
        forward = spot * math.exp((r - q) * tau)
        atm = float(ssvi_vol(forward, spot, tau, r, q, *levels, params=p))
        k = _strikes(spot, atm * math.sqrt(tau))
        strikes = np.concatenate([k, k])
        is_call = np.repeat([True, False], len(k))
        vol = np.asarray(ssvi_vol(strikes, spot, tau, r, q, *levels, params=p), float)
        price, delta, gamma, vega, theta, rho = bsm(spot, strikes, tau, r, q, vol, is_call)
        bid, ask = _quotes(price)
        itm_sd = np.where(is_call, np.log(spot / strikes), np.log(strikes / spot)) / (
            atm * math.sqrt(tau))
        junk = itm_sd > DEEP_ITM_SD
        n = len(strikes)
        volume = np.where(rng.random(n) < 0.6, np.floor(rng.exponential(40, n)), 0.0)
        oi = np.floor(rng.exponential(800, n))
        for i in range(n):  # one JSON object per line: the file format, not the maths
            traded = volume[i] > 0
            last = round(float(price[i]), 2)
            cboe_iv = JUNK_IVS[i % 2] if junk[i] else round(float(vol[i]), 4)
            minute = int(rng.integers(0, 15))
            rows.append({
                "option": f"{root}{exp:%y%m%d}{'C' if is_call[i] else 'P'}"
                          f"{round(strikes[i] * 1000):08d}",
                "bid": float(bid[i]), "bid_size": float(rng.integers(1, 200)),
                "ask": float(ask[i]), "ask_size": float(rng.integers(1, 200)),
                "iv": cboe_iv, "open_interest": float(oi[i]), "volume": float(volume[i]),
                "delta": JUNK_DELTA if junk[i] else round(float(delta[i]), 4),
                "gamma": 0.0 if junk[i] else round(float(gamma[i]), 4),
                "vega": round(float(vega[i]), 4), "theta": round(float(theta[i]), 4),
                "rho": round(float(rho[i]), 4), "theo": round(float(price[i]), 4),
                "change": 0.0, "open": last if traded else 0.0,
                "high": last if traded else 0.0, "low": last if traded else 0.0,
                "tick": "no_change", "last_trade_price": last if traded else 0.0,
                "last_trade_time": f"{AS_OF.isoformat()}T15:{45 + minute:02d}:{i % 60:02d}"
                if traded else None,
                "percent_change": 0.0, "prev_day_close": last,
            })
    return rows


def main(argv: list[str], out: Path = HERE) -> dict:
    hist = _history_dir(argv[1] if len(argv) > 1 else None)
    p = Params()
    rng = np.random.default_rng(SEED)
    closes = _two_closes(hist)
    r, r_date = _rate(hist)
    (out / "quotes").mkdir(parents=True, exist_ok=True)
    (out / "options").mkdir(parents=True, exist_ok=True)
    for sym, name in QUOTE_SYMBOLS.items():
        close, prev, ohlc = closes[name]
        iv30 = closes["vix"][0] if name == "spx" else 0.0
        when = SPX_TIME if name == "spx" else VIX_TIME
        payload = {"timestamp": PUBLISHED_UTC, "symbol": sym,
                   "data": _quote_data(sym, close, prev, ohlc, when, iv30)}
        (out / "quotes" / f"{sym}.json").write_text(json.dumps(payload, indent=1) + "\n")
    spx = closes["spx"][0]
    levels = (closes["vix"][0], closes["vix9d"][0], closes["vix3m"][0])
    data = _quote_data("_SPX", spx, closes["spx"][1], closes["spx"][2], VIX_TIME,
                       closes["vix"][0])
    data["options"] = build_chain(spx, levels, r, p, rng)
    chain = {"timestamp": PUBLISHED_UTC, "symbol": "_SPX", "data": data}
    (out / "options" / "_SPX.json").write_text(json.dumps(chain, separators=(",", ":")) + "\n")
    vx = pd.read_csv(hist / "VX_settlement_curve_sample.csv") if (
        hist / "VX_settlement_curve_sample.csv").exists() else pd.read_csv(
        Path("/work/shared/data/VX_settlement_curve_sample.csv"))
    lines = ["Product,Symbol,Expiration Date,Price"]
    lines += [f"VX,{s},{e},{v}" for e, s, v in vx[["expiration_date", "symbol", "settlement"]]
              .itertuples(index=False)]
    (out / "VX_settlement.csv").write_text("\n".join(lines) + "\n")
    meta = {
        "asof": datetime.combine(AS_OF, time(16, 15), tzinfo=ET).isoformat(),
        "vx_settlement_date": VX_SETTLEMENT_DATE.isoformat(),
        "rate_continuous": round(r, 6), "rate_date": r_date.isoformat(), "seed": SEED,
        "chain_lines": len(data["options"]),
        "made_by": "bot/data/sample/make_sample.py (see docs/marketdata.md)",
    }
    (out / "sample.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


if __name__ == "__main__":
    print(json.dumps(main(sys.argv), indent=1))
