"""Pure logic of kt_lr.space: exact answers, invariants and error messages."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import math

import numpy as np
import pytest
from keras_tuner import HyperParameters

from kt_lr import space as sp


def lr_space(**float_kwargs):
    hps = HyperParameters()
    kwargs = {"min_value": 1e-5, "max_value": 1e-1, "sampling": "log", **float_kwargs}
    hps.Float("learning_rate", **kwargs)
    hps.Int("units", 4, 16, step=4)
    return hps


def the_hp(hps, name="learning_rate"):
    return next(hp for hp in hps.space if hp.name == name)


# ------------------------------------------------------------------ find the LR hp
def test_find_lr_hps_returns_the_float():
    hps = lr_space()
    (hp,) = sp.find_lr_hps(hps)
    assert hp.name == "learning_rate" and sp.hp_kind(hp) == "Float"


def test_missing_lr_hp_error_shows_the_line_to_add():
    hps = HyperParameters()
    hps.Int("units", 4, 16)
    with pytest.raises(ValueError) as err:
        sp.find_lr_hps(hps)
    msg = str(err.value)
    assert "hp.Float('learning_rate', 1e-5, 1e-1, sampling='log')" in msg
    assert "'units'" in msg and "lr_hp_name" in msg


def test_missing_custom_name_hint_uses_that_name():
    with pytest.raises(ValueError, match=r"hp\.Float\('lr', 1e-5"):
        sp.find_lr_hps(lr_space(), "lr")


@pytest.mark.parametrize(
    "declare, kind",
    [
        (lambda h: h.Int("learning_rate", 1, 10), "Int"),
        (lambda h: h.Fixed("learning_rate", 1e-3), "Fixed"),
        (lambda h: h.Boolean("learning_rate"), "Boolean"),
    ],
)
def test_non_float_lr_hp_is_rejected_with_the_fix(declare, kind):
    hps = HyperParameters()
    declare(hps)
    with pytest.raises(ValueError, match=rf"hp\.{kind}.*hp\.Float\('learning_rate'"):
        sp.find_lr_hps(hps)


def test_choice_of_strings_is_rejected_numeric_choice_accepted():
    hps = HyperParameters()
    hps.Choice("learning_rate", ["fast", "slow"])
    with pytest.raises(ValueError, match="non-numbers"):
        sp.find_lr_hps(hps)
    hps = HyperParameters()
    hps.Choice("learning_rate", [1e-3, 1e-2])
    assert sp.hp_kind(sp.find_lr_hps(hps)[0]) == "Choice"


# ------------------------------------------------------------------ the interval
def approx(a, b):
    return math.isclose(a, b, rel_tol=1e-9)


def test_interval_inside_is_kept_exactly():
    iv = sp.narrow_interval(1e-3, 1e-2, 1e-5, 1e-1, min_decades=0.5)
    assert (iv.low, iv.high, iv.status) == (1e-3, 1e-2, "inside")


def test_widen_multiplies_each_side():
    iv = sp.narrow_interval(1e-3, 1e-2, 1e-5, 1e-1, widen=2.0)
    assert approx(iv.low, 5e-4) and approx(iv.high, 2e-2)


def test_min_decades_grows_around_the_geometric_centre():
    iv = sp.narrow_interval(1e-3, 1.5e-3, 1e-5, 1e-1, min_decades=0.5)
    assert approx(iv.decades, 0.5)
    assert approx(math.sqrt(iv.low * iv.high), math.sqrt(1e-3 * 1.5e-3))


def test_clipped_at_the_top():
    iv = sp.narrow_interval(1e-2, 1.0, 1e-5, 1e-1)
    assert (iv.low, iv.high, iv.status) == (1e-2, 1e-1, "clipped")


def test_clipped_interval_grows_back_inside_to_min_width():
    # grown to [0.0632, 0.632], clipped to [0.0632, 0.1], grown down to one decade
    iv = sp.narrow_interval(0.08, 0.5, 1e-5, 1e-1, min_decades=1.0)
    assert approx(iv.low, 0.01) and approx(iv.high, 0.1) and iv.status == "clipped"


def test_missed_above_keeps_a_slice_at_the_upper_end():
    iv = sp.narrow_interval(1.0, 10.0, 1e-5, 1e-1, min_decades=0.5)
    assert iv.status == "missed_above"
    assert approx(iv.high, 0.1) and approx(iv.low, 0.1 / 10**0.5)
    assert "above" in iv.notes[-1]


def test_missed_below_keeps_a_slice_at_the_lower_end():
    iv = sp.narrow_interval(1e-8, 1e-7, 1e-5, 1e-1, min_decades=0.5)
    assert iv.status == "missed_below"
    assert approx(iv.low, 1e-5) and approx(iv.high, 1e-5 * 10**0.5)


def test_original_range_narrower_than_min_width_is_kept_whole():
    iv = sp.narrow_interval(1e-4, 1e-2, 1e-3, 2e-3, min_decades=0.5)
    assert (iv.low, iv.high) == (1e-3, 2e-3)


def test_linear_range_starting_at_zero():
    iv = sp.narrow_interval(1e-3, 1e-2, 0.0, 0.1)
    assert (iv.low, iv.high) == (1e-3, 1e-2)


@pytest.mark.parametrize(
    "args, match",
    [
        ((1e-2, 1e-3, 1e-5, 1e-1), "must not exceed"),
        ((float("nan"), 1e-3, 1e-5, 1e-1), "finite"),
        ((0.0, 1e-3, 1e-5, 1e-1), "> 0"),
        ((1e-3, 1e-2, 1e-1, 1e-5), "min_value <= max_value"),
    ],
)
def test_bad_intervals_raise(args, match):
    with pytest.raises(ValueError, match=match):
        sp.narrow_interval(*args)


def test_bad_width_options_raise():
    with pytest.raises(ValueError, match="widen"):
        sp.narrow_interval(1e-3, 1e-2, 1e-5, 1e-1, widen=0.5)
    with pytest.raises(ValueError, match="min_decades"):
        sp.narrow_interval(1e-3, 1e-2, 1e-5, 1e-1, min_decades=-1)


def test_interval_invariants_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(500):
        b_lo = 10 ** rng.uniform(-7, -1)
        b_hi = b_lo * 10 ** rng.uniform(0, 5)
        lo = 10 ** rng.uniform(-9, 1)
        hi = lo * 10 ** rng.uniform(0, 3)
        md = rng.uniform(0, 2)
        iv = sp.narrow_interval(lo, hi, b_lo, b_hi, min_decades=md, widen=rng.uniform(1, 3))
        assert b_lo <= iv.low <= iv.high <= b_hi
        want = min(md, math.log10(b_hi / b_lo))
        assert iv.decades >= want - 1e-9
        if iv.status == "inside":
            assert iv.low <= lo and iv.high >= hi


# ------------------------------------------------------------------ narrowing hps
def test_narrow_float_keeps_sampling_and_sets_default_to_pick():
    hp = the_hp(lr_space())
    new = sp.narrow_float(hp, sp.Interval(1e-3, 1e-2), pick=3e-3)
    assert (new.min_value, new.max_value, new.sampling, new.default) == (1e-3, 1e-2, "log", 3e-3)
    assert type(new) is type(hp) and new.name == hp.name


def test_narrow_float_with_step_snaps_to_the_original_grid():
    hp = the_hp(lr_space(min_value=1e-4, step=10))  # grid 1e-4, 1e-3, 1e-2, 1e-1
    new = sp.narrow_float(hp, sp.Interval(5e-4, 5e-2))
    assert new.step == 10 and (new.min_value, new.max_value) == pytest.approx((1e-3, 1e-2))
    new = sp.narrow_float(hp, sp.Interval(2e-3, 3e-3))  # nothing inside: nearest kept
    assert (new.min_value, new.max_value) == pytest.approx((1e-3, 1e-3))


def test_filter_choice_keeps_values_inside():
    hps = HyperParameters()
    hps.Choice("learning_rate", [1e-4, 1e-3, 1e-2, 1e-1])
    new = sp.filter_choice(the_hp(hps), sp.Interval(5e-4, 2e-2), pick=8e-3)
    assert list(new.values) == [1e-3, 1e-2] and new.default == 1e-2


def test_filter_choice_is_never_emptied():
    hps = HyperParameters()
    hps.Choice("learning_rate", [1e-4, 1e-3, 1e-1])
    new = sp.filter_choice(the_hp(hps), sp.Interval(2e-3, 3e-3))
    assert list(new.values) == [1e-3]


def test_filter_choice_keeps_values_used_by_trials():
    hps = HyperParameters()
    hps.Choice("learning_rate", [1e-4, 1e-3, 1e-2, 1e-1])
    new = sp.filter_choice(the_hp(hps), sp.Interval(5e-4, 2e-2), keep=[1e-1])
    assert list(new.values) == [1e-3, 1e-2, 1e-1]


def test_replace_hp_replaces_in_place_unlike_merge():
    hps = lr_space()
    hps.values["learning_rate"] = 1e-5
    new = sp.narrow_float(the_hp(hps), sp.Interval(1e-3, 1e-2), pick=3e-3)
    out = sp.replace_hp(hps, new)
    assert [hp.name for hp in out.space] == ["learning_rate", "units"]
    assert (the_hp(out).min_value, the_hp(out).max_value) == (1e-3, 1e-2)
    assert out.values["learning_rate"] == 3e-3  # out of the new range -> new default
    assert the_hp(hps).min_value == 1e-5  # the input is untouched
    merged = hps.copy()
    merged.merge([new])
    assert len(merged.space) == 3  # why replace_hp exists


def test_replace_hp_respects_conditions():
    hps = HyperParameters()
    hps.Choice("optimizer", ["adam", "sgd"])
    with hps.conditional_scope("optimizer", ["adam"]):
        hps.Float("learning_rate", 1e-5, 1e-1, sampling="log")
    with hps.conditional_scope("optimizer", ["sgd"]):
        hps.Float("learning_rate", 1e-4, 1.0, sampling="log")
    sgd_hp = [hp for hp in hps.space if hp.name == "learning_rate"][1]
    out = sp.replace_hp(hps, sp.narrow_float(sgd_hp, sp.Interval(1e-2, 1e-1)))
    adam_lr, sgd_lr = [hp for hp in out.space if hp.name == "learning_rate"]
    assert (adam_lr.min_value, adam_lr.max_value) == (1e-5, 1e-1)
    assert (sgd_lr.min_value, sgd_lr.max_value) == (1e-2, 1e-1)
    assert sgd_lr.conditions[0].values == ["sgd"]


def test_snap_and_membership():
    hp = the_hp(lr_space())
    assert sp.snap_to_hp(1.0, hp) == 1e-1 and sp.snap_to_hp(1e-9, hp) == 1e-5
    assert sp.value_in_hp(1e-3, hp) and not sp.value_in_hp(1.0, hp)


# ------------------------------------------------------------------ keys and values
def conditional_space():
    hps = HyperParameters()
    hps.Choice("optimizer", ["adam", "sgd"])
    hps.Float("learning_rate", 1e-5, 1e-1, sampling="log")
    with hps.conditional_scope("optimizer", ["sgd"]):
        hps.Float("momentum", 0.0, 0.9, default=0.5)
    return hps


def test_default_values_follow_conditions_without_randomness():
    hps = conditional_space()
    assert sp.default_values(hps) == {"optimizer": "adam", "learning_rate": 1e-5}
    assert sp.default_values(hps, {"optimizer": "sgd"}) == {
        "optimizer": "sgd",
        "learning_rate": 1e-5,
        "momentum": 0.5,
    }


def test_probe_keys_without_and_with_an_optimizer_hp():
    assert sp.probe_keys(lr_space(), sp.probe_key_names(lr_space())) == {"*": {}}
    hps = conditional_space()
    names = sp.probe_key_names(hps)
    assert names == ["optimizer"]
    keys = sp.probe_keys(hps, names)
    assert keys == {"optimizer=adam": {"optimizer": "adam"}, "optimizer=sgd": {"optimizer": "sgd"}}
    assert sp.probe_key({"optimizer": "sgd", "learning_rate": 1e-3}, names) == "optimizer=sgd"


def test_continuous_probe_key_is_rejected():
    hps = lr_space()
    hps.Float("optimizer", 0.0, 1.0)
    with pytest.raises(ValueError, match="probe_key_hps=()"):
        sp.probe_key_names(hps)


# ------------------------------------------------------------------ seeds
def test_seed_lrs_pick_first_then_bracket_then_geometric_inside():
    # the pick, a decade below it, half a decade above it
    assert sp.seed_lrs(1e-2, 1e-4, 1e-1, 3) == pytest.approx([1e-2, 1e-3, 10**-1.5])
    # the bracket is limited to the interval
    seeds = sp.seed_lrs(3e-3, 1e-3, 1e-2, 3)
    assert seeds == pytest.approx([3e-3, 1e-3, 3e-3 * 10**0.5])
    assert all(1e-3 <= s <= 1e-2 for s in seeds)
    # more seeds: geometric points inside, none within a quarter decade of another
    five = sp.seed_lrs(1e-2, 1e-5, 1e-1, 5)
    assert five[:3] == pytest.approx([1e-2, 1e-3, 10**-1.5])
    assert five[3:] == pytest.approx([1e-5 * 10 ** (4 / 3), 1e-5 * 10 ** (8 / 3)])
    assert all(
        abs(math.log10(a / b)) >= sp.SEED_MIN_SEPARATION
        for i, a in enumerate(five)
        for b in five[:i]
    )
    assert all(1e-5 <= s <= 1e-1 for s in five)
    # a given bracket replaces the default one, limited to the interval as well
    given = sp.seed_lrs(1e-2, 1e-4, 5e-2, 3, bracket=[2e-3, 1.0])
    assert given == pytest.approx([1e-2, 2e-3, 5e-2])
    with pytest.raises(ValueError, match="bracket"):
        sp.seed_lrs(1e-2, 1e-4, 1e-1, 3, bracket=[-1.0])


def test_seed_lrs_edge_cases():
    assert sp.seed_lrs(3e-3, 1e-3, 1e-2, 0) == []
    assert sp.seed_lrs(1.0, 1e-3, 1e-2, 1) == [1e-2]  # the pick is limited to the interval
    centre = math.sqrt(1e-3 * 1e-2)
    seeds = sp.seed_lrs(centre, 1e-3, 1e-2, 2)  # the grid point equals the pick
    assert seeds[0] == centre and seeds[1] in (1e-3, 1e-2)
    with pytest.raises(ValueError, match="num_seeds"):
        sp.seed_lrs(1e-3, 1e-3, 1e-2, -1)


def test_hp_summary():
    info = sp.hp_summary(the_hp(lr_space()))
    assert info["kind"] == "Float" and info["sampling"] == "log"
    assert (info["min_value"], info["max_value"]) == (1e-5, 1e-1)


# ------------------------------------------------------------------ per-key placement
def test_lr_declared_twice_is_refused_with_the_fix():
    hps = HyperParameters()
    hps.Choice("optimizer", ["adam", "sgd"])
    for opt in ("adam", "sgd"):
        with hps.conditional_scope("optimizer", [opt]):
            hps.Float("learning_rate", 1e-5, 1e-1, sampling="log")
    with pytest.raises(ValueError, match="declared 2 times") as err:
        sp.find_lr_hps(hps)
    assert "hp.Float('learning_rate', 1e-5, 1e-1, sampling='log')" in str(err.value)
