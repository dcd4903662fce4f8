"""Dense-grid ground truth: every task trained at a log lattice of learning rates.

The lattice is ``lr_k = 10 ** (k / 3)`` (3 points per decade). Per task:

1. **Locate**: seed 0 at one point per decade, 1e-6 .. 10, extended a decade at a time
   (down to 1e-9, up to 1e3) while the best of either target sits at an end.
2. **Dense**: 3 seeds at every lattice point within 4 steps (1.33 decades) of either
   target's best (a ``large`` task: 3 seeds within 2 steps, 1 seed elsewhere).
3. **Extend** until the loss has failed above (most seeds diverged or no better than
   the untrained model) and stopped improving below (no better than the untrained model,
   or the curve 3x above its minimum and still rising as the LR falls), within 1e-9..1e3.
4. **Refine**: 5 seeds at the 5 lattice points around each target's best.

Every run keeps every epoch's validation loss (NaN after a divergence), so both
targets users have can be scored: the final epoch and the best epoch. Runs train with
``fit`` on the task's arrays for the task's budget; the validation loss is computed at
every epoch's end in one pass over the validation set (the same mean ``evaluate``
reports). One model per (task, seed) is built and compiled once; each LR starts from
its snapshot (weights, optimizer variables) with the RNG re-seeded, so every run is a
fresh training run without re-tracing.

Results: ``benchmarks/corpus/truth/<task>.json``, written after every run (atomic), so a
killed job resumes where it stopped. Workers claim tasks with lock files (a lock whose
process is gone is taken over).
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path

import numpy as np

from benchmarks.common import load_json, save_json, setup
from benchmarks.corpus import tasks as corpus_tasks

TRUTH_DIR = Path(__file__).resolve().parent / "truth"
VERSION = 2  # 2: extension walks out from the contiguous dense block
PER_DECADE = 3
K_MIN, K_MAX = -27, 9  # 1e-9 .. 1e3
LOCATE = tuple(range(-18, 4, 3))  # 1e-6 .. 10, one per decade
DENSE_HALF = 4
LARGE_DENSE_HALF = 2
REFINE_SEEDS = (3, 4)
BASE_SEEDS = (0, 1, 2)
RISE = math.log(3.0)  # "stopped improving below": 3x the minimum and rising


def lattice_lr(k: int) -> float:
    return float(10.0 ** (k / PER_DECADE))


def run_key(k: int, seed: int) -> str:
    return f"{k}|{seed}"


def parse_key(key: str) -> tuple[int, int]:
    k, s = key.split("|")
    return int(k), int(s)


# ------------------------------------------------------------------ scoring helpers


def final_loss(curve: list[float]) -> float:
    v = curve[-1] if curve else math.nan
    return v if math.isfinite(v) else math.inf


def best_loss(curve: list[float]) -> float:
    finite = [v for v in curve if math.isfinite(v)]
    return min(finite) if finite else math.inf


TARGETS = {"final": final_loss, "best": best_loss}


def point_table(record: dict, target: str) -> dict[int, list[float]]:
    """``{k: [target loss of each seed's run]}`` of a task record."""
    fn = TARGETS[target]
    out: dict[int, list[float]] = {}
    for key, run in record["runs"].items():
        k, _ = parse_key(key)
        out.setdefault(k, []).append(fn(run["val"]))
    return out


def initial_loss(record: dict) -> float:
    vals = [v for v in record.get("initial", {}).values() if math.isfinite(v)]
    return float(np.median(vals)) if vals else math.inf


def _median(values: list[float]) -> float:
    return float(np.median(np.asarray(values, float)))


def failed(values: list[float], init: float) -> bool:
    """Most seeds diverged or ended no better than the untrained model."""
    bad = sum(1 for v in values if not math.isfinite(v) or v >= init)
    return bad * 2 > len(values)


def best_k(table: dict[int, list[float]]) -> int:
    return min(table, key=lambda k: (_median(table[k]), k))


# ---------------------------------------------------------------------------- runner


class Trainer:
    """Trains one task at any LR and seed, reusing one compiled model per seed."""

    def __init__(self, spec):
        self.spec = spec
        self.data = corpus_tasks.make_data(spec)
        self.models: dict[int, tuple] = {}  # seed -> (model, initial snapshot)

    def _model(self, seed: int):
        """The seed's compiled model, restored to its initial weights and optimizer state."""
        from kt_lr import state

        if seed not in self.models:
            model = corpus_tasks.build_model(self.spec, seed)
            model.optimizer.build(model.trainable_variables)
            self.models[seed] = (model, state.snapshot(model))
        model, initial = self.models[seed]
        initial.restore()
        return model

    def val_loss(self, model) -> float:
        import keras

        _, _, x_va, y_va = self.data
        total, count = 0.0, 0
        for i in range(0, len(x_va), 2048):
            xb, yb = x_va[i : i + 2048], y_va[i : i + 2048]
            pred = model(xb, training=False)
            loss = float(keras.ops.convert_to_numpy(model.loss(yb, pred)))
            total += loss * len(xb)
            count += len(xb)
        return total / count

    def initial(self, seed: int) -> float:
        v = self.val_loss(self._model(seed))
        return v if math.isfinite(v) else math.inf

    def run(self, lr: float, seed: int) -> dict:
        """Train from the seed's initial state at ``lr``; every epoch's val loss."""
        import keras

        model = self._model(seed)
        model.optimizer.learning_rate = lr
        x_tr, y_tr, _, _ = self.data
        curve: list[float] = []
        trainer = self

        class _Val(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                v = trainer.val_loss(self.model)
                curve.append(v if math.isfinite(v) else math.nan)
                if not math.isfinite(v):
                    self.model.stop_training = True

        keras.utils.set_random_seed(10_000 + int(seed))
        start = time.perf_counter()
        model.fit(
            x_tr,
            y_tr,
            epochs=self.spec.epochs,
            batch_size=self.spec.batch_size,
            verbose=0,
            shuffle=True,
            callbacks=[keras.callbacks.TerminateOnNaN(), _Val()],
        )
        seconds = time.perf_counter() - start
        curve += [math.nan] * (self.spec.epochs - len(curve))
        return {"lr": lr, "val": [_round(v) for v in curve], "seconds": round(seconds, 3)}


def _round(v: float) -> float:
    return float(f"{v:.6g}") if math.isfinite(v) else math.nan


class TaskTruth:
    """The adaptive grid of one task, cached in its JSON file after every run."""

    def __init__(self, spec, out_dir: Path = TRUTH_DIR, log=print):
        self.spec = spec
        self.path = out_dir / f"{spec.name}.json"
        self.log = log
        self.record = load_json(self.path) or {
            "version": VERSION,
            "task": spec.name,
            "spec": spec.to_dict(),
            "initial": {},
            "runs": {},
            "done": False,
        }
        self.trainer: Trainer | None = None

    def _trainer(self) -> Trainer:
        if self.trainer is None:
            self.trainer = Trainer(self.spec)
        return self.trainer

    def save(self) -> None:
        save_json(self.path, self.record)

    def ensure(self, k: int, seeds) -> None:
        for seed in seeds:
            if str(seed) not in self.record["initial"]:
                self.record["initial"][str(seed)] = self._trainer().initial(seed)
            key = run_key(k, seed)
            if key in self.record["runs"]:
                continue
            run = self._trainer().run(lattice_lr(k), seed)
            self.record["runs"][key] = run
            self.save()
            last = final_loss(run["val"])
            self.log(
                f"{self.spec.name}: lr={lattice_lr(k):.3g} seed={seed} final={last:.4g} "
                f"best={best_loss(run['val']):.4g} ({run['seconds']:.1f}s)"
            )

    def tables(self) -> dict[str, dict[int, list[float]]]:
        return {t: point_table(self.record, t) for t in TARGETS}

    def best_ks(self) -> list[int]:
        return sorted({best_k(tab) for tab in self.tables().values()})

    def complete(self, quick: bool = False) -> dict:
        """Run whatever the grid still lacks; returns the record."""
        if self.record.get("done") and self.record.get("version") == VERSION:
            return self.record
        self.record["version"] = VERSION
        if quick:
            for k in range(-15, 3, 3):
                self.ensure(k, (0,))
            self.record["done"] = True
            self.save()
            return self.record
        self._locate()
        lo, hi = min(self.best_ks()), max(self.best_ks())
        half = LARGE_DENSE_HALF if self.spec.large else DENSE_HALF
        for k in range(max(K_MIN, lo - DENSE_HALF), min(K_MAX, hi + DENSE_HALF) + 1):
            near = lo - half <= k <= hi + half
            self.ensure(k, BASE_SEEDS if near else BASE_SEEDS[:1])
        self._extend()
        for k0 in self.best_ks():
            for k in range(max(K_MIN, k0 - 2), min(K_MAX, k0 + 2) + 1):
                self.ensure(k, BASE_SEEDS + REFINE_SEEDS)
        self.record["done"] = True
        self.record["seconds"] = round(sum(r["seconds"] for r in self.record["runs"].values()), 1)
        self.save()
        return self.record

    def _seed0(self, target: str) -> dict[int, float]:
        fn = TARGETS[target]
        return {
            parse_key(key)[0]: fn(run["val"])
            for key, run in self.record["runs"].items()
            if parse_key(key)[1] == 0
        }

    def _locate(self) -> None:
        ks = list(LOCATE)
        for k in ks:
            self.ensure(k, (0,))
        while True:
            grown = False
            for target in TARGETS:
                pts = {k: v for k, v in self._seed0(target).items() if k % 3 == 0}
                kb = min(pts, key=lambda k: (pts[k], k))
                if kb == min(pts) and kb - 3 >= K_MIN:
                    self.ensure(kb - 3, (0,))
                    grown = True
                if kb == max(pts) and kb + 3 <= K_MAX:
                    self.ensure(kb + 3, (0,))
                    grown = True
            if not grown:
                return

    def _dense_block(self) -> tuple[int, int]:
        """The contiguous run of lattice points around the best that the grid covers
        (one-seed locate points beyond a gap do not count)."""
        need = 1 if self.spec.large else len(BASE_SEEDS)
        table = point_table(self.record, "final")
        have = {k for k, v in table.items() if len(v) >= need}
        k0 = best_k({k: table[k] for k in have})
        top = bottom = k0
        while top + 1 in have:
            top += 1
        while bottom - 1 in have:
            bottom -= 1
        return bottom, top

    def _extend(self) -> None:
        init = initial_loss(self.record)
        seeds = BASE_SEEDS[:1] if self.spec.large else BASE_SEEDS
        for _ in range(2 * (K_MAX - K_MIN)):
            tables = self.tables()
            bottom, top = self._dense_block()
            grew = False
            if top < K_MAX and not self._top_done(tables, top, init):
                self.ensure(top + 1, seeds)
                grew = True
            if bottom > K_MIN and not self._bottom_done(tables, bottom, init):
                self.ensure(bottom - 1, seeds)
                grew = True
            if not grew:
                return

    @staticmethod
    def _top_done(tables, top: int, init: float) -> bool:
        final_failed = failed(tables["final"][top], init)
        best = tables["best"]
        best_min = min(_median(v) for v in best.values())
        best_high = _median(best[top]) >= min(init, 2 * best_min)
        return final_failed and (best_high or failed(best[top], init))

    @staticmethod
    def _bottom_done(tables, bottom: int, init: float) -> bool:
        for tab in tables.values():
            if failed(tab[bottom], init):
                continue
            low = math.log(max(_median(tab[bottom]), 1e-300))
            floor = math.log(max(min(_median(v) for v in tab.values()), 1e-300))
            nxt = tab.get(bottom + 1)
            rising = nxt is not None and _median(tab[bottom]) >= _median(nxt)
            if not (low - floor >= RISE and rising):
                return False
        return True


# ------------------------------------------------------------------------- workers


def _lock_path(out_dir: Path, name: str) -> Path:
    return out_dir / ".locks" / f"{name}.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def claim(out_dir: Path, name: str) -> bool:
    """Take the task's lock file; a lock whose process is gone is taken over."""
    path = _lock_path(out_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                host, pid = path.read_text().split()
            except (OSError, ValueError):
                host, pid = "", "0"
            if host == socket.gethostname() and not _alive(int(pid)):
                path.unlink(missing_ok=True)
                continue
            return False
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return True
    return False


def release(out_dir: Path, name: str) -> None:
    _lock_path(out_dir, name).unlink(missing_ok=True)


def estimated_cost(spec) -> float:
    """Rough relative cost of one run (steps x a size factor), for scheduling big first."""
    n = corpus_tasks.train_samples(spec)
    steps = spec.epochs * math.ceil(n / spec.batch_size)
    heavy = {"cnn": 4.0, "transformer": 3.0, "rnn": 3.0, "conv1d": 1.5}.get(spec.arch, 1.0)
    return steps * heavy * (1 + spec.batch_size / 64)


def work(specs, out_dir: Path = TRUTH_DIR, quick: bool = False, log=print) -> None:
    """One worker: claim unfinished tasks (largest first) until none is left to claim
    (passes again over the list, so a lock left by a killed worker is taken over)."""
    setup(threads=1)
    while True:
        claimed = False
        for spec in sorted(specs, key=estimated_cost, reverse=True):
            rec = load_json(out_dir / f"{spec.name}.json")
            if rec is not None and rec.get("done") and rec.get("version") == VERSION:
                continue
            if not claim(out_dir, spec.name):
                continue
            claimed = True
            try:
                import keras

                keras.backend.clear_session()
                start = time.perf_counter()
                TaskTruth(spec, out_dir, log=log).complete(quick=quick)
                log(f"{spec.name}: done in {time.perf_counter() - start:.0f}s")
            finally:
                release(out_dir, spec.name)
        if not claimed:
            return


def load_truth(name: str, out_dir: Path = TRUTH_DIR) -> dict | None:
    return load_json(out_dir / f"{name}.json")
