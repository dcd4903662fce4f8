"""Benchmarks for kt_lr: regret against a ground-truth LR grid, and probe cost.

Run ``python -m benchmarks.regret [--quick]`` and ``python -m benchmarks.probe_cost``.
Nothing here is imported by the ``kt_lr`` package.
"""
