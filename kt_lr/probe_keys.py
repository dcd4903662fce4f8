"""Probe keys: which probes a search runs, and the values each probe's model is built with.

One probe per combination of the probe-key hyperparameters' values (``probe_key_hps``,
plus a batch size with a few values, see :mod:`kt_lr.batching`), except combinations
under which the learning-rate hyperparameter is not used (it sits in a conditional
scope their branch never enters): those get no probe, with a note in the report.

Pure functions of ``(ledger, space, config)``; no Keras Tuner import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kt_lr import batching as bt
from kt_lr import space as sp
from kt_lr.ledger import Ledger, ProbeRecord, ProbeStatus, Seed

if TYPE_CHECKING:  # pragma: no cover
    from kt_lr.config import LRConfig

#: The schedule kind hyperparameter :func:`kt_lr.hp_schedule` declares; a probe trains
#: at its ``"constant"`` kind (a range test sets the rate itself).
SCHEDULE_HP_NAME = "lr_schedule"


def active_lr_hp(space: Any, values: dict[str, Any], name: str) -> Any | None:
    """The LR hyperparameter active for ``values`` (``None`` when it is not active)."""
    for hp in space.space:
        if hp.name == name and all(c.is_active(values) for c in hp.conditions):
            return hp
    return None


def probe_values(space: Any, key_values: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The values the probe of a key builds its model with; ``None`` if the LR is unused.

    The key's values, the defaults elsewhere, except that the parents of the LR's
    conditional scopes that are not key hyperparameters take a value that enters the
    scope, and ``lr_schedule`` (from :func:`kt_lr.hp_schedule`) is ``"constant"``.
    ``None`` when the LR hyperparameter is still not active: this key's branch never
    uses it.
    """
    overrides = dict(key_values)
    lr_hp = next((hp for hp in space.space if hp.name == name), None)
    if lr_hp is None:
        return None
    for condition in getattr(lr_hp, "conditions", None) or []:
        parent, allowed = getattr(condition, "name", None), getattr(condition, "values", None)
        if parent is not None and parent not in key_values and allowed:
            overrides[parent] = list(allowed)[0]
    schedule = next((hp for hp in space.space if hp.name == SCHEDULE_HP_NAME), None)
    if schedule is not None and SCHEDULE_HP_NAME not in key_values:
        if "constant" in (getattr(schedule, "values", None) or []):
            overrides[SCHEDULE_HP_NAME] = "constant"
    values = sp.default_values(space, overrides)
    return values if active_lr_hp(space, values, name) is not None else None


def _unused_note(key: str, name: str) -> str:
    return (
        f"{key}: {name!r} is not used in that branch (it is declared in a conditional "
        "scope the branch never enters); no probe, its trials train as built"
    )


def prepare(ledger: Ledger, space: Any, config: LRConfig) -> None:
    """Read the LR and the probe keys from ``space`` into an empty ledger.

    On a prepared ledger, only adds a batch size that became a probe key (a batch-size
    hyperparameter declared in ``HyperModel.fit`` enters the space after the first
    trial; see :func:`add_batch_key`).

    Raises:
        ValueError: the space has no usable LR hyperparameter, or a probe key is not
            discrete (the message says what to change).
    """
    if ledger.prepared:
        add_batch_key(ledger, space, config)
        return
    name = config.lr_hp_name
    entries = sp.find_lr_hps(space, name)
    key_names = sp.probe_key_names(space, config.probe_key_hps)
    batch = bt.probed_batch_size_name(space, config)
    if batch is not None and batch not in key_names:
        key_names.append(batch)
    keys, unused = {}, []
    for key, kv in sp.probe_keys(space, key_names).items():
        if probe_values(space, kv, name) is None:
            unused.append(key)
        else:
            keys[key] = kv
    original = [{"class_name": type(hp).__name__, "config": hp.get_config()} for hp in entries]
    ledger.prepare(name, original, key_names, keys)
    ledger.notes += [_unused_note(key, name) for key in unused]
    if batch is not None:
        ledger.batch_key = batch
        ledger.notes.append(_batch_key_note(space, batch))


def _batch_key_note(space: Any, name: str) -> str:
    values = next(hp for hp in space.space if hp.name == name).values
    return (
        f"{name!r} takes {len(values)} values ({', '.join(str(v) for v in values)}): each is "
        "probed (it is part of the probe key), so no rate is extrapolated across batch sizes"
    )


def add_batch_key(ledger: Ledger, space: Any, config: LRConfig) -> bool:
    """Make a batch size that appeared in ``space`` part of the probe key; whether it did.

    Each key splits into one key per batch size. A finished probe keeps its finding for
    the batch size it ran at (and its queued seeds); the other batch sizes are probed.
    A failed key stays failed at every batch size (its error would repeat). Waits
    (returns ``False``) while a probe runs: its batch size is not known yet. A ledger
    that already narrowed for several batch sizes (a project resumed from a kt_lr
    that scaled across batch sizes) is left as it is.
    """
    name = bt.probed_batch_size_name(space, config)
    if name is None or name in ledger.key_names or ledger.running():
        return False
    if ledger.batch_sizes not in (None, [None]):
        return False
    sizes = list(next(hp for hp in space.space if hp.name == name).values)
    key_names = [*ledger.key_names, name]
    probes: dict[str, ProbeRecord] = {}
    moved: dict[str, str] = {}
    for old_key, rec in ledger.probes.items():
        ran_at = rec.finding.batch_size if rec.finding is not None else None
        for size in sizes:
            kv = {**rec.key_values, name: size}
            key = sp.probe_key(kv, key_names)
            if probe_values(space, kv, ledger.hp_name or config.lr_hp_name) is None:
                continue
            if rec.status is ProbeStatus.DONE and ran_at == size and old_key not in moved:
                rec.key, rec.key_values, moved[old_key] = key, kv, key
                probes[key] = rec
            elif rec.status is ProbeStatus.FAILED:
                probes[key] = ProbeRecord(key, kv, status=ProbeStatus.FAILED, error=rec.error)
                probes[key].notes.append(f"the probe of {old_key} failed; not probed again")
            else:
                probes[key] = ProbeRecord(key, kv)
        if rec.status is ProbeStatus.DONE and old_key not in moved:
            ledger.notes.append(
                f"probe {rec.trial_id} ran at batch size {ran_at}, not one of {name!r}'s "
                "values; each value is probed instead"
            )
    ledger.seed_queue = [Seed(moved[s.key], s.lr) for s in ledger.seed_queue if s.key in moved]
    ledger.key_names, ledger.probes, ledger.batch_key = key_names, probes, name
    ledger.notes.append(_batch_key_note(space, name))
    return True
