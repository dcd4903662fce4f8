"""``find_lr``: both probes on the user's model and data, fused into one answer."""

from __future__ import annotations

import inspect
import warnings

import numpy as np

from kt_lr import fuse as fuse_mod
from kt_lr.differential import loss_differential
from kt_lr.range_test import range_test
from kt_lr.results import LRFinding
from kt_lr.validation import check_fuse_options, check_known_options, check_probes

_RT_KEYS = set(inspect.signature(range_test).parameters) - {"model", "x", "y"}
_LD_KEYS = set(inspect.signature(loss_differential).parameters) - {"model", "x", "y"}
_FUSE_KEYS = set(fuse_mod.DEFAULTS)
_SHARED = {"batch_size", "seed", "verbose", "sample_weight"}
_OPTIONS = ((_RT_KEYS | _LD_KEYS | _FUSE_KEYS) - _SHARED) | {"sample_weight"}


def differential_grid(rt_result, start_lr: float, end_lr: float, num: int = 50) -> np.ndarray:
    """LR grid for the differentials: 5 decades ending where the range test stopped.

    Args:
        rt_result: the range test's result, or ``None`` (then the grid ends at ``end_lr``).
        start_lr: the grid never starts below this.
        end_lr: the grid never ends above this.
        num: how many learning rates.
    """
    top = end_lr
    if rt_result is not None and len(rt_result.lrs):
        top = float(min(end_lr, rt_result.lrs[-1] * 2.0))
    low = max(start_lr, top / 1e5)
    return np.geomspace(low, top, num)


def find_lr(
    model,
    x,
    y=None,
    *,
    batch_size: int = 32,
    seed: int | None = None,
    verbose: int = 1,
    validation_data=None,
    probes: tuple[str, ...] = ("range_test", "loss_differential"),
    **probe_options,
) -> LRFinding:
    """Run the range test and the loss differentials and fuse them into one LR.

    The model is left exactly as it was, even when a probe raises. Warns (``UserWarning``)
    when the edge sits at the top of the probed range, where the pick is a lower bound.

    Args:
        model: a compiled ``keras.Model`` with a constant learning rate.
        x: the training inputs, as ``fit`` takes them (arrays, dicts / lists of
            arrays, a ``tf.data.Dataset``, a ``PyDataset``, a torch ``DataLoader``).
        y: the targets when ``x`` holds arrays; ``None`` for datasets.
        batch_size: the batch size for array data, for both probes.
        seed: seeds both probes' local generators.
        verbose: 0 for silence, 1 for progress bars.
        validation_data: held-out data for the range test's validation loss.
        probes: which probes run: ``"range_test"`` and/or ``"loss_differential"``.
        **probe_options: each goes to the probe that takes it: ``start_lr``,
            ``end_lr``, ``num_steps``, ``smoothing``, ``diverge_factor``, ``mode`` to
            :func:`~kt_lr.range_test.range_test`; ``lrs``, ``num_subsamples``,
            ``confidence``, ``holdout``, ``method`` to
            :func:`~kt_lr.differential.loss_differential`; ``divisor``,
            ``decades_below``, ``decades_above``, ``max_disagreement`` to
            :func:`~kt_lr.fuse.fuse`; ``sample_weight`` to both probes.

    Returns:
        An :class:`~kt_lr.results.LRFinding`: the pick ``lr``, a search interval
        ``[low, high]``, the reasons in words and both probes' results.

    Raises:
        TypeError: for an option no probe takes.
        ValueError: for a bad argument (the message names it and the fix).
        RuntimeError: when neither probe finds a learning rate that lowers the loss.
    """
    check_known_options("find_lr", probe_options, _OPTIONS)
    check_probes(probes)
    fuse_opts = {k: v for k, v in probe_options.items() if k in _FUSE_KEYS}
    check_fuse_options(**{**fuse_mod.DEFAULTS, **fuse_opts})  # before minutes of probing
    common = {"batch_size": batch_size, "seed": seed, "verbose": verbose}
    if "sample_weight" in probe_options:
        common["sample_weight"] = probe_options["sample_weight"]
    rt_opts = {k: v for k, v in probe_options.items() if k in _RT_KEYS and k not in _SHARED}
    ld_opts = {k: v for k, v in probe_options.items() if k in _LD_KEYS and k not in _SHARED}
    start_lr = float(rt_opts.get("start_lr", 1e-7))
    end_lr = float(rt_opts.get("end_lr", 10.0))
    rt = ld = None
    if "range_test" in probes:
        rt = range_test(model, x, y, validation_data=validation_data, **common, **rt_opts)
    if "loss_differential" in probes:
        if "lrs" not in ld_opts:
            ld_opts["lrs"] = differential_grid(rt, start_lr, end_lr)
        ld = loss_differential(model, x, y, **common, **ld_opts)
    finding = fuse_mod.fuse(rt, ld, bounds=(start_lr, end_lr), **fuse_opts)
    finding.settings.update({"batch_size": batch_size, "seed": seed, "probes": list(probes)})
    if finding.settings.get("edge_at_top"):
        warnings.warn(
            f"find_lr: {fuse_mod.edge_at_top_note(end_lr)}.",
            UserWarning,
            stacklevel=2,
        )
    return finding
