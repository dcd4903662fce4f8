"""Range-test curve logic on synthetic curves with known answers."""

import numpy as np
import pytest

from kt_lr.suggest import (
    Suggestion,
    despike,
    divergence_index,
    ema_smooth,
    interval_from_curve,
    minimum_div10,
    prepare_curve,
    savgol_smooth,
    slide,
    steepest,
    suggest_all,
    valley,
)

LRS = np.geomspace(1e-6, 1, 100)
LOG = np.log10(LRS)
NAMES = ["steepest", "valley", "min/10", "slide"]


def explosion(log_lr, start=-1.0):
    """Zero below 10**start, then a steep rise (x1000 per decade)."""
    return np.where(log_lr > start, 0.1 * (10 ** (3 * (log_lr - start)) - 1), 0.0)


def clean_curve():
    """1 -> 0.1 sigmoid descent centred on LRS[50] (about 1e-3), explosion after 1e-1."""
    return 0.1 + 0.9 / (1 + np.exp(3 * (LOG - LOG[50]))) + explosion(LOG)


def raw_divergence(losses, factor=4.0):
    """Reference divergence point of a noise-free curve, written independently."""
    low = np.inf
    for i, v in enumerate(losses):
        if not np.isfinite(v) or (i and v > factor * low):
            return i
        low = min(low, v)
    return len(losses)


def lrs_of(suggestions):
    return {k: (None if v is None else v.lr) for k, v in suggestions.items()}


# ------------------------------------------------------------------------ smoothing


def test_ema_bias_correction_exact():
    out = ema_smooth([1.0, 2.0, 3.0], beta=0.5)
    # avg: 0.5, 1.25, 2.125; corrections: 1 - 0.5, 1 - 0.25, 1 - 0.125
    np.testing.assert_allclose(out, [1.0, 5.0 / 3.0, 17.0 / 7.0], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(ema_smooth([3.0, 1.0, 4.0], beta=0.0), [3.0, 1.0, 4.0])
    # a constant is its own bias-corrected average from the first step on
    np.testing.assert_allclose(ema_smooth(np.full(50, 2.5)), 2.5, rtol=1e-12)


def test_ema_nonfinite_propagates_as_nan():
    out = ema_smooth([1.0, 2.0, np.inf, 1.0, 1.0], beta=0.9)
    assert np.all(np.isfinite(out[:2]))
    assert np.all(np.isnan(out[2:]))
    assert ema_smooth([], beta=0.9).size == 0


@pytest.mark.parametrize("beta", [1.0, -0.1, 1.5])
def test_ema_rejects_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        ema_smooth([1.0, 2.0], beta=beta)


def test_savgol_keeps_a_quadratic():
    x = np.linspace(-3, 5, 57)
    q = 2.0 * x**2 - 3.0 * x + 1.0
    np.testing.assert_allclose(savgol_smooth(q), q, rtol=0, atol=1e-9)
    np.testing.assert_allclose(savgol_smooth(q, window=21), q, rtol=0, atol=1e-9)


def test_savgol_smooths_noise_and_handles_short_curves():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(200)
    assert savgol_smooth(noise).std() < 0.6 * noise.std()
    short = np.array([3.0, 1.0])
    out = savgol_smooth(short)
    np.testing.assert_array_equal(out, short)
    assert out is not short


@pytest.mark.parametrize("window", [4, 1, 201])
def test_savgol_rejects_bad_window(window):
    with pytest.raises(ValueError, match="window"):
        savgol_smooth(np.arange(200.0), window=window)


def test_savgol_rejects_nonfinite():
    with pytest.raises(ValueError, match="finite"):
        savgol_smooth([1.0, np.nan, 2.0, 3.0, 4.0])


def test_despike_replaces_an_isolated_spike_only():
    x = np.linspace(2.0, 1.0, 30)
    spiky = x.copy()
    spiky[3] = 100.0
    spiky[12] = -50.0
    out = despike(spiky)
    keep = np.ones(x.size, bool)
    keep[[3, 12]] = False
    np.testing.assert_array_equal(out[keep], x[keep])
    # each spike becomes the median of its 7-point neighbourhood
    assert out[3] == x[2] and out[12] == x[13]
    # a jump in the last half_window points is kept: it may be the divergence
    tail = x.copy()
    tail[-1] = 100.0
    np.testing.assert_array_equal(despike(tail), tail)


# ----------------------------------------------------------------------- divergence


def test_divergence_index_exact():
    assert divergence_index([3.0, 2.0, 1.0, 1.5, 3.9, 4.1, 5.0]) == 5
    assert divergence_index([3.0, 2.0, 1.0, 1.5, 3.9, 4.1, 5.0], diverge_factor=3.0) == 4
    # starts at its minimum and only rises: still diverges past 4 x the first value
    assert divergence_index([1.0, 2.0, 3.0, 4.0, 4.5]) == 4
    assert divergence_index([1.0, 2.0, 3.0, 4.0]) is None
    assert divergence_index([1.0, 0.9, np.nan, 0.5]) == 2
    assert divergence_index([np.inf, 1.0]) == 0


def test_divergence_rejects_bad_factor():
    with pytest.raises(ValueError, match="diverge_factor"):
        divergence_index([1.0, 2.0], diverge_factor=1.0)


# ----------------------------------------------------------------------- heuristics


def test_clean_curve_known_answers():
    losses = clean_curve()
    out = suggest_all(LRS, losses)
    assert set(out) == set(NAMES)
    assert all(isinstance(s, Suggestion) for s in out.values())
    cut = raw_divergence(losses)

    # steepest descent of a symmetric sigmoid: its centre
    assert out["steepest"].index == 50
    assert out["steepest"].lr == LRS[50]
    assert "Savitzky-Golay" in out["steepest"].reason

    # valley: descent runs from the start to the minimum; 2/3 of the drop
    usable = losses[:cut]
    i_min = int(np.argmin(usable))
    level = usable[0] - 2 / 3 * (usable[0] - usable[i_min])
    expected = int(np.argmax(usable <= level))
    assert abs(out["valley"].index - expected) <= 1

    # min/10: a tenth of the LR at the minimum
    assert any(np.isclose(out["min/10"].lr, LRS[k] / 10) for k in (i_min - 1, i_min, i_min + 1))

    # the classic ordering on a clean curve
    chain = [out[k].lr for k in NAMES]
    assert chain == sorted(chain)
    assert out["slide"].lr < LRS[i_min]


def test_slide_on_piecewise_linear_curve():
    # linear fall 1.0 -> 0.1 over steps 0..39, flat to 69, then a linear rise to 1.0
    losses = np.concatenate([np.linspace(1.0, 0.1, 40), np.full(30, 0.1), np.linspace(0.1, 1, 30)])
    lrs = np.geomspace(1e-5, 1e-1, 100)
    s = slide(lrs, losses)
    # window of 15 steps must fall >= 0.005 * 0.9 * 15 = 0.0675; the slope is
    # 0.9 / 39 per step, so the window ending at r qualifies while 54 - r >= 2.925
    assert abs(s.index - 51) <= 1
    half = slide(lrs, losses, adjust_value=0.5)
    assert half.lr == pytest.approx(0.5 * s.lr)
    # a stricter threshold walks further back
    assert slide(lrs, losses, thresh=0.02).index < s.index
    with pytest.raises(ValueError, match="lr_diff"):
        slide(lrs, losses, lr_diff=0)


@pytest.mark.parametrize("seed", range(20))
def test_noisy_curve_is_stable(seed):
    # 5% multiplicative noise: each answer stays near the clean one, run after run
    # (the derivative-based steepest is the least stable of the four)
    clean = lrs_of(suggest_all(LRS, clean_curve()))
    rng = np.random.default_rng(seed)
    noisy = clean_curve() * (1 + 0.05 * rng.standard_normal(LRS.size))
    got = lrs_of(suggest_all(LRS, noisy))
    for name in NAMES:
        factor = 2.0 if name == "steepest" else 1.5
        assert got[name] is not None, name
        assert clean[name] / factor <= got[name] <= clean[name] * factor, name


@pytest.mark.parametrize("spike_at", [1, 3, 10])
def test_early_spike_does_not_move_answers(spike_at):
    clean = lrs_of(suggest_all(LRS, clean_curve()))
    spiky = clean_curve()
    spiky[spike_at] = 50.0  # 50x the starting loss
    got = lrs_of(suggest_all(LRS, spiky))
    for name in NAMES:
        assert got[name] is not None, name
        assert clean[name] / 2 <= got[name] <= clean[name] * 2, name


def test_flat_plateau_gives_nothing():
    flat = 1.0 + explosion(LOG)
    assert all(v is None for v in suggest_all(LRS, flat).values())
    assert interval_from_curve(LRS, flat) is None


def test_noisy_plateau_rarely_gives_anything():
    hits = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        flat = 1.0 + explosion(LOG) + 0.02 * rng.standard_normal(LRS.size)
        hits += any(v is not None for v in suggest_all(LRS, flat).values())
    assert hits <= 2


def test_no_descent_gives_nothing():
    rising = 1.0 + LRS
    assert all(v is None for v in suggest_all(LRS, rising).values())
    assert interval_from_curve(LRS, rising) is None


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_immediate_divergence_gives_nothing(bad):
    losses = clean_curve()
    losses[2:] = bad
    assert all(v is None for v in suggest_all(LRS, losses).values())
    assert interval_from_curve(LRS, losses) is None
    x, y, c = prepare_curve(LRS, losses)
    assert x.size == y.size == c.size == 2
    losses[:] = bad
    assert all(v is None for v in suggest_all(LRS, losses).values())


def test_nan_tail_is_cut():
    losses = clean_curve()
    losses[70:] = np.nan
    for name, s in suggest_all(LRS, losses).items():
        assert s is not None and s.index < 70, name
    assert minimum_div10(LRS, losses).lr <= LRS[69] / 10


def test_smoothed_argument_cuts_at_nonfinite_only():
    losses = clean_curve()
    smoothed = np.ones(LRS.size)
    smoothed[60:] = np.nan
    for name, s in suggest_all(LRS, losses, smoothed=smoothed).items():
        assert s is not None and s.index < 60, name
    # a raw EMA holds an early spike far above 4x its minimum for many steps: ignored
    spiky = clean_curve()
    spiky[3] = 50.0
    ema = ema_smooth(spiky)
    assert divergence_index(ema) == 3
    assert lrs_of(suggest_all(LRS, spiky, smoothed=ema)) == lrs_of(suggest_all(LRS, spiky))
    with pytest.raises(ValueError, match="smoothed"):
        suggest_all(LRS, losses, smoothed=smoothed[:-1])


def test_individual_functions_match_suggest_all():
    losses = clean_curve()
    out = suggest_all(LRS, losses)
    assert out["steepest"] == steepest(LRS, losses)
    assert out["valley"] == valley(LRS, losses)
    assert out["min/10"] == minimum_div10(LRS, losses)
    assert out["slide"] == slide(LRS, losses)


def test_min_div10_is_clipped_to_the_first_lr():
    lrs = np.geomspace(1e-3, 1e-2, 30)
    losses = np.concatenate([np.linspace(1.0, 0.2, 5), np.linspace(0.25, 0.5, 25)])
    s = minimum_div10(lrs, losses)
    assert s.lr == lrs[0] and s.index == 0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same length"):
        steepest(LRS, clean_curve()[:-1])
    with pytest.raises(ValueError, match="strictly increasing"):
        valley(LRS[::-1], clean_curve())
    with pytest.raises(ValueError, match="positive"):
        suggest_all(np.linspace(0, 1, 100), clean_curve())
    with pytest.raises(ValueError, match="1-D"):
        suggest_all(LRS[None, :], clean_curve()[None, :])


# ------------------------------------------------------------------------- interval


def test_interval_from_curve_exact():
    lrs = np.geomspace(1e-4, 1e-1, 10)
    smoothed = np.array([1.0, 1.0, 1.0, 0.95, 0.85, 0.5, 0.2, 0.1, 0.3, 5.0])
    # start 1.0 (median of the first 5), min 0.1 at index 7, 10% of the drop: 0.91
    assert interval_from_curve(lrs, smoothed) == (lrs[4], lrs[7])
    # an early dip that comes back up does not open the band
    dipped = smoothed.copy()
    dipped[1] = 0.8
    assert interval_from_curve(lrs, dipped) == (lrs[4], lrs[7])


# ------------------------------------------------------------------------- property


def random_curve(rng, noise):
    """A random descent + explosion; maybe an early spike, maybe a nan/inf tail."""
    centre = rng.uniform(-5, -2)
    width = rng.uniform(1, 6)
    start = rng.uniform(max(centre, -2.5), -0.3)
    floor = rng.uniform(0.01, 0.5)
    losses = floor + (1 - floor) / (1 + np.exp(width * (LOG - centre))) + explosion(LOG, start)
    losses = losses * (1 + noise * rng.standard_normal(LRS.size))
    reference = raw_divergence(losses)
    if rng.random() < 0.3:
        losses[rng.integers(1, 8)] *= rng.uniform(5, 50)
    if rng.random() < 0.4:
        tail = rng.integers(5, LRS.size)
        losses[tail:] = rng.choice([np.nan, np.inf])
        reference = min(reference, tail)
    return losses, reference


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_property_suggestions_inside_usable_range(noise):
    rng = np.random.default_rng(123)
    for _ in range(60):
        losses, reference = random_curve(rng, noise)
        usable, _, _ = prepare_curve(LRS, losses)
        if noise == 0.0:  # noise-free: the cut is the divergence (the 5-point running
            # median lifts the minimum a little, so it may come one step later), spike or not
            assert reference <= usable.size <= reference + 1
        for name, s in suggest_all(LRS, losses).items():
            if s is None:
                continue
            assert LRS[0] <= s.lr <= LRS[-1], name
            assert s.lr <= usable[-1] and s.index < usable.size, name
            if noise == 0.0:
                assert s.index < reference, name
            assert np.isclose(np.log(LRS[s.index]), np.log(s.lr), atol=np.log(LRS[1] / LRS[0]))
        band = interval_from_curve(LRS, losses)
        if band is not None:
            assert LRS[0] <= band[0] <= band[1] <= LRS[-1]
