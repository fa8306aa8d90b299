"""The op namespace on TensorFlow (see `keras_mixup.backend`).

Also used under JAX and PyTorch inside ``tf.data`` maps. Random bits come
from Philox (``tf.random.stateless_*``), which XLA compiles; seeds are int64
``(2,)`` tensors.
"""

import tensorflow as tf

NAME = "tensorflow"
SEED_DTYPE = tf.int64

convert_to_tensor = tf.convert_to_tensor
cast = tf.cast
reshape = tf.reshape
where = tf.where
range = tf.range  # noqa: A001 - the namespace mirrors tf
ones = tf.ones
ones_like = tf.ones_like
zeros_like = tf.zeros_like
stack = tf.stack
unstack = tf.unstack
concat = tf.concat
reduce_sum = tf.reduce_sum
cumsum = tf.cumsum
log = tf.math.log
log1p = tf.math.log1p
sqrt = tf.sqrt
rsqrt = tf.math.rsqrt
cos = tf.cos
abs = tf.abs  # noqa: A001
sigmoid = tf.math.sigmoid
softmax = tf.nn.softmax
floor = tf.floor
round = tf.round  # noqa: A001
maximum = tf.maximum
clip = tf.clip_by_value
broadcast_to = tf.broadcast_to
expand_dims = tf.expand_dims
squeeze = tf.squeeze
stop_gradient = tf.stop_gradient
bitwise_and = tf.bitwise.bitwise_and
cond = tf.cond


def shape(x):
    """Dynamic shape (an int32 tensor)."""
    return tf.shape(x)


def batch_size(x):
    return tf.shape(x)[0]


def leading(n, shape):
    """The shape ``[n, *shape]``."""
    return tf.concat([[n], tf.cast(shape, tf.int32)], axis=0)


def gather(x, index):
    """``x[index]`` along the batch axis."""
    return tf.gather(x, index, axis=0)


def gather_rows(x, index):
    """``x[i, index[i]]`` for a ``(B, K)`` tensor and ``(B,)`` indices."""
    return tf.gather(x, index[:, None], batch_dims=1)[:, 0]


def argsort(x):
    return tf.argsort(x, stable=True)


def searchsorted(sorted_sequence, values):
    """Right-side insertion points, int32."""
    return tf.searchsorted(sorted_sequence, values, side="right", out_type=tf.int32)


def one_hot(ids, depth):
    return tf.one_hot(ids, depth, dtype=tf.float32)


def segment_sum(data, ids, num_segments):
    return tf.math.unsorted_segment_sum(data, ids, num_segments)


def divide_no_nan(a, b):
    return tf.math.divide_no_nan(a, b)


def executing_eagerly():
    return tf.executing_eagerly()


def concrete(x):
    """``x`` as a NumPy array, or None inside a graph."""
    if tf.executing_eagerly():
        return tf.convert_to_tensor(x).numpy()
    return None


# ------------------------------------------------------------------ random


def seed_from_int(seed):
    return tf.constant([int(seed), 0], dtype=tf.int64)


def as_seed_tensor(seed):
    """An integer ``(2,)`` tensor (checked by the caller) as this
    namespace's seed dtype."""
    return tf.cast(seed, tf.int64)


def fold_seed(seed, data):
    # ``data`` keeps its dtype (a Python int is int32): the stream
    # depends on it.
    return tf.random.experimental.stateless_fold_in(
        tf.cast(seed, tf.int64), data, alg="philox"
    )


def bits(shape, seed):
    """Full-range random int32 bits: one Philox call (cheap to compile)."""
    return tf.random.stateless_uniform(
        shape, seed, minval=None, maxval=None, dtype=tf.int32, alg="philox"
    )


def uniform_int(shape, seed, maxval):
    """Integers uniform in ``[0, maxval)``."""
    return tf.random.stateless_uniform(
        shape, seed, minval=0, maxval=maxval, dtype=tf.int32, alg="philox"
    )


def random_seed():
    """A fresh seed from TensorFlow's global generator."""
    return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)
