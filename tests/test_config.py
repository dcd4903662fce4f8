"""kt_lr.LRConfig: one set of options, given as an LRConfig or as its fields by name."""

import dataclasses

import pytest

from kt_lr import LRConfig


def test_keyword_names_are_the_dataclass_fields():
    names = LRConfig.option_names()
    assert names == tuple(f.name for f in dataclasses.fields(LRConfig))
    assert "trial_timeout" in names and "probe_attempts" in names


def test_build_from_keywords_or_from_a_config_not_both():
    assert LRConfig.build(num_seeds=1) == LRConfig(num_seeds=1)
    given = LRConfig(widen=2.0)
    built = LRConfig.build(given)
    assert built == given and built is not given  # a copy, validated again
    with pytest.raises(ValueError, match="not both"):
        LRConfig.build(given, num_seeds=1)
    with pytest.raises(TypeError, match="Unknown kt_lr option"):
        LRConfig.build(num_seed=1)
    with pytest.raises(TypeError, match="must be a kt_lr.LRConfig"):
        LRConfig.build({"num_seeds": 1})
    given.num_seeds = -1  # edited after construction: caught when it is used
    with pytest.raises(ValueError, match="num_seeds"):
        LRConfig.build(given)


def test_pop_options_takes_only_the_fields():
    kwargs = {"num_seeds": 1, "max_trials": 3, "trial_timeout": 60}
    assert LRConfig.pop_options(kwargs) == {"num_seeds": 1, "trial_timeout": 60}
    assert kwargs == {"max_trials": 3}


@pytest.mark.parametrize(
    "options, match",
    [
        ({"lr_hp_name": ""}, "lr_hp_name"),
        ({"probe_key_hps": [1]}, "probe_key_hps"),
        ({"num_seeds": 1.5}, "num_seeds"),
        ({"min_decades": -1}, "min_decades"),
        ({"widen": 0.5}, "widen"),
        ({"batch_scaling": "cubic"}, "batch_scaling"),
        ({"probe_timeout": float("nan")}, "probe_timeout"),
    ],
)
def test_bad_options_name_the_argument(options, match):
    with pytest.raises(ValueError, match=match):
        LRConfig(**options)


def test_normalised_values():
    cfg = LRConfig(probe_key_hps="optimizer", probe_timeout=5, trial_timeout=None)
    assert cfg.probe_key_hps == ("optimizer",) and cfg.probe_timeout == 5.0
    assert LRConfig(probe_key_hps=None).probe_key_hps == ()
