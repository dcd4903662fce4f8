"""The registry of schedule kinds: kt_lr.schedules.get / register / names."""

import keras
import keras_tuner as kt
import numpy as np
import pytest

from kt_lr import schedules
from kt_lr.results import LRFinding
from kt_lr.schedules import (
    KINDS,
    Cyclical,
    Kind,
    OneCycle,
    Plan,
    ScheduledLR,
    cosine,
    exponential,
    get,
    hp_schedule,
    names,
    register,
    schedule_from,
    schedule_values,
    sgdr,
    step_decay,
)
from kt_lr.validation import check_count, check_nonnegative_float

FINDING = LRFinding(lr=2.6e-3, low=2.6e-4, high=1.05e-2, reasons=[], candidates={"edge": 1.05e-2})


@pytest.fixture
def registry(monkeypatch):
    """Kinds registered inside a test are gone after it."""
    from kt_lr.schedules import _registry

    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))


def _config(schedule):
    return schedule if isinstance(schedule, float) else schedule.get_config()


# --------------------------------------------------------------------------- get


def test_builtin_kinds_in_order():
    assert KINDS == ("constant", "one_cycle", "cyclical", "cosine", "sgdr", "exponential", "step")
    assert names()[: len(KINDS)] == KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_get_every_kind_is_schedule_from(kind):
    builder = get(kind)
    assert isinstance(builder, Kind) and builder.name == kind
    assert get(builder) is builder  # a Kind passes through, like keras.optimizers.get
    out = builder(FINDING, 10, 8)
    again = schedule_from(FINDING, kind, 10, 8)
    assert isinstance(out, ScheduledLR) and out.kind == kind and out.total_steps == 80
    assert out.reasons == again.reasons
    assert _config(out.schedule) == _config(again.schedule)
    assert [type(c) for c in out.callbacks] == [type(c) for c in again.callbacks]
    assert schedule_from(FINDING, builder, 10, 8).reasons == out.reasons


@pytest.mark.parametrize("bad", ["warm_restarts", "", None, 3, ["cosine"]])
def test_get_unknown_kind_lists_the_kinds_and_the_fix(bad):
    with pytest.raises(ValueError, match="must be one of constant, one_cycle") as err:
        get(bad)
    text = str(err.value)
    assert all(k in text for k in KINDS)
    assert "kt_lr.schedules.register" in text


def test_options_are_per_kind():
    assert get("constant").options == ()
    assert get("cosine").options == ("peak_lr", "warmup_steps", "floor_lr")
    with pytest.raises(ValueError, match="allowed: none"):
        get("constant")(FINDING, 10, 8, peak_lr=1e-3)
    # at_peak options are internal: schedule_from does not accept them
    with pytest.raises(ValueError, match="allowed: peak_lr, final_lr"):
        schedule_from(FINDING, "exponential", 10, 8, decay_rate=0.5)


def test_min_steps():
    assert get("constant")(FINDING, 1, 1).schedule == FINDING.lr
    with pytest.raises(ValueError, match="at least 2 steps"):
        get("step")(FINDING, 1, 1)
    with pytest.raises(ValueError, match="at least 2 steps"):
        get("step").from_peak(1e-3, 1, 1)


# --------------------------------------------------------------------------- hp_schedule's rules


def _hp_rule(kind, lr, spe, epochs):
    """hp_schedule's documented rules, written out with the public constructors."""
    total = spe * epochs
    warm = max(1, round(0.05 * total)) if total >= 3 else 0
    bounds = [b for b in (round(0.5 * total), round(0.75 * total)) if 0 < b < total]
    return {
        "constant": lambda: lr,
        "one_cycle": lambda: OneCycle(lr, total),
        "cyclical": lambda: Cyclical(lr / 4, lr, total / (2 * max(1, epochs // 4))),
        "cosine": lambda: cosine(lr, max(1, total - warm - 1), warmup_steps=warm),
        "sgdr": lambda: sgdr(lr, spe * max(1, epochs // 4), t_mul=1.0),
        "exponential": lambda: exponential(lr, total - 1, 0.05),
        "step": lambda: step_decay(bounds, [lr * 0.1**i for i in range(len(bounds) + 1)]),
    }[kind]()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("lr", "spe", "epochs"), [(3e-3, 5, 4), (0.1234567, 13, 9), (1e-6, 1, 2)])
def test_from_peak_is_hp_schedules_rule_exactly(kind, lr, spe, epochs):
    got = get(kind).from_peak(lr, spe, epochs)
    want = _hp_rule(kind, lr, spe, epochs)
    assert type(got) is type(want)
    assert _config(got) == _config(want)  # exact: e.g. exponential's decay_rate is 0.05
    hp = kt.HyperParameters()
    hp.values.update(lr_schedule=kind, learning_rate=lr)
    assert _config(hp_schedule(hp, KINDS, steps_per_epoch=spe, epochs=epochs)) == _config(want)


def test_plans():
    plan = Plan.at_peak("cosine", 2e-3, 5, 4, {"peak_lr": 2e-3})
    assert (plan.lr, plan.low, plan.high, plan.top, plan.cap) == (2e-3,) * 5
    assert plan.total == 20 and plan.peak() == 2e-3
    with pytest.raises(TypeError):
        plan.options["peak_lr"] = 1.0  # read-only
    edge = LRFinding(lr=1e-3, low=1e-4, high=1e-2, reasons=[], candidates={"edge": 4e-3})
    plan = Plan.from_finding("cosine", edge, 10, 4, {})
    assert plan.top == 4e-3 and "edge of stability" in plan.top_words
    assert plan.floor == pytest.approx(1e-6) and plan.peak() == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="finding.lr"):
        Plan.from_finding("cosine", object(), 10, 4, {})


# --------------------------------------------------------------------------- register


def _linear(plan):
    peak = plan.peak()
    decay = keras.optimizers.schedules.PolynomialDecay(peak, plan.total - 1, plan.floor)
    return plan.result(decay, [plan.peak_reason("linear", peak)])


def test_register_a_custom_kind(registry):
    assert register("linear", options=("peak_lr",))(_linear) is _linear
    assert names() == (*KINDS, "linear")
    out = schedule_from(FINDING, "linear", 10, 8)
    assert out.kind == "linear" and out.total_steps == 80 and out.callbacks == []
    values = schedule_values(out, np.arange(80))
    assert values[0] == pytest.approx(2 * FINDING.lr) and values[-1] == pytest.approx(
        FINDING.low / 100
    )
    assert "twice the pick" in out.reasons[0]
    custom = schedule_from(FINDING, "linear", 10, 8, peak_lr=1e-3)
    assert float(custom.schedule(0)) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="allowed: peak_lr"):
        schedule_from(FINDING, "linear", 10, 8, max_lr=1.0)
    # hp_schedule: by default the plan has every rate at the hp's value, so it peaks there
    hp = kt.HyperParameters()
    hp.values.update(lr_schedule="linear", learning_rate=4e-3)
    got = hp_schedule(hp, ["cosine", "linear"], steps_per_epoch=5, epochs=2)
    assert float(got(0)) == pytest.approx(4e-3) and float(got(9)) == pytest.approx(4e-5)


def test_register_refuses_clashes_unless_told(registry):
    with pytest.raises(ValueError, match="already registered.*overwrite=True"):
        register("cosine")(_linear)
    register("cosine", options=("peak_lr",), overwrite=True)(_linear)
    assert get("cosine").build is _linear
    with pytest.raises(ValueError, match="name"):
        register("")(_linear)
    with pytest.raises(ValueError, match="min_steps"):
        register("linear", min_steps=0)


def test_registry_fixture_restored():
    assert names() == KINDS and get("cosine").build is not _linear


def test_public_classes_keep_their_module_path():
    blob = keras.saving.serialize_keras_object(OneCycle(1e-2, 10))
    assert blob["module"] == "kt_lr.schedules" and blob["registered_name"] == "kt_lr>OneCycle"
    for name in ("OneCycle", "Cyclical", "OneCycleMomentum", "ScheduledLR", "schedule_from"):
        assert getattr(schedules, name).__module__.startswith("kt_lr.schedules")


# --------------------------------------------------------------------------- checks it uses


def test_check_count_and_nonnegative_float():
    assert check_count("n", np.int64(3)) == 3 and check_count("n", np.array(2), 0) == 2
    for bad in (True, 2.5, "3", None, 0):
        with pytest.raises(ValueError, match="`n` must be an integer >= 1"):
            check_count("n", bad)
    assert check_nonnegative_float("x", 0) == 0.0 and check_nonnegative_float("x", "1e-3") == 1e-3
    for bad in (-1e-9, float("nan"), float("inf"), "a", None):
        with pytest.raises(ValueError, match="`x` must be a finite number >= 0"):
            check_nonnegative_float("x", bad)
