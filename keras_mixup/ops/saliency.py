"""Saliency maps and where a box goes by them (saliency-guided CutMix).

Two sources of saliency, one use:

- `spectral_residual` (Hou & Zhang, CVPR 2007), computed from the image
  alone, so it runs in a ``tf.data`` map: the log-amplitude spectrum minus
  its local average, transformed back with the original phase. SaliencyMix
  (Uddin et al., ICLR 2021) centres the pasted box on its peak.
- the input gradient of the loss, ``|∂L/∂x|`` summed over channels
  (PuzzleMix's signal; Kim et al., ICML 2020), computed by `MixupModel`'s
  train step and smoothed here with the same filter.

Both are computed on a grid of ``f × f``-pixel blocks (`block_factor`:
about 64 blocks a side, one pixel per block up to 127 px) and give a
non-negative map ``(B, H // f, W // f)`` summing to 1. `peak` finds the
most salient block, `box_sums` the saliency under every placement of a box
(through an integral image), so a box can be placed where it covers the
least of it. Backend-neutral; compiles with XLA.
"""

import numpy as np

from keras_mixup import backend


def _band(n, radius):
    """``(n, n)`` float32: row ``i`` averages entries ``|i - j| <= radius``
    (a NumPy constant for a static ``n``)."""
    if isinstance(n, int):
        pos = np.arange(n)
        near = (np.abs(pos[:, None] - pos[None, :]) <= radius).astype("float64")
        return near / near.sum(axis=1, keepdims=True)
    K = backend.ops()
    pos = K.range(n, dtype="int32")
    near = K.cast(K.abs(K.expand_dims(pos, 1) - K.expand_dims(pos, 0)) <= radius, "float32")
    return near / K.reduce_sum(near, axis=1, keepdims=True)


def _transposed(m):
    if isinstance(m, np.ndarray):
        return m.T.astype("float32")
    return backend.ops().transpose(m)


def _filter(x, rows, cols):
    """``rows · x[b] · colsᵀ`` for each ``(H, W)`` map of ``x`` ``(B, H, W)``
    (``None``: that axis as it is): two matrix products with the batch
    folded into their rows (one large product each, where a batch of small
    ones ran several times slower on CPU)."""
    K = backend.ops()
    height, width = backend.dim(x, 1), backend.dim(x, 2)
    if cols is not None:
        x = K.matmul(K.reshape(x, [-1, width]), _transposed(cols))
        width = backend.dim(cols, 0)
        x = K.reshape(x, [-1, height, width])
    if rows is None:
        return x
    x = K.reshape(K.transpose(x, [0, 2, 1]), [-1, height])
    x = K.reshape(K.matmul(x, _transposed(rows)), [-1, width, backend.dim(rows, 0)])
    return K.transpose(x, [0, 2, 1])


def box_filter(x, radius):
    """Mean over a ``(2r + 1) × (2r + 1)`` window of ``(B, H, W)`` maps
    (windows cut at the edges), as two matrix products."""
    return _filter(x, _band(backend.dim(x, 1), radius), _band(backend.dim(x, 2), radius))


def smoothing_radius(height, width):
    """The radius of the smoothing box: 1/16 of the shorter side, twice
    (about a Gaussian of σ ≈ side / 23)."""
    return max(1, round(min(height, width) / 16))


def smooth(x):
    """Two passes of `box_filter` at `smoothing_radius`: for static sizes,
    one product per axis with the band matrix squared."""
    height, width = backend.dim(x, 1), backend.dim(x, 2)
    r = smoothing_radius(height, width)
    rows, cols = _band(height, r), _band(width, r)
    if isinstance(rows, np.ndarray) and isinstance(cols, np.ndarray):
        return _filter(x, rows @ rows, cols @ cols)
    return box_filter(box_filter(x, r), r)


# Saliency is computed on a grid of blocks about this many a side (OpenCV's
# spectral residual resizes to 64x64 too): at 224x224, 3x3-pixel blocks,
# so the FFTs, filters and box search cost a ninth or less, and a box is
# placed to within a block.
WORK_SIDE = 64


def block_factor(height, width):
    """The side ``f`` of the square blocks saliency is computed on for
    ``height × width`` inputs: ``max(1, min(H, W) // WORK_SIDE)``."""
    if not isinstance(height, int) or not isinstance(width, int):
        return 1
    return max(1, min(height, width) // WORK_SIDE)


def block_sums(x, f, data_format="channels_last"):
    """``(B, H // f, W // f)``: sums of images ``(B, H, W, C)`` (or
    channels first) over ``f × f`` blocks and the channels, in one pass (a
    last partial block dropped); ``(B, H, W)`` maps are taken as well."""
    K = backend.ops()
    x = K.cast(x, "float32")
    rank = backend.rank(x)
    if rank == 4 and data_format != "channels_last":
        x = K.transpose(x, [0, 2, 3, 1])
    if rank == 3:
        x = K.expand_dims(x, 3)
    h, w = backend.dim(x, 1) // f, backend.dim(x, 2) // f
    if f == 1:
        return K.reduce_sum(x, axis=3)
    x = x[:, : h * f, : w * f]
    return K.reduce_sum(K.reshape(x, [-1, h, f, w, f, backend.dim(x, 3)]), axis=[2, 4, 5])


# The spectral residual is computed on at most this many points a side
# (OpenCV's StaticSaliencySpectralResidual, which SaliencyMix used, works
# at 64 × 64): a larger map is averaged down to it and the saliency
# interpolated back. FFTs of sides like 74 (= 2 · 37) also cost 4× those
# of 64 on CPU.
SPECTRAL_SIDE = 64


def _area_matrix(n, m):
    """``(m, n)``: each of ``m`` equal spans of ``n`` cells, the average of
    the cells it overlaps (weighted by the overlap)."""
    edges = np.arange(m + 1) * (n / m)
    j = np.arange(n)[None, :]
    overlap = np.clip(np.minimum(edges[1:, None], j + 1) - np.maximum(edges[:-1, None], j), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _linear_matrix(m, n):
    """``(n, m)``: linear interpolation of ``m`` cells at ``n`` points
    (half-cell centres, clamped at the ends)."""
    src = np.clip((np.arange(n) + 0.5) * (m / n) - 0.5, 0, m - 1)
    lo = np.floor(src).astype("int64")
    hi = np.minimum(lo + 1, m - 1)
    out = np.zeros((n, m))
    np.add.at(out, (np.arange(n), lo), 1 - (src - lo))
    np.add.at(out, (np.arange(n), hi), src - lo)
    return out


def _work_side(n):
    return isinstance(n, int) and n > SPECTRAL_SIDE


def spectral_residual(gray):
    """Spectral-residual saliency of ``(B, H, W)`` maps (grayscale images,
    or their `block_sums`), float32 of the same shape, >= 0, smoothed
    (`smooth`), each map summing to 1. Sides over `SPECTRAL_SIDE` are
    averaged down to it first and the map interpolated back."""
    K = backend.ops()
    gray = K.cast(gray, "float32")
    height, width = backend.dim(gray, 1), backend.dim(gray, 2)
    down = [_area_matrix(n, SPECTRAL_SIDE) if _work_side(n) else None for n in (height, width)]
    if any(m is not None for m in down):
        saliency = _spectral_residual(_filter(gray, *down))
        up = [_linear_matrix(SPECTRAL_SIDE, n) if _work_side(n) else None for n in (height, width)]
        return normalized(_filter(saliency, *up))
    return normalized(_spectral_residual(gray))


def _spectral_residual(gray):
    """`spectral_residual` at the size of ``gray``, smoothed, not normalized."""
    K = backend.ops()
    re, im = K.fft2(gray, K.zeros_like(gray))
    amplitude = K.sqrt(re * re + im * im) + 1e-8
    log_amp = K.log(amplitude)
    residual = log_amp - box_filter(log_amp, 1)
    # exp(residual + i·phase) = exp(residual) · (re + i·im) / amplitude.
    scale = K.exp(residual) / amplitude
    # The inverse DFT up to a constant: |fft(conj z)| = |ifft(z)|·HW.
    a, b = K.fft2(re * scale, -im * scale)
    return smooth(a * a + b * b)


def image_saliency(images, data_format="channels_last"):
    """Spectral-residual saliency of images on their block grid
    (`block_factor`): ``(B, H // f, W // f)``, each map summing to 1."""
    axes = (1, 2) if data_format == "channels_last" else (2, 3)
    f = block_factor(backend.dim(images, axes[0]), backend.dim(images, axes[1]))
    return spectral_residual(block_sums(images, f, data_format))


def gradient_saliency(gradient, data_format="channels_last"):
    """``|∂L/∂x|`` summed over channels and blocks (`block_factor`),
    smoothed, each map summing to 1: ``(B, H // f, W // f)``."""
    K = backend.ops()
    axes = (1, 2) if data_format == "channels_last" else (2, 3)
    f = block_factor(backend.dim(gradient, axes[0]), backend.dim(gradient, axes[1]))
    return normalized(smooth(block_sums(K.abs(gradient), f, data_format)))


def normalized(saliency):
    """Each map divided by its sum (a flat map where the sum is 0)."""
    K = backend.ops()
    total = K.reduce_sum(saliency, axis=[1, 2], keepdims=True)
    size = float(backend.dim(saliency, 1) * backend.dim(saliency, 2))
    return K.where(total > 0, K.divide_no_nan(saliency, total), 1.0 / size + 0.0 * saliency)


def peak(saliency):
    """Row and column (int32 ``(B,)``) of each map's maximum (the first in
    row-major order on ties)."""
    K = backend.ops()
    width = backend.dim(saliency, 2)
    flat = K.argmax(K.reshape(saliency, [K.batch_size(saliency), -1]), axis=1)
    return flat // width, flat % width


def origin_around(centre, side, length):
    """Start of a ``side``-long box centred on ``centre``, moved inside
    ``[0, length)`` (int32)."""
    K = backend.ops()
    return K.clip(centre - side // 2, 0, length - side)


def _integral(saliency):
    """``(B, H + 1, W + 1)``: sums over ``[0, y) × [0, x)``."""
    K = backend.ops()
    s = K.cumsum(K.cumsum(saliency, axis=1), axis=2)
    s = K.concat([K.zeros_like(s[:, :1]), s], 1)
    return K.concat([K.zeros_like(s[:, :, :1]), s], 2)


def box_sums(saliency, heights, widths):
    """The saliency under a ``heights[b] × widths[b]`` box at every top-left
    corner ``(y, x)``: float32 ``(B, H, W)``, ``+inf`` where the box would
    leave the image."""
    K = backend.ops()
    height, width = backend.dim(saliency, 1), backend.dim(saliency, 2)
    table = _integral(K.cast(saliency, "float32"))
    batch = K.batch_size(saliency)
    ys = K.broadcast_to(K.expand_dims(K.range(height, dtype="int32"), 0), [batch, height])
    xs = K.broadcast_to(K.expand_dims(K.range(width, dtype="int32"), 0), [batch, width])
    y_end = ys + K.expand_dims(heights, 1)
    x_end = xs + K.expand_dims(widths, 1)
    top = K.take_axis(table, ys, 1)
    bottom = K.take_axis(table, K.minimum(y_end, height), 1)
    total = (
        K.take_axis(bottom, K.minimum(x_end, width), 2) - K.take_axis(bottom, xs, 2)
        - K.take_axis(top, K.minimum(x_end, width), 2) + K.take_axis(top, xs, 2)
    )
    fits = K.expand_dims(y_end <= height, 2) & K.expand_dims(x_end <= width, 1)
    return K.where(fits, total, float("inf"))


def least_covering(saliency, heights, widths):
    """Top-left corner (int32 ``(B,)`` rows and columns) of the box that
    covers the least saliency (the first in row-major order on ties)."""
    K = backend.ops()
    width = backend.dim(saliency, 2)
    sums = box_sums(saliency, heights, widths)
    flat = K.argmax(-K.reshape(sums, [K.batch_size(saliency), -1]), axis=1)
    return flat // width, flat % width


def mass_in(saliency, y0, x0, heights, widths):
    """Saliency inside the box ``[y0, y0 + h) × [x0, x0 + w)``, ``(B,)``."""
    K = backend.ops()
    height, width = backend.dim(saliency, 1), backend.dim(saliency, 2)
    rows = K.range(height, dtype="int32")
    cols = K.range(width, dtype="int32")
    in_rows = K.cast(
        (rows >= K.expand_dims(y0, 1)) & (rows < K.expand_dims(y0 + heights, 1)), "float32"
    )
    in_cols = K.cast(
        (cols >= K.expand_dims(x0, 1)) & (cols < K.expand_dims(x0 + widths, 1)), "float32"
    )
    per_row = K.reduce_sum(saliency * K.expand_dims(in_cols, 1), axis=2)
    return K.reduce_sum(per_row * in_rows, axis=1)
