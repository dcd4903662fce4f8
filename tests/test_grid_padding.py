"""The choice between padding a compiled probe call to a grid compiled before and compiling
anew (:class:`kt_lr.engines._base.GridPadding`, what the JAX engine uses)."""

from __future__ import annotations

import pytest

from kt_lr.engines._base import GridPadding


def test_a_new_grid_size_compiles_until_something_is_compiled():
    p = GridPadding()
    assert p.grid(50) == 50 and p.grid(12) == 12


def test_before_timing_a_call_pads_only_up_to_twice_its_work():
    p = GridPadding()
    p.grids = {50}
    assert p.grid(30) == 50
    assert p.grid(12) == 12
    assert p.grid(60) == 60  # nothing compiled holds it


def test_timed_costs_decide_between_padding_and_compiling():
    p = GridPadding()
    p.timed(50, 3.0)  # the first call at 50 LRs: compiling and running
    p.timed(50, 0.5)  # a compiled call: 0.01 s an LR, so compiling took about 2.5 s
    assert p.per_lr == pytest.approx(0.01) and p.compile == pytest.approx(2.5)
    # padding 12 -> 50 LRs over the expected calls: 38 x 0.01 x 20 = 7.6 s > 2.5 s
    assert p.grid(12) == 12
    # a small model: 0.0001 s an LR; padding (0.076 s) is cheaper than compiling
    p.timed(50, 0.005)
    assert p.grid(12) == 50
    assert p.grid(48) == 50
