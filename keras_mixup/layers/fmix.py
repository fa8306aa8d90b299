"""FMix (Harris et al., 2020): masks from low-frequency Fourier noise."""

import numbers

import keras
import numpy as np

from keras_mixup import backend
from keras_mixup.layers.masked import MaskedMixing
from keras_mixup.ops.random import hash_normal


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


def key_of(x):
    """int32 keys in the order of the float32 values ``x`` (the sign-
    magnitude bits of a negative float turned around)."""
    K = backend.ops()
    bits = K.float_bits(x)
    return K.where(bits < 0, K.bitwise_xor(bits, 0x7FFFFFFF), bits)


def _kth_largest(keys, k):
    """The ``k[b]``-th largest of each row of int32 ``keys`` ``(B, N)``
    (``k >= 1``; rows with ``k = 0`` get an arbitrary value): 32 passes of
    a count, deciding the answer's bits from the sign down — an exact
    selection without sorting the row."""
    K = backend.ops()
    k = K.expand_dims(k, 1)

    def at_least(t):
        return K.reduce_sum(K.cast(keys >= K.expand_dims(t, 1), "int32"), axis=1, keepdims=True) >= k

    zeros = K.zeros_like(k[:, 0])
    t = K.where(at_least(zeros)[:, 0], zeros, zeros + (-(2**31)))
    for bit in range(30, -1, -1):
        candidate = K.bitwise_or(t, 1 << bit)
        t = K.where(at_least(candidate)[:, 0], candidate, t)
    return t


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
    channels. Values are copied (``uint8`` stays exact) unless
    ``max_soft > 0``. Segmentation masks are cut with the same mask.

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
        grid = list(sizes) + [1] * (2 - len(sizes))
        scale = K.convert_to_tensor(fourier_scale(sizes, self.decay_power))
        noise = hash_normal([2, batch, *grid], seed)
        field = K.fft2_real(noise[0] * scale, noise[1] * scale)  # (B, *grid)
        n = grid[0] * grid[1]
        flat = K.reshape(field, [batch, n])
        keep = K.cast(K.round(lam * float(n)), "int32")  # (B,)
        if self.max_soft == 0:
            cut = _kth_largest(key_of(flat), keep)
            mask = K.cast((key_of(flat) >= K.expand_dims(cut, 1)) & K.expand_dims(keep > 0, 1), "float32")
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
        shape = [batch, *sizes, 1] if self.data_format == "channels_last" else [batch, 1, *sizes]
        return K.reshape(mask, shape)
