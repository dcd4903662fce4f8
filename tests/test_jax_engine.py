"""The JAX engine's choice between padding a call to a compiled grid and compiling anew."""

from __future__ import annotations

import pytest

jax_engine = pytest.importorskip("kt_lr.engines.jax")


def bare_engine():
    """The engine's bookkeeping without a model (the rule under test uses nothing else)."""
    e = object.__new__(jax_engine.JaxEngine)
    e._grids, e._per_lr, e._compile, e._first = set(), None, None, None
    return e


def test_a_new_grid_size_compiles_until_something_is_compiled():
    e = bare_engine()
    assert e.padded_grid(50) == 50 and e.padded_grid(12) == 12


def test_before_timing_a_call_pads_only_up_to_twice_its_work():
    e = bare_engine()
    e._grids = {50}
    assert e.padded_grid(30) == 50
    assert e.padded_grid(12) == 12
    assert e.padded_grid(60) == 60  # nothing compiled holds it


def test_timed_costs_decide_between_padding_and_compiling():
    e = bare_engine()
    e._timed(50, 3.0)  # the first call at 50 LRs: compiling and running
    e._timed(50, 0.5)  # a compiled call: 0.01 s an LR, so compiling took about 2.5 s
    assert e._per_lr == pytest.approx(0.01) and e._compile == pytest.approx(2.5)
    # padding 12 -> 50 LRs over the expected calls: 38 x 0.01 x 20 = 7.6 s > 2.5 s
    assert e.padded_grid(12) == 12
    # a small model: 0.0001 s an LR; padding (0.076 s) is cheaper than compiling
    e._timed(50, 0.005)
    assert e.padded_grid(12) == 50
    assert e.padded_grid(48) == 50
