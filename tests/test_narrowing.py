"""kt_lr.narrowing: pure functions of (ledger, space, config) on synthetic spaces."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np
import pytest
from keras_tuner import HyperParameters

from kt_lr import batching as bt
from kt_lr import narrowing as nw
from kt_lr._protocol import ProbeAnswer
from kt_lr.config import LRConfig
from kt_lr.ledger import Ledger, LRProbeWarning, ProbeStatus

ADAM = ProbeAnswer(lr=3e-4, low=1e-4, high=1e-3, batch_size=16, optimizer="Adam")
SGD = ProbeAnswer(lr=3e-2, low=1e-2, high=1e-1, batch_size=16, optimizer="SGD")


def space(optimizer=True, batch_size=False, lr="float"):
    hps = HyperParameters()
    if optimizer:
        hps.Choice("optimizer", ["adam", "sgd"])
    if lr == "float":
        hps.Float("learning_rate", 1e-5, 1.0, sampling="log")
    else:
        hps.Choice("learning_rate", [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    hps.Int("units", 4, 64, step=4)
    if batch_size == "choice":  # a few values: probed per value
        hps.Choice("batch_size", [16, 64])
    elif batch_size:  # a range: rates scaled from the probe's batch size
        hps.Int("batch_size", 16, 64, step=16)
    return hps


def lr_bounds(hps):
    hp = next(h for h in hps.space if h.name == "learning_rate")
    return nw.bounds(hp)


def probed(hps, config, *answers):
    """A prepared ledger with ``answers`` recorded for the keys in order; the new space."""
    ledger = Ledger()
    nw.prepare(ledger, hps, config)
    for key, answer in zip(list(ledger.probes), answers, strict=False):
        trial_id, _ = ledger.start_probe(key, "tuner0", 0)
        rec = ledger.receive(trial_id, "COMPLETED", answered=answer.ok)
        hps = nw.record_answer(ledger, rec, answer, hps, config)
    return ledger, hps


def test_prepare_reads_the_lr_and_the_probe_keys():
    ledger = Ledger()
    nw.prepare(ledger, space(), LRConfig())
    assert ledger.hp_name == "learning_rate" and ledger.key_names == ["optimizer"]
    assert list(ledger.probes) == ["optimizer=adam", "optimizer=sgd"]
    assert ledger.original[0]["config"]["max_value"] == 1.0
    nw.prepare(ledger, space(optimizer=False), LRConfig())  # prepared once only
    assert list(ledger.probes) == ["optimizer=adam", "optimizer=sgd"]
    with pytest.raises(ValueError, match="No hyperparameter named 'lr'"):
        nw.prepare(Ledger(), space(), LRConfig(lr_hp_name="lr"))


def test_one_key_narrows_the_space_to_its_interval_and_queues_seeds():
    ledger, hps = probed(space(optimizer=False), LRConfig(), ADAM)
    assert lr_bounds(hps) == (1e-4, 1e-3) and ledger.hull == [1e-4, 1e-3]
    rec = ledger.probes["*"]
    assert rec.status is ProbeStatus.DONE and rec.interval.status == "inside"
    assert rec.seeds[0] == 3e-4 and len(rec.seeds) == 3
    assert [s.lr for s in ledger.seed_queue] == rec.seeds
    hp = next(h for h in hps.space if h.name == "learning_rate")
    assert hp.default == 3e-4 and hp.sampling == "log"


def test_the_space_holds_the_hull_and_each_key_its_interval():
    config = LRConfig(num_seeds=0)
    ledger, hps = probed(space(), config, ADAM, SGD)
    assert lr_bounds(hps) == (1e-4, 1e-1)
    assert nw.target(ledger, hps, {"optimizer": "adam"}, config).high == 1e-3
    assert nw.target(ledger, hps, {"optimizer": "sgd"}, config).low == 1e-2
    assert ledger.seed_queue == [] and "num_seeds=0" in ledger.probes["optimizer=adam"].notes[0]


def test_a_pending_key_has_no_target_and_a_failed_key_the_original_range():
    config = LRConfig()
    ledger, hps = probed(space(), config, ADAM)
    assert nw.target(ledger, hps, {"optimizer": "sgd"}, config) is None
    trial_id, _ = ledger.start_probe("optimizer=sgd", "tuner0", 0)
    rec = ledger.receive(trial_id, "COMPLETED", answered=False)
    with pytest.warns(LRProbeWarning, match="Keeping the original range"):
        hps = nw.record_answer(ledger, rec, ProbeAnswer(error="boom"), hps, config)
    assert rec.status is ProbeStatus.FAILED and rec.error == "boom"
    assert lr_bounds(hps) == (1e-5, 1.0)
    iv = nw.target(ledger, hps, {"optimizer": "sgd"}, config)
    assert (iv.low, iv.high) == (1e-5, 1.0)
    assert nw.target(Ledger(), hps, {}, config) is None


def test_an_interval_outside_the_range_warns_and_keeps_a_slice():
    with pytest.warns(LRProbeWarning, match="entirely above"):
        _, hps = probed(space(optimizer=False), LRConfig(), ProbeAnswer(lr=30, low=10, high=100))
    lo, hi = lr_bounds(hps)
    assert hi == 1.0 and lo == pytest.approx(10**-0.5)


def test_a_narrowing_error_fails_the_key_instead_of_the_search(monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("no")

    monkeypatch.setattr(nw.sp, "narrow_hp", broken)
    with pytest.warns(LRProbeWarning, match="narrowing failed: ZeroDivisionError"):
        ledger, hps = probed(space(optimizer=False), LRConfig(), ADAM)
    assert ledger.probes["*"].status is ProbeStatus.FAILED and ledger.probes["*"].finding is None
    assert lr_bounds(hps) == (1e-5, 1.0)


def test_batch_factors_scale_each_keys_interval_up_to_its_top():
    config = LRConfig(num_seeds=0)
    with pytest.warns(LRProbeWarning, match="capped at 0.1, the top of the probed interval"):
        ledger, hps = probed(space(batch_size=True), config, ADAM, SGD)
    assert bt.batch_sizes(hps, config) == [16.0, 64.0]
    adam, sgd = ledger.probes["optimizer=adam"].finding, ledger.probes["optimizer=sgd"].finding
    assert bt.finding_factor(adam, 64, config) == pytest.approx(2.0)  # sqrt rule
    assert bt.finding_factor(sgd, 64, config) == pytest.approx(4.0)  # linear rule
    assert bt.finding_factor(sgd, 16, config) == 1.0 and bt.finding_factor(None, 64, config) == 1.0
    assert bt.finding_factor(sgd, True, config) == 1.0  # not a batch size
    # x4 would give [0.04, 0.4]: capped at the probed top 0.1, half a decade wide
    iv = nw.target(ledger, hps, {"optimizer": "sgd", "batch_size": 64}, config)
    assert (iv.low, iv.high) == pytest.approx((0.1 / 10**0.5, 0.1))
    assert any("capped at 0.1" in n for n in ledger.probes["optimizer=sgd"].notes)
    down = nw.target(ledger, hps, {"optimizer": "sgd", "batch_size": 4}, config)
    assert (down.low, down.high) == pytest.approx((2.5e-3, 2.5e-2))  # scaled down: no cap
    assert lr_bounds(hps) == pytest.approx((1e-4, 1e-1))
    off = LRConfig(batch_scaling="none")
    assert bt.batch_sizes(hps, off) == [None] and bt.finding_factor(sgd, 64, off) == 1.0


def test_refresh_narrows_again_when_a_batch_size_appears():
    config = LRConfig(num_seeds=0)
    ledger, hps = probed(space(), config, ADAM, SGD)
    assert nw.refresh(ledger, hps, config) is hps  # nothing changed
    bigger = space(batch_size=True)
    bigger.values = dict(hps.values)
    from kt_lr import space as sp

    bigger = sp.replace_hp(bigger, next(h for h in hps.space if h.name == "learning_rate"))
    with pytest.warns(LRProbeWarning, match="capped"):
        refreshed = nw.refresh(ledger, bigger, config)
    assert ledger.batch_sizes == [16.0, 64.0]
    assert lr_bounds(refreshed) == pytest.approx((1e-4, 1e-1))


def test_place_moves_the_lr_into_its_keys_interval():
    config = LRConfig(num_seeds=0)
    ledger, hps = probed(space(), config, ADAM, SGD)
    for value in (1e-4, 10**-2.5, 1e-1):
        for opt, answer in (("adam", ADAM), ("sgd", SGD)):
            placed = nw.place(ledger, hps, {"optimizer": opt, "learning_rate": value}, config)
            assert answer.low <= placed["learning_rate"] <= answer.high
    one, hps1 = probed(space(optimizer=False), config, ADAM)
    values = {"learning_rate": 5e-4, "units": 8}
    assert nw.place(one, hps1, values, config) == values  # one key: the hull is its interval


def test_place_keeps_a_choices_rank_inside_its_keys_interval():
    config = LRConfig(num_seeds=0)
    ledger, hps = probed(space(lr="choice"), config, ADAM, SGD)
    hp = next(h for h in hps.space if h.name == "learning_rate")
    assert list(hp.values) == [1e-4, 1e-3, 1e-2, 1e-1]
    low = nw.place(ledger, hps, {"optimizer": "sgd", "learning_rate": 1e-4}, config)
    high = nw.place(ledger, hps, {"optimizer": "adam", "learning_rate": 1e-1}, config)
    assert (low["learning_rate"], high["learning_rate"]) == (1e-2, 1e-3)


def test_seeds_of_the_trials_own_key_come_first_then_the_others():
    config = LRConfig(num_seeds=1)
    ledger, hps = probed(space(), config, ADAM, SGD)
    sgd = nw.take_seed(ledger, hps, "00", {"optimizer": "sgd", "learning_rate": 1e-5}, config)
    assert sgd["learning_rate"] == 3e-2
    other = nw.take_seed(ledger, hps, "01", {"optimizer": "sgd", "learning_rate": 1e-5}, config)
    assert other["optimizer"] == "adam" and other["learning_rate"] == 3e-4  # forced key
    assert nw.take_seed(ledger, hps, "02", {"optimizer": "sgd"}, config) is None  # empty
    assert [(s.trial_id, s.note) for s in ledger.seeds_used] == [("00", "seed"), ("01", "seed")]


def test_a_seed_follows_the_trials_batch_size_but_never_above_the_probed_top():
    config = LRConfig(num_seeds=1)
    with pytest.warns(LRProbeWarning, match="capped"):
        ledger, hps = probed(space(batch_size=True), config, ADAM, SGD)
    values = {"optimizer": "sgd", "learning_rate": 1e-5, "batch_size": 64}
    seeded = nw.take_seed(ledger, hps, "00", values, config)
    assert seeded["learning_rate"] == pytest.approx(0.1)  # 0.03 x4 = 0.12, capped
    assert ledger.seeds_used[0].note == (
        "seed 0.03 scaled x4 from batch size 16 to 64, capped at 0.1, the top of the "
        "interval at that batch size"
    )
    adam = {"optimizer": "adam", "learning_rate": 1e-5, "batch_size": 32}
    seeded = nw.take_seed(ledger, hps, "01", adam, config)
    assert seeded["learning_rate"] == pytest.approx(3e-4 * 2**0.5)  # inside: not capped
    assert ledger.seeds_used[1].note == "seed 0.0003 scaled x1.41 from batch size 16 to 32"


def test_seeding_is_off_for_a_grid_and_for_zero_seeds():
    assert nw.seeding_off_reason(LRConfig(), grid=False) is None
    assert "grid" in nw.seeding_off_reason(LRConfig(), grid=True)
    assert nw.seeding_off_reason(LRConfig(num_seeds=0), grid=False) == "num_seeds=0"


def test_a_choice_lr_keeps_the_values_trials_used():
    ledger = Ledger()
    hps = space(optimizer=False, lr="choice")
    config = LRConfig()
    nw.prepare(ledger, hps, config)
    trial_id, _ = ledger.start_probe("*", "tuner0", 0)
    rec = ledger.receive(trial_id, "COMPLETED", answered=True)
    hps = nw.record_answer(ledger, rec, ADAM, hps, config, used=[1.0, None])
    hp = next(h for h in hps.space if h.name == "learning_rate")
    assert list(hp.values) == [1e-4, 1e-3, 1.0]


def test_map_into_is_affine_in_log_space():
    hull, target = (1e-4, 1e-1), (1e-3, 1e-2)
    assert nw.map_into(1e-4, hull, target) == pytest.approx(1e-3)
    assert nw.map_into(1e-1, hull, target) == pytest.approx(1e-2)
    assert nw.map_into(10**-2.5, hull, target) == pytest.approx(10**-2.5)  # the centre
    assert nw.map_into(3e-3, target, target) == 3e-3  # same interval: unchanged
    assert nw.map_into(1.0, hull, target) == pytest.approx(1e-2)  # limited to the source
    assert nw.map_into(0.5, (0.0, 1.0), (0.2, 0.4), log=True) == pytest.approx(0.3)  # linear
    assert nw.map_into(5.0, (5.0, 5.0), (1.0, 100.0)) == pytest.approx(10.0)  # point: centre
    with pytest.raises(ValueError, match="low <= high"):
        nw.map_into(1.0, (2.0, 1.0), (1.0, 2.0))


def test_map_into_turns_uniform_over_the_hull_into_uniform_over_the_target():
    rng = np.random.default_rng(0)
    draws = 10 ** rng.uniform(-5, 0, 20_000)
    mapped = np.array([nw.map_into(v, (1e-5, 1.0), (1e-3, 1e-2)) for v in draws])
    hist, _ = np.histogram(np.log10(mapped), bins=5, range=(-3, -2))
    assert hist.min() > 0.9 * hist.mean() and mapped.min() >= 1e-3 and mapped.max() <= 1e-2


def test_choose_inside_keeps_the_relative_rank():
    values = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    assert nw.choose_inside(1e-5, values, (1e-3, 1e-1)) == 1e-3
    assert nw.choose_inside(1e-1, values, (1e-3, 1e-1)) == 1e-1
    assert nw.choose_inside(1e-3, values, (1e-3, 1e-1)) == 1e-2  # the middle rank
    assert nw.choose_inside(1e-4, values, (1e-5, 1e-1)) == 1e-4  # all inside: unchanged
    assert nw.choose_inside(1e-4, values, (2e-3, 5e-3)) == 1e-3  # none inside: closest
