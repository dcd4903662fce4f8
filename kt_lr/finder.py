"""``find_lr``: both probes on the user's model and data, fused into one answer."""

from __future__ import annotations

import dataclasses
import inspect
import time
import warnings

import numpy as np

from kt_lr import calibrate
from kt_lr import fuse as fuse_mod
from kt_lr import pick as pick_mod
from kt_lr.differential import loss_differential
from kt_lr.range_test import range_test
from kt_lr.results import LRFinding
from kt_lr.training import custom_train_step_note
from kt_lr.validation import (
    check_budget,
    check_fuse_options,
    check_known_options,
    check_measurable_step,
    check_probes,
)

_RT_KEYS = set(inspect.signature(range_test).parameters) - {"model", "x", "y"}
_LD_KEYS = set(inspect.signature(loss_differential).parameters) - {"model", "x", "y"}
_FUSE_KEYS = set(fuse_mod.DEFAULTS)
_WEIGHTS = {"sample_weight", "class_weight"}  # options of both probes, given by the user
_SHARED = {"batch_size", "seed", "verbose"} | _WEIGHTS
_OPTIONS = ((_RT_KEYS | _LD_KEYS | _FUSE_KEYS) - _SHARED) | _WEIGHTS


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
    budget: float | None = 1.0,
    epochs: float | None = None,
    steps_per_epoch: int | None = None,
    target: str = "final",
    rule: str | None = None,
    **probe_options,
) -> LRFinding:
    """Run the range test and the loss differentials and pick one LR for your budget.

    Both probes give an edge of stability (:func:`~kt_lr.fuse.fuse`); the learned rule
    (:mod:`kt_lr.pick`, fitted across the benchmark corpus) places the pick below it
    from the probes' shape, the optimizer's family, the data and the training budget
    (``epochs``): a longer budget never raises it. ``finding.reasons`` says what moved
    the pick and by how much; the fuse.py rule's answer stays in
    ``finding.candidates["fused_pick"]``.

    The model is left exactly as it was, even when a probe raises. Warns (``UserWarning``)
    when the edge sits at the top of the probed range, where the pick is a lower bound, or
    near its bottom, where the answer is set by ``start_lr`` rather than by the model; and
    when a model with its own ``train_step`` leaves the range test alone (the loss
    differentials measure the compiled loss, not what that step optimises; the reason is
    in ``finding.reasons`` and ``finding.settings["skipped"]``).

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
        budget: what both probes may cost, in epochs of ``x`` (one epoch: the steps
            ``fit`` takes over it, from cold). A training step and a forward pass are
            timed first and the probes sized to it (:mod:`kt_lr.budget`): the range
            test's steps, the LRs per subsample of the differentials (coarse, then
            refined around the edge and the minimum) and their subsamples (in chunks
            until the edge is settled, at most 100, while the budget lasts). An explicit
            ``num_steps``, ``lrs``, ``lr_points`` or ``num_subsamples`` wins. ``None``:
            no timing, the fixed sizes (100 steps; 100 subsamples x 50 LRs).
        epochs: how many epochs you will train with the pick (the pick's budget).
            ``None``: the corpus's typical budget is assumed and the reasons say so.
        steps_per_epoch: optimizer steps per epoch, when ``x`` has no known length
            (e.g. an infinite dataset); by default from the data and ``batch_size``.
        target: ``"final"`` (default): the rate whose model after the last epoch is
            best, what ``model.fit`` leaves you; ``"best"``: the rate whose best epoch
            is best, what Keras Tuner ranks a trial by and
            ``EarlyStopping(restore_best_weights=True)`` keeps.
        rule: ``"learned"`` (default) or ``"fused"``: the hand-set rule of
            :func:`~kt_lr.fuse.fuse` (edge / ``divisor`` averaged with the valley),
            which is also what ``divisor``, ``decades_below`` or ``decades_above``
            select when given.
        **probe_options: each goes to the probe that takes it: ``start_lr``,
            ``end_lr``, ``num_steps``, ``smoothing``, ``diverge_factor``, ``mode`` to
            :func:`~kt_lr.range_test.range_test`; ``lrs``, ``num_subsamples``,
            ``confidence``, ``holdout``, ``method`` to
            :func:`~kt_lr.differential.loss_differential`; ``divisor``,
            ``decades_below``, ``decades_above``, ``max_disagreement`` to
            :func:`~kt_lr.fuse.fuse`; ``sample_weight`` (per-sample weights for array
            data) or ``class_weight`` (``{class id: weight}``, per-sample weights from the
            targets as ``fit`` makes them; not both, as in ``fit``) to both probes.

    Returns:
        An :class:`~kt_lr.results.LRFinding`: the pick ``lr``, a search interval
        ``[low, high]``, the reasons in words and both probes' results.

    Raises:
        TypeError: for an option no probe takes.
        ValueError: for a bad argument or data (the message names it and the fix).
        RuntimeError: when neither probe finds a learning rate that lowers the loss.
    """
    check_known_options("find_lr", probe_options, _OPTIONS)
    check_probes(probes)
    fuse_opts = {k: v for k, v in probe_options.items() if k in _FUSE_KEYS}
    rule = _check_rule(rule, target, epochs, steps_per_epoch, fuse_opts)
    check_fuse_options(**{**fuse_mod.DEFAULTS, **fuse_opts})  # before minutes of probing
    budget = check_budget(budget)
    started = time.perf_counter()
    common = {"batch_size": batch_size, "seed": seed, "verbose": verbose}
    common.update({k: v for k, v in probe_options.items() if k in _WEIGHTS})
    rt_opts = {k: v for k, v in probe_options.items() if k in _RT_KEYS and k not in _SHARED}
    ld_opts = {k: v for k, v in probe_options.items() if k in _LD_KEYS and k not in _SHARED}
    start_lr = float(rt_opts.get("start_lr", 1e-7))
    end_lr = float(rt_opts.get("end_lr", 10.0))
    probes, skipped = _runnable(model, probes)
    plan = None
    if budget is not None and probes:
        plan = calibrate.plan(
            model,
            x,
            y,
            budget_epochs=budget,
            batch_size=batch_size,
            seed=seed,
            probes=probes,
            lattice_size=len(ld_opts.get("lrs", ())) or 50,
            options=probe_options,
            weights={k: v for k, v in common.items() if k in _WEIGHTS},
        )
        if verbose:
            print(plan.describe(len(ld_opts.get("lrs", ())) or 50))
        rt_opts.setdefault("num_steps", plan.range_steps)
        ld_opts.setdefault("lr_points", None if "lrs" in ld_opts else plan.lr_points)
        ld_opts.setdefault("num_subsamples", None)
    rt = ld = None
    if "range_test" in probes:
        rt = range_test(model, x, y, validation_data=validation_data, **common, **rt_opts)
    if "loss_differential" in probes:
        if "lrs" not in ld_opts:
            ld_opts["lrs"] = differential_grid(rt, start_lr, end_lr)
        if plan is not None and ld_opts["num_subsamples"] is None:
            left = plan.budget_seconds - (time.perf_counter() - started)
            ld_opts.setdefault("time_budget", max(left, 1e-3))
        ld = loss_differential(model, x, y, **common, **ld_opts)
    finding = fuse_mod.fuse(rt, ld, bounds=(start_lr, end_lr), **fuse_opts)
    if rule == "learned":
        context = _context(model, x, y, batch_size, epochs, steps_per_epoch, plan)
        _learned_pick(finding, context, target, (start_lr, end_lr))
    finding.settings.update({"rule": rule, "target": target, "epochs": epochs})
    notes = [f"{name.replace('_', ' ')}s not run: {why}" for name, why in skipped.items()]
    finding.reasons[:0] = notes
    finding.settings.update(
        {"batch_size": batch_size, "seed": seed, "probes": list(probes), "skipped": skipped}
    )
    finding.settings["budget"] = None if plan is None else dataclasses.asdict(plan)
    finding.settings["seconds"] = time.perf_counter() - started
    if finding.settings.get("edge_at_top"):
        notes.append(fuse_mod.edge_at_top_note(end_lr))
    if finding.settings.get("edge_at_bottom"):
        notes.append(fuse_mod.edge_at_bottom_note(start_lr))
    for note in notes:
        warnings.warn(f"find_lr: {note}.", UserWarning, stacklevel=2)
    return finding


_FUSED_PICK_KEYS = ("divisor", "decades_below", "decades_above")


def _check_rule(rule, target, epochs, steps_per_epoch, fuse_opts) -> str:
    """The pick rule to use, after checking the budget arguments (before probing)."""
    given = sorted(k for k in fuse_opts if k in _FUSED_PICK_KEYS)
    if rule is None:
        rule = "fused" if given else "learned"
    if rule not in ("learned", "fused"):
        raise ValueError(
            f"rule={rule!r}: use 'learned' (the budget-aware rule fitted on the benchmark "
            "corpus) or 'fused' (the hand-set edge / divisor rule of kt_lr.fuse)."
        )
    if rule == "learned" and given:
        raise ValueError(
            f"{', '.join(given)} set the fused rule's pick, but rule='learned' was asked "
            "for: drop them, or pass rule='fused'."
        )
    if target not in pick_mod.TARGETS:
        raise ValueError(
            f"target={target!r}: use 'final' (the model after the last epoch, what "
            "model.fit leaves) or 'best' (the best epoch, what Keras Tuner ranks by)."
        )
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if value is not None and not (
            isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        ):
            raise ValueError(
                f"{name}={value!r}: pass a positive number (the training budget the pick "
                "is for), or None."
            )
    return rule


def _optimizer_name(model) -> str:
    opt = getattr(model, "optimizer", None)
    opt = getattr(opt, "inner_optimizer", opt)  # LossScaleOptimizer
    return type(opt).__name__


def _context(model, x, y, batch_size, epochs, steps_per_epoch, plan) -> pick_mod.Context:
    """What the learned pick knows about the run: optimizer, data size, model size. The
    batch size of a dataset is that of its first batch (the cost plan measured it)."""
    from kt_lr.data import BatchStream, leaves

    samples = batches = None
    if plan is not None:
        batches, batch_size = plan.estimate.steps_per_epoch, plan.estimate.batch_size
    try:
        stream = BatchStream(x, y, batch_size=batch_size)
        samples, batches = getattr(stream, "num_samples", None), stream.num_batches
        if samples is None and plan is None:
            first = leaves(stream.next_batch()[0])
            batch_size = len(first[0]) if first else batch_size
    except Exception:  # the probes have read the data already; this only sizes it
        pass
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights) or None
    return pick_mod.Context(
        optimizer=_optimizer_name(model),
        batch_size=int(batch_size),
        samples=samples,
        params=params,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch or batches,
    )


def _learned_pick(finding: LRFinding, context, target: str, bounds) -> None:
    """Replace the fused pick by the learned one (in place), keeping the former as a
    candidate and its reasoning up to the edge."""
    fused = finding.lr
    lr, low, high, reasons = pick_mod.apply(
        finding.candidates, context, target=target, bounds=bounds
    )
    kept = [r for r in finding.reasons if not r.startswith(("pick:", "picked "))]
    finding.reasons[:] = [*kept, *reasons, f"(the fused rule of kt_lr.fuse would pick {fused:.3g})"]
    finding.candidates["fused_pick"] = fused
    finding.lr, finding.low, finding.high = lr, low, high


def _runnable(model, probes) -> tuple[list[str], dict[str, str]]:
    """The probes that can measure ``model``, and why any other was left out: the loss
    differentials measure the compiled loss, which a model's own ``train_step`` may not
    optimise (alone they cannot answer: then the error says so)."""
    probes = list(probes)
    note = custom_train_step_note(model) if "loss_differential" in probes else None
    if note is None:
        return probes, {}
    if probes == ["loss_differential"]:
        check_measurable_step(model)  # raises, with the fix
    return [p for p in probes if p != "loss_differential"], {"loss_differential": note}
