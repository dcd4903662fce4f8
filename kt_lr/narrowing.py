"""Narrowing, per-key placement, batch factors and the seed queue.

Pure functions of ``(ledger, space, config)``: the :class:`~kt_lr.ledger.Ledger`, the
oracle's search space (a Keras Tuner ``HyperParameters``, used duck-typed: ``space``,
``get_config``, ``from_config``) and the :class:`~kt_lr.config.LRConfig`. A function
that changes the space returns a new one; the oracle assigns it. No Keras Tuner import.

- :func:`prepare` / :func:`probe_values` (from :mod:`kt_lr.probe_keys`): the probe keys
  and the values each probe's model is built with.
- :func:`narrow`: the space's LR becomes the *hull* of every probe key's interval at
  every batch size the space allows (failed keys add the original range); a ``Choice``
  keeps the union of the values each key keeps.
- :func:`place`: a trial's LR moves from the hull into its own key's interval.
- :func:`target`: the interval a trial with given values samples from.
- :func:`queue_seeds` / :func:`take_seed`: the seeded trials of each key.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kt_lr import batching as bt
from kt_lr import space as sp
from kt_lr._protocol import ProbeAnswer
from kt_lr.ledger import Finding, Ledger, ProbeRecord, ProbeStatus, Seed, clause, warn
from kt_lr.probe_keys import active_lr_hp, prepare, probe_values

__all__ = ["prepare", "probe_values", "narrow", "place", "target", "queue_seeds", "take_seed"]

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


# ------------------------------------------------------------------ batch sizes
def _sizes_of(rec: ProbeRecord, sizes: list[float | None], config: LRConfig) -> list:
    """The batch sizes a key's trials run at: its own when the batch size is in the key."""
    name = config.batch_size_hp_name
    if name and name in rec.key_values:
        return [rec.key_values[name]]
    return sizes


def key_interval(rec: ProbeRecord, batch_size: Any, original: Any, config: LRConfig) -> sp.Interval:
    """A done key's interval at ``batch_size`` (scaled from the probe's batch size).

    Scaled up, it never rises above the top of the key's interval at the probe's batch
    size (:func:`kt_lr.batching.scaled_top`); its ``notes`` then say so.
    """
    iv, f = rec.interval, rec.finding
    factor = bt.finding_factor(f, batch_size, config)
    if factor == 1.0:
        return sp.Interval(iv.low, iv.high, iv.status)
    b_lo, b_hi = bounds(original)
    top = bt.scaled_top(f, iv.high, factor, b_hi)
    out = sp.narrow_interval(
        f.low * factor,
        f.high * factor,
        b_lo,
        top,
        min_decades=config.min_decades,
        widen=config.widen,
    )
    if top < b_hi and f.high * factor * config.widen > top:
        note = bt.cap_note(f, float(batch_size), factor, top)
        out = sp.Interval(out.low, out.high, out.status, (*out.notes, note))
    return out


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
    allows), failed keys the original range; pending keys nothing yet. A ``Choice``
    keeps the union of the values each key keeps (:func:`key_choices`). ``used``: the
    LR values of the trials so far (a Choice keeps them). Warns when a probe's interval
    misses the original range, when a Choice loses values, and when a scaled interval
    is capped.
    """
    done = ledger.done()
    if not done:
        return space
    orig = original_hp(ledger, space)
    b_lo, b_hi = bounds(orig)
    choice = sp.hp_kind(orig) == "Choice"
    for rec in done:
        if rec.interval is None:
            rec.interval = _first_interval(rec.finding, b_lo, b_hi, config)
            if choice:
                rec.choices = _first_choices(rec, orig, config)
    sizes = bt.batch_sizes(space, config)
    targets = []
    for rec in done:
        for bs in _sizes_of(rec, sizes, config):
            iv = key_interval(rec, bs, orig, config)
            _tell_cap(rec, iv, config)
            targets.append(iv)
    if ledger.any_failed():
        targets.append(sp.Interval(b_lo, b_hi))
    hull = sp.Interval(min(iv.low for iv in targets), max(iv.high for iv in targets))
    picks = [sp.clamp(r.finding.lr, hull.low, hull.high) for r in done]
    pick = picks[0] if len(picks) == 1 else math.prod(picks) ** (1 / len(picks))
    if choice:
        kept = [v for iv in targets for v in _near(orig, iv, config)]
        kept += [v for v in used if v is not None]
        new_hp = sp.choice_subset(orig, kept, pick=pick)
    else:
        new_hp = sp.narrow_hp(orig, hull, pick=pick)
    new_space = sp.replace_hp(space, new_hp)
    ledger.hull, ledger.batch_sizes = [hull.low, hull.high], sizes
    return new_space


def _near(hp: Any, interval: sp.Interval, config: LRConfig) -> list:
    """The values of the ``Choice`` ``hp`` that ``interval`` keeps (``min_choices`` at least)."""
    return sp.choice_values_near(list(hp.values), interval.low, interval.high, config.min_choices)


def _first_choices(rec: ProbeRecord, orig: Any, config: LRConfig) -> list:
    """The values a key keeps of a ``Choice`` LR; a warning names those it drops."""
    iv, values = rec.interval, list(orig.values)
    kept = _near(orig, iv, config)
    if len(kept) < len(values):
        note = sp.dropped_choices_note(values, kept, iv.low, iv.high, config.min_choices)
        rec.notes.append(note)
        warn(
            f"The learning-rate Choice {config.lr_hp_name!r}{rec.label}: {note}. Its trials "
            f"choose among {sp.format_values(kept)}; pass min_choices={len(kept) + 1} "
            "(or a larger widen) to keep more values."
        )
    return [float(v) for v in kept]


def _tell_cap(rec: ProbeRecord, interval: sp.Interval, config: LRConfig) -> None:
    """Note and warn (once per key and batch size) that a scaled interval was capped."""
    for note in interval.notes:
        if note.startswith("scaled x") and note not in rec.notes:
            rec.notes.append(note)
            warn(f"{config.lr_hp_name!r}{rec.label}: {note}.")


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
    if ledger.hull is not None and ledger.batch_sizes != bt.batch_sizes(space, config):
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
    for note in answer.notes:
        rec.notes.append(note)
        warn(f"Learning-rate probe {rec.trial_id}{rec.label}: {clause(note)}.")
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
        f"Learning-rate probe {rec.trial_id or rec.key}{rec.label} failed: {clause(error)}. "
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
        lr = choose_inside(
            values[name],
            list(original_hp(ledger, space).values),
            (interval.low, interval.high),
            min_keep=config.min_choices,
        )
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


def choose_inside(
    value: Any, values: Sequence[Any], target: tuple[float, float], *, min_keep: int = 1
) -> Any:
    """The value of ``values`` kept by ``target`` at the same relative rank as ``value``.

    For a numeric ``Choice`` learning rate: ``value`` is one of ``values`` (sorted by
    size); the answer is the one at the same relative rank among those
    :func:`kt_lr.space.choice_values_near` keeps for ``target`` (the values inside it,
    topped up to ``min_keep`` with the nearest ones), so when every value is kept
    nothing changes.
    """
    ordered = sorted(v for v in values if sp.is_number(v))
    if not ordered:
        raise ValueError("`values` must contain numbers.")
    lo, hi = target
    kept = sp.choice_values_near(ordered, lo, hi, min_keep)
    rank = ordered.index(value) if value in ordered else 0
    share = rank / (len(ordered) - 1) if len(ordered) > 1 else 0.5
    return kept[round(share * (len(kept) - 1))]


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
    values = probe_values(space, rec.key_values, config.lr_hp_name) or rec.key_values
    current = active_lr_hp(space, values, config.lr_hp_name) or original_hp(ledger, space)
    seeds: list[float] = []
    for v in sp.seed_lrs(f.lr, iv.low, iv.high, config.num_seeds):
        s = _snap(v, current, rec.choices)
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
    """The LR a trial takes from ``seed``, and how it was obtained, in words.

    At another batch size than the probe's, the seed is scaled by the batch-scaling
    rule and limited to that batch size's interval (the note says when it was).
    """
    lr, note = float(seed.lr), "seed"
    rec = ledger.probes.get(seed.key)
    f = rec.finding if rec is not None else None
    name = config.batch_size_hp_name
    trial_bs = values.get(name) if name else None
    factor = bt.finding_factor(f, trial_bs, config)
    orig = original_hp(ledger, space)
    choices = rec.choices if rec is not None else None
    if factor != 1.0:
        scaled = lr * factor
        interval = key_interval(rec, trial_bs, orig, config)
        lr = sp.clamp(scaled, interval.low, interval.high)
        note = (
            f"seed {seed.lr:.3g} scaled x{factor:.3g} from batch size {f.batch_size} to {trial_bs}"
        )
        if lr < scaled:
            note += f", capped at {lr:.3g}, the top of the interval at that batch size"
        elif lr > scaled:
            note += f", raised to {lr:.3g}, the bottom of the interval at that batch size"
        if choices is not None:
            choices = _near(orig, interval, config)
    hp = active_lr_hp(space, values, config.lr_hp_name)
    return (_snap(lr, hp, choices) if hp is not None else lr), note


def _snap(lr: float, hp: Any, choices: Sequence[float] | None) -> Any:
    """``lr`` as a legal value of ``hp``; for a Choice, the nearest of the key's ``choices``."""
    if sp.hp_kind(hp) == "Choice" and choices:
        allowed = [v for v in hp.values if v in set(choices)] or list(hp.values)
        return min(allowed, key=lambda v: (sp.log_distance(v, lr, lr), v))  # tie: the lower
    return sp.snap_to_hp(lr, hp)
