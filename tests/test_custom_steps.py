"""Models with their own training step (issue 16, item 1): the range test feeds batches as
``fit`` does and trains through the model's own ``train_step``; the loss differentials,
which measure the compiled loss, are not run on such a model (said and warned), and they
do measure an overridden ``compute_loss``.

The models here run on whichever backend KERAS_BACKEND selects, except the penalised
``train_step`` of the reproducer, which is the Keras guide's TensorFlow pattern.
"""

import warnings

import keras
import numpy as np
import pytest
from conftest import make_model
from keras import ops

import kt_lr
from kt_lr import state, training
from kt_lr.data import BatchStream

pytestmark = pytest.mark.backend
BACKEND = keras.backend.backend()
PENALTY = 5.0  # 5 * sum(w^2): SGD on it alone diverges above lr = 2 / (2 * 5) = 0.2


def _net(cls, optimizer=None, seed=1):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="tanh")(inputs)
    model = cls(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.01), loss="mse")
    return model


class GuideStep(keras.Model):
    """The Keras guide's pattern: ``x, y = data``, then Keras's own step."""

    def train_step(self, *args):
        *state_, data = args
        x, y = data  # fails on train_on_batch's (x, y, None)
        return super().train_step(*state_, (x, y))

    def test_step(self, *args):
        *state_, data = args
        x, y = data
        return super().test_step(*state_, (x, y))


class PenalisedLoss(keras.Model):
    """Extra terms where the differentials see them: an overridden compute_loss."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        return loss + PENALTY * sum(ops.sum(w**2) for w in self.trainable_weights)


def _penalised_step_class():
    """The issue's reproducer: a TensorFlow train_step adding a penalty that makes SGD
    diverge above 0.2, which the compiled loss alone does not show."""
    import tensorflow as tf

    class PenalisedStep(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
                loss += PENALTY * tf.add_n([tf.reduce_sum(w**2) for w in self.trainable_weights])
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply(grads, self.trainable_weights)
            return {"loss": loss}

    return PenalisedStep


def test_keras_own_models_do_not_count_as_custom():
    seq = make_model()
    functional = _net(keras.Model)
    subclass_without_steps = _net(type("Plain", (keras.Model,), {}))
    for model in (seq, functional, subclass_without_steps):
        for name in ("train_step", "test_step", "compute_loss"):
            assert not training.overridden(model, name), (type(model).__name__, name)
        assert training.custom_train_step_note(model) is None
    assert training.overridden(_net(GuideStep), "train_step")
    assert training.overridden(_net(PenalisedLoss), "compute_loss")
    assert training.custom_train_step_note(_net(PenalisedLoss)) is None
    assert not training.overridden(object(), "train_step")


def test_guide_train_step_gets_batches_as_fit_gives_them(data):
    x, y = data
    model = _net(GuideStep)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)  # fit works: (x, y)
    before = state.snapshot(model)
    functions = (model.train_function, model.test_function)
    res = kt_lr.range_test(
        model, x, y, num_steps=20, validation_data=(x[:64], y[:64]), seed=0, verbose=0
    )
    assert np.isfinite(res.losses[:5]).all() and np.isfinite(res.val_losses[:5]).all()
    assert state.state_equal(before, state.snapshot(model))
    # no trace of the probe on the model: its own steps and compiled functions are back
    assert "train_step" not in vars(model) and "test_step" not in vars(model)
    assert (model.train_function, model.test_function) == functions
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)


def test_find_lr_leaves_the_differentials_out_for_a_custom_train_step(data):
    x, y = data
    model = _net(GuideStep)
    model.optimizer.build(model.trainable_variables)
    before = state.snapshot(model)
    with pytest.warns(UserWarning, match="loss differentials not run: GuideStep overrides"):
        f = kt_lr.find_lr(model, x, y, num_steps=30, seed=0, verbose=0)
    assert f.differential is None and f.range_test is not None
    assert f.settings["probes"] == ["range_test"]
    assert "GuideStep overrides train_step" in f.settings["skipped"]["loss_differential"]
    assert f.reasons[0].startswith("loss differentials not run")
    assert state.state_equal(before, state.snapshot(model))
    with pytest.raises(ValueError, match="loss_differential cannot measure.*range_test"):
        kt_lr.loss_differential(model, x, y, num_subsamples=3, verbose=0)
    with pytest.raises(ValueError, match="loss_differential cannot measure"):
        kt_lr.find_lr(model, x, y, probes=("loss_differential",), verbose=0)
    assert state.state_equal(before, state.snapshot(model))


def test_a_step_that_reports_no_loss_is_refused_with_the_fix(data):
    x, y = data

    class NoLoss(keras.Model):
        def train_step(self, *args):
            logs = super().train_step(*args)
            if BACKEND == "jax":  # (logs, state)
                return {"mse": logs[0]["loss"]}, logs[1]
            return {"mse": logs["loss"]}

    model = _net(NoLoss)
    model.optimizer.build(model.trainable_variables)
    before = state.snapshot(model)
    with pytest.raises(ValueError, match="NoLoss.train_step returned \\['mse'\\].*\"loss\""):
        kt_lr.range_test(model, x, y, num_steps=10, verbose=0)
    assert state.state_equal(before, state.snapshot(model))


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the guide's TensorFlow train_step")
def test_penalised_train_step_edge_is_the_one_training_has(data):
    """Reproducer: the penalty makes training diverge above 0.2; the compiled loss alone
    (the differentials) put the edge at ~0.5. find_lr must not report that edge."""
    x, y = data
    model = _net(_penalised_step_class())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        f = kt_lr.find_lr(model, x, y, seed=0, verbose=0)
    assert f.differential is None
    assert f.candidates["edge"] <= 0.25 and f.lr <= 0.25, f.reasons
    # the fused rule's interval stops at the edge; the learned rule's reaches the band of
    # its cross-validated errors, which on a fifth of the corpus held a best LR above it
    fused = kt_lr.find_lr(model, x, y, seed=0, verbose=0, rule="fused")
    assert fused.high <= 0.25
    # the same network without the penalty: the compiled loss's edge is well above 0.2
    plain = kt_lr.loss_differential(_net(keras.Model), x, y, num_subsamples=10, verbose=0)
    assert plain.best["largest_negative"] > 0.3


def _loss(model, x, y) -> float:
    return float(ops.convert_to_numpy(model.compute_loss(x, y, model(x))))


def test_an_overridden_compute_loss_is_what_the_differentials_measure(data):
    """The engines compute the loss through model.compute_loss: one real step of the
    model's own train_step per LR gives the same ΔL (penalty included)."""
    x, y = data
    model = _net(PenalisedLoss)
    lrs = np.array([1e-2, 0.1, 0.3])
    res = kt_lr.loss_differential(model, x, y, lrs=lrs, num_subsamples=2, seed=3, verbose=0)
    assert res.method == "affine"
    xb, yb, _ = BatchStream(x, y, batch_size=32, seed=3).random_batch()
    before = state.snapshot(model)
    ref = []
    for lr in lrs:
        loss0 = _loss(model, xb, yb)
        model.optimizer.learning_rate.assign(float(lr))
        model.train_on_batch(xb, yb)
        ref.append(_loss(model, xb, yb) - loss0)
        before.restore()
    np.testing.assert_allclose(res.deltas[0], ref, rtol=1e-3, atol=1e-5)
    assert ref[-1] > 0 > ref[0]  # the penalty's divergence above 0.2 shows
    assert res.best["largest_negative"] < 0.3
