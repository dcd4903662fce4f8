"""The corpus: small, seedable task specs grouped into families known up front.

A :class:`Spec` names a data generator, an architecture, an optimizer, a loss, a batch
size and an epoch budget, each with keyword arguments, so a task is a few plain fields
(printable with ``python -m benchmarks.corpus --list``) and every piece is built from
them reproducibly:

* ``make_data(spec)`` -> ``(x_train, y_train, x_val, y_val)``: generated data, scikit-learn's
  bundled sets or the seed-001 series; the data never depends on the training seed.
* ``build_model(spec, seed, lr)``: a fresh compiled model, weights from ``seed``.

Families group tasks that share their data and architecture kind; cross-validation of a
pick rule leaves a whole family out. The list was fixed before any pick was scored on it.
It includes, on purpose, the regimes that broke the version-one rule: small training sets
with long budgets (overfitting-limited), sign-based optimizers (Lion), attention, and
unscaled targets.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

FAMILIES = (
    "series",  # MLPs on windows of the seed-001 series, raw and standardised targets
    "series_seq",  # the series as sequences: LSTM, GRU, Conv1D
    "digits_mlp",  # scikit-learn digits through MLPs (shallow, deep, wide, BN, residual)
    "digits_cnn",  # digits as 8x8 images through CNNs
    "tabular_binary",  # binary cross-entropy on small tabular sets
    "tabular_regression",  # diabetes and Friedman regression, raw and standardised
    "multiclass",  # generated multi-class tables, 500 to 50,000 rows
    "images",  # generated 16x16x3 images through CNNs, up to 50,000 images
    "tokens",  # integer token sequences through Embedding + pooling / GRU
    "attention",  # Transformer-style attention blocks on sequences and tokens
)

LOSSES = ("mse", "mae", "huber", "bce", "bce_logits", "scce", "cce")


@dataclass(frozen=True)
class Spec:
    """One corpus task (see the module docstring).

    Args:
        name: unique task name.
        family: one of :data:`FAMILIES`.
        data: data generator name (a key of :data:`DATA`), with ``data_kwargs``.
        arch: architecture name (a key of :data:`ARCHS`), with ``arch_kwargs``.
        optimizer: class name in ``keras.optimizers``, with ``optimizer_kwargs``.
        loss: one of :data:`LOSSES`.
        batch_size: training batch size.
        epochs: the training budget in epochs.
        large: a large task gets extra seeds only near its best LR (ground truth).
        why: what the task adds to the corpus.
    """

    name: str
    family: str
    data: str
    arch: str
    optimizer: str
    loss: str
    batch_size: int
    epochs: int
    data_kwargs: dict = field(default_factory=dict)
    arch_kwargs: dict = field(default_factory=dict)
    optimizer_kwargs: dict = field(default_factory=dict)
    large: bool = False
    why: str = ""

    def __hash__(self) -> int:
        return hash(self.name)

    def to_dict(self) -> dict:
        return asdict(self)

    def default_lr(self) -> float:
        """The optimizer class's default ``learning_rate`` (the 'Keras default' peer)."""
        import keras

        cls = getattr(keras.optimizers, self.optimizer)
        return float(inspect.signature(cls).parameters["learning_rate"].default)

    def optimizer_label(self) -> str:
        kw = self.optimizer_kwargs
        if self.optimizer == "SGD" and kw.get("nesterov"):
            return "SGD+nesterov"
        if self.optimizer == "SGD" and kw.get("momentum"):
            return "SGD+momentum"
        return self.optimizer


# ------------------------------------------------------------------------------ data


def _standardise(x_tr, x_va):
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-8
    return ((x_tr - mu) / sd).astype("float32"), ((x_va - mu) / sd).astype("float32")


def _targets(y_tr, y_va, scale: str):
    """Regression targets as columns, ``raw`` or ``standardised`` (train statistics)."""
    y_tr = np.asarray(y_tr, "float32").reshape(len(y_tr), -1)
    y_va = np.asarray(y_va, "float32").reshape(len(y_va), -1)
    if scale == "raw":
        return y_tr, y_va
    if scale == "standardised":
        return _standardise(y_tr, y_va)
    raise ValueError(f"target scale must be 'raw' or 'standardised', got {scale!r}")


def _series_windows(window: int = 20, split: int = 1000):
    from benchmarks.tasks import series_data

    return series_data(0, window=window, split=split)


def data_series(target: str = "raw"):
    """Windows of 20 values of the seed-001 series -> the next value (980 train)."""
    x_tr, y_tr, x_va, y_va = _series_windows()
    if target == "standardised":
        x_tr, x_va = _standardise(x_tr, x_va)
    y_tr, y_va = _targets(y_tr, y_va, target)
    return x_tr, y_tr, x_va, y_va


def data_series_seq(target: str = "scaled"):
    """The same windows as sequences (20, 1); ``scaled``: inputs and target / 50."""
    x_tr, y_tr, x_va, y_va = _series_windows()
    if target == "scaled":
        return x_tr[..., None] / 50, y_tr / 50, x_va[..., None] / 50, y_va / 50
    x_tr, x_va = _standardise(x_tr, x_va)
    y_tr, y_va = _targets(y_tr, y_va, "standardised")
    return x_tr[..., None], y_tr, x_va[..., None], y_va


def data_digits(image: bool = False, onehot: bool = False):
    from benchmarks.tasks import digits_data

    x_tr, y_tr, x_va, y_va = digits_data(0, image=image)
    if onehot:
        y_tr, y_va = np.eye(10, dtype="float32")[y_tr], np.eye(10, dtype="float32")[y_va]
    return x_tr, y_tr, x_va, y_va


def data_cancer():
    from benchmarks.tasks import cancer_data

    return cancer_data(0)


def data_diabetes(target: str = "raw"):
    from benchmarks.tasks import diabetes_data

    x_tr, y_tr, x_va, y_va = diabetes_data(0)
    x_tr, x_va = _standardise(x_tr, x_va)
    y_tr, y_va = _targets(y_tr, y_va, target)
    return x_tr, y_tr, x_va, y_va


def data_friedman(n_train: int = 2000, n_val: int = 1000, target: str = "standardised"):
    """Friedman #1 (10 features, 5 informative), noise 1; ``raw`` target x 10 (~0..300)."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=n_train + n_val, n_features=10, noise=1.0, random_state=3)
    if target == "raw":
        y = 10 * y
    x = x.astype("float32")
    y_tr, y_va = _targets(y[:n_train], y[n_train:], target)
    return x[:n_train], y_tr, x[n_train:], y_va


def data_moons(n_train: int = 300, n_val: int = 1000, noise: float = 0.3):
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_train + n_val, noise=noise, random_state=5)
    x = x.astype("float32")
    y = y.astype("float32")[:, None]
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def data_table(
    n_train: int = 3000,
    n_val: int = 1000,
    n_features: int = 20,
    n_classes: int = 5,
    flip_y: float = 0.05,
    seed: int = 11,
):
    """scikit-learn's ``make_classification`` (generated), standardised features."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=n_train + n_val,
        n_features=n_features,
        n_informative=max(2, n_features // 2),
        n_redundant=n_features // 4,
        n_classes=n_classes,
        n_clusters_per_class=2,
        flip_y=flip_y,
        class_sep=1.0,
        random_state=seed,
    )
    x_tr, x_va = _standardise(x[:n_train], x[n_train:])
    dtype = "float32" if n_classes == 2 else "int32"
    y_tr, y_va = y[:n_train].astype(dtype), y[n_train:].astype(dtype)
    if n_classes == 2:
        y_tr, y_va = y_tr[:, None], y_va[:, None]
    return x_tr, y_tr, x_va, y_va


@lru_cache(maxsize=2)
def _image_templates(classes: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.zeros((classes, size, size, 3), "float32")
    for c in range(classes):
        for _ in range(4):  # four coloured blobs per class
            cy, cx = rng.uniform(0.15, 0.85, 2)
            s = rng.uniform(0.08, 0.2)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
            out[c] += blob[..., None] * rng.uniform(-1, 1, 3)[None, None, :]
    return out


def data_images(
    n_train: int = 10_000, n_val: int = 2000, classes: int = 10, size: int = 16, noise=0.6
):
    """Generated images: a class's template of coloured blobs, shifted by up to 3 pixels,
    scaled in brightness, plus Gaussian noise (32-bit, 16x16x3 by default)."""
    tpl = _image_templates(classes, size, 17)
    rng = np.random.default_rng(23)
    n = n_train + n_val
    y = rng.integers(0, classes, n)
    x = np.empty((n, size, size, 3), "float32")
    shifts = rng.integers(-3, 4, (n, 2))
    gains = rng.uniform(0.6, 1.4, n).astype("float32")
    for i in range(n):
        x[i] = np.roll(tpl[y[i]], tuple(shifts[i]), axis=(0, 1)) * gains[i]
    x += rng.normal(0, noise, x.shape).astype("float32")
    y = y.astype("int32")
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def data_tokens(n_train: int = 2000, n_val: int = 500, length: int = 20):
    from benchmarks.tasks import token_data

    return token_data(0, n_train=n_train, n_val=n_val, length=length)


def data_retrieval(n_train: int = 2048, n_val: int = 512, length: int = 12):
    from benchmarks.tasks import retrieval_data

    return retrieval_data(0, n_train=n_train, n_val=n_val, length=length)


DATA = {
    "series": data_series,
    "series_seq": data_series_seq,
    "digits": data_digits,
    "cancer": data_cancer,
    "diabetes": data_diabetes,
    "friedman": data_friedman,
    "moons": data_moons,
    "table": data_table,
    "images": data_images,
    "tokens": data_tokens,
    "retrieval": data_retrieval,
}


@lru_cache(maxsize=4)
def _data_cached(name: str, kwargs_items: tuple):
    return DATA[name](**dict(kwargs_items))


def make_data(spec: Spec):
    """``(x_train, y_train, x_val, y_val)`` of a task (cached per process)."""
    return _data_cached(spec.data, tuple(sorted(spec.data_kwargs.items())))


# ---------------------------------------------------------------------------- models


def _head(h, out: int, activation):
    import keras

    return keras.layers.Dense(out, activation=activation)(h)


def arch_mlp(inp, out, act, hidden=(64,), batchnorm=False, dropout=0.0):
    import keras

    h = inp
    for width in hidden:
        h = keras.layers.Dense(width, use_bias=not batchnorm)(h)
        if batchnorm:
            h = keras.layers.BatchNormalization()(h)
        h = keras.layers.Activation("relu")(h)
        if dropout:
            h = keras.layers.Dropout(dropout)(h)
    return _head(h, out, act)


def arch_resmlp(inp, out, act, width=64, blocks=3):
    import keras

    h = keras.layers.Dense(width)(inp)
    for _ in range(blocks):
        r = keras.layers.LayerNormalization()(h)
        r = keras.layers.Dense(width, activation="relu")(r)
        r = keras.layers.Dense(width)(r)
        h = keras.layers.Add()([h, r])
    return _head(keras.layers.Activation("relu")(h), out, act)


def arch_cnn(inp, out, act, filters=(8,), batchnorm=False, dense=0):
    import keras

    h = inp
    for f in filters:
        h = keras.layers.Conv2D(f, 3, padding="same", use_bias=not batchnorm)(h)
        if batchnorm:
            h = keras.layers.BatchNormalization()(h)
        h = keras.layers.Activation("relu")(h)
        if len(filters) > 1:
            h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    if dense:
        h = keras.layers.Dense(dense, activation="relu")(h)
    return _head(h, out, act)


def arch_conv1d(inp, out, act, filters=8, kernel=5):
    import keras

    h = keras.layers.Conv1D(filters, kernel, activation="relu")(inp)
    h = keras.layers.GlobalMaxPooling1D()(h)
    return _head(h, out, act)


def arch_rnn(inp, out, act, cell="lstm", units=16, vocab=0, embed=8):
    import keras

    h = inp
    if vocab:
        h = keras.layers.Embedding(vocab, embed)(h)
    layer = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    return _head(layer(units)(h), out, act)


def arch_embed_pool(inp, out, act, vocab=50, embed=8, hidden=16):
    import keras

    h = keras.layers.Embedding(vocab, embed)(inp)
    h = keras.layers.GlobalAveragePooling1D()(h)
    h = keras.layers.Dense(hidden, activation="relu")(h)
    return _head(h, out, act)


def arch_transformer(inp, out, act, width=16, heads=2, vocab=0, length=12):
    """One Transformer encoder block (attention + MLP, pre-norm residuals)."""
    import keras

    if vocab:
        h = keras.layers.Embedding(vocab, width)(inp)
        pos = keras.layers.Embedding(length, width)(keras.ops.arange(length)[None, :])
        h = h + pos
    else:
        h = keras.layers.Dense(width)(inp)
    a = keras.layers.LayerNormalization()(h)
    a = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=width // heads)(a, a)
    h = h + a
    m = keras.layers.LayerNormalization()(h)
    m = keras.layers.Dense(2 * width, activation="relu")(m)
    h = h + keras.layers.Dense(width)(m)
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.LayerNormalization()(h))
    return _head(h, out, act)


ARCHS = {
    "mlp": arch_mlp,
    "resmlp": arch_resmlp,
    "cnn": arch_cnn,
    "conv1d": arch_conv1d,
    "rnn": arch_rnn,
    "embed_pool": arch_embed_pool,
    "transformer": arch_transformer,
}


def _loss_and_head(spec: Spec, y_train):
    """(loss object, output width, output activation) for a spec's loss."""
    import keras

    width = int(y_train.shape[-1]) if y_train.ndim > 1 else int(y_train.max()) + 1
    table = {
        "mse": (keras.losses.MeanSquaredError(), width, None),
        "mae": (keras.losses.MeanAbsoluteError(), width, None),
        "huber": (keras.losses.Huber(), width, None),
        "bce": (keras.losses.BinaryCrossentropy(), 1, "sigmoid"),
        "bce_logits": (keras.losses.BinaryCrossentropy(from_logits=True), 1, None),
        "scce": (keras.losses.SparseCategoricalCrossentropy(), width, "softmax"),
        "cce": (keras.losses.CategoricalCrossentropy(), width, "softmax"),
    }
    return table[spec.loss]


def build_model(spec: Spec, seed: int, learning_rate: float | None = None, **compile_kwargs):
    """A fresh compiled model of ``spec``, weights from ``seed`` (``keras.utils.set_random_seed``).

    ``learning_rate=None`` is the optimizer class's default. ScheduleFreeAdamW is built
    before ``fit`` (``optimizer.build(model.trainable_variables)``): Keras 3.15's
    ScheduleFreeAdamW under ``fit`` on TensorFlow otherwise overwrites the model's
    initial weights on its first step.
    """
    import keras

    x_tr, y_tr, _, _ = make_data(spec)
    keras.utils.set_random_seed(int(seed))
    loss, width, activation = _loss_and_head(spec, y_tr)
    inp = keras.Input(x_tr.shape[1:], dtype="int32" if x_tr.dtype.kind == "i" else "float32")
    outp = ARCHS[spec.arch](inp, width, activation, **spec.arch_kwargs)
    model = keras.Model(inp, outp, name=spec.name)
    lr = spec.default_lr() if learning_rate is None else float(learning_rate)
    opt = getattr(keras.optimizers, spec.optimizer)(learning_rate=lr, **spec.optimizer_kwargs)
    model.compile(optimizer=opt, loss=loss, **compile_kwargs)
    if spec.optimizer == "ScheduleFreeAdamW":
        opt.build(model.trainable_variables)
    return model


# ----------------------------------------------------------------------------- tasks

M9 = {"momentum": 0.9}
NEST = {"momentum": 0.9, "nesterov": True}


def _t(name, family, data, arch, optimizer, loss, batch_size, epochs, why, **kw):
    return Spec(name, family, data, arch, optimizer, loss, batch_size, epochs, why=why, **kw)


SPECS: tuple[Spec, ...] = (
    # ---- series: the seed-001 series, MLPs on windows
    _t("series_sgdm_raw", "series", "series", "mlp", "SGD", "mse", 32, 40,
       "seed-001's case: unscaled target (loss 1e2..1e3), momentum SGD, tiny best LR",
       arch_kwargs={"hidden": (10, 10)}, optimizer_kwargs=M9),
    _t("series_adam_raw", "series", "series", "mlp", "Adam", "mse", 32, 40,
       "same data, Adam and a wider net", arch_kwargs={"hidden": (64, 32)}),
    _t("series_rmsprop_std", "series", "series", "mlp", "RMSprop", "mse", 16, 30,
       "standardised inputs and target, small batch", data_kwargs={"target": "standardised"},
       arch_kwargs={"hidden": (32,)}),
    _t("series_huber_adamw_raw", "series", "series", "mlp", "AdamW", "huber", 64, 40,
       "Huber on an unscaled target: the loss is linear there, gradients bounded",
       arch_kwargs={"hidden": (32, 32)}),
    _t("series_mae_adagrad_std", "series", "series", "mlp", "Adagrad", "mae", 32, 30,
       "MAE (sign-like gradients) with Adagrad", data_kwargs={"target": "standardised"},
       arch_kwargs={"hidden": (32,)}),
    _t("series_deep_nadam_std", "series", "series", "mlp", "Nadam", "mse", 128, 60,
       "a deep MLP, large batch, long budget", data_kwargs={"target": "standardised"},
       arch_kwargs={"hidden": (64, 64, 64, 64)}),
    # ---- series_seq: recurrent and convolutional sequence models
    _t("seq_lstm_nadam", "series_seq", "series_seq", "rnn", "Nadam", "mse", 32, 6,
       "an LSTM, short budget", arch_kwargs={"cell": "lstm"}),
    _t("seq_gru_adam", "series_seq", "series_seq", "rnn", "Adam", "mse", 64, 10,
       "a GRU on standardised sequences", data_kwargs={"target": "standardised"},
       arch_kwargs={"cell": "gru"}),
    _t("seq_conv1d_nesterov", "series_seq", "series_seq", "conv1d", "SGD", "mse", 32, 10,
       "Conv1D with Nesterov momentum", optimizer_kwargs=NEST),
    _t("seq_conv1d_adamax_huber", "series_seq", "series_seq", "conv1d", "Adamax", "huber", 16,
       15, "Conv1D, Adamax, Huber, standardised", data_kwargs={"target": "standardised"},
       arch_kwargs={"filters": 16}),
    _t("seq_gru_rmsprop_mae", "series_seq", "series_seq", "rnn", "RMSprop", "mae", 128, 20,
       "a GRU with MAE and a large batch", arch_kwargs={"cell": "gru", "units": 8}),
    _t("seq_lstm_lion", "series_seq", "series_seq", "rnn", "Lion", "mse", 32, 8,
       "sign-based Lion on an LSTM", data_kwargs={"target": "standardised"},
       arch_kwargs={"cell": "lstm"}),
    # ---- digits_mlp
    _t("digits_mlp_adam", "digits_mlp", "digits", "mlp", "Adam", "scce", 32, 20,
       "the well-conditioned classifier most LR finders are tuned on"),
    _t("digits_wide_sgd", "digits_mlp", "digits", "mlp", "SGD", "scce", 64, 15,
       "a wide MLP with plain SGD", arch_kwargs={"hidden": (512,)}),
    _t("digits_deep_sgdm", "digits_mlp", "digits", "mlp", "SGD", "scce", 32, 20,
       "a deep MLP with momentum", arch_kwargs={"hidden": (64, 64, 64, 64)},
       optimizer_kwargs=M9),
    _t("digits_bn_lion", "digits_mlp", "digits", "mlp", "Lion", "scce", 32, 10,
       "BatchNorm + Dropout with Lion", arch_kwargs={"hidden": (64,), "batchnorm": True,
                                                    "dropout": 0.2}),
    _t("digits_resmlp_lamb", "digits_mlp", "digits", "resmlp", "Lamb", "scce", 128, 30,
       "a residual MLP with LayerNorm, Lamb"),
    _t("digits_mlp_adafactor", "digits_mlp", "digits", "mlp", "Adafactor", "scce", 32, 20,
       "Adafactor (relative step sizes)", arch_kwargs={"hidden": (128,)}),
    _t("digits_mlp_ftrl", "digits_mlp", "digits", "mlp", "Ftrl", "scce", 32, 20,
       "Ftrl (not affine in the LR)"),
    # ---- digits_cnn
    _t("digits_cnn_sgd", "digits_cnn", "digits", "cnn", "SGD", "scce", 32, 15,
       "a small CNN with plain SGD: best LR large", data_kwargs={"image": True}),
    _t("digits_bncnn_adadelta", "digits_cnn", "digits", "cnn", "Adadelta", "scce", 32, 10,
       "BatchNorm CNN with Adadelta (useful LRs ~1..10)", data_kwargs={"image": True},
       arch_kwargs={"filters": (8, 16), "batchnorm": True}),
    _t("digits_cnn_adam_cce", "digits_cnn", "digits", "cnn", "Adam", "cce", 16, 8,
       "one-hot categorical cross-entropy, batch 16",
       data_kwargs={"image": True, "onehot": True}, arch_kwargs={"filters": (8, 16)}),
    _t("digits_bncnn_muon", "digits_cnn", "digits", "cnn", "Muon", "scce", 64, 10,
       "Muon (orthogonalised updates) on a BatchNorm CNN", data_kwargs={"image": True},
       arch_kwargs={"filters": (8, 16), "batchnorm": True, "dense": 32}),
    _t("digits_cnn_sfadamw", "digits_cnn", "digits", "cnn", "ScheduleFreeAdamW", "scce", 32,
       10, "ScheduleFreeAdamW (built before fit)", data_kwargs={"image": True},
       arch_kwargs={"filters": (8, 16)}),
    # ---- tabular_binary
    _t("cancer_rmsprop", "tabular_binary", "cancer", "mlp", "RMSprop", "bce", 32, 30,
       "455 rows, overfitting-limited", arch_kwargs={"hidden": (16,)}),
    _t("cancer_deep_adam", "tabular_binary", "cancer", "mlp", "Adam", "bce", 16, 60,
       "a deep net on 455 rows for 60 epochs: overfits", arch_kwargs={"hidden": (64, 64, 64)}),
    _t("moons_wide_sgdm", "tabular_binary", "moons", "mlp", "SGD", "bce", 16, 60,
       "300 noisy points, a wide net, long budget", arch_kwargs={"hidden": (256, 256)},
       optimizer_kwargs=M9),
    _t("noisy_binary_nadam", "tabular_binary", "table", "mlp", "Nadam", "bce", 32, 40,
       "400 rows, 20% flipped labels", data_kwargs={"n_train": 400, "n_classes": 2,
                                                    "flip_y": 0.2},
       arch_kwargs={"hidden": (128, 128)}),
    _t("cancer_lion", "tabular_binary", "cancer", "mlp", "Lion", "bce", 64, 40,
       "Lion on a small binary set", arch_kwargs={"hidden": (32,)}),
    _t("cancer_logits_adagrad", "tabular_binary", "cancer", "mlp", "Adagrad", "bce_logits",
       16, 40, "binary cross-entropy from logits, Adagrad", arch_kwargs={"hidden": (32,)}),
    # ---- tabular_regression
    _t("diabetes_adamw_raw", "tabular_regression", "diabetes", "mlp", "AdamW", "mse", 32, 50,
       "unscaled target (loss ~3e4)", arch_kwargs={"hidden": (32,)}),
    _t("diabetes_sgdm_std", "tabular_regression", "diabetes", "mlp", "SGD", "mse", 16, 40,
       "standardised target, momentum SGD", data_kwargs={"target": "standardised"},
       arch_kwargs={"hidden": (32,)}, optimizer_kwargs=M9),
    _t("diabetes_huber_adam_raw", "tabular_regression", "diabetes", "mlp", "Adam", "huber",
       32, 60, "Huber on an unscaled target, long budget", arch_kwargs={"hidden": (64, 64)}),
    _t("friedman_adam_std", "tabular_regression", "friedman", "mlp", "Adam", "mse", 64, 30,
       "Friedman #1, 2,000 rows", arch_kwargs={"hidden": (64, 64)}),
    _t("friedman_rmsprop_raw", "tabular_regression", "friedman", "mlp", "RMSprop", "mse", 32,
       20, "unscaled target x10 (~0..300)", data_kwargs={"target": "raw"},
       arch_kwargs={"hidden": (64,)}),
    _t("friedman_bn_sgd_mae", "tabular_regression", "friedman", "mlp", "SGD", "mae", 128, 40,
       "BatchNorm MLP, plain SGD, MAE", arch_kwargs={"hidden": (64, 64), "batchnorm": True}),
    _t("friedman_small_adamax", "tabular_regression", "friedman", "mlp", "Adamax", "mse", 16,
       60, "300 rows for 60 epochs: overfitting-limited", data_kwargs={"n_train": 300},
       arch_kwargs={"hidden": (128, 128)}),
    _t("friedman_muon", "tabular_regression", "friedman", "mlp", "Muon", "mse", 32, 20,
       "Muon on an MLP", arch_kwargs={"hidden": (64, 64)}),
    # ---- multiclass
    _t("table_adam", "multiclass", "table", "mlp", "Adam", "scce", 64, 20,
       "5 classes, 3,000 rows", arch_kwargs={"hidden": (64, 64)}),
    _t("table_large_sgdm", "multiclass", "table", "mlp", "SGD", "scce", 256, 5,
       "50,000 rows, 10 classes, short budget",
       data_kwargs={"n_train": 50_000, "n_val": 5000, "n_features": 40, "n_classes": 10},
       arch_kwargs={"hidden": (256, 256)}, optimizer_kwargs=M9, large=True),
    _t("table_large_adamw", "multiclass", "table", "mlp", "AdamW", "scce", 512, 3,
       "50,000 rows, batch 512, 3 epochs",
       data_kwargs={"n_train": 50_000, "n_val": 5000, "n_features": 40, "n_classes": 10},
       arch_kwargs={"hidden": (128, 128, 128)}, large=True),
    _t("table_small_rmsprop", "multiclass", "table", "mlp", "RMSprop", "scce", 16, 50,
       "500 rows, 10% flipped labels, a wide net: overfits",
       data_kwargs={"n_train": 500, "flip_y": 0.1}, arch_kwargs={"hidden": (256, 256)}),
    _t("table_bn_nadam", "multiclass", "table", "mlp", "Nadam", "scce", 128, 8,
       "20,000 rows through a BatchNorm MLP",
       data_kwargs={"n_train": 20_000, "n_val": 4000}, arch_kwargs={"hidden": (128, 128),
                                                                     "batchnorm": True}),
    _t("table_sfadamw", "multiclass", "table", "mlp", "ScheduleFreeAdamW", "scce", 32, 15,
       "ScheduleFreeAdamW on a table", arch_kwargs={"hidden": (64,)}),
    _t("table_adafactor", "multiclass", "table", "resmlp", "Adafactor", "scce", 64, 20,
       "Adafactor on a residual MLP", arch_kwargs={"width": 32, "blocks": 2}),
    # ---- images
    _t("images_cnn_adam", "images", "images", "cnn", "Adam", "scce", 64, 5,
       "10,000 generated images", arch_kwargs={"filters": (16, 32)}),
    _t("images_bncnn_sgdm_large", "images", "images", "cnn", "SGD", "scce", 128, 3,
       "50,000 generated images, BatchNorm CNN: a real-size data set",
       data_kwargs={"n_train": 50_000, "n_val": 5000},
       arch_kwargs={"filters": (16, 32), "batchnorm": True}, optimizer_kwargs=M9, large=True),
    _t("images_cnn_nesterov", "images", "images", "cnn", "SGD", "scce", 32, 10,
       "5,000 images, Nesterov", data_kwargs={"n_train": 5000},
       arch_kwargs={"filters": (8, 16)}, optimizer_kwargs=NEST),
    _t("images_small_adamw", "images", "images", "cnn", "AdamW", "scce", 32, 40,
       "1,000 images for 40 epochs: overfitting-limited",
       data_kwargs={"n_train": 1000, "noise": 1.0},
       arch_kwargs={"filters": (16, 32), "batchnorm": True, "dense": 64}),
    _t("images_cnn_lamb", "images", "images", "cnn", "Lamb", "scce", 256, 8,
       "Lamb at batch 256", arch_kwargs={"filters": (16, 32)}),
    # ---- tokens
    _t("tokens_embed_adamax", "tokens", "tokens", "embed_pool", "Adamax", "scce", 32, 8,
       "an Embedding (sparse gradients) and pooling, Adamax"),
    _t("tokens_embed_sgd", "tokens", "tokens", "embed_pool", "SGD", "scce", 16, 10,
       "plain SGD through an Embedding"),
    _t("tokens_gru_adam", "tokens", "tokens", "rnn", "Adam", "scce", 64, 6,
       "Embedding + GRU", arch_kwargs={"cell": "gru", "vocab": 50}),
    _t("tokens_embed_adagrad", "tokens", "tokens", "embed_pool", "Adagrad", "scce", 128, 20,
       "Adagrad at batch 128"),
    _t("tokens_small_adam", "tokens", "tokens", "embed_pool", "Adam", "scce", 16, 40,
       "300 sequences for 40 epochs: overfitting-limited",
       data_kwargs={"n_train": 300}, arch_kwargs={"embed": 32, "hidden": 64}),
    # ---- attention
    _t("retrieval_attention_adam", "attention", "retrieval", "transformer", "Adam", "mse", 32,
       8, "attention is needed to solve it; the range test's weak spot"),
    _t("retrieval_attention_lion", "attention", "retrieval", "transformer", "Lion", "mse", 64,
       10, "Lion on attention"),
    _t("retrieval_attention_sgdm", "attention", "retrieval", "transformer", "SGD", "mse", 32,
       8, "momentum SGD on attention", optimizer_kwargs=M9),
    _t("tokens_transformer_adamw", "attention", "tokens", "transformer", "AdamW", "scce", 32,
       8, "a Transformer block over token embeddings",
       arch_kwargs={"vocab": 50, "length": 20}),
    _t("tokens_transformer_lamb", "attention", "tokens", "transformer", "Lamb", "scce", 128,
       10, "Lamb on a Transformer block", arch_kwargs={"vocab": 50, "length": 20}),
)  # fmt: skip

TASKS: dict[str, Spec] = {s.name: s for s in SPECS}

QUICK_TASKS = ("digits_mlp_adam", "cancer_rmsprop", "seq_conv1d_nesterov")


def get_specs(names: str | list[str] | None = None) -> list[Spec]:
    """Specs by name (comma-separated string or list); every task when ``None``."""
    if names is None:
        return list(SPECS)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; see python -m benchmarks.corpus --list")
    return [TASKS[n] for n in names]


def train_samples(spec: Spec) -> int:
    return int(len(make_data(spec)[0]))


def list_line(spec: Spec) -> str:
    """``name, family, optimizer, batch size, epochs, training samples``, tab-separated."""
    return "\t".join(
        [
            spec.name,
            spec.family,
            spec.optimizer_label(),
            str(spec.batch_size),
            str(spec.epochs),
            str(train_samples(spec)),
        ]
    )
