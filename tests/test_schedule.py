"""MixupSchedule: mixing provably stops, α changes per epoch, nothing retraces."""

import keras
import numpy as np
import pytest

from keras_mixup import MixupModel
from keras_mixup.callbacks import MixupSchedule
from keras_mixup.layers import CutMix, MixUp, RandomMix

# Runs on every backend the suite runs (TensorFlow, JAX): the schedule sets
# Keras variables that the compiled step (tf.function or jax.jit) and a
# tf.data map read without retracing.


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def label_max():
    """Mean over examples of max(y_true): 1 for clean one-hot labels, below
    1 when labels were mixed (E[max(λ, 1−λ)] for mixed rows)."""
    return keras.metrics.MeanMetricWrapper(
        lambda y_true, y_pred: keras.ops.max(y_true, axis=-1), name="label_max"
    )


def data(n=96, classes=3):
    rng = np.random.default_rng(0)
    x = rng.random((n, 6)).astype("float32")
    return x, np.eye(classes, dtype="float32")[np.arange(n) % classes]


class CountTraces(keras.layers.Layer):
    traces = 0

    def call(self, x):
        CountTraces.traces += 1  # Python: runs once per trace (TF and JAX)
        return x


def test_tf_data_layer_stops_mixing_from_off_epoch():
    tf = pytest.importorskip("tensorflow")  # tf.data, under any backend
    x, y = data()
    mix = MixUp(alpha=1.0, seed=0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).map(mix)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=[label_max()])
    schedule = MixupSchedule(off_epoch=2, layers=[mix])
    logs = model.fit(ds, epochs=4, callbacks=[schedule], verbose=0).history
    on, off = logs["label_max"][:2], logs["label_max"][2:]
    # Mixed with α = 1: E[max(λ, 1−λ)] = 0.75 for the rows not paired with
    # themselves; far below 1 with 96 examples.
    assert max(on) < 0.9
    assert off == [1.0, 1.0]  # exactly the clean one-hot labels
    assert schedule.history == [(0, True), (1, True), (2, False), (3, False)]
    assert float(to_numpy(mix.enabled)) == 1.0  # restored after training


def test_mixup_model_alpha_per_epoch_and_off_last_epochs_without_retracing():
    # 16 classes: a partner has the same label (max(y) stays 1) only 1/16
    # of the time, so E[max(ỹ)] ≈ 1/16 + 15/16·E[max(λ, 1−λ)].
    x, y = data(classes=16)
    inputs = keras.Input((6,))
    h = CountTraces()(inputs)
    h = MixUp(alpha=1.0)(h)
    h = keras.layers.Dense(8, activation="relu")(h)
    h = RandomMix([MixUp(alpha=1.0), CutMix(alpha=1.0)])(h[:, :, None])
    out = keras.layers.Dense(16)(keras.layers.Flatten()(h))
    model = MixupModel(keras.Model(inputs, out), site_weights=[1, 0], seed=0)
    model.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=[label_max()])
    alphas = [0.02, 50.0, 1.0, 1.0]
    schedule = MixupSchedule(off_last_epochs=1, alpha=lambda e: alphas[e])
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((CountTraces.traces, to_numpy(model.sites[0].concentration).tolist()))

    logs = model.fit(x, y, batch_size=32, epochs=4, callbacks=[schedule, Watch()],
                     verbose=0).history
    got = logs["label_max"]
    assert got[0] > 0.97  # α = 0.02: λ is almost always ~0 or ~1
    assert got[1] < 0.63  # α = 50: λ ≈ ½, E[max(λ, 1−λ)] ≈ 0.556 → 0.584
    assert 0.70 < got[2] < 0.83  # α = 1: E[max(λ, 1−λ)] = 0.75 → 0.766
    assert got[3] == 1.0  # the last epoch does not mix
    np.testing.assert_allclose([c for _, c in seen], [[a, a] for a in alphas], rtol=1e-6)
    assert len({t for t, _ in seen}) == 1  # traced in epoch 0 only
    # The inner mixers of a RandomMix follow α too; everything is restored.
    assert to_numpy(model.sites[1].mixers[1].concentration).tolist() == [1.0, 1.0]
    assert to_numpy(model.sites[0].concentration).tolist() == [1.0, 1.0]
    assert float(to_numpy(model.sites[0].enabled)) == 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="something to schedule"):
        MixupSchedule()
    with pytest.raises(ValueError, match="not both"):
        MixupSchedule(off_last_epochs=1, off_epoch=3)
    with pytest.raises(ValueError, match="off_epoch"):
        MixupSchedule(off_epoch=-1)
    with pytest.raises(TypeError, match="function of the epoch"):
        MixupSchedule(alpha=0.4)
    with pytest.raises(TypeError, match="mixing layers"):
        MixupSchedule(off_epoch=1, layers=[keras.layers.Dense(3)])
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    model.compile("sgd", "mse")
    x, y = data(8)
    with pytest.raises(ValueError, match="no mixing layer"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[MixupSchedule(off_epoch=1)])
    mix = MixUp(alpha=1.0)
    with pytest.raises(ValueError, match="alpha"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[MixupSchedule(alpha=lambda e: -1.0, layers=[mix])])
