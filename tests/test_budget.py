"""Sizing the probes to a budget (pure numpy)."""

import numpy as np
import pytest

from kt_lr.budget import (
    LR_POINTS,
    MIN_RANGE_STEPS,
    MIN_SECONDS,
    RANGE_STEPS,
    TARGET_SUBSAMPLES,
    UNKNOWN_EPOCH_STEPS,
    CostEstimate,
    budget_for_trial,
    plan_probes,
)
from kt_lr.validation import check_budget

# a BatchNorm CNN on 50,000 images at batch 128 (measured orders of magnitude)
CNN = CostEstimate(
    step_seconds=0.25,
    first_step_seconds=3.0,
    forward_seconds=0.08,
    steps_per_epoch=391,
    batch_size=128,
)
# a tiny MLP on 1,000 samples
TINY = CostEstimate(
    step_seconds=0.002,
    first_step_seconds=0.5,
    forward_seconds=0.0008,
    steps_per_epoch=31,
    batch_size=32,
)


def test_epoch_and_subsample_costs():
    assert CNN.epoch_seconds() == pytest.approx(3.0 + 390 * 0.25)
    assert CNN.epoch_seconds(cold=False) == pytest.approx(391 * 0.25)
    assert CNN.subsample_seconds(12) == pytest.approx(0.25 + 13 * 0.08)


def test_a_real_size_model_gets_the_range_test_and_few_lrs_per_subsample():
    plan = plan_probes(CNN)
    assert plan.budget_seconds == pytest.approx(CNN.epoch_seconds())
    assert plan.range_steps == RANGE_STEPS
    assert plan.lr_points in LR_POINTS
    assert plan.num_subsamples is None and plan.max_subsamples == 100
    # the planned subsamples fit what the traced epoch leaves after the range test
    left = CNN.epoch_seconds(cold=False) - RANGE_STEPS * CNN.step_seconds
    assert TARGET_SUBSAMPLES * CNN.subsample_seconds(plan.lr_points) <= left
    bigger = [k for k in LR_POINTS if k > plan.lr_points]
    assert all(TARGET_SUBSAMPLES * CNN.subsample_seconds(k) > left for k in bigger)


def test_a_small_model_gets_the_floor_and_the_whole_grid():
    plan = plan_probes(TINY)
    assert plan.budget_seconds == MIN_SECONDS > TINY.epoch_seconds()
    assert plan.range_steps == RANGE_STEPS
    assert plan.lr_points is None  # every LR of the grid fits


def test_a_bigger_budget_never_plans_smaller_probes():
    sizes = []
    for epochs in (0.25, 0.5, 1, 2, 4, 8):
        plan = plan_probes(CNN, budget_epochs=epochs)
        sizes.append((plan.range_steps, plan.lr_points or 50, plan.budget_seconds))
    for a, b in zip(sizes, sizes[1:], strict=False):
        assert all(x <= y for x, y in zip(a, b, strict=True))
    assert sizes[-1][1] == 50


def test_a_short_epoch_of_costly_steps_shortens_the_range_test():
    slow = CostEstimate(1.0, 20.0, 0.3, steps_per_epoch=150, batch_size=128)
    plan = plan_probes(slow)
    assert MIN_RANGE_STEPS <= plan.range_steps < RANGE_STEPS
    assert plan.range_steps == int(0.35 * 150)
    very = CostEstimate(1.0, 20.0, 0.3, steps_per_epoch=20, batch_size=128)
    assert plan_probes(very).range_steps == MIN_RANGE_STEPS
    assert plan_probes(very).lr_points == LR_POINTS[0]  # nothing fits: the fewest


def test_explicit_sizes_win_and_are_noted():
    plan = plan_probes(CNN, range_steps=30, lr_points=40, num_subsamples=7)
    assert (plan.range_steps, plan.lr_points, plan.num_subsamples) == (30, 40, 7)
    assert len(plan.notes) == 3 and all("as given" in n for n in plan.notes)
    text = plan.describe(50)
    assert "40 of 50 LRs" in text and "7 subsamples" in text and "num_steps=30" in text


def test_unknown_epoch_length_and_describe():
    est = CostEstimate(0.01, 1.0, 0.004, steps_per_epoch=None, batch_size=64)
    assert est.epoch_steps == UNKNOWN_EPOCH_STEPS
    text = plan_probes(est).describe(50)
    assert "unknown" in text and "1000 steps of 64" in text
    text = plan_probes(CNN).describe(50)
    assert "250 ms" in text and "391 steps of 128" in text and "until settled" in text


def test_only_one_probe():
    only_ld = plan_probes(CNN, range_test=False)
    both = plan_probes(CNN)
    assert (only_ld.lr_points or 50) >= both.lr_points
    only_rt = plan_probes(CNN, differential=False)
    assert only_rt.lr_points is None and only_rt.range_steps == RANGE_STEPS


def test_plans_are_sound_for_any_costs():
    rng = np.random.default_rng(0)
    for _ in range(200):
        step = 10 ** rng.uniform(-4, 0.5)
        est = CostEstimate(
            step_seconds=step,
            first_step_seconds=step * 10 ** rng.uniform(0, 3),
            forward_seconds=step * rng.uniform(0.05, 0.6),
            steps_per_epoch=int(10 ** rng.uniform(0.5, 4)),
            batch_size=32,
        )
        plan = plan_probes(est, budget_epochs=float(10 ** rng.uniform(-1, 1)))
        assert MIN_RANGE_STEPS <= plan.range_steps <= RANGE_STEPS
        assert plan.lr_points is None or plan.lr_points in LR_POINTS
        assert plan.budget_seconds >= MIN_SECONDS


def test_budget_for_trial():
    assert budget_for_trial(30) == pytest.approx(3.0)
    assert budget_for_trial(5) == 1.0 and budget_for_trial(None) == 1.0
    assert budget_for_trial(100, share=0.05) == pytest.approx(5.0)


def test_check_budget_takes_numpy_numbers_and_says_what_is_wrong():
    assert check_budget(np.int64(2)) == 2.0 and check_budget(np.float32(0.5)) == 0.5
    assert check_budget(None) is None
    for bad in (np.bool_(True), float("inf"), 0, -2, "1"):
        with pytest.raises(ValueError, match=r"finite number of epochs > 0.*or None"):
            check_budget(bad)
