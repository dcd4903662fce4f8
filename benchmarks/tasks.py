"""The benchmark tasks: small models with fixed training budgets, chosen to spread
optimizers, loss scales (initial loss ~1e-2 ... ~3e4) and best learning rates
(~1e-6 ... ~1) widely.

Every task has ``make_data(seed) -> (x_train, y_train, x_val, y_val)`` (generated
data or scikit-learn's bundled datasets only; the benchmark uses ``seed=0``) and
``build_model(seed, learning_rate=None)`` returning a fresh compiled model
(``keras.utils.set_random_seed(seed)`` first; ``learning_rate=None`` means the
optimizer's Keras default). Losses are compiled as loss *objects* (not strings) so
that peers which call ``model.loss(y, y_pred)`` work too.

The set was fixed before looking at how kt_lr does on it.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402


@dataclass(frozen=True)
class Task:
    name: str
    why: str
    make_data: Callable[[int], tuple]
    build: Callable[[], keras.Model]  # uncompiled architecture
    loss: Callable[[], keras.losses.Loss]
    optimizer: str  # class name in keras.optimizers
    optimizer_kwargs: tuple = ()
    epochs: int = 20
    batch_size: int = 32

    def default_lr(self) -> float:
        """The optimizer class's default ``learning_rate``."""
        cls = getattr(keras.optimizers, self.optimizer)
        return float(inspect.signature(cls).parameters["learning_rate"].default)

    def build_model(self, seed: int, learning_rate: float | None = None) -> keras.Model:
        """A fresh compiled model, weights from ``seed``."""
        keras.utils.set_random_seed(int(seed))
        model = self.build()
        lr = self.default_lr() if learning_rate is None else float(learning_rate)
        opt = getattr(keras.optimizers, self.optimizer)(
            learning_rate=lr, **dict(self.optimizer_kwargs)
        )
        model.compile(optimizer=opt, loss=self.loss())
        return model


# ------------------------------------------------------------------------------ data


def _seed_series(noise_seed: int = 42) -> np.ndarray:
    """The seed-001 series (the demo's generator): baseline 10, slope 0.09, season 365."""
    from kt_lr.demo import timeseries

    return timeseries(noise_seed)


def _windows(series: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(len(series) - window)[:, None] + np.arange(window + 1)[None, :]
    w = series[idx]
    return w[:, :-1].astype("float32"), w[:, -1:].astype("float32")


def series_data(seed: int = 0, window: int = 20, split: int = 1000):
    """Windows of 20 -> next value; train on t < 1000, validate on the rest."""
    series = _seed_series(42 + seed)
    x_tr, y_tr = _windows(series[:split], window)
    x_va, y_va = _windows(series[split - window :], window)
    return x_tr, y_tr, x_va, y_va


def _split(x, y, seed: int, val_fraction: float = 0.2, stratify: bool = True):
    from sklearn.model_selection import train_test_split

    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=val_fraction, random_state=seed, stratify=y if stratify else None
    )
    return x_tr, y_tr, x_va, y_va


def digits_data(seed: int = 0, image: bool = False):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype("float32")
    if image:
        x = x.reshape(-1, 8, 8, 1)
    return _split(x, d.target.astype("int32"), seed)


def cancer_data(seed: int = 0):
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    x_tr, y_tr, x_va, y_va = _split(d.data, d.target, seed)
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-8
    f = "float32"
    return (
        ((x_tr - mu) / sd).astype(f),
        y_tr.astype(f)[:, None],
        ((x_va - mu) / sd).astype(f),
        y_va.astype(f)[:, None],
    )


def diabetes_data(seed: int = 0):
    """load_diabetes as shipped (features already small), target left unscaled (25..346)."""
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    x_tr, y_tr, x_va, y_va = _split(d.data, d.target, seed, stratify=False)
    f = "float32"
    return x_tr.astype(f), y_tr.astype(f)[:, None], x_va.astype(f), y_va.astype(f)[:, None]


def wine_data(seed: int = 0):
    from sklearn.datasets import load_wine

    d = load_wine()
    x_tr, y_tr, x_va, y_va = _split(d.data, d.target, seed)
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-8
    f = "float32"
    return (
        ((x_tr - mu) / sd).astype(f),
        y_tr.astype("int32"),
        ((x_va - mu) / sd).astype(f),
        y_va.astype("int32"),
    )


def retrieval_data(seed: int = 0, n_train: int = 2048, n_val: int = 512, length: int = 12):
    """Sequences of 4 channels; channel 0 marks one position; the target is 0.1 x
    channel 1 at the marked position (needs attention to solve; loss scale ~1e-2)."""
    rng = np.random.default_rng(1000 + seed)
    n = n_train + n_val
    x = rng.normal(size=(n, length, 4)).astype("float32")
    pos = rng.integers(0, length, size=n)
    x[:, :, 0] = 0.0
    x[np.arange(n), pos, 0] = 1.0
    y = (0.1 * x[np.arange(n), pos, 1])[:, None].astype("float32")
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def scaled_series_sequences(seed: int = 0):
    """The series windows as sequences of shape (20, 1), inputs and target / 50
    (values ~0.2..1: loss scale ~1e-2)."""
    x_tr, y_tr, x_va, y_va = series_data(seed)
    return x_tr[..., None] / 50, y_tr / 50, x_va[..., None] / 50, y_va / 50


def token_data(seed: int = 0, n_train: int = 2000, n_val: int = 500, length: int = 20):
    """Integer token sequences (vocabulary 50); label 1 when tokens 0..9 outnumber
    tokens 40..49 (a bag-of-words rule an embedding and pooling can learn)."""
    rng = np.random.default_rng(7 + seed)
    x = rng.integers(0, 50, size=(n_train + n_val, length)).astype("int32")
    y = (((x < 10).sum(1) - (x >= 40).sum(1)) > 0).astype("int32")
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


# ---------------------------------------------------------------------------- models


def _mlp(d_in: int, hidden: tuple[int, ...], d_out: int, out_activation=None):
    def build():
        layers = [keras.Input((d_in,))]
        layers += [keras.layers.Dense(h, activation="relu") for h in hidden]
        layers.append(keras.layers.Dense(d_out, activation=out_activation))
        return keras.Sequential(layers)

    return build


def _small_cnn():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def _attention_block(length: int = 12, channels: int = 4, width: int = 16):
    def build():
        inp = keras.Input((length, channels))
        h = keras.layers.Dense(width)(inp)
        att = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(h, h)
        h = keras.layers.LayerNormalization()(h + att)
        h = keras.layers.GlobalAveragePooling1D()(h)
        return keras.Model(inp, keras.layers.Dense(1)(h))

    return build


def _lstm():
    return keras.Sequential([keras.Input((20, 1)), keras.layers.LSTM(16), keras.layers.Dense(1)])


def _embedding_pool():
    return keras.Sequential(
        [
            keras.Input((20,), dtype="int32"),
            keras.layers.Embedding(50, 8),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )


def _bn_dropout_mlp():
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def _bn_cnn():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def _conv1d():
    return keras.Sequential(
        [
            keras.Input((20, 1)),
            keras.layers.Conv1D(8, 5, activation="relu"),
            keras.layers.GlobalMaxPooling1D(),
            keras.layers.Dense(1),
        ]
    )


# ----------------------------------------------------------------------------- tasks

MSE = keras.losses.MeanSquaredError
SCCE = keras.losses.SparseCategoricalCrossentropy
BCE = keras.losses.BinaryCrossentropy

TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task(
            name="ts_sgd",
            why="The seed-001 case: unscaled series (loss ~1e2..1e3), SGD+momentum, best LR tiny (~1e-6).",
            make_data=series_data,
            build=_mlp(20, (10, 10), 1),
            loss=MSE,
            optimizer="SGD",
            optimizer_kwargs=(("momentum", 0.9),),
            epochs=40,
        ),
        Task(
            name="ts_adam",
            why="Same data with Adam and a wider net: same loss scale, adaptive optimizer, best LR far higher.",
            make_data=series_data,
            build=_mlp(20, (64, 32), 1),
            loss=MSE,
            optimizer="Adam",
            epochs=40,
        ),
        Task(
            name="digits_mlp",
            why="A well-conditioned classifier (loss ~2.3) with Adam: the case most LR finders are tuned on.",
            make_data=digits_data,
            build=_mlp(64, (64,), 10, "softmax"),
            loss=SCCE,
            optimizer="Adam",
            epochs=20,
        ),
        Task(
            name="digits_cnn",
            why="Convolution with plain SGD (no momentum): best LR large (~0.1..1), Keras default too small.",
            make_data=lambda seed=0: digits_data(seed, image=True),
            build=_small_cnn,
            loss=SCCE,
            optimizer="SGD",
            epochs=15,
        ),
        Task(
            name="cancer_rmsprop",
            why="Binary cross-entropy with RMSprop on standardized features: small loss scale (~0.7 -> ~0.05).",
            make_data=cancer_data,
            build=_mlp(30, (16,), 1, "sigmoid"),
            loss=BCE,
            optimizer="RMSprop",
            epochs=30,
        ),
        Task(
            name="diabetes_adamw",
            why="Regression with an unscaled target (loss ~3e4 -> ~3e3) and tiny features with AdamW: best LR high.",
            make_data=diabetes_data,
            build=_mlp(10, (32,), 1),
            loss=MSE,
            optimizer="AdamW",
            epochs=50,
        ),
        Task(
            name="seq_attention",
            why="A MultiHeadAttention block on generated retrieval sequences, Adam, loss ~1e-2: the range test's known weak spot.",
            make_data=retrieval_data,
            build=_attention_block(),
            loss=MSE,
            optimizer="Adam",
            epochs=8,
        ),
        Task(
            name="wine_adagrad",
            why="A tiny dataset (142 rows) with Adagrad, whose default LR (1e-3) is far too small.",
            make_data=wine_data,
            build=_mlp(13, (16,), 3, "softmax"),
            loss=SCCE,
            optimizer="Adagrad",
            epochs=60,
        ),
    ]
}


def get_tasks(names: str | list[str] | None = None) -> list[Task]:
    """Tasks by name (comma-separated string or list, from :data:`TASKS` or
    :data:`HELDOUT`); all of :data:`TASKS` when ``None``."""
    if names is None:
        return list(TASKS.values())
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    known = {**TASKS, **HELDOUT}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; known: {sorted(known)}")
    return [known[n] for n in names]


# Held-out tasks: added after kt_lr's pick rule was fixed (session 3) and never used to
# choose it; `python -m benchmarks.regret --heldout` measures how the rule carries over
# to optimizers, layers and losses it was not fit on.
HELDOUT: dict[str, Task] = {
    t.name: t
    for t in [
        Task(
            name="lstm_nadam",
            why="A recurrent layer (LSTM) with Nadam on the series scaled to ~1 (loss ~1e-2).",
            make_data=scaled_series_sequences,
            build=_lstm,
            loss=MSE,
            optimizer="Nadam",
            epochs=6,
        ),
        Task(
            name="embed_adamax",
            why="Integer tokens through an Embedding (sparse gradients) and pooling, Adamax.",
            make_data=token_data,
            build=_embedding_pool,
            loss=SCCE,
            optimizer="Adamax",
            epochs=8,
        ),
        Task(
            name="bn_lion",
            why="BatchNormalization and Dropout (training-mode statistics and noise) with Lion, a sign-based optimizer.",
            make_data=digits_data,
            build=_bn_dropout_mlp,
            loss=SCCE,
            optimizer="Lion",
            epochs=10,
        ),
        Task(
            name="bncnn_adadelta",
            why="A conv + BatchNormalization + pooling net with Adadelta, whose useful LRs (~1..10) sit at the top of the probed range.",
            make_data=lambda seed=0: digits_data(seed, image=True),
            build=_bn_cnn,
            loss=SCCE,
            optimizer="Adadelta",
            epochs=10,
        ),
        Task(
            name="conv1d_nesterov",
            why="Conv1D on the scaled series with SGD + Nesterov momentum.",
            make_data=scaled_series_sequences,
            build=_conv1d,
            loss=MSE,
            optimizer="SGD",
            optimizer_kwargs=(("momentum", 0.9), ("nesterov", True)),
            epochs=10,
        ),
    ]
}
