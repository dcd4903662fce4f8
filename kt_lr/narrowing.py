"""Narrowing, per-key placement, batch factors and the seed queue.

Pure functions of ``(ledger, space, config)``: the :class:`~kt_lr.ledger.Ledger`, the
oracle's search space (a Keras Tuner ``HyperParameters``, used duck-typed: ``space``,
``get_config``, ``from_config``) and the :class:`~kt_lr.config.LRConfig`. A function
that changes the space returns a new one; the oracle assigns it. No Keras Tuner import.

- :func:`narrow`: the space's LR becomes the *hull* of every probe key's interval at
  every batch size the space allows (failed keys add the original range).
- :func:`place`: a trial's LR moves from the hull into its own key's interval.
- :func:`target`: the interval a trial with given values samples from.
- :func:`queue_seeds` / :func:`take_seed`: the seeded trials of each key.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kt_lr import space as sp
from kt_lr._protocol import ProbeAnswer
from kt_lr.ledger import Finding, Ledger, ProbeRecord, ProbeStatus, Seed, warn

if TYPE_CHECKING:  # pragma: no cover
    from kt_lr.config import LRConfig


# ------------------------------------------------------------------ the LR hyperparameter
def entry_hp(entry: dict[str, Any], space: Any) -> Any:
    """The hyperparameter saved as ``entry`` (``{"class_name", "config"}``)."""
    return type(space).from_config({"space": [copy.deepcopy(entry)], "values": {}}).space[0]


def original_hp(ledger: Ledger, space: Any) -> Any:
    """The LR hyperparameter as the user declared it, before any narrowing."""
    return entry_hp(ledger.original[0], space)


def bounds(hp: Any) -> tuple[float, float]:
    """``(min_value, max_value)`` of a Float or numeric Choice."""
    info = sp.hp_summary(hp)
    return info["min_value"], info["max_value"]


def active_lr_hp(space: Any, values: dict[str, Any], name: str) -> Any | None:
    """The LR hyperparameter active for ``values`` (``None`` when it is not active)."""
    for hp in space.space:
        if hp.name == name and all(c.is_active(values) for c in hp.conditions):
            return hp
    return None


def prepare(ledger: Ledger, space: Any, config: LRConfig) -> None:
    """Read the LR and the probe keys from ``space`` into an empty ledger.

    Raises:
        ValueError: the space has no usable LR hyperparameter, or a probe key is not
            discrete (the message says what to change).
    """
    if ledger.prepared:
        return
    name = config.lr_hp_name
    entries = sp.find_lr_hps(space, name)
    key_names = sp.probe_key_names(space, config.probe_key_hps)
    original = [{"class_name": type(hp).__name__, "config": hp.get_config()} for hp in entries]
    ledger.prepare(name, original, key_names, sp.probe_keys(space, key_names))


# ------------------------------------------------------------------ batch sizes
def batch_sizes(space: Any, config: LRConfig) -> list[float | None]:
    """The batch sizes the space allows (``[None]`` without a batch-size hp or scaling)."""
    name = config.batch_size_hp_name
    if not name or config.batch_scaling == "none":
        return [None]
    hp = next((h for h in space.space if h.name == name), None)
    values = sp.batch_size_values(hp) if hp is not None else []
    return list(values) or [None]


def batch_factor(finding: Finding | None, batch_size: Any, config: LRConfig) -> float:
    """The factor a probe's LR is scaled by for a trial at ``batch_size``."""
    probe_bs = _positive_number(finding.batch_size if finding is not None else None)
    trial_bs = _positive_number(batch_size)
    if config.batch_scaling == "none" or probe_bs is None or trial_bs is None:
        return 1.0
    if trial_bs == probe_bs:
        return 1.0
    return sp.batch_factor(
        probe_bs, trial_bs, rule=config.batch_scaling, optimizer=finding.optimizer
    )


def key_interval(rec: ProbeRecord, batch_size: Any, original: Any, config: LRConfig) -> sp.Interval:
    """A done key's interval at ``batch_size`` (scaled from the probe's batch size)."""
    iv, f = rec.interval, rec.finding
    factor = batch_factor(f, batch_size, config)
    if factor == 1.0:
        return sp.Interval(iv.low, iv.high, iv.status)
    b_lo, b_hi = bounds(original)
    return sp.narrow_interval(
        f.low * factor,
        f.high * factor,
        b_lo,
        b_hi,
        min_decades=config.min_decades,
        widen=config.widen,
    )


def target(
    ledger: Ledger, space: Any, values: dict[str, Any], config: LRConfig
) -> sp.Interval | None:
    """The LR interval a trial with ``values`` samples from.

    Its key's narrowed interval (scaled to the trial's batch size), the original range
    when that key's probe failed, or ``None`` while the key is not probed.
    """
    if not ledger.prepared:
        return None
    rec = ledger.probes.get(sp.probe_key(values, ledger.key_names))
    if rec is None:
        return None
    if rec.status is ProbeStatus.DONE and rec.interval is not None:
        name = config.batch_size_hp_name
        bs = values.get(name) if name else None
        return key_interval(rec, bs, original_hp(ledger, space), config)
    if rec.status is ProbeStatus.FAILED:
        return sp.Interval(*bounds(original_hp(ledger, space)))
    return None


# ------------------------------------------------------------------ narrowing
def narrow(ledger: Ledger, space: Any, config: LRConfig, used: Sequence[Any] = ()) -> Any:
    """``space`` with its LR set to the hull of every key's interval at every batch size.

    Done keys contribute their narrowed interval (scaled to each batch size the space
    allows), failed keys the original range; pending keys nothing yet. ``used``: the LR
    values of the trials so far (a Choice keeps them). Warns when a probe's interval
    misses the original range.
    """
    done = ledger.done()
    if not done:
        return space
    orig = original_hp(ledger, space)
    b_lo, b_hi = bounds(orig)
    for rec in done:
        if rec.interval is None:
            rec.interval = _first_interval(rec.finding, b_lo, b_hi, config)
    sizes = batch_sizes(space, config)
    targets = [key_interval(r, bs, orig, config) for r in done for bs in sizes]
    if ledger.any_failed():
        targets.append(sp.Interval(b_lo, b_hi))
    hull = sp.Interval(min(iv.low for iv in targets), max(iv.high for iv in targets))
    picks = [sp.clamp(r.finding.lr, hull.low, hull.high) for r in done]
    pick = picks[0] if len(picks) == 1 else math.prod(picks) ** (1 / len(picks))
    keep = [v for v in used if v is not None] if sp.hp_kind(orig) == "Choice" else ()
    new_space = sp.replace_hp(space, sp.narrow_hp(orig, hull, pick=pick, keep=keep))
    ledger.hull, ledger.batch_sizes = [hull.low, hull.high], sizes
    return new_space


def _first_interval(f: Finding, b_lo: float, b_hi: float, config: LRConfig) -> sp.Interval:
    iv = sp.narrow_interval(
        f.low, f.high, b_lo, b_hi, min_decades=config.min_decades, widen=config.widen
    )
    if iv.status.startswith("missed"):
        side = "below" if iv.status == "missed_below" else "above"
        warn(
            f"The probe's interval [{f.low:.3g}, {f.high:.3g}] for {config.lr_hp_name!r} "
            f"lies entirely {side} your range [{b_lo:g}, {b_hi:g}]; kept "
            f"[{iv.low:.3g}, {iv.high:.3g}] at its {'lower' if side == 'below' else 'upper'} "
            "end. Consider widening the range in your build function."
        )
    return iv


def refresh(ledger: Ledger, space: Any, config: LRConfig, used: Sequence[Any] = ()) -> Any:
    """Narrow again when the batch sizes changed (e.g. a batch-size hp declared in fit)."""
    if ledger.hull is not None and ledger.batch_sizes != batch_sizes(space, config):
        return narrow(ledger, space, config, used)
    return space


def record_answer(
    ledger: Ledger,
    rec: ProbeRecord,
    answer: ProbeAnswer,
    space: Any,
    config: LRConfig,
    *,
    used: Sequence[Any] = (),
    grid: bool = False,
) -> Any:
    """Record a probe's answer: narrow and queue seeds, or fail the key. The new space.

    ``used``: the LR values of the trials so far; ``grid``: the base strategy is a grid
    search (no seeds then, see :func:`seeding_off_reason`).
    """
    rec.artifacts = answer.artifacts or rec.artifacts
    if not answer.ok:
        return record_failure(ledger, rec, answer.error, space, config, used=used)
    rec.finding = Finding(
        lr=answer.lr,
        low=answer.low,
        high=answer.high,
        reasons=list(answer.reasons),
        candidates=dict(answer.candidates),
        batch_size=answer.batch_size,
        optimizer=answer.optimizer,
    )
    rec.status, rec.error = ProbeStatus.DONE, None
    try:
        new_space = narrow(ledger, space, config, used)
        queue_seeds(ledger, rec, new_space, config, seeding_off_reason(config, grid=grid))
    except Exception as exc:  # never lose the search over a narrowing problem
        rec.finding = None
        error = f"narrowing failed: {type(exc).__name__}: {exc}"
        return record_failure(ledger, rec, error, space, config, used=used)
    return new_space


def record_failure(
    ledger: Ledger,
    rec: ProbeRecord,
    error: str,
    space: Any,
    config: LRConfig,
    *,
    used: Sequence[Any] = (),
) -> Any:
    """Fail a key (its trials search the original range), with a warning. The new space."""
    rec.fail(error)
    lo_b, hi_b = bounds(original_hp(ledger, space))
    warn(
        f"Learning-rate probe {rec.trial_id or rec.key} ({rec.key}) failed: {error}. "
        f"Keeping the original range [{lo_b:g}, {hi_b:g}] for {config.lr_hp_name!r}; "
        "the search goes on."
    )
    try:  # other keys' narrowing must now cover the original range
        return narrow(ledger, space, config, used)
    except Exception:
        return space


# ------------------------------------------------------------------ placement
def place(ledger: Ledger, space: Any, values: dict[str, Any], config: LRConfig) -> dict:
    """``values`` with the proposed LR moved from the hull into its key's interval.

    Affine in log space for log sampling (a uniform draw over the hull becomes a
    uniform draw over the key's interval); a Choice keeps the value's relative rank.
    """
    name = config.lr_hp_name
    interval = target(ledger, space, values, config)
    hp = active_lr_hp(space, values, name)
    if interval is None or hp is None:
        return values
    if sp.hp_kind(hp) == "Choice":
        lr = choose_inside(values[name], list(hp.values), (interval.low, interval.high))
    else:
        lr = map_into(
            values[name],
            (float(hp.min_value), float(hp.max_value)),
            (interval.low, interval.high),
            log=getattr(hp, "sampling", "linear") == "log",
        )
        lr = sp.snap_to_hp(lr, hp)
    return {**values, name: lr}


def map_into(
    value: float,
    source: tuple[float, float],
    target: tuple[float, float],
    *,
    log: bool = True,
) -> float:
    """Move ``value`` from ``source`` to the same relative position in ``target``.

    The map is affine in log space (``log=True``, for log-sampled learning rates) or in
    linear space, so a uniform draw over ``source`` becomes a uniform draw over
    ``target``; ``source == target`` leaves ``value`` unchanged. ``value`` is first
    limited to ``source``; a point ``source`` maps to the centre of ``target``.
    """
    s_lo, s_hi = (float(v) for v in source)
    t_lo, t_hi = (float(v) for v in target)
    if s_lo > s_hi or t_lo > t_hi:
        raise ValueError(f"Intervals must have low <= high, got {source!r} and {target!r}.")
    if (s_lo, s_hi) == (t_lo, t_hi):
        return sp.clamp(value, t_lo, t_hi)
    v = sp.clamp(value, s_lo, s_hi)
    use_log = log and s_lo > 0 and t_lo > 0
    f = math.log if use_log else float
    g = math.exp if use_log else float
    span = f(s_hi) - f(s_lo)
    position = 0.5 if span <= 0 else (f(v) - f(s_lo)) / span
    out = g(f(t_lo) + position * (f(t_hi) - f(t_lo)))
    return sp.clamp(out, t_lo, t_hi)


def choose_inside(value: Any, values: Sequence[Any], target: tuple[float, float]) -> Any:
    """The value of ``values`` inside ``target`` at the same relative rank as ``value``.

    For a numeric ``Choice`` learning rate: ``value`` is one of ``values`` (sorted by
    size); the answer is the one at the same relative rank among those inside ``target``
    (the one closest to ``target`` when none is inside), so when every value is inside
    nothing changes.
    """
    ordered = sorted(v for v in values if sp.is_number(v))
    if not ordered:
        raise ValueError("`values` must contain numbers.")
    lo, hi = target
    inside = [v for v in ordered if lo <= v <= hi]
    if not inside:
        return min(ordered, key=lambda v: sp.log_distance(v, lo, hi))
    rank = ordered.index(value) if value in ordered else 0
    share = rank / (len(ordered) - 1) if len(ordered) > 1 else 0.5
    return inside[round(share * (len(inside) - 1))]


# ------------------------------------------------------------------ seeding
def seeding_off_reason(config: LRConfig, *, grid: bool) -> str | None:
    """Why no seeds are queued (``None``: seed). ``grid``: the base strategy is a grid."""
    if config.num_seeds == 0:
        return "num_seeds=0"
    if grid:
        return "grid search enumerates the narrowed range itself"
    return None


def queue_seeds(
    ledger: Ledger, rec: ProbeRecord, space: Any, config: LRConfig, off: str | None = None
) -> None:
    """Queue the seeded trials of a done key (none, with a note, when ``off`` says why)."""
    if off is not None:
        rec.notes.append(f"no seeded trials: {off}")
        return
    iv, f = rec.interval, rec.finding
    current = active_lr_hp(space, rec.key_values, config.lr_hp_name) or original_hp(ledger, space)
    seeds: list[float] = []
    for v in sp.seed_lrs(f.lr, iv.low, iv.high, config.num_seeds):
        s = sp.snap_to_hp(v, current)
        if s not in seeds:
            seeds.append(s)
    rec.seeds = [float(s) for s in seeds]
    ledger.seed_queue.extend(Seed(rec.key, float(s)) for s in seeds)


def take_seed(
    ledger: Ledger, space: Any, trial_id: str, values: dict[str, Any], config: LRConfig
) -> dict[str, Any] | None:
    """``values`` with the next queued seed as the LR (``None`` when no seed is queued).

    A seed of the trial's own key comes first; else the first queued seed, with the
    trial's key hyperparameters set to that seed's key.
    """
    queue = ledger.seed_queue
    if not queue:
        return None
    name = config.lr_hp_name
    key = sp.probe_key(values, ledger.key_names)
    index = next((i for i, s in enumerate(queue) if s.key == key), None)
    if index is None:
        index = 0
        values = _complete(space, values, ledger.probes[queue[0].key].key_values)
        if name not in values:
            return None
    seed = queue.pop(index)
    lr, note = _seed_value(ledger, space, seed, values, config)
    ledger.seeds_used.append(Seed(seed.key, float(lr), trial_id, note))
    return {**values, name: lr}


def _complete(space: Any, values: dict[str, Any], forced: dict[str, Any]) -> dict[str, Any]:
    names = {hp.name for hp in space.space}
    extras = {k: v for k, v in values.items() if k not in names}
    out = sp.default_values(space, {**values, **forced})
    out.update(extras)
    return out


def _seed_value(
    ledger: Ledger, space: Any, seed: Seed, values: dict[str, Any], config: LRConfig
) -> tuple[Any, str]:
    lr, note = float(seed.lr), "seed"
    rec = ledger.probes.get(seed.key)
    f = rec.finding if rec is not None else None
    name = config.batch_size_hp_name
    trial_bs = values.get(name) if name else None
    factor = batch_factor(f, trial_bs, config)
    if factor != 1.0:
        lr *= factor
        note = f"seed scaled x{factor:.3g} from batch size {f.batch_size} to {trial_bs}"
        interval = key_interval(rec, trial_bs, original_hp(ledger, space), config)
        lr = sp.clamp(lr, interval.low, interval.high)
    hp = active_lr_hp(space, values, config.lr_hp_name)
    return (sp.snap_to_hp(lr, hp) if hp is not None else lr), note


def _positive_number(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
        return float(v)
    return None
