"""The search script of a distributed kt_lr search: the chief and every worker run it.

Keras Tuner decides each process's role from its environment:

    KERASTUNER_TUNER_ID=chief   serves the oracle (kt_lr's LROracle) and runs no trial
    KERASTUNER_TUNER_ID=tuner0  a worker: runs probes and trials (tuner1, tuner2, ...)
    KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT   where the chief listens (same for all)

Start the chief first (see run_local.sh). Every process must see the same directory.
The first requests create one learning-rate probe per optimizer; other workers wait
(with a back-off) until the probes are done, then every trial samples its learning
rate inside its own optimizer's narrowed interval. The chief prints the report at the
end (it holds the oracle); workers print nothing but Keras Tuner's progress.

Run alone (no KERASTUNER_* variables) it is an ordinary single-process search.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kt_lr  # noqa: E402
import kt_lr.distribute  # noqa: E402


def data(seed: int = 0):
    """scikit-learn's digits, scaled to [0, 1], split 80/20."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = (x[order] / 16.0).astype("float32"), y[order].astype("int32")
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def build_model(hp):
    lr = hp.Float("learning_rate", 1e-5, 1.0, sampling="log")  # declared once
    if hp.Choice("optimizer", ["sgd", "adam"]) == "sgd":
        optimizer = keras.optimizers.SGD(lr, momentum=0.9)
    else:
        optimizer = keras.optimizers.Adam(lr)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hp.Choice("units", [32, 128]), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description="Distributed kt_lr search on digits.")
    parser.add_argument("--directory", default="kt_lr_distributed")
    parser.add_argument("--max-trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--probe-timeout", type=float, default=300.0)
    parser.add_argument("--trial-timeout", type=float, default=600.0)
    args = parser.parse_args()
    (x, y), validation = data()
    tuner = kt_lr.RandomSearch(
        build_model,
        objective="val_accuracy",
        max_trials=args.max_trials,
        seed=0,
        directory=args.directory,
        project_name="digits",
        probe_timeout=args.probe_timeout,  # a probe whose worker died is handed out again
        trial_timeout=args.trial_timeout,  # ... and so is an ordinary trial
        probe_options={"num_steps": 60, "num_subsamples": 30, "verbose": 0},
        save_probe_plots=False,
    )
    tuner.search(x, y, validation_data=validation, epochs=args.epochs, batch_size=32, verbose=0)
    if kt_lr.distribute.distributed_role() in (None, "chief"):
        print(tuner.lr_report())
        best = tuner.get_best_hyperparameters(1)[0]
        print("best:", best.values)


if __name__ == "__main__":
    main()
