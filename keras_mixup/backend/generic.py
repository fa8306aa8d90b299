"""The op namespace on ``keras.ops`` (JAX, PyTorch; see `keras_mixup.backend`).

Random bits come from the backend's counter-based generator: on JAX, a
seed is a raw ``uint32[2]`` key (``jax.random.fold_in`` / ``bits``, which
XLA compiles on CPU, GPU and TPU).
"""

import builtins

import keras
from keras import ops

NAME = "generic"
SEED_DTYPE = "uint32"


def convert_to_tensor(x, dtype=None):
    return ops.convert_to_tensor(x, dtype=dtype)


def cast(x, dtype):
    return ops.cast(x, keras.backend.standardize_dtype(dtype))


reshape = ops.reshape
where = ops.where
stack = ops.stack
cumsum = ops.cumsum
log = ops.log
log1p = ops.log1p
exp = ops.exp
sqrt = ops.sqrt
cos = ops.cos
sin = ops.sin
abs = ops.abs  # noqa: A001
sigmoid = ops.sigmoid
floor = ops.floor
ceil = ops.ceil
maximum = ops.maximum
minimum = ops.minimum
reduce_max = ops.max
reduce_min = ops.min
expand_dims = ops.expand_dims
stop_gradient = ops.stop_gradient


def _dtype(dtype):
    return None if dtype is None else keras.backend.standardize_dtype(dtype)


def range(n, dtype="int32"):  # noqa: A001
    return ops.arange(n, dtype=_dtype(dtype))


def ones(shape, dtype="float32"):
    return ops.ones(tuple(shape), dtype=_dtype(dtype))


def ones_like(x):
    return ops.ones_like(x)


def zeros_like(x):
    return ops.zeros_like(x)


def unstack(x, axis=0):
    return ops.unstack(x, axis=axis)


def concat(values, axis=0):
    return ops.concatenate(values, axis=axis)


def reduce_sum(x, axis=None, keepdims=False):
    return ops.sum(x, axis=axis, keepdims=keepdims)


def rsqrt(x):
    return ops.rsqrt(x)


def softmax(x, axis=-1):
    return ops.softmax(x, axis=axis)


def round(x):  # noqa: A001
    return ops.round(x)


def clip(x, lo, hi):
    return ops.clip(x, lo, hi)


def broadcast_to(x, shape):
    return ops.broadcast_to(x, tuple(shape))


def squeeze(x, axis=None):
    return ops.squeeze(x, axis=axis)


def shape(x):
    """Static shape (a tuple of ints: JAX traces with static shapes)."""
    return tuple(ops.shape(x))


def batch_size(x):
    return ops.shape(x)[0]


def leading(n, shape):
    return (n,) + tuple(shape)


def trailing(shape, n):
    return tuple(shape) + (n,)


def gather(x, index):
    return ops.take(x, index, axis=0)


def gather_rows(x, index):
    return ops.take_along_axis(x, ops.expand_dims(index, 1), axis=1)[:, 0]


def take_along(x, index):
    return ops.take_along_axis(x, index, axis=1)


def take_axis(x, index, axis):
    shape = [1] * len(x.shape)
    shape[0], shape[axis] = index.shape[0], index.shape[1]
    return ops.take_along_axis(x, ops.reshape(index, shape), axis=axis)


def top_k(x, k):
    return ops.cast(ops.top_k(x, k)[1], "int32")


def matmul(a, b):
    return ops.matmul(a, b)


def fft2_real(re, im):
    return ops.fft2((re, im))[0]


def fft2(re, im):
    return ops.fft2((re, im))


def max_pool(x, size):
    return ops.max_pool(x, tuple(size), strides=1, padding="same", data_format="channels_last")


def argmax(x, axis=-1):
    return ops.cast(ops.argmax(x, axis=axis), "int32")


def transpose(x, perm=None):
    return ops.transpose(x, perm)


def argsort(x):
    # Stable: a tie keeps the lower index first (the keys are 32 random bits).
    return ops.cast(ops.argsort(x), "int32")


def searchsorted(sorted_sequence, values):
    return ops.cast(ops.searchsorted(sorted_sequence, values, side="right"), "int32")


def one_hot(ids, depth):
    return ops.one_hot(ids, depth, dtype="float32")


def segment_sum(data, ids, num_segments):
    return ops.segment_sum(data, ids, num_segments=num_segments)


def divide_no_nan(a, b):
    safe = ops.where(ops.equal(b, 0), ops.ones_like(b), b)
    return ops.where(ops.equal(b, 0), ops.zeros_like(a), a / safe)


def bitwise_and(x, y):
    return ops.bitwise_and(x, y)


def bitwise_or(x, y):
    return ops.bitwise_or(x, y)


def bitwise_xor(x, y):
    return ops.bitwise_xor(x, y)


def right_shift(x, y):
    return ops.right_shift(x, y)


def float_bits(x):
    jax = _require_jax("Sampling a mixing plan")
    return jax.lax.bitcast_convert_type(ops.cast(x, "float32"), "int32")


def cond(pred, true_fn, false_fn):
    """``true_fn()`` if ``pred`` else ``false_fn()``. With a concrete
    ``pred`` (an eager step) the branch is picked in Python: ``lax.cond``
    would compile both branches again on every call."""
    value = concrete(pred)
    if value is not None:
        return true_fn() if bool(value) else false_fn()
    return ops.cond(pred, true_fn, false_fn)


def concrete(x):
    """``x`` as a NumPy array, or None while it is traced (``jax.jit``)."""
    try:
        return ops.convert_to_numpy(x)
    except Exception:  # a tracer has no value yet
        return None


# ------------------------------------------------------------------ random


def _require_jax(what):
    if keras.backend.backend() != "jax":
        raise NotImplementedError(
            f"{what} runs on the TensorFlow and JAX backends (and inside "
            "tf.data maps under any backend); Keras is running on "
            f"{keras.backend.backend()!r}. Mix in a tf.data pipeline "
            "(`ds.map(layer)`), or use KERAS_BACKEND=jax or tensorflow."
        )
    import jax

    return jax


def _u32(value):
    return builtins.int(value) & 0xFFFFFFFF


def seed_from_int(seed):
    import numpy as np

    seed = builtins.int(seed)
    return ops.convert_to_tensor(
        np.array([_u32(seed >> 32), _u32(seed)], dtype="uint32")
    )


def as_seed_tensor(seed):
    return ops.cast(seed, "uint32")


def fold_seed(seed, data):
    jax = _require_jax("Sampling a mixing plan")
    if isinstance(data, builtins.int):
        data = _u32(data)
    else:
        data = jax.numpy.asarray(data).astype("uint32")
    return jax.random.fold_in(jax.numpy.asarray(seed, "uint32"), data)


def bits(shape, seed):
    jax = _require_jax("Sampling a mixing plan")
    raw = jax.random.bits(jax.numpy.asarray(seed, "uint32"), tuple(shape), "uint32")
    return jax.lax.bitcast_convert_type(raw, "int32")


def uniform_int(shape, seed, maxval):
    jax = _require_jax("Sampling a mixing plan")
    return jax.random.randint(
        jax.numpy.asarray(seed, "uint32"), tuple(shape), 0, maxval, dtype="int32"
    )


def random_seed():
    import random

    return seed_from_int(random.getrandbits(63))


def gradient_of(fn, x):
    """``∂ fn(x) / ∂x`` for a scalar ``fn`` (JAX)."""
    jax = _require_jax("An input gradient")
    return jax.grad(fn)(x)
