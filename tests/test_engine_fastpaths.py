"""Round 3 (issue 16) fast paths: each one gives the same answer, bit for bit, as the plain code
it short-cuts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from core import calendar as cal

# --- calendar caches ------------------------------------------------------------------------


def _dates(start: date, n: int, step: int = 1) -> list[date]:
    return [start + timedelta(days=step * i) for i in range(n)]


@pytest.mark.parametrize("fn", [cal.next_session, cal.previous_session])
def test_cached_session_neighbours_equal_the_plain_functions(fn):
    for d in _dates(date(2019, 12, 20), 40) + _dates(date(1990, 1, 5), 10, 37):
        assert fn(d) == fn.__wrapped__(d)
        assert fn(d) == fn.__wrapped__(d)  # second (cached) read


def test_cached_open_close_equal_the_plain_function():
    for d in cal.sessions_in_range(date(2024, 11, 20), date(2025, 1, 10)):
        assert cal.session_open_close(d) == cal.session_open_close.__wrapped__(d)
        assert cal.session_open_close(d) == cal.session_open_close.__wrapped__(d)
    with pytest.raises(ValueError):
        cal.session_open_close(date(2024, 12, 25))
    with pytest.raises(TypeError):
        cal.previous_session(datetime(2024, 12, 26, tzinfo=UTC))


def _last_close_plain(ts: datetime, vix: bool) -> datetime:
    c = cal._cal()
    delay = cal.VIX_CLOSE_DELAY.total_seconds() if vix else 0.0
    i = int(np.searchsorted(c.closes + delay, ts.timestamp(), side="right")) - 1
    return cal._from_epoch(c.closes[i] + delay)


def test_last_official_close_equals_the_array_search():
    t0 = datetime(2024, 11, 27, 12, 0, tzinfo=cal.ET)  # around Thanksgiving's early close
    for k in range(0, 96 * 4):
        ts = t0 + timedelta(minutes=15 * k)
        for vix in (False, True):
            got = cal.last_official_close(ts, vix=vix)
            assert got == _last_close_plain(ts, vix)
            assert got.utcoffset() == _last_close_plain(ts, vix).utcoffset()
    # an equal instant in another zone reads the same answer
    ts = datetime(2025, 3, 10, 21, 0, tzinfo=UTC)
    assert cal.last_official_close(ts) == cal.last_official_close(ts.astimezone(cal.ET))


def test_session_fraction_ahead_cached_equals_plain():
    for k in range(0, 200):
        ts = datetime(2025, 11, 25, 8, 0, tzinfo=cal.ET) + timedelta(minutes=37 * k)
        assert (cal._session_fraction_ahead(ts)
                == cal._session_fraction_ahead.__wrapped__(ts))


def test_expiry_lists_are_fresh_lists_of_the_cached_answer():
    a = cal.vix_expiries(date(2025, 1, 1), date(2025, 6, 30))
    assert a == sorted(cal._vix_expiries.__wrapped__(date(2025, 1, 1), date(2025, 6, 30), True))
    a.clear()  # a caller's list is its own
    assert cal.vix_expiries(date(2025, 1, 1), date(2025, 6, 30))
    for root in ("SPX", "SPXW"):
        s = cal.spx_expiries(date(2025, 1, 1), date(2025, 3, 31), root)
        assert s == list(cal._spx_expiries.__wrapped__(date(2025, 1, 1), date(2025, 3, 31), root))
        s.append(None)
        assert None not in cal.spx_expiries(date(2025, 1, 1), date(2025, 3, 31), root)


# --- SSVI θ(τ) with scalar index levels ----------------------------------------------------

_LEVELS = [None, np.nan, 0.0, -1.0, 9.0, 15.5, 22.3, 40.0, np.inf, np.float64(17.25), 12]


def _theta_array_path(tau, vix, vix9d, vix3m, p):
    from core import pricing as P

    points, bad = P._term_points(vix, vix9d, vix3m, p)
    total, knot_max = P._vix_total_variance(tau, points)
    return np.where(P._positive(tau) & ~bad, p.smile_c ** 2 * np.maximum(total, knot_max),
                    np.nan)


def test_scalar_theta_fast_path_has_the_array_path_bits():
    import itertools

    from core.params import DEFAULT_PARAMS, Params
    from core.pricing import ssvi_theta

    rng = np.random.default_rng(16)
    taus = np.concatenate([rng.uniform(-0.1, 1.5, 400), rng.uniform(0, 0.3, 200),
                           [0.0, 9 / 365, 30 / 365, 93 / 365, 1e-9, 5.0, np.nan, np.inf,
                            -np.inf]])
    other = Params(smile_tenor_vix9d_days=7, smile_tenor_vix3m_days=120)
    for p in (DEFAULT_PARAMS, other):
        for v9, v, v3 in itertools.product(_LEVELS, repeat=3):
            for tau in (taus, taus[:, None], np.asarray(0.1), np.asarray(30 / 365)):
                got = ssvi_theta(tau, v, v9, v3, p)
                want = _theta_array_path(tau, v, v9, v3, p)
                assert got.shape == want.shape
                assert got.tobytes() == want.tobytes(), (v9, v, v3)


# --- delta alone -----------------------------------------------------------------------------


def test_bsm_delta_has_the_bits_of_bsm_delta():
    from core.pricing import BLOCK_SIZE, bsm, bsm_delta

    rng = np.random.default_rng(3)
    for n in (1, 7, 1000, BLOCK_SIZE + 5, 2 * BLOCK_SIZE + 3):
        S = rng.uniform(50, 150, n)
        K = rng.uniform(40, 160, n)
        T = np.where(rng.random(n) < 0.5, rng.uniform(0, 2, n),
                     rng.choice([0.0, 1e-6, 0.1, -0.1, np.nan], n))
        sigma = rng.uniform(-0.1, 1, n)
        call = rng.random(n) < 0.5
        a, b = bsm(S, K, T, 0.03, 0.01, sigma, call).delta, bsm_delta(S, K, T, 0.03, 0.01,
                                                                       sigma, call)
        assert a.shape == b.shape and a.tobytes() == b.tobytes()
        m = max(1, n // 4)  # the roll search's (rows, 4 legs) broadcast
        S2, T2 = rng.uniform(5000, 6000, m)[:, None], rng.uniform(0, 0.3, m)[:, None]
        K2, iv = rng.uniform(4000, 7000, (m, 4)), rng.uniform(0.05, 0.6, (m, 4))
        legs = np.broadcast_to(np.array([False, False, True, True]), (m, 4))
        a = bsm(S2, K2, T2, 0.04, 0.013, iv, legs).delta
        b = bsm_delta(S2, K2, T2, 0.04, 0.013, iv, legs)
        assert a.shape == b.shape and a.tobytes() == b.tobytes()
    assert bsm_delta(100.0, 100.0, 0.5, 0.01, 0.0, 0.2, True).shape == ()


def test_row_pricer_delta_equals_the_price_tuples_delta():
    from pathlib import Path

    from bot.engine_files import _load_events, _load_history, _read_json, parse_market
    from core import evaluate as ev

    root = Path(__file__).resolve().parents[1]
    snap = parse_market(_read_json(root / "examples" / "market.json", "market"))
    ctx = ev.evaluate_market(snap, _load_history(None), _load_events(None))
    assert ctx.chain  # the example quotes a chain: both IV sources are exercised
    rng = np.random.default_rng(5)
    m = 40
    roots = np.array(["SPXW", "SPX", "XSP", "SPXW"] * (m // 4), dtype=object)
    chain_exp = sorted({e for (_, e, _, _) in (ctx.chain or {})}) or [date(2026, 7, 17)]
    expiries = np.array([chain_exp[i % len(chain_exp)] for i in range(m)],
                        dtype="datetime64[D]")
    years = rng.uniform(0.003, 0.3, m)
    pricer = ev._row_pricer(ctx, ev.DEFAULT_PARAMS, roots, expiries, years)
    scale = np.where(roots == "XSP", 0.1, 1.0)
    centre = np.round(ctx.spx * scale / 5) * 5
    for _ in range(5):
        rows = np.sort(rng.choice(m, 25, replace=False))
        off = rng.integers(-40, 41, (25, 4)) * 5 * scale[rows, None]
        k = centre[rows, None] + np.sort(off, axis=1)
        assert pricer.delta(rows, k).tobytes() == np.asarray(pricer(rows, k)[1]).tobytes()


# --- np.select replaced by wheres -------------------------------------------------------------


def test_clear_program_and_h_target_equal_np_select():
    from core import hedge, roll
    from core.edr import EdrState
    from core.params import DEFAULT_PARAMS as p

    R = roll.RollOutcome
    o = {name: roll.OUTCOMES.index(name) for name in R}
    order = [("data_bad", R.INSUFFICIENT_DATA), ("settle", R.SETTLE_OR_CLOSE),
             ("take_profit", R.TAKE_PROFIT), ("loss_limit", R.EXIT_LOSS_LIMIT),
             ("no_need", R.ROLL_NOT_NEEDED), ("event_block", R.BLOCKED_BY_EVENT),
             ("regime_block", R.BLOCKED_BY_REGIME), ("few_closes", R.INSUFFICIENT_DATA),
             ("hold_unconfirmed", R.HOLD_UNCONFIRMED), ("no_viable_roll", R.NO_VIABLE_ROLL),
             ("hedge_first", R.HEDGE_FIRST)]
    rng = np.random.default_rng(1)
    for n in (0, 1, 5, 200):
        for _ in range(30):
            kw = {name: rng.random(n) < 0.2 for name, _ in order}
            got = roll.clear(roll.RuleConditions(**kw))
            want = np.select([kw[name] for name, _ in order], [o[v] for _, v in order],
                             o[R.CLEARED]).astype(np.int64)
            assert got.dtype == want.dtype and got.shape == want.shape
            assert (got == want).all()
    e = np.arange(0, 60)
    want = np.select([e <= p.short_program_max_dte, e <= p.swing_program_max_dte],
                     [roll.PROGRAM_SHORT, roll.PROGRAM_SWING], roll.PROGRAM_MONTHLY).astype(object)
    got = roll.program_of(e)
    assert got.dtype == want.dtype and list(got) == list(want)
    for st in range(-1, 6):
        for fast in (False, True):
            score, tested = rng.integers(-3, 7, 50), rng.random(50) < 0.5
            got = hedge.h_target(st, fast, score, tested, p)
            s = np.broadcast_to(np.asarray(st, dtype=np.int64), score.shape)
            if fast:
                s = np.maximum(s, int(EdrState.APPROACHING))
            col = np.select([score <= 1, score <= 3], [0, 1], 2)
            appr = np.asarray(p.h_table_approaching)[col]
            brch = np.asarray(p.h_table_breached)[col]
            brch = np.where((col == 0) & tested, np.maximum(brch, p.h_breached_tested), brch)
            elev = np.asarray(p.h_table_elevated)[col]
            want = np.select([s >= EdrState.ELEVATED, s == EdrState.BREACHED,
                              s == EdrState.APPROACHING], [elev, brch, appr], 0.0)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_size_hedges_nan_to_num_equals_numpy():
    from core.hedge import _nan_to_num

    for x in (np.array([1.0, -0.0, 3.5]), np.array([np.nan, np.inf, -np.inf, 2.0]),
              np.zeros(0), np.array([1e308, -1e308])):
        for kw in ({"nan": 0.0, "posinf": 0.0}, {"nan": 0.0, "posinf": 0.0, "neginf": 0.0}, {}):
            got, want = _nan_to_num(x.copy(), **kw), np.nan_to_num(x.copy(), **kw)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


# --- merged pricing calls ----------------------------------------------------------------------


def test_one_call_over_stacked_inputs_has_the_bits_of_separate_calls():
    """targets (two smile reads), analyse (two touch probabilities), the VIX table and held
    layers (today + stressed Black-76) now make one call over stacked inputs."""
    from core.params import DEFAULT_PARAMS as p
    from core.pricing import black76, ssvi_vol, touch_probability
    from core.targets import targets

    rng = np.random.default_rng(7)
    n = 37
    s = rng.uniform(4000, 7000, n)
    years = np.concatenate([rng.uniform(0, 0.4, n - 2), [0.0, 1e-9]])
    lo = s - rng.uniform(-50, 600, n)
    lo[:3] = [0.0, -5.0, np.nan]
    hi = s + rng.uniform(-50, 600, n)
    tg = targets(s, lo, hi, years, rng.uniform(1, 5, n), rng.uniform(5, 50, n), 0.04, 0.013,
                 17.0, 16.0, 19.0, p)
    from core import targets as tmod

    tau = np.maximum(years, tmod._MIN_YEARS)
    want_lo = ssvi_vol(np.where(lo > 0, lo, s), s, tau, 0.04, 0.013, 17.0, 16.0, 19.0, p)
    want_hi = ssvi_vol(hi, s, tau, 0.04, 0.013, 17.0, 16.0, 19.0, p)
    assert tg.sigma_lo.tobytes() == want_lo.tobytes()
    assert tg.sigma_hi.tobytes() == want_hi.tobytes()

    k = np.stack([s - 100, s + 120], axis=1)
    iv = rng.uniform(0.05, 0.5, (n, 2))
    both = touch_probability(s[:, None], k, tau[:, None], 0.04, 0.013, iv).touch
    for j in range(2):
        one = touch_probability(s, k[:, j], tau, 0.04, 0.013, iv[:, j]).touch
        assert both[:, j].tobytes() == np.asarray(one).tobytes()

    f, f_star = rng.uniform(12, 40, n), rng.uniform(12, 60, n)
    t, tn = rng.uniform(0, 0.3, n), rng.uniform(0, 0.3, n)
    t[0] = tn[1] = 0.0
    sig = rng.uniform(0.5, 1.5, n)
    strikes = np.stack([f * 1.2, f * 1.2 + 5], axis=1)
    g = black76(np.stack([f, f_star])[:, :, None], strikes, np.stack([t, tn])[:, :, None],
                0.04, sig[:, None], True)
    g0 = black76(f[:, None], strikes, t[:, None], 0.04, sig[:, None], True)
    g1 = black76(f_star[:, None], strikes, tn[:, None], 0.04, sig[:, None], True)
    for name in ("price", "delta", "theta"):
        assert getattr(g, name)[0].tobytes() == getattr(g0, name).tobytes()
        assert getattr(g, name)[1].tobytes() == getattr(g1, name).tobytes()


def test_settlement_epochs_cached_per_small_set_equal_uncached():
    from core.params import SETTLEMENT_CACHE_MAX_EXPIRIES

    sessions = np.array(cal.sessions_in_range(date(2025, 1, 1), date(2026, 12, 31)),
                        dtype="datetime64[D]")
    rng = np.random.default_rng(11)
    for n in (1, 3, SETTLEMENT_CACHE_MAX_EXPIRIES, SETTLEMENT_CACHE_MAX_EXPIRIES + 1):
        days = rng.choice(sessions, n)
        am = rng.random(n) < 0.5
        for args in ((days, am), (days.astype(object).tolist(), am), (days, True)):
            want = cal._settlement_epochs(cal._to_day64(np.asarray(args[0])),
                                          np.asarray(args[1], dtype=bool))
            got = cal.settlement_epochs(*args)
            again = cal.settlement_epochs(*args)
            assert got.tobytes() == want.tobytes() and again.tobytes() == want.tobytes()
            got[...] = 0.0  # a caller's array is its own
            assert cal.settlement_epochs(*args).tobytes() == want.tobytes()
    with pytest.raises(ValueError):
        cal.settlement_epochs(np.array(["2025-12-25"], dtype="datetime64[D]"), True)


# --- strike walk in windows ---------------------------------------------------------------------


def _synthetic_delta(centre, width, kind):
    """A leg delta per (row, strike, put/call), element by element: smooth, or with a bump
    (non-monotone), or NaN pockets; like the pricer, it sees only its own row and strike."""
    def delta(rows, k):
        rows = np.asarray(rows)
        c, w = centre[rows][:, None], width[rows][:, None]
        x = np.clip((k - c) / w, -50.0, 50.0)
        put = 1.0 / (1.0 + np.exp(-x * 3.0))  # |Δ| grows with the strike
        call = 1.0 / (1.0 + np.exp(x * 3.0))  # and falls
        d = np.where(np.array([True, True, False, False]), -put, call)
        if kind == "bump":
            d = d * (1.0 + 0.8 * np.sin(k * 0.37) ** 2)
        if kind == "nan":
            d = np.where((np.floor(k) % 7) == 3, np.nan, d)
        return d
    return delta


@pytest.mark.parametrize("budget", [4096, 7, 1])  # 1: a window of one step (a large book)
@pytest.mark.parametrize("kind", ["smooth", "bump", "nan"])
def test_walk_in_windows_ends_where_the_step_walk_ends(kind, budget, monkeypatch):
    from core import roll

    monkeypatch.setattr(roll, "STRIKE_WALK_WINDOW_BUDGET", budget)
    rng = np.random.default_rng({"smooth": 1, "bump": 2, "nan": 3}[kind])
    for trial in range(40):
        n = int(rng.integers(1, 30))
        step = rng.choice([1.0, 5.0], n)
        spot = np.round(rng.uniform(500, 6000, n) / step) * step + rng.uniform(-2, 2, n)
        centre = spot + rng.uniform(-30, 30, n)
        width = rng.uniform(2, 400, n)
        t = rng.uniform(0.02, 0.4, n)
        k2 = np.floor((spot - rng.uniform(-50, 300, n) * width / 100) / step) * step
        k3 = np.ceil((spot + rng.uniform(-50, 300, n) * width / 100) / step) * step
        k2 = np.where(trial % 5 == 0, np.maximum(k2, step), k2)  # near zero: the k − step > 0 rule
        rows = np.arange(n) if trial % 2 else rng.permutation(n)
        delta = _synthetic_delta(centre, width, kind)
        want = roll._walk_steps(delta, rows, k2, k3, step, t, spot)
        got = roll._walk_windows(delta, rows, k2, k3, step, t, spot)
        assert want[0].tobytes() == got[0].tobytes() and want[1].tobytes() == got[1].tobytes()


def test_a_large_book_walks_at_most_the_budget_per_call():
    """The candidates priced per call stay within STRIKE_WALK_WINDOW_BUDGET (about two steps per
    call for a book as large as the budget), so a report round's 5,000 positions do not price
    32 strikes each for moves they do not make."""
    from core import roll

    n = 3000
    step, spot = np.full(n, 5.0), np.full(n, 5000.0)
    centre, width = spot.copy(), np.full(n, 200.0)
    t = np.full(n, 0.2)
    k2, k3 = np.full(n, 4000.0), np.full(n, 6000.0)  # far out: every row walks in a long way
    delta = _synthetic_delta(centre, width, "smooth")
    sizes: list[int] = []

    def counting(rows, k):
        sizes.append(len(rows))
        return delta(rows, k)

    got = roll._walk_windows(counting, np.arange(n), k2, k3, step, t, spot)
    want = roll._walk_steps(delta, np.arange(n), k2, k3, step, t, spot)
    assert got[0].tobytes() == want[0].tobytes() and got[1].tobytes() == want[1].tobytes()
    assert max(sizes[1:]) <= max(roll.STRIKE_WALK_WINDOW_BUDGET, n)  # a priced row per walking row


def test_walk_in_windows_keeps_the_step_cap():
    from core import roll

    n = 3
    step, spot = np.full(n, 5.0), np.full(n, 5000.0)
    never = lambda rows, k: np.full(np.shape(k), np.nan)  # noqa: E731  every strike "too large"
    k2, k3 = np.full(n, 4900.0), np.full(n, 5100.0)
    t = np.full(n, 0.2)
    want = roll._walk_steps(never, np.arange(n), k2, k3, step, t, spot)
    got = roll._walk_windows(never, np.arange(n), k2, k3, step, t, spot)
    assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
    assert got[1][0] == 5100.0 + roll.MAX_STRIKE_STEPS * 5.0


def test_exact_grid_gate():
    from core import roll

    one = np.array([5.0])
    assert roll._exact_grid(np.array([4900.0]), np.array([5100.0]), one)
    assert not roll._exact_grid(np.array([4900.5]), np.array([5100.0]), one)
    assert not roll._exact_grid(np.array([np.nan]), np.array([5100.0]), one)
    assert not roll._exact_grid(np.array([4900.0]), np.array([5100.0]), np.array([0.5]))


def test_upcoming_events_by_bisection_equal_the_filter():
    import bisect

    from core.evaluate import _event_time
    from core.models import Event, EventKind

    t0 = datetime(2026, 7, 1, 8, 30, tzinfo=cal.ET)
    ev = tuple(sorted((Event(t0 + timedelta(hours=7 * i + (i % 3)), EventKind.CPI, f"e{i}")
                       for i in range(40)), key=_event_time))
    for k in range(-5, 300):
        asof = t0 + timedelta(hours=k)
        want = tuple(e for e in ev if e.when > asof)
        assert ev[bisect.bisect_right(ev, asof, key=_event_time):] == want


def test_settle_cutoffs_by_one_code_equal_the_pair_unique():
    from types import SimpleNamespace

    from core.evaluate import _parse_hhmm, _settle_cutoffs
    from core.params import DEFAULT_PARAMS as p

    def reference(book, asof):
        cutoff = _parse_hhmm(p.settle_cutoff)
        before_close = (datetime.combine(date(2000, 1, 3), datetime.min.time().replace(hour=16))
                        - datetime.combine(date(2000, 1, 3), cutoff))
        out = []
        for e, am in zip(book.expiry.astype(object), book.am, strict=True):
            last_day = cal.previous_session(e) if am else e
            out.append(asof >= cal.session_open_close(last_day)[1] - before_close)
        return np.array(out, dtype=bool)

    sessions = cal.sessions_in_range(date(2026, 7, 1), date(2026, 9, 30))
    rng = np.random.default_rng(9)
    for _ in range(20):
        n = int(rng.integers(1, 40))
        days = np.array([sessions[i] for i in rng.integers(0, len(sessions), n)],
                        dtype="datetime64[D]")
        book = SimpleNamespace(n=n, expiry=days, am=rng.random(n) < 0.5)
        for hour in (9, 12, 15, 16, 17):
            asof = datetime.combine(sessions[int(rng.integers(0, len(sessions)))],
                                    datetime.min.time().replace(hour=hour), tzinfo=cal.ET)
            assert np.array_equal(_settle_cutoffs(book, asof, p), reference(book, asof))
