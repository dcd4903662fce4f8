"""The corpus benchmark: curve regret on synthetic curves, the task specs, the grid rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.corpus import metric, truth
from benchmarks.corpus import tasks as ct


def _runs(fn, ks=range(-18, 1), seeds=3, noise=0.0, rng=None):
    """Synthetic runs on the 1/3-decade lattice: loss = exp(fn(log10 lr)) x noise."""
    rng = rng or np.random.default_rng(0)
    lrs, losses = [], []
    for k in ks:
        lr = 10 ** (k / 3)
        for _ in range(seeds):
            lrs.append(lr)
            losses.append(math.exp(fn(math.log10(lr)) + noise * rng.normal()))
    return np.array(lrs), np.array(losses)


def test_local_quadratic_is_exact_on_a_quadratic():
    x = np.linspace(-3, 3, 25)
    y = 0.7 * (x - 0.4) ** 2 - 1.0
    at = np.linspace(-2.5, 2.5, 11)
    np.testing.assert_allclose(metric.local_quadratic(x, y, at), 0.7 * (at - 0.4) ** 2 - 1.0)


def test_local_quadratic_widens_a_window_with_too_few_points():
    x = np.array([-3.0, 0.0, 3.0])
    y = x**2
    np.testing.assert_allclose(metric.local_quadratic(x, y, np.array([1.5])), [2.25])


def test_curve_minimum_and_regret_on_a_known_parabola():
    lrs, losses = _runs(lambda x: 0.5 * (x + 3.2) ** 2 - 2.0)
    curve = metric.fit_curve(lrs, losses, cap=math.exp(10))
    assert curve.cut is None
    assert abs(math.log10(curve.best_lr) + 3.2) < 0.02
    assert curve.regret(10**-3.2) == pytest.approx(1.0, abs=1e-3)
    # one decade off: exp(0.5 * 1^2)
    assert curve.regret(10**-2.2) == pytest.approx(math.exp(0.5), rel=0.02)
    assert curve.regret(10**-4.2) == pytest.approx(math.exp(0.5), rel=0.02)


def test_noisy_seeds_find_a_minimum_whose_true_regret_is_small():
    # where the curve is flat its minimum's location is uncertain, its regret is not:
    # 15% noise per run (more than seeds give), 3 seeds, 20 draws
    out = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        lrs, losses = _runs(lambda x: 0.4 * (x + 2.5) ** 2, seeds=3, noise=0.15, rng=rng)
        curve = metric.fit_curve(lrs, losses, cap=math.exp(10), step=0.02)
        out.append(math.exp(0.4 * (math.log10(curve.best_lr) + 2.5) ** 2))
    assert np.median(out) < 1.03 and max(out) < 1.3


def test_divergence_cut_makes_picks_at_or_above_it_diverged():
    def fn(x):
        return 0.5 * (x + 3) ** 2

    lrs, losses = _runs(fn, ks=range(-18, 4))
    losses[lrs >= 10 ** (-4 / 3)] = np.nan  # every seed diverges from 10^-1.33 up
    curve = metric.fit_curve(lrs, losses, cap=math.exp(6))
    assert curve.cut == pytest.approx(10 ** (-4 / 3))
    assert curve.regret(0.05) == math.inf
    assert curve.regret(curve.cut) == math.inf
    assert math.isfinite(curve.regret(0.04))
    assert abs(math.log10(curve.best_lr) + 3) < 0.05


def test_a_minority_of_diverged_seeds_is_no_cut():
    lrs, losses = _runs(lambda x: 0.5 * (x + 3) ** 2, ks=range(-18, 1))
    top = np.flatnonzero(lrs == lrs.max())
    losses[top[0]] = np.nan  # 1 of 3 seeds
    curve = metric.fit_curve(lrs, losses, cap=math.exp(20))
    assert curve.cut is None


def test_runs_no_better_than_the_untrained_model_count_as_failed():
    lrs, losses = _runs(lambda x: 0.5 * (x + 3) ** 2, ks=range(-18, 4))
    cap = math.exp(2.0)  # the untrained model's loss: everything above 10^-1 is worse
    curve = metric.fit_curve(lrs, losses, cap=cap)
    assert curve.cut is not None and 0.9 < curve.cut * 10 < 2.2


def test_picks_below_the_grid_score_at_its_lowest_lr_and_none_is_inf():
    lrs, losses = _runs(lambda x: 0.5 * (x + 3) ** 2)
    curve = metric.fit_curve(lrs, losses, cap=math.exp(20))
    assert curve.regret(1e-12) == pytest.approx(curve.regret(lrs.min()))
    assert curve.regret(None) == math.inf


def test_bootstrap_floor_is_one_without_noise_and_above_one_with_it():
    lrs, losses = _runs(lambda x: 0.5 * (x + 3) ** 2)
    assert metric.bootstrap_floor(lrs, losses, math.exp(20), draws=5) == pytest.approx(
        1.0, abs=1e-3
    )
    rng = np.random.default_rng(1)
    lrs, losses = _runs(lambda x: 0.05 * (x + 3) ** 2, noise=0.3, rng=rng)
    assert metric.bootstrap_floor(lrs, losses, math.exp(20), draws=10) > 1.0


def test_a_flat_curve_at_the_untrained_loss_is_degenerate():
    init = 2.3
    rng = np.random.default_rng(2)
    # every run ends at chance (within 1% noise) at every LR
    lrs, losses = _runs(lambda x: math.log(init), noise=0.01, rng=rng)
    curve = metric.fit_curve(lrs, losses, cap=init)
    assert metric.untrained_ratio(curve, init) > 0.97
    assert metric.degenerate(curve, init)
    # every run diverged (NaN): all count at the untrained loss, the curve is flat
    curve = metric.fit_curve(lrs, np.full_like(losses, np.nan), cap=init)
    assert metric.untrained_ratio(curve, init) == pytest.approx(1.0)
    assert metric.degenerate(curve, init)


def test_a_training_curve_is_not_degenerate():
    init = 2.3
    # trains to 0.1 x the untrained loss at its best LR, back to it away from the best
    lrs, losses = _runs(lambda x: math.log(init) + min(0.0, 0.8 * (x + 3) ** 2 - math.log(10)))
    curve = metric.fit_curve(lrs, losses, cap=init)
    assert metric.untrained_ratio(curve, init) == pytest.approx(0.1, rel=0.05)
    assert not metric.degenerate(curve, init)
    # a task that only gets to 0.8x (noisy labels) trains too; 0.95x does not
    for best, flagged in ((0.8, False), (0.95, True)):
        lrs, losses = _runs(
            lambda x, b=best: math.log(init) + math.log(b) * math.exp(-((x + 3) ** 2))
        )
        curve = metric.fit_curve(lrs, losses, cap=init)
        assert metric.degenerate(curve, init) is flagged
    # an unknown untrained loss flags nothing
    assert not metric.degenerate(curve, math.inf)


def test_spread():
    assert metric.spread([1e-3, 4e-3, 2e-3]) == pytest.approx(4.0)
    assert metric.spread([1e-3, None]) == math.inf


# ------------------------------------------------------------------------ task specs


def test_corpus_spans_what_the_issue_asks():
    specs = ct.get_specs()
    assert len(specs) >= 48
    assert len({s.name for s in specs}) == len(specs)
    assert {s.family for s in specs} == set(ct.FAMILIES)
    assert all(sum(s.family == f for s in specs) >= 4 for f in ct.FAMILIES)
    keras_optimizers = {
        "SGD", "SGD+momentum", "SGD+nesterov", "Adam", "AdamW", "Adamax", "Nadam",
        "RMSprop", "Adagrad", "Adadelta", "Lion", "Lamb", "Muon", "ScheduleFreeAdamW",
        "Adafactor", "Ftrl",
    }  # fmt: skip
    assert {s.optimizer_label() for s in specs} == keras_optimizers
    assert {"mse", "mae", "huber", "bce", "scce", "cce"} <= {s.loss for s in specs}
    assert min(s.batch_size for s in specs) == 16 and max(s.batch_size for s in specs) == 512
    assert min(s.epochs for s in specs) == 3 and max(s.epochs for s in specs) == 60
    assert {s.arch for s in specs} == set(ct.ARCHS)
    assert all(s.data in ct.DATA and s.arch in ct.ARCHS and s.loss in ct.LOSSES for s in specs)


def test_training_set_sizes_and_list_lines():
    sizes = {s.name: ct.train_samples(s) for s in ct.get_specs()}
    assert min(sizes.values()) == 300 and max(sizes.values()) == 50_000
    line = ct.list_line(ct.TASKS["digits_mlp_adam"]).split("\t")
    assert line == ["digits_mlp_adam", "digits_mlp", "Adam", "32", "20", "1437"]


def test_data_does_not_depend_on_anything_but_the_spec():
    spec = ct.TASKS["noisy_binary_nadam"]
    a = ct.DATA[spec.data](**spec.data_kwargs)
    b = ct.DATA[spec.data](**spec.data_kwargs)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("name", ["seq_gru_adam", "tokens_transformer_adamw", "digits_cnn_sfadamw"])
def test_models_build_with_their_optimizer_and_seed(name):
    spec = ct.TASKS[name]
    a = ct.build_model(spec, seed=3, learning_rate=1e-3)
    b = ct.build_model(spec, seed=3, learning_rate=1e-3)
    assert type(a.optimizer).__name__ == spec.optimizer
    assert float(a.optimizer.learning_rate) == pytest.approx(1e-3)
    for u, v in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(u.numpy(), v.numpy())


# ---------------------------------------------------------------------- grid rules


def test_lattice_and_keys():
    assert truth.lattice_lr(-9) == pytest.approx(1e-3)
    assert truth.parse_key(truth.run_key(-4, 2)) == (-4, 2)


def test_targets_final_and_best_epoch():
    curve = [1.0, 0.5, 0.7, math.nan]
    assert truth.final_loss(curve) == math.inf
    assert truth.best_loss(curve) == 0.5
    assert truth.final_loss([1.0, 0.8]) == 0.8


def test_failed_is_most_seeds_diverged_or_no_better_than_untrained():
    assert truth.failed([math.inf, math.inf, 0.1], init=1.0)
    assert truth.failed([1.2, 1.0, 0.1], init=1.0)
    assert not truth.failed([math.inf, 0.2, 0.1], init=1.0)


class _FakeTrainer:
    """Loss = exp(0.6 (log10 lr + 3)^2) x 0.1 for 2 epochs; diverges (NaN) above 0.5."""

    def initial(self, seed):
        return 2.0

    def run(self, lr, seed):
        x = math.log10(lr)
        v = 0.1 * math.exp(0.6 * (x + 3) ** 2) * (1 + 0.01 * seed)
        val = [math.nan, math.nan] if lr > 0.5 else [v * 1.1, v]
        return {"lr": lr, "val": val, "seconds": 0.0}


def test_grid_is_dense_around_the_best_and_extends_to_failure_and_no_improvement(tmp_path):
    spec = ct.TASKS["digits_mlp_adam"]
    tt = truth.TaskTruth(spec, tmp_path, log=lambda *_: None)
    tt.trainer = _FakeTrainer()
    rec = tt.complete()
    assert rec["done"] and (tmp_path / f"{spec.name}.json").exists()
    table = truth.point_table(rec, "final")
    bottom, top = tt._dense_block()
    # contiguous at 3 points per decade, 3+ seeds on every point of the dense block
    assert all(len(table[k]) >= 3 for k in range(bottom, top + 1))
    # above: extended until most seeds failed (here: worse than the untrained model)
    assert truth.failed(table[top], 2.0) and not truth.failed(table[top - 1], 2.0)
    # below: until the loss is 3x its minimum and still rising as the LR falls
    assert table[bottom][0] >= 3 * 0.1 and bottom < -9
    # 5 seeds at the 5 points around the best (1e-3, k = -9)
    assert all(len(table[k]) == 5 for k in range(-11, -6))
    # resuming a finished grid trains nothing
    tt2 = truth.TaskTruth(spec, tmp_path, log=lambda *_: None)
    tt2.trainer = None
    assert tt2.complete()["runs"].keys() == rec["runs"].keys()


def _row(regrets: dict, no_pick: dict, degenerate: bool = False) -> dict:
    t = {
        "regret": regrets,
        "no_pick": no_pick,
        "interval_hits": [],
        "floor": None,
        "degenerate": degenerate,
    }
    return {"family": "series", "targets": {"final": t, "best": t}, "spread": {}}


def test_report_counts_diverged_and_no_pick_apart_and_leaves_degenerate_tasks_out():
    from benchmarks.corpus import report

    inf = math.inf
    m = report.KT_LR
    rows = {
        "ok": _row({m: [1.1, 1.2, 1.3]}, {m: [False] * 3}),
        "div": _row({m: [inf, inf, 1.5]}, {m: [False] * 3}),
        "refused": _row({m: [inf, inf, inf]}, {m: [True] * 3}),
        "flat": _row({m: [50.0] * 3}, {m: [False] * 3}, degenerate=True),
    }
    assert report.task_outcome(rows["ok"], "final", m) == ("finite", 1.2)
    assert report.task_outcome(rows["div"], "final", m)[0] == "diverged"
    assert report.task_outcome(rows["refused"], "final", m)[0] == "no pick"
    line = next(r for r in report.summary(rows, "final") if r[0] == m)
    # median of (1.2, inf, inf) with the degenerate task left out; worst finite is 'ok'
    assert line[1] == inf
    assert line[2] == "1.2 (ok)"
    assert (line[3], line[4]) == (1, 1)
    assert line[5] == 1.5  # worst finite single probe; the degenerate task's 50 not counted
    assert line[-1] == 3
