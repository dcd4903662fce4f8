"""Every method's pick on every corpus task, per probe seed (cached, resumable).

For probe seed ``s`` the probe model is ``build_model(spec, 1000 + s)`` at the optimizer's
default LR, and ``find_lr(model, x_train, y_train, batch_size=spec.batch_size, seed=s)``
runs at its defaults. One run gives kt_lr's pick, low and high (today's ``fuse.py`` rule)
and every single heuristic's candidate (fast.ai's valley, steepest, min/10; the
differentials' rules), so the peers share the probe. The record keeps both probes' curves
(the range test's per-step losses; the differentials' mean, spread and intervals per LR),
so a pick rule can be refitted from them without probing again (issue 15).

The peer ``autolrtuner`` (1.0.2, with its linear grid swapped for a log grid over
1e-7..10, ``autolrtuner:log``) runs once per task (probe seed 0) with 25 subsamples:
it takes one real optimizer step per LR and subsample (~2 s per subsample here).

Cache: ``benchmarks/corpus/probes/<task>.json``.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.common import load_json, save_json, setup
from benchmarks.corpus import tasks as corpus_tasks

PROBE_DIR = Path(__file__).resolve().parent / "probes"
PEER_SUBSAMPLES = 25


def _r(values) -> list:
    arr = np.asarray(values, float).ravel()
    return [float(f"{v:.5g}") if math.isfinite(v) else None for v in arr]


def _range_test_record(rt) -> dict | None:
    if rt is None:
        return None
    return {
        "lrs": _r(rt.lrs),
        "losses": _r(rt.losses),
        "stop_step": int(rt.stop_step),
        "stop_reason": rt.stop_reason,
        "suggestions": rt.suggestions,
    }


def _differential_record(ld) -> dict | None:
    if ld is None:
        return None
    return {
        "lrs": _r(ld.lrs),
        "mean": _r(ld.mean),
        "median": _r(ld.median),
        "std": _r(ld.std),
        "t_low": _r(ld.t_low),
        "t_high": _r(ld.t_high),
        "base_loss": float(np.nanmean(ld.base_losses)),
        "subsamples": int(np.asarray(ld.deltas).shape[0]),
        "best": ld.best,
        "method": ld.method,
    }


def run_find_lr(spec, probe_seed: int) -> dict:
    """kt_lr's ``find_lr`` at its defaults on a fresh probe model."""
    import keras

    import kt_lr

    x_tr, y_tr, _, _ = corpus_tasks.make_data(spec)
    keras.backend.clear_session()
    model = corpus_tasks.build_model(spec, 1000 + probe_seed)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            finding = kt_lr.find_lr(
                model, x_tr, y_tr, batch_size=spec.batch_size, seed=probe_seed, verbose=0
            )
        except Exception as err:  # noqa: BLE001 - a refusal is a result
            return {
                "lr": None,
                "error": f"{type(err).__name__}: {err}",
                "seconds": time.perf_counter() - start,
            }
    return {
        "lr": finding.lr,
        "low": finding.low,
        "high": finding.high,
        "candidates": finding.candidates,
        "reasons": finding.reasons,
        "settings": {k: v for k, v in finding.settings.items() if k != "probes"},
        "warnings": [str(w.message) for w in caught if issubclass(w.category, UserWarning)],
        "seconds": time.perf_counter() - start,
        "range_test": _range_test_record(finding.range_test),
        "differential": _differential_record(finding.differential),
    }


class _AsTask:
    """A corpus spec in the shape :func:`benchmarks.regret.run_autolrtuner` takes."""

    def __init__(self, spec):
        self.spec = spec
        self.batch_size = spec.batch_size

    def build_model(self, seed: int):
        return corpus_tasks.build_model(self.spec, seed)


def run_autolrtuner(spec, probe_seed: int = 0, subsamples: int = PEER_SUBSAMPLES) -> dict:
    """autolrtuner with a log grid over 1e-7..10 (its API offers only a linear grid)."""
    from benchmarks.regret import run_autolrtuner as run_peer

    data = corpus_tasks.make_data(spec)
    with contextlib.redirect_stdout(io.StringIO()):
        return run_peer(_AsTask(spec), data, probe_seed, "log", subsamples)


def run(specs, out_dir: Path = PROBE_DIR, probe_seeds: int = 5, peer: bool = True, log=print):
    """Probe every task (cached per task and seed; resumable)."""
    from benchmarks.corpus.truth import estimated_cost

    setup(threads=1)
    for spec in sorted(specs, key=estimated_cost, reverse=True):  # the truth's order
        path = out_dir / f"{spec.name}.json"
        rec = load_json(path) or {"task": spec.name, "kt_lr": {}, "peers": {}}
        for s in range(probe_seeds):
            if str(s) in rec["kt_lr"]:
                continue
            rec["kt_lr"][str(s)] = r = run_find_lr(spec, s)
            save_json(path, rec)
            log(
                f"{spec.name}: probe seed {s}: "
                + (f"lr={r['lr']:.3g}" if r["lr"] else f"no pick ({r.get('error')})")
                + f" in {r['seconds']:.1f}s"
            )
        if peer and "autolrtuner:log" not in rec["peers"]:
            rec["peers"]["autolrtuner:log"] = r = run_autolrtuner(
                spec, subsamples=PEER_SUBSAMPLES if probe_seeds >= 5 else 3
            )
            save_json(path, rec)
            log(f"{spec.name}: autolrtuner:log {r.get('lr')} {r.get('error', '')}")


def load_probes(name: str, out_dir: Path = PROBE_DIR) -> dict | None:
    return load_json(out_dir / f"{name}.json")
