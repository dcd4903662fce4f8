import math

import keras
import keras_tuner as kt
import numpy as np
import pytest
from keras import ops

from kt_lr.results import LRFinding
from kt_lr.schedules import (
    KINDS,
    Cyclical,
    OneCycle,
    OneCycleMomentum,
    ScheduledLR,
    cosine,
    exponential,
    hp_schedule,
    plot_schedule,
    schedule_from,
    schedule_values,
    sgdr,
    step_decay,
)

FINDING = LRFinding(lr=2.6e-3, low=2.6e-4, high=1.05e-2, reasons=[], candidates={"edge": 1.05e-2})


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_values_against_closed_form(anneal):
    # 101 steps: last step 100, peak at 0.3 * 100 = 30
    s = OneCycle(0.1, 101, pct_start=0.3, div_factor=25.0, final_div=1e4, anneal=anneal)
    start, peak, end = 0.1 / 25, 0.1, 0.1 / 1e4

    def shape(a, b, f):
        if anneal == "cos":
            return b + (a - b) * (1 + math.cos(math.pi * f)) / 2
        return a + (b - a) * f

    expected = {
        0: start,
        10: shape(start, peak, 10 / 30),
        15: (start + peak) / 2,
        30: peak,
        44: shape(peak, end, 14 / 70),
        65: (peak + end) / 2,
        100: end,
        150: end,  # past the end: stays at the final rate
    }
    got = {k: float(s(k)) for k in expected}
    np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol=1e-5)
    # vectorized / tensor steps agree with scalar calls
    steps = np.array(list(expected))
    np.testing.assert_allclose(schedule_values(s, steps), list(expected.values()), rtol=1e-5)
    np.testing.assert_allclose(
        ops.convert_to_numpy(s(ops.convert_to_tensor(steps, "int64"))),
        list(expected.values()),
        rtol=1e-5,
    )
    mom = {0: 0.95, 30: 0.85, 65: 0.90, 100: 0.95, 10: shape(0.95, 0.85, 10 / 30)}
    np.testing.assert_allclose([float(s.momentum(k)) for k in mom], list(mom.values()), rtol=1e-6)
    assert s.initial_lr == pytest.approx(start) and s.final_lr == pytest.approx(end)


def test_cyclical_modes_against_smith_formula():
    base, top, size = 0.001, 0.006, 4
    tri = Cyclical(base, top, size)
    tri2 = Cyclical(base, top, size, mode="triangular2")
    exp = Cyclical(base, top, size, mode="exp_range", gamma=0.9)
    cases = [
        (tri, 0, base),
        (tri, 2, base + (top - base) * 0.5),
        (tri, 4, top),
        (tri, 6, base + (top - base) * 0.5),
        (tri, 8, base),
        (tri, 12, top),
        (tri2, 4, top),
        (tri2, 10, base + (top - base) * 0.5 * 0.5),  # cycle 2, x = 0.5
        (tri2, 12, base + (top - base) / 2),
        (tri2, 20, base + (top - base) / 4),
        (exp, 2, base + (top - base) * 0.5 * 0.9**2),
        (exp, 4, base + (top - base) * 0.9**4),
        (exp, 12, base + (top - base) * 0.9**12),
    ]
    got = [float(s(step)) for s, step, _ in cases]
    np.testing.assert_allclose(got, [e for *_, e in cases], rtol=1e-5)


def test_config_round_trip_and_registration():
    for s in (
        OneCycle(3e-3, 50, pct_start=0.25, div_factor=10, final_div=100, anneal="linear"),
        Cyclical(1e-4, 1e-2, 7.5, mode="exp_range", gamma=0.99),
    ):
        again = type(s).from_config(s.get_config())
        assert again.get_config() == s.get_config()
        blob = keras.saving.serialize_keras_object(s)
        assert blob["registered_name"] == f"kt_lr>{type(s).__name__}"
        back = keras.saving.deserialize_keras_object(blob)
        assert type(back) is type(s) and back.get_config() == s.get_config()
        steps = np.arange(0, 60, 7)
        np.testing.assert_array_equal(schedule_values(back, steps), schedule_values(s, steps))


def test_validation_messages():
    with pytest.raises(ValueError, match="pct_start"):
        OneCycle(1e-2, 100, pct_start=1.0)
    with pytest.raises(ValueError, match="total_steps"):
        OneCycle(1e-2, 1)
    with pytest.raises(ValueError, match="anneal"):
        OneCycle(1e-2, 100, anneal="cosine")
    with pytest.raises(ValueError, match="mode"):
        Cyclical(1e-3, 1e-2, 10, mode="triangle")
    with pytest.raises(ValueError, match="max_lr"):
        Cyclical(1e-2, 1e-3, 10)


def test_keras_constructors():
    c = cosine(FINDING, 100, warmup_steps=10, alpha=0.01)
    assert isinstance(c, keras.optimizers.schedules.CosineDecay)
    assert float(c(0)) == pytest.approx(0.01 * FINDING.lr)
    assert float(c(10)) == pytest.approx(FINDING.lr)
    assert float(c(110)) == pytest.approx(0.01 * FINDING.lr)
    assert float(cosine(0.1, 10)(0)) == pytest.approx(0.1)
    r = sgdr(0.1, 10, t_mul=1.0)
    assert isinstance(r, keras.optimizers.schedules.CosineDecayRestarts)
    assert float(r(10)) == pytest.approx(0.1) and float(r(5)) == pytest.approx(0.05)
    e = exponential(0.1, 10, 0.5)
    assert float(e(20)) == pytest.approx(0.025)
    p = step_decay([4, 6], [1.0, 0.1, 0.01])
    assert schedule_values(p, [0, 4, 5, 7]).tolist() == pytest.approx([1.0, 1.0, 0.1, 0.01])
    with pytest.raises(ValueError, match="one more"):
        step_decay([4], [1.0])


# --------------------------------------------------------------------------- inside fit


def _tiny(optimizer, loss="mae"):
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    model.compile(optimizer=optimizer, loss=loss)
    return model


@pytest.mark.parametrize(
    "schedule",
    [OneCycle(0.05, 8, pct_start=0.4), Cyclical(0.01, 0.05, 3, mode="triangular2")],
    ids=["one_cycle", "cyclical"],
)
def test_schedule_drives_fit_and_survives_save(schedule, tmp_path):
    # MAE with a far-away target: the gradient of w is exactly -1 each step, so
    # after n SGD steps w = sum of the rates the compiled step used.
    x = np.ones((16, 1), "float32")
    y = np.full((16, 1), 1e3, "float32")
    model = _tiny(keras.optimizers.SGD(learning_rate=schedule))
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
    opt = model.optimizer
    assert int(opt.iterations) == 8
    used = schedule_values(schedule, np.arange(8))
    np.testing.assert_allclose(float(model.layers[0].kernel[0, 0]), used.sum(), rtol=1e-5)
    assert float(opt.learning_rate) == pytest.approx(float(schedule(opt.iterations)))

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.optimizer._learning_rate
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    steps = np.arange(0, 12)
    np.testing.assert_array_equal(
        schedule_values(restored, steps), schedule_values(schedule, steps)
    )
    assert float(loaded.optimizer.learning_rate) == pytest.approx(float(schedule(8)))


def _zero_grad_loss(y_true, y_pred):
    return 0.0 * y_pred[:, 0]


@pytest.mark.parametrize(
    ("make", "attr"),
    [
        (lambda: keras.optimizers.SGD(0.1, momentum=0.9), "momentum"),
        (lambda: keras.optimizers.Adam(0.1, beta_1=0.9), "beta_1"),
    ],
    ids=["sgd", "adam"],
)
def test_momentum_callback_changes_the_momentum_the_step_uses(make, attr):
    # With a zero gradient, both SGD's and Adam's first-moment buffers just shrink
    # by the momentum each step: buffer_n = prod(momentum used at steps 0..n-1).
    x = np.ones((16, 1), "float32")
    y = np.zeros((16, 1), "float32")
    opt = make()
    model = _tiny(opt, loss=_zero_grad_loss)
    opt.build(model.trainable_variables)
    buffers = [v for v in opt.variables if "momentum" in v.name]
    assert buffers

    def fit_from_ones(**kwargs):
        for b in buffers:
            b.assign(ops.ones_like(b))
        model.fit(x, y, batch_size=4, verbose=0, **kwargs)
        return float(ops.convert_to_numpy(buffers[0]).ravel()[0])

    # a plain fit first: the train step is traced with the float 0.9 baked in
    assert fit_from_ones(epochs=1) == pytest.approx(0.9**4, rel=1e-4)
    start = int(opt.iterations)
    schedule = OneCycle(0.1, 12, pct_start=0.5, max_momentum=0.95, base_momentum=0.6)
    seen = []
    spy = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(opt.get_config()[attr])
    )
    got = fit_from_ones(epochs=2, callbacks=[OneCycleMomentum(schedule), spy])
    used = schedule_values(schedule.momentum, np.arange(start, start + 8))
    assert got == pytest.approx(np.prod(used), rel=1e-4)
    assert abs(got - 0.9**8) > 0.05  # what a frozen 0.9 would give
    # while training, the config holds plain floats (a mid-training save reloads) ...
    assert all(isinstance(v, float) for v in seen)
    np.testing.assert_allclose(seen, used, rtol=1e-6)
    # ... and afterwards the optimizer is back to its own float, used by a plain fit
    assert getattr(opt, attr) == 0.9 and isinstance(getattr(opt, attr), float)
    assert fit_from_ones(epochs=1) == pytest.approx(0.9**4, rel=1e-4)


def test_momentum_callback_refuses_clearly():
    cb = OneCycleMomentum(OneCycle(0.1, 10))
    cb.set_model(_tiny(keras.optimizers.SGD(0.1)))
    with pytest.raises(ValueError, match="momentum=0"):
        cb.on_train_begin()
    cb.set_model(_tiny(keras.optimizers.Adagrad(0.1)))
    with pytest.raises(TypeError, match="Adagrad"):
        cb.on_train_begin()
    with pytest.raises(TypeError, match="momentum"):
        OneCycleMomentum(Cyclical(0.1, 0.2, 5))


@pytest.mark.parametrize(
    "make",
    [lambda s: keras.optimizers.SGD(s), keras.optimizers.RMSprop, keras.optimizers.Adagrad],
    ids=["sgd", "rmsprop", "adagrad"],
)
def test_schedule_from_one_cycle_without_momentum_cycles_the_lr_only(make):
    one = schedule_from(FINDING, "one_cycle", 4, 2)
    model = _tiny(make(one.schedule))
    x = np.ones((8, 1), "float32")
    before = {a: getattr(model.optimizer, a, None) for a in ("momentum", "beta_1")}
    with pytest.warns(UserWarning, match="cycling only the learning rate"):
        model.fit(x, x, batch_size=2, epochs=2, verbose=0, callbacks=one.callbacks)
    assert int(model.optimizer.iterations) == 8
    assert {a: getattr(model.optimizer, a, None) for a in ("momentum", "beta_1")} == before
    assert "without momentum" in " ".join(one.reasons)


# --------------------------------------------------------------------------- from a finding


@pytest.mark.parametrize("kind", KINDS)
def test_schedule_from_stays_in_bounds_and_explains(kind):
    out = schedule_from(FINDING, kind, steps_per_epoch=10, epochs=8)
    assert isinstance(out, ScheduledLR) and out.kind == kind and out.total_steps == 80
    values = schedule_values(out.schedule, np.arange(80))
    assert values.min() >= FINDING.low / 100 * (1 - 1e-6)
    assert values.max() <= FINDING.high * (1 + 1e-6)
    text = " ".join(out.reasons)
    lr, high = FINDING.lr, FINDING.high
    numbers = {
        "constant": [lr],
        "one_cycle": [math.sqrt(lr * high), lr, high, FINDING.low / 100],
        "cyclical": [high / 4, high],
        "cosine": [2 * lr, lr, FINDING.low / 100],
        "sgdr": [2 * lr, lr],
        "exponential": [2 * lr, FINDING.low],
        "step": [2 * lr, 0.2 * lr],
    }[kind]
    for v in numbers:
        assert f"{v:.3g}" in text, (v, text)
    peak = {"constant": lr, "one_cycle": math.sqrt(lr * high), "cyclical": high}.get(kind, 2 * lr)
    assert values.max() == pytest.approx(peak, rel=0.01)  # one-cycle peaks between steps
    assert bool(out.callbacks) == (kind == "one_cycle")


@pytest.mark.parametrize("kind", KINDS)
def test_scheduled_lr_round_trips_through_plain_data(kind):
    import json

    out = schedule_from(FINDING, kind, steps_per_epoch=10, epochs=8)
    data = json.loads(json.dumps(out.to_dict()))
    back = ScheduledLR.from_dict(data)
    assert (back.kind, back.reasons, back.total_steps) == (out.kind, out.reasons, 80)
    steps = np.arange(80)
    np.testing.assert_allclose(
        schedule_values(back.schedule, steps), schedule_values(out.schedule, steps), rtol=1e-6
    )
    assert [type(c) for c in back.callbacks] == [type(c) for c in out.callbacks]
    assert all(c.schedule is back.schedule for c in back.callbacks)
    frame = out.to_frame()
    assert list(frame["step"]) == list(range(80))
    np.testing.assert_allclose(frame["learning_rate"], schedule_values(out.schedule, steps))
    assert ("momentum" in frame) == (kind == "one_cycle")


def test_scheduled_lr_to_dict_refuses_a_callback_it_cannot_write_down():
    out = schedule_from(FINDING, "cosine", steps_per_epoch=10, epochs=8)
    out.callbacks.append(keras.callbacks.TerminateOnNaN())
    with pytest.raises(TypeError, match="TerminateOnNaN.*Remove it"):
        out.to_dict()
    data = schedule_from(FINDING, "cosine", 10, 8).to_dict()
    data["callbacks"] = [{"class_name": "Other"}]
    with pytest.raises(ValueError, match="Unknown callback 'Other'"):
        ScheduledLR.from_dict(data)


def test_schedule_from_rules_and_errors():
    one = schedule_from(FINDING, "one_cycle", 10, 8)
    assert one.schedule.max_lr == pytest.approx(math.sqrt(FINDING.lr * FINDING.high))
    assert one.schedule.final_lr == pytest.approx(FINDING.low / 100)
    assert isinstance(one.callbacks[0], OneCycleMomentum)
    assert not schedule_from(FINDING, "one_cycle", 10, 8, cycle_momentum=False).callbacks
    # an edge below the interval's top caps the peak
    low_edge = LRFinding(lr=1e-3, low=1e-4, high=1e-2, reasons=[], candidates={"edge": 4e-3})
    cyc = schedule_from(low_edge, "cyclical", 10, 4)
    assert cyc.schedule.max_lr == pytest.approx(4e-3)
    assert "edge of stability 0.004" in " ".join(cyc.reasons)
    with pytest.raises(ValueError, match="constant, one_cycle, cyclical"):
        schedule_from(FINDING, "warm_restarts", 10, 8)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        schedule_from(FINDING, "cosine", 0, 8)
    with pytest.raises(ValueError, match="epochs"):
        schedule_from(FINDING, "cosine", 10, -1)
    with pytest.raises(ValueError, match="allowed: peak_lr"):
        schedule_from(FINDING, "cosine", 10, 8, max_lr=1.0)


# --------------------------------------------------------------------------- Keras Tuner


@pytest.mark.parametrize("kind", KINDS)
def test_hp_schedule_rebuilds_exactly(kind):
    hp = kt.HyperParameters()
    hp_schedule(hp, KINDS, steps_per_epoch=5, epochs=4)
    assert hp.get("lr_schedule") == "constant"
    lr_hp = next(h for h in hp.space if h.name == "learning_rate")
    assert (lr_hp.min_value, lr_hp.max_value, lr_hp.sampling) == (1e-6, 1.0, "log")
    hp.values["lr_schedule"] = kind
    hp.values["learning_rate"] = 3e-3
    first = hp_schedule(hp, KINDS, steps_per_epoch=5, epochs=4)
    again = hp_schedule(
        kt.HyperParameters.from_config(hp.get_config()), KINDS, steps_per_epoch=5, epochs=4
    )
    if kind == "constant":
        assert first == again == 3e-3
        return
    assert type(first) is type(again)
    assert first.get_config() == again.get_config()
    steps = [first.peak_step] if kind == "one_cycle" else np.arange(20)
    peak = max(float(first(s)) for s in steps)
    assert peak == pytest.approx(3e-3, rel=1e-5)


def test_hp_schedule_arguments():
    with pytest.raises(ValueError, match="kinds"):
        hp_schedule(kt.HyperParameters(), ("constant", "linear"), steps_per_epoch=5, epochs=4)
    with pytest.raises(ValueError, match="epochs"):
        hp_schedule(kt.HyperParameters(), steps_per_epoch=5, epochs=0)


# --------------------------------------------------------------------------- plot


def test_plot_schedule():
    pytest.importorskip("matplotlib")
    fig = plot_schedule(OneCycle(1e-2, 100), 100)
    assert len(fig.axes) == 2  # momentum on the twin axis
    line = fig.axes[0].lines[0]
    assert line.get_ydata().max() == pytest.approx(1e-2, rel=1e-3)
    fig = schedule_from(FINDING, "cosine", 10, 8).plot()
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "cosine"
    assert len(plot_schedule(3e-3, 10).axes[0].lines[0].get_xdata()) == 10
