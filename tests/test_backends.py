"""The backend contract: the same guarantees on TensorFlow and on JAX.

This file runs under every backend the CI runs (`KERAS_BACKEND` is read at
import, so each backend is its own pytest process; see .ci/run). Each test
checks behaviour, not the backend: a tf.data map mixes and its labels follow
the realized plan; seeds repeat and a saved run resumes its stream; data
parallelism mixes each device's shard with its own draws. The train step's
contract (one site per step with labels and weights following its plan,
site frequencies, sparse = one-hot loss, save/load) is in test_model.py,
which runs under every backend too.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_mixup
from conftest import id_rows_plan
from keras_mixup.layers import CutMix, MixUp, RandomMix

BACKEND = keras.backend.backend()
B = 8  # batch = feature size: row i of the identity identifies example i


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


# ---------------------------------------------------------------- tf.data


@pytest.mark.parametrize("kind", ["mixup", "cutmix", "random"])
def test_tf_data_map_mixes_and_labels_follow_under_any_backend(kind):
    tf = pytest.importorskip("tensorflow")
    n, h = 16, 6
    images = np.broadcast_to(np.arange(n, dtype="float32")[:, None, None, None], (n, h, h, 1))
    labels = np.arange(n) % 16
    make = {
        "mixup": lambda: MixUp(alpha=1.0, num_classes=16, seed=3),
        "cutmix": lambda: CutMix(alpha=1.0, num_classes=16, seed=3),
        "random": lambda: RandomMix([MixUp(alpha=1.0, num_classes=16),
                                     CutMix(alpha=1.0, num_classes=16)], seed=3),
    }[kind]
    layer = make()
    ds = tf.data.Dataset.from_tensor_slices((np.ascontiguousarray(images), labels))
    ds = ds.batch(8).map(layer)
    batches = list(ds.as_numpy_iterator())
    assert len(batches) == 2
    mixed_any = False
    for b, (xm, ym) in enumerate(batches):
        assert xm.dtype == np.float32 and ym.dtype == np.float32
        ids = np.arange(8) + 8 * b
        for i in range(8):
            pix = xm[i].ravel()
            # Label mass on each source equals its share of the pixels.
            expect = np.zeros(16)
            for v in np.unique(np.round(pix, 4)):
                if abs(v - round(v)) < 1e-4:  # copied pixels
                    expect[int(round(v))] += np.mean(np.abs(pix - v) < 1e-4)
            if np.allclose(expect.sum(), 1.0) and kind != "mixup":
                np.testing.assert_allclose(ym[i], expect, atol=1e-5)
            # Blends: the pixel value is the label-weighted mean of the ids.
            np.testing.assert_allclose(pix.mean(), ym[i] @ np.arange(16), atol=1e-3)
            mixed_any |= not np.allclose(ym[i][ids[i]], 1.0)
    assert mixed_any
    # The call counter advances: two passes over the data differ.
    again = list(ds.as_numpy_iterator())
    assert not np.allclose(again[0][0], batches[0][0])
    # The same seed in a fresh layer repeats the stream.
    again = list(tf.data.Dataset.from_tensor_slices((np.ascontiguousarray(images), labels))
                 .batch(8).map(make()).as_numpy_iterator())
    np.testing.assert_allclose(again[0][0], batches[0][0])


def test_mixing_state_reaches_tf_data_maps_under_any_backend():
    tf = pytest.importorskip("tensorflow")
    layer = MixUp(alpha=1.0, num_classes=4, seed=0)
    x = np.random.default_rng(0).random((32, 5)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(32) % 4)).batch(16).map(layer)
    first = next(iter(ds))[1].numpy()
    assert first.max(axis=1).mean() < 0.95  # mixing
    layer.set_mixing_state(enabled=False)  # what MixupSchedule calls
    off = next(iter(ds))[1].numpy()
    np.testing.assert_array_equal(off.max(axis=1), 1.0)
    layer.set_mixing_state(enabled=True, concentration=[1e-3, 1e-3])
    tiny = next(iter(ds))[1].numpy()  # λ ∈ {0, 1}: one-hot again, from either
    np.testing.assert_allclose(tiny.max(axis=1), 1.0, atol=1e-3)


def test_direct_call_on_arrays_mixes_with_the_running_backend():
    layer = MixUp(alpha=1.0, num_classes=B, seed=1)
    xm, ym = layer(np.eye(B, dtype="float32"), np.arange(B))
    partner, lam = id_rows_plan(to_numpy(xm))
    expect = lam[:, None] * np.eye(B) + (1 - lam[:, None]) * np.eye(B)[partner]
    np.testing.assert_allclose(to_numpy(ym), expect, atol=1e-6)
    assert keras.ops.is_tensor(xm)
    x2, _ = layer(np.eye(B, dtype="float32"), np.arange(B))
    assert not np.allclose(to_numpy(x2), to_numpy(xm))  # the counter advanced


# ---------------------------------------------------------------- the step


@keras.saving.register_keras_serializable(package="tests_backends")
class Recorder(keras.layers.Layer):
    """Identity that stores its last training input in a variable."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(shape)
        self.last = self.add_weight(shape=shape, initializer="zeros",
                                    trainable=False, name="last")

    def get_config(self):
        return {**super().get_config(), "shape": self.shape}

    def call(self, x, training=None):
        if training:
            self.last.assign(keras.ops.cast(x, self.last.dtype))
        return x


class TargetRecorder(keras.metrics.Metric):
    """A metric that keeps the last targets and sample weights it saw (the
    training metrics see the mixed targets)."""

    def __init__(self, **kwargs):
        super().__init__(name="targets", **kwargs)
        self.y = self.add_variable(shape=(B, B), initializer="zeros", name="y")
        self.w = self.add_variable(shape=(B,), initializer="zeros", name="w")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.y.assign(keras.ops.cast(y_true, "float32"))
        if sample_weight is not None:
            self.w.assign(keras.ops.reshape(keras.ops.cast(sample_weight, "float32"), (-1,)))

    def result(self):
        return keras.ops.sum(self.y)


def two_site_model():
    inputs = keras.Input((B,))
    h = MixUp(alpha=1.0, name="site_a")(inputs)
    h = Recorder((B, B), name="rec_a")(h)
    h = keras.layers.Dense(B, use_bias=False, trainable=False,
                           kernel_initializer="identity")(h)
    h = MixUp(alpha=1.0, name="site_b")(h)
    h = Recorder((B, B), name="rec_b")(h)
    outputs = keras.layers.Dense(B, kernel_initializer="identity")(h)
    return keras.Model(inputs, outputs)


def mlp(seed=0, classes=3):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    h = keras.layers.Dense(16, activation="relu")(inputs)
    h = MixUp(alpha=0.5)(h)  # a manifold site, next to the input mixer
    return keras.Model(inputs, keras.layers.Dense(classes)(h))


def data(n=32, classes=3):
    rng = np.random.default_rng(0)
    return rng.random((n, 6)).astype("float32"), rng.integers(0, classes, n)


def fit_weights(seed, epochs, model=None, initial_epoch=0):
    x, y = data()
    if model is None:
        model = keras_mixup.MixupModel(mlp(), mixer=MixUp(alpha=1.0), seed=seed)
        model.compile(keras.optimizers.SGD(0.1),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=8, epochs=epochs, initial_epoch=initial_epoch,
              shuffle=False, verbose=0)
    return model, [to_numpy(v) for v in model.trainable_weights]


def test_seeds_repeat_and_a_resumed_run_continues_the_same_stream(tmp_path):
    _, a = fit_weights(seed=7, epochs=2)
    _, b = fit_weights(seed=7, epochs=2)
    _, c = fit_weights(seed=8, epochs=2)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-6)
    assert any(not np.allclose(u, v) for u, v in zip(a, c))
    # Resume: one epoch, save everything (the optimizer's iteration count
    # included), load into a fresh model, one more epoch.
    first, _ = fit_weights(seed=7, epochs=1)
    path = tmp_path / "half.keras"
    first.save(path)
    resumed = keras.models.load_model(path)
    _, d = fit_weights(seed=7, epochs=2, model=resumed, initial_epoch=1)
    for u, v in zip(a, d):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_mixed_bfloat16_trains_and_labels_stay_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = MixUp(alpha=1.0, num_classes=3, seed=0)
        xm, ym = layer(np.random.rand(8, 6).astype("float32"), np.arange(8) % 3)
        assert keras.backend.standardize_dtype(xm.dtype) == "bfloat16"
        assert keras.backend.standardize_dtype(ym.dtype) == "float32"
        x, y = data()
        model = keras_mixup.MixupModel(mlp(), mixer=MixUp(alpha=1.0), seed=0)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        hist = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
        assert np.isfinite(hist["loss"]).all()
    finally:
        keras.config.set_dtype_policy("float32")


def test_integer_labels_in_the_step_use_the_dominant_label_for_accuracy():
    # With SGD(0) and a model whose logits are its inputs, accuracy on id
    # rows is 1 exactly when the metric uses the dominant source's label.
    inputs = keras.Input((B,))
    outputs = keras.layers.Dense(B, use_bias=False, kernel_initializer="identity")(
        MixUp(alpha=1.0)(inputs))
    model = keras_mixup.MixupModel(keras.Model(inputs, outputs), seed=0)
    model.compile(keras.optimizers.SGD(0.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    logs = model.train_on_batch(np.eye(B, dtype="float32"), np.arange(B), return_dict=True)
    assert logs["accuracy"] == pytest.approx(1.0)


# ------------------------------------------------------- JAX specifics


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution data parallelism on JAX")
def test_data_parallel_each_device_mixes_its_own_shard():
    import jax

    devices = jax.devices()
    assert len(devices) >= 2, "conftest sets two CPU devices for JAX"
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices[:2]))
    try:
        model = keras_mixup.MixupModel(two_site_model(), site_weights=[1, 0], seed=3)
        recorder = TargetRecorder()
        model.compile(keras.optimizers.SGD(0.0), "categorical_crossentropy",
                      metrics=[recorder])
        x = y = np.eye(B, dtype="float32")
        half = B // 2
        plans = []
        for _ in range(4):
            # fit, not train_on_batch: before Keras 3.14 train_on_batch under
            # keras.distribution lays out the absent sample weight and fails.
            model.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0)
            partner, lam = id_rows_plan(to_numpy(model.model.get_layer("rec_a").last))
            shard = np.arange(B) // half
            assert (partner // half == shard).all(), "partners come from the same shard"
            plans.append(partner % half)
            np.testing.assert_allclose(to_numpy(recorder.y),
                                       to_numpy(model.model.get_layer("rec_a").last), atol=1e-6)
        # Each device draws its own plan (the two halves are not copies).
        assert any((p[:half] != p[half:]).any() for p in plans)
    finally:
        keras.distribution.set_distribution(None)


def run_python(code, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=240)


@pytest.mark.skipif(BACKEND != "jax", reason="TensorFlow-free import is a JAX promise")
def test_jax_training_works_without_tensorflow():
    code = """
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
import numpy as np, keras, keras_mixup
inputs = keras.Input((4,))
h = keras_mixup.layers.MixUp(alpha=1.0)(inputs)
model = keras_mixup.MixupModel(keras.Model(inputs, keras.layers.Dense(2)(h)), seed=0,
                               regularizer=keras_mixup.MixupE(eta=1e-2))
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=[keras_mixup.metrics.ExpectedCalibrationError(from_logits=True)])
h = model.fit(np.random.rand(16, 4).astype("float32"), np.arange(16) % 2, verbose=0)
print("OK", sorted(h.history))
"""
    out = run_python(code, {"KERAS_BACKEND": "jax"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout and "mixupe_reg" in out.stdout


def test_an_unsupported_backend_is_refused_with_the_alternatives(monkeypatch):
    from keras_mixup import backend

    monkeypatch.setattr(backend, "keras_backend", lambda: "torch")
    with pytest.raises(NotImplementedError, match="tf.data map under every backend"):
        keras_mixup.MixupModel(mlp(), mixer=MixUp(alpha=1.0))
