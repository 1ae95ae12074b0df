"""The daily replay at the official close: one `evaluate` per day over the open condors of the
engine-driven variants, acting on its verdicts; a static hold-to-expiry variant beside them.

Accounting is in dollars. Every cash flow goes to the variant's cash account and, separately, to
the ledger of the trade it belongs to (a trade = a condor from entry through its rolls to the
final close, with its hedges). Equity = cash + model value of what is open.

Kept whole: `Replay` is one day loop (enter, evaluate, act on the verdicts, mark to model)
whose steps share the variants' books and cash ledgers; split, the accounting would be read in
pieces that cannot be checked alone.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from bot.backtest.config import (
    CNDR_WING_DELTA,
    BacktestConfig,
    Program,
    StrikeMode,
    Variant,
    no_hedge_params,
)
from bot.backtest.market import MarketDays, events_for
from bot.backtest.pricing import (
    ceil_to,
    condor_marks,
    delta_strikes,
    floor_to,
    hedge_marks,
    intrinsic_marks,
    leg_quotes,
    leg_spreads,
    years_to,
)
from core import calendar as cal
from core.edr import edr_pct, edr_points, horizon_edr, implied_sigma
from core.evaluate import evaluate
from core.market_series import HistorySeries
from core.models import Event, HedgeKind, HedgeLayer, Position
from core.records import PositionRecord, RollOutcome

ENGINE_VARIANTS = (Variant.ALVH, Variant.NO_HEDGE)
CLOSE_OUTCOMES = (RollOutcome.TAKE_PROFIT, RollOutcome.EXIT_LOSS_LIMIT, RollOutcome.NO_VIABLE_ROLL,
                  RollOutcome.SETTLE_OR_CLOSE)
MIN_CREDIT = 0.05  # points: a condor that nets less after costs is not opened
LEGS = 4
PROGRESS_EVERY_S = 2.0


@dataclass
class Trade:
    """One condor from entry to its final close; dollar components add up to `pnl`."""

    variant: str
    trade_id: int
    entry_date: date
    entry_strikes: tuple[float, float, float, float]
    entry_expiry: date
    qty: int
    entry_credit: float  # points received per condor, after slippage
    exit_date: date | None = None
    exit_reason: str = ""
    final_strikes: tuple[float, float, float, float] | None = None
    final_expiry: date | None = None
    rolls: int = 0
    condor_usd: float = 0.0  # credits − debits of the condor legs (after slippage)
    hedge_paid_usd: float = 0.0  # premium paid for VIX hedges (after slippage)
    hedge_received_usd: float = 0.0  # proceeds of hedge sales and settlements
    commissions_usd: float = 0.0
    slippage_usd: float = 0.0  # already inside the two figures above; reported for insight
    hedges_bought: int = 0

    @property
    def hedge_usd(self) -> float:
        return self.hedge_received_usd - self.hedge_paid_usd

    @property
    def pnl(self) -> float:
        return self.condor_usd + self.hedge_usd - self.commissions_usd

    def row(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("entry_strikes", "final_strikes"):  # one CSV cell: K1/K2/K3/K4
            d[k] = "" if d[k] is None else "/".join(f"{x:g}" for x in d[k])
        d["hedge_usd"] = self.hedge_usd
        d["pnl"] = self.pnl
        return d


@dataclass
class Open:
    trade: Trade
    pos: Position
    halved: set = field(default_factory=set)  # (layer id, reason) already sold half for


@dataclass
class Book:
    variant: Variant
    cash: float = 0.0
    open: Open | None = None
    trades: list[Trade] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)


@dataclass
class BacktestResult:
    config: BacktestConfig
    dates: list[date]
    books: dict[Variant, Book]
    interrupted_at: date | None = None
    skipped_entries: int = 0
    seconds: float = 0.0

    def equity(self, v: Variant) -> np.ndarray:
        return np.asarray(self.books[v].equity, float)

    @property
    def risk_capital(self) -> float:
        """The denominator of every return: the configured width × 100 × qty, or the widest
        wing any trade of any variant used (delta wings), so variants share one figure."""
        widest = max((max(k[1] - k[0], k[3] - k[2]) * t.qty
                      for b in self.books.values() for t in b.trades
                      for k in (t.entry_strikes, t.final_strikes or t.entry_strikes)),
                     default=0.0)
        cfg = self.config
        return max(cfg.risk_capital, widest * cfg.params.spx_multiplier)


class Replay:
    """`Replay(config, market, events).run()`; `progress(i, n, day, seconds)` is called now
    and then. Ctrl-C stops the loop; what ran is returned (open trades valued at the last
    close), marked `interrupted_at`."""

    def __init__(self, config: BacktestConfig, market: MarketDays, events: list[Event],
                 progress: Callable[[int, int, date, float], None] | None = None,
                 progress_every_s: float = PROGRESS_EVERY_S):
        problems = config.problems()
        if problems:
            raise ValueError("backtest settings: " + "; ".join(problems))
        self.cfg = config
        self.p = config.params
        self.p_nohedge = no_hedge_params(config.params)
        self.m = market
        self.events = events
        self.progress = progress
        self.progress_every_s = progress_every_s
        self.books = {v: Book(v) for v in config.variants}
        self.next_id = 1
        self.next_layer_id = 1
        self.skipped = 0
        self._hm_day = -1
        self._hm: dict[tuple, float] = {}
        lo = np.searchsorted(np.array(market.dates, dtype="datetime64[D]"),
                             np.datetime64(config.start, "D"))
        hi = np.searchsorted(np.array(market.dates, dtype="datetime64[D]"),
                             np.datetime64(config.end, "D"), side="right")
        self.lo, self.hi = int(lo), int(hi)
        # the market pass's history part for every day at once (None on warm-up days)
        self.series = HistorySeries(market.frame, config.history_window, self.p,
                                    rows=np.arange(self.lo, self.hi))

    # --- the loop -----------------------------------------------------------------------------

    def run(self) -> BacktestResult:
        """Ctrl-C (SIGINT) is taken between days, so a day is never half booked."""
        t0 = time.perf_counter()
        last = t0
        dates: list[date] = []
        interrupted = None
        self._stop = False
        restore = None
        if threading.current_thread() is threading.main_thread():
            restore = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            for i in range(self.lo, self.hi):
                if self._stop:
                    interrupted = self.m.dates[i - 1] if dates else self.m.dates[i]
                    break
                self.step(i)
                dates.append(self.m.dates[i])
                now = time.perf_counter()
                if self.progress and now - last >= self.progress_every_s:
                    self.progress(i - self.lo + 1, self.hi - self.lo, self.m.dates[i], now - t0)
                    last = now
        except KeyboardInterrupt:  # raised by a progress callback, after a complete day
            interrupted = dates[-1] if dates else self.m.dates[self.lo]
        finally:
            if restore is not None:
                signal.signal(signal.SIGINT, restore)
        if dates:
            self.finish(self.lo + len(dates) - 1)
        return BacktestResult(self.cfg, dates, self.books, interrupted, self.skipped,
                              time.perf_counter() - t0)

    def _on_sigint(self, signum, frame) -> None:
        if self._stop:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self._stop = True
        print("\nStopping after this session (Ctrl-C again to abort)...", file=sys.stderr)

    def step(self, i: int) -> None:
        m, today = self.m, self.m.dates[i]
        asof = m.asof(i)
        S, V = float(m.spx[i]), float(m.vix[i])
        ev_list = events_for(today, self.events)
        engine = [b for v, b in self.books.items() if v in ENGINE_VARIANTS and b.open]
        if engine:
            recs = self.evaluate_open(i, engine, ev_list)
            for b, rec in zip(engine, recs, strict=True):
                self.act(b, rec, i)
        for b in self.books.values():
            if b.open:
                self.expire_hedges(b, i)
                if b.open.pos.expiry <= today:  # held to expiry (static, or no verdict to act)
                    self.settle(b, i, "EXPIRED")
        for b in self.books.values():
            if b.open is None:
                self.enter(b, i, ev_list)
        # mark to model, all open condors of all variants in one call
        open_books = [b for b in self.books.values() if b.open]
        value = {b.variant: 0.0 for b in self.books.values()}
        if open_books:
            strikes = np.array([self._strikes(b.open.pos) for b in open_books])
            years = years_to(asof, [b.open.pos.expiry for b in open_books], False)
            marks = condor_marks(S, strikes, years, V, m.opt("vix9d", i), m.opt("vix3m", i),
                                 self.rate(i), self.p.dividend_yield, self.p)
            for b, mk in zip(open_books, marks, strict=True):
                value[b.variant] = -mk * self.p.spx_multiplier * b.open.pos.qty
                layers = list(b.open.pos.hedges)
                if layers:
                    hm = self.hedge_marks(layers, i)
                    value[b.variant] += float(
                        (hm * np.array([h.qty for h in layers])).sum()
                        * self.p.vix_option_multiplier)
        for b in self.books.values():
            b.equity.append(b.cash + value[b.variant])

    def evaluate_open(self, i: int, books: list[Book], ev_list) -> list[PositionRecord]:
        """One `evaluate` for every engine variant's condor. The no-hedge variant is evaluated
        with h* = 0; its verdict differs from the shared pass only where that pass said
        HEDGE_FIRST (h* feeds nothing else a position without hedges sees), so only then is it
        evaluated again."""
        m = self.m
        asof = m.asof(i)
        snap = m.snapshot(i)
        ps = [b.open.pos for b in books]
        # each variant's condor is its own engine run, not one trader's book: §6 per position;
        # the same history pass serves the no-hedge redo (the history part reads no h* cell)
        hp = self.series.at(i, asof)
        # the engine reads the history only to compute a history pass: cut the window only
        # for the days the series does not cover
        hist = m.history_window(i, self.cfg.history_window) if hp is None else None
        ev = evaluate(ps, snap, hist, ev_list, self.p, asof, per_position_hedges=True,
                      history_pass=hp)
        recs = list(ev.positions)
        redo = [j for j, b in enumerate(books) if b.variant is Variant.NO_HEDGE
                and recs[j].roll.outcome is RollOutcome.HEDGE_FIRST]
        if redo:
            ev2 = evaluate([ps[j] for j in redo], snap, hist, ev_list, self.p_nohedge, asof,
                           per_position_hedges=True, history_pass=hp)
            for j, rec in zip(redo, ev2.positions, strict=True):
                recs[j] = rec
        return recs

    # --- actions ------------------------------------------------------------------------------

    def act(self, b: Book, rec: PositionRecord, i: int) -> None:
        o = b.open
        assert o is not None
        outcome = rec.roll.outcome
        today = self.m.dates[i]
        if outcome in CLOSE_OUTCOMES:
            if outcome is RollOutcome.SETTLE_OR_CLOSE and o.pos.expiry <= today:
                self.settle(b, i, outcome.value)
            else:
                self.close(b, i, outcome.value, rec.pnl.mark if rec.pnl else None)
            return
        if b.variant is Variant.ALVH:
            self.hedge_exits(b, i)
        if outcome is RollOutcome.CLEARED and rec.roll.proposal is not None:
            self.roll(b, i, rec)
            return
        se = rec.second_engine
        if (b.variant is Variant.ALVH and se is not None and se.recommendation is not None
                and se.recommendation.qty > 0):
            self.buy_hedge(b, i, se.recommendation)

    def _strikes(self, pos: Position) -> tuple[float, float, float, float]:
        return (pos.k1, pos.k2, pos.k3, pos.k4)

    def rate(self, i: int) -> float:
        """The engine's rule: the day's fed-funds reading, else the last one, else the default."""
        r = self.m.rate[max(0, i - self.cfg.history_window + 1): i + 1]
        r = r[np.isfinite(r)]
        return float(r[-1]) if r.size else self.p.rate_default

    def legs(self, i: int, strikes, expiry: date) -> tuple[np.ndarray, float]:
        """Model leg prices (4,) and the assumed bid-ask summed over the four legs."""
        m = self.m
        px, _ = leg_quotes(float(m.spx[i]), np.atleast_2d(np.asarray(strikes, float)),
                           years_to(m.asof(i), [expiry], False), float(m.vix[i]),
                           m.opt("vix9d", i), m.opt("vix3m", i), self.rate(i),
                           self.p.dividend_yield, self.p)
        spreads = leg_spreads(px[0], self.cfg.spx_spread_min, self.cfg.spx_spread_frac)
        return px[0], float(spreads.sum())

    def _commission(self, t: Trade, contracts: float, per: float) -> None:
        t.commissions_usd += contracts * per
        self.books_of[t.variant].cash -= contracts * per

    @property
    def books_of(self) -> dict[str, Book]:
        return {v.value: b for v, b in self.books.items()}

    def _condor_flow(self, b: Book, usd: float, slip_usd: float) -> None:
        b.cash += usd
        b.open.trade.condor_usd += usd
        b.open.trade.slippage_usd += slip_usd

    def close(self, b: Book, i: int, reason: str, mark: float | None) -> None:
        o = b.open
        pos = o.pos
        px, spread = self.legs(i, self._strikes(pos), pos.expiry)
        mid = float(mark) if mark is not None else float(-(px * np.array([1, -1, -1, 1])).sum())
        slip = self.cfg.slippage_frac * spread
        mult = self.p.spx_multiplier * pos.qty
        self._condor_flow(b, -(mid + slip) * mult, slip * mult)
        self._commission(o.trade, LEGS * pos.qty, self.cfg.commission_spx)
        self.sell_hedges(b, i, list(pos.hedges))
        self._finish_trade(b, i, reason)

    def settle(self, b: Book, i: int, reason: str) -> None:
        """Cash settlement at intrinsic on the (PM) expiry's close: no commission, no spread."""
        pos = b.open.pos
        value = float(intrinsic_marks(float(self.m.spx[i]), np.array([self._strikes(pos)]))[0])
        self._condor_flow(b, -value * self.p.spx_multiplier * pos.qty, 0.0)
        self.sell_hedges(b, i, list(pos.hedges))
        self._finish_trade(b, i, reason)

    def _finish_trade(self, b: Book, i: int, reason: str) -> None:
        t, pos = b.open.trade, b.open.pos
        t.exit_date, t.exit_reason = self.m.dates[i], reason
        t.final_strikes, t.final_expiry = self._strikes(pos), pos.expiry
        b.trades.append(t)
        b.open = None

    def roll(self, b: Book, i: int, rec: PositionRecord) -> None:
        o = b.open
        pos, prop = o.pos, rec.roll.proposal
        _, spread_old = self.legs(i, self._strikes(pos), pos.expiry)
        _, spread_new = self.legs(i, prop.strikes, prop.expiry)
        slip = self.cfg.slippage_frac * (spread_old + spread_new)
        r_exec = float(prop.r) - slip
        new = dataclasses.replace(
            pos, expiry=prop.expiry, k1=float(prop.strikes[0]), k2=float(prop.strikes[1]),
            k3=float(prop.strikes[2]), k4=float(prop.strikes[3]), opened=self.m.dates[i],
            roll_credits=pos.roll_credits + r_exec)
        if new.problems(self.m.dates[i]):  # costs pushed the net credit out of bounds
            self.close(b, i, "ROLL_UNFILLABLE", rec.pnl.mark if rec.pnl else None)
            return
        mult = self.p.spx_multiplier * pos.qty
        self._condor_flow(b, r_exec * mult, slip * mult)
        self._commission(o.trade, 2 * LEGS * pos.qty, self.cfg.commission_spx)
        o.pos = new
        o.trade.rolls += 1

    # --- hedges -------------------------------------------------------------------------------

    def hedge_marks(self, layers: list[HedgeLayer], i: int) -> np.ndarray:
        """Model marks of layers on day i. A layer's mark depends on its kind, expiry and
        strikes only (every step of `value_held` is per layer; not its qty, nor the other
        layers), so marks are kept per day and those terms: exits, purchases, sales and the
        MTM ask for the same layers again."""
        if self._hm_day != i:
            self._hm_day, self._hm = i, {}
        keys = [(h.kind, h.expiry, h.strike, h.strike2) for h in layers]
        todo = {k: h for k, h in zip(keys, layers, strict=True) if k not in self._hm}
        if todo:
            m = self.m
            marks = hedge_marks(list(todo.values()), m.asof(i), float(m.vix[i]),
                                m.opt("vix3m", i), m.opt("vvix", i), self.rate(i), self.p)
            self._hm.update(zip(todo, marks.tolist(), strict=True))
        return np.array([self._hm[k] for k in keys], dtype=float)

    def _vix_spread(self, mark: float, legs: int) -> float:
        return legs * max(self.cfg.vix_spread_min, self.cfg.vix_spread_frac * abs(mark))

    def buy_hedge(self, b: Book, i: int, rec) -> None:
        spread = rec.type == HedgeKind.VIX_CALL_SPREAD.value
        legs = 2 if spread else 1
        slip = self.cfg.slippage_frac * self._vix_spread(rec.unit_cost, legs)
        cost = float(rec.unit_cost) + slip
        layer = HedgeLayer(
            kind=HedgeKind(rec.type), expiry=rec.expiry, qty=int(rec.qty), cost=cost,
            strike=float(rec.strikes[0]),
            strike2=float(rec.strikes[1]) if spread else None, id=self.next_layer_id)
        self.next_layer_id += 1
        usd = cost * rec.qty * self.p.vix_option_multiplier
        t = b.open.trade
        b.cash -= usd
        t.hedge_paid_usd += usd
        t.slippage_usd += slip * rec.qty * self.p.vix_option_multiplier
        t.hedges_bought += int(rec.qty)
        self._commission(t, legs * rec.qty, self.cfg.commission_vix)
        b.open.pos = dataclasses.replace(b.open.pos, hedges=(*b.open.pos.hedges, layer))

    def _sell(self, b: Book, layer: HedgeLayer, qty: int, mark: float, settle: bool) -> None:
        legs = 2 if layer.kind is HedgeKind.VIX_CALL_SPREAD else 1
        slip = 0.0 if settle else self.cfg.slippage_frac * self._vix_spread(mark, legs)
        usd = max(mark - slip, 0.0) * qty * self.p.vix_option_multiplier
        t = b.open.trade
        b.cash += usd
        t.hedge_received_usd += usd
        t.slippage_usd += min(slip, mark) * qty * self.p.vix_option_multiplier
        if not settle:
            self._commission(t, legs * qty, self.cfg.commission_vix)

    def sell_hedges(self, b: Book, i: int, layers: list[HedgeLayer]) -> None:
        if not layers:
            return
        marks = self.hedge_marks(layers, i)
        for layer, mk in zip(layers, marks, strict=True):
            self._sell(b, layer, layer.qty, float(mk), settle=False)
        b.open.pos = dataclasses.replace(b.open.pos, hedges=())

    def _intrinsic_vix(self, layer: HedgeLayer, vix: float) -> float:
        v = max(vix - layer.strike, 0.0)
        if layer.kind is HedgeKind.VIX_CALL_SPREAD:
            v -= max(vix - layer.strike2, 0.0)
        return v

    def expire_hedges(self, b: Book, i: int) -> None:
        """Layers on their VIX expiry day settle at intrinsic (the VIX close stands in for the
        opening settlement quote the history lacks)."""
        today = self.m.dates[i]
        keep = []
        for layer in b.open.pos.hedges:
            if layer.expiry <= today:
                self._sell(b, layer, layer.qty, self._intrinsic_vix(layer, float(self.m.vix[i])),
                           settle=True)
            else:
                keep.append(layer)
        if len(keep) != len(b.open.pos.hedges):
            b.open.pos = dataclasses.replace(b.open.pos, hedges=tuple(keep))

    def hedge_exits(self, b: Book, i: int) -> None:
        """§6 exit signals on held L2 layers: V ≥ 50 sell all; V ≥ 30 sell half; mark ≥ 3 ×
        cost sell half (each half-sale once per layer and reason); ≤ 2 sessions to the VIX
        expiry close (the engine recommends a fresh layer when h* > 0: the roll)."""
        layers = list(b.open.pos.hedges)
        if not layers:
            return
        p, vix = self.p, float(self.m.vix[i])
        marks = self.hedge_marks(layers, i)
        sess = cal.sessions_to_expiry_many(self.m.asof(i), [h.expiry for h in layers], True)
        keep = []
        for layer, mk, n in zip(layers, marks, sess, strict=True):
            sell = 0
            if vix >= p.exit_vix_all or math.floor(n) <= p.exit_sessions_before_expiry:
                sell = layer.qty
            else:
                for reason, hit in (("vix", vix >= p.exit_vix_half),
                                    ("mark", layer.cost > 0 and mk >= p.exit_mark_multiple
                                     * layer.cost)):
                    if hit and (layer.id, reason) not in b.open.halved and layer.qty - sell > 1:
                        b.open.halved.add((layer.id, reason))
                        sell += (layer.qty - sell) // 2
            if sell:
                self._sell(b, layer, sell, float(mk), settle=False)
            if layer.qty - sell > 0:
                keep.append(dataclasses.replace(layer, qty=layer.qty - sell) if sell else layer)
        b.open.pos = dataclasses.replace(b.open.pos, hedges=tuple(keep))

    # --- entries ------------------------------------------------------------------------------

    def entry_expiry(self, today: date) -> date | None:
        """The expiry nearest the program's target DTE, within the tolerance; None: not an
        entry day. Monthly: third-Friday expiries. Short: any session (daily expiries)."""
        c = self.cfg
        if c.program is Program.CNDR:
            return cndr_entry_expiry(today)
        lo = today + timedelta(days=max(1, c.entry_dte - c.entry_dte_tolerance))
        hi = today + timedelta(days=c.entry_dte + c.entry_dte_tolerance)
        if hi > cal.CALENDAR_END:
            return None
        if c.program is Program.MONTHLY:
            cands = [d for d in cal.spx_expiries(lo, hi, "SPX")]
        else:
            cands = cal.sessions_in_range(lo, hi)
        if not cands:
            return None
        return min(cands, key=lambda d: (abs((d - today).days - c.entry_dte), d))

    def entry_strikes(self, i: int, expiry: date, ev_list) -> np.ndarray:
        m, c, p = self.m, self.cfg, self.p
        S, V = float(m.spx[i]), float(m.vix[i])
        asof = m.asof(i)
        v9, v3 = m.opt("vix9d", i), m.opt("vix3m", i)
        if c.program is Program.CNDR:  # shorts at the largest |Δ| not above the target
            years = float(years_to(asof, [expiry], False)[0])
            wing = CNDR_WING_DELTA if c.wing_delta is None else c.wing_delta
            return delta_strikes(S, years, V, v9, v3, self.rate(i), p.dividend_yield, p,
                                 c.short_delta, wing, c.width, shorts_at_most=True)
        if c.strikes is StrikeMode.DELTA:
            years = float(years_to(asof, [expiry], False)[0])
            return delta_strikes(S, years, V, v9, v3, self.rate(i), p.dividend_yield, p,
                                 c.short_delta, c.wing_delta, c.width)
        sigma, source = implied_sigma(V, v9, v9 is not None)
        pts = float(edr_points(S, float(edr_pct(sigma, p))))
        n = cal.sessions_to_expiry_many(asof, [expiry], False)
        ends = cal.settlement_epochs([expiry], False)
        edr_h = float(horizon_edr(pts, n, ends, ev_list or (), source, asof, p)[0])
        k2 = floor_to(S - c.tier * edr_h, p.strike_step)
        k3 = ceil_to(S + c.tier * edr_h, p.strike_step)
        return np.array([k2 - c.width, k2, k3, k3 + c.width])

    def enter(self, b: Book, i: int, ev_list) -> None:
        today = self.m.dates[i]
        expiry = self.entry_expiry(today)
        if expiry is None:
            return
        strikes = self.entry_strikes(i, expiry, ev_list)
        px, spread = self.legs(i, strikes, expiry)
        mid = float(-(px * np.array([1, -1, -1, 1])).sum())
        slip = self.cfg.slippage_frac * spread
        credit = mid - slip
        qty = self.cfg.qty
        pos = Position(id=self.next_id, root=self.cfg.root, expiry=expiry, k1=float(strikes[0]),
                       k2=float(strikes[1]), k3=float(strikes[2]), k4=float(strikes[3]), qty=qty,
                       entry_credit=round(credit, 4), opened=today, label=b.variant.value)
        if credit < MIN_CREDIT or pos.problems(today):
            self.skipped += 1
            return
        t = Trade(b.variant.value, self.next_id, today, tuple(float(k) for k in strikes), expiry,
                  qty, pos.entry_credit)
        self.next_id += 1
        b.open = Open(t, pos)
        mult = self.p.spx_multiplier * qty
        self._condor_flow(b, pos.entry_credit * mult, slip * mult)
        self._commission(t, LEGS * qty, self.cfg.commission_spx)

    def finish(self, i: int) -> None:
        """Open trades at the end are valued at the last close's model marks (no costs) and
        booked as OPEN_AT_END, so the trades add up to the equity change."""
        for b in self.books.values():
            if b.open is None:
                continue
            pos = b.open.pos
            S = float(self.m.spx[i])
            years = years_to(self.m.asof(i), [pos.expiry], False)
            mk = float(condor_marks(S, np.array([self._strikes(pos)]), years,
                                    float(self.m.vix[i]), self.m.opt("vix9d", i),
                                    self.m.opt("vix3m", i), self.rate(i),
                                    self.p.dividend_yield, self.p)[0])
            self._condor_flow(b, -mk * self.p.spx_multiplier * pos.qty, 0.0)
            layers = list(pos.hedges)
            if layers:
                for layer, hm in zip(layers, self.hedge_marks(layers, i), strict=True):
                    self._sell(b, layer, layer.qty, float(hm), settle=True)
                b.open.pos = dataclasses.replace(pos, hedges=())
            self._finish_trade(b, i, "OPEN_AT_END")


def cndr_entry_expiry(today: date) -> date | None:
    """The CNDR program's entry rule: only on a monthly SPX expiry day (the third Friday, or
    the session before when that Friday is a holiday), into the next month's expiry (28 or 35
    days later; a holiday at either end moves it by a day). None on any other day."""
    if today != cal.spx_monthly_expiry(today.year, today.month):
        return None
    y, m = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    nxt = cal.spx_monthly_expiry(y, m)
    return nxt if nxt <= cal.CALENDAR_END else None


def print_progress(done: int, total: int, day: date, seconds: float) -> None:
    rate = done / seconds if seconds > 0 else 0.0
    left = (total - done) / rate if rate > 0 else float("nan")
    print(f"  {day}  {done:,}/{total:,} sessions  {seconds:5.1f} s elapsed, ~{left:4.0f} s left",
          file=sys.stderr, flush=True)


def run_backtest(config: BacktestConfig, market: MarketDays, events: list[Event],
                 progress: Callable | None = None) -> BacktestResult:
    return Replay(config, market, events, progress).run()
