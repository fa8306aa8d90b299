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
reduce_max = tf.reduce_max
reduce_min = tf.reduce_min
cumsum = tf.cumsum
log = tf.math.log
log1p = tf.math.log1p
exp = tf.exp
sqrt = tf.sqrt
rsqrt = tf.math.rsqrt
cos = tf.cos
sin = tf.sin
abs = tf.abs  # noqa: A001
sigmoid = tf.math.sigmoid
softmax = tf.nn.softmax
floor = tf.floor
ceil = tf.math.ceil
round = tf.round  # noqa: A001
maximum = tf.maximum
minimum = tf.minimum
clip = tf.clip_by_value
broadcast_to = tf.broadcast_to
expand_dims = tf.expand_dims
squeeze = tf.squeeze
stop_gradient = tf.stop_gradient
bitwise_and = tf.bitwise.bitwise_and
bitwise_or = tf.bitwise.bitwise_or
bitwise_xor = tf.bitwise.bitwise_xor
right_shift = tf.bitwise.right_shift  # arithmetic on int32
cond = tf.cond


def shape(x):
    """Dynamic shape (an int32 tensor)."""
    return tf.shape(x)


def batch_size(x):
    return tf.shape(x)[0]


def leading(n, shape):
    """The shape ``[n, *shape]``."""
    return tf.concat([[n], tf.cast(shape, tf.int32)], axis=0)


def trailing(shape, n):
    """The shape ``[*shape, n]``."""
    return tf.concat([tf.cast(shape, tf.int32), [n]], axis=0)


def gather(x, index):
    """``x[index]`` along the batch axis."""
    return tf.gather(x, index, axis=0)


def gather_rows(x, index):
    """``x[i, index[i]]`` for a ``(B, K)`` tensor and ``(B,)`` indices."""
    return tf.gather(x, index[:, None], batch_dims=1)[:, 0]


def take_along(x, index):
    """``x[i, index[i, j]]`` for a ``(B, N)`` tensor and ``(B, M)`` indices."""
    return tf.gather(x, index, batch_dims=1)


def take_axis(x, index, axis):
    """``x[b, ..., index[b, i], ...]``: per-example indices ``(B, n)`` along
    ``axis``."""
    return tf.gather(x, index, axis=axis, batch_dims=1)


def top_k(x, k):
    """Indices (int32) of the ``k`` largest entries of each row; ties go
    to the lower index."""
    return tf.math.top_k(x, k=k).indices


def matmul(a, b):
    return tf.linalg.matmul(a, b)


def float_bits(x):
    """The bits of float32 ``x`` as int32."""
    return tf.bitcast(tf.cast(x, tf.float32), tf.int32)


def fft2_real(re, im):
    """The real part of the 2-D DFT over the last two axes of ``re + i·im``."""
    return tf.math.real(tf.signal.fft2d(tf.complex(re, im)))


def fft2(re, im):
    """The 2-D DFT over the last two axes of ``re + i·im``, as (re, im)."""
    out = tf.signal.fft2d(tf.complex(re, im))
    return tf.math.real(out), tf.math.imag(out)


def max_pool(x, size):
    """Max over a ``size`` window (stride 1, "same" padding) of a
    channels-last ``(B, *spatial, C)`` tensor."""
    return tf.nn.max_pool(x, ksize=size, strides=1, padding="SAME")


def argmax(x, axis=-1):
    return tf.math.argmax(x, axis=axis, output_type=tf.int32)


def transpose(x, perm=None):
    return tf.transpose(x, perm)


def argsort(x):
    """Stable ascending argsort of a 1-D int32 tensor: ``top_k`` (stable,
    descending) of ``~x``, which reverses the order without overflow — a
    third of the graph nodes of ``tf.argsort``."""
    return tf.math.top_k(tf.bitwise.invert(x), k=tf.size(x)).indices


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


# Philox is called through the raw V2 ops, keyed and counted from the seed
# as it is. ``tf.random.stateless_*(alg="philox")`` and ``stateless_fold_in``
# first scramble the seed with a second Philox call: about 25 graph nodes
# per draw (and as much XLA code to compile), which made a plan's graph
# several times larger than its arithmetic — and a tf.data map pays for
# every node again on each new iterator (each epoch).
#
# A seed ``[s0, s1]`` (int64) draws from Philox keyed by ``s0`` with the
# counter ``[s0, s1]`` and up (low word first): two different seeds never
# share a (key, counter) pair unless the low word wraps. `fold_seed` keys
# Philox with ``s0`` xor a constant, so a folded seed is never a draw of
# its parent's stream.
_PHILOX = 1  # the `alg` input of the V2 ops
# Below 2**63: XLA (TF 2.21) rounds uint64 constants from 2**63 up (as
# through a double), so compiled draws would differ from TensorFlow's.
_FOLD_KEY = 0x5E3779B97F4A7C15


def _words(seed):
    """The seed as uint64 ``(2,)``, and its first word as the ``(1,)`` key."""
    words = tf.bitcast(tf.cast(seed, tf.int64), tf.uint64)
    return words, tf.split(words, 2)[0]


def fold_seed(seed, data):
    """``Philox(key=s0 ^ K, counter=[data, s1])`` as a new int64 seed: for
    one seed, distinct ``data`` give distinct seeds (Philox is a bijection
    of the counter)."""
    words = tf.bitcast(tf.cast(seed, tf.int64), tf.uint64)
    key, high = tf.split(tf.bitwise.bitwise_xor(words, tf.constant([_FOLD_KEY, 0], tf.uint64)), 2)
    if isinstance(data, int) and 0 <= data < 2**63:
        data = tf.constant([data], tf.uint64)
    else:  # (a negative int as an int64 constant: see _FOLD_KEY)
        data = tf.bitcast(tf.reshape(tf.cast(data, tf.int64), [1]), tf.uint64)
    return tf.raw_ops.StatelessRandomUniformFullIntV2(
        shape=[2], key=key, counter=tf.concat([data, high], 0), alg=_PHILOX, dtype=tf.int64
    )


def bits(shape, seed):
    """Full-range random int32 bits: one Philox op."""
    words, key = _words(seed)
    return tf.raw_ops.StatelessRandomUniformFullIntV2(
        shape=shape, key=key, counter=words, alg=_PHILOX, dtype=tf.int32
    )


def uniform_int(shape, seed, maxval):
    """Integers uniform in ``[0, maxval)``."""
    words, key = _words(seed)
    return tf.raw_ops.StatelessRandomUniformIntV2(
        shape=shape, key=key, counter=words, alg=_PHILOX,
        minval=tf.constant(0, tf.int32), maxval=tf.cast(maxval, tf.int32),
    )


def random_seed():
    """A fresh seed from TensorFlow's global generator."""
    return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)


def gradient_of(fn, x):
    """``∂ fn(x) / ∂x`` for a scalar ``fn``."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = fn(x)
    return tape.gradient(value, x)
