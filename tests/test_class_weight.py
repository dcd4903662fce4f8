"""``class_weight`` is honoured as ``fit`` honours it (issue 16, item 2): per-sample weights
from each target's class, in find_lr, both probes and a search's probe."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.trainers.data_adapters.data_adapter_utils import class_weight_to_sample_weights

import kt_lr
import kt_lr.tuners as kt_tuners
from kt_lr.data import BatchStream, class_weights
from kt_lr.results import LRFinding

CW = {0: 1.0, 1: 6.0, 2: 0.5}


def _classification(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    labels = np.digitize(x[:, 0] + 0.3 * rng.normal(size=n), [-1.0, 1.2])  # imbalanced
    return x, labels.astype("int32")


def _classifier(seed=1, lr=0.05):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda c: c, id="sparse"),
        pytest.param(lambda c: c[:, None].astype("float32"), id="column"),
        pytest.param(lambda c: np.eye(3, dtype="float32")[c], id="one_hot"),
        pytest.param(lambda c: 0.8 * np.eye(3)[c] + 0.2 / 3, id="smoothed"),
    ],
)
def test_weights_are_those_fit_makes(encode):
    _, labels = _classification(64)
    y = encode(labels)
    ours = class_weights(y, {0: 1.0, 1: 6.0})  # class 2 not listed: weight 1
    np.testing.assert_array_equal(ours, class_weight_to_sample_weights(y, {0: 1.0, 1: 6.0}))
    assert ours.dtype == np.dtype(keras.config.floatx())


@pytest.mark.filterwarnings("ignore:find_lr:UserWarning")
def test_probes_with_class_weight_are_the_probes_with_those_sample_weights():
    x, labels = _classification()
    weights = class_weight_to_sample_weights(labels, CW)
    kw = {"num_steps": 15, "num_subsamples": 3, "seed": 0, "verbose": 0}
    with_cw = kt_lr.find_lr(_classifier(), x, labels, class_weight=CW, **kw)
    with_sw = kt_lr.find_lr(_classifier(), x, labels, sample_weight=weights, **kw)
    unweighted = kt_lr.find_lr(_classifier(), x, labels, **kw)
    np.testing.assert_array_equal(with_cw.range_test.losses, with_sw.range_test.losses)
    np.testing.assert_array_equal(with_cw.differential.deltas, with_sw.differential.deltas)
    # and the weights are not dropped: without them the curves differ
    assert not np.allclose(with_cw.range_test.losses, unweighted.range_test.losses)


def test_class_weight_on_a_dataset_and_a_pydataset():
    x, labels = _classification()
    ds = tf.data.Dataset.from_tensor_slices((x, labels)).batch(32)
    xb, yb, swb = BatchStream(ds, class_weight=CW).next_batch()
    np.testing.assert_array_equal(swb, class_weight_to_sample_weights(yb, CW))
    res = kt_lr.range_test(_classifier(), ds, class_weight=CW, num_steps=10, verbose=0)
    assert np.isfinite(res.losses).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"class_weight": CW, "sample_weight": np.ones(256)}, "both given.*fit refuses"),
        ({"class_weight": {"a": 1.0}}, "integer class ids"),
        ({"class_weight": {0: -1.0}}, "finite weights >= 0"),
        ({"class_weight": [1.0, 2.0]}, "integer class ids"),
    ],
)
def test_class_weight_errors_say_what_to_do(kwargs, match):
    x, labels = _classification()
    with pytest.raises(ValueError, match=match):
        kt_lr.find_lr(_classifier(), x, labels, verbose=0, **kwargs)


def test_class_weight_refusals_that_fit_makes_too():
    x, labels = _classification()
    per_step = np.repeat(labels[:, None, None], 4, axis=1)  # (n, 4, 1): a class per step
    with pytest.raises(ValueError, match="one class per sample.*sample_weight"):
        BatchStream(x, per_step, class_weight=CW)
    with pytest.raises(ValueError, match="single output"):
        BatchStream(x, {"a": labels, "b": labels}, class_weight=CW)
    ds = tf.data.Dataset.from_tensor_slices((x, labels, np.ones(len(x)))).batch(32)
    with pytest.raises(ValueError, match="both given"):
        BatchStream(ds, class_weight=CW).next_batch()

    class Batches:  # a re-iterable like a torch DataLoader: fit refuses class_weight
        def __iter__(self):
            return iter([(x[:32], labels[:32]), (x[32:64], labels[32:64])])

    with pytest.raises(ValueError, match="not supported for this kind of data"):
        BatchStream(Batches(), class_weight=CW)


def test_search_passes_class_weight_to_the_probe(tmp_path, monkeypatch):
    calls = []

    def recorder(model, x, y=None, **kwargs):
        calls.append(kwargs)
        return LRFinding(lr=1e-2, low=1e-3, high=1e-1, reasons=["recorded"])

    monkeypatch.setattr(kt_tuners.finder, "find_lr", recorder)

    def build(hp):
        return _classifier(lr=hp.Float("learning_rate", 1e-4, 1.0, sampling="log"))

    x, labels = _classification()
    tuner = kt_lr.RandomSearch(
        build, objective="loss", max_trials=1, directory=str(tmp_path), project_name="cw"
    )
    tuner.search(x, labels, class_weight=CW, epochs=1, verbose=0)
    assert calls and calls[0]["class_weight"] == CW
