"""Models on several devices (issue 16, item 3): a model built under a ``tf.distribute``
strategy (what Keras Tuner's ``distribution_strategy=`` does for every trial) or under
``keras.distribution.DataParallel`` on JAX is probed like any other, and restored bit for
bit on every device.

Two logical CPU devices must be configured before TensorFlow / JAX initialise, so each
case runs in a fresh Python process (a few seconds of imports; the probes are tiny).
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)

COMMON = """
import json, os, sys, tempfile
sys.path[:0] = [{root!r}, {tests!r}]
import keras
import numpy as np
from conftest import make_regression
import kt_lr
from kt_lr import state

x, y = make_regression()
KW = dict(seed=0, verbose=0, num_steps=12, num_subsamples=2, lrs=np.geomspace(1e-4, 1.0, 8))
out = {{}}


def build(lr=0.01):
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", metrics=["mae"])
    return model


def probe_all(model, tag):
    found = kt_lr.find_lr(model, x, y, **KW)  # builds the optimizer if it was not
    before = state.snapshot(model)
    kt_lr.find_lr(model, x, y, **KW)  # leaves every variable (per device) as it was
    out[tag] = {{
        "restored": state.state_equal(before, state.snapshot(model)),
        "lr": found.lr,
        "deltas": found.differential.deltas.tolist(),
        "losses": found.range_test.losses.tolist(),
    }}
"""

TF_SCRIPT = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
{common}
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
probe_all(build(), "single")
with strategy.scope():
    model = build()
probe_all(model, "mirrored")  # outside the scope, the optimizer not built yet
model.fit(x, y, epochs=1, batch_size=64, verbose=0)  # moments; per-replica metric sums
probe_all(model, "trained")
with strategy.scope():
    probe_all(model, "inside_scope")
out["kinds"] = sorted({{type(v.value).__name__ for v in model.optimizer.variables}})
model.fit(x, y, epochs=1, batch_size=64, verbose=0)


def hypermodel(hp):
    return build(lr=hp.Float("learning_rate", 1e-5, 1.0, sampling="log"))


tuner = kt_lr.RandomSearch(
    hypermodel, objective="loss", max_trials=1, directory=tempfile.mkdtemp(),
    distribution_strategy=strategy, save_probe_plots=False, probe_options=KW,
)
tuner.search(x, y, epochs=1, verbose=0)
report = tuner.lr_report().probes["*"]
out["tuner"] = [report.status, report.error]
print("RESULT " + json.dumps(out))
"""

JAX_SCRIPT = """
import jax
{common}
probe_all(build(), "single")
parallel = keras.distribution.DataParallel(devices=jax.devices())
with parallel.scope():
    model = build()
    probe_all(model, "parallel")
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    probe_all(model, "trained")
keras.distribution.set_distribution(parallel)
probe_all(model, "global")
out["devices"] = len(jax.devices())
out["replicated"] = all(
    len(v.value.sharding.device_set) == 2
    for v in [*model.variables, *model.optimizer.variables]
)
model.fit(x, y, epochs=1, batch_size=64, verbose=0)
print("RESULT " + json.dumps(out))
"""


CASES = {
    "tensorflow": (TF_SCRIPT, {"KERAS_BACKEND": "tensorflow"}),
    "jax": (
        JAX_SCRIPT,
        {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    ),
}


@pytest.fixture(scope="module")
def runs():
    """Both processes start at once (they overlap on a multi-core machine); each test
    waits for its own."""
    common = COMMON.format(root=ROOT, tests=TESTS)
    procs = {}
    for name, (script, env) in CASES.items():
        if name == "jax" and importlib.util.find_spec("jax") is None:
            continue
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script).format(common=common)],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    yield procs
    for proc in procs.values():  # a test that failed early leaves its process behind
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _result(runs, name: str) -> dict:
    if name not in runs:
        pytest.skip(f"{name} is not installed")
    try:
        stdout, stderr = runs[name].communicate(timeout=600)
    except subprocess.TimeoutExpired:
        runs[name].kill()
        raise
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert runs[name].returncode == 0 and lines, stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


def _same_probe(a: dict, b: dict) -> None:
    assert a["lr"] == pytest.approx(b["lr"], rel=1e-4)
    np.testing.assert_allclose(a["deltas"], b["deltas"], rtol=1e-4, atol=1e-6)
    n = min(len(a["losses"]), len(b["losses"]))  # where it diverged may differ by a step
    np.testing.assert_allclose(a["losses"][:n], b["losses"][:n], rtol=1e-4)


def test_tf_mirrored_strategy_on_two_devices(runs):
    out = _result(runs, "tensorflow")
    for tag in ("single", "mirrored", "trained", "inside_scope"):
        assert out[tag]["restored"], tag
    # the same probe as on one device: every batch, split or not, gives the same step
    _same_probe(out["mirrored"], out["single"])
    assert out["kinds"] == ["MirroredVariable"]  # the optimizer's variables stay mirrored
    assert out["tuner"] == ["done", None]  # the search's probe no longer falls back


def test_jax_data_parallel_on_two_devices(runs):
    out = _result(runs, "jax")
    assert out["devices"] == 2
    for tag in ("single", "parallel", "trained", "global"):
        assert out[tag]["restored"], tag
    _same_probe(out["parallel"], out["single"])
    assert out["replicated"]  # restored values keep their layout on both devices
