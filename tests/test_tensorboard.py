"""Issue 16, item 12: the probe's curves in TensorBoard, next to the trials' logs."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import gc
import glob

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import kt_lr.tuners as kt_tuners
from kt_lr import suggest
from kt_lr.tensorboard_log import tensorboard_log_dirs


@pytest.fixture(autouse=True)
def _fast_gc():
    gc.freeze()  # Keras Tuner collects garbage on every build; see test_tuners.py
    yield


def build(hp):
    lr = hp.Float("learning_rate", 1e-5, 1e-1, sampling="log")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(lr), "mse")
    return model


def data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=n)).astype("float32")
    return x, y[:, None]


def read_scalars(run_dir):
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0, "tensors": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    out, plugins = {}, {}  # TF2 writes every summary as a tensor, named by its plugin
    for tag in tags["tensors"]:
        events = acc.Tensors(tag)
        plugins[tag] = acc.SummaryMetadata(tag).plugin_data.plugin_name
        if plugins[tag] == "text":
            out[tag] = tf.make_ndarray(events[0].tensor_proto).item().decode()
        elif plugins[tag] == "scalars":
            out[tag] = {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in events}
    return out, plugins


def test_the_probe_writes_its_curves_under_the_trials_log_directory(tmp_path):
    logs = tmp_path / "logs"
    tuner = kt_tuners.RandomSearch(
        build,
        objective="val_loss",
        max_trials=1,
        seed=1,
        directory=str(tmp_path),
        project_name="tb",
        probe_options={"num_steps": 20, "num_subsamples": 6, "verbose": 0},
    )
    x, y = data()
    tuner.search(
        x,
        y,
        validation_split=0.25,
        epochs=1,
        batch_size=16,
        verbose=0,
        callbacks=[keras.callbacks.TensorBoard(log_dir=str(logs))],
    )
    probe = tuner.lr_report().probes["*"]
    run_dir = logs / probe.trial_id / "execution0"  # Keras Tuner's layout for a trial
    assert glob.glob(str(run_dir / "events.out.tfevents.*"))
    trial_dirs = [d for d in os.listdir(logs) if d != probe.trial_id]
    assert trial_dirs  # the ordinary trial's logs sit next to the probe's
    values, plugins = read_scalars(str(run_dir))
    lrs = values["kt_lr/range_test/learning_rate"]
    losses = values["kt_lr/range_test/loss"]
    assert sorted(lrs) == list(range(len(lrs))) and len(lrs) >= 10  # step = index
    assert all(lrs[i] < lrs[i + 1] for i in range(len(lrs) - 1))  # the sweep's rates
    assert set(losses) <= set(lrs)
    # the smoothed curve is the one the decision read (cut where the loss diverged)
    steps = sorted(losses)
    _, _, smooth = suggest.prepare_curve(
        np.array([lrs[s] for s in steps]), np.array([losses[s] for s in steps])
    )
    got = values["kt_lr/range_test/smoothed_loss"]
    np.testing.assert_allclose([got[i] for i in sorted(got)], smooth[: len(got)], rtol=1e-5)
    mean = values["kt_lr/loss_differential/mean_delta_loss"]
    low, high = values["kt_lr/loss_differential/ci_low"], values["kt_lr/loss_differential/ci_high"]
    grid = values["kt_lr/loss_differential/learning_rate"]
    assert set(mean) <= set(grid) and len(grid) >= 10
    assert all(low[s] <= mean[s] <= high[s] for s in mean if s in low and s in high)
    assert f"learning rate {probe.lr:.3g}" in values["kt_lr/finding"]
    assert plugins["kt_lr/finding_plot"] == "images"  # the plot, on log axes


def test_without_a_tensorboard_callback_nothing_is_written(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr("kt_lr.tensorboard_log.write_finding", lambda *a, **k: written.append(a))
    from kt_lr.results import LRFinding

    monkeypatch.setattr(
        kt_tuners.finder,
        "find_lr",
        lambda *a, **k: LRFinding(lr=3e-3, low=1e-3, high=1e-2, reasons=["fake"]),
    )
    tuner = kt_tuners.RandomSearch(
        build, objective="loss", max_trials=1, directory=str(tmp_path), save_probe_plots=False
    )
    x, y = data(32)
    tuner.search(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.EarlyStopping()])
    assert written == []
    assert tensorboard_log_dirs([keras.callbacks.TensorBoard(log_dir="a"), object()]) == ["a"]
