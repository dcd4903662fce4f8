"""Search-space helpers: find the LR hyperparameter, narrow it, probe keys, seed rates.

Pure logic. Nothing here imports Keras or Keras Tuner: hyperparameters are handled through
their public surface (``name``, ``get_config()``, ``type(hp).from_config``, ``values``) so the
functions work on Keras Tuner objects and are tested without building a model.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kt_lr.validation import check_int, check_positive_float, check_width_options

DEFAULT_LR_HP_NAME = "learning_rate"
#: Hyperparameters whose value changes the LR scale; one probe per combination of values.
DEFAULT_PROBE_KEY_HPS = ("optimizer",)
#: The probe key used when no key hyperparameter is in the space.
ALL_KEY = "*"

_KINDS = ("Boolean", "Fixed", "Choice", "Float", "Int")


def hp_kind(hp: Any) -> str:
    """``"Float"``, ``"Int"``, ``"Choice"``, ``"Boolean"``, ``"Fixed"`` or the class name."""
    for cls in type(hp).__mro__:
        if cls.__name__ in _KINDS:
            return cls.__name__
    return type(hp).__name__


def lr_hp_hint(name: str = DEFAULT_LR_HP_NAME) -> str:
    """The one line to add to a build function so kt_lr has an LR to narrow."""
    return f"hp.Float('{name}', 1e-5, 1e-1, sampling='log')"


def find_lr_hps(space: Any, name: str = DEFAULT_LR_HP_NAME) -> list:
    """Every hyperparameter called ``name`` in ``space`` (a ``HyperParameters``).

    Raises ``ValueError`` with the line to add when there is none, and when the
    hyperparameter is not a ``Float`` or a numeric ``Choice``.
    """
    entries = [hp for hp in space.space if hp.name == name]
    if len(entries) > 1:
        raise ValueError(
            f"The learning rate {name!r} is declared {len(entries)} times (e.g. once per "
            "optimizer under conditional_scope). Keras Tuner 1.4.8 drops or re-samples the "
            "value of a name declared more than once, so such a search silently trains with "
            "the wrong learning rate. Declare it once, outside any conditional scope:\n"
            f"    lr = {lr_hp_hint(name)}\n"
            "kt_lr already probes each optimizer separately (probe_key_hps) and samples every "
            "trial's learning rate inside its own optimizer's interval."
        )
    if not entries:
        known = sorted({hp.name for hp in space.space})
        listed = ", ".join(repr(n) for n in known) if known else "none"
        raise ValueError(
            f"No hyperparameter named {name!r} in the search space (it has: {listed}). "
            "kt_lr narrows the learning rate your model is built with; add this line to your "
            f"build function and pass the value to the optimizer:\n    lr = {lr_hp_hint(name)}\n"
            "If your learning rate has another name, pass lr_hp_name='<that name>'."
        )
    for hp in entries:
        kind = hp_kind(hp)
        if kind == "Choice":
            if not all(is_number(v) for v in hp.values):
                raise ValueError(
                    f"Hyperparameter {name!r} is a Choice of non-numbers {list(hp.values)}; a "
                    f"learning rate must be numeric. Use {lr_hp_hint(name)} instead."
                )
        elif kind != "Float":
            raise ValueError(
                f"Hyperparameter {name!r} is an hp.{kind}; kt_lr narrows an hp.Float (or a "
                f"numeric hp.Choice). Replace it with {lr_hp_hint(name)}."
            )
    return entries


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def hp_summary(hp: Any) -> dict[str, Any]:
    """Plain description of a Float or Choice: kind, bounds, sampling, step, values, default."""
    kind = hp_kind(hp)
    out: dict[str, Any] = {"name": hp.name, "kind": kind, "default": hp.default}
    if kind == "Choice":
        vals = [float(v) for v in hp.values]
        out.update(values=vals, min_value=min(vals), max_value=max(vals))
    else:
        out.update(
            min_value=float(hp.min_value),
            max_value=float(hp.max_value),
            sampling=getattr(hp, "sampling", "linear"),
            step=getattr(hp, "step", None),
        )
    return out


@dataclass(frozen=True)
class Interval:
    """A narrowed LR interval and how it was obtained.

    ``status`` is ``"inside"`` (the probe's interval fits in the original range),
    ``"clipped"`` (cut at an original bound) or ``"missed_below"`` / ``"missed_above"``
    (no overlap: a slice at the nearer end of the original range was kept).
    """

    low: float
    high: float
    status: str = "inside"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def decades(self) -> float:
        """Width in decades (log10(high / low)); ``inf`` when ``low <= 0``."""
        return math.log10(self.high / self.low) if self.low > 0 else math.inf


def narrow_interval(
    low: float,
    high: float,
    bound_low: float,
    bound_high: float,
    *,
    min_decades: float = 0.5,
    widen: float = 1.0,
) -> Interval:
    """Turn a probe's ``[low, high]`` into a sub-interval of ``[bound_low, bound_high]``.

    The probe's interval is widened by ``widen`` on each side (``low / widen``,
    ``high * widen``), grown around its geometric centre to at least ``min_decades``
    decades, then intersected with the original bounds; a clipped interval is grown back
    inside the bounds. When it misses the bounds entirely, a ``min_decades`` slice at the
    nearer end is kept (``status`` says which). The result never leaves the bounds.
    """
    lo, hi = check_positive_float("low", low), check_positive_float("high", high)
    if lo > hi:
        raise ValueError(f"`low` ({lo:g}) must not exceed `high` ({hi:g}).")
    min_decades, widen = check_width_options(min_decades, widen)
    b_lo, b_hi = float(bound_low), float(bound_high)
    if not (math.isfinite(b_lo) and math.isfinite(b_hi)) or b_hi <= 0 or b_lo > b_hi:
        raise ValueError(
            f"The original range [{bound_low!r}, {bound_high!r}] must be finite with "
            "min_value <= max_value and max_value > 0."
        )
    notes: list[str] = []
    lo, hi = lo / widen, hi * widen
    if widen > 1:
        notes.append(f"widened by x{widen:g} on each side to [{lo:.3g}, {hi:.3g}]")
    span = 10.0**min_decades
    if hi / lo < span:
        centre = math.sqrt(lo * hi)
        lo, hi = centre / math.sqrt(span), centre * math.sqrt(span)
        notes.append(f"grown to the minimum width of {min_decades:g} decades: [{lo:.3g}, {hi:.3g}]")

    if hi < b_lo:
        new_lo, new_hi = b_lo, min(b_hi, b_lo * span)
        notes.append(
            f"the interval lies entirely below the original range [{b_lo:.3g}, {b_hi:.3g}]; "
            f"kept the slice [{new_lo:.3g}, {new_hi:.3g}] at its lower end"
        )
        return Interval(new_lo, new_hi, "missed_below", tuple(notes))
    if lo > b_hi:
        new_hi = b_hi
        new_lo = max(b_lo, b_hi / span)
        notes.append(
            f"the interval lies entirely above the original range [{b_lo:.3g}, {b_hi:.3g}]; "
            f"kept the slice [{new_lo:.3g}, {new_hi:.3g}] at its upper end"
        )
        return Interval(new_lo, new_hi, "missed_above", tuple(notes))

    status = "inside"
    if lo < b_lo or hi > b_hi:
        status = "clipped"
        clip_top, clip_bottom = hi > b_hi, lo < b_lo
        lo, hi = max(lo, b_lo), min(hi, b_hi)
        if lo > 0 and hi / lo < span:
            if clip_top and not clip_bottom:
                lo = max(b_lo, hi / span)
            elif clip_bottom and not clip_top:
                hi = min(b_hi, lo * span)
        notes.append(
            f"clipped to the original range [{b_lo:.3g}, {b_hi:.3g}]: [{lo:.3g}, {hi:.3g}]"
        )
    return Interval(lo, hi, status, tuple(notes))


def clamp(value: float, low: float, high: float) -> float:
    """``value`` limited to ``[low, high]``."""
    return min(max(float(value), low), high)


def log_distance(v: float, low: float, high: float) -> float:
    """Distance of ``v`` to ``[low, high]`` in decades (0 inside, ``inf`` for ``v <= 0``)."""
    if low <= v <= high:
        return 0.0
    if v <= 0:
        return math.inf
    edge = low if v < low else high
    return abs(math.log10(v / edge)) if edge > 0 else math.inf


def _nearest(values: Sequence[float], target: float) -> float:
    return min(values, key=lambda v: log_distance(v, target, target))


def narrow_float(hp: Any, interval: Interval, *, pick: float | None = None) -> Any:
    """A copy of the ``Float`` ``hp`` with bounds ``interval``; sampling, step, conditions kept.

    With a ``step``, the bounds snap to the original grid (never emptied: the grid point
    nearest to the interval is kept). The default becomes ``pick`` limited to the new bounds.
    """
    config = hp.get_config()
    lo, hi = interval.low, interval.high
    if getattr(hp, "step", None) is not None:
        grid = sorted(float(v) for v in hp.values)
        inside = [v for v in grid if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]
        if not inside:
            inside = [min(grid, key=lambda v: log_distance(v, lo, hi))]
        lo, hi = inside[0], inside[-1]
        grid_inside = inside
    else:
        grid_inside = None
    lo, hi = max(lo, float(hp.min_value)), min(hi, float(hp.max_value))
    default = clamp(pick if pick is not None else math.sqrt(lo * hi), lo, hi)
    if grid_inside is not None:
        default = _nearest(grid_inside, default)
    config.update(min_value=lo, max_value=hi, default=default)
    return type(hp).from_config(config)


def choice_values_near(values: Sequence[Any], low: float, high: float, keep: int = 1) -> list:
    """The values of a numeric ``Choice`` that an interval ``[low, high]`` keeps.

    Every value inside the interval, topped up to ``keep`` values with the nearest ones
    outside it (distance in decades; on a tie the lower value, as a probe's pick misses
    more often too high than too low). In the order of ``values``; never empty.
    """
    nums = [v for v in values if is_number(v)]
    tol = 1e-9
    inside = [v for v in nums if low * (1 - tol) <= v <= high * (1 + tol)]
    outside = sorted(
        (v for v in nums if v not in inside), key=lambda v: (log_distance(v, low, high), v)
    )
    missing = max(int(keep), 1) - len(inside)
    chosen = set(inside) | set(outside[: max(missing, 0)])
    return [v for v in values if v in chosen]


def dropped_choices_note(
    values: Sequence[Any], kept: Sequence[Any], low: float, high: float, keep: int = 1
) -> str:
    """What a narrowing did to a ``Choice``'s values, and why, in words.

    ``keep``: the fewest values it keeps (``min_choices``).
    """
    dropped = [
        f"{v:g} ({log_distance(v, low, high):.2g} decades {'below' if v < low else 'above'} it)"
        for v in values
        if v not in kept
    ]
    inside = sum(1 for v in values if low <= v <= high)
    why = f"{inside} inside it" + (f", topped up to min_choices={keep}" if inside < keep else "")
    return (
        f"the narrowed interval [{low:.3g}, {high:.3g}] keeps {format_values(kept)} of "
        f"{format_values(values)} ({why}); dropped {', '.join(dropped)}"
    )


def format_values(values: Sequence[Any]) -> str:
    """A list of numbers as ``[0.01, 0.001]`` (``%g`` each)."""
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def choice_subset(hp: Any, values: Iterable[Any], *, pick: float | None = None) -> Any:
    """A copy of the ``Choice`` ``hp`` with only ``values`` (in its order; never emptied).

    The default becomes the kept value closest to ``pick`` (or the old default when no
    ``pick`` is given and it is kept).
    """
    wanted = set(values)
    kept = [v for v in hp.values if v in wanted] or list(hp.values)
    if pick is None:
        default = hp.default if hp.default in kept else kept[0]
    else:
        default = min(kept, key=lambda v: log_distance(v, pick, pick))
    config = hp.get_config()
    config.update(values=kept, default=default)
    return type(hp).from_config(config)


def filter_choice(
    hp: Any,
    interval: Interval,
    *,
    pick: float | None = None,
    keep: Iterable[Any] = (),
    min_keep: int = 1,
) -> Any:
    """A copy of the numeric ``Choice`` ``hp`` with the values :func:`choice_values_near` keeps.

    The values inside ``interval``, topped up to ``min_keep`` with the nearest ones (never
    emptied), plus those in ``keep`` (e.g. used by finished trials). The default becomes
    the kept value inside the interval closest to ``pick``.
    """
    near = choice_values_near(list(hp.values), interval.low, interval.high, min_keep)
    new = choice_subset(hp, [*near, *keep])
    target = pick if pick is not None else math.sqrt(interval.low * interval.high)
    return choice_subset(new, list(new.values), pick=clamp(target, min(near), max(near)))


def narrow_hp(
    hp: Any,
    interval: Interval,
    *,
    pick: float | None = None,
    keep: Iterable[Any] = (),
    min_keep: int = 1,
) -> Any:
    """Narrow a ``Float`` (:func:`narrow_float`) or filter a ``Choice`` (:func:`filter_choice`)."""
    kind = hp_kind(hp)
    if kind == "Float":
        return narrow_float(hp, interval, pick=pick)
    if kind == "Choice":
        return filter_choice(hp, interval, pick=pick, keep=keep, min_keep=min_keep)
    raise ValueError(f"Cannot narrow hp.{kind} {hp.name!r}; use {lr_hp_hint(hp.name)}.")


def _same_entry(entry: Mapping[str, Any], hp: Any) -> bool:
    cfg = hp.get_config()
    return (
        entry["config"]["name"] == cfg["name"]
        and entry["config"].get("conditions", []) == cfg["conditions"]
    )


def replace_hp(space: Any, new_hp: Any) -> Any:
    """A copy of ``space`` with the entry of the same name and conditions replaced by ``new_hp``.

    (``HyperParameters.merge`` would append a duplicate.) The current value of that
    hyperparameter becomes its new default when it falls outside the new range.
    """
    config = space.get_config()
    found = False
    for entry in config["space"]:
        if _same_entry(entry, new_hp):
            entry["class_name"] = type(new_hp).__name__
            entry["config"] = new_hp.get_config()
            found = True
    if not found:
        raise ValueError(f"No hyperparameter {new_hp.name!r} with those conditions to replace.")
    name = new_hp.name
    if name in config["values"] and not value_in_hp(config["values"][name], new_hp):
        config["values"][name] = new_hp.default
    return type(space).from_config(config)


def value_in_hp(value: Any, hp: Any) -> bool:
    """Whether ``value`` is a legal value of the Float/Choice ``hp``."""
    if hp_kind(hp) == "Choice":
        return value in list(hp.values)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    tol = 1e-12 * max(abs(float(hp.max_value)), 1.0)
    return float(hp.min_value) - tol <= v <= float(hp.max_value) + tol


def snap_to_hp(value: float, hp: Any) -> Any:
    """``value`` limited to the range of ``hp`` (nearest allowed value for a Choice/step)."""
    if hp_kind(hp) == "Choice":
        return _nearest([v for v in hp.values if is_number(v)], float(value))
    v = clamp(value, float(hp.min_value), float(hp.max_value))
    if getattr(hp, "step", None) is not None:
        v = _nearest(sorted(float(x) for x in hp.values), v)
    return v


def default_values(space: Any, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Values of the active hyperparameters of ``space``: ``overrides`` where given, else defaults.

    Conditions are resolved in space order, so an override of a parent decides which
    children are active. No randomness.
    """
    overrides = dict(overrides or {})
    hps = type(space)()
    for hp in space.space:
        hps.merge([hp])
        if hps.is_active(hp):
            hps.values[hp.name] = overrides.get(hp.name, hp.default)
        else:
            hps.values.pop(hp.name, None)
    return dict(hps.values)


def probe_key_names(space: Any, candidates: Iterable[str] = DEFAULT_PROBE_KEY_HPS) -> list[str]:
    """The names in ``candidates`` that are discrete hyperparameters of ``space``.

    Raises ``ValueError`` when a candidate is present but continuous (Float/Int without
    a finite set of values), since one probe per value would be unbounded.
    """
    names = []
    by_name = {}
    for hp in space.space:
        by_name.setdefault(hp.name, hp)
    for name in candidates:
        hp = by_name.get(name)
        if hp is None:
            continue
        if hp_kind(hp) not in ("Choice", "Boolean", "Fixed"):
            raise ValueError(
                f"Probe key hyperparameter {name!r} is an hp.{hp_kind(hp)}; probe keys must be "
                "discrete (hp.Choice, hp.Boolean or hp.Fixed). Pass probe_key_hps=() to "
                "probe once for the whole space."
            )
        names.append(name)
    return names


def discrete_values(hp: Any) -> list:
    """The values of a ``Choice``, ``Boolean`` or ``Fixed`` hyperparameter."""
    kind = hp_kind(hp)
    if kind == "Boolean":
        return [False, True]
    if kind == "Fixed":
        return [hp.value]
    return list(hp.values)


def probe_key(values: Mapping[str, Any], key_names: Sequence[str]) -> str:
    """The probe key of a trial's ``values``: ``"*"`` without key names, else ``"name=value,..."``."""
    if not key_names:
        return ALL_KEY
    return ",".join(f"{name}={values.get(name)}" for name in key_names)


def probe_keys(space: Any, key_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Every probe key of ``space`` mapped to the key hyperparameters' values (in order)."""
    if not key_names:
        return {ALL_KEY: {}}
    by_name = {}
    for hp in space.space:
        by_name.setdefault(hp.name, hp)
    grids = [discrete_values(by_name[n]) for n in key_names]
    out = {}
    for combo in itertools.product(*grids):
        kv = dict(zip(key_names, combo, strict=True))
        out[probe_key(kv, key_names)] = kv
    return out


# where the seeded trials go, in decades from the pick: one decade below (the pick is far too
# high where the budget, not optimisation, limits the rate: overfitting, noise of sign-based
# updates; measured 20-25x on the benchmarks), then half a decade above (bounded by the edge)
SEED_OFFSETS = (-1.0, 0.5)
SEED_MIN_SEPARATION = 0.25  # decades between two seeds


def seed_lrs(
    pick: float, low: float, high: float, num: int, bracket: Sequence[float] | None = None
) -> list[float]:
    """``num`` learning rates to seed a search: ``pick`` first, then the rates that bracket it.

    After the pick: ``bracket``, by default ``pick / 10`` and ``pick * 10**0.5`` (limited to
    ``[low, high]``), then points splitting ``[low, high]`` evenly in log space, then its
    ends. A rate within ``SEED_MIN_SEPARATION`` decades of one already chosen is skipped (a
    near-duplicate trial teaches the search nothing).
    """
    if check_int("num_seeds", num, 0) == 0:
        return []
    lo, hi = check_positive_float("low", low), check_positive_float("high", high)
    first = clamp(check_positive_float("pick", pick), lo, hi)
    out = [first]
    if bracket is None:
        bracket = [first * 10**d for d in SEED_OFFSETS]
    bracket = [clamp(check_positive_float("bracket", v), lo, hi) for v in bracket]
    m = max(num - 1 - len(bracket), 0)
    grid = [lo * (hi / lo) ** ((k + 1) / (m + 1)) for k in range(m)]
    for v in [*bracket, *grid, lo, hi]:
        if len(out) == num:
            break
        if all(abs(math.log10(v / u)) >= SEED_MIN_SEPARATION for u in out):
            out.append(v)
    return out
