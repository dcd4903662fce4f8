"""The differentials' sampler: coarse-to-fine LRs and sequential subsamples (pure numpy)."""

import numpy as np
import pytest

from kt_lr import stats
from kt_lr.refine import MIN_SUBSAMPLES, PILOT, Sampler, best_rules, coarse_indices

LATTICE = np.geomspace(1e-5, 1.0, 50)  # 0.102 decade apart, as find_lr's grid
STEP = np.log10(LATTICE[1] / LATTICE[0])


def curves(seed, noise, lr0=1e-2, rows=100):
    """ΔL of ``rows`` subsamples: -2u + u^2 (u = lr / lr0), per-subsample scales and noise
    growing with u; diverged (nan) past 6 lr0. Edge near 2 lr0, minimum at lr0."""
    rng = np.random.default_rng(seed)
    u = LATTICE / lr0
    a = 1 + 0.3 * rng.normal(size=(rows, 1))
    b = 1 + 0.3 * rng.normal(size=(rows, 1))
    deltas = -2 * a * u + b * u**2 + noise * rng.normal(size=(rows, LATTICE.size)) * u
    deltas[:, u > 6] = np.nan
    return deltas


def full_rules(deltas):
    return stats.best_lr_rules(LATTICE, stats.t_summary(deltas))


def run(sampler, deltas):
    """Feed the sampler subsample after subsample of ``deltas`` (rows in order), as the
    probe draws batches; the rules on what it measured."""
    row = 0
    while not sampler.done:
        indices, count = sampler.request()
        sampler.add(indices, deltas[row : row + count][:, indices])
        row += count
    lrs, got, measured = sampler.arrays()
    return best_rules(lrs, stats.t_summary(got, measured=measured), sampler.count)


def steps_apart(a, b):
    if a is None or b is None:
        return 0 if a is b else np.inf
    return abs(np.log10(a / b)) / STEP


def test_coarse_indices_spread_evenly_with_both_ends():
    idx = coarse_indices(50, 12)
    assert idx[0] == 0 and idx[-1] == 49 and idx.size == 12
    assert np.all(np.diff(idx) >= 4) and np.all(np.diff(idx) <= 5)
    np.testing.assert_array_equal(coarse_indices(5, 12), np.arange(5))


def test_every_lr_and_fixed_subsamples_is_the_full_estimator():
    deltas = curves(0, 1.0)
    sampler = Sampler(LATTICE, num_subsamples=100)
    assert run(sampler, deltas) == full_rules(deltas)
    lrs, got, measured = sampler.arrays()
    np.testing.assert_array_equal(lrs, LATTICE)
    np.testing.assert_array_equal(got, deltas)
    assert measured is None and sampler.stop_reason == "fixed" and sampler.count == 100


@pytest.mark.parametrize("k", [12, 16, 24])
@pytest.mark.parametrize("noise", [0.1, 1.0, 2.0])
def test_refined_lrs_give_the_full_grids_edge_and_minimum(k, noise):
    """Same 100 subsamples, k of 50 LRs each: the rules land within one grid step."""
    for seed in range(8):
        deltas = curves(seed, noise)
        full = full_rules(deltas)
        got = run(Sampler(LATTICE, lr_points=k, num_subsamples=100), deltas)
        assert steps_apart(got["largest_negative"], full["largest_negative"]) <= 1.01, seed
        if noise <= 1.0:  # a flat, noisy bottom has no well-defined argmin
            assert steps_apart(got["lowest_mean"], full["lowest_mean"]) <= 1.01, seed


def test_the_refined_set_holds_the_edge_window_and_stays_put():
    deltas = curves(3, 0.5)
    sampler = Sampler(LATTICE, lr_points=16, num_subsamples=60)
    sets = []
    row = 0
    while not sampler.done:
        indices, count = sampler.request()
        sets.append(tuple(indices))
        assert np.all(np.diff(indices) > 0)
        sampler.add(indices, deltas[row : row + count][:, indices])
        row += count
    # a pilot of a few subsamples at every LR, then 16 LRs around the edge and minimum
    assert sets[0] == tuple(range(50)) and row == 60
    assert all(len(s) == 16 for s in sets[1:])
    assert len(set(sets[2:])) == 1  # kept once it holds both
    edge = np.flatnonzero(
        LATTICE == run(Sampler(LATTICE, num_subsamples=60), deltas)["largest_negative"]
    )[0]
    assert {edge - 1, edge, edge + 1} <= set(sets[-1])


def test_sequential_sampling_stops_when_settled_and_agrees_with_the_full_grid():
    used, misses = [], 0
    for seed in range(20):
        deltas = curves(seed, 0.3)
        sampler = Sampler(LATTICE, lr_points=16)
        got = run(sampler, deltas)
        used.append(sampler.count)
        misses += (
            steps_apart(got["largest_negative"], full_rules(deltas)["largest_negative"]) > 1.01
        )
        assert sampler.stop_reason == "settled"
        assert (sampler.count - PILOT) % 10 == 0 and sampler.count >= MIN_SUBSAMPLES
    assert misses == 0
    assert np.mean(used) < 40  # a clean edge settles far below the cap of 100


def test_sequential_sampling_takes_more_subsamples_when_noisy():
    quiet = Sampler(LATTICE, lr_points=16)
    run(quiet, curves(1, 0.1))
    noisy = Sampler(LATTICE, lr_points=16)
    run(noisy, curves(1, 6.0))
    assert noisy.count > quiet.count


def test_no_lr_lowers_the_loss_settles_at_the_floor():
    deltas = np.abs(curves(0, 0.1)) + 1.0
    sampler = Sampler(LATTICE, lr_points=12)
    got = run(sampler, deltas)
    assert got["largest_negative"] is None
    assert sampler.count == PILOT + 10 * -(-(MIN_SUBSAMPLES - PILOT) // 10)  # the first check


def test_cap_and_stop_from_outside():
    deltas = curves(0, 50.0)
    capped = Sampler(LATTICE, lr_points=12, max_subsamples=30)
    run(capped, deltas)
    assert capped.count == 30 and capped.stop_reason in ("max_subsamples", "settled")
    sampler = Sampler(LATTICE, lr_points=12)
    indices, count = sampler.request()
    sampler.add(indices, deltas[:count][:, indices])
    sampler.stop("time budget")
    assert sampler.done and sampler.stop_reason == "time budget" and sampler.count == PILOT


def test_measured_mask_and_history():
    deltas = curves(2, 1.0)
    sampler = Sampler(LATTICE, lr_points=12, num_subsamples=40)
    run(sampler, deltas)
    lrs, got, measured = sampler.arrays()
    assert got.shape == measured.shape == (40, lrs.size)
    assert np.all(np.diff(lrs) > 0) and set(lrs) <= set(LATTICE)
    assert np.all(measured[:PILOT]) and np.all(measured[PILOT:].sum(axis=1) == 12)
    assert np.all(np.isnan(got[~measured]))
    cols = np.searchsorted(LATTICE, lrs)
    np.testing.assert_array_equal(got[measured], deltas[:40, cols][measured])
    assert [h["subsamples"] for h in sampler.history] == [4, 14, 24, 34, 40]


def test_bad_arguments():
    with pytest.raises(ValueError, match="lr_points"):
        Sampler(LATTICE, lr_points=1)
    with pytest.raises(ValueError, match="max_subsamples"):
        Sampler(LATTICE, max_subsamples=0)
    with pytest.raises(ValueError, match="strictly increasing"):
        Sampler(LATTICE[::-1])


LOG_U = np.log10(LATTICE / 1e-2)  # decades from 1e-2


def shaped(shape, seed, noise, rows=100):
    """ΔL of ``rows`` subsamples around a mean curve ``shape`` (per-subsample scales, noise
    growing with |mean|)."""
    rng = np.random.default_rng(seed)
    up = np.where(LOG_U > 1, (LOG_U - 1) * 5, 0)  # unstable above 0.1
    dip = {
        "low": np.exp(-(((LOG_U + 1) / 0.3) ** 2)),  # around 1e-3
        "high": np.exp(-(((LOG_U - 0.5) / 0.3) ** 2)),  # around 3e-2
    }
    bump = 0.3 * np.exp(-(((LOG_U + 0.25) / 0.2) ** 2))  # ΔL > 0 between the dips
    mean = {
        # two negative regions: the deeper one below / above a positive bump (two sign
        # changes, then the rise)
        "two_dips_deeper_low": -dip["low"] - 0.5 * dip["high"] + bump + up,
        "two_dips_deeper_high": -0.5 * dip["low"] - dip["high"] + bump + up,
        # positive at tiny LRs (e.g. a held-out batch), negative, positive
        "pos_neg_pos": np.where(
            LOG_U < -2.3, 0.2, 0.2 - 0.2 * 10**LOG_U + 0.01 * 10 ** (2 * LOG_U)
        ),
        # negative over four decades, lowest far below the edge
        "broad_valley": -0.3 - 0.7 * np.exp(-(((LOG_U + 1.5) / 0.5) ** 2)) + up,
        "all_negative": -np.log1p(100 * 10**LOG_U) / 10,
        "all_positive_min": 0.1 + 0.3 * (LOG_U + 1.5) ** 2,
        "all_positive_rising": 0.05 * 10 ** ((LOG_U + 3) / 2),
    }[shape]
    scale = 1 + 0.3 * rng.normal(size=(rows, 1))
    return scale * mean + noise * rng.normal(size=(rows, LATTICE.size)) * (0.05 + 0.1 * abs(mean))


SHAPES = [
    "two_dips_deeper_low",
    "two_dips_deeper_high",
    "pos_neg_pos",
    "broad_valley",
    "all_negative",
    "all_positive_min",
    "all_positive_rising",
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("noise", [0.3, 1.0, 3.0])
def test_refined_lrs_match_the_full_grid_on_every_curve_shape(shape, noise):
    """Equal subsamples: the edge within one grid step of the full grid's on curves with
    two sign changes (a positive bump between two dips: the refined LRs must not let the
    run of negative ΔL step over a bump only the pilot measured), all-negative and
    all-positive ones; the lowest mean too where it is well defined (noise <= 1)."""
    for seed in range(6):
        deltas = shaped(shape, seed, noise)
        full = full_rules(deltas)
        if shape.startswith("all_positive"):
            assert full["largest_negative"] is None
        if shape == "all_negative":
            assert full["largest_negative"] == LATTICE[-1]
        for k in (12, 16, 24):
            got = run(Sampler(LATTICE, lr_points=k, num_subsamples=100), deltas)
            where = (seed, k, got, full)
            assert steps_apart(got["largest_negative"], full["largest_negative"]) <= 1.01, where
            if noise <= 1.0:
                assert steps_apart(got["lowest_mean"], full["lowest_mean"]) <= 1.01, where


@pytest.mark.parametrize("shape", SHAPES)
def test_sequential_sampling_finds_the_full_grids_edge_on_every_curve_shape(shape):
    for seed in range(4):
        deltas = shaped(shape, seed, 1.0)
        full = full_rules(deltas)
        sampler = Sampler(LATTICE, lr_points=12)
        got = run(sampler, deltas)
        assert steps_apart(got["largest_negative"], full["largest_negative"]) <= 1.01, seed
        assert MIN_SUBSAMPLES <= sampler.count <= 100
        assert sampler.stop_reason in ("settled", "max_subsamples")


@pytest.mark.parametrize("level", [-0.5, 0.0, 0.5])
def test_a_flat_curve_gives_the_full_grids_answers(level):
    """ΔL the same at every LR (each subsample's own offset): the edge is the top of the
    grid when ΔL is surely negative, else there is none, for the refined and the sequential
    sampler as for the full grid; the sequential one stops within its cap. No LR is better
    than another: the full grid's lowest mean is the smallest LR (ties go to it), the
    refined one's an LR the full grid ranks as good (its LRs see different subsamples)."""
    rng = np.random.default_rng(0)
    deltas = np.repeat(level + 0.1 * rng.normal(size=(100, 1)), LATTICE.size, axis=1)
    full = full_rules(deltas)
    assert full["lowest_mean"] == LATTICE[0]
    assert full["largest_negative"] == (LATTICE[-1] if level < 0 else None)
    for k in (12, 24):
        got = run(Sampler(LATTICE, lr_points=k, num_subsamples=100), deltas)
        assert got["largest_negative"] == full["largest_negative"]
        assert np.mean(deltas[:, LATTICE == got["lowest_mean"]]) == np.mean(deltas[:, 0])
        sequential = Sampler(LATTICE, lr_points=k, max_subsamples=60)
        got = run(sequential, deltas)
        assert got["largest_negative"] == full["largest_negative"]
        assert sequential.count <= 60 and sequential.stop_reason in ("settled", "max_subsamples")


def test_a_bump_only_the_pilot_measured_ends_the_run():
    """The rules over the well-measured LRs alone read [dip, dip, (gap), dip]: a gap whose
    LRs were measured by few subsamples with a mean ΔL >= 0 ends the run of negative ΔL
    there, as the full grid's run ends at the bump."""
    lrs = LATTICE[:8]
    rng = np.random.default_rng(0)
    mean = np.array([-1.0, -1.2, -0.8, 0.5, 0.5, -0.9, -0.9, 2.0])
    deltas = mean + 0.1 * rng.normal(size=(40, 8))
    measured = np.ones_like(deltas, dtype=bool)
    measured[4:, 3:5] = False  # the bump: the pilot's 4 subsamples only
    deltas[~measured] = np.nan
    summary = stats.t_summary(deltas, measured=measured)
    assert best_rules(lrs, summary, 40)["largest_negative"] == lrs[2]
    # a gap with a negative mean is stepped over, as before
    deltas[:4, 3:5] = -0.7
    summary = stats.t_summary(deltas, measured=measured)
    assert best_rules(lrs, summary, 40)["largest_negative"] == lrs[6]
