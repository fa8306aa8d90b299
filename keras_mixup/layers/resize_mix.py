"""ResizeMix (Qin et al., 2020): the whole partner, shrunk, pasted in a box."""

import numbers

import keras
import numpy as np

from keras_mixup import backend
from keras_mixup.layers.cut_mix import CutMix
from keras_mixup.ops import saliency as sal_ops
from keras_mixup.ops.random import fold_seed, uniform


def _check_scale(scale):
    ok = (
        isinstance(scale, (tuple, list))
        and len(scale) == 2
        and all(isinstance(s, numbers.Real) and not isinstance(s, bool) for s in scale)
        and 0 < scale[0] <= scale[1] <= 1
    )
    if not ok:
        raise ValueError(
            "`scale` must be (low, high) with 0 < low <= high <= 1: the range "
            f"of the pasted image's side, as a fraction of the image's; got {scale!r}."
        )
    return (float(scale[0]), float(scale[1]))


@keras.saving.register_keras_serializable(package="keras_mixup")
class ResizeMix(CutMix):
    """ResizeMix: pastes the partner image, resized, into a random box.

    Each example gets a box of sides ``τ·H × τ·W`` (rounded, at least one
    pixel) at a uniform position, with ``τ`` uniform in ``scale``; the
    partner image is resized to the box (bilinear, as ``tf.image.resize``;
    integer segmentation masks by nearest neighbour) and pasted in, so the
    whole partner object is kept, only smaller (Qin et al., "ResizeMix:
    Mixing Data with Preserved Object Information and True Labels", 2020).
    The label weight of the partner is the pasted area fraction, exact.

    Images ``(B, H, W, C)`` (either data format) and sequences ``(B, T,
    D)``: a segment of ``τ·T`` steps holds the whole partner sequence,
    linearly resampled (the partner's label weight ``τ``). ``uint8`` images
    stay ``uint8`` with ``dtype="uint8"`` (resized values rounded).

    Args:
        scale: ``(low, high)`` range of ``τ`` in (0, 1] (the paper's
            ``(0.1, 0.8)``).
        placement: ``"random"`` (uniform position) or ``"saliency"``: the
            position where the pasted image covers the least of the
            example's own saliency (its spectral residual in a ``tf.data``
            map; the loss gradient as the ``mixer`` of a `MixupModel`).
        label_weight: ``"area"`` (exact pasted fraction) or ``"saliency"``
            (``λ = k / (k + 1)``, ``k`` the share of its own saliency the
            example keeps: the partner is pasted whole).
        per_sample, data_format, num_classes, label_smoothing, seed,
            pairing, neighbors, mix, pairing_scope, jit_compile,
            bounding_box_format, min_visibility: as for `CutMix`.

    Example:

    >>> images = np.random.rand(4, 16, 16, 3).astype("float32")
    >>> resize_mix = keras_mixup.layers.ResizeMix(num_classes=4, seed=0)
    >>> mixed, soft = resize_mix(images, np.arange(4))
    >>> mixed.shape, soft.shape
    (TensorShape([4, 16, 16, 3]), TensorShape([4, 4]))
    """

    # The partner is resampled, not read at the same positions.
    _fused = False
    _resamples = True

    def __init__(self, scale=(0.1, 0.8), **kwargs):
        super().__init__(**kwargs)
        self.scale = _check_scale(scale)

    def get_config(self):
        config = super().get_config()
        for key in ("alpha", "beta"):
            config.pop(key, None)
        config["scale"] = list(self.scale)
        return config

    # Spatial axes of the inputs last seen (2: images, 1: sequences), for
    # `expected_partner_weight`, which MixupE asks after the mixing pass.
    _spatial_rank = 2

    def _check_inputs(self, inputs):
        super()._check_inputs(inputs)
        self._spatial_rank = backend.rank(inputs) - 2

    def expected_partner_weight(self):
        # λ = 1 − τᵈ with τ ~ U(a, b) and d spatial axes; weighted by
        # itself (MixupE): E[λ(1 − λ)] / E[λ] = (E τᵈ − E τ²ᵈ) / (1 − E τᵈ).
        a, b = self.scale
        d = self._spatial_rank

        def moment(k):  # E τᵏ
            if b - a < 1e-9:
                return a**k
            return (b ** (k + 1) - a ** (k + 1)) / ((k + 1) * (b - a))

        t, t2 = moment(d), moment(2 * d)
        return self._state("enabled") * float((t - t2) / (1 - t))

    def _sample_parts(self, inputs, seed, context=None):
        """Boxes as CutMix's ``"bounds"`` (4, N), sides ``τ·H × τ·W`` (a
        segment ``(2, N)`` of ``τ·T`` steps for sequences)."""
        K = backend.ops()
        batch = backend.dim(inputs, 0)
        n = batch if self.per_sample else 1
        sizes = self._sizes(inputs)
        low, high = self.scale
        tau = low + (high - low) * uniform([n], fold_seed(seed, 1))
        sides = []
        for size in sizes:
            side = K.cast(K.round(tau * K.cast(size, "float32")), "int32")
            sides.append(K.clip(side, 1, size))
        area, total = sides[0], sizes[0]
        for side, size in zip(sides[1:], sizes[1:]):
            area, total = area * side, total * size
        kept = 1.0 - K.cast(area, "float32") / float(total)
        if self.placement == "saliency":
            # Where the shrunk partner covers the least of the example's
            # own saliency.
            sides = [K.broadcast_to(side, [batch]) for side in sides]
            saliency, f = self._saliency(inputs, (context or {}).get("saliency"))
            y, x, hb, wb = self._least_covered(saliency, f, sides[0], sides[1], inputs)
            starts = [y, x]
            kept = K.broadcast_to(kept, [batch])
            if self.label_weight == "saliency":
                own = 1.0 - sal_ops.mass_in(saliency, y // f, x // f, hb, wb)
                kept = K.divide_no_nan(own, own + 1.0)  # the whole partner pasted
        else:
            u = uniform([2, n], fold_seed(seed, 3))
            starts = [
                K.cast(K.floor(u[i] * K.cast(size - side + 1, "float32")), "int32")
                for i, (size, side) in enumerate(zip(sizes, sides))
            ]
        bounds = K.stack(starts + [start + side for start, side in zip(starts, sides)])
        return self._cut_plan(inputs, seed, context, kept, bounds)

    def _full_plan(self, plan, inputs):
        if "bounds" not in plan:
            return plan
        boxes = plan["bounds"]
        plan = super()._full_plan(plan, inputs)
        plan["paste"] = boxes  # where, and how large, the partner goes
        return plan

    def _sample_plan_parts(self, inputs, context=None):
        # Where each output position reads its partner (`_source_taps`) is
        # computed with the plan, not in the XLA program that applies it:
        # there XLA fused it into the blend's loop and computed it again for
        # every value (ResizeMix took 10% longer).
        parts = super()._sample_plan_parts(inputs, context)
        if "bounds" in parts:
            parts["taps"] = _source_taps(parts["bounds"], self._sizes(inputs))
        return parts

    def _partner_view(self, t, plan, nearest=False):
        return self._warp(t, plan, nearest=nearest)

    def _warp(self, t, plan, nearest=False):
        """The partner of each example (``t[index]``) resized into its box:
        ``t``'s shape, meaningful inside the box only. Half-pixel centres,
        as ``tf.image.resize`` (bilinear without antialiasing, or nearest).

        Each output position reads its 2ᵏ source positions (one with
        ``nearest``) straight from ``t``, one flat gather per corner: whole
        pixels (the channels a contiguous slice) for channels-last images
        and sequences. On XLA:CPU that ran ResizeMix 8–18% faster than
        resampling one axis at a time, whose gathers XLA fused into one
        loop that computed every tap's source index per value."""
        K = backend.ops()
        rank = backend.rank(t)
        k = plan["paste"].shape[0] // 2  # spatial axes: 2 images, 1 sequences
        # A tensor without the channel axis (a segmentation map) has its
        # spatial axes right after the batch axis.
        channels_last = self.data_format == "channels_last" or rank == k + 1
        first = 1 if channels_last else 2
        sizes = [backend.dim(t, a) for a in range(first, first + k)]
        trail = [backend.dim(t, a) for a in range(first + k, rank)]
        # ``t`` as rows of its trailing axes, (B·L·S, *trail): L channels
        # before the spatial axes (channels-first), S spatial positions.
        # Row indices have t's shape less the trailing axes.
        lead = 1 if channels_last else backend.dim(t, 1)
        area = int(np.prod(sizes))
        rows = K.reshape(t, [-1] + trail)
        n = rank - len(trail)

        def view(v, axis, values=False):  # (B, sizes[axis]) along its axis
            shape = [-1] + [1] * (n - 1) + ([1] * len(trail) if values else [])
            shape[first + axis] = sizes[axis]
            return K.reshape(v, shape)

        row = K.reshape(K.cast(plan["index"], "int32") * (lead * area), [-1] + [1] * (n - 1))
        if not channels_last:
            row = row + K.reshape(K.range(lead, dtype="int32") * area, [1, lead] + [1] * k)
        taps = None if nearest else plan.get("taps")
        if taps is None or [tap[0].shape[-1] for tap in taps] != sizes:
            taps = _source_taps(plan["paste"], sizes, nearest)
        if nearest:
            return K.gather(rows, row + sum(view(tap[0], axis) for axis, tap in enumerate(taps)))
        # Every corner (a tap on each axis), then lerped one axis at a
        # time, the first spatial axis first.
        corners = {(): row}
        for axis, (lo, hi, _) in enumerate(taps):
            corners = {
                key + (j,): idx + view(tap, axis)
                for key, idx in corners.items()
                for j, tap in enumerate((lo, hi))
            }
        values = {key: K.cast(K.gather(rows, idx), "float32") for key, idx in corners.items()}
        for axis, (_, _, lerp) in enumerate(taps):
            lerp = view(lerp, axis, values=True)
            values = {
                key[1:]: values[key] + (values[(1,) + key[1:]] - values[key]) * lerp
                for key in values
                if key[0] == 0
            }
        partner = values[()]
        dtype = backend.dtype_name(t)
        if keras.backend.is_float_dtype(dtype):
            return K.cast(partner, dtype)
        return K.cast(K.clip(K.round(partner), 0, 255 if dtype == "uint8" else 2**31 - 1), dtype)


def _source_taps(bounds, sizes, nearest=False):
    """Where each output position of ResizeMix's boxes ``bounds`` ``(2k,
    N)`` reads the partner, per spatial axis of ``sizes``: ``(lo, hi,
    lerp)``, ``(N, size)`` each — the two source positions, as offsets into
    the flattened spatial axes, and the weight of ``hi`` (bilinear with
    half-pixel centres); ``(index,)`` with ``nearest``."""
    K = backend.ops()
    k = len(sizes)
    taps = []
    for axis, (start, end) in enumerate(zip(K.unstack(bounds[:k]), K.unstack(bounds[k:]))):
        size = sizes[axis]
        stride = int(np.prod(sizes[axis + 1:]))
        side = K.cast(K.maximum(end - start, 1), "float32")
        out = K.cast(K.expand_dims(K.range(size, dtype="int32"), 0) - K.expand_dims(start, 1), "float32")
        src = (out + 0.5) * K.expand_dims(float(size) / side, 1)
        if nearest:
            taps.append((K.clip(K.cast(K.floor(src), "int32"), 0, size - 1) * stride,))
            continue
        src = src - 0.5
        low = K.floor(src)
        lo = K.clip(K.cast(low, "int32"), 0, size - 1)
        hi = K.clip(K.cast(K.ceil(src), "int32"), 0, size - 1)
        taps.append((lo * stride, hi * stride, src - low))
    return tuple(taps)
