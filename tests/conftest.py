import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# KERAS_BACKEND is read when Keras is imported: the suite runs once per
# backend, in separate pytest processes (see .ci/run). Under JAX, two CPU
# devices stand in for several accelerators (keras.distribution tests);
# the flag must be set before JAX initializes.
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
if BACKEND == "jax":
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_force_host_platform_device_count=2").strip()

import numpy as np  # noqa: E402
import pytest  # noqa: E402

if BACKEND == "tensorflow":
    import tensorflow as tf  # noqa: E402

    # Two logical CPU devices for the MirroredStrategy tests; this must
    # happen before TensorFlow initializes its devices.
    _cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )


def pytest_collection_modifyitems(config, items):
    """Tests marked ``tensorflow_only`` (tf.distribute, the fused TF site
    call, TF graph internals) are skipped under the other backends."""
    if BACKEND == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"TensorFlow backend only (running on {BACKEND})")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)


def xla(fn):
    """Compiles ``fn`` with XLA on the running backend (``tf.function(
    jit_compile=True)`` or ``jax.jit``): fails if any op inside cannot be
    compiled."""
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    import tensorflow as tf

    return tf.function(fn, jit_compile=True)


def id_rows_plan(xm):
    """(partner, λ) of identity rows mixed as λ·e_i + (1 − λ)·e_π(i): row i
    of the identity identifies example i, so a mixed row names its sources."""
    xm = np.asarray(xm, np.float64)
    partner, lam = np.arange(len(xm)), np.ones(len(xm))
    for i, row in enumerate(xm):
        others = row.copy()
        others[i] = 0
        if others.max() > 1e-6:
            partner[i], lam[i] = int(np.argmax(others)), row[i]
    return partner, lam


@pytest.fixture
def id_images():
    """Images whose every pixel holds its example's index: a mixed pixel
    tells which example it came from."""
    def make(batch, h=8, w=8, c=3, dtype="float32"):
        x = np.broadcast_to(np.arange(batch).reshape(-1, 1, 1, 1), (batch, h, w, c))
        return np.ascontiguousarray(x).astype(dtype)
    return make


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy over the two logical CPUs, shared by all tests.

    With TF 2.21 / Keras 3.15, the fit() of a second MirroredStrategy in the
    same process fails ("Shape mismatch in the collective instance 100"),
    even for two plain Keras models: each strategy numbers its collectives
    from the same start. Sharing one strategy keeps the numbering going.
    """
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
