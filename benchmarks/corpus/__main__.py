"""``python -m benchmarks.corpus``: the corpus benchmark's commands.

* ``--list``: one tab-separated line per task (name, family, optimizer, batch size,
  epochs, training samples).
* ``truth [--workers 2] [--tasks a,b]``: the dense-grid ground truth (resumable; cached
  in ``benchmarks/corpus/truth/``).
* ``probes [--tasks a,b] [--probe-seeds 5]``: every method's picks per probe seed
  (cached in ``benchmarks/corpus/probes/``).
* ``report``: curve regret of every method from the caches, by family and overall, for
  both targets; writes ``benchmarks/results/corpus.json`` and the corpus section of
  ``benchmarks/RESULTS.md``.
* ``--quick``: all three on 3 tasks with a coarse grid (1 seed, 6 points) and 2 probe
  seeds, into separate ``*_quick`` caches: a smoke test of the whole pipeline.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

from benchmarks.corpus import tasks as corpus_tasks

HERE = Path(__file__).resolve().parent


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _truth_worker(names: list[str], out_dir: str, quick: bool) -> None:
    from benchmarks.corpus import truth

    truth.work(corpus_tasks.get_specs(names), Path(out_dir), quick=quick, log=_log)


def run_truth(specs, out_dir: Path, workers: int, quick: bool) -> None:
    names = [s.name for s in specs]
    if workers <= 1:
        _truth_worker(names, str(out_dir), quick)
        return
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_truth_worker, args=(names, str(out_dir), quick)) for _ in range(workers)
    ]
    for p in procs:
        p.start()
        time.sleep(2.0)  # let the first claim its task before the next looks
    for p in procs:
        p.join()
    bad = [p.exitcode for p in procs if p.exitcode]
    if bad:
        raise SystemExit(f"a truth worker failed (exit codes {bad})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.corpus", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["truth", "probes", "report", "all"])
    parser.add_argument("--list", action="store_true", help="print the tasks and exit")
    parser.add_argument("--quick", action="store_true", help="smoke test on 3 tasks")
    parser.add_argument("--tasks", default=None, help="comma-separated task names")
    parser.add_argument("--workers", type=int, default=2, help="truth worker processes")
    parser.add_argument("--probe-seeds", type=int, default=5)
    args = parser.parse_args(argv)

    if args.list:
        for spec in corpus_tasks.get_specs(args.tasks):
            print(corpus_tasks.list_line(spec))
        return 0
    command = args.command or ("all" if args.quick else None)
    if command is None:
        parser.print_help()
        return 2
    names = args.tasks or (",".join(corpus_tasks.QUICK_TASKS) if args.quick else None)
    specs = corpus_tasks.get_specs(names)
    suffix = "_quick" if args.quick else ""
    truth_dir = HERE / f"truth{suffix}"
    probe_dir = HERE / f"probes{suffix}"
    probe_seeds = 2 if args.quick else args.probe_seeds
    start = time.perf_counter()
    if command in ("truth", "all"):
        run_truth(specs, truth_dir, 1 if args.quick else args.workers, args.quick)
    if command in ("probes", "all"):
        from benchmarks.corpus import probes

        probes.run(specs, probe_dir, probe_seeds=probe_seeds, log=_log)
    if command in ("report", "all"):
        from benchmarks.corpus import report

        report.run(specs, truth_dir, probe_dir, quick=args.quick, log=_log)
    _log(f"done in {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
