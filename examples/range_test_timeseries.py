"""Range test + loss differentials on the seed-001 synthetic time series.

Run: python examples/range_test_timeseries.py [output_dir]
Prints what each probe saw and the fused pick, then trains at Keras's default
LR and at the pick for the same epochs and prints both validation losses.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import kt_lr  # noqa: E402
from kt_lr.demo import build_timeseries_model, timeseries_data  # noqa: E402


def main(out_dir: str = "kt_lr_example_output") -> None:
    x, y, xv, yv = timeseries_data()
    model = build_timeseries_model()
    finding = kt_lr.find_lr(model, x, y, seed=0, verbose=1)
    print(finding.range_test.summary())
    print(finding.differential.summary())
    print(finding.summary())
    os.makedirs(out_dir, exist_ok=True)
    try:
        finding.plot().savefig(os.path.join(out_dir, "find_lr.png"), dpi=100)
        print(f"plot: {os.path.join(out_dir, 'find_lr.png')}")
    except ImportError as err:
        print(err)
    for name, lr in [("Keras default 1e-3", 1e-3), ("kt_lr pick", finding.lr)]:
        m = build_timeseries_model(lr)
        hist = m.fit(x, y, validation_data=(xv, yv), epochs=30, batch_size=32, verbose=0)
        print(f"{name:>20s}: lr={lr:.3g} final val MSE {hist.history['val_loss'][-1]:.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
