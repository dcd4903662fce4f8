"""Plots of hand-built results (no Keras): right figure, axes and artists; PNG saves."""

import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402

from kt_lr.fuse import range_test_edge  # noqa: E402
from kt_lr.plot import plot_finding, plot_loss_differential, plot_range_test  # noqa: E402
from kt_lr.results import LossDifferentialResult, LRFinding, RangeTestResult  # noqa: E402
from kt_lr.stats import best_lr_rules, summarize  # noqa: E402
from kt_lr.suggest import ema_smooth, interval_from_curve, prepare_curve, suggest_all  # noqa: E402


def legend_overlaps(fig):
    """Texts (titles, labels, ticks) and axes that a legend box covers: none wanted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    own = {id(t) for lg in legends for t in lg.findobj(Text)}
    texts = [
        t
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and id(t) not in own
    ]
    found = []
    for lg in legends:
        box = lg.get_window_extent(renderer)
        found += [t.get_text() for t in texts if box.overlaps(t.get_window_extent(renderer))]
        found += [f"axes {i}" for i, ax in enumerate(fig.axes) if box.overlaps(ax.bbox)]
    return found


def range_result(val=True, diverge=True):
    lrs = np.geomspace(1e-6, 1, 100)
    x = np.log10(lrs)
    losses = 0.1 + 0.9 / (1 + np.exp(3 * (x + 3)))
    losses = losses + np.where(x > -1, 0.1 * (10 ** (3 * (x + 1)) - 1), 0.0)
    losses *= 1 + 0.03 * np.random.default_rng(0).standard_normal(lrs.size)
    if diverge:
        losses[95:] = np.inf
    smoothed = ema_smooth(losses)
    found = suggest_all(lrs, losses)
    suggestions = {k: (None if s is None else s.lr) for k, s in found.items()}
    suggestions["slide"] = None  # one heuristic without an answer
    low, high = interval_from_curve(lrs, smoothed)
    return RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        val_losses=losses * 1.1 if val else None,
        stop_step=95,
        stop_reason="diverged",
        suggestions=suggestions,
        lr=suggestions["valley"],
        low=low,
        high=high,
    )


def differential_result():
    lrs = np.geomspace(1e-5, 1, 30)
    u = lrs / 1e-2
    rng = np.random.default_rng(1)
    deltas = (u**2 - 2 * u)[None, :] + 0.1 * rng.standard_normal((8, lrs.size))
    deltas[3, -2:] = np.nan  # diverged at the largest LRs
    s = summarize(deltas, n_boot=100, rng=0)
    return LossDifferentialResult(
        lrs=lrs,
        deltas=deltas,
        base_losses=np.ones(8),
        mean=s["mean"],
        median=s["median"],
        std=s["std"],
        t_low=s["t_low"],
        t_high=s["t_high"],
        boot_low=s["boot_low"],
        boot_high=s["boot_high"],
        confidence=0.95,
        best=best_lr_rules(lrs, s),
        method="affine",
        holdout=False,
    )


def test_plot_range_test(tmp_path):
    result = range_result()
    fig = plot_range_test(result)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    # raw, smoothed, val, 3 suggestion lines (slide is None), the edge, the starred pick
    assert len(ax.lines) == 8
    assert len(ax.patches) == 1  # the interval
    labels = ax.get_legend_handles_labels()[1]
    assert any(lab.startswith("valley: 2/3 down the descent") for lab in labels)
    assert any(lab.startswith("lowest loss / 10") for lab in labels)
    assert not any(lab.startswith("last steady descent") for lab in labels)
    # the smoothed curve drawn is the one the decision reads (issue 16: the plotted
    # curve bottomed elsewhere than the edge the reasons quote)
    lrs, _, smooth = prepare_curve(result.lrs, result.losses)
    drawn = next(line for line in ax.lines if line.get_label().startswith("smoothed loss"))
    np.testing.assert_allclose(drawn.get_xdata(), lrs)
    np.testing.assert_allclose(drawn.get_ydata(), smooth)
    edge = range_test_edge(result)
    assert edge == pytest.approx(lrs[np.argmin(smooth)])
    assert f"edge: lowest smoothed loss {edge:.2g}" in labels
    # the divergence does not squash the plot: top is 1.5x the first smoothed loss
    assert ax.get_ylim()[1] == pytest.approx(1.5 * smooth[0])
    assert ax.get_ylim()[0] < np.nanmin(smooth)
    assert ax.get_ylim()[0] < np.nanpercentile(
        np.where(np.isfinite(result.losses), result.losses, np.nan), 2
    )
    fig.savefig(tmp_path / "range.png")
    assert (tmp_path / "range.png").stat().st_size > 1000


def test_plot_range_test_without_val_or_pick_into_given_axes(tmp_path):
    from matplotlib.figure import Figure as F

    result = range_result(val=False)
    result.lr, result.low, result.high = None, None, None
    host = F()
    ax = host.add_subplot()
    fig = plot_range_test(result, ax=ax)
    assert fig is host
    assert len(ax.lines) == 2 + 3 + 1 and len(ax.patches) == 0
    fig.savefig(tmp_path / "range2.png")


def test_plot_loss_differential(tmp_path):
    result = differential_result()
    fig = plot_loss_differential(result)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    n_best = sum(v is not None for v in result.best.values())
    assert n_best == 4
    # mean, two bootstrap bounds, zero line, one marker per answered rule
    assert len(ax.lines) == 4 + n_best
    assert len(ax.collections) == 1  # the t-interval band
    bottom, top = ax.get_ylim()
    assert bottom < np.nanmin(result.t_low) and 0 < top < np.nanmax(result.t_high)
    labels = ax.get_legend_handles_labels()[1]
    edge = result.best["largest_negative"]
    assert f"edge: largest rate whose CI < 0 {edge:.2g}" in labels
    assert any(lab.startswith("lowest mean ΔL") for lab in labels)
    fig.savefig(tmp_path / "diff.png")
    assert (tmp_path / "diff.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "which, n_axes",
    [("both", 2), ("range", 1), ("diff", 1), ("none", 1)],
)
def test_plot_finding(tmp_path, which, n_axes):
    rt = range_result() if which in ("both", "range") else None
    ld = differential_result() if which in ("both", "diff") else None
    finding = LRFinding(
        lr=2e-3, low=5e-4, high=8e-3, reasons=["test"], range_test=rt, differential=ld
    )
    fig = plot_finding(finding)
    assert isinstance(fig, Figure) and len(fig.axes) == n_axes
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        assert [line.get_label() for line in ax.lines].count("kt_lr's pick 0.002") == 1
        assert any(p.get_label().startswith("interval to search [") for p in ax.patches)
    if rt is not None:  # the range test's own pick and interval give way to the finding's
        assert len(fig.axes[0].lines) == 2 + 1 + 3 + 1 + 1
        assert len(fig.axes[0].patches) == 1
    assert legend_overlaps(fig) == []
    fig.savefig(tmp_path / f"finding_{which}.png")
    assert (tmp_path / f"finding_{which}.png").stat().st_size > 1000


def test_missing_matplotlib_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'kt-lr\[plot\]'"):
        plot_range_test(range_result())
    with pytest.raises(ImportError, match="plotting needs matplotlib"):
        plot_finding(LRFinding(lr=1e-3, low=1e-4, high=1e-2, reasons=[]))


def lr_report():
    from kt_lr.report import LRReport, ProbeReport

    probe = ProbeReport(
        key="optimizer=adam",
        key_values={"optimizer": "adam"},
        status="done",
        lr=3e-4,
        low=1e-4,
        high=1e-3,
        narrowed_low=1e-4,
        narrowed_high=1e-3,
        seeds=[3e-4, 3e-5, 9.5e-4],
    )
    failed = ProbeReport(key="optimizer=sgd", key_values={"optimizer": "sgd"}, status="failed")
    summary = {"kind": "Float", "min_value": 1e-5, "max_value": 1.0}
    probes = {"optimizer=adam": probe, "optimizer=sgd": failed}
    return LRReport("learning_rate", [summary], [summary], probes, seeds=[])


def test_lr_report_plot_uses_the_figure_api_only():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = lr_report().plot()
    assert isinstance(fig, Figure) and plt.get_fignums() == before  # no pyplot state
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning_rate"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["optimizer=sgd", "optimizer=adam"]
    own = Figure()
    target = own.add_subplot()
    assert lr_report().plot(ax=target) is own and target.get_title() == "kt_lr: learning_rate"


def test_plot_does_not_import_results_or_report_at_module_level():
    import ast
    from pathlib import Path

    import kt_lr.plot

    tree = ast.parse(Path(kt_lr.plot.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert not any("kt_lr" in ast.unparse(n) for n in top)


def test_no_legend_covers_a_label_or_a_curve():
    rt, ld = range_result(), differential_result()
    finding = LRFinding(lr=2e-3, low=5e-4, high=8e-3, reasons=["t"], range_test=rt, differential=ld)
    figures = [
        plot_finding(finding, interval=(1e-3, 5e-3), interval_label="searched"),
        plot_range_test(rt),
        plot_loss_differential(ld),
        lr_report().plot(),
    ]
    for fig in figures:
        assert legend_overlaps(fig) == []
    shaded = [p.get_label() for p in figures[0].axes[0].patches]
    assert shaded == ["searched [0.001, 0.005]"]  # the search's interval, not the finding's


def test_demo_flow_tells_one_story(tmp_path):
    """The README picture: one interval (the search's) on every panel, the search's
    pick marked, a log y-axis when one diverged trial spans decades."""
    from kt_lr.demo import plot_flow
    from kt_lr.report import LRReport

    finding = LRFinding(
        lr=2e-3,
        low=5e-4,
        high=8e-3,
        reasons=["t"],
        range_test=range_result(),
        differential=differential_result(),
    )
    report = lr_report()
    summary = {"kind": "Float", "min_value": 5e-4, "max_value": 8e-3}
    report = LRReport("learning_rate", report.original, [summary], report.probes, seeds=[])
    trials = [(2e-3, 40.0, True), (2e-4, 55.0, True), (6e-3, 15000.0, True), (1e-3, 38.0, False)]
    path = tmp_path / "flow.png"
    fig = plot_flow(finding, trials, report, path)
    assert path.stat().st_size > 1000
    for ax in fig.axes:
        spans = [p.get_label() for p in ax.patches if p.get_label().startswith("searched")]
        assert spans == ["searched [0.0005, 0.008]"], spans
        assert any(line.get_label().startswith("search's pick 0.001") for line in ax.lines) or (
            any(c.get_label().startswith("the search's pick: lr 0.001") for c in ax.collections)
        )
    assert fig.axes[2].get_yscale() == "log"  # 15,000 does not flatten the other trials
    assert legend_overlaps(fig) == []
