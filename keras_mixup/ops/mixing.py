"""Applying one mixing plan: interpolation, box and segment masks.

A plan is a small dict of tensors sampled once per batch:

- ``"index"``: int32 ``(B,)``, the partner of each example (``x[index]``);
  for k-way mixing ``(B, k - 1)``, one column per partner. With a pool of
  partners (``layer(x, y, partners=...)``) the ids index the pool;
- ``"lam"``: float32 ``(B,)``, the weight of each example's *own* data, which
  is also the weight of its own label (for box methods: the exact fraction of
  pixels or time steps it keeps, counted from the mask);
- ``"weights"`` (k-way only): float32 ``(B, k - 1)``, the weight of each
  partner; with ``"lam"`` they sum to 1 (two-way: the partner's is
  ``1 - lam``);
- ``"found"`` (label-aware pairings only): bool, shaped like ``"index"``,
  False where no eligible partner existed (its weight is then 0);
- ``"mask"`` (box methods only): float32, 1 where the example keeps its own
  data, shaped like the inputs with size 1 on the channel axis and on the
  batch axis when one box is shared by the whole batch.

The functions here apply a plan to any tensor; they are pure, compile
with XLA, and are written once on `keras_mixup.backend.ops`.
"""

import keras

from keras_mixup import backend
from keras_mixup.ops.random import as_seed, check_size


def blend(x, index, weight, select=False, source=None, binary=False):
    """``weight * x + (1 - weight) * x[index]``, computed in ``x``'s dtype.

    ``weight`` broadcasts against ``x``. With ``select=True`` the weight is
    a mask (a CutMix box, or a mix of boxes and λ): where it is exactly 1
    or 0 the value is *copied* from ``x`` or from the partner — exact, and a
    NaN or Inf in one example then reaches only the values it gives, not
    every value of its partner through ``0·NaN``. With ``binary=True`` the
    weight is known to be 0 or 1 (a cut, an FMix or Bernoulli mask): one
    select, ``x`` where it is above 0.5 (under XLA on CPU the three-way
    select ran CutMix 6% and FMix 7% slower; a partner view read three
    times ran ResizeMix 1.5× slower). Integer data (uint8 images, class
    maps) is always copied: its weight must be a 0/1 mask.

    With ``source`` the partners are ``source[index]`` (a pool of partners
    shaped like ``x`` but for its first axis) instead of ``x[index]``.

    Example:

    >>> x = tf.constant([[0.0], [10.0]])
    >>> keras.ops.convert_to_numpy(
    ...     keras_mixup.ops.blend(x, [1, 0], tf.constant([[0.25], [1.0]])))
    array([[ 7.5],
           [10. ]], dtype=float32)
    """
    K = backend.ops()
    x = K.convert_to_tensor(x)
    index = K.convert_to_tensor(index)
    weight = K.convert_to_tensor(weight)
    source = x if source is None else K.convert_to_tensor(source)
    check_plan_shapes(x, index, weight, source)
    return blend_values(x, K.gather(source, index), weight, select, binary)


def blend_values(x, partner, weight, select=False, binary=False):
    """`blend` with the partner's values given (``x``'s shape): for a
    partner read elsewhere than at the same positions (a region pasted
    elsewhere, a resized partner)."""
    K = backend.ops()
    dtype = backend.dtype_name(x)
    if binary or not keras.backend.is_float_dtype(dtype):
        return K.where(K.cast(weight, "float32") > 0.5, x, partner)
    weight = K.cast(weight, dtype)
    mixed = weight * x + (1 - weight) * partner
    if select:
        mixed = K.where(weight >= 1, x, K.where(weight <= 0, partner, mixed))
    return mixed


def check_plan_shapes(x, index, weight, source=None):
    """Raises a clear error when a plan does not fit ``x`` (static shapes;
    partner ids also by value when they are known)."""
    shape = tuple(x.shape)
    batch = shape[0] if shape else None
    size = batch if source is None or source is x else tuple(source.shape)[0]
    n = tuple(index.shape)[0] if backend.rank(index) == 1 else "?"
    if backend.rank(index) != 1 or (batch is not None and n is not None and n != batch):
        raise ValueError(
            f"The partner index must have one entry per example, shape "
            f"({batch},); got shape {tuple(index.shape)} for data of shape {shape}."
        )
    if not backend.is_int(index):
        raise TypeError(f"The partner index must be integers; got {backend.dtype_name(index)}.")
    w = tuple(weight.shape)
    if len(w) != len(shape) or any(
        a is not None and b is not None and a not in (1, b) for a, b in zip(w, shape)
    ):
        raise ValueError(
            f"Mixing weights of shape {w} do not broadcast against data of "
            f"shape {shape}: pass one weight per example, shape ({batch}, 1, ...), "
            "or a mask shaped like the data."
        )
    known = backend.ops().concrete(index) if size is not None else None
    if known is not None and known.size and (known.min() < 0 or known.max() >= size):
        raise ValueError(
            f"Partner ids must be in [0, {size}) for {size} candidate partners; got "
            f"{sorted(set(known[(known < 0) | (known >= size)].tolist()))[:5]}."
        )


def partner_columns(plan):
    """``(index, weights)`` of a plan's partners, both ``(B, k - 1)``
    (two-way: one column, weight ``1 - lam``)."""
    K = backend.ops()
    index, lam = plan["index"], plan["lam"]
    if backend.rank(index) == 1:
        return K.expand_dims(index, 1), K.expand_dims(1.0 - lam, 1)
    return index, plan["weights"]


def blend_ways(x, index, lam, weights, source=None):
    """k-way mixing: ``lam·x + Σⱼ weights[:, j]·source[index[:, j]]``.

    ``index`` and ``weights`` are ``(B, k - 1)``, ``lam`` ``(B,)``;
    ``source`` defaults to ``x`` (a pool of partners otherwise). Float
    data only (integer data cannot hold a weighted average).

    Example:

    >>> x = tf.constant([[0.0], [3.0], [6.0]])
    >>> out = keras_mixup.ops.blend_ways(
    ...     x, tf.constant([[1, 2], [2, 0], [0, 1]]), tf.constant([0.5, 1.0, 0.0]),
    ...     tf.constant([[0.25, 0.25], [0.0, 0.0], [0.5, 0.5]]))
    >>> out.numpy().ravel().tolist()
    [2.25, 3.0, 1.5]
    """
    K = backend.ops()
    x = K.convert_to_tensor(x)
    source = x if source is None else K.convert_to_tensor(source)
    index, weights = K.convert_to_tensor(index), K.convert_to_tensor(weights)
    rank = backend.rank(x)
    m = backend.dim(index, 1)
    if not keras.backend.is_float_dtype(backend.dtype_name(x)):
        raise TypeError(
            f"k-way mixing averages values, which {backend.dtype_name(x)} data "
            "cannot hold; cast it to float first."
        )
    dtype = backend.dtype_name(x)
    for j in builtins_range(m):
        check_plan_shapes(x, index[:, j], per_example(weights[:, j], rank), source)
    out = K.cast(per_example(lam, rank), dtype) * x
    for j in builtins_range(m):
        w = K.cast(per_example(weights[:, j], rank), dtype)
        out = out + w * K.gather(source, index[:, j])
    return out


builtins_range = range


def drop_unfound(plan, found):
    """Gives partners that were not found (``found`` False) a weight of 0
    and their share to the example itself. Keeps ``found`` in the plan."""
    if found is None:
        return plan
    K = backend.ops()
    out = dict(plan)
    out["found"] = found
    if backend.rank(found) == 1:
        out["lam"] = K.where(found, plan["lam"], 1.0)
    else:
        weights = K.where(found, plan["weights"], 0.0)
        out["lam"] = plan["lam"] + K.reduce_sum(plan["weights"] - weights, axis=1)
        out["weights"] = weights
    return out


def per_example(lam, rank):
    """Reshapes ``(B,)`` weights to ``(B, 1, ..., 1)`` of the given rank."""
    return backend.ops().reshape(lam, [-1] + [1] * (rank - 1))


def interpolate(structure, lam, index):
    """Mixes every tensor of a nested structure with the same λ and pairing.

    ``x̃ = λ·x + (1 − λ)·x[index]`` for each leaf, with ``lam`` of shape
    ``(B,)`` (one weight per example) or ``(1,)`` (one for the batch).

    Args:
        structure: a tensor or any nest (dict, list, tuple) of tensors whose
            first axis is the batch.
        lam: float weights of each example's own data.
        index: int32 ``(B,)`` partner indices.

    Returns:
        The same structure, mixed.

    Example:

    >>> xs = {"a": tf.constant([[1.0], [3.0]]), "b": tf.constant([2.0, 4.0])}
    >>> out = keras_mixup.ops.interpolate(xs, tf.constant([0.5, 1.0]), [1, 0])
    >>> out["a"].numpy().ravel().tolist(), out["b"].numpy().tolist()
    ([2.0, 3.0], [3.0, 4.0])
    """
    K = backend.ops()
    lam = K.convert_to_tensor(lam)
    if backend.rank(lam) != 1:
        raise ValueError(
            f"`lam` must have shape (batch,) or (1,); got shape {tuple(lam.shape)}."
        )

    def mix(x):
        x = K.convert_to_tensor(x)
        return blend(x, index, per_example(lam, backend.rank(x)))

    return keras.tree.map_structure(mix, structure)


def _cuts(lengths, sides, seed):
    """Start and end (int32, clipped to ``[0, length]``) of cuts of ``sides``
    (int32 ``(k, N)``) along ``k`` axes of ``lengths`` (int32 ``(k, 1)``),
    with centres uniform in ``[0, length)``: 31 random bits modulo the
    length (a bias below ``length / 2**31``), one Philox draw for all axes.
    """
    K = backend.ops()
    centre = K.bitwise_and(K.bits(K.shape(sides), seed), 0x7FFFFFFF) % lengths
    start = centre - sides // 2
    end = start + sides
    return K.clip(start, 0, lengths), K.clip(end, 0, lengths)


def _in_range(length, start, end):
    """``(N, length)`` bool: position inside ``[start, end)``."""
    K = backend.ops()
    pos = K.range(length, dtype="int32")
    return (pos >= K.expand_dims(start, 1)) & (pos < K.expand_dims(end, 1))


def box_mask(height, width, lam, seed):
    """CutMix boxes for 2-D inputs (Yun et al., 2019).

    Each box has sides ``floor(H·√(1−λ))`` × ``floor(W·√(1−λ))``, a centre
    uniform over the image, and is clipped to it, so the realized cut can be
    smaller than ``1 − λ``; the returned fraction is the exact one.

    Args:
        height, width: image size (ints or scalar int tensors).
        lam: float ``(N,)`` sampled λ, one box per entry.
        seed: a stateless seed.

    Returns:
        ``(mask, kept)``: float32 ``mask`` of shape ``(N, height, width)``,
        1 where the example keeps its own pixel and 0 inside the box, and
        float32 ``kept`` ``(N,)``, the fraction of ones in each mask.

    Example:

    >>> mask, kept = keras_mixup.ops.box_mask(4, 4, tf.constant([0.75]), seed=0)
    >>> float(keras.ops.mean(mask)) == float(kept[0])
    True
    """
    check_size(height, "height", 1)
    check_size(width, "width", 1)
    bounds, kept = _box_bounds(height, width, lam, as_seed(seed))
    return _bounds_mask([height, width], bounds), kept


def _box_bounds(height, width, lam, seed):
    """`box_mask`'s boxes as int32 bounds ``(4, N)`` (rows y0, x0, y1, x1:
    the cut is ``[y0, y1) x [x0, x1)``), and the kept fractions ``(N,)``."""
    K = backend.ops()
    lam = K.cast(lam, "float32")
    lengths = K.reshape(K.cast(K.stack([height, width]), "int32"), [2, 1])
    ratio = K.sqrt(K.maximum(1.0 - lam, 0.0))
    sides = K.cast(K.floor(K.cast(lengths, "float32") * ratio), "int32")
    start, end = _cuts(lengths, sides, seed)
    (y0, x0), (y1, x1) = K.unstack(start), K.unstack(end)
    if isinstance(height, int) and isinstance(width, int):
        total = height * width
    else:
        total = K.cast(height, "int32") * K.cast(width, "int32")
    own = total - (y1 - y0) * (x1 - x0)
    kept = K.cast(own, "float32") / K.cast(total, "float32")
    return K.concat([start, end], 0), kept


def _bounds_mask(sizes, bounds):
    """The float32 mask ``(N, *sizes)`` of cuts given by int32 ``bounds``
    ``(2k, N)`` (the starts along the ``k = len(sizes)`` axes, then the
    ends): 0 inside the cut, 1 elsewhere. Built from the bounds where it is
    needed (in the XLA program that applies a plan), so that only ``2k``
    numbers per example travel before."""
    K = backend.ops()
    parts = K.unstack(bounds)
    k = len(sizes)
    inside = _in_range(sizes[0], parts[0], parts[k])
    if k == 2:
        inside = K.expand_dims(inside, 2) & K.expand_dims(
            _in_range(sizes[1], parts[1], parts[3]), 1
        )
    return 1.0 - K.cast(inside, "float32")


def _lane_mask(bounds, t, weight):
    """`_bounds_mask` for the image ``t`` ``(B, H, W, C)`` of several
    channels, at its full shape, built on its ``(B, H, W·C)`` view from the
    int32 ``bounds`` ``(4, N)``; ``weight`` (the ``(N, H, W, 1)`` mask)
    when ``t`` is not such an image. XLA:CPU vectorizes a select on that
    view along the ``W·C`` values of a row, where a mask broadcast over a
    few channels runs one value at a time (CutMix at 224 px took 1.3x the
    time that way)."""
    shape = tuple(t.shape)
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
        return weight
    height, width, channels = shape[1:]
    if channels < 2 or (height, width) != tuple(weight.shape[1:3]):
        return weight
    K = backend.ops()
    y0, x0, y1, x1 = (K.reshape(b, [-1, 1, 1]) for b in K.unstack(bounds))
    rows = K.reshape(K.range(height, dtype="int32"), [1, height, 1])
    cols = K.reshape(K.range(width * channels, dtype="int32") // channels, [1, 1, -1])
    inside = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
    return K.reshape(1.0 - K.cast(inside, "float32"), [-1, height, width, channels])


def _lanes_of(t, weight):
    """``[-1, H, W·C]`` when ``t`` is an image ``(B, H, W, C)`` of several
    channels and ``weight`` a mask of its full shape (from `_lane_mask`),
    else None."""
    shape, mask = tuple(t.shape), tuple(weight.shape)
    if len(shape) != 4 or len(mask) != 4 or not all(isinstance(d, int) for d in shape[1:]):
        return None
    if shape[3] < 2 or mask[1:] != shape[1:]:
        return None
    return [-1, shape[1], shape[2] * shape[3]]


def segment_mask(length, lam, seed):
    """CutMix for 1-D inputs (sequences, audio frames): a contiguous segment.

    The segment has length ``floor(T·(1−λ))``, a uniform centre, and is
    clipped to the sequence.

    Args:
        length: sequence length ``T``.
        lam: float ``(N,)`` sampled λ.
        seed: a stateless seed.

    Returns:
        ``(mask, kept)``: float32 ``(N, T)`` mask (1 = own step) and the exact
        kept fraction ``(N,)``.

    Example:

    >>> mask, kept = keras_mixup.ops.segment_mask(10, tf.constant([0.5]), seed=0)
    >>> tuple(mask.shape), int(keras.ops.sum(mask)) == round(10 * float(kept[0]))
    ((1, 10), True)
    """
    check_size(length, "length", 1)
    bounds, kept = _segment_bounds(length, lam, as_seed(seed))
    return _bounds_mask([length], bounds), kept


def _segment_bounds(length, lam, seed):
    """`segment_mask`'s segments as int32 bounds ``(2, N)`` (start, end),
    and the kept fractions ``(N,)``."""
    K = backend.ops()
    lam = K.cast(lam, "float32")
    t = K.cast(length, "float32")
    side = K.cast(K.floor(t * K.maximum(1.0 - lam, 0.0)), "int32")
    start, end = _cuts(K.reshape(K.cast(length, "int32"), [1, 1]), K.expand_dims(side, 0), seed)
    kept = K.cast(length - (end[0] - start[0]), "float32") / t
    return K.concat([start, end], 0), kept
