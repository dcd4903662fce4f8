import keras
import numpy as np
import pytest
from conftest import make_model

import kt_lr
from kt_lr import state


def _full_state(model):
    return state.snapshot(model)


@pytest.mark.parametrize(
    "opt",
    [
        lambda: keras.optimizers.SGD(0.01, momentum=0.9),
        lambda: keras.optimizers.Adam(1e-3),
    ],
)
@pytest.mark.parametrize("probe", ["range_test", "loss_differential", "find_lr"])
def test_probes_leave_model_bit_for_bit(data, opt, probe):
    x, y = data
    model = make_model(opt(), batchnorm=True, dropout=0.1)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)  # non-trivial optimizer state
    before = _full_state(model)
    lr_before = float(model.optimizer.learning_rate)
    np_state = np.random.get_state()[1].copy()
    fn = getattr(kt_lr, probe)
    opts = {"num_steps": 20} if probe != "loss_differential" else {}
    if probe != "range_test":
        opts["num_subsamples"] = 5
    fn(model, x, y, verbose=0, seed=0, **opts)
    after = _full_state(model)
    assert state.state_equal(before, after)
    assert float(model.optimizer.learning_rate) == lr_before
    assert int(model.optimizer.iterations) == int(before.optimizer_values[0])
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)


def test_restored_even_when_probe_raises(data, monkeypatch):
    x, y = data
    model = make_model(keras.optimizers.Adam(1e-3))
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    before = _full_state(model)
    calls = {"n": 0}
    real = model.train_on_batch

    def boom(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("interrupted")
        return real(*a, **k)

    monkeypatch.setattr(model, "train_on_batch", boom)
    with pytest.raises(KeyboardInterrupt):
        kt_lr.range_test(model, x, y, num_steps=20, verbose=0)
    assert state.state_equal(before, _full_state(model))


def test_unbuilt_optimizer_is_built_with_fresh_state(data):
    x, y = data
    model = make_model(keras.optimizers.Adam(1e-3))
    weights = [w.copy() for w in model.get_weights()]
    kt_lr.range_test(model, x, y, num_steps=10, verbose=0)
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(model.optimizer.iterations) == 0
    for v in model.optimizer.variables[2:]:
        assert not np.any(keras.ops.convert_to_numpy(v))


def test_model_still_saves_and_fits_after_probes(data, tmp_path):
    x, y = data
    model = make_model(keras.optimizers.Adam(1e-3))
    kt_lr.find_lr(model, x, y, verbose=0, seed=0, num_steps=10, num_subsamples=4)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0), model.predict(x[:8], verbose=0))
    hist = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(hist.history["loss"][-1])
