"""Hyperband on scikit-learn's digits, with one learning-rate probe per optimizer.

Run: python examples/digits_hyperband.py [--max-epochs 9] [--directory kt_lr_digits]

The space tunes the optimizer (SGD with momentum or Adam), the width and the learning
rate over five decades. kt_lr probes the LR once per optimizer before Hyperband starts,
narrows each optimizer's interval, seeds the first trials and keeps every trial's LR
inside its own optimizer's interval. Prints the LR report and the best values; about a
minute on two CPU cores with the defaults (needs scikit-learn).
"""

from __future__ import annotations

import argparse
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kt_lr  # noqa: E402

# Hyperband restores a checkpoint's weights into a freshly built model whose optimizer has
# no slots yet; Keras says so for every continued trial. Harmless here.
warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")


def digits_data(seed: int = 0):
    """Digits scaled to [0, 1], split 80/20 (train, validation)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order].astype("int32")
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def build_model(hp):
    """A one-hidden-layer classifier; the optimizer and its LR are tuned."""
    lr = hp.Float("learning_rate", 1e-5, 1.0, sampling="log")
    name = hp.Choice("optimizer", ["sgd", "adam"])
    optimizer = (
        keras.optimizers.SGD(lr, momentum=0.9) if name == "sgd" else keras.optimizers.Adam(lr)
    )
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hp.Choice("units", [32, 64, 128]), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(
    directory: str = "kt_lr_digits",
    max_epochs: int = 9,
    verbose: int = 0,
    probe_options: dict | None = None,
) -> kt_lr.Hyperband:
    """Run the search and print the LR report and the best hyperparameters."""
    probe_options = probe_options or {"num_steps": 60, "num_subsamples": 30, "verbose": 0}
    (x, y), validation = digits_data()
    tuner = kt_lr.Hyperband(
        build_model,
        objective="val_accuracy",
        max_epochs=max_epochs,
        factor=3,
        seed=0,
        directory=directory,
        project_name="digits_hyperband",
        overwrite=True,
        save_probe_plots=False,
        probe_options=probe_options,
    )
    tuner.search(x, y, validation_data=validation, batch_size=32, verbose=verbose)
    print(tuner.lr_report())
    best_trial = tuner.oracle.get_best_trials(1)[0]
    best = tuner.get_best_hyperparameters(1)[0]
    shown = {k: v for k, v in best.values.items() if not k.startswith("tuner/")}
    print(f"best val_accuracy {best_trial.score:.3f} with {shown}")
    print(f"{len(tuner.oracle.trials)} Hyperband trials")
    return tuner


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--directory", default="kt_lr_digits")
    args = parser.parse_args()
    main(args.directory, args.max_epochs)
