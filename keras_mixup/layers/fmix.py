"""FMix (Harris et al., 2020): masks from low-frequency Fourier noise."""

import numbers

import keras
import numpy as np

from keras_mixup import backend
from keras_mixup.layers.masked import MaskedMixing
from keras_mixup.ops.random import hash_normal_pair
from keras_mixup.ops.saliency import block_factor


def fourier_scale(sizes, decay_power):
    """``1 / f^decay_power`` on the DFT grid of ``sizes`` (1 or 2 axes), the
    frequency floored at ``1 / max(sizes)``: the amplitude of each
    frequency in FMix's noise (a float32 NumPy array shaped like the grid)."""
    grid = list(sizes) + [1] * (2 - len(sizes))
    fy = np.fft.fftfreq(grid[0])[:, None]
    fx = np.fft.fftfreq(grid[1])[None, :]
    freq = np.sqrt(fy**2 + fx**2)
    freq = np.maximum(freq, 1.0 / max(grid))
    return (1.0 / freq**decay_power).astype("float32")


# The field's values are ranked by keys of this many bits: the values
# scaled between the example's least and greatest (`_order_keys`).
_ORDER_BITS = 23


def _order_keys(field):
    """int32 keys in ``[0, 2^23)`` in the order of each row of the float
    ``field`` ``(B, N)``: the values scaled linearly between the row's
    least and greatest, so 23 bits resolve what a float's 32 would (its
    sign and exponent are the same across a row once scaled). Values
    closer than ``2^-23`` of the row's range can share a key; `_kept_cells`
    breaks such ties by position."""
    K = backend.ops()
    lo = K.reduce_min(field, axis=1, keepdims=True)
    hi = K.reduce_max(field, axis=1, keepdims=True)
    top = float(2**_ORDER_BITS - 1)
    scaled = (field - lo) * (top / K.maximum(hi - lo, 1e-30))
    return K.cast(K.clip(K.floor(scaled), 0.0, top), "int32")


def _weighted_count(weights):
    """A function counting, per row of a bool ``(B, N)`` array, its True
    entries each weighted by the int NumPy ``weights`` ``(N,)``, exactly
    (int32 ``(B,)``).

    The count is a matrix-vector product: XLA on CPU runs it with vector
    instructions, where a row reduction goes one element at a time (the
    selection's 23 counts took a third less time). It stays exact where
    float32 products run in bfloat16 or TF32 (TPU, GPU): the weights are
    split into bytes, each exact in 8 bits, whose float32 sums stay under
    2^24, and the bytes' sums are combined in int32."""
    K = backend.ops()
    weights = np.asarray(weights, "int64")
    columns = [weights % 256, weights // 256] if weights.max() > 255 else [weights]
    if max(c.sum() for c in columns) >= 2**24 or weights.max() >= 2**16:
        raise ValueError(
            f"FMix cannot count masks of {weights.size} cells of up to "
            f"{weights.max()} pixels exactly: pass smaller images."
        )
    splits = K.convert_to_tensor(np.stack(columns, 1).astype("float32"))  # (N, 1 or 2)

    def count(hits):
        counts = K.cast(K.matmul(K.cast(hits, "float32"), splits), "int32")
        return counts[:, 0] + 256 * counts[:, 1] if len(columns) > 1 else counts[:, 0]

    return count


def _kth_largest(keys, k, count, bits=_ORDER_BITS):
    """The ``k[b]``-th largest of each row of the int32 ``keys`` ``(B, N)``
    (in ``[0, 2^bits)``; ``k >= 1``, rows with ``k = 0`` get ``2^bits − 1``),
    each key counted as `_weighted_count`'s ``count`` weighs it: ``bits``
    passes of a count, deciding the answer's bits from the top — an exact
    selection without sorting the row."""
    K = backend.ops()
    k = K.cast(k, "int32")
    t = K.zeros_like(keys[:, 0])
    for bit in range(bits - 1, -1, -1):
        candidate = K.bitwise_or(t, 1 << bit)
        t = K.where(count(keys >= K.expand_dims(candidate, 1)) >= k, candidate, t)
    return t


def _exclusive_prefix(values, largest):
    """The sums of each row of the int32 ``values`` ``(B, N)`` (each at
    most ``largest``) before each position (exclusive), as two matrix
    products with triangular matrices (a row cut into ``r × c`` blocks);
    values over a byte are summed a byte at a time, so that products run
    in bfloat16 (TPU) stay exact."""
    K = backend.ops()
    if largest > 255:
        low = _exclusive_prefix(K.bitwise_and(values, 255), 255)
        return low + 256 * _exclusive_prefix(K.right_shift(values, 8), largest // 256)
    n = int(values.shape[1])
    c = int(np.ceil(np.sqrt(n)))
    r = -(-n // c)
    x = K.cast(values, "float32")
    if r * c > n:
        x = K.concat([x, K.zeros_like(x[:, : r * c - n])], axis=1)
    strictly = lambda m: K.convert_to_tensor(np.triu(np.ones((m, m), "float32"), 1))  # noqa: E731
    within = K.reshape(K.matmul(K.reshape(x, [-1, c]), strictly(c)), [-1, r, c])
    before = K.matmul(K.reduce_sum(K.reshape(x, [-1, r, c]), axis=2), strictly(r))
    out = K.reshape(within + K.expand_dims(before, 2), [-1, r * c])
    return K.cast(out[:, :n], "int32")


def _kept_cells(field, keep, pixels):
    """How many pixels of each cell the mask keeps, int32 ``(B, N)``, for
    the float ``field`` ``(B, N)`` over ``N`` cells of ``pixels`` (an int
    NumPy array, ``(N,)``) and the pixels to keep ``keep`` ``(B,)``: the
    cells are ranked by their value (`_order_keys`); those above the cut
    are kept whole and the cut's cell keeps what is still needed, so the
    counts add up to ``keep`` exactly.

    Cells whose keys tie at the cut are filled in raster order (a prefix
    sum over the row, computed only when some row of the batch has a tie:
    about one batch of 64 in 16 at 224 px)."""
    K = backend.ops()
    count = _weighted_count(pixels)
    size = K.convert_to_tensor(np.asarray(pixels, "int32"))
    keys = _order_keys(field)
    cut = K.expand_dims(_kth_largest(keys, keep, count), 1)
    above, at = keys > cut, keys == cut
    need = K.expand_dims(K.cast(keep, "int32") - count(above), 1)  # the cut's pixels
    tied = K.where(at, size, 0)
    ties = K.reduce_max(K.reduce_sum(K.cast(at, "int32"), axis=1)) > 1
    give = K.cond(
        ties,
        lambda: K.clip(need - _exclusive_prefix(tied, int(np.max(pixels))), 0, size),
        lambda: K.minimum(need, tied),
    )
    return K.where(above, size, K.where(at, give, 0))


@keras.saving.register_keras_serializable(package="keras_mixup")
class FMix(MaskedMixing):
    """FMix: mixes by a mask cut from low-frequency Fourier noise.

    For each example, Gaussian noise is filtered in frequency space by
    ``1 / f^decay_power`` and brought back to the image grid (a smooth
    random field); the ``round(λ·N)`` highest of its ``N`` positions keep
    the example's own values and the rest come from the partner, so a
    mask's regions are blobs of any shape rather than one box (Harris et
    al., "FMix: Enhancing Mixed Sample Data Augmentation", 2020). The label
    weight is the kept fraction, counted from the mask. With ``max_soft >
    0`` the positions ranked around the cut get intermediate weights (a
    soft edge ``2·min(max_soft, λ, 1 − λ)·N`` positions wide).

    Images ``(B, H, W, C)`` and sequences ``(B, T, D)``; one mask for all
    channels. Only the low frequencies that carry all but 1e-4 of the
    noise's power are drawn (15 × 15 at ``decay_power=3``, whatever the
    size), and summed by small matrix products rather than an FFT of
    image-sized noise. From 128 px up the binary mask is drawn on cells of
    ``min(H, W) // 64`` pixels a side (3×3 at 224), with the cell at the
    cut partly kept so that the count stays exact, when the frequencies
    finer than a cell carry under 0.1% of the noise's power
    (``decay_power`` of about 2 or more; 1e-7 at 3). The binary mask ranks
    positions by their value to ``2^-23`` of the example's range (values
    closer than that tie, and ties at the cut are kept in raster order).
    Values are copied (``uint8`` stays exact) unless ``max_soft > 0``.
    Segmentation masks are cut with the same mask.

    Args:
        alpha, beta: Beta concentrations of λ (``beta`` defaults to
            ``alpha``; 1.0: uniform).
        decay_power: how fast high frequencies are damped (> 0; 3.0 in the
            paper): larger values give fewer, rounder blobs.
        max_soft: soft-edge width in [0, 0.5] (0: a binary mask).
        per_sample, data_format, num_classes, label_smoothing, seed,
            pairing, neighbors, mix, pairing_scope, jit_compile: as for
            `CutMix`.

    Example:

    >>> images = np.random.rand(4, 16, 16, 3).astype("float32")
    >>> fmix = keras_mixup.layers.FMix(num_classes=4, seed=0)
    >>> mixed, soft = fmix(images, np.arange(4))
    >>> mixed.shape, soft.shape
    (TensorShape([4, 16, 16, 3]), TensorShape([4, 4]))
    """

    _ranks = (3, 4)

    def __init__(self, alpha=1.0, beta=None, decay_power=3.0, max_soft=0.0, **kwargs):
        super().__init__(alpha=alpha, beta=beta, **kwargs)
        for name, value, ok, what in (
            ("decay_power", decay_power, lambda v: v > 0, "a number > 0 (3.0 in the paper)"),
            ("max_soft", max_soft, lambda v: 0 <= v <= 0.5, "a number in [0, 0.5]"),
        ):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
                raise ValueError(f"`{name}` must be {what}; got {value!r}.")
        self.decay_power = float(decay_power)
        self.max_soft = float(max_soft)
        if self.max_soft > 0 and self.compute_dtype == "uint8":
            raise ValueError(
                "FMix(max_soft > 0) blends values at the mask's edge, which "
                "uint8 cannot hold; use max_soft=0 to keep uint8."
            )

    @property
    def _binary_mask(self):
        return self.max_soft == 0

    def get_config(self):
        config = super().get_config()
        config.update({"decay_power": self.decay_power, "max_soft": self.max_soft})
        return config

    def _check_segmentation_masks(self, masks, images):
        from keras_mixup.layers import inputs as boundary

        if self.max_soft > 0:
            raise ValueError(
                "FMix(max_soft > 0) blends at the mask's edge; segmentation "
                "masks need a binary mask (max_soft=0)."
            )
        masks = backend.ops().convert_to_tensor(masks)
        return boundary.check_mask_shape("FMix", masks, images, self.data_format)

    def _mask(self, inputs, lam, seed):
        K = backend.ops()
        rank = backend.rank(inputs)
        sizes = [backend.dim(inputs, a) for a in self._spatial_axes(rank)]
        batch = backend.dim(inputs, 0)
        shape = [batch, *sizes, 1] if self.data_format == "channels_last" else [batch, 1, *sizes]
        f = block_factor(*sizes) if len(sizes) == 2 else 1
        if f > 1 and self.max_soft == 0 and _finer_power(sizes, f, self.decay_power) < 1e-3:
            mask, kept = _block_mask(sizes, f, batch, lam, seed, self.decay_power)
            return K.reshape(mask, shape), kept
        grid = list(sizes) + [1] * (2 - len(sizes))
        field = fourier_field(grid, batch, seed, self.decay_power)  # (B, *grid)
        n = grid[0] * grid[1]
        flat = K.reshape(field, [batch, n])
        keep = K.cast(K.round(lam * float(n)), "int32")  # (B,)
        if self.max_soft == 0:
            kept = _kept_cells(flat, keep, np.ones(n, "int32"))
            fraction = K.cast(K.reduce_sum(kept, axis=1), "float32") / float(n)
            return K.reshape(K.cast(kept, "float32"), shape), fraction
        else:
            order = K.top_k(flat, n)  # positions, highest first
            # Each position's rank (the inverse of `order`), then a linear
            # ramp of width 2·soft ranks centred on the cut.
            rank_of = K.top_k(-K.cast(order, "float32"), n)
            soft = K.minimum(K.minimum(K.cast(lam, "float32"), 1.0 - lam), self.max_soft)
            half = K.maximum(K.floor(soft * float(n)), 0.0)
            r = K.cast(rank_of, "float32") + 0.5
            k = K.expand_dims(K.cast(keep, "float32"), 1)
            h = K.expand_dims(half, 1)
            ramp = K.clip((k + h - r) / K.maximum(2.0 * h, 1.0), 0.0, 1.0)
            mask = K.where(h > 0, ramp, K.cast(r < k, "float32"))
        return K.reshape(mask, shape)


# Frequencies left out of a truncated field carry under this share of the
# noise's power.
_TAIL = 1e-4


def _band_limit(grid, decay_power):
    """The smallest ``m`` such that the frequencies with an index above
    ``m`` on either axis carry under `_TAIL` of the power of FMix's noise
    on ``grid`` (7 at ``decay_power=3``, whatever the grid), or None when
    that leaves out too little to pay (under half of each long axis)."""
    power = fourier_scale(grid, decay_power).astype("float64") ** 2
    ky, kx = (np.abs(np.round(np.fft.fftfreq(n) * n)) for n in grid)
    total = power.sum()
    for m in range(1, max(grid) // 4 + 1):
        inside = (ky[:, None] <= m) & (kx[None, :] <= m)
        if power[~inside].sum() < _TAIL * total:
            return m
    return None


def _waves(n, m):
    """cos and sin of ``2π·k·i/n`` for positions ``i < n`` and the
    frequencies ``k`` of ``fftfreq(n)`` with ``|k| <= m``: ``(n, K)`` each,
    and those frequencies' indices into the DFT grid."""
    k = np.round(np.fft.fftfreq(n) * n).astype("int64")
    index = np.flatnonzero(np.abs(k) <= m)
    angle = 2.0 * np.pi * np.outer(np.arange(n), k[index]) / n
    return np.cos(angle).astype("float32"), np.sin(angle).astype("float32"), index


def fourier_field(grid, batch, seed, decay_power):
    """FMix's random field on ``grid`` (two axes; ``[T, 1]`` for a
    sequence), ``(B, *grid)``: the real part of the DFT of complex Gaussian
    noise scaled by `fourier_scale`. When a few low frequencies carry all
    but `_TAIL` of the power (`_band_limit`), only those are drawn and
    summed, by two small matrix products per axis instead of an FFT over
    noise the size of the grid (at 224 px and ``decay_power=3``: 15 × 15
    frequencies instead of 224 × 224)."""
    K = backend.ops()
    m = _band_limit(grid, decay_power)
    scale = fourier_scale(grid, decay_power)
    if m is None:
        re, im = hash_normal_pair([batch, *grid], seed)
        scale = K.convert_to_tensor(scale)
        return K.fft2_real(re * scale, im * scale)
    cy, sy, iy = _waves(grid[0], m)
    cx, sx, ix = _waves(grid[1], m)
    ky, kx = len(iy), len(ix)
    # Re[(cy + i·sy) (re + i·im) (cx + i·sx)ᵀ] for each example (the sign
    # of the exponent is immaterial for noise symmetric in distribution),
    # as two single matrix products with the batch folded in: the noise is
    # drawn as [re; im] (2·Ky, B·Kx), and
    #   [rows_re; rows_im] = [[cy, −sy], [sy, cy]] · [re; im],
    #   field = [rows_re, rows_im] · [cx, −sx]ᵀ.
    scale = scale[np.ix_(iy, ix)][:, None, :]  # (Ky, 1, Kx)
    noise = K.stack(hash_normal_pair([ky, batch, kx], seed)) * K.convert_to_tensor(scale)
    left = np.block([[cy, -sy], [sy, cy]])  # (2·Gy, 2·Ky)
    rows = K.matmul(K.convert_to_tensor(left), K.reshape(noise, [2 * ky, -1]))
    rows = K.transpose(K.reshape(rows, [2, grid[0], batch, kx]), [2, 1, 0, 3])
    right = np.concatenate([cx.T, -sx.T], axis=0)  # (2·Kx, Gx)
    field = K.matmul(K.reshape(rows, [-1, 2 * kx]), K.convert_to_tensor(right))
    return K.reshape(field, [batch, grid[0], grid[1]])


def _finer_power(sizes, f, decay_power):
    """The share of the noise's power in frequencies finer than cells of
    ``f`` pixels (what a field drawn on the cells leaves out): about 1e-7
    for ``decay_power=3`` at 224 px, 1e-2 for 1.5, 0.2 for 1."""
    power = fourier_scale(sizes, decay_power).astype("float64") ** 2
    fy, fx = (np.abs(np.fft.fftfreq(n)) for n in sizes)
    coarse = (fy[:, None] < 0.5 / f) & (fx[None, :] < 0.5 / f)
    return float(power[~coarse].sum() / power.sum())


def _cells(size, f):
    """Pixels per cell along an axis of ``size`` cut into cells of ``f``
    (the last one shorter when ``f`` does not divide ``size``)."""
    count = -(-size // f)
    return np.array([f] * (count - 1) + [size - f * (count - 1)], "int32")


def _block_mask(sizes, f, batch, lam, seed, decay_power):
    """FMix's binary mask for large images, ``(B, H·W)``, and its kept
    fraction ``(B,)``: the Fourier field
    is drawn on a grid of ``f × f`` cells (the same ``1/f^d`` law, without
    the frequencies finer than a cell: see `_finer_power`), the cells are
    ranked by their value, and the highest cells are
    kept, their pixels counted, until ``round(λ·H·W)`` pixels are; the cell
    at the cut keeps the first pixels it needs in raster order. The kept
    fraction stays exact to the pixel, at ``1/f²`` of the work of a field
    and a selection over every pixel."""
    K = backend.ops()
    height, width = sizes
    rows, cols = _cells(height, f), _cells(width, f)
    grid = [len(rows), len(cols)]
    field = fourier_field(grid, batch, seed, decay_power)
    keep = K.cast(K.round(lam * float(height * width)), "int32")  # (B,)
    pixels = (rows[:, None] * cols[None, :]).reshape(-1)
    kept = _kept_cells(K.reshape(field, [batch, grid[0] * grid[1]]), keep, pixels)
    # Each pixel reads its cell's kept count (the cells repeated f × f
    # times, cropped) and is kept when its raster rank inside the cell
    # (static) is below it.
    per_pixel = K.broadcast_to(
        K.reshape(kept, [batch, grid[0], 1, grid[1], 1]), [batch, grid[0], f, grid[1], f]
    )
    per_pixel = K.reshape(per_pixel, [batch, grid[0] * f, grid[1] * f])[:, :height, :width]
    i, j = np.arange(height)[:, None], np.arange(width)[None, :]
    inside = ((i % f) * cols[j // f] + j % f).astype("int32")
    mask = K.cast(K.expand_dims(K.convert_to_tensor(inside), 0) < per_pixel, "float32")
    # The kept fraction, counted on the cells: the mask's own count,
    # without a pass over its pixels.
    count = K.reduce_sum(kept, axis=1)
    return K.reshape(mask, [batch, height * width]), K.cast(count, "float32") / float(height * width)
