"""Real-size models for the probe-cost benchmark (issue 18), on generated data only.

Each :class:`~benchmarks.tasks.Task` here is as large as the models users run kt_lr on:
an epoch is hundreds to thousands of steps and a forward pass is a large share of a
training step (convolutions, attention), which is where a fixed 100 x 50 grid of forward
passes outgrew an epoch.

- ``bn_cnn``: a 3-block BatchNorm CNN (95k parameters) on 50,000 32x32x3 images, batch 128,
  SGD with momentum;
- ``resnet``: a small ResNet (a stride-2 stem, then 3 stages of 2 residual blocks with
  16/32/64 channels, BatchNorm) on the same 50,000 images, batch 128, Adam;
- ``transformer``: a 4-layer Transformer encoder (d=64, 4 heads) on 20,000 token sequences
  of length 64 (vocabulary 1,000), batch 64, AdamW;
- ``mlp_100k``: an MLP (72k parameters) on 100,000 samples, batch 32, Adam.
"""

from __future__ import annotations

import keras
import numpy as np

from benchmarks.tasks import Task

MSE = keras.losses.MeanSquaredError
SCCE = keras.losses.SparseCategoricalCrossentropy


def image_data(seed: int = 0, n_train: int = 50_000, n_val: int = 2_000, classes: int = 10):
    """32x32x3 images: a smooth random template per class (8x8 upsampled) plus noise."""
    rng = np.random.default_rng(100 + seed)
    coarse = rng.normal(size=(classes, 8, 8, 3)).astype("float32")
    templates = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
    n = n_train + n_val
    y = rng.integers(0, classes, size=n).astype("int32")
    x = rng.standard_normal(size=(n, 32, 32, 3), dtype=np.float32) * 2.0
    x += templates[y]
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def token_sequences(seed: int = 0, n_train: int = 20_000, n_val: int = 1_000, length: int = 64):
    """Token sequences (vocabulary 1,000); the label says whether token 7 comes before
    token 3 (-1 if absent): an order-dependent rule that needs attention."""
    rng = np.random.default_rng(200 + seed)
    n = n_train + n_val
    x = rng.integers(10, 1000, size=(n, length)).astype("int32")
    a = rng.integers(0, length, size=n)
    b = (a + rng.integers(1, length, size=n)) % length
    x[np.arange(n), a] = 7
    x[np.arange(n), b] = 3
    y = (a < b).astype("int32")
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def regression_data(seed: int = 0, n_train: int = 100_000, n_val: int = 5_000, d: int = 20):
    """A smooth nonlinear function of 20 standardised features plus noise."""
    rng = np.random.default_rng(300 + seed)
    n = n_train + n_val
    x = rng.normal(size=(n, d)).astype("float32")
    w = rng.normal(size=(d,)).astype("float32") / np.sqrt(d)
    y = np.sin(x @ w * 2.0) + 0.5 * (x[:, 0] * x[:, 1]) + 0.1 * rng.normal(size=n)
    y = y.astype("float32")[:, None]
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _bn_cnn():
    layers = [keras.Input((32, 32, 3))]
    for width in (32, 64, 128):
        layers += [
            keras.layers.Conv2D(width, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.MaxPooling2D(),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")]
    return keras.Sequential(layers)


def _res_block(h, width: int, stride: int):
    shortcut = h
    h = keras.layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Activation("relu")(h)
    h = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(h)
    h = keras.layers.BatchNormalization()(h)
    if stride != 1 or shortcut.shape[-1] != width:
        shortcut = keras.layers.Conv2D(width, 1, strides=stride, use_bias=False)(shortcut)
        shortcut = keras.layers.BatchNormalization()(shortcut)
    return keras.layers.Activation("relu")(h + shortcut)


def _resnet():
    inp = keras.Input((32, 32, 3))
    h = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inp)
    h = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(h))
    for stage, width in enumerate((16, 32, 64)):
        for block in range(2):
            h = _res_block(h, width, 2 if stage > 0 and block == 0 else 1)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, keras.layers.Dense(10, activation="softmax")(h))


class _AddPositions(keras.layers.Layer):
    """Adds a learned embedding of each position (computed in ``call``: a position
    embedding applied to a constant when the model is built runs once on PyTorch, and
    ``fit`` then fails with "backward through the graph a second time")."""

    def __init__(self, length: int, d: int, **kwargs):
        super().__init__(**kwargs)
        self.positions = keras.layers.Embedding(length, d)

    def call(self, h):
        return h + self.positions(keras.ops.arange(keras.ops.shape(h)[1])[None, :])


def _transformer(length: int = 64, vocab: int = 1000, d: int = 64, layers: int = 4):
    inp = keras.Input((length,), dtype="int32")
    h = _AddPositions(length, d)(keras.layers.Embedding(vocab, d)(inp))
    for _ in range(layers):
        att = keras.layers.MultiHeadAttention(num_heads=4, key_dim=d // 4)(h, h)
        h = keras.layers.LayerNormalization()(h + att)
        ff = keras.layers.Dense(2 * d, activation="relu")(h)
        h = keras.layers.LayerNormalization()(h + keras.layers.Dense(d)(ff))
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(inp, keras.layers.Dense(2, activation="softmax")(h))


def _mlp():
    return keras.Sequential(
        [
            keras.Input((20,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(1),
        ]
    )


REAL_TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task(
            name="bn_cnn",
            why="3-block BatchNorm CNN (95k parameters), 50,000 32x32x3 images: issue 18's case.",
            make_data=image_data,
            build=_bn_cnn,
            loss=SCCE,
            optimizer="SGD",
            optimizer_kwargs=(("momentum", 0.9),),
            epochs=10,
            batch_size=128,
        ),
        Task(
            name="resnet",
            why="A small ResNet (residual blocks, BatchNorm) on 50,000 32x32x3 images.",
            make_data=image_data,
            build=_resnet,
            loss=SCCE,
            optimizer="Adam",
            epochs=10,
            batch_size=128,
        ),
        Task(
            name="transformer",
            why="A 4-layer Transformer encoder on 20,000 token sequences of length 64.",
            make_data=token_sequences,
            build=_transformer,
            loss=SCCE,
            optimizer="AdamW",
            epochs=10,
            batch_size=64,
        ),
        Task(
            name="mlp_100k",
            why="An MLP (72k parameters) on 100,000 samples, batch 32.",
            make_data=regression_data,
            build=_mlp,
            loss=MSE,
            optimizer="Adam",
            epochs=10,
            batch_size=32,
        ),
    ]
}
