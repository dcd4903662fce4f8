"""Fuse the range test and the loss differentials into one answer (pure numpy).

Both probes estimate the same thing from two sides: the *edge of stability*,
the learning rate beyond which training stops making progress.

* Range test: the LR at the minimum of the (centred-smoothed) loss of the
  sweep (past it, the loss climbs). It is measured while the model trains, so it sees a
  few hundred steps of dynamics, but it runs late (the LR moves on before the
  damage shows) and points high on sharp models.
* Loss differentials: the largest LR whose whole confidence interval of ΔL
  stays below zero (one step from the current state reliably lowers the loss),
  and the LR of the lowest mean ΔL (the best single step). These are exact
  one-step measurements, but only of the first step.

The edge is the geometric mean of the two estimates when they agree within
``max_disagreement`` decades, else the differentials' edge: it rests on a
confidence interval over many subsamples, while the range test is one noisy
trajectory that points far too high on attention models and, on noisy SGD
curves, can bottom out by chance decades too low (both seen on the benchmark).
The pick is the geometric mean of ``edge / divisor`` and the range test's
valley (fast.ai's rule) when the valley lies below the edge, else ``edge /
divisor``; the search interval spans ``decades_below`` decades under the pick
and up to the edge (at least ``decades_above`` above it).

Why the valley too: the two picks fail in different ways (the valley on one
noisy trajectory or on attention models, ``edge / divisor`` on a noisy edge), so
the mean of their logarithms shrinks the error of whichever is off.

Why ``divisor`` 3 and ``decades_below`` 1.5: where the best LR is set by
optimisation, the best constant LR for a fixed budget sat a few times below the
edge; where it is set by overfitting within the budget it sits far lower, and no
one-step or training-loss signal sees it, so the interval reaches well below the
pick for the search to find it. The measured figures behind these choices (regret
of each rule, per task) are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import math

import numpy as np

from kt_lr import suggest
from kt_lr.results import LossDifferentialResult, LRFinding, RangeTestResult
from kt_lr.validation import check_fuse_options

# an edge within this many decades of the top of the probed range is flagged: the loss
# may still fall beyond it (e.g. Adadelta, whose useful LRs are ~1..10)
EDGE_AT_TOP_DECADES = 0.25
# an edge within this many decades of the bottom is flagged: the pick (edge / 3) is then
# within a decade of the smallest rate probed and the search interval is cut by it, so the
# answer is set by start_lr rather than by the model (e.g. Ftrl, whose first step from a
# fresh state shrinks every weight towards zero at any rate: the loss rises from the start)
EDGE_AT_BOTTOM_DECADES = 1.5

DEFAULTS = {
    "divisor": 3.0,
    "decades_below": 1.5,
    "decades_above": 0.5,
    "max_disagreement": 1.0,
}


def range_test_edge(result: RangeTestResult) -> float | None:
    """LR at the minimum of the range-test loss (``None`` without descent).

    Read on the heuristics' view of the curve (:func:`kt_lr.suggest.prepare_curve`:
    despiked, cut where a running median diverges, centred Savitzky-Golay): the
    sweep's EMA lags by tens of steps and the noisy tail past the edge can dip
    anywhere, so neither gives a stable minimum.

    Args:
        result: a range test's result.
    """
    return curve_edge(result.lrs, result.losses)


def curve_edge(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """:func:`range_test_edge` on raw arrays of a sweep's LRs and per-step losses.

    Args:
        lrs: the learning rate of every step (increasing).
        losses: the training loss of every step.
    """
    lrs, _, curve = suggest.prepare_curve(lrs, losses)
    if len(curve) < 5:
        return None
    idx = int(np.argmin(curve))
    if idx == 0 or curve[idx] >= curve[0]:
        return None
    return float(lrs[idx])


def edge_at_top_note(top: float) -> str:
    """Why an edge at the top of the probed range makes the pick a lower bound, in words.

    Args:
        top: the largest learning rate probed.
    """
    return (
        f"the loss still fell near the top of the probed range ({top:.3g}): the edge of "
        "stability may lie above it and the pick be too low; probe higher "
        "(find_lr(..., end_lr=...)) or widen the learning_rate range"
    )


def edge_at_bottom_note(bottom: float) -> str:
    """Why an edge near the bottom of the probed range makes the answer unreliable, in words.

    Args:
        bottom: the smallest learning rate probed.
    """
    return (
        f"the edge of stability lies near the bottom of the probed range ({bottom:.3g}): "
        "the loss rose almost from the smallest rate, so the pick and the interval are "
        "set by the range rather than by the model; probe lower "
        "(find_lr(..., start_lr=...)), or check that the optimizer continues from the "
        "model's weights (Ftrl's first step shrinks them towards zero at any rate) and "
        "that the data and loss are sound"
    )


def differential_edge(result: LossDifferentialResult) -> float | None:
    """Largest LR whose whole CI of ΔL is below zero, else the LR of the lowest mean.

    ``None`` when no LR lowered the loss on average.

    Args:
        result: a loss-differential result.
    """
    best = result.best
    edge = best.get("largest_negative")
    if edge is None:
        mean = best.get("lowest_mean")
        if mean is None:
            return None
        idx = int(np.argmin(np.abs(np.log(result.lrs) - math.log(mean))))
        if not np.isfinite(result.mean[idx]) or result.mean[idx] >= 0:
            return None
        edge = mean
    return float(edge)


_LABELS = {"range_test": "range test", "differential": "loss differentials"}


def _record(candidates: dict, edges: dict, probe: str, found: dict, edge) -> None:
    """Keep a probe's candidate LRs (as ``probe:name``) and its edge, when it has one."""
    candidates.update({f"{probe}:{k}": v for k, v in found.items()})
    candidates[f"{probe}:edge"] = edge
    if edge is not None:
        edges[_LABELS[probe]] = edge


def fuse(
    range_test: RangeTestResult | None,
    differential: LossDifferentialResult | None,
    *,
    divisor: float = DEFAULTS["divisor"],
    decades_below: float = DEFAULTS["decades_below"],
    decades_above: float = DEFAULTS["decades_above"],
    max_disagreement: float = DEFAULTS["max_disagreement"],
    bounds: tuple[float, float] | None = None,
) -> LRFinding:
    """Combine the two probe results into an :class:`LRFinding` (see the module doc).

    Args:
        range_test: the range test's result, or ``None``.
        differential: the loss differentials' result, or ``None``.
        divisor: the pick starts from the edge of stability divided by this (>= 1).
        decades_below: how many decades the search interval reaches below the pick (>= 0).
        decades_above: how many decades it reaches above the pick at least (>= 0); it
            always reaches the edge.
        max_disagreement: when the two edges differ by more decades than this (>= 0),
            the loss differentials' edge alone is trusted; else their geometric mean.
        bounds: ``(low, high)``, the range that was probed: the answer is clipped into
            it and an edge near ``high`` or ``low`` is flagged (``settings['edge_at_top']``,
            ``settings['edge_at_bottom']``, with a reason).

    Returns:
        An :class:`~kt_lr.results.LRFinding` with the pick, the interval, the candidates
        and the reasons.

    Raises:
        ValueError: for a bad coefficient (the message names it and the fix).
        RuntimeError: when neither probe found a learning rate that lowers the loss.
    """
    divisor, decades_below, decades_above, max_disagreement = check_fuse_options(
        divisor, decades_below, decades_above, max_disagreement
    )
    reasons: list[str] = []
    candidates: dict[str, float | None] = {}
    edges: dict[str, float] = {}
    if range_test is not None:
        rt_edge = range_test_edge(range_test)
        _record(candidates, edges, "range_test", range_test.suggestions, rt_edge)
        if rt_edge is not None:
            reasons.append(
                f"range test: smoothed loss lowest at lr={rt_edge:.3g} ({range_test.stop_reason})"
            )
        else:
            reasons.append("range test: the smoothed loss never went down")
    if differential is not None:
        ld_edge = differential_edge(differential)
        _record(candidates, edges, "differential", differential.best, ld_edge)
        if ld_edge is not None:
            rule = (
                f"largest LR whose {differential.confidence:.0%} CI of ΔL stays below zero"
                if differential.best.get("largest_negative") is not None
                else "LR of the lowest mean ΔL"
            )
            reasons.append(f"loss differentials: {rule}: {ld_edge:.3g}")
        else:
            reasons.append("loss differentials: no LR lowered the loss on average")
    if not edges:
        raise RuntimeError(
            "Neither probe found a learning rate that lowers the loss: the range test's loss "
            "never decreased and no one-step loss differential was negative. Check the data "
            "(NaN, unscaled targets), the loss, and that start_lr/end_lr span small enough "
            "rates (e.g. start_lr=1e-8)."
        )
    values = list(edges.values())
    if len(values) == 2:
        spread = abs(math.log10(values[0] / values[1]))
        if spread > max_disagreement:
            edge = edges["loss differentials"]
            reasons.append(
                f"the probes disagree by {spread:.1f} decades: trusting the loss "
                f"differentials' confidence interval ({edge:.3g}) over the single noisy "
                f"range-test trajectory ({edges['range test']:.3g})"
            )
        else:
            edge = float(np.exp(np.mean(np.log(values))))
            reasons.append(f"edge of stability: geometric mean of both, {edge:.3g}")
    else:
        edge = values[0]
        reasons.append(f"edge of stability from the {next(iter(edges))} alone: {edge:.3g}")
    top = None if bounds is None else float(bounds[1])
    bottom = None if bounds is None else float(bounds[0])
    edge_at_top = top is not None and edge >= top * 10**-EDGE_AT_TOP_DECADES
    edge_at_bottom = bottom is not None and edge <= bottom * 10**EDGE_AT_BOTTOM_DECADES
    if edge_at_top:
        reasons.append(edge_at_top_note(top))
    if edge_at_bottom:
        reasons.append(edge_at_bottom_note(bottom))
    lr = edge / divisor
    valley = (range_test.suggestions or {}).get("valley") if range_test is not None else None
    if valley is not None and 0 < valley < edge:
        reasons.append(
            f"pick: geometric mean of edge / {divisor:g} = {lr:.3g} and the range test's "
            f"valley {valley:.3g} (their errors differ; the mean halves either's)"
        )
        lr = math.sqrt(lr * valley)
    else:
        reasons.append(
            f"pick: edge / {divisor:g}"
            + ("" if valley is None else f" (the valley {valley:.3g} is not below the edge)")
        )
    low = lr / 10**decades_below
    high = max(edge, lr * 10**decades_above)
    if bounds is not None:
        lo_b, hi_b = bounds
        lr = float(np.clip(lr, lo_b, hi_b))
        low = float(np.clip(low, lo_b, lr))
        high = float(np.clip(high, lr, hi_b))
    reasons.append(f"picked {lr:.3g}; search interval [{low:.3g}, {high:.3g}]")
    candidates["edge"] = edge
    return LRFinding(
        lr=float(lr),
        low=float(low),
        high=float(high),
        reasons=reasons,
        range_test=range_test,
        differential=differential,
        candidates=candidates,
        settings={
            "divisor": divisor,
            "decades_below": decades_below,
            "decades_above": decades_above,
            "max_disagreement": max_disagreement,
            "edge_at_top": bool(edge_at_top),
            "edge_at_bottom": bool(edge_at_bottom),
        },
    )
