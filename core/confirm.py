"""Confirmation votes V1–V7 (METHOD.md §4), vectorised over positions.

The market-level inputs (MACD of VIX and SPX, RSI, HV10, term structure, breadth) are computed once
per snapshot in `MarketSignals`; only the threat side and the event window differ per position.
A vote is `None` when it abstained for lack of data: the score sums the votes that had data and
`max_available` is the most those votes could have given, so missing data can only make
confirmation harder, never easier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.params import DEFAULT_PARAMS, Params
from core.records import ConfirmationLevel

VOTE_NAMES = ("V1", "V2", "V3", "V4", "V5", "V6", "V7")
VOTE_MAX = {"V1": 1, "V2": 1, "V3": 1, "V4": 2, "V5": 1, "V6": 1, "V7": 1}


@dataclass(frozen=True)
class Momentum:
    """Last two values of a MACD line, its signal and histogram (enough for every vote)."""

    macd: float
    signal: float
    hist: float
    hist_prev: float

    @property
    def hist_rising(self) -> bool:
        return self.hist > self.hist_prev

    @property
    def hist_falling(self) -> bool:
        return self.hist < self.hist_prev


@dataclass(frozen=True)
class MarketSignals:
    """Everything market-level the votes need; None where the data is missing.

    `vix_momentum`/`spx_momentum` need ≥ `min_closes_for_confirmation` closes; `rsi` likewise.
    `hv10` and `sigma_impl` are in vol points (VIX units). `front_future` is the nearest quoted
    VIX future. Breadth: `ad_falling_while_spx_rises`, `ad_below_mean_spx_above`, `ad_high_with_spx`
    (None without breadth data).
    """

    vix_momentum: Momentum | None
    spx_momentum: Momentum | None
    rsi: float | None
    hv10: float | None
    sigma_impl: float
    vix: float
    vix9d: float | None
    vix3m: float | None
    front_future: float | None
    breadth_bearish: bool | None
    breadth_bullish: bool | None


def vote_v1(sig: MarketSignals) -> int | None:
    """VIX momentum: +1 MACD above signal with histogram rising; −1 below and falling."""
    m = sig.vix_momentum
    if m is None:
        return None
    if m.macd > m.signal and m.hist_rising:
        return 1
    if m.macd < m.signal and m.hist_falling:
        return -1
    return 0


def vote_v2(sig: MarketSignals, put_side: np.ndarray) -> np.ndarray | None:
    """SPX momentum toward the threat side (per position). Put: MACD < signal → +1; MACD > signal
    with the histogram rising (moving away from the put side) → −1. Call: the mirror."""
    m = sig.spx_momentum
    if m is None:
        return None
    toward_put = 1 if m.macd < m.signal else (-1 if (m.macd > m.signal and m.hist_rising) else 0)
    toward_call = 1 if m.macd > m.signal else (-1 if (m.macd < m.signal and m.hist_falling) else 0)
    return np.where(put_side, toward_put, toward_call)


def vote_v3(
    sig: MarketSignals, put_side: np.ndarray, params: Params = DEFAULT_PARAMS
) -> tuple[np.ndarray | None, np.ndarray]:
    """SPX RSI zones (per position) → (votes or None, stretched flags).

    Put: 30 ≤ RSI < 45 → +1, RSI > 55 → −1, RSI < 30 → 0 and STRETCHED. Call: 60 < RSI ≤ 70 → +1,
    RSI < 45 → −1, RSI > 70 → 0 and STRETCHED. STRETCHED is flagged on the threat side only: an
    oversold market threatens the put side, not the call side (which gets −1 there).
    """
    n = put_side.shape[0]
    if sig.rsi is None:
        return None, np.zeros(n, dtype=bool)
    x = sig.rsi
    p = params
    put_vote = 1 if p.rsi_put_lo <= x < p.rsi_put_hi else (-1 if x > p.rsi_put_contra else 0)
    call_vote = 1 if p.rsi_call_lo < x <= p.rsi_call_hi else (-1 if x < p.rsi_call_contra else 0)
    put_stretched = x < p.rsi_put_lo
    call_stretched = x > p.rsi_call_hi
    votes = np.where(put_side, put_vote, call_vote)
    stretched = np.where(put_side, put_stretched, call_stretched)
    return votes, stretched


def vote_v4(sig: MarketSignals, params: Params = DEFAULT_PARAMS) -> tuple[int | None, int]:
    """Term structure → (vote or None, the most it could give with the data present).

    As §4's table: VIX/VIX3M decides the spot-curve reading (≥ 0.917 → +1, ≥ 1.0 → +2,
    < 0.85 steep contango → −1, else 0); only without VIX3M does VIX9D/VIX ≥ 1 give +1. A
    front future below VIX adds +1. Capped at +2.
    """
    p = params
    have_3m = sig.vix3m is not None
    have_9d = sig.vix9d is not None
    have_f = sig.front_future is not None
    if not (have_3m or have_9d or have_f):
        return None, 0
    vote, cap = 0, 0
    if have_3m:
        ratio = sig.vix / sig.vix3m
        cap = 2
        if ratio >= p.ts_inverted:
            vote = 2
        elif ratio >= p.ts_watch:
            vote = 1
        elif ratio < p.ts_steep_contango:
            vote = -1
    elif have_9d:
        cap = 1
        vote = 1 if sig.vix9d / sig.vix >= p.ts_inverted else 0
    if have_f:
        cap += 1
        if sig.front_future < sig.vix:
            vote += 1
    max_vote = VOTE_MAX["V4"]
    return min(vote, max_vote), min(cap, max_vote)


def vote_v5(sig: MarketSignals) -> int | None:
    """Realised vs implied: HV10 ≥ σ_impl → +1, else 0."""
    if sig.hv10 is None:
        return None
    return 1 if sig.hv10 >= sig.sigma_impl else 0


def vote_v7(sig: MarketSignals) -> int | None:
    """Breadth: divergence (A/D weaker than SPX) → +1; A/D at a high with SPX → −1."""
    if sig.breadth_bearish is None and sig.breadth_bullish is None:
        return None
    if sig.breadth_bearish:
        return 1
    if sig.breadth_bullish:
        return -1
    return 0


def level_of(score: np.ndarray | int) -> np.ndarray:
    """CONTRA (C ≤ −1), NONE (0–1), CONFIRMED (2–3), STRONG (≥ 4), as level-name strings."""
    s = np.asarray(score)
    return np.select(
        [s <= -1, s <= 1, s <= 3],
        [ConfirmationLevel.CONTRA.value, ConfirmationLevel.NONE.value,
         ConfirmationLevel.CONFIRMED.value],
        ConfirmationLevel.STRONG.value,
    )


@dataclass(frozen=True)
class Confirmations:
    """Votes per position: `votes[name]` is an int array (n,) or None when that vote abstained.
    V6 abstains per position where `v6_known` is False (no event list given)."""

    put_side: np.ndarray
    votes: dict[str, np.ndarray | None]
    score: np.ndarray
    max_available: np.ndarray
    level: np.ndarray
    stretched: np.ndarray

    def votes_of(self, i: int) -> dict[str, int | None]:
        return {k: (None if v is None else int(v[i])) for k, v in self.votes.items()}


def threat_side_put(
    delta_put: np.ndarray, delta_call: np.ndarray, d_put: np.ndarray, d_call: np.ndarray
) -> np.ndarray:
    """True where the put side is threatened: |Δ_K2| > |Δ_K3|, or equal and the put cushion is the
    smaller (ties on both go to the put side: the side VIX calls protect)."""
    ap, ac = np.abs(delta_put), np.abs(delta_call)
    return (ap > ac) | ((ap == ac) & (d_put <= d_call))


def confirm(
    sig: MarketSignals,
    put_side: np.ndarray,
    event_in_window: np.ndarray | None,
    params: Params = DEFAULT_PARAMS,
) -> Confirmations:
    """All seven votes for n positions. `event_in_window` (n,) bool: a high-impact event within
    the vote window and before the position's expiry; None when no event list is known."""
    put_side = np.asarray(put_side, dtype=bool)
    n = put_side.shape[0]
    v3, stretched = vote_v3(sig, put_side, params)
    v4, v4_cap = vote_v4(sig, params)

    def broadcast(v: int | None) -> np.ndarray | None:
        return None if v is None else np.full(n, v, dtype=np.int64)

    votes: dict[str, np.ndarray | None] = {
        "V1": broadcast(vote_v1(sig)),
        "V2": vote_v2(sig, put_side),
        "V3": v3,
        "V4": broadcast(v4),
        "V5": broadcast(vote_v5(sig)),
        "V6": None if event_in_window is None else np.asarray(event_in_window, dtype=np.int64),
        "V7": broadcast(vote_v7(sig)),
    }
    score = np.zeros(n, dtype=np.int64)
    max_available = np.zeros(n, dtype=np.int64)
    for name, v in votes.items():
        if v is None:
            continue
        score += v.astype(np.int64)
        max_available += v4_cap if name == "V4" else VOTE_MAX[name]
    return Confirmations(
        put_side=put_side,
        votes=votes,
        score=score,
        max_available=max_available,
        level=level_of(score),
        stretched=np.asarray(stretched, dtype=bool),
    )


# --- market signals from the close history --------------------------------------------------


def _last_finite(x: np.ndarray) -> float | None:
    x = np.asarray(x, dtype=float)
    if x.size == 0 or not np.isfinite(x[-1]):
        return None
    return float(x[-1])


def momentum(closes: np.ndarray, params: Params = DEFAULT_PARAMS) -> Momentum | None:
    """MACD(12, 26, 9) of the closes at the last close; None under the minimum close count."""
    from core.indicators import macd

    closes = np.asarray(closes, dtype=float)
    closes = closes[np.isfinite(closes)]
    if closes.size < max(params.min_closes_for_confirmation, params.macd_slow + params.macd_signal):
        return None
    line, signal, hist = (
        np.asarray(a, dtype=float)
        for a in macd(closes, params.macd_fast, params.macd_slow, params.macd_signal)
    )
    if not (np.isfinite(hist[-1]) and np.isfinite(hist[-2])):
        return None
    return Momentum(float(line[-1]), float(signal[-1]), float(hist[-1]), float(hist[-2]))


def breadth_flags(
    spx: np.ndarray,
    ad_line: np.ndarray | None = None,
    rsp: np.ndarray | None = None,
    spy: np.ndarray | None = None,
    params: Params = DEFAULT_PARAMS,
) -> tuple[bool | None, bool | None]:
    """(bearish divergence, bullish confirmation) for V7; (None, None) without breadth data.

    With an A/D line: bearish when it fell over 10 sessions while SPX rose, or sits below its
    20-day mean while SPX is above its own; bullish when both stand at a 20-day high. With only
    RSP and SPY: their ratio is the A/D proxy; bearish when its 20-day slope is negative.
    """
    w, m = params.breadth_window, params.breadth_mean_window
    spx = np.asarray(spx, dtype=float)

    def usable(x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        x = np.asarray(x, dtype=float)
        tail = x[-(m + 1):]
        if tail.size < m + 1 or not np.isfinite(tail).all():
            return None
        return x

    ad = usable(ad_line)
    if spx.size < m + 1 or not np.isfinite(spx[-(m + 1):]).all():
        return None, None
    spx_rising = spx[-1] > spx[-1 - w]
    spx_above_mean = spx[-1] > spx[-m:].mean()
    spx_high = spx[-1] >= spx[-m:].max()
    if ad is not None:
        falling_divergence = ad[-1] < ad[-1 - w] and spx_rising
        below_mean_divergence = ad[-1] < ad[-m:].mean() and spx_above_mean
        bearish = falling_divergence or below_mean_divergence
        bullish = ad[-1] >= ad[-m:].max() and spx_high
        return bool(bearish), bool(bullish)
    r, s = usable(rsp), usable(spy)
    if r is None or s is None:
        return None, None
    ratio = r / s
    slope = np.polyfit(np.arange(m, dtype=float), ratio[-m:], 1)[0]
    bearish = slope < 0
    bullish = ratio[-1] >= ratio[-m:].max() and spx_high
    return bool(bearish), bool(bullish)
