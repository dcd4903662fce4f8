"""Loss-differential statistics: exact intervals, seeded bootstrap, best-LR rules."""

import numpy as np
import pytest
from scipy import stats as sst

from kt_lr.stats import (
    best_lr_rules,
    bootstrap_interval,
    project_interval,
    summarize,
    t_interval,
    t_summary,
    validate_confidence,
)

HAND = np.array(
    [
        [0.10, -0.20, 1.0],
        [0.30, -0.40, 2.0],
        [-0.10, -0.30, 4.0],
        [0.20, -0.50, 0.5],
    ]
)


def test_t_interval_exact():
    low, high = t_interval(HAND, confidence=0.9)
    for k in range(HAND.shape[1]):
        col = HAND[:, k]
        half = sst.t.ppf(0.95, df=3) * col.std(ddof=1) / 2.0  # sqrt(4) = 2
        assert low[k] == pytest.approx(col.mean() - half, abs=1e-14)
        assert high[k] == pytest.approx(col.mean() + half, abs=1e-14)
    ref = sst.t.interval(0.9, df=3, loc=HAND.mean(0), scale=sst.sem(HAND, axis=0))
    np.testing.assert_allclose(low, ref[0], rtol=1e-12)
    np.testing.assert_allclose(high, ref[1], rtol=1e-12)


def test_t_interval_needs_two_rows_and_2d():
    with pytest.raises(ValueError, match="at least 2 subsamples"):
        t_interval(HAND[:1])
    with pytest.raises(ValueError, match="2-D"):
        t_interval(HAND[:, 0])


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, float("nan"), True, "0.9"])
def test_validate_confidence_rejects(confidence):
    with pytest.raises(ValueError, match="confidence"):
        validate_confidence(confidence)


def test_validate_confidence_accepts():
    assert validate_confidence(0.95) == 0.95
    assert isinstance(validate_confidence(np.float32(0.5)), float)


def test_t_interval_coverage():
    # 400 repetitions of 10 normal samples, one per column: ~95% cover the true mean
    rng = np.random.default_rng(7)
    samples = rng.normal(loc=1.5, scale=2.0, size=(10, 400))
    low, high = t_interval(samples, confidence=0.95)
    coverage = np.mean((low <= 1.5) & (1.5 <= high))
    assert 0.90 <= coverage <= 0.99


def test_bootstrap_is_seeded_and_leaves_global_state_alone():
    rng = np.random.default_rng(0)
    deltas = rng.normal(size=(20, 6))
    np.random.seed(12345)
    before = np.random.get_state()
    a = bootstrap_interval(deltas, n_boot=300, rng=42)
    b = bootstrap_interval(deltas, n_boot=300, rng=np.random.default_rng(42))
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = bootstrap_interval(deltas, n_boot=300, rng=43)
    assert not np.array_equal(a[0], c[0])


def test_bootstrap_matches_naive_row_resampling():
    rng = np.random.default_rng(1)
    deltas = rng.normal(size=(15, 4))
    low, high = bootstrap_interval(deltas, confidence=0.8, n_boot=500, rng=9)
    idx = np.random.default_rng(9).integers(0, 15, size=(500, 15))
    means = deltas[idx].mean(axis=1)  # (500, 4): the same rows for every column
    np.testing.assert_allclose(low, np.percentile(means, 10, axis=0), rtol=1e-12)
    np.testing.assert_allclose(high, np.percentile(means, 90, axis=0), rtol=1e-12)


def test_bootstrap_close_to_t_on_normal_data():
    rng = np.random.default_rng(2)
    deltas = rng.normal(size=(200, 3))
    t_low, t_high = t_interval(deltas)
    b_low, b_high = bootstrap_interval(deltas, n_boot=2000, rng=0)
    np.testing.assert_allclose(b_low, t_low, atol=0.03)
    np.testing.assert_allclose(b_high, t_high, atol=0.03)


def test_bootstrap_rejects_bad_n_boot():
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_interval(HAND, n_boot=0)


def test_summarize_keys_and_nonfinite_columns():
    deltas = HAND.copy()
    deltas[2, 1] = np.nan
    deltas[0, 2] = np.inf
    s = summarize(deltas, confidence=0.9, n_boot=200, rng=0)
    assert set(s) == {
        "mean",
        "median",
        "std",
        "t_low",
        "t_high",
        "boot_low",
        "boot_high",
        "finite",
        "count",
    }
    np.testing.assert_array_equal(s["finite"], [True, False, False])
    np.testing.assert_array_equal(s["count"], [4, 4, 4])
    # finite-entry statistics for the bad columns, undefined intervals
    assert s["mean"][1] == pytest.approx(np.mean([-0.2, -0.4, -0.5]))
    assert s["median"][2] == pytest.approx(2.0)
    assert s["std"][0] == pytest.approx(HAND[:, 0].std(ddof=1))
    for key in ("t_low", "t_high", "boot_low", "boot_high"):
        assert np.isfinite(s[key][0]) and np.all(np.isnan(s[key][1:])), key


# ---------------------------------------------------------------------- best rules

LRS = np.geomspace(1e-4, 1, 41)  # 10 points per decade, LRS[20] = 1e-2
LR0 = 1e-2


def parabola_deltas(sigma):
    """ΔL(lr) = (lr/lr0)^2 - 2 (lr/lr0): minimum -1 at lr0, zero at 2 lr0.

    Four rows with offsets -1.5, -0.5, 0.5, 1.5 times ``sigma`` (per column): the
    column mean is exactly the parabola and the std is sigma * sqrt(5/3).
    """
    u = LRS / LR0
    curve = u**2 - 2 * u
    offsets = np.array([-1.5, -0.5, 0.5, 1.5])[:, None]
    return curve, curve[None, :] + offsets * np.broadcast_to(sigma, LRS.shape)[None, :]


def expected_t_high(curve, sigma):
    return curve + sst.t.ppf(0.975, 3) * sigma * np.sqrt(5 / 3) / 2


def test_best_rules_on_a_parabola():
    sigma = 0.05 + 0.3 * LRS / LR0  # noisier at large LRs
    curve, deltas = parabola_deltas(sigma)
    best = best_lr_rules(LRS, summarize(deltas, n_boot=100, rng=0))
    assert set(best) == {"lowest_mean", "lowest_median", "lowest_upper", "largest_negative"}
    assert best["lowest_mean"] == LRS[20] == pytest.approx(LR0)
    assert best["lowest_median"] == LRS[20]
    upper = expected_t_high(curve, sigma)
    assert best["lowest_upper"] == LRS[np.argmin(upper)]
    assert best["lowest_upper"] < LR0  # the noise pushes it below the mean's argmin
    assert best["largest_negative"] == LRS[np.flatnonzero(upper < 0).max()]
    assert best["largest_negative"] < 2 * LR0


def test_largest_negative_ignores_isolated_noise_beyond_a_positive_region():
    curve, deltas = parabola_deltas(0.05)
    deltas[:, 35] = -0.2 + np.array([-0.01, 0.0, 0.0, 0.01])  # a fluke far past the zero
    s = summarize(deltas, n_boot=100, rng=0)
    assert s["t_high"][35] < 0 and s["t_high"][34] > 0
    best = best_lr_rules(LRS, s)
    upper = expected_t_high(curve, 0.05)
    expected = LRS[np.flatnonzero(upper < 0).max()]
    assert best["largest_negative"] == expected < LRS[35]
    assert best["lowest_mean"] == LRS[20]


def test_nonfinite_column_is_never_best():
    curve, deltas = parabola_deltas(0.05)
    deltas[1, 20] = np.nan  # the argmin column diverged once
    deltas[2, 21] = np.inf
    s = summarize(deltas, n_boot=100, rng=0)
    best = best_lr_rules(LRS, s)
    for rule, lr in best.items():
        assert lr not in (LRS[20], LRS[21]), rule
    assert best["lowest_mean"] == best["lowest_upper"] == LRS[19]
    # the bad column 20 ends the run of negative upper bounds that holds LRS[19]
    assert best["largest_negative"] == LRS[19]
    # without the "finite" key the nan bounds still exclude the columns
    without = {k: v for k, v in s.items() if k != "finite"}
    assert best_lr_rules(LRS, without) == best


def test_nonfinite_column_splits_the_negative_run():
    _, deltas = parabola_deltas(0.05)
    assert best_lr_rules(LRS, summarize(deltas, n_boot=50, rng=0))["largest_negative"] == LRS[22]
    deltas[0, 22] = np.nan
    assert best_lr_rules(LRS, summarize(deltas, n_boot=50, rng=0))["largest_negative"] == LRS[21]


def test_no_answer_gives_none():
    positive = np.abs(parabola_deltas(0.05)[1]) + 1.0
    best = best_lr_rules(LRS, summarize(positive, n_boot=50, rng=0))
    assert best["largest_negative"] is None
    assert best["lowest_mean"] is not None
    all_bad = np.full((3, LRS.size), np.nan)
    best = best_lr_rules(LRS, summarize(all_bad, n_boot=50, rng=0))
    assert all(v is None for v in best.values())


def test_best_rules_rejects_mismatched_grid():
    s = summarize(parabola_deltas(0.05)[1], n_boot=50, rng=0)
    with pytest.raises(ValueError, match="lrs"):
        best_lr_rules(LRS[:-1], s)
    with pytest.raises(ValueError, match="strictly increasing"):
        best_lr_rules(LRS[::-1], s)
    with pytest.raises(ValueError, match="summarize"):
        best_lr_rules(LRS, {"mean": s["mean"]})


# ------------------------------------------------------------- measured subsets


def _masked():
    rng = np.random.default_rng(4)
    deltas = rng.normal(size=(12, 5))
    measured = np.ones((12, 5), dtype=bool)
    measured[:4, 1] = False  # column 1: the last 8 subsamples
    measured[6:, 3] = False  # column 3: the first 6
    measured[:11, 4] = False  # column 4: one subsample only
    return deltas, measured


def test_masked_statistics_are_those_of_each_columns_measured_subsamples():
    deltas, measured = _masked()
    garbage = np.where(measured, deltas, 1e9)  # unmeasured entries are never read
    s = summarize(garbage, confidence=0.9, n_boot=200, rng=0, measured=measured)
    np.testing.assert_array_equal(s["count"], [12, 8, 12, 6, 1])
    for k in range(4):
        col = deltas[measured[:, k], k]
        low, high = t_interval(col[:, None], confidence=0.9)
        assert s["mean"][k] == pytest.approx(col.mean())
        assert s["std"][k] == pytest.approx(col.std(ddof=1))
        assert s["median"][k] == pytest.approx(np.median(col))
        assert s["t_low"][k] == pytest.approx(low[0]) and s["t_high"][k] == pytest.approx(high[0])
    # one measurement: a mean, no interval
    assert s["mean"][4] == pytest.approx(deltas[11, 4])
    assert np.isnan(s["t_high"][4]) and np.isnan(s["boot_high"][4])
    # all measured: exactly the unmasked statistics
    full = summarize(deltas, confidence=0.9, n_boot=200, rng=0)
    again = summarize(deltas, confidence=0.9, n_boot=200, rng=0, measured=np.ones_like(measured))
    for key in full:
        np.testing.assert_array_equal(full[key], again[key])


def test_masked_bootstrap_resamples_each_group_of_columns_on_its_rows():
    deltas, measured = _masked()
    low, high = bootstrap_interval(deltas, confidence=0.8, n_boot=400, rng=5, measured=measured)
    gen = np.random.default_rng(5)
    # groups in the order of their first column: {0, 2}, {1}, {3}; column 4 too short
    for cols, rows in (([0, 2], np.arange(12)), ([1], np.arange(4, 12)), ([3], np.arange(6))):
        idx = gen.integers(0, rows.size, size=(400, rows.size))
        means = deltas[rows][:, cols][idx].mean(axis=1)
        np.testing.assert_allclose(low[cols], np.percentile(means, 10, axis=0), rtol=1e-12)
        np.testing.assert_allclose(high[cols], np.percentile(means, 90, axis=0), rtol=1e-12)
    assert np.isnan(low[4])


def test_a_diverged_measured_entry_spoils_its_column_an_unmeasured_one_does_not():
    deltas, measured = _masked()
    deltas[0, 1] = np.nan  # not measured
    deltas[7, 1] = np.inf  # measured: diverged
    deltas[8, 3] = np.nan  # not measured
    s = t_summary(deltas, measured=measured)
    np.testing.assert_array_equal(s["finite"], [True, False, True, True, True])
    assert np.isnan(s["t_high"][1]) and np.isfinite(s["t_high"][3])


def test_measured_mask_must_match():
    deltas, measured = _masked()
    with pytest.raises(ValueError, match="measured"):
        t_interval(deltas, measured=measured[:, :3])


def test_project_interval():
    deltas, _ = _masked()
    s = t_summary(deltas)
    low, high = project_interval(s, 12)  # as measured: the same interval
    np.testing.assert_allclose(low, s["t_low"]) and np.testing.assert_allclose(high, s["t_high"])
    low100, high100 = project_interval(s, 100)
    half = sst.t.ppf(0.975, 99) * s["std"] / 10
    np.testing.assert_allclose(high100, s["mean"] + half)
    hopeful = project_interval(s, 100, shift=-2.0)[1]
    np.testing.assert_allclose(hopeful, s["mean"] + half - 2 * s["std"] * np.sqrt(88) / 100)
