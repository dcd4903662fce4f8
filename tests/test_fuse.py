"""Fusion is pure: hand-built probe results with known edges."""

import math

import numpy as np
import pytest

from kt_lr.fuse import differential_edge, fuse, range_test_edge
from kt_lr.results import LossDifferentialResult, RangeTestResult


def rt_result(edge_lr: float | None, n=80, valley=None):
    lrs = np.geomspace(1e-6, 10, n)
    if edge_lr is None:
        sm = np.linspace(1.0, 2.0, n)
    else:
        t = np.log10(lrs / edge_lr)
        sm = 1.0 - 0.5 / (1 + np.exp(-3 * (t + 1.5))) + np.where(t > 0, t**2, 0)
    return RangeTestResult(
        lrs=lrs,
        losses=sm.copy(),
        smoothed=sm,
        val_losses=None,
        stop_step=n,
        stop_reason="reached end_lr",
        suggestions={"valley": valley},
        lr=None,
        low=None,
        high=None,
    )


def ld_result(largest_negative, lowest_mean, mean_at_lowest=-0.1):
    lrs = np.geomspace(1e-6, 10, 50)
    mean = np.zeros(50)
    if lowest_mean is not None:
        mean[np.argmin(np.abs(np.log(lrs / lowest_mean)))] = mean_at_lowest
    z = np.zeros(50)
    return LossDifferentialResult(
        lrs=lrs,
        deltas=np.zeros((2, 50)),
        base_losses=np.ones(2),
        mean=mean,
        median=z,
        std=z,
        t_low=z,
        t_high=z,
        boot_low=z,
        boot_high=z,
        confidence=0.95,
        best={
            "lowest_mean": lowest_mean,
            "lowest_median": lowest_mean,
            "lowest_upper": lowest_mean,
            "largest_negative": largest_negative,
        },
        method="affine",
        holdout=False,
    )


def test_edges():
    rt = rt_result(1e-2)
    assert range_test_edge(rt) == pytest.approx(1e-2, rel=0.35)
    assert range_test_edge(rt_result(None)) is None
    assert differential_edge(ld_result(3e-2, 1e-2)) == 3e-2
    assert differential_edge(ld_result(None, 1e-2)) == pytest.approx(1e-2, rel=0.2)
    assert differential_edge(ld_result(None, 1e-2, mean_at_lowest=0.1)) is None


def test_agreeing_probes_geometric_mean():
    rt = rt_result(1e-2)
    ld = ld_result(2e-2, 1e-2)
    edge_rt = range_test_edge(rt)
    f = fuse(rt, ld, divisor=4, decades_below=1.0)
    edge = math.sqrt(edge_rt * 2e-2)
    assert f.candidates["edge"] == pytest.approx(edge)
    assert f.lr == pytest.approx(edge / 4)
    assert f.low == pytest.approx(edge / 40)
    assert f.high == pytest.approx(edge)
    assert f.low <= f.lr <= f.high
    assert any("geometric mean" in r for r in f.reasons)


def test_disagreeing_probes_trust_the_differentials():
    # range test far too high (attention models) ...
    f = fuse(rt_result(1.0), ld_result(1e-3, 5e-4), divisor=2)
    assert f.candidates["edge"] == pytest.approx(1e-3)
    assert f.lr == pytest.approx(5e-4)
    assert any("disagree" in r for r in f.reasons)
    # ... or far too low (a noisy early minimum): the CI-backed edge wins both ways
    g = fuse(rt_result(1e-6), ld_result(1e-3, 5e-4), divisor=2)
    assert g.candidates["edge"] == pytest.approx(1e-3)


def test_single_probe_and_bounds():
    f = fuse(None, ld_result(1e-1, 5e-2), divisor=4, bounds=(1e-6, 1e-2))
    assert f.lr == pytest.approx(1e-2) and f.high == pytest.approx(1e-2)
    assert f.low <= f.lr
    f2 = fuse(rt_result(1e-3), None)
    assert f2.range_test is not None and f2.differential is None


def test_nothing_learned_is_a_clear_error():
    with pytest.raises(RuntimeError, match="Neither probe"):
        fuse(rt_result(None), ld_result(None, None))
    with pytest.raises(ValueError, match="divisor"):
        fuse(rt_result(1e-2), None, divisor=0.5)


@pytest.mark.parametrize(
    "option, value, minimum",
    [
        ("divisor", 0.5, ">= 1"),
        ("divisor", float("nan"), ">= 1"),
        ("decades_below", -1.0, ">= 0"),
        ("decades_below", float("inf"), ">= 0"),
        ("decades_above", -0.5, ">= 0"),
        ("decades_above", "0.5", ">= 0"),
        ("max_disagreement", -1, ">= 0"),
        ("max_disagreement", None, ">= 0"),
    ],
)
def test_bad_coefficients_name_the_argument_and_the_fix(option, value, minimum):
    with pytest.raises(ValueError, match=rf"`{option}` must be a finite number {minimum}") as err:
        fuse(rt_result(1e-2), ld_result(2e-2, 1e-2), **{option: value})
    assert repr(value) in str(err.value) and "e.g." in str(err.value)


def test_edge_coefficients_are_allowed():
    f = fuse(
        rt_result(1e-2),
        ld_result(2e-2, 1e-2),
        divisor=1,
        decades_below=0,
        decades_above=0,
        max_disagreement=0,
    )
    assert f.low == pytest.approx(f.lr) and f.high >= f.lr
    assert f.settings["divisor"] == 1.0 and isinstance(f.settings["max_disagreement"], float)


def test_finding_frames_and_dict():
    f = fuse(rt_result(1e-2), ld_result(2e-2, 1e-2))
    d = f.to_dict()
    assert d["lr"] == f.lr and d["low"] == f.low and d["high"] == f.high
    frame = f.to_frame()
    assert frame.iloc[0]["name"] == "pick" and frame.iloc[0]["lr"] == f.lr
    assert "Learning rate" in f.summary()


def test_finding_round_trips_through_plain_json():
    import json

    from kt_lr.results import LRFinding, as_plain

    f = fuse(rt_result(1e-2), ld_result(2e-2, 1e-2))
    back = LRFinding.from_dict(json.loads(json.dumps(as_plain(f))))
    assert (back.lr, back.low, back.high) == (f.lr, f.low, f.high)
    np.testing.assert_allclose(back.range_test.losses, f.range_test.losses)
    assert back.differential.deltas.shape == f.differential.deltas.shape
    assert back.differential.best == f.differential.best
    assert back.reasons == f.reasons


def test_the_pick_averages_edge_over_divisor_with_a_valley_below_the_edge():
    ld = ld_result(2e-2, 1e-2)
    plain = fuse(rt_result(1e-2), ld, divisor=3)
    edge = plain.candidates["edge"]
    f = fuse(rt_result(1e-2, valley=1e-4), ld, divisor=3)
    assert f.candidates["edge"] == pytest.approx(edge)
    assert f.lr == pytest.approx(math.sqrt(edge / 3 * 1e-4))
    assert f.low == pytest.approx(f.lr / 10**1.5) and f.high == pytest.approx(edge)
    assert any("valley 0.0001" in r for r in f.reasons)
    above = fuse(rt_result(1e-2, valley=5 * edge), ld, divisor=3)  # past the edge: ignored
    assert above.lr == pytest.approx(edge / 3)
    assert any("not below the edge" in r for r in above.reasons)


def test_an_edge_at_the_top_of_the_probed_range_is_flagged():
    # the loss still falls at the largest probed LR (range test edge and differential edge
    # both at the top): the answer is a lower bound, and the finding says so
    f = fuse(rt_result(1e3), ld_result(10.0, 5.0), bounds=(1e-6, 10.0))
    assert f.settings["edge_at_top"] is True
    assert any("top of the probed range" in r and "end_lr" in r for r in f.reasons)
    g = fuse(rt_result(1e-2), ld_result(2e-2, 1e-2), bounds=(1e-6, 10.0))
    assert g.settings["edge_at_top"] is False
    assert not any("top of the probed range" in r for r in g.reasons)


def test_an_edge_at_the_bottom_of_the_probed_range_is_flagged():
    # issue 16 item 8: Ftrl's answer sat at start_lr, silently; the loss rose almost from
    # the smallest probed rate, so the answer is set by the range, not by the model
    f = fuse(rt_result(2e-6), None, bounds=(1e-6, 10.0))
    assert f.settings["edge_at_bottom"] is True and f.settings["edge_at_top"] is False
    assert any("bottom of the probed range (1e-06)" in r and "start_lr" in r for r in f.reasons)
    g = fuse(rt_result(1e-2), ld_result(2e-2, 1e-2), bounds=(1e-6, 10.0))
    assert g.settings["edge_at_bottom"] is False
    assert not any("bottom of the probed range" in r for r in g.reasons)
    h = fuse(rt_result(2e-6), None)  # no bounds: nothing to compare with
    assert h.settings["edge_at_bottom"] is False


def test_every_result_round_trips_through_to_dict_and_json():
    import json

    from kt_lr.results import LRFinding

    rt = rt_result(1e-2)
    rt.losses[-3:] = [np.nan, np.inf, -np.inf]  # a sweep that blew up
    rt.val_losses = np.linspace(1.0, 2.0, len(rt.lrs))
    ld = ld_result(2e-2, 1e-2)
    ld.deltas = np.arange(100.0).reshape(2, 50)
    ld.deltas[1, 4] = np.nan
    for result in (rt, ld):
        back = type(result).from_dict(json.loads(json.dumps(result.to_dict())))
        for name in result.__dataclass_fields__:
            mine, theirs = getattr(result, name), getattr(back, name)
            if isinstance(mine, np.ndarray):
                assert theirs.shape == mine.shape and theirs.dtype == mine.dtype, name
                np.testing.assert_array_equal(theirs, mine)
            else:
                assert theirs == mine, name
    f = fuse(rt, ld, bounds=(1e-6, 10.0))
    full = LRFinding.from_dict(json.loads(json.dumps(f.to_dict(full=True))))
    assert (full.lr, full.low, full.high, full.reasons) == (f.lr, f.low, f.high, f.reasons)
    assert full.candidates == f.candidates and full.settings == f.settings
    np.testing.assert_array_equal(full.range_test.losses, rt.losses)
    np.testing.assert_array_equal(full.differential.deltas, ld.deltas)
    numbers = LRFinding.from_dict(json.loads(json.dumps(f.to_dict())))
    assert (numbers.lr, numbers.low, numbers.high) == (f.lr, f.low, f.high)
    assert numbers.candidates == {k: v for k, v in f.candidates.items() if v is not None}
    assert numbers.range_test is None and numbers.reasons == []
    with pytest.raises(ValueError, match="no \\['lr', 'low', 'high'\\].*finding.json"):
        LRFinding.from_dict({"trial_id": "x"})
