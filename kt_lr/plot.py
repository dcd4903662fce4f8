"""Plots of the probe results (matplotlib, imported lazily: the ``plot`` extra).

Every function draws with the object-oriented API (``matplotlib.figure.Figure``),
never pyplot's global state, so it works headless and inside other figures:
pass ``ax`` to draw into your own axes, or get a new :class:`Figure` back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from kt_lr.report import LRReport
    from kt_lr.results import LossDifferentialResult, LRFinding, RangeTestResult

__all__ = [
    "log_y_if_spread",
    "place_legend",
    "plot_finding",
    "plot_loss_differential",
    "plot_lr_report",
    "plot_range_test",
]

_MISSING = "plotting needs matplotlib: pip install 'kt-lr[plot]'"
_SUGGESTION_COLORS = {"steepest": "C2", "valley": "C3", "min/10": "C4", "slide": "C5"}
#: The range test's heuristics (``RangeTestResult.suggestions``) in plain words.
SUGGESTION_WORDS = {
    "steepest": "steepest descent",
    "valley": "valley: 2/3 down the descent",
    "min/10": "lowest loss / 10",
    "slide": "last steady descent",
}
_BEST_MARKERS = {"lowest_mean": "o", "lowest_median": "s", "lowest_upper": "v"}
_BEST_MARKERS["largest_negative"] = "D"
#: The differentials' rules (``LossDifferentialResult.best``) in plain words.
BEST_WORDS = {
    "lowest_mean": "lowest mean ΔL",
    "lowest_median": "lowest median ΔL",
    "lowest_upper": "lowest top of the CI",
    "largest_negative": "edge: largest rate whose CI < 0",
}


def _figure(figsize: tuple[float, float] | None, layout: str = "constrained") -> Figure | None:
    """A new Figure (``None`` for ``figsize=None``: only check matplotlib is there)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(_MISSING) from err
    return None if figsize is None else Figure(figsize=figsize, layout=layout)


def _new_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is not None:
        _figure(None)
        return ax.figure, ax
    fig = _figure((9.0, 4.5))
    return fig, fig.add_subplot()


def _finite(values) -> np.ndarray:
    """Float copy with ``inf`` turned into ``nan`` (matplotlib leaves gaps at nan)."""
    arr = np.array(values, dtype=float)
    arr[~np.isfinite(arr)] = np.nan
    return arr


def place_legend(ax: Axes, **kwargs) -> None:
    """The legend of ``ax`` outside it, to the right: it covers neither curves nor labels.

    Args:
        ax: the axes.
        **kwargs: more arguments for ``Axes.legend`` (e.g. ``handles``).
    """
    options = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    options.update(fontsize="small", title_fontsize="small")
    if kwargs.get("title") is None:  # keep the title the legend already has
        old = ax.get_legend()
        kwargs["title"] = old.get_title().get_text() or None if old is not None else None
    ax.legend(**{**options, **kwargs})


def log_y_if_spread(ax: Axes, values, decades: float = 2.0) -> bool:
    """Put ``ax`` on a log y-axis when the positive ``values`` span ``decades`` or more.

    One outlier (a diverged trial) then no longer flattens the others. Returns whether
    it did.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 2 or np.log10(v.max() / v.min()) < decades:
        return False
    ax.set_yscale("log")
    return True


def _interp_log(lrs: np.ndarray, values: np.ndarray, lr: float) -> float | None:
    ok = np.isfinite(values)
    if not ok.any():
        return None
    return float(np.interp(np.log(lr), np.log(lrs[ok]), values[ok]))


def _mark_choice(
    ax: Axes, lr: float, low: float | None, high: float | None, what: str = "interval to search"
) -> None:
    if low is not None and high is not None:
        ax.axvspan(low, high, color="C1", alpha=0.15, label=f"{what} [{low:.2g}, {high:.2g}]")
    ax.axvline(lr, color="k", linewidth=2, label=f"kt_lr's pick {lr:.2g}")


def _decision_curve(result: RangeTestResult) -> tuple[np.ndarray, np.ndarray]:
    """The smoothed curve the decision reads: :func:`kt_lr.suggest.prepare_curve`'s."""
    from kt_lr import suggest

    try:
        lrs, _, smooth = suggest.prepare_curve(result.lrs, result.losses)
    except ValueError:  # too short a curve: nothing smoothed to show
        return np.array([]), np.array([])
    return np.asarray(lrs, dtype=float), np.asarray(smooth, dtype=float)


def _draw_range_test(ax: Axes, result: RangeTestResult, own_choice: bool = True) -> None:
    from kt_lr.fuse import range_test_edge

    lrs = np.asarray(result.lrs, dtype=float)
    raw = _finite(result.losses)
    c_lrs, smooth = _decision_curve(result)
    ax.set_xscale("log")
    ax.plot(lrs, raw, color="C0", alpha=0.3, linewidth=1, label="loss at each step")
    ax.plot(c_lrs, smooth, color="C0", linewidth=2.2, label="smoothed loss (what kt_lr reads)")
    if result.val_losses is not None:
        ax.plot(
            lrs, _finite(result.val_losses), color="C7", linestyle="--", label="validation loss"
        )
    extra = iter(f"C{i}" for i in range(6, 10))
    for name, lr in result.suggestions.items():
        if lr is not None:
            color = _SUGGESTION_COLORS.get(name) or next(extra, "C9")
            words = SUGGESTION_WORDS.get(name, name)
            ax.axvline(lr, color=color, linestyle=":", linewidth=1.6, label=f"{words} {lr:.2g}")
    edge = range_test_edge(result)
    if edge is not None and smooth.size:
        y = _interp_log(c_lrs, smooth, edge)
        ax.plot(
            [edge],
            [y],
            "v",
            color="C3",
            markersize=10,
            label=f"edge: lowest smoothed loss {edge:.2g}",
        )
    if own_choice:
        if result.low is not None and result.high is not None:
            ax.axvspan(
                result.low, result.high, color="C1", alpha=0.12, label="range test's interval"
            )
        if result.lr is not None:
            y = _interp_log(c_lrs, smooth, result.lr) if smooth.size else None
            if y is None:
                y = _interp_log(lrs, raw, result.lr)
            if y is not None:
                label = f"range test's pick {result.lr:.2g}"
                ax.plot([result.lr], [y], "k*", markersize=13, label=label)
    # y-limits: from just under the lowest loss (smoothed, or the raw loss's 2nd
    # percentile) to 1.5x the start of the smoothed curve, so the divergence at the end
    # does not squash the interesting part
    curve = smooth if smooth.size and np.isfinite(smooth).any() else raw
    seen = curve[np.isfinite(curve)]
    if seen.size:
        lo, start = float(seen.min()), float(seen[0])
        if np.isfinite(raw).any():
            lo = min(lo, float(np.nanpercentile(raw, 2)))
        hi = start + 0.5 * abs(start)
        if not hi > lo:
            hi = lo + max(abs(lo), 1.0)
        ax.set_ylim(lo - 0.05 * (hi - lo), hi)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("LR range test")
    place_legend(ax, title=_wrap(f"stopped: {result.stop_reason}") if result.stop_reason else None)


def _wrap(text: str, width: int = 44) -> str:
    """A legend title on lines of at most ``width`` characters."""
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width))


def _draw_differential(ax: Axes, result: LossDifferentialResult) -> None:
    lrs = np.asarray(result.lrs, dtype=float)
    mean, t_low, t_high = _finite(result.mean), _finite(result.t_low), _finite(result.t_high)
    ax.set_xscale("log")
    ok = np.isfinite(t_low) & np.isfinite(t_high)
    ax.fill_between(
        lrs,
        np.where(ok, t_low, 0.0),
        np.where(ok, t_high, 0.0),
        where=ok,
        color="C0",
        alpha=0.2,
        label=f"{result.confidence:.0%} CI of ΔL (t)",
    )
    ax.plot(lrs, mean, color="C0", linewidth=2, label="mean ΔL")
    ax.plot(lrs, _finite(result.boot_low), "C0--", linewidth=1, label="bootstrap CI of ΔL")
    ax.plot(lrs, _finite(result.boot_high), "C0--", linewidth=1)
    ax.axhline(0.0, color="k", linewidth=0.8)
    for i, (rule, lr) in enumerate(result.best.items()):
        if lr is not None:
            y = _interp_log(lrs, mean, lr)
            ax.plot(
                [lr],
                [0.0 if y is None else y],
                linestyle="none",
                marker=_BEST_MARKERS.get(rule, "P"),
                color=f"C{i + 2}",
                markersize=8,
                label=f"{BEST_WORDS.get(rule, rule.replace('_', ' '))} {lr:.2g}",
            )
    # y-limits: the dip below zero and as much above it, not the explosion
    low_seen = np.concatenate([t_low[np.isfinite(t_low)], mean[np.isfinite(mean)]])
    high_seen = np.concatenate([t_high[np.isfinite(t_high)], mean[np.isfinite(mean)]])
    if low_seen.size and low_seen.min() < 0:
        lo = float(low_seen.min())
        hi = max(min(float(high_seen.max()), abs(lo)), 0.1 * abs(lo))
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("ΔL = L(after one step) − L(before)")
    ax.set_title("One-step loss differentials")
    place_legend(ax, title=_wrap(f"{result.method} step, {result.deltas.shape[0]} mini-batches"))


def plot_range_test(result: RangeTestResult, ax: Axes | None = None) -> Figure:
    """Loss vs LR (log x): raw loss, smoothed loss, optional validation loss, each
    suggestion as a dotted line, the interval shaded and the pick starred."""
    fig, ax = _new_axes(ax)
    _draw_range_test(ax, result)
    return fig


def plot_loss_differential(result: LossDifferentialResult, ax: Axes | None = None) -> Figure:
    """Mean ΔL vs LR (log x) with the t-interval band, the bootstrap interval
    (dashed), the zero line and a marker at each best-LR rule's answer."""
    fig, ax = _new_axes(ax)
    _draw_differential(ax, result)
    return fig


def plot_finding(
    finding: LRFinding,
    axes=None,
    *,
    interval: tuple[float, float] | None = None,
    interval_label: str = "interval to search",
) -> Figure:
    """The probes side by side (one panel each; one panel if only one ran) with the
    fused pick and the ``[low, high]`` search interval marked on every panel.

    Args:
        finding: what :func:`kt_lr.find_lr` returned.
        axes: draw into these (one per panel) instead of a new figure.
        interval: the interval to shade instead of ``[finding.low, finding.high]``
            (e.g. the one a search narrowed its range to).
        interval_label: its name in the legend.
    """
    panels = [p for p in (finding.range_test, finding.differential) if p is not None] or [None]
    low, high = interval if interval is not None else (finding.low, finding.high)
    if axes is None:
        fig = _figure((9.0 * len(panels), 4.5))
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
    else:
        axes = list(axes)[: len(panels)]
        fig = axes[0].figure
    for ax, panel in zip(axes, panels, strict=True):
        if panel is finding.range_test and panel is not None:
            _draw_range_test(ax, panel, own_choice=False)
        elif panel is not None:
            _draw_differential(ax, panel)
        else:
            ax.set_xscale("log")
            ax.set_xlim(finding.low / 10, finding.high * 10)
            ax.set_xlabel("learning rate")
        _mark_choice(ax, finding.lr, low, high, interval_label)
        place_legend(ax)
    fig.suptitle(f"kt_lr's pick {finding.lr:.3g}, {interval_label} [{low:.3g}, {high:.3g}]")
    return fig


def plot_lr_report(report: LRReport, ax: Axes | None = None) -> Figure:
    """Per probe key (one row each, log x): the original range, the key's narrowed
    interval, the probe's own interval, its pick and its seeds.

    Args:
        report: the search's :class:`~kt_lr.report.LRReport`.
        ax: draw into these axes instead of a new figure.
    """
    from matplotlib.lines import Line2D

    from kt_lr.space import ALL_KEY

    keys = list(report.probes) or ["(no probe)"]
    if ax is None:
        fig = _figure((9, 1.4 + 0.9 * len(keys)))
        ax = fig.add_subplot()
    else:
        fig, ax = _new_axes(ax)
    o, n = report.original_interval, report.interval
    for row, key in enumerate(keys):
        y = len(keys) - 1 - row
        p = report.probes.get(key)
        if o:
            ax.plot(o, [y, y], color="0.8", lw=10, solid_capstyle="butt", label=None)
        if p is not None and p.narrowed_low is not None:
            ax.plot([p.narrowed_low, p.narrowed_high], [y, y], color="tab:blue", lw=6)
        elif n:
            ax.plot(n, [y, y], color="tab:blue", lw=6)
        if p is not None and p.low is not None:
            ax.plot([p.low, p.high], [y + 0.18] * 2, color="tab:orange", lw=2)
            ax.plot([p.lr], [y], marker="*", color="black", ms=12, ls="none")
        if p is not None and p.seeds:
            ax.plot(p.seeds, [y - 0.2] * len(p.seeds), "|", color="tab:green", ms=12)
    ax.set_xscale("log")
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels(list(reversed(["all" if k == ALL_KEY else k for k in keys])))
    ax.set_ylim(-0.8, len(keys) - 0.2)
    ax.set_xlabel(report.hp_name)
    handles = [
        Line2D([], [], color="0.8", lw=8, label="your range"),
        Line2D([], [], color="tab:blue", lw=6, label="range searched now"),
        Line2D([], [], color="tab:orange", lw=2, label="probe's own interval"),
        Line2D([], [], marker="*", color="black", ls="none", label="probe's pick"),
        Line2D([], [], marker="|", color="tab:green", ls="none", ms=10, label="seeded trials"),
    ]
    place_legend(ax, handles=handles)
    ax.set_title(f"kt_lr: {report.hp_name}")
    return fig
