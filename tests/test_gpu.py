"""Checks that need an accelerator (run on the device machine:
``KERAS_BACKEND=jax python -m pytest -q -m gpu tests/test_gpu.py``).

They are skipped where JAX sees no GPU or TPU, so CI (CPU only) skips them.
"""

import keras
import numpy as np
import pytest

import keras_mixup

pytestmark = pytest.mark.gpu


def accelerators():
    if keras.backend.backend() != "jax":
        return []
    import jax

    return [d for d in jax.devices() if d.platform in ("gpu", "tpu")]


needs_accelerator = pytest.mark.skipif(not accelerators(), reason="no GPU/TPU visible to JAX")


@needs_accelerator
def test_mixup_model_trains_on_the_accelerator_with_cutmix_and_manifold_sites():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    h = keras_mixup.layers.CutMix(alpha=1.0)(inputs)
    h = keras.layers.Conv2D(16, 3, activation="relu")(h)
    h = keras_mixup.layers.MixUp(alpha=2.0)(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras_mixup.MixupModel(keras.Model(inputs, keras.layers.Dense(10)(h)), seed=0,
                                   regularizer=keras_mixup.MixupE(eta=1e-2, mode="exact"))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.random((256, 32, 32, 3), dtype="float32")
    y = rng.integers(0, 10, 256)
    hist = model.fit(x, y, batch_size=64, epochs=2, verbose=0).history
    assert np.isfinite(hist["loss"]).all() and np.isfinite(hist["mixupe_reg"]).all()
    weight = model.trainable_weights[0].value
    assert {d.platform for d in weight.devices()} <= {"gpu", "tpu"}


@needs_accelerator
def test_layer_call_runs_on_the_accelerator_and_labels_follow():
    layer = keras_mixup.layers.CutMix(alpha=1.0, num_classes=8, seed=1)
    x = np.broadcast_to(np.arange(8, dtype="float32")[:, None, None, None], (8, 16, 16, 1))
    xm, ym = layer(np.ascontiguousarray(x), np.arange(8))
    assert {d.platform for d in xm.devices()} <= {"gpu", "tpu"}
    xm, ym = np.asarray(xm), np.asarray(ym)
    # Each label holds the exact fraction of pixels copied from each source.
    for i in range(8):
        shares = np.array([np.mean(xm[i] == k) for k in range(8)])
        np.testing.assert_allclose(ym[i], shares, atol=1e-6)
    assert (ym.max(axis=1) < 1).any()  # something was cut
