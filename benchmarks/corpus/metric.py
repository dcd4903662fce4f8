"""Curve regret: a pick judged against a task's smoothed loss-vs-LR curve (pure numpy).

With 3-5 training seeds per grid point, the grid's best point is a lucky minimum, and a
pick scored by training it 3 times is mostly seed noise. Instead every seed's log
validation loss at every grid LR feeds one local regression (tricube-weighted quadratic
in log10 LR, half-width ``bandwidth`` decades); ``regret(lr) = exp(curve(lr) - min curve)``.
Every probe seed's pick is scored without training it, so a method's figure is its
expected regret, not the luck of one probe and three runs.

* A run that diverged (NaN) or ended no better than the untrained model counts at the
  untrained model's loss in the fit.
* The **divergence cut** is the first grid LR above the curve's minimum where most
  seeds failed; a pick at or above it counts as diverged (regret ``inf``).
* Picks below the grid are scored at the grid's lowest LR (the grid extends down until
  the loss stops improving, so this under-states their regret, never over-states it).
* A curve whose minimum stays within 10% of the untrained model's loss
  (``exp(min curve) > DEGENERATE x initial``, i.e. ``min curve > log(initial) -
  log(1 / DEGENERATE)``) is **degenerate**: the task never trains at any grid LR, every
  pick's regret is ~1 (or ``inf`` past a meaningless cut), so it says nothing about a
  method and is left out of the aggregates (:func:`degenerate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BANDWIDTH = 0.6  # decades, half-width of the tricube window
STEP = 0.01  # decades between evaluation points of the fitted curve
# A task "trains" when the curve's minimum is below 0.9x the untrained model's loss. On the
# corpus the ratio is 1.00 for the one task that never trains and at most 0.69 for every
# other (noisy labels and tiny training sets keep a few near 0.66-0.69), so any threshold
# in 0.7..0.99 flags the same tasks; 0.9 sits in the middle of that gap.
DEGENERATE = 0.9


def local_quadratic(
    x: np.ndarray, y: np.ndarray, at: np.ndarray, bandwidth: float = BANDWIDTH
) -> np.ndarray:
    """Tricube-weighted local quadratic regression of ``y`` on ``x``, evaluated at ``at``.

    Args:
        x: sample positions (log10 LR), shape ``(n,)``.
        y: sample values (log loss), shape ``(n,)``.
        at: evaluation positions, shape ``(m,)``.
        bandwidth: half-width of the window; where fewer than 3 distinct ``x`` fall in
            it, the window widens (x1.5 at a time) until they do.

    Returns:
        The fitted values at ``at``, shape ``(m,)``.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    at = np.atleast_1d(np.asarray(at, float))
    if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
        raise ValueError("x and y must be 1-d arrays of the same, non-zero length")
    distinct = np.unique(x)
    need = min(3, len(distinct))
    # each point's window: bandwidth x 1.5^j, the smallest j >= 0 whose open window holds
    # `need` distinct x (the `need`-th nearest distinct x lies strictly inside it)
    nearest = np.sort(np.abs(distinct[None, :] - at[:, None]), axis=1)[:, need - 1]
    h = np.full(len(at), float(bandwidth))
    while np.any(grow := nearest >= h):
        h[grow] *= 1.5
    d = (x[None, :] - at[:, None]) / h[:, None]  # (m, n)
    w = np.clip(1 - np.abs(d) ** 3, 0, None) ** 3
    design = np.stack([np.ones_like(d), d, d * d], axis=2)[:, :, :need]  # (m, n, p)
    wd = design * w[:, :, None]
    normal = np.einsum("mnp,mnq->mpq", wd, design)
    rhs = np.einsum("mnp,n->mp", wd, y)
    return np.einsum("mpq,mq->mp", np.linalg.pinv(normal), rhs)[:, 0]


@dataclass
class Curve:
    """A task's smoothed loss-vs-LR curve for one target (final or best epoch).

    Args:
        log_lrs: evaluation grid, log10 LR.
        values: fitted log loss on that grid.
        cut: the divergence cut (an LR), or ``None`` when no grid LR above the
            minimum failed.
        best_lr: the LR at the curve's minimum below the cut.
        lattice: the grid's LRs (sorted).
    """

    log_lrs: np.ndarray
    values: np.ndarray
    cut: float | None
    best_lr: float
    lattice: np.ndarray

    @property
    def minimum(self) -> float:
        return float(np.min(self.values[self._below_cut()]))

    def _below_cut(self) -> np.ndarray:
        if self.cut is None:
            return np.ones(len(self.log_lrs), bool)
        keep = self.log_lrs < math.log10(self.cut) - 1e-9
        return keep if keep.any() else np.arange(len(self.log_lrs)) == 0

    def value(self, lr: float) -> float:
        """The fitted log loss at ``lr`` (clamped into the grid)."""
        x = float(np.clip(math.log10(lr), self.log_lrs[0], self.log_lrs[-1]))
        return float(np.interp(x, self.log_lrs, self.values))

    def regret(self, lr: float | None) -> float:
        """``exp(curve(lr) - min curve)``; ``inf`` at or above the cut, or for no pick."""
        if lr is None or not math.isfinite(lr) or lr <= 0:
            return math.inf
        if self.cut is not None and lr >= self.cut * (1 - 1e-9):
            return math.inf
        return float(math.exp(max(0.0, self.value(lr) - self.minimum)))


def fit_curve(
    lrs: np.ndarray,
    losses: np.ndarray,
    cap: float,
    bandwidth: float = BANDWIDTH,
    step: float = STEP,
) -> Curve:
    """Fit the curve through every run of one target.

    Args:
        lrs: the LR of each run, shape ``(n,)``.
        losses: the run's loss for the target (NaN/inf: diverged), shape ``(n,)``.
        cap: the untrained model's loss: failed runs count at it, worse ones are capped.
        bandwidth: the regression's half-width in decades.
        step: spacing of the evaluation grid in decades.
    """
    lrs = np.asarray(lrs, float)
    losses = np.asarray(losses, float)
    if not math.isfinite(cap) or cap <= 0:
        finite = losses[np.isfinite(losses) & (losses > 0)]
        if not len(finite):
            raise ValueError("no finite loss to fit a curve through")
        cap = float(finite.max())
    ok = np.isfinite(losses) & (losses > 0)
    capped = np.where(ok, np.minimum(losses, cap), cap)
    x = np.log10(lrs)
    y = np.log(capped)
    lattice = np.unique(lrs)
    fails = {}
    for lr in lattice:
        vals = losses[lrs == lr]
        fails[lr] = np.count_nonzero(~np.isfinite(vals) | (vals >= cap)) * 2 > len(vals)
    grid = np.arange(x.min(), x.max() + step / 2, step)
    values = local_quadratic(x, y, grid, bandwidth)
    # the cut: first failed lattice LR above the lowest-median grid point
    med = {lr: np.median(np.where(ok, capped, cap)[lrs == lr]) for lr in lattice}
    best_grid = min(lattice, key=lambda lr: (med[lr], lr))
    cut = next((lr for lr in lattice if lr > best_grid and fails[lr]), None)
    curve = Curve(grid, values, None if cut is None else float(cut), 0.0, lattice)
    keep = curve._below_cut()
    idx = np.flatnonzero(keep)[int(np.argmin(values[keep]))]
    curve.best_lr = float(10 ** grid[idx])
    return curve


def untrained_ratio(curve: Curve, initial: float) -> float:
    """``exp(min curve) / initial``: the curve's best loss as a fraction of the untrained
    model's loss (``nan`` when the untrained loss is unknown)."""
    if not math.isfinite(initial) or initial <= 0:
        return math.nan
    return math.exp(curve.minimum) / initial


def degenerate(curve: Curve, initial: float, threshold: float = DEGENERATE) -> bool:
    """Whether the curve never gets below ``threshold`` x the untrained model's loss
    (``min curve > log(initial) - log(1 / threshold)``): a task no LR trains, whose
    regret is flat and says nothing about a method. ``False`` when ``initial`` is unknown.
    """
    ratio = untrained_ratio(curve, initial)
    return math.isfinite(ratio) and ratio > threshold


def bootstrap_floor(
    lrs: np.ndarray,
    losses: np.ndarray,
    cap: float,
    *,
    draws: int = 50,
    seed: int = 0,
    bandwidth: float = BANDWIDTH,
) -> float:
    """The regret of a perfect rule that only sees this many seeds: the median, over
    bootstrap resamples of each grid point's runs, of the full curve's regret at the
    resampled curve's minimum (the metric's own noise floor for this task).

    Args:
        lrs: the LR of each run.
        losses: each run's loss for the target.
        cap: the untrained model's loss.
        draws: bootstrap resamples.
        seed: the resampling generator's seed.
        bandwidth: the regression's half-width in decades.
    """
    lrs = np.asarray(lrs, float)
    losses = np.asarray(losses, float)
    full = fit_curve(lrs, losses, cap, bandwidth, step=0.02)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(lrs == lr) for lr in np.unique(lrs)]
    out = []
    for _ in range(draws):
        idx = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        boot = fit_curve(lrs[idx], losses[idx], cap, bandwidth, step=0.02)
        out.append(full.regret(boot.best_lr))
    return float(np.median(out))


def spread(picks: list[float | None]) -> float:
    """Max pick / min pick over probe seeds (``inf`` when any probe gave no pick)."""
    vals = [p for p in picks if p is not None and math.isfinite(p) and p > 0]
    if len(vals) < len(picks) or not vals:
        return math.inf
    return float(max(vals) / min(vals))
