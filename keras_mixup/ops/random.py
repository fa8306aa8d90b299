"""Stateless, XLA-compilable random ops: Beta sampling and batch pairings.

Every function takes an explicit seed and draws only counter-based random
bits (Philox on TensorFlow, ``jax.random`` on JAX) that XLA compiles — no
``tf.random.gamma``, ``stateless_gamma`` or ``stateless_shuffle`` — so the
same code runs in eager mode, in a ``tf.data`` map, inside
``tf.function(jit_compile=True)`` and under ``jax.jit``, on CPU, GPU and
TPU. Written once on `keras_mixup.backend.ops`.
"""

import math
import numbers
import random

import numpy as np

from keras_mixup import backend

# Marsaglia-Tsang proposals drawn per element (see _log_gamma).
_CANDIDATES = 8


def as_seed(seed):
    """Converts ``seed`` to a stateless seed: an integer tensor of shape ``(2,)``.

    Args:
        seed: an int, a shape-``(2,)`` integer tensor, or ``None`` (a fresh
            random seed; on TensorFlow drawn from its global generator, so
            reproducible under ``tf.random.set_seed``).

    Returns:
        A ``(2,)`` tensor: int64 on TensorFlow, uint32 (a raw ``jax.random``
        key) on JAX.

    Example:

    >>> keras_mixup.ops.as_seed(7).numpy().tolist()
    [7, 0]
    """
    K = backend.ops()
    if seed is None:
        return K.random_seed()
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return K.seed_from_int(_seed_int(seed))
    seed = K.convert_to_tensor(seed)
    if not backend.is_int(seed):
        raise TypeError(
            f"`seed` must be an int or an integer tensor of shape (2,); got "
            f"dtype {backend.dtype_name(seed)}."
        )
    if backend.rank(seed) is not None and tuple(seed.shape) != (2,):
        raise ValueError(
            f"`seed` must be an int or an integer tensor of shape (2,); got "
            f"shape {tuple(seed.shape)}."
        )
    return K.as_seed_tensor(seed)


def fold_seed(seed, data):
    """Derives an independent stateless seed from ``seed`` and an int ``data``.

    Use it to give every step (or replica, or purpose) of a custom training
    loop its own stream from one seed, e.g. ``fold_seed(seed, iterations)``.

    Example:

    >>> seed = keras_mixup.ops.as_seed(0)
    >>> a = keras_mixup.ops.fold_seed(seed, 1)
    >>> b = keras_mixup.ops.fold_seed(seed, 2)
    >>> a.shape, bool((a.numpy() != b.numpy()).any())
    (TensorShape([2]), True)
    """
    if isinstance(data, bool) or not (
        isinstance(data, numbers.Integral)
        or (hasattr(data, "dtype") and backend.is_int(data))
    ):
        raise TypeError(
            f"`data` must be an int or an integer tensor (a step, replica or "
            f"purpose number); got {data!r}."
        )
    return backend.ops().fold_seed(seed, data)


def _unit(bits):
    """int32 bits to float32 in [0, 1), using the low 23 bits."""
    K = backend.ops()
    return K.cast(K.bitwise_and(bits, 0x7FFFFF), "float32") * (2.0**-23)


def _turn(u):
    """``(cos 2πu, sin 2πu)`` for float32 ``u`` in [0, 1), to within 1e-7:
    the nearest quarter turn, then Taylor polynomials on the remaining
    ``[−π/4, π/4]``. XLA on CPU calls the C library's ``cos`` and ``sin``
    one value at a time; these are vectorized arithmetic (FMix's noise
    took a third of the time)."""
    K = backend.ops()
    quarter = K.floor(4.0 * u + 0.5)
    r = (4.0 * u - quarter) * (math.pi / 2)
    r2 = r * r
    sin = r * (1.0 + r2 * (-1 / 6 + r2 * (1 / 120 + r2 * (-1 / 5040 + r2 / 362880))))
    cos = 1.0 + r2 * (-1 / 2 + r2 * (1 / 24 + r2 * (-1 / 720 + r2 / 40320)))
    q = K.cast(quarter, "int32") % 4  # rotate by q quarter turns
    return (
        K.where(q == 0, cos, K.where(q == 1, -sin, K.where(q == 2, -cos, sin))),
        K.where(q == 0, sin, K.where(q == 1, cos, K.where(q == 2, -sin, -cos))),
    )


def _box_muller(bits1, bits2):
    K = backend.ops()
    u1 = 1.0 - _unit(bits1)  # (0, 1]: its log is finite
    return K.sqrt(-2.0 * K.log(u1)) * _turn(_unit(bits2))[0]


def uniform(shape, seed):
    """Uniform float32 in [0, 1) from stateless random bits.

    TensorFlow's CPU kernel and XLA turn random bits into floats differently
    (low versus high mantissa bits), so ``tf.random.stateless_uniform``
    gives different floats for the same seed with and without
    ``jit_compile``. Building the floats from the integer bits, which both
    agree on, keeps one seed one stream everywhere.
    """
    return _unit(backend.ops().bits(shape, seed))


def normal(shape, seed):
    """Standard normal float32 samples (Box-Muller on `uniform` bits)."""
    K = backend.ops()
    b = K.bits(K.leading(2, shape), seed)
    return _box_muller(b[0], b[1])


def _seed_int(seed):
    """An int seed as a Python int within int64 (what every backend takes)."""
    seed = int(seed)
    if not -(2**63) <= seed < 2**63:
        raise ValueError(
            f"`seed` must fit in a signed 64-bit integer, [-2**63, 2**63); got "
            f"{seed}. Any int in that range gives its own stream (e.g. "
            "`seed % 2**63`)."
        )
    return seed


def check_seed(seed):
    """Validates a layer or model ``seed`` (int or None).

    Returns ``(seed, base)``: the argument as given (for ``get_config``) and
    the int to seed from (a random one when ``seed`` is None).
    """
    if seed is None:
        return None, random.randint(1, 2**31 - 1)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"`seed` must be an int or None; got {seed!r}.")
    seed = _seed_int(seed)
    return seed, seed


def check_size(value, name, minimum=0):
    """Raises unless ``value`` (a Python int, or a tensor whose value is
    known) is an integer >= ``minimum``; traced tensors are trusted."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int >= {minimum}; got {value!r}.")
    if isinstance(value, numbers.Integral):
        known = int(value)
    elif isinstance(value, numbers.Number):
        raise TypeError(f"`{name}` must be an int >= {minimum}; got {value!r}.")
    else:
        arr = backend.ops().concrete(value) if hasattr(value, "dtype") else None
        if arr is None:
            return value
        known = int(np.asarray(arr))
    if known < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; got {known}.")
    return value


def check_shape(shape, name="shape"):
    """``check_size`` on every entry of a static shape (a list or tuple)."""
    if isinstance(shape, (list, tuple)):
        for i, dim in enumerate(shape):
            check_size(dim, f"{name}[{i}]")
    return shape


def check_weights(weights, count, name, what):
    """Validates ``count`` non-negative choice weights with a positive sum.

    ``None`` means uniform. Returns the weights as floats; ``what`` names
    what they choose among, for the error message.
    """
    weights = [1.0] * count if weights is None else list(weights)
    if len(weights) != count or not all(
        isinstance(w, numbers.Real) and not isinstance(w, bool) and w >= 0
        for w in weights
    ) or sum(weights) <= 0:
        raise ValueError(
            f"`{name}` must hold {count} non-negative numbers with a positive "
            f"sum, one per {what}; got {weights!r}."
        )
    return [float(w) for w in weights]


def choose(weights, shape, seed):
    """Draws int32 indices ``k`` with probability ``weights[k] / sum(weights)``.

    Inverse-CDF on `uniform`, so it compiles with XLA and gives the same
    draws with or without it.

    Example:

    >>> k = keras_mixup.ops.random.choose([1, 3], [10_000], seed=0)
    >>> abs(float(np.mean(keras.ops.convert_to_numpy(k))) - 0.75) < 0.02  # P(k = 1)
    True
    """
    K = backend.ops()
    cdf = np.cumsum(weights, dtype=np.float64) / float(sum(weights))
    u = uniform(shape, as_seed(seed))
    # The mixer k with cdf[k-1] <= u < cdf[k].
    k = K.searchsorted(
        K.convert_to_tensor(cdf[:-1].astype("float32")), K.reshape(u, [-1])
    )
    return K.reshape(k, K.shape(u))


def check_concentration(value, name):
    """Raises a clear error unless ``value`` is a finite number > 0.

    Python numbers are checked at once; tensors are checked when their value
    is known (eager mode) and trusted otherwise.
    """
    if value is None:
        raise ValueError(f"`{name}` must be a finite number > 0; got None.")
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a finite number > 0; got {value!r}.")
    if isinstance(value, numbers.Number):
        ok = math.isfinite(value) and value > 0
        shown = value
    else:
        if isinstance(value, (list, tuple)):
            raise TypeError(
                f"`{name}` must be one finite number > 0; got the sequence "
                f"{value!r}. Pass a single float (e.g. {name}=0.2)."
            )
        K = backend.ops()
        if not hasattr(value, "dtype"):
            value = K.convert_to_tensor(value)
        if not (backend.is_float(value) or backend.is_int(value)):
            raise TypeError(
                f"`{name}` must be a finite number > 0; got dtype "
                f"{backend.dtype_name(value)}."
            )
        arr = K.concrete(value)
        if arr is None:  # traced: checked where it was set
            return value
        arr = np.asarray(arr, dtype=np.float64)
        ok = bool((arr > 0).all() and np.isfinite(arr).all())
        shown = arr.tolist()
    if not ok:
        raise ValueError(
            f"`{name}` must be a finite number > 0 (the Beta distribution's "
            f"concentration; e.g. 0.2 for mild mixing, 1.0 for uniform λ); "
            f"got {shown!r}."
        )
    return value


def _log_gamma(alpha, shape, seed):
    """log of Gamma(alpha, 1) samples of ``shape``, for ``alpha`` > 0
    (a float32 tensor broadcastable to ``shape``).

    Marsaglia & Tsang (2000) for the shape ``a = alpha + 1 >= 1``, then
    ``Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha)`` in log space (stable
    for tiny ``alpha``).

    Proposes `_CANDIDATES` values per element at once (a last axis) and
    keeps the first accepted one. Each proposal is accepted with
    probability >= 0.95 for a >= 1, so all of them are rejected with
    probability < 0.049**8 ≈ 3e-11; that element then keeps its last
    proposal, ``d·v``, itself a close approximation of a Gamma draw.
    Straight-line code with no loop and one Philox draw (4 words per
    candidate: two for the normal proposal, one for the acceptance test,
    one for ``U`` — each candidate carries its own ``U``, and the kept
    one's is independent of which was kept), so XLA compiles it fast and a
    ``tf.data`` map instantiates a small graph.

    The acceptance test and the result are computed in log space, and the
    cubic ``(1 + c x)^3 - 1`` is expanded so that nothing cancels when the
    shape is large.
    """
    K = backend.ops()
    d = alpha + 2.0 / 3.0  # a - 1/3
    alpha_c = K.expand_dims(alpha, -1)
    d_c = alpha_c + 2.0 / 3.0
    if isinstance(shape, (list, tuple)):
        full = [4, *shape, _CANDIDATES]  # one stack of scalars
    else:
        full = K.leading(4, K.trailing(shape, _CANDIDATES))
    # Uniform in (0, 1] (every log finite): the low 23 bits, plus one.
    bits = K.cast(K.bitwise_and(K.bits(full, seed), 0x7FFFFF), "float32")
    u1, u2, u, boost = K.unstack((bits + 1.0) * (2.0**-23))
    x = K.sqrt(-2.0 * K.log(u1)) * K.cos((2.0 * math.pi) * u2)  # Box-Muller
    cx = K.rsqrt(9.0 * d_c) * x
    valid = cx > -1.0  # v = (1 + cx)^3 must be positive
    log_v = 3.0 * K.log1p(K.where(valid, cx, 0.0))
    w = cx * (3.0 + cx * (3.0 + cx))  # (1 + cx)^3 - 1, without cancellation
    # log-acceptance test: log u < x^2/2 + d (1 - v + log v), v = 1 + w.
    bound = 0.5 * x * x + d_c * (log_v - w)
    # The first accepted candidate; the last one where none was accepted.
    accept = (valid & (K.log(u) < bound)) | _LAST
    first = accept & (K.cumsum(K.cast(accept, "int32"), axis=-1) == 1)
    # log v + log U / alpha of the kept candidate.
    log_g = log_v + K.log(boost) / alpha_c
    return K.log(d) + K.reduce_sum(K.where(first, log_g, 0.0), axis=-1)


_LAST = np.arange(_CANDIDATES) == _CANDIDATES - 1


def log_gamma(shape, alpha, seed):
    """Samples ``log G`` with ``G ~ Gamma(alpha, 1)``, stable for tiny ``alpha``.

    Uses ``Gamma(a) = Gamma(a + 1) * U^(1/a)`` in log space, so that
    ``alpha = 1e-3`` gives large negative finite logs instead of underflowing
    to ``log(0)``.

    Args:
        shape: output shape.
        alpha: shape parameter > 0, a float or a tensor broadcastable to
            ``shape``.
        seed: a stateless seed (see `as_seed`).

    Returns:
        A float32 tensor of ``shape``.

    Example:

    >>> log_g = keras_mixup.ops.log_gamma([100_000], 1e-3, seed=0)
    >>> bool(np.isfinite(keras.ops.convert_to_numpy(log_g)).all())  # exp would underflow
    True
    >>> g = keras.ops.exp(keras_mixup.ops.log_gamma([100_000], 3.0, seed=0))
    >>> round(float(keras.ops.mean(g)), 1)  # E[G] = alpha
    3.0
    """
    K = backend.ops()
    check_shape(shape)
    alpha = K.broadcast_to(K.cast(alpha, "float32"), shape)
    return _log_gamma(alpha, shape, as_seed(seed))


def sample_beta(shape, alpha, beta=None, seed=None):
    """Samples λ ~ Beta(alpha, beta) without gamma ops, so it compiles with XLA.

    λ = sigmoid(log G₁ − log G₂) with G₁ ~ Gamma(alpha), G₂ ~ Gamma(beta):
    computing the ratio G₁ / (G₁ + G₂) in log space keeps every result finite
    for concentrations anywhere in [1e-3, 1e3] (tiny concentrations give λ
    of exactly 0 or 1 in float32, never NaN).

    Args:
        shape: output shape (a list, tuple or 1-D int tensor).
        alpha: first concentration, > 0 (a float or a float tensor).
        beta: second concentration, > 0; defaults to ``alpha`` (symmetric).
        seed: an int, a shape-``(2,)`` int tensor, or ``None``.

    Returns:
        A float32 tensor of ``shape`` with values in [0, 1]; its mean is
        ``alpha / (alpha + beta)``.

    Example:

    >>> lam = keras_mixup.ops.sample_beta([10000], alpha=2.0, beta=6.0, seed=1)
    >>> round(float(keras.ops.mean(lam)), 2)
    0.25
    """
    check_concentration(alpha, "alpha")
    beta = alpha if beta is None else check_concentration(beta, "beta")
    check_shape(shape)
    K = backend.ops()
    seed = as_seed(seed)
    # Both Gamma draws share one rejection loop: shape (2, *shape).
    alpha, beta = K.cast(alpha, "float32"), K.cast(beta, "float32")
    if backend.rank(alpha) == 0 and backend.rank(beta) == 0:
        conc = K.reshape(K.stack([alpha, beta]), [2] + [1] * len(shape))
    else:
        conc = K.stack([K.broadcast_to(alpha, shape), K.broadcast_to(beta, shape)])
    full = [2, *shape] if isinstance(shape, (list, tuple)) else K.leading(2, shape)
    log_g1, log_g2 = K.unstack(_log_gamma(conc, full, seed))
    return K.sigmoid(log_g1 - log_g2)


def random_permutation(batch_size, seed):
    """A uniformly random permutation of ``range(batch_size)``, XLA-compilable.

    ``tf.random.stateless_shuffle`` does not compile with XLA; this is the
    ``argsort`` of full-range random int32 keys (ties, which would bias the
    order slightly, have probability below ``batch_size**2 / 2**33``).

    Args:
        batch_size: a Python int or scalar int tensor.
        seed: a stateless seed.

    Returns:
        An int32 tensor of shape ``(batch_size,)``.

    Example:

    >>> p = keras_mixup.ops.random_permutation(5, seed=3)
    >>> sorted(keras.ops.convert_to_numpy(p).tolist())
    [0, 1, 2, 3, 4]
    """
    K = backend.ops()
    check_size(batch_size, "batch_size")
    keys = K.bits([batch_size], as_seed(seed))
    return K.argsort(keys)


def flip_pairing(batch_size):
    """Pairs example ``i`` with ``batch_size - 1 - i`` (timm's "flip").

    Every pair mixes in both directions, which lets a caller give the two
    members complementary weights. With an odd batch the middle example is
    paired with itself (its mix is the example itself).

    Example:

    >>> keras.ops.convert_to_numpy(keras_mixup.ops.flip_pairing(5)).tolist()
    [4, 3, 2, 1, 0]
    """
    K = backend.ops()
    check_size(batch_size, "batch_size")
    return batch_size - 1 - K.range(batch_size, dtype="int32")


def sample_dirichlet(shape, ways, alpha, seed=None):
    """Samples weights ~ Dirichlet(alpha, ..., alpha) over ``ways`` sources.

    Normalized Gamma(alpha) draws, computed as a softmax of their logs so
    that tiny concentrations stay finite (no 0/0). XLA-safe, like
    `sample_beta`; the marginal of each weight is
    ``Beta(alpha, (ways - 1)·alpha)``.

    Args:
        shape: batch shape (a list or tuple of ints).
        ways: number of sources k >= 2 (a Python int).
        alpha: concentration > 0 (a float or a scalar float tensor).
        seed: an int, a shape-``(2,)`` int tensor, or ``None``.

    Returns:
        float32 ``(*shape, ways)``, non-negative, summing to 1 on the last
        axis.

    Example:

    >>> w = keras_mixup.ops.sample_dirichlet([1000], 3, alpha=1.0, seed=0)
    >>> tuple(w.shape), round(float(keras.ops.mean(w[:, 0])), 1)
    ((1000, 3), 0.3)
    """
    check_concentration(alpha, "alpha")
    if isinstance(ways, bool) or not isinstance(ways, numbers.Integral) or ways < 2:
        raise ValueError(f"`ways` must be an int >= 2; got {ways!r}.")
    check_shape(shape)
    K = backend.ops()
    full = [*shape, int(ways)] if isinstance(shape, (list, tuple)) else K.trailing(shape, int(ways))
    alpha = K.cast(alpha, "float32")
    return K.softmax(_log_gamma(alpha, full, as_seed(seed)), axis=-1)


# murmur3's 32-bit finalizer constants, as int32 (the arithmetic wraps).
_GOLDEN = 0x9E3779B1 - 2**32
_M1 = 0x85EBCA6B - 2**32
_M2 = 0xC2B2AE35 - 2**32


def _shift_right(h, s):
    """Logical right shift of int32 ``h`` by ``s`` bits."""
    K = backend.ops()
    return K.bitwise_and(K.right_shift(h, s), (1 << (32 - s)) - 1)


def _fmix(h):
    K = backend.ops()
    h = K.bitwise_xor(h, _shift_right(h, 16))
    h = h * _M1
    h = K.bitwise_xor(h, _shift_right(h, 13))
    h = h * _M2
    return K.bitwise_xor(h, _shift_right(h, 16))


def hash_bits(shape, seed, shared_axes=()):
    """32 random-looking bits (int32) per element, hashed from the element's
    position and a seed: murmur3's finalizer, twice, keyed by two Philox
    words of the seed.

    For input-sized masks (a bit or a threshold per value), where Philox
    itself is too slow on CPU (XLA:CPU spends ~20 ns per Philox word; these
    are a few vectorized integer operations). Not a cryptographic or
    high-quality stream beyond that use: prefer `uniform` for a plan's
    per-example draws. Values repeat along ``shared_axes`` (the draw of
    the shape without them, broadcast).
    """
    K = backend.ops()
    return K.reshape(_hashed(_counter(shape, shared_axes), K.bits([2], as_seed(seed))), shape)


def _hashed(index, key):
    """`hash_bits`' bits of int32 positions ``index`` under a two-word
    ``key``: murmur3's finalizer keyed by each word in turn."""
    K = backend.ops()
    return _fmix(K.bitwise_xor(_fmix(index * _GOLDEN + key[0]), key[1]))


def _counter(shape, shared_axes=()):
    """Each position of ``shape``, in raster order (flat int32), numbered
    as if the ``shared_axes`` were dropped: positions that differ only
    along them get the same number. Computed from the flat index by
    division and remainder by constants, runs of kept axes at once: an
    elementwise program that XLA vectorizes where a broadcast of a smaller
    array into a larger fusion does not (MaskMix(shared_axes=[-1]) ran 1.6×
    slower that way)."""
    K = backend.ops()
    count = 1
    for d in shape:
        count = count * d
    flat = K.range(count, dtype="int32")
    shared = {a % len(shape) for a in shared_axes}
    if not shared:
        return flat
    out, stride, kept = None, 1, 1
    axis = len(shape) - 1
    while axis >= 0:
        if axis in shared:
            stride *= shape[axis]
            axis -= 1
            continue
        run = 1  # a run of kept axes ending at `axis`
        first = axis
        while first >= 0 and first not in shared:
            run *= shape[first]
            first -= 1
        coord = flat // stride if stride > 1 else flat
        if first >= 0:  # axes before the run: the remainder
            coord = coord % run
        out = coord * kept if out is None else out + coord * kept
        kept *= run
        stride *= run
        axis = first
    return K.zeros_like(flat) if out is None else out


def bernoulli_mask(shape, p, seed, shared_axes=()):
    """A random mask and its count: each value of a ``shape`` tensor is
    True with probability ``p[b]`` (``(B,)``, one per example along the
    first axis; rounded to a multiple of 2⁻¹⁶), independently, except that
    values along ``shared_axes`` repeat one draw. Returns the bool mask and
    the number of True draws per example (int32 ``(B,)``; draws, so a
    value repeated along shared axes counts once).

    The count does not read the mask: each 32-bit hash (`hash_bits`) gives
    two neighbouring values their 16-bit uniforms, and the count runs over
    the hashes, half as many. Counting a materialized float mask cost as
    much as mixing with it (MaskMix at 224 px).
    """
    K = backend.ops()
    shape = list(shape)
    rank = len(shape)
    shared = {a % rank for a in shared_axes}
    batch = shape[0]
    threshold = K.cast(K.round(K.cast(p, "float32") * 65536.0), "int32")  # (B,)
    per_value = K.reshape(threshold, [batch] + [1] * (rank - 1))
    drawn = [d for axis, d in enumerate(shape) if axis > 0 and axis not in shared]
    if not all(isinstance(d, int) for d in drawn):
        # Sizes known only at run time: one draw per hash, counted.
        mask = K.bitwise_and(hash_bits(shape, seed, shared), 0xFFFF) < per_value
        repeats = 1
        for axis in shared:
            repeats = repeats * shape[axis]
        hits = K.reduce_sum(K.cast(mask, "int32"), axis=list(range(1, rank)))
        return mask, hits // repeats
    n = math.prod(drawn)  # draws per example
    pairs = -(-n // 2)
    key = K.bits([2], as_seed(seed))

    def halves(h):
        return K.bitwise_and(h, 0xFFFF), _shift_right(h, 16)

    draw = _counter(shape, shared)  # each value's draw, batch-major
    if n % 2 == 0:
        pair, high = K.right_shift(draw, 1), K.bitwise_and(draw, 1) > 0
    else:  # pairs do not straddle examples: the last one has one draw
        b, j = draw // n, draw % n
        pair, high = b * pairs + j // 2, (j % 2) > 0
    low_u, high_u = halves(_hashed(pair, key))
    mask = K.reshape(K.where(high, high_u, low_u), shape) < per_value
    low_u, high_u = halves(K.reshape(_hashed(K.range(batch * pairs, dtype="int32"), key), [batch, pairs]))
    t = K.expand_dims(threshold, 1)
    hits = K.cast(low_u < t, "int32")
    high_hits = K.cast(high_u < t, "int32")
    if n % 2:
        high_hits = high_hits * K.convert_to_tensor(
            (np.arange(pairs) < pairs - 1).astype("int32")
        )
    return mask, K.reduce_sum(hits + high_hits, axis=1)


def hash_uniform(shape, seed, shared_axes=()):
    """Floats in [0, 1) from `hash_bits` (23 bits of resolution)."""
    return _unit(hash_bits(shape, seed, shared_axes))


def hash_normal(shape, seed):
    """Standard normal floats from `hash_bits` (Box-Muller)."""
    b = hash_bits([2, *shape], seed)
    return _box_muller(b[0], b[1])


def hash_normal_pair(shape, seed):
    """Two independent arrays of standard normal floats, the cosine and
    sine halves of one Box-Muller draw (half the hashes and logarithms of
    two `hash_normal` calls): the real and imaginary parts of complex
    Gaussian noise."""
    K = backend.ops()
    b = hash_bits([2, *shape], seed)
    radius = K.sqrt(-2.0 * K.log(1.0 - _unit(b[0])))
    cos, sin = _turn(_unit(b[1]))
    return radius * cos, radius * sin
