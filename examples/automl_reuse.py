"""kt_lr inside code written by someone else: their oracle, their tuner, their run_trial.

Run: python examples/automl_reuse.py [directory] [max_trials] [epochs]

An AutoML library usually brings its own Keras Tuner classes. This example plays both
sides: the "library" part defines an Oracle subclass with its own ``populate_space``
and a Tuner subclass with its own ``run_trial`` (a hand-written training loop); the
"user" part adds kt_lr to them without touching their code:

- ``kt_lr.LROracle(their_oracle)`` upgrades the oracle instance in place: it stays an
  instance of their class, their ``populate_space`` still proposes every value, and
  kt_lr seeds the LR and keeps it inside the probe's interval;
- ``class LRTheirTuner(kt_lr.LRTunerMixin, TheirTuner)`` runs the probe trials; every
  other trial goes to their ``run_trial`` unchanged.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402

import kt_lr  # noqa: E402


# ----------------------------------------------------------------- the library's code
class KeepBestWidthOracle(keras_tuner.Oracle):
    """Random values, but after a few trials the width of the best model is kept."""

    def __init__(self, *args, explore: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        self.explore = explore
        self.proposals = 0

    def populate_space(self, trial_id):
        self.proposals += 1
        values = self._random_values()
        if values is None:
            return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED, "values": None}
        best = self.get_best_trials(1)
        if len(self.trials) > self.explore and best:
            values["units"] = best[0].hyperparameters.values["units"]
        return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": values}


class HandLoopTuner(keras_tuner.Tuner):
    """Trains with a hand-written loop over mini-batches instead of ``model.fit``."""

    def run_trial(self, trial, x, y, validation_data, epochs=2):
        hp = trial.hyperparameters
        model = self.hypermodel.build(hp)
        batch_size = hp.get("batch_size")
        rng = np.random.default_rng(int(trial.trial_id or 0))
        for _ in range(epochs):
            order = rng.permutation(len(x))
            for start in range(0, len(x), batch_size):
                idx = order[start : start + batch_size]
                model.train_on_batch(x[idx], y[idx])
        return {"val_loss": float(model.evaluate(*validation_data, verbose=0))}


def build_model(hp):
    """The library's search space; the LR is declared once, as kt_lr needs."""
    hp.Choice("batch_size", [16, 64])
    lr = hp.Float("learning_rate", 1e-5, 1.0, sampling="log")
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(hp.Choice("units", [8, 32]), activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(lr), "mse")
    return model


# ----------------------------------------------------------------- the user's code
class LRHandLoopTuner(kt_lr.LRTunerMixin, HandLoopTuner):
    """Their tuner, with kt_lr's learning-rate probe."""


def make_data(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    w = rng.normal(size=(8, 1)).astype("float32")
    y = (np.tanh(x @ w) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    cut = int(0.8 * n)
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def main(directory: str = "kt_lr_automl_reuse", max_trials: int = 6, epochs: int = 2):
    """Run the search and print the learning-rate report and the best values."""
    (x, y), validation = make_data()
    oracle = kt_lr.LROracle(
        KeepBestWidthOracle(objective="val_loss", max_trials=max_trials, seed=0),
        num_seeds=2,
    )
    tuner = LRHandLoopTuner(
        oracle=oracle,
        hypermodel=build_model,
        directory=directory,
        project_name="automl_reuse",
        overwrite=True,
        save_probe_plots=False,
        probe_options={"num_steps": 50, "num_subsamples": 20, "verbose": 0},
    )
    tuner.search(x, y, validation_data=validation, epochs=epochs)
    print(tuner.lr_report())
    best = tuner.get_best_hyperparameters(1)[0].values
    print("best values:", {k: v for k, v in best.items() if not k.startswith("kt_lr/")})
    print(
        f"their populate_space proposed {oracle.proposals} trials; the oracle is a "
        f"{type(oracle).__name__}, still a KeepBestWidthOracle: "
        f"{isinstance(oracle, KeepBestWidthOracle)}"
    )
    return tuner


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        args[0] if args else "kt_lr_automl_reuse",
        int(args[1]) if len(args) > 1 else 6,
        int(args[2]) if len(args) > 2 else 2,
    )
