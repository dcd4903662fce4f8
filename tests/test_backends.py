"""kt_lr on whichever Keras backend this process runs (KERAS_BACKEND).

Run once per backend:
``KERAS_BACKEND=jax python -m pytest -q tests/test_backends.py``, then ``torch`` and
``tensorflow``. The cross-backend check (``-m slow``) starts the other installed backends
in subprocesses and compares their answers on the same data and initial weights.
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import make_model

import kt_lr
from kt_lr import state
from kt_lr.data import BatchStream
from kt_lr.engines import get_engine

pytestmark = pytest.mark.backend
BACKEND = keras.backend.backend()
LRS = np.geomspace(1e-4, 3.0, 9)
OPTIMIZERS = {
    "sgd_momentum": lambda: keras.optimizers.SGD(0.01, momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(1e-3),
    "adamw": lambda: keras.optimizers.AdamW(1e-3, weight_decay=0.05),
    "rmsprop": lambda: keras.optimizers.RMSprop(1e-3, momentum=0.5),
    "lion": lambda: keras.optimizers.Lion(1e-4),
}
PROBES = {
    "range_test": lambda m, x, y, **kw: kt_lr.range_test(m, x, y, num_steps=20, **kw),
    "loss_differential": lambda m, x, y, **kw: kt_lr.loss_differential(
        m, x, y, lrs=LRS, num_subsamples=3, **kw
    ),
    "find_lr": lambda m, x, y, **kw: kt_lr.find_lr(m, x, y, num_steps=20, num_subsamples=3, **kw),
}


def _trained(optimizer, x, y, **model_kw):
    """A model whose optimizer state (moments, momentum, iterations) is not zero."""
    model = make_model(optimizer, **model_kw)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    return model


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, i):
        sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[sl], self.y[sl]


# -- the affine fast path against one real step per LR ----------------------------------
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_affine_agrees_with_brute_force(data, name):
    x, y = data
    model = _trained(OPTIMIZERS[name](), x, y)
    kw = {"lrs": LRS, "num_subsamples": 3, "seed": 3, "verbose": 0}
    fast = kt_lr.loss_differential(model, x, y, **kw)
    slow = kt_lr.loss_differential(model, x, y, method="brute_force", **kw)
    assert fast.method == "affine" and slow.method == "brute_force"
    assert np.isfinite(fast.deltas).all()
    np.testing.assert_allclose(fast.base_losses, slow.base_losses, rtol=1e-5)
    np.testing.assert_allclose(fast.deltas, slow.deltas, rtol=1e-4, atol=1e-5)


def _real_step_deltas(model, batch, lrs):
    """ΔL of one real ``train_on_batch`` step per LR, on a copy of model and optimizer."""
    xb, yb, _ = batch
    out = []
    for lr in lrs:
        twin = keras.models.clone_model(model)
        twin.compile(
            optimizer=type(model.optimizer).from_config(model.optimizer.get_config()),
            loss=model.loss,
        )
        twin.set_weights(model.get_weights())
        twin.optimizer.build(twin.trainable_variables)
        for mine, theirs in zip(twin.optimizer.variables, model.optimizer.variables, strict=True):
            # a copy: JAX's train step donates (deletes) the buffers it is given
            mine.assign(keras.ops.convert_to_numpy(theirs.value))
        twin.optimizer.learning_rate.assign(float(lr))
        before = twin.test_on_batch(xb, yb)
        twin.train_on_batch(xb, yb)
        out.append(twin.test_on_batch(xb, yb) - before)
    return np.array(out)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: keras.optimizers.Adam(1e-3), id="adam"),
        pytest.param(
            lambda: keras.optimizers.SGD(1e-2, momentum=0.9, loss_scale_factor=128.0),
            id="sgd_loss_scaled",
        ),
    ],
)
def test_differential_is_what_a_real_training_step_gives(data, make):
    """Against Keras's own train step on this backend (a Dense model: training=True or
    False computes the same loss)."""
    x, y = data
    model = _trained(make(), x, y)
    lrs = np.array([1e-3, 3e-2, 1.0])
    res = kt_lr.loss_differential(model, x, y, lrs=lrs, num_subsamples=2, seed=3, verbose=0)
    assert res.method == "affine"
    ref = _real_step_deltas(model, BatchStream(x, y, batch_size=32, seed=3).random_batch(), lrs)
    scale = np.abs(res.base_losses[0]) + np.abs(ref)
    np.testing.assert_array_less(np.abs(res.deltas[0] - ref), 1e-4 * scale + 1e-6)


@pytest.mark.parametrize("layers", [{"dropout": 0.3}, {"batchnorm": True}])
def test_affine_agrees_with_random_and_stateful_layers(data, layers):
    """Dropout masks and BatchNorm statistics are the same for every evaluation."""
    x, y = data
    model = _trained(keras.optimizers.Adam(1e-3), x, y, **layers)
    kw = {"lrs": LRS, "num_subsamples": 2, "seed": 5, "verbose": 0, "holdout": True}
    fast = kt_lr.loss_differential(model, x, y, **kw)
    slow = kt_lr.loss_differential(model, x, y, method="brute_force", **kw)
    assert fast.method == "affine"
    np.testing.assert_allclose(fast.deltas, slow.deltas, rtol=1e-4, atol=1e-5)


def test_non_affine_optimizer_falls_back(data):
    x, y = data
    model = _trained(keras.optimizers.Adafactor(), x, y)
    res = kt_lr.loss_differential(model, x, y, lrs=LRS, num_subsamples=2, seed=0, verbose=0)
    assert res.method == "brute_force"
    assert any("not affine" in r for r in res.reasons)
    with pytest.raises(RuntimeError, match="not affine"):
        kt_lr.loss_differential(
            model, x, y, lrs=LRS, num_subsamples=2, seed=0, method="affine", verbose=0
        )


def test_engine_is_this_backends_and_cached(data):
    x, y = data
    model = _trained(keras.optimizers.Adam(1e-3), x, y)
    engine = get_engine(model)
    assert get_engine(model) is engine
    expected = {"tensorflow": "_TFEngine", "jax": "JaxEngine", "torch": "TorchEngine"}
    assert type(engine).__name__ == expected[BACKEND]


def test_only_this_backends_engine_module_is_imported(data):
    x, y = data
    kt_lr.loss_differential(make_model(), x, y, lrs=LRS, num_subsamples=2, verbose=0)
    modules = {b: f"kt_lr.engines.{b}" for b in ("tensorflow", "jax", "torch")}
    assert modules.pop(BACKEND) in sys.modules
    assert not set(modules.values()) & set(sys.modules)


# -- the model is left exactly as it was -----------------------------------------------
@pytest.mark.parametrize("probe", sorted(PROBES))
def test_probes_restore_bit_for_bit(data, probe):
    x, y = data
    model = _trained(keras.optimizers.Adam(1e-3), x, y, batchnorm=True, dropout=0.2)
    before = state.snapshot(model)
    PROBES[probe](model, x, y, seed=0, verbose=0)
    assert state.state_equal(before, state.snapshot(model))
    # and it still trains afterwards
    loss = model.train_on_batch(x[:32], y[:32])
    assert np.isfinite(np.asarray(loss)).all()


@pytest.mark.parametrize("method", ["affine", "brute_force"])
def test_engine_calls_leave_variables_untouched(data, method):
    """The engine entry points on their own, outside ``state.preserved``."""
    x, y = data
    model = _trained(keras.optimizers.AdamW(1e-3, weight_decay=0.05), x, y, batchnorm=True)
    engine = get_engine(model)
    before = state.snapshot(model)
    xb, yb = x[:32], y[:32]
    if method == "affine":
        check = np.array([1e-2, 3.0], np.float32)
        stack = [xb[None], yb[None], None, xb[None], yb[None], None]
        bases, losses, devs = engine.affine(*stack, LRS.astype(np.float32), check)
        assert bases.shape == (1,) and losses.shape == (1, LRS.size) and devs.shape == (1,)
        assert float(devs[0]) < 1e-3
    else:
        base, after = engine.step(xb, yb, None, xb, yb, None, np.float32(1e-2))
        assert np.isfinite(float(base)) and np.isfinite(float(after))
    assert state.state_equal(before, state.snapshot(model))


def test_engine_gives_each_subsample_the_same_answer_in_any_stack(data):
    """A shorter stack (JAX pads it to the compiled length) answers like a longer one."""
    x, y = data
    model = _trained(keras.optimizers.Adam(1e-3), x, y)
    engine = get_engine(model)
    xs, ys = x[:96].reshape(3, 32, 8), y[:96].reshape(3, 32, 1)
    grid, check = LRS.astype(np.float32), np.array([1e-2, 3.0], np.float32)
    three = engine.affine(xs, ys, None, xs, ys, None, grid, check)
    two = engine.affine(xs[1:], ys[1:], None, xs[1:], ys[1:], None, grid, check)
    for full, part in zip(three, two, strict=True):
        assert len(part) == 2
        np.testing.assert_allclose(part, full[1:], rtol=1e-6)


# -- bad input ------------------------------------------------------------------------
@pytest.mark.parametrize("probe", sorted(PROBES))
def test_bad_input(data, probe):
    x, y = data
    run = PROBES[probe]
    uncompiled = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compile"):
        run(uncompiled, x, y, verbose=0)
    model = _trained(keras.optimizers.Adam(1e-3), x, y)
    before = state.snapshot(model)
    with pytest.raises(ValueError, match="empty"):
        run(model, x[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match="input shape"):
        run(model, x[:, :5], y, verbose=0)
    with pytest.raises(ValueError, match="same length"):
        run(model, x, y[:100], verbose=0)
    assert state.state_equal(before, state.snapshot(model))


# -- find_lr and the input kinds ------------------------------------------------------
def test_find_lr_gives_a_finite_lr_inside_its_interval(data):
    x, y = data
    model = make_model(keras.optimizers.Adam(1e-3))
    finding = kt_lr.find_lr(
        model, x, y, num_steps=40, num_subsamples=10, end_lr=3.0, seed=0, verbose=0
    )
    assert finding.lr is not None and np.isfinite(finding.lr)
    assert finding.low is not None and finding.high is not None
    assert finding.low <= finding.lr <= finding.high


def test_pydataset_input(data):
    x, y = data
    model = _trained(keras.optimizers.Adam(1e-3), x, y)
    before = state.snapshot(model)
    rt = kt_lr.range_test(model, _Batches(x, y, 32), num_steps=12, verbose=0)
    ld = kt_lr.loss_differential(model, _Batches(x, y, 32), lrs=LRS, num_subsamples=3, verbose=0)
    assert len(rt.lrs) > 0 and np.isfinite(rt.losses).any()
    assert ld.method == "affine" and np.isfinite(ld.deltas).all()
    assert state.state_equal(before, state.snapshot(model))


@pytest.mark.skipif(BACKEND != "torch", reason="torch DataLoader input needs KERAS_BACKEND=torch")
def test_torch_dataloader_input(data):
    import torch

    x, y = data
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=32,
        shuffle=False,
    )
    model = _trained(keras.optimizers.Adam(1e-3), x, y)
    before = state.snapshot(model)
    finding = kt_lr.find_lr(model, loader, num_steps=12, num_subsamples=3, seed=0, verbose=0)
    assert finding.lr is not None and np.isfinite(finding.lr)
    assert state.state_equal(before, state.snapshot(model))
    # the same batches from a PyDataset give the same differentials
    kw = {"lrs": LRS, "num_subsamples": 3, "verbose": 0}
    from_loader = kt_lr.loss_differential(model, loader, **kw)
    from_pydataset = kt_lr.loss_differential(model, _Batches(x, y, 32), **kw)
    np.testing.assert_allclose(from_loader.deltas, from_pydataset.deltas, rtol=1e-6)


# -- nested inputs: dicts and lists of arrays, as fit takes them ---------------------------
def _two_input_model(as_dict):
    keras.utils.set_random_seed(1)
    a, b = keras.Input((5,), name="a"), keras.Input((3,), name="b")
    h = keras.layers.Concatenate()([keras.layers.Dense(8, activation="tanh")(a), b])
    model = keras.Model({"a": a, "b": b} if as_dict else [a, b], keras.layers.Dense(1)(h))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def _two_inputs(n=256):
    rng = np.random.default_rng(0)
    xa = rng.normal(size=(n, 5)).astype("float32")
    xb = rng.normal(size=(n, 3)).astype("float32")
    y = (xa[:, :1] - xb[:, 1:2]).astype("float32")
    return xa, xb, y


def test_batches_keep_the_structure_of_nested_inputs():
    xa, xb, y = _two_inputs()
    sw = np.ones(len(y), "float32")
    x_b, y_b, sw_b = BatchStream({"b": xb, "a": xa}, y, sample_weight=sw, seed=0).next_batch()
    assert isinstance(x_b, dict) and list(x_b) == ["b", "a"]
    assert x_b["a"].shape == (32, 5) and x_b["b"].shape == (32, 3)
    assert y_b.shape == (32, 1) and sw_b.shape == (32,)
    x_l, y_l, sw_l = BatchStream([xa, xb], y, seed=0).next_batch()
    assert isinstance(x_l, list) and [t.shape for t in x_l] == [(32, 5), (32, 3)]
    assert sw_l is None
    np.testing.assert_array_equal(x_l[0], x_b["a"])
    with pytest.raises(ValueError, match="same length"):
        BatchStream({"a": xa, "b": xb[:100]}, y)


@pytest.mark.parametrize("as_dict", [True, False], ids=["dict", "list"])
def test_nested_inputs_through_both_probes(as_dict):
    xa, xb, y = _two_inputs()
    x = {"b": xb, "a": xa} if as_dict else [xa, xb]
    sw = np.linspace(0.5, 1.5, len(y)).astype("float32")
    model = _two_input_model(as_dict)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    before = state.snapshot(model)
    kw = {"lrs": LRS, "num_subsamples": 3, "seed": 2, "verbose": 0, "sample_weight": sw}
    fast = kt_lr.loss_differential(model, x, y, holdout=True, **kw)
    slow = kt_lr.loss_differential(model, x, y, holdout=True, method="brute_force", **kw)
    assert fast.method == "affine" and np.isfinite(fast.deltas).all()
    np.testing.assert_allclose(fast.deltas, slow.deltas, rtol=1e-4, atol=1e-5)
    rt = kt_lr.range_test(model, x, y, num_steps=12, seed=0, verbose=0, validation_data=(x, y))
    assert np.isfinite(rt.losses).all() and np.isfinite(rt.val_losses).all()
    assert state.state_equal(before, state.snapshot(model))
    if as_dict:  # the order of the dict's keys does not matter
        again = kt_lr.loss_differential(model, {"a": xa, "b": xb}, y, holdout=True, **kw)
        np.testing.assert_array_equal(again.deltas, fast.deltas)


# -- torch specifics --------------------------------------------------------------------
@pytest.mark.skipif(BACKEND != "torch", reason="torch engine only")
def test_torch_grid_loop_matches_vmap(data, monkeypatch):
    """When torch.func.vmap cannot batch a model, the Python loop gives the same answer."""
    import torch

    x, y = data
    model = _trained(keras.optimizers.Adam(1e-3), x, y, dropout=0.3)
    kw = {"lrs": LRS, "num_subsamples": 2, "seed": 1, "verbose": 0}
    batched = kt_lr.loss_differential(model, x, y, **kw)
    assert get_engine(model)._vmap_ok is True
    fresh = _trained(keras.optimizers.Adam(1e-3), x, y, dropout=0.3)
    fresh.set_weights(model.get_weights())

    def no_vmap(*args, **kwargs):
        raise RuntimeError("vmap unavailable")

    monkeypatch.setattr(torch.func, "vmap", no_vmap)
    looped = kt_lr.loss_differential(fresh, x, y, **kw)
    assert get_engine(fresh)._vmap_ok is False
    np.testing.assert_allclose(batched.deltas, looped.deltas, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(BACKEND != "torch", reason="torch engine only")
def test_torch_differential_leaves_global_generator_alone(data):
    import torch

    x, y = data
    model = _trained(keras.optimizers.Adam(1e-3), x, y, dropout=0.3)
    rng = torch.get_rng_state()
    kt_lr.loss_differential(model, x, y, lrs=LRS, num_subsamples=2, verbose=0)
    kt_lr.loss_differential(model, x, y, lrs=LRS, num_subsamples=2, method="brute_force", verbose=0)
    assert torch.equal(rng, torch.get_rng_state())


@pytest.mark.skipif(BACKEND != "torch", reason="torch only")
def test_torch_range_test_leaves_global_generator_alone(data):
    import torch

    x, y = data
    model = _trained(keras.optimizers.Adam(1e-3), x, y, dropout=0.3)
    rng = torch.get_rng_state()
    kt_lr.range_test(model, x, y, num_steps=10, verbose=0)
    assert torch.equal(rng, torch.get_rng_state())


# -- the same answers on every backend ----------------------------------------------------
_CROSS_SCRIPT = r"""
import json, sys
import numpy as np, keras
sys.path.insert(0, sys.argv[2])
from conftest import make_model, make_regression
import kt_lr
weights = list(np.load(sys.argv[1]).values())
x, y = make_regression()
model = make_model(keras.optimizers.Adam(1e-3))
model.set_weights(weights)
ld = kt_lr.loss_differential(model, x, y, lrs=np.geomspace(1e-4, 3.0, 9), num_subsamples=4,
                             seed=0, verbose=0)
f = kt_lr.find_lr(model, x, y, num_steps=40, num_subsamples=10, end_lr=3.0, seed=0, verbose=0)
print("RESULT" + json.dumps({"deltas": np.nan_to_num(ld.deltas).tolist(),
                             "find_lr": [f.lr, f.low, f.high]}))
"""


def _installed(backend):
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    return importlib.util.find_spec(module) is not None


@pytest.mark.slow
def test_same_answers_on_every_backend(tmp_path):
    backends = [b for b in ("tensorflow", "jax", "torch") if _installed(b)]
    if len(backends) < 2:
        pytest.skip("needs at least two Keras backends installed")
    weights = make_model(keras.optimizers.Adam(1e-3)).get_weights()
    path = tmp_path / "weights.npz"
    np.savez(path, *weights)
    here = os.path.dirname(os.path.abspath(__file__))
    out = {}
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(
            [sys.executable, "-c", _CROSS_SCRIPT, str(path), here],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT"))
        out[backend] = json.loads(line[len("RESULT") :])
    ref = out[backends[0]]
    for backend in backends[1:]:
        np.testing.assert_allclose(out[backend]["deltas"], ref["deltas"], rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(out[backend]["find_lr"], ref["find_lr"], rtol=1e-2)


def test_drop_in_search_and_resume_on_this_backend(data, tmp_path):
    """A kt_lr search completes on this backend; overwrite=False resumes without re-probing."""
    x, y = data

    def build(hp):
        model = keras.Sequential(
            [
                keras.Input((x.shape[1],)),
                keras.layers.Dense(hp.Choice("units", [4, 8])),
                keras.layers.Dense(1),
            ]
        )
        lr = hp.Float("learning_rate", 1e-6, 1.0, sampling="log")
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
        return model

    def tuner(max_trials, overwrite):
        return kt_lr.RandomSearch(
            build,
            objective="val_loss",
            max_trials=max_trials,
            seed=0,
            directory=str(tmp_path),
            project_name="p",
            overwrite=overwrite,
            probe_options={"num_steps": 20, "num_subsamples": 4, "verbose": 0},
        )

    first = tuner(2, True)
    first.search(x, y, validation_split=0.25, epochs=1, batch_size=32, verbose=0)
    report = first.lr_report()
    (probe,) = report.probes.values()
    assert probe.status == "done" and probe.narrowed_low > 1e-6
    low, high = report.interval
    assert len(first.oracle.trials) == 2
    for t in first.oracle.trials.values():
        assert low <= t.hyperparameters.values["learning_rate"] <= high

    resumed = tuner(3, False)
    resumed.search(x, y, validation_split=0.25, epochs=1, batch_size=32, verbose=0)
    assert len(resumed.oracle.trials) == 3
    again = resumed.lr_report()
    assert again.interval == report.interval
    assert [p.trial_id for p in again.probes.values()] == [probe.trial_id]
