"""The offline provider: the bundled sample read through the real parsers (no network)."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from bot.marketdata.factory import make_provider
from bot.marketdata.parsers import ET
from bot.marketdata.provider import MarketDataProvider

SAMPLE_ASOF = datetime(2026, 7, 8, 16, 15, tzinfo=ET)
# closes of 2026-07-08 read by hand from shared/data (SPX is Yahoo ^GSPC, rounded to cents)
CLOSES = {"spx": 7482.71, "vix": 16.90, "vix9d": 14.41, "vix3m": 19.46, "vvix": 91.38}


@pytest.fixture(scope="module")
def snap():
    import asyncio

    return asyncio.run(make_provider("offline").snapshot(datetime(2030, 1, 1, tzinfo=ET)))


def test_factory_returns_a_provider():
    assert isinstance(make_provider("offline"), MarketDataProvider)
    with pytest.raises(ValueError, match="offline"):
        make_provider("carrier-pigeon")


def test_snapshot_is_the_sample_moment_not_the_requested_one(snap):
    assert snap.asof == SAMPLE_ASOF
    assert snap.problems() == []


def test_quotes_are_the_real_closes_with_their_own_times(snap):
    for name, close in CLOSES.items():
        q = getattr(snap, name)
        assert q.value == pytest.approx(close, abs=0.005), name
        assert q.asof.date() == date(2026, 7, 8)
        assert "_" + name.upper() in q.source
    assert snap.spx.asof.time() == time(16, 0)
    assert snap.vix.asof.time() == time(16, 14, 59)


def test_no_flags_at_the_sample_moment(snap):
    assert snap.flags == ()


def test_chain_holds_only_clean_lines_within_60_dte(snap):
    assert len(snap.chain) > 500
    spot = CLOSES["spx"]
    for (root, expiry, strike, cp), q in snap.chain.items():
        assert root in ("SPX", "SPXW")
        assert 0 <= (expiry - date(2026, 7, 8)).days <= 60
        assert 0.01 < q.iv < 3
        assert q.bid > 0 and q.ask > q.bid
        otm = (strike >= spot) if cp == "C" else (strike <= spot)
        twin = snap.chain.get((root, expiry, strike, "P" if cp == "C" else "C"))
        if not otm and twin is not None:  # ITM: the OTM twin's IV (put–call parity)
            assert q.iv == twin.iv
    expiries = {(k[0], k[1]) for k in snap.chain}
    assert ("SPX", date(2026, 9, 18)) not in expiries  # 72 DTE: sliced away
    assert ("SPX", date(2026, 7, 17)) in expiries and ("SPXW", date(2026, 7, 17)) in expiries


def test_chain_has_the_method_skew(snap):
    # 44-DTE SPXW: a put 5 % below spot carries more IV than the call 5 % above (METHOD §1 SSVI)
    exp = date(2026, 8, 21)
    puts = {k[2]: q.iv for k, q in snap.chain.items() if k[:2] == ("SPXW", exp) and k[3] == "P"}
    calls = {k[2]: q.iv for k, q in snap.chain.items() if k[:2] == ("SPXW", exp) and k[3] == "C"}
    assert puts[7100.0] > calls[7850.0] + 0.03


def test_vix_futures_are_the_monthlies_only(snap):
    symbols = [f.symbol for f in snap.vix_futures]
    assert symbols == ["VX/Q6", "VX/U6", "VX/V6", "VX/X6", "VX/Z6", "VX/F7", "VX/G7", "VX/H7"]
    assert snap.vix_futures[0].price == pytest.approx(19.5133)
    assert snap.vix_futures[0].expiry == date(2026, 8, 19)


def test_sample_ivs_follow_the_method_smile(snap):
    """METHOD §1 SSVI by hand: σ_VIX in total variance between (30 d, VIX) and (93 d, VIX3M)
    (rising, so θ = (0.82·σ_VIX)²·τ), k = ln(K/F) with r the sample's DFF rate and q 1.3 %,
    φ = 0.60/√θ, w = θ/2·[1 − 0.55φk + √((φk − 0.55)² + 1 − 0.55²)], σ = √(w/τ)."""
    import math

    # 2026-07-08 16:15 ET → 2026-08-21 16:00 ET (SPXW), ACT/365
    tau = (44 * 86400 - 15 * 60) / (365 * 86400)
    days = tau * 365
    w30, w93 = 0.1690**2 * 30, 0.1946**2 * 93
    theta = 0.82**2 * (w30 + (w93 - w30) * (days - 30) / (93 - 30)) / 365
    r, q = 0.036701, 0.013
    phi, rho = 0.60 / math.sqrt(theta), -0.55
    for strike, cp in ((7100.0, "P"), (7480.0, "P"), (7850.0, "C")):
        k = math.log(strike / CLOSES["spx"]) - (r - q) * tau
        w = theta / 2 * (1 + rho * phi * k + math.sqrt((phi * k + rho) ** 2 + 1 - rho**2))
        got = snap.chain[("SPXW", date(2026, 8, 21), strike, cp)].iv
        assert got == pytest.approx(math.sqrt(w / tau), abs=1e-4), strike


def test_committed_sample_is_what_the_generator_makes(tmp_path):
    import importlib.util

    from bot.marketdata.offline import SAMPLE_DIR

    spec = importlib.util.spec_from_file_location("make_sample", SAMPLE_DIR / "make_sample.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["make_sample.py"], out=tmp_path)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [str(p) for p in made] == ["VX_settlement.csv", "options/_SPX.json",
                                      "quotes/_SPX.json", "quotes/_VIX.json",
                                      "quotes/_VIX3M.json", "quotes/_VIX9D.json",
                                      "quotes/_VVIX.json", "sample.json"]
    for rel in made:
        assert (tmp_path / rel).read_bytes() == (SAMPLE_DIR / rel).read_bytes(), rel
