"""Argument checks shared by the probes: one place, errors that say what to do.

The checks of the data itself (arrays, datasets, weights) are its sibling
:mod:`kt_lr.validation_data`.
"""

from __future__ import annotations

import math
import numbers
from contextlib import contextmanager

import numpy as np


def check_positive_float(name: str, value) -> float:
    """``value`` as a finite float > 0, or a ValueError naming ``name``."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a positive number, got {value!r}.") from None
    if not math.isfinite(out) or out <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")
    return out


def check_lr_bounds(start_lr, end_lr, *, start_name="start_lr", end_name="end_lr"):
    """Validated ``(start, end)`` learning-rate bounds with ``start < end``."""
    start = check_positive_float(start_name, start_lr)
    end = check_positive_float(end_name, end_lr)
    if start >= end:
        raise ValueError(
            f"`{start_name}` ({start:g}) must be smaller than `{end_name}` ({end:g}); e.g. "
            f"{start_name}=1e-7, {end_name}=10."
        )
    return start, end


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, or a ValueError naming ``name`` (the same check
    as :func:`check_count`, kept under this name for its callers)."""
    return check_count(name, value, minimum)


def check_choice(name: str, value, choices) -> str:
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}.")
    return value


def check_lr_grid(lrs) -> np.ndarray:
    """A sorted float64 array of positive, finite, distinct learning rates (>= 2)."""
    arr = np.asarray(lrs, dtype=np.float64).ravel()
    if arr.size < 2:
        raise ValueError(
            "`lrs` needs at least 2 learning rates, e.g. lrs=np.geomspace(1e-6, 1, 50)."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError("`lrs` must hold finite learning rates > 0.")
    arr = np.unique(arr)
    return arr


def check_whole(name: str, value, minimum: int = 0) -> int:
    """:func:`check_count` that also takes a float with an integer value (``15.0``), as the
    pure numpy helpers always have."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    return check_count(name, value, minimum)


def _to_float(value) -> float:
    """``float(value)``, or nan for what is not a number (a bool or a string included)."""
    if isinstance(value, bool | str):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _check_at_least(name: str, value, minimum: float, meaning: str) -> float:
    out = _to_float(value)
    if not (math.isfinite(out) and out >= minimum):
        raise ValueError(
            f"`{name}` must be a finite number >= {minimum:g} ({meaning}), got {value!r}."
        )
    return out


# -- the model --------------------------------------------------------------------------
def check_model(model) -> None:
    """A compiled ``keras.Model`` with an optimizer, a loss and a constant learning rate."""
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`model` must be a keras.Model, got {type(model).__name__}. Build and compile "
            "your model first, e.g. model.compile(optimizer=keras.optimizers.Adam(1e-3), "
            "loss='mse')."
        )
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise ValueError(
            "`model` is not compiled with an optimizer: kt_lr probes train it with its own "
            "optimizer and loss. Call model.compile(optimizer=keras.optimizers.Adam(1e-3), "
            "loss=...) before the probe."
        )
    if (
        getattr(model, "loss", None) is None
        and type(model).compute_loss is keras.Model.compute_loss
    ):
        raise ValueError(
            "`model` was compiled without a loss. Pass one to model.compile(loss=...), or "
            "override Model.compute_loss."
        )
    lr = model.optimizer._learning_rate
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule) or callable(lr):
        raise ValueError(
            "The model's optimizer uses a learning-rate schedule "
            f"({type(lr).__name__}); a range test sets the learning rate itself. Compile "
            "the model with a constant rate for the probe (e.g. "
            "keras.optimizers.Adam(learning_rate=1e-3)), then build the schedule from the "
            "finding with kt_lr.schedule_from(finding, ...)."
        )


def check_buildable(example_batch) -> None:
    """An unbuilt model needs a batch to build it on."""
    if example_batch is None:
        raise ValueError(
            "`model` is not built yet; pass data so kt_lr can build it, or call "
            "model.build(input_shape) first."
        )


@contextmanager
def data_fits_model():
    """Context: the model's own ``ValueError`` on a batch that does not fit it becomes one
    that says what to check (an unbuilt model's error passes unchanged)."""
    try:
        yield
    except ValueError as err:
        if "is not built" in str(err):
            raise
        raise ValueError(
            f"The model cannot run on a batch of your data: {err}. Check that `x` matches "
            "the model's input shape (and dtype) and that `y` matches its output."
        ) from err


def check_lr_variable(optimizer) -> int:
    """Position of the learning-rate variable among ``optimizer.variables`` (a stateless
    update sets the rate there)."""
    lr_var = optimizer.learning_rate
    for i, v in enumerate(optimizer.variables):
        if v is lr_var:
            return i
    raise ValueError(
        f"{type(optimizer).__name__}'s learning rate is not one of its variables, so kt_lr "
        "cannot set it for a stateless update on this backend. Compile the model with a "
        "plain float learning rate, e.g. keras.optimizers.Adam(learning_rate=1e-3)."
    )


def check_targets_given(model, y) -> None:
    """Targets for a model whose compiled loss compares outputs with them (Keras's own
    steps); a model with its own ``train_step`` or ``compute_loss`` may need none."""
    if y is not None or getattr(model, "loss", None) is None:
        return
    from kt_lr.training import overridden

    if overridden(model, "train_step") or overridden(model, "compute_loss"):
        return
    loss = model.loss
    if not isinstance(loss, str | dict | list | tuple):  # a Loss object or a function
        loss = getattr(loss, "__name__", type(loss).__name__)
    raise ValueError(
        f"`y` is None, but the model was compiled with loss={loss!r}, which compares the "
        "model's outputs with targets. Pass the targets as to fit: find_lr(model, x, y) "
        "(for a dataset, batches of (x, y))."
    )


def check_measurable_step(model) -> None:
    """The loss differentials measure the compiled loss (through ``compute_loss``): a model
    with its own ``train_step`` optimises something only that step knows."""
    from kt_lr.training import custom_train_step_note

    note = custom_train_step_note(model)
    if note is not None:
        raise ValueError(
            f"loss_differential cannot measure this model: {note}. Use kt_lr.range_test, or "
            "kt_lr.find_lr (it runs the range test alone and says so)."
        )


# -- the probes' options ----------------------------------------------------------------
def check_smoothing(name: str, value) -> float:
    """An exponential moving average's factor in ``[0, 1)``."""
    out = _to_float(value)
    if not 0 <= out < 1:
        raise ValueError(f"`{name}` must be in [0, 1), got {value!r}; 0.98 is the usual choice.")
    return out


def check_diverge_factor(value) -> float:
    """A divergence threshold: a finite number > 1 (times the lowest loss so far)."""
    out = _to_float(value)
    if not (math.isfinite(out) and out > 1):
        raise ValueError(
            f"`diverge_factor` must be a finite number > 1, got {value!r}; the default 4.0 "
            "means 'four times the lowest loss so far'."
        )
    return out


def check_confidence(confidence) -> float:
    """``confidence`` as a float; ValueError unless ``0 < confidence < 1``."""
    if isinstance(confidence, bool) or not isinstance(confidence, int | float | np.number):
        raise ValueError(
            f"confidence must be a number strictly between 0 and 1, got {confidence!r}; "
            "e.g. confidence=0.95."
        )
    if not 0 < confidence < 1:
        raise ValueError(
            f"confidence must be strictly between 0 and 1, got {confidence!r}; "
            "e.g. confidence=0.95 for a 95% interval."
        )
    return float(confidence)


def check_probes(probes) -> None:
    """``find_lr``'s ``probes``: a non-empty selection of its two probes."""
    bad = set(probes) - {"range_test", "loss_differential"}
    if bad or not probes:
        raise ValueError(
            f"`probes` must name 'range_test' and/or 'loss_differential', got {probes!r}."
        )


def check_known_options(where: str, options, valid) -> None:
    """TypeError naming the options ``where`` does not take, and listing those it does."""
    unknown = set(options) - set(valid)
    if unknown:
        raise TypeError(f"{where} got unknown option(s) {sorted(unknown)}; valid: {sorted(valid)}.")


def check_fuse_options(divisor, decades_below, decades_above, max_disagreement):
    """The fusion's coefficients as floats (see :func:`kt_lr.fuse.fuse`)."""
    return (
        _check_at_least("divisor", divisor, 1, "the pick is the edge / divisor; e.g. 3"),
        _check_at_least(
            "decades_below",
            decades_below,
            0,
            "how many decades the search interval reaches below the pick; e.g. 1.5",
        ),
        _check_at_least(
            "decades_above",
            decades_above,
            0,
            "how many decades the search interval reaches above the pick at least; e.g. 0.5",
        ),
        _check_at_least(
            "max_disagreement",
            max_disagreement,
            0,
            "how many decades the two probes' edges may differ before the loss "
            "differentials' edge alone is trusted; e.g. 1.0",
        ),
    )


# -- curves and their statistics (the pure helpers of suggest and stats) ------------------
def check_1d(values, name: str) -> np.ndarray:
    """``values`` as a 1-D float array."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array, got shape {arr.shape}; pass a flat sequence."
        )
    return arr


def check_increasing(lrs: np.ndarray, fix: str) -> None:
    """Strictly increasing learning rates, else a ValueError ending with ``fix``."""
    if np.any(np.diff(lrs) <= 0):
        raise ValueError(f"lrs must be strictly increasing; {fix}.")


def check_same_length(name: str, values: np.ndarray, losses: np.ndarray, fix: str) -> None:
    """One value of ``name`` per loss."""
    if values.shape != losses.shape:
        raise ValueError(
            f"{name} and losses must have the same length, got {values.size} and "
            f"{losses.size}; {fix}."
        )


def check_curve(lrs, losses) -> tuple[np.ndarray, np.ndarray]:
    """A range-test curve: 1-D, one loss per LR, LRs finite, positive, increasing."""
    lrs = check_1d(lrs, "lrs")
    losses = check_1d(losses, "losses")
    check_same_length("lrs", lrs, losses, "pass one loss per learning rate")
    if not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
        raise ValueError("lrs must be finite and positive; drop zero/negative learning rates.")
    check_increasing(
        lrs,
        "sort lrs and losses together (order = np.argsort(lrs)) and drop repeated learning rates",
    )
    return lrs, losses


def check_finite(values: np.ndarray) -> None:
    """A curve to smooth holds no nan/inf."""
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite; cut the curve at its first nan/inf first.")


def check_savgol_window(window, polyorder: int, n: int) -> int:
    """A Savitzky-Golay window: odd, ``polyorder < window <= n``."""
    if int(window) != window or window % 2 == 0 or not polyorder < window <= n:
        raise ValueError(
            f"window must be an odd integer with polyorder < window <= len(values) "
            f"(= {n}), got {window!r}; or pass window=None to choose it from the length."
        )
    return int(window)


def check_deltas(deltas) -> np.ndarray:
    """Loss differentials as a float array of shape ``(subsamples >= 2, LRs)``."""
    arr = np.asarray(deltas, dtype=float)
    if arr.ndim != 2:
        raise ValueError(
            f"deltas must be 2-D (num_subsamples, num_lrs), got shape {arr.shape}; "
            "for a single LR pass deltas[:, None]."
        )
    if arr.shape[0] < 2:
        raise ValueError(
            f"deltas needs at least 2 subsamples (rows) for an interval, got {arr.shape[0]}; "
            "use num_subsamples >= 2."
        )
    return arr


def check_summary(summary: dict, grid: np.ndarray, keys) -> dict[str, np.ndarray]:
    """The ``keys`` columns of a ``stats.summarize`` result, one value per LR of ``grid``."""
    missing = [k for k in keys if k not in summary]
    if missing:
        raise ValueError(f"summary is missing {missing}; build it with summarize(deltas).")
    cols = {k: np.asarray(summary[k], dtype=float) for k in keys}
    for name, col in cols.items():
        if col.shape != grid.shape:
            raise ValueError(
                f"summary[{name!r}] has shape {col.shape} but lrs has {grid.shape}; "
                "pass the LR grid the deltas were measured on."
            )
    return cols


def check_seconds(name: str, value, *, example, none_ok: bool = False, zero_ok: bool = False):
    """``value`` as a finite number of seconds (> 0, or >= 0 with ``zero_ok``).

    With ``none_ok``, ``None`` (wait forever) passes through. Booleans are refused.
    """
    if value is None and none_ok:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        forever = ", or None to wait forever" if none_ok else ""
        raise ValueError(
            f"`{name}` must be a number of seconds {bound} (e.g. {example}){forever}; "
            f"got {value!r}."
        )
    return float(value)


def check_count(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``: any integer (numpy's, an eager tensor's: whatever
    ``operator.index`` takes) but a bool; else a ValueError naming ``name``."""
    from operator import index

    got = None
    if not isinstance(value, bool):
        try:
            got = index(value)
        except TypeError:
            pass
    if got is None or got < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(got)


def check_nonnegative_float(name: str, value) -> float:
    """``value`` as a finite float >= 0 (``check_positive_float`` where 0 is allowed, e.g. a
    floor rate), or a ValueError naming ``name``."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if not (math.isfinite(out) and out >= 0):
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")
    return out


def check_width_options(min_decades: float, widen: float) -> tuple[float, float]:
    """Validated ``(min_decades, widen)``: ``min_decades >= 0``, ``widen >= 1``."""
    try:
        md, wf = float(min_decades), float(widen)
    except (TypeError, ValueError):
        raise ValueError(
            f"`min_decades` and `widen` must be numbers, got {min_decades!r} and {widen!r}."
        ) from None
    if not math.isfinite(md) or md < 0:
        raise ValueError(f"`min_decades` must be >= 0 (e.g. 0.5), got {min_decades!r}.")
    if not math.isfinite(wf) or wf < 1:
        raise ValueError(
            f"`widen` must be a factor >= 1 (1 keeps the probe's interval), got {widen!r}."
        )
    return md, wf


def check_measured(measured, deltas: np.ndarray) -> np.ndarray:
    """Which entries of ``deltas`` were measured, as a boolean array of its shape."""
    mask = np.asarray(measured)
    if mask.shape != deltas.shape:
        raise ValueError(
            f"measured has shape {mask.shape} but deltas has {deltas.shape}: pass one flag "
            "per subsample and LR (True where the loss differential was measured)."
        )
    return mask.astype(bool)


def check_budget(budget) -> float | None:
    """``find_lr``'s ``budget``: ``None`` (no sizing) or a finite number of epochs > 0
    (any real number but a bool: numpy's too)."""
    if budget is None:
        return None
    ok = isinstance(budget, numbers.Real) and not isinstance(budget, bool | np.bool_)
    if not ok or not math.isfinite(budget) or budget <= 0:
        raise ValueError(
            f"`budget` must be a finite number of epochs > 0 (e.g. 1.0, the default: one "
            f"epoch of your data; 0.5 for half) or None for the fixed-size probes (100 "
            f"range-test steps, 100 subsamples x 50 LRs), got {budget!r}."
        )
    return float(budget)
