"""kt_lr tuners end to end: tiny searches in a temporary directory."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import gc
import io
import json
import math
from contextlib import redirect_stdout

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from keras_tuner.engine.trial import Trial, TrialStatus

import kt_lr.tuners as kt_tuners
from kt_lr import LRConfig, LROracle, LRProbeWarning, LRTunerMixin
from kt_lr import _protocol as wire
from kt_lr import space as kt_lr_space
from kt_lr.distribute import distributed_role
from kt_lr.results import LRFinding

FAKE = dict(lr=3e-3, low=1e-3, high=1e-2)


@pytest.fixture(autouse=True)
def _fast_gc():
    """Keras Tuner runs gc.collect() on every build; freezing the (huge, long-lived)
    TensorFlow heap first makes those collections cheap. Behaviour is unchanged."""
    gc.freeze()
    yield


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=n)).astype("float32")
    return x, y[:, None]


def tiny_model(hp):
    lr = hp.Float("learning_rate", 1e-5, 1e-1, sampling="log")
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(lr), "mse")
    return model


class QuickModel(keras_tuner.HyperModel):
    """Builds a real tiny model but scores it without training (fast searches)."""

    def __init__(self, fail_on_build=None, stop_after_fits=None):
        super().__init__()
        self.builds = 0
        self.fits = 0
        self.fail_on_build = fail_on_build
        self.stop_after_fits = stop_after_fits

    def build(self, hp):
        self.builds += 1
        if self.fail_on_build == self.builds:
            raise RuntimeError("build exploded")
        return tiny_model(hp)

    def fit(self, hp, model, *args, **kwargs):
        self.fits += 1
        if self.stop_after_fits is not None and self.fits > self.stop_after_fits:
            raise KeyboardInterrupt("simulated interruption")
        lr = hp.get("learning_rate")
        score = abs(math.log10(lr) + 2.5) + hp.get("units") / 1000
        logs = {"loss": score, "val_loss": score}
        for callback in kwargs.get("callbacks", []):  # checkpoints, for Hyperband
            callback.set_model(model)
            callback.on_epoch_end(0, logs=dict(logs))
        return logs


@pytest.fixture
def fake_find_lr(monkeypatch):
    """Replace kt_lr.finder.find_lr by a recorder returning a fixed finding."""
    calls = []

    def fake(model, x, y=None, **kwargs):
        calls.append(dict(model=model, x=x, y=y, **kwargs))
        if isinstance(fake.result, BaseException):
            raise fake.result
        return fake.result

    fake.result = LRFinding(reasons=["fake"], **FAKE)
    fake.calls = calls
    if kt_tuners.finder is None:  # pragma: no cover - before finder.py existed
        import types

        monkeypatch.setattr(kt_tuners, "finder", types.SimpleNamespace(find_lr=fake))
    else:
        monkeypatch.setattr(kt_tuners.finder, "find_lr", fake)
    return fake


def lr_bounds(tuner):
    hp = next(h for h in tuner.oracle.get_space().space if h.name == "learning_rate")
    return hp.min_value, hp.max_value


def make(cls, tmp_path, hypermodel=None, name="p", **kwargs):
    kwargs.setdefault("objective", "val_loss")
    kwargs.setdefault("seed", 1)
    kwargs.setdefault("save_probe_plots", False)
    if cls is not kt_tuners.Hyperband:
        kwargs.setdefault("max_trials", 3)
    return cls(
        hypermodel or QuickModel(),
        directory=str(tmp_path),
        project_name=name,
        **kwargs,
    )


# ------------------------------------------------------------------ the drop-ins
@pytest.mark.parametrize(
    "cls, extra",
    [
        (kt_tuners.RandomSearch, {}),
        (kt_tuners.BayesianOptimization, {"num_initial_points": 2}),
        (kt_tuners.GridSearch, {}),
        (kt_tuners.Hyperband, {"max_epochs": 3}),
    ],
)
def test_drop_in_tuners_probe_once_then_search_the_narrowed_range(
    tmp_path, fake_find_lr, cls, extra
):
    x, y = data()
    tuner = make(cls, tmp_path, **extra)
    base = {
        kt_tuners.RandomSearch: keras_tuner.oracles.RandomSearchOracle,
        kt_tuners.BayesianOptimization: keras_tuner.oracles.BayesianOptimizationOracle,
        kt_tuners.GridSearch: keras_tuner.oracles.GridSearchOracle,
        kt_tuners.Hyperband: keras_tuner.oracles.HyperbandOracle,
    }[cls]
    assert isinstance(tuner.oracle, base) and isinstance(tuner.oracle, LROracle)
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    assert len(fake_find_lr.calls) == 1
    # the pick's budget is a trial's (Hyperband: max_epochs), ranked as trials are
    call = fake_find_lr.calls[0]
    assert call["epochs"] == (3 if cls is kt_tuners.Hyperband else 1)
    assert call["target"] == "best"
    assert call["budget"] == 1.0  # a tenth of a trial, at least one epoch
    trials = list(tuner.oracle.trials.values())
    if cls is not kt_tuners.Hyperband:
        assert len(trials) == 3
    assert trials and all(not t.trial_id.startswith("kt_lr") for t in trials)
    assert all(t.status == "COMPLETED" for t in trials)
    assert lr_bounds(tuner) == (1e-3, 1e-2)
    assert all(1e-3 <= t.hyperparameters.values["learning_rate"] <= 1e-2 for t in trials)
    best = tuner.oracle.get_best_trials(1)[0]
    assert not wire.is_probe_trial(best) and best.trial_id in tuner.oracle.trials
    report = tuner.lr_report()
    assert report.probes["*"].status == "done" and report.interval == (1e-3, 1e-2)
    folder = report.probes["*"].artifacts
    saved = json.load(open(os.path.join(folder, "finding.json")))
    assert saved["finding"]["lr"] == 3e-3 and folder.startswith(str(tmp_path))


def test_bayesian_search_uses_the_gp_after_the_probe(tmp_path, fake_find_lr):
    x, y = data()
    tuner = make(kt_tuners.BayesianOptimization, tmp_path, max_trials=4, num_initial_points=3)
    tuner.search(x, y, validation_data=(x, y), verbose=0)
    assert len(tuner.oracle.trials) == 4  # the 4th from the Gaussian process, no crash
    assert tuner.remaining_trials == 0


def test_keras_tuner_arguments_and_kt_lr_options_pass_through(tmp_path, fake_find_lr):
    hps = keras_tuner.HyperParameters()
    hps.Float("learning_rate", 1e-4, 1e-1, sampling="log")
    tuner = make(
        kt_tuners.RandomSearch,
        tmp_path,
        hyperparameters=hps,
        executions_per_trial=2,
        max_retries_per_trial=1,
        max_consecutive_failed_trials=5,
        tune_new_entries=True,
        allow_new_entries=True,
        max_model_size=10_000,
        overwrite=True,
        num_seeds=1,
        min_decades=2.0,
        widen=1.5,
        lr_hp_name="learning_rate",
        probe_options={"num_steps": 7, "batch_size": 8},
    )
    assert tuner.executions_per_trial == 2 and tuner.oracle.max_retries_per_trial == 1
    assert tuner.oracle.max_consecutive_failed_trials == 5 and tuner.oracle.max_trials == 3
    cfg = tuner.oracle.lr_config
    assert (cfg.num_seeds, cfg.min_decades, cfg.widen) == (1, 2.0, 1.5)
    x, y = data()
    tuner.search(x, y, validation_data=(x, y), verbose=0)
    call = fake_find_lr.calls[0]
    assert call["num_steps"] == 7 and call["batch_size"] == 8
    lo, hi = lr_bounds(tuner)
    assert math.log10(hi / lo) == pytest.approx(2.0)  # min_decades applied
    assert tuner.lr_report().probes["*"].seeds == [3e-3]


def test_lr_report_round_trips_through_plain_data(tmp_path, fake_find_lr):
    from kt_lr import LRReport

    x, y = data()
    tuner = make(kt_tuners.RandomSearch, tmp_path)
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    report = tuner.lr_report()
    assert report.probes and report.seeds
    back = LRReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert back.summary() == report.summary()
    assert back.to_frame().equals(report.to_frame())
    assert back.to_dict() == report.to_dict()


def test_probe_budget_is_a_share_of_the_trial_and_explicit_options_win(tmp_path, fake_find_lr):
    x, y = data()
    tuner = make(kt_tuners.RandomSearch, tmp_path, max_trials=1)
    tuner.search(x, y, validation_data=(x, y), epochs=30, verbose=0)
    call = fake_find_lr.calls[0]
    assert call["epochs"] == 30 and call["budget"] == pytest.approx(3.0)
    tuner = make(
        kt_tuners.RandomSearch,
        tmp_path,
        name="q",
        max_trials=1,
        probe_options={"budget": None, "epochs": 5},
    )
    tuner.search(x, y, validation_data=(x, y), epochs=30, verbose=0)
    call = fake_find_lr.calls[1]
    assert call["budget"] is None and call["epochs"] == 5  # the user's options win


class FloatModel(QuickModel):
    def fit(self, hp, model, *args, **kwargs):
        return super().fit(hp, model, *args, **kwargs)["loss"]


class MultiModel(QuickModel):
    def fit(self, hp, model, *args, **kwargs):
        logs = super().fit(hp, model, *args, **kwargs)
        return {**logs, "multi_objective": logs["loss"] + logs["val_loss"]}  # Keras Tuner's rule


@pytest.mark.parametrize(
    "objective, hypermodel",
    [(["loss", "val_loss"], MultiModel), (None, FloatModel)],
    ids=["multi-objective", "default-objective"],
)
def test_probe_satisfies_every_kind_of_objective(tmp_path, fake_find_lr, objective, hypermodel):
    x, y = data()
    tuner = make(kt_tuners.RandomSearch, tmp_path, hypermodel=hypermodel(), objective=objective)
    tuner.search(x, y, validation_data=(x, y), verbose=0)
    assert tuner.lr_report().probes["*"].status == "done" and len(tuner.oracle.trials) == 3
    assert lr_bounds(tuner) == (1e-3, 1e-2)


def test_bad_kt_lr_options_fail_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="num_seeds"):
        make(kt_tuners.RandomSearch, tmp_path, num_seeds=-2)
    with pytest.raises(ValueError, match="probe_options"):
        make(kt_tuners.RandomSearch, tmp_path, probe_options={"x": 1})
    assert not os.path.exists(tmp_path / "p")


def test_no_lr_hp_fails_at_search_with_the_line_to_add(tmp_path, fake_find_lr):
    def build(hp):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("u", 1, 4))])
        model.compile("adam", "mse")
        return model

    tuner = make(kt_tuners.RandomSearch, tmp_path, hypermodel=build)
    x, y = data()
    with pytest.raises(ValueError, match=r"hp\.Float\('learning_rate', 1e-5, 1e-1"):
        tuner.search(x, y, validation_data=(x, y))
    assert fake_find_lr.calls == []


# ------------------------------------------------------------------ any tuner class
class MyTuner(LRTunerMixin, keras_tuner.Tuner):
    pass


def test_mixin_with_a_user_built_lr_oracle(tmp_path, fake_find_lr):
    oracle = LROracle(
        keras_tuner.oracles.HyperbandOracle(objective="val_loss", max_epochs=3, seed=2),
        num_seeds=2,
    )
    tuner = MyTuner(oracle=oracle, hypermodel=QuickModel(), directory=str(tmp_path))
    assert tuner.oracle is oracle
    x, y = data()
    tuner.search(x, y, validation_data=(x, y), verbose=0)
    assert len(fake_find_lr.calls) == 1 and lr_bounds(tuner) == (1e-3, 1e-2)
    assert tuner.lr_report().probes["*"].seeds == [3e-3, 1e-3]  # mid point too close: edge


def test_mixin_upgrades_a_plain_oracle_and_refuses_double_options(tmp_path, fake_find_lr):
    plain = keras_tuner.oracles.RandomSearchOracle(objective="val_loss", max_trials=2)
    tuner = MyTuner(oracle=plain, hypermodel=QuickModel(), directory=str(tmp_path), num_seeds=1)
    assert tuner.oracle is plain and isinstance(plain, LROracle)
    assert plain.lr_config.num_seeds == 1
    wrapped = LROracle(keras_tuner.oracles.RandomSearchOracle(objective="val_loss"))
    with pytest.raises(ValueError, match="already an LROracle"):
        MyTuner(oracle=wrapped, hypermodel=QuickModel(), directory=str(tmp_path / "b"), widen=2)


def test_options_as_an_lr_config_or_as_keywords(tmp_path, fake_find_lr):
    config = LRConfig(num_seeds=1, trial_timeout=600)
    tuner = make(kt_tuners.RandomSearch, tmp_path, lr_config=config)
    assert tuner.oracle.lr_config == config and tuner.lr_config == config
    by_name = make(kt_tuners.RandomSearch, tmp_path, name="q", num_seeds=1, trial_timeout=600)
    assert by_name.oracle.lr_config == config  # every LRConfig field is a keyword
    with pytest.raises(ValueError, match="not both"):
        make(kt_tuners.RandomSearch, tmp_path, name="r", lr_config=config, num_seeds=1)
    assert not os.path.exists(tmp_path / "r")
    oracle = LROracle(keras_tuner.oracles.RandomSearchOracle(objective="val_loss"), config)
    same = MyTuner(
        oracle=oracle, hypermodel=QuickModel(), directory=str(tmp_path / "s"), num_seeds=1
    )
    assert same.oracle is oracle  # options that agree with the oracle's are harmless


# ------------------------------------------------------------------ data handed to the probe
def test_numpy_with_validation_split_and_batch_size(tmp_path, fake_find_lr):
    x, y = data(64)
    tuner = make(kt_tuners.RandomSearch, tmp_path, max_trials=1)
    weights = np.linspace(0.5, 1.5, 64).astype("float32")
    tuner.search(
        x, y, validation_split=0.25, batch_size=16, sample_weight=weights, epochs=1, verbose=0
    )
    call = fake_find_lr.calls[0]
    assert call["x"].shape == (48, 4) and call["y"].shape == (48, 1)
    np.testing.assert_array_equal(call["sample_weight"], weights[:48])
    xv, yv = call["validation_data"]
    np.testing.assert_array_equal(xv, x[48:])
    assert call["batch_size"] == 16 and call["verbose"] == 0
    assert isinstance(call["model"], keras.Model)
    seed = call["seed"]
    assert isinstance(seed, int)  # decided by the oracle, travels as a trial value


def test_numpy_without_validation(tmp_path, fake_find_lr):
    x, y = data(64)
    tuner = make(kt_tuners.RandomSearch, tmp_path, max_trials=1, objective="loss")
    tuner.search(x=x, y=y, verbose=0)
    call = fake_find_lr.calls[0]
    assert call["x"] is x and call["y"] is y and call["validation_data"] is None
    assert call["batch_size"] == 32


def test_tf_data_dataset_with_and_without_validation(tmp_path, fake_find_lr):
    x, y = data(64)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[:16], y[:16])).batch(16)
    tuner = make(kt_tuners.RandomSearch, tmp_path, max_trials=1)
    tuner.search(train, validation_data=val, verbose=0)
    call = fake_find_lr.calls[0]
    assert call["x"] is train and call["y"] is None and call["validation_data"] is val
    tuner = make(kt_tuners.RandomSearch, tmp_path, name="q", max_trials=1, objective="loss")
    tuner.search(train, verbose=0)
    assert fake_find_lr.calls[1]["validation_data"] is None


# ------------------------------------------------------------------ failing probes
@pytest.mark.parametrize(
    "result, reason",
    [
        (ValueError("The training data has 3 samples"), "3 samples"),
        (LRFinding(lr=float("nan"), low=float("nan"), high=float("nan"), reasons=[]), "non-finite"),
        (RuntimeError("loss was nan from the very first step"), "loss was nan"),
    ],
)
def test_failing_probe_warns_and_keeps_the_range(tmp_path, fake_find_lr, result, reason):
    fake_find_lr.result = result
    x, y = data()
    tuner = make(kt_tuners.RandomSearch, tmp_path)
    with pytest.warns(LRProbeWarning, match="Keeping the original range"):
        tuner.search(x, y, validation_data=(x, y), verbose=0)
    assert len(tuner.oracle.trials) == 3  # nothing lost
    assert lr_bounds(tuner) == (1e-5, 1e-1)
    probe = tuner.lr_report().probes["*"]
    assert probe.status == "failed" and reason in probe.error


def test_hypermodel_failing_on_the_probe_build(tmp_path, fake_find_lr):
    hm = QuickModel(fail_on_build=2)  # build 1 declares the space, build 2 is the probe's
    tuner = make(kt_tuners.RandomSearch, tmp_path, hypermodel=hm)
    x, y = data()
    with pytest.warns(LRProbeWarning, match="build exploded"):
        tuner.search(x, y, validation_data=(x, y), verbose=0)
    assert fake_find_lr.calls == [] and len(tuner.oracle.trials) == 3
    assert lr_bounds(tuner) == (1e-5, 1e-1)


def test_real_find_lr_on_too_little_data_falls_back(tmp_path):
    x, y = data(4)
    tuner = make(kt_tuners.RandomSearch, tmp_path, max_trials=1)
    with pytest.warns(LRProbeWarning, match="fewer than two batches"):
        tuner.search(x, y, validation_data=(x, y), batch_size=32, verbose=0)
    assert len(tuner.oracle.trials) == 1 and lr_bounds(tuner) == (1e-5, 1e-1)


# ------------------------------------------------------------------ resume
def test_interrupted_search_resumes_without_probing_again(tmp_path, fake_find_lr):
    x, y = data()
    hm = QuickModel(stop_after_fits=2)
    tuner = make(kt_tuners.RandomSearch, tmp_path, hypermodel=hm, max_trials=5)
    with pytest.raises(KeyboardInterrupt):
        tuner.search(x, y, validation_data=(x, y), verbose=0)
    assert len(fake_find_lr.calls) == 1
    resumed = make(kt_tuners.RandomSearch, tmp_path, max_trials=5)
    assert lr_bounds(resumed) == (1e-3, 1e-2)  # reloaded before any trial
    assert resumed.lr_report().probes["*"].status == "done"
    resumed.search(x, y, validation_data=(x, y), verbose=0)
    assert len(fake_find_lr.calls) == 1  # no second probe
    trials = resumed.oracle.trials
    assert len(trials) == 5 and all(t.status == "COMPLETED" for t in trials.values())
    seeds = resumed.lr_report().probes["*"].seeds
    lrs = [trials[i].hyperparameters.values["learning_rate"] for i in sorted(trials)]
    assert lrs[:3] == seeds  # the interrupted seed trial was retried, the rest followed


def test_rerun_with_more_trials_keeps_the_probe(tmp_path, fake_find_lr):
    x, y = data()
    make(kt_tuners.BayesianOptimization, tmp_path, max_trials=2).search(
        x, y, validation_data=(x, y), verbose=0
    )
    more = make(kt_tuners.BayesianOptimization, tmp_path, max_trials=4)
    more.search(x, y, validation_data=(x, y), verbose=0)
    assert len(fake_find_lr.calls) == 1 and len(more.oracle.trials) == 4
    assert lr_bounds(more) == (1e-3, 1e-2)


def test_interrupted_probe_runs_again_on_resume(tmp_path, fake_find_lr):
    x, y = data()
    fake_find_lr.result = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        make(kt_tuners.RandomSearch, tmp_path).search(x, y, validation_data=(x, y), verbose=0)
    fake_find_lr.result = LRFinding(reasons=["fake"], **FAKE)
    resumed = make(kt_tuners.RandomSearch, tmp_path)
    assert resumed.lr_report().probes["*"].status == "pending"  # was running: again
    resumed.search(x, y, validation_data=(x, y), verbose=0)
    assert len(fake_find_lr.calls) == 2 and lr_bounds(resumed) == (1e-3, 1e-2)


# ------------------------------------------------------------------ summaries and report
def test_summaries_show_the_narrowed_range(tmp_path, fake_find_lr):
    import matplotlib

    matplotlib.use("Agg")
    x, y = data()
    tuner = make(kt_tuners.RandomSearch, tmp_path, max_trials=2, save_probe_plots=True)
    tuner.search(x, y, validation_data=(x, y), verbose=0)
    assert os.path.exists(os.path.join(tuner.lr_report().probes["*"].artifacts, "finding.png"))
    out = io.StringIO()
    with redirect_stdout(out):
        tuner.search_space_summary()
        tuner.results_summary()
    text = out.getvalue()
    assert "'min_value': 0.001, 'max_value': 0.01" in text  # search_space_summary
    assert "search range now: [0.001, 0.01]" in text  # results_summary
    assert "Trial kt_lr_probe" not in text and "Trial 0 summary" in text
    report = tuner.lr_report()
    frame = report.to_frame()
    assert list(frame["key"]) == ["*"] and frame.loc[0, "lr"] == 3e-3
    assert report.plot().axes


def test_a_failing_plot_does_not_fail_the_probe(tmp_path, fake_find_lr, monkeypatch):
    def broken_plot(self):
        raise RuntimeError("no display")

    monkeypatch.setattr(LRFinding, "plot", broken_plot)
    x, y = data()
    tuner = make(kt_tuners.RandomSearch, tmp_path, max_trials=1, save_probe_plots=True)
    tuner.search(x, y, validation_data=(x, y), verbose=0)
    probe = tuner.lr_report().probes["*"]
    assert probe.status == "done"
    assert os.path.exists(os.path.join(probe.artifacts, "finding.json"))
    assert not os.path.exists(os.path.join(probe.artifacts, "finding.png"))


# ------------------------------------------------------------------ the real find_lr
PROBE = {"num_steps": 30, "num_subsamples": 10}
TINY_PROBE = {"num_steps": 15, "num_subsamples": 4, "verbose": 0}


class FitModel(keras_tuner.HyperModel):
    def build(self, hp):
        return tiny_model(hp)


def test_end_to_end_real_probe_is_reproducible(tmp_path):
    x, y = data(128)
    results = []
    for name in ("a", "b"):
        tuner = make(
            kt_tuners.RandomSearch,
            tmp_path,
            hypermodel=FitModel(),
            name=name,
            max_trials=1,
            probe_options=PROBE,
        )
        tuner.search(x, y, validation_split=0.25, epochs=1, batch_size=16, verbose=0)
        report = tuner.lr_report()
        probe = report.probes["*"]
        assert probe.status == "done" and probe.reasons
        assert 1e-5 <= report.interval[0] < report.interval[1] <= 1e-1
        assert len(tuner.oracle.trials) == 1
        assert os.path.exists(os.path.join(probe.artifacts, "finding.json"))
        values = [t.hyperparameters.values for t in tuner.oracle.trials.values()]
        results.append((report.interval, probe.lr, probe.seeds, values))
    assert results[0] == results[1]


def test_end_to_end_real_probe_on_a_dataset(tmp_path):
    x, y = data(128)
    train = tf.data.Dataset.from_tensor_slices((x[:96], y[:96])).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[96:], y[96:])).batch(16)
    tuner = make(
        kt_tuners.Hyperband,
        tmp_path,
        hypermodel=FitModel(),
        max_epochs=2,
        probe_options=PROBE,
    )
    tuner.search(train, validation_data=val, verbose=0)
    report = tuner.lr_report()
    assert report.probes["*"].status == "done"
    lo, hi = report.interval
    assert all(
        lo <= t.hyperparameters.values["learning_rate"] <= hi for t in tuner.oracle.trials.values()
    )


# ------------------------------------------------------------------ conditional spaces
class OptimizerBatchModel(keras_tuner.HyperModel):
    """Tunes the optimizer, the LR and the batch size (a range declared in build, used by
    fit: rates are scaled from the probe's batch size)."""

    def build(self, hp):
        lr = hp.Float("learning_rate", 1e-5, 1.0, sampling="log")
        optimizer = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[
            hp.Choice("optimizer", ["sgd", "adam"])
        ]
        hp.Int("batch_size", 8, 32, step=8)
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
        )
        model.compile(optimizer(lr), "mse")
        return model

    def fit(self, hp, model, *args, **kwargs):
        kwargs["batch_size"] = hp.get("batch_size")
        return model.fit(*args, **kwargs)


def test_real_probe_per_optimizer_and_lr_ranges_per_optimizer_and_batch_size(tmp_path):
    x, y = data(128)
    tuner = make(
        kt_tuners.RandomSearch,
        tmp_path,
        hypermodel=OptimizerBatchModel(),
        max_trials=4,
        num_seeds=1,
        probe_options=PROBE,
    )
    tuner.search(x, y, validation_split=0.25, epochs=1, verbose=0)
    oracle, report = tuner.oracle, tuner.lr_report()
    assert set(report.probes) == {"optimizer=sgd", "optimizer=adam"}
    for probe in report.probes.values():
        assert probe.status == "done" and probe.attempts == 1
        assert probe.batch_size == 8  # probed at the space's default batch size
    sgd, adam = report.probes["optimizer=sgd"], report.probes["optimizer=adam"]
    assert (sgd.narrowed_low, sgd.narrowed_high) != (adam.narrowed_low, adam.narrowed_high)
    # at batch size 32: SGD x4 (linear rule), Adam x2 (square-root rule), never above the
    # top of the interval probed at batch size 8
    for opt, probe, factor in (("sgd", sgd, 4.0), ("adam", adam, 2.0)):
        at8 = oracle.lr_interval_for({"optimizer": opt, "batch_size": 8})
        assert at8 == (probe.narrowed_low, probe.narrowed_high)
        top = min(1.0, max(probe.high, probe.narrowed_high))
        want = kt_lr_space.narrow_interval(probe.low * factor, probe.high * factor, 1e-5, top)
        at32 = oracle.lr_interval_for({"optimizer": opt, "batch_size": 32})
        assert at32 == pytest.approx((want.low, want.high))
        assert at32[1] <= top
    trials = list(oracle.trials.values())
    assert len(trials) == 4
    for t in trials:  # every trial inside its own optimizer's interval at its batch size
        v = t.hyperparameters.values
        low, high = oracle.lr_interval_for(v)
        assert low * (1 - 1e-9) <= v["learning_rate"] <= high * (1 + 1e-9), v
    best = tuner.get_best_hyperparameters(1)[0]
    low, high = oracle.lr_interval_for(best.values)
    assert low * (1 - 1e-9) <= best.get("learning_rate") <= high * (1 + 1e-9)


# ------------------------------------------------------------------ tuners written elsewhere
class TheirTuner(keras_tuner.Tuner):
    """A tuner class with its own run_trial, as AutoML code writes them."""

    def run_trial(self, trial, x, y, **kwargs):
        self.runs = getattr(self, "runs", 0) + 1
        lr = trial.hyperparameters.get("learning_rate")
        return {"val_loss": abs(math.log10(lr) + 2.5)}


class LRTheirTuner(LRTunerMixin, TheirTuner):
    pass


class OwnRunTrial(LRTunerMixin, keras_tuner.Tuner):
    def run_trial(self, trial, x, y, **kwargs):
        assert not wire.is_probe_trial(trial)
        lr = trial.hyperparameters.get("learning_rate")
        return {"val_loss": abs(math.log10(lr) + 2.5)}


@pytest.mark.parametrize("cls", [LRTheirTuner, OwnRunTrial])
def test_a_tuner_with_its_own_run_trial_gets_the_probe(tmp_path, fake_find_lr, cls):
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss", max_trials=3, seed=1)
    tuner = cls(oracle=oracle, hypermodel=QuickModel(), directory=str(tmp_path))
    x, y = data()
    tuner.search(x, y)
    assert len(fake_find_lr.calls) == 1 and lr_bounds(tuner) == (1e-3, 1e-2)
    assert len(tuner.oracle.trials) == 3
    if cls is LRTheirTuner:
        assert tuner.runs == 3  # their run_trial ran every ordinary trial, not the probe


# ------------------------------------------------------------------ distributed, in process
def test_idle_answers_back_off_exponentially(tmp_path, fake_find_lr, monkeypatch):
    tuner = make(kt_tuners.RandomSearch, tmp_path, idle_wait=0.3)
    answers = [TrialStatus.IDLE] * 5 + [TrialStatus.STOPPED]
    monkeypatch.setattr(
        tuner.oracle,
        "create_trial",
        lambda tuner_id: Trial(tuner.oracle.get_space(), status=answers.pop(0)),
    )
    sleeps = []
    monkeypatch.setattr(kt_tuners.time, "sleep", sleeps.append)
    tuner.search(*data(), verbose=0)
    assert sleeps == pytest.approx([0.05, 0.1, 0.2, 0.3, 0.3])
    with pytest.raises(ValueError, match="idle_wait"):
        make(kt_tuners.RandomSearch, tmp_path, name="q", idle_wait=-1)


def test_a_worker_ignores_overwrite_and_keeps_the_project(tmp_path, monkeypatch):
    project = tmp_path / "p"
    project.mkdir()
    (project / "oracle.json").write_text("{}")  # the chief's
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")  # never contacted here
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
    assert distributed_role() == "worker"
    with pytest.warns(UserWarning, match="overwrite=True is ignored on a distributed worker"):
        tuner = make(kt_tuners.RandomSearch, tmp_path, overwrite=True, num_seeds=1)
    assert (project / "oracle.json").exists()
    assert type(tuner.oracle).__name__ == "OracleClient"
    assert tuner.lr_config.num_seeds == 1  # read from its local LROracle
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert distributed_role() == "chief"


# ------------------------------------------------------------------ examples
@pytest.mark.slow  # 10-20 s on this machine; the default suite stays under 5 minutes
def test_digits_hyperband_example_with_tiny_settings(tmp_path):
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "examples", "digits_hyperband.py")
    spec = importlib.util.spec_from_file_location("digits_hyperband_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = io.StringIO()
    with redirect_stdout(out):
        tuner = example.main(str(tmp_path), max_epochs=2, probe_options=TINY_PROBE)
    report = tuner.lr_report()
    assert {k: p.status for k, p in report.probes.items()} == {
        "optimizer=sgd": "done",
        "optimizer=adam": "done",
    }
    for t in tuner.oracle.trials.values():
        v = t.hyperparameters.values
        low, high = tuner.oracle.lr_interval_for(v)
        assert low <= v["learning_rate"] <= high
    text = out.getvalue()
    assert "Learning-rate report" in text and "best val_accuracy" in text
