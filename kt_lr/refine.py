"""Where the loss differentials spend their forward passes (pure numpy).

The rules that matter read the curve of mean ΔL in two places: near the *edge* (the
largest LR whose CI stays below zero) and near the *minimum*. A subsample's gradient is
computed once and every LR it is measured at costs one forward pass, so a
:class:`Sampler` measures most subsamples at ``lr_points`` LRs of the candidate grid (the
*lattice*, e.g. 50 LRs 0.1 decade apart): a pilot of :data:`PILOT` subsamples at every LR
of the lattice, then every later chunk at all lattice LRs around the current edge and
minimum plus an even backbone of coarse ones (:func:`coarse_indices`). That set is kept
while the edge and the minimum stay inside it, so the LRs near the answer are measured on
the same subsamples, the pilot's included: at equal subsamples the rules give the full
grid's answers. The rules read only the LRs measured on at least half of the subsamples
(:func:`well_measured`); the run of negative ΔL that ends at the edge stops at a gap between
them whose LRs, measured by fewer subsamples, do not have a negative mean
(:func:`gap_breaks`), as the full grid's run stops at a positive bump between two dips.

Subsamples come in chunks. With ``num_subsamples=None`` sampling stops once the edge is
*settled*: the edge under the current intervals and the edges under the intervals of
``max_subsamples`` subsamples (:func:`kt_lr.stats.project_interval`, the means moved
``spread`` standard deviations of the future mean down and up) lie within ``tolerance``
lattice steps, with every lattice LR from the lowest of them to one step above the highest
measured. More subsamples, up to the cap, would then likely not move the answer by more
than ``tolerance`` steps. Without any edge the lowest mean must be settled the same way.
"""

from __future__ import annotations

import numpy as np

from kt_lr import stats
from kt_lr.validation import check_confidence, check_count, check_increasing, check_lr_grid

CHUNK = 10
"""Subsamples per chunk: the granularity of the sequential stop."""

MAX_SUBSAMPLES = 100
"""The default cap of sequential sampling (the full estimator's number of subsamples)."""

MIN_SUBSAMPLES = 20
"""Sequential sampling never stops before this many subsamples (the coarse chunk and one
refined chunk)."""

PILOT = 4
"""Subsamples of the first chunk, measured at every LR when ``lr_points`` is smaller."""

SPREAD = 2.0
"""Standard deviations of the future mean the settled check allows for."""

STOP_REASONS = {
    "fixed": "the number of subsamples asked for",
    "settled": "the edge is settled",
    "max_subsamples": "the cap on subsamples",
}


def coarse_indices(size: int, k: int) -> np.ndarray:
    """``k`` lattice indices spread evenly over ``0..size-1``, both ends included.

    Args:
        size: how many LRs the lattice has.
        k: how many to take (at most ``size``).
    """
    k = min(int(k), int(size))
    return np.unique(np.round(np.linspace(0, size - 1, k)).astype(int))


def well_measured(count, total: int) -> np.ndarray:
    """Which LRs the rules read: those measured on at least half of the ``total``
    subsamples (and twice). An LR only the coarse pass measured would otherwise win the
    lowest mean by the noise of its few subsamples.

    Args:
        count: subsamples per LR.
        total: subsamples in all.
    """
    return np.asarray(count) >= max(2, -(-int(total) // 2))


def best_rules(lrs, summary: dict, total: int) -> dict:
    """:func:`kt_lr.stats.best_lr_rules` over the :func:`well_measured` LRs.

    Args:
        lrs: the LRs measured (increasing).
        summary: their statistics (with ``count``).
        total: subsamples in all.
    """
    lrs = np.asarray(lrs)
    keep = well_measured(summary["count"], total)
    best = stats.best_lr_rules(lrs[keep], {k: np.asarray(v)[keep] for k, v in summary.items()})

    def at(lr):
        return None if lr is None else int(np.flatnonzero(lrs == lr)[0])

    edge = unbridged(
        at(best["largest_negative"]),
        at(best["lowest_upper"]),
        np.flatnonzero(keep),
        gap_breaks(summary, keep),
    )
    best["largest_negative"] = None if edge is None else float(lrs[edge])
    return best


def gap_breaks(summary: dict, keep) -> np.ndarray:
    """Which LRs end a run of negative ΔL although the rules do not read them: those
    measured on too few subsamples (not ``keep``) whose mean ΔL is not below zero or that
    diverged on some subsample. The full grid reads every LR, so a positive bump between
    two negative regions ends its run there; the rules over the well-measured LRs alone
    would step over the bump when it was measured only by the pilot.

    Args:
        summary: statistics of every LR (``mean``, ``count``; ``finite`` when known).
        keep: which of them the rules read (:func:`well_measured`).
    """
    keep = np.asarray(keep, dtype=bool)
    mean = np.asarray(summary["mean"], dtype=float)
    finite = np.asarray(summary.get("finite", np.ones(mean.shape, dtype=bool)), dtype=bool)
    seen = (np.asarray(summary["count"]) > 0) & ~keep
    with np.errstate(invalid="ignore"):
        return seen & (~finite | ~(mean < 0))


def unbridged(edge: int | None, upper: int | None, kept, breaks) -> int | None:
    """The largest-negative rule's ``edge`` cut back to the last read LR before the first
    gap (LRs the rules do not read) that holds a :func:`gap_breaks` LR, walking up from
    the lowest upper bound ``upper``: the run of negative ΔL must not step over a bump.

    Args:
        edge: the edge's position (``None``: no edge).
        upper: the lowest upper bound's position.
        kept: the positions the rules read (increasing).
        breaks: per position, whether it ends a run (:func:`gap_breaks`).
    """
    if edge is None or upper is None:
        return edge
    kept = np.asarray(kept, dtype=int)
    run = kept[(kept >= upper) & (kept <= edge)]
    for a, b in zip(run[:-1], run[1:], strict=True):
        if b > a + 1 and np.any(breaks[a + 1 : b]):
            return int(a)
    return edge


def rule_indices(
    summary: dict,
    columns: np.ndarray,
    lattice: np.ndarray,
    breaks: np.ndarray | None = None,
    **projection,
):
    """``(edge, lowest)``: the lattice indices of the largest-negative and lowest-mean rules
    over the measured ``columns`` (``None`` where a rule has no answer); with
    ``count=...`` (and ``shift``, ``confidence``), the edge under the intervals of
    :func:`kt_lr.stats.project_interval`.

    Args:
        summary: :func:`kt_lr.stats.t_summary` of the measured columns.
        columns: their lattice indices (increasing).
        lattice: the candidate LRs.
        breaks: per lattice index, whether an LR outside ``columns`` ends a run of
            negative ΔL (:func:`gap_breaks`); ``None``: none does.
        **projection: ``count``, ``shift``, ``confidence`` for ``project_interval``.
    """
    if projection:
        summary = dict(summary)
        summary["t_low"], summary["t_high"] = stats.project_interval(summary, **projection)
    lrs = lattice[columns]
    best = stats.best_lr_rules(lrs, summary)

    def index(lr):
        return None if lr is None else int(columns[int(np.flatnonzero(lrs == lr)[0])])

    edge = index(best["largest_negative"])
    if breaks is not None:
        edge = unbridged(edge, index(best["lowest_upper"]), columns, breaks)
    return edge, index(best["lowest_mean"])


class Sampler:
    """Chooses the LRs and the number of subsamples of the loss differentials.

    Ask :meth:`request` for the next chunk (lattice indices, how many subsamples), measure
    it, hand the ΔL back to :meth:`add`; repeat until :attr:`done`. :meth:`stop` ends the
    sampling from outside (e.g. a time budget).

    Args:
        lattice: the candidate LRs (increasing).
        lr_points: LRs measured per subsample (``None``: every LR of the lattice).
        num_subsamples: exactly this many subsamples (``None``: sequential, see the module).
        max_subsamples: the cap of sequential sampling.
        min_subsamples: sequential sampling never stops before this many.
        chunk: subsamples per chunk.
        confidence: the level of the t-intervals.
        tolerance: lattice steps the edge may still move for it to count as settled.
        spread: how many standard deviations of the future mean the settled check allows
            for (see :meth:`edges`).
    """

    def __init__(
        self,
        lattice,
        *,
        lr_points: int | None = None,
        num_subsamples: int | None = None,
        max_subsamples: int = MAX_SUBSAMPLES,
        min_subsamples: int = MIN_SUBSAMPLES,
        chunk: int = CHUNK,
        confidence: float = 0.95,
        tolerance: int = 1,
        spread: float = SPREAD,
        pilot: int = PILOT,
    ):
        self.lattice = np.asarray(lattice, dtype=float)
        check_increasing(self.lattice, "pass the candidate LRs sorted")
        self.lattice = check_lr_grid(self.lattice)
        size = self.lattice.size
        self.k = size if lr_points is None else min(check_count("lr_points", lr_points, 2), size)
        self.fixed = (
            None if num_subsamples is None else check_count("num_subsamples", num_subsamples, 2)
        )
        self.cap = self.fixed or check_count("max_subsamples", max_subsamples, 2)
        self.floor = min(check_count("min_subsamples", min_subsamples, 2), self.cap)
        self.chunk = check_count("chunk", chunk, 1)
        self.confidence = check_confidence(confidence)
        self.tolerance = int(tolerance)
        self.spread = float(spread)
        self.coarse = coarse_indices(size, self.k)
        # the pilot measures every LR, so that every LR has the pilot's subsamples
        self.pilot = 0 if self.k >= size else min(int(pilot), self.cap)
        self.indices = np.arange(size) if self.pilot else self.coarse
        self.stop_reason: str | None = None
        self.history: list[dict] = []
        self._rows: list[np.ndarray] = []
        self._mask: list[np.ndarray] = []

    # -- the protocol ---------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Subsamples measured so far."""
        return len(self._rows)

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    def request(self) -> tuple[np.ndarray, int]:
        """``(lattice indices, number of subsamples)`` of the next chunk."""
        size = self.pilot if self.count == 0 and self.pilot else self.chunk
        return self.indices, min(size, self.cap - self.count)

    def add(self, indices, deltas) -> None:
        """Record a measured chunk and decide what comes next.

        Args:
            indices: the lattice indices the chunk was measured at.
            deltas: its ΔL, shape ``(subsamples, len(indices))`` (nan where a step
                diverged).
        """
        indices = np.asarray(indices, dtype=int)
        for row in np.atleast_2d(np.asarray(deltas, dtype=float)):
            full = np.full(self.lattice.size, np.nan)
            full[indices] = row
            seen = np.zeros(self.lattice.size, dtype=bool)
            seen[indices] = True
            self._rows.append(full)
            self._mask.append(seen)
        self._next()

    def stop(self, reason: str) -> None:
        """End the sampling (``reason`` in words, e.g. ``"time budget"``)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(lrs, deltas, measured)`` over the lattice LRs measured at least once;
        ``measured`` is ``None`` when every subsample was measured at every one of them."""
        mask = np.array(self._mask)
        cols = np.flatnonzero(mask.any(axis=0))
        deltas = np.array(self._rows)[:, cols]
        measured = mask[:, cols]
        return self.lattice[cols], deltas, None if measured.all() else measured

    # -- the decisions ------------------------------------------------------------------
    def edges(self) -> dict[str, int | None]:
        """Lattice indices of ``edge`` (the current intervals), ``hopeful`` and
        ``doubtful`` (the edge under the intervals of ``max_subsamples`` subsamples, their
        means moved ``spread`` standard deviations of the future mean down / up) and
        ``lowest`` (lowest mean); ``None`` where a rule has no answer."""
        none = dict.fromkeys(("edge", "hopeful", "doubtful", "lowest"))
        cols = self._measured()
        if self.count < 2 or cols.size == 0:
            return none
        summary = self._summary(cols)
        breaks = self._breaks(cols)
        edge, lowest = rule_indices(summary, cols, self.lattice, breaks)
        out = {"edge": edge, "lowest": lowest}
        for name, sign in (("hopeful", -1.0), ("doubtful", 1.0)):
            out[name], _ = rule_indices(
                summary,
                cols,
                self.lattice,
                breaks,
                count=self.cap,
                shift=sign * self.spread,
                confidence=self.confidence,
            )
        return out

    def _breaks(self, cols: np.ndarray) -> np.ndarray:
        """:func:`gap_breaks` over the lattice: LRs outside ``cols`` (the well-measured
        ones) measured by few subsamples whose mean ΔL is not below zero."""
        mask = np.array(self._mask)
        seen = np.flatnonzero(mask.any(axis=0))
        out = np.zeros(self.lattice.size, dtype=bool)
        summary = self._summary(seen)
        out[seen] = gap_breaks(summary, np.isin(seen, cols))
        return out

    def _summary(self, cols):
        mask = np.array(self._mask)[:, cols]
        return stats.t_summary(np.array(self._rows)[:, cols], self.confidence, measured=mask)

    def _measured(self) -> np.ndarray:
        """Lattice indices the rules read (:func:`well_measured`)."""
        if not self._mask:
            return np.zeros(0, dtype=int)
        return np.flatnonzero(well_measured(np.array(self._mask).sum(axis=0), self.count))

    def settled(self, found: dict) -> bool:
        """Whether more subsamples, up to the cap, would likely leave the edge within
        ``tolerance`` lattice steps (see the module); without an edge, the lowest mean."""
        marks = [found[k] for k in ("edge", "hopeful", "doubtful")]
        if all(m is None for m in marks):
            return self._lowest_settled(found["lowest"])
        if any(m is None for m in marks):
            return False
        lo, hi = min(marks), max(marks)
        span = np.arange(lo, min(hi + 1, self.lattice.size - 1) + 1)
        near = max(abs(m - found["edge"]) for m in marks) <= self.tolerance
        return near and bool(np.isin(span, self._measured()).all())

    def _lowest_settled(self, lowest: int | None) -> bool:
        """Whether every LR more than ``tolerance`` steps from the lowest mean stays above
        it by ``spread`` standard deviations of the difference of the future means."""
        if lowest is None:
            return True  # nothing finite to compare: more subsamples cannot help
        cols = self._measured()
        s = self._summary(cols)
        future = s["std"] * np.sqrt(np.maximum(self.cap - s["count"], 0)) / self.cap
        at = int(np.flatnonzero(cols == lowest)[0])
        far = np.abs(cols - lowest) > self.tolerance
        gap = s["mean"] - s["mean"][at]
        margin = self.spread * np.sqrt(future**2 + future[at] ** 2)
        ok = ~np.isfinite(s["mean"]) | (gap >= margin)
        return bool(np.all(ok[far]))

    def _next(self) -> None:
        found = self.edges()
        self.history.append(
            {
                "subsamples": self.count,
                **{k: None if v is None else float(self.lattice[v]) for k, v in found.items()},
            }
        )
        if self.fixed is not None:
            if self.count >= self.fixed:
                self.stop("fixed")
        elif self.count >= self.floor and self.settled(found):
            self.stop("settled")
        elif self.count >= self.cap:
            self.stop("max_subsamples")
        if not self.done and self.k < self.lattice.size:
            self.indices = self._focus(found)

    def _focus(self, found: dict) -> np.ndarray:
        """The next chunk's LR set: the current one while it holds the windows around the
        edge and the minimum, else those windows (edge first) plus a coarse backbone."""
        size = self.lattice.size
        marks = [found[k] for k in ("edge", "hopeful", "doubtful") if found[k] is not None]
        lowest = found["lowest"]
        top_anchor = max(marks) if marks else lowest
        low_anchor = min(marks) if marks else lowest
        if top_anchor is None:
            return self.indices
        measured = self._measured()
        above = measured[measured > top_anchor]
        top = max(top_anchor + 1, (int(above[0]) if above.size else size) - 1)
        bottom = low_anchor - 2
        edge_window = [i for i in range(bottom, top + 1) if 0 <= i < size]
        edge_window.sort(key=lambda i: (abs(i - top_anchor), i))
        min_window = []
        if lowest is not None:
            min_window = [i for i in range(lowest - 2, lowest + 3) if 0 <= i < size]
            min_window.sort(key=lambda i: (abs(i - lowest), i))
        wanted = set(edge_window) | set(min_window)
        if self.indices.size == self.k and wanted <= set(self.indices.tolist()):
            return self.indices
        chosen: list[int] = []
        for i in edge_window[: max(self.k - 2, 1)] + min_window:
            if i not in chosen and len(chosen) < self.k:
                chosen.append(i)
        rest = [int(i) for i in self.coarse if int(i) not in chosen]
        slots = self.k - len(chosen)
        if slots > 0 and rest:
            picks = np.unique(np.round(np.linspace(0, len(rest) - 1, slots)).astype(int))
            chosen += [rest[p] for p in picks]
        spare = sorted(set(range(size)) - set(chosen), key=lambda i: (abs(i - top_anchor), i))
        chosen += spare[: self.k - len(chosen)]
        return np.array(sorted(chosen), dtype=int)
