"""kt_lr.batching: the batch-size scaling rules, their limit, per-value probe keys."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import pytest
from keras_tuner import HyperParameters

from kt_lr import batching as bt
from kt_lr.config import LRConfig
from kt_lr.ledger import Finding


# ------------------------------------------------------------------ batch size rule
class SGD:
    pass


class Adam:
    pass


@pytest.mark.parametrize(
    "opt, rule",
    [("sgd", "linear"), (SGD(), "linear"), ("Adam", "sqrt"), (Adam(), "sqrt"), ("odd", "sqrt")],
)
def test_batch_scaling_rule(opt, rule):
    assert bt.batch_scaling_rule(opt) == rule


def test_scale_lr_for_batch_size():
    assert bt.scale_lr_for_batch_size(1e-3, 32, 128, optimizer="sgd") == pytest.approx(4e-3)
    assert bt.scale_lr_for_batch_size(1e-3, 32, 128, optimizer="adam") == pytest.approx(2e-3)
    assert bt.scale_lr_for_batch_size(1e-3, 32, 128, rule="linear") == pytest.approx(4e-3)
    assert bt.scale_lr_for_batch_size(1e-3, 32, 128, rule="none") == 1e-3
    assert bt.scale_lr_for_batch_size(1e-3, 32, 128) == pytest.approx(2e-3)  # unknown: sqrt
    with pytest.raises(ValueError, match="batch_scaling"):
        bt.scale_lr_for_batch_size(1e-3, 32, 64, rule="cubic")


def test_batch_size_values_and_factor():
    hps = HyperParameters()
    hps.Choice("batch_size", [64, 16, 32])
    hps.Int("bs", 8, 128, step=8)
    hps.Fixed("bs2", 32)
    hps.Boolean("flag")
    choice, int_hp, fixed, flag = hps.space
    assert bt.batch_size_values(choice) == [16.0, 32.0, 64.0]
    assert bt.batch_size_values(int_hp) == [8.0, 128.0]
    assert bt.batch_size_values(fixed) == [32.0]
    assert bt.batch_size_values(flag) == []
    assert bt.batch_factor(16, 64, optimizer="SGD") == pytest.approx(4.0)
    assert bt.batch_factor(16, 64, optimizer="adam") == pytest.approx(2.0)
    assert bt.batch_factor(16, 64, rule="none") == 1.0


def test_a_choice_of_up_to_four_batch_sizes_is_probed_per_value():
    def space(declare):
        hps = HyperParameters()
        declare(hps)
        return hps

    config = LRConfig()
    per_value = [
        lambda h: h.Choice("batch_size", [16, 64]),
        lambda h: h.Choice("batch_size", [8, 16, 32, 64]),
    ]
    scaled = [
        lambda h: h.Choice("batch_size", [8, 16, 32, 64, 128]),  # many values
        lambda h: h.Int("batch_size", 16, 128, step=16),  # a range
        lambda h: h.Fixed("batch_size", 32),  # one value: nothing to tell apart
        lambda h: h.Choice("bs", [16, 64]),  # another name
    ]
    for declare in per_value:
        assert bt.probed_batch_size_name(space(declare), config) == "batch_size"
        off = LRConfig(batch_scaling="none")  # one interval for every batch size
        assert bt.probed_batch_size_name(space(declare), off) is None
    for declare in scaled:
        assert bt.probed_batch_size_name(space(declare), config) is None
    named = LRConfig(batch_size_hp_name="bs")
    assert bt.probed_batch_size_name(space(scaled[-1]), named) == "bs"


def test_scaled_up_never_above_the_probed_top():
    f = Finding(lr=0.78, low=0.026, high=2.0, batch_size=16, optimizer="SGD")
    assert bt.finding_factor(f, 128, LRConfig()) == pytest.approx(8.0)  # linear rule
    assert bt.scaled_top(f, key_high=2.0, factor=8.0, bound_high=10.0) == 2.0
    assert bt.scaled_top(f, key_high=2.5, factor=8.0, bound_high=10.0) == 2.5  # widened
    assert bt.scaled_top(f, key_high=2.0, factor=8.0, bound_high=1.0) == 1.0  # the range
    assert bt.scaled_top(f, key_high=2.0, factor=0.5, bound_high=10.0) == 10.0  # down
    note = bt.cap_note(f, 128, 8.0, 2.0)
    assert note.startswith("scaled x8 from batch size 16 to 128, the interval would reach 16")
