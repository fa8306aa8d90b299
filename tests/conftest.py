import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices for the MirroredStrategy tests; this must happen
# before TensorFlow initializes its devices, i.e. before any test runs.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


def xla(fn):
    """Wraps ``fn`` in ``tf.function(jit_compile=True)``: fails if any op
    inside cannot be compiled by XLA."""
    return tf.function(fn, jit_compile=True)


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
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
