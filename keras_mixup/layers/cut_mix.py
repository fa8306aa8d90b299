"""CutMix (Yun et al., 2019) as a Keras layer, for images and sequences."""

import keras

from keras_mixup import backend
from keras_mixup.layers import inputs as boundary
from keras_mixup.layers.base import BaseMixingLayer
from keras_mixup.layers.masked import MaskedMixing
from keras_mixup.ops import saliency as sal_ops
from keras_mixup.ops.mixing import (
    _bounds_mask, _box_bounds, _lane_mask, _segment_bounds,
)
from keras_mixup.ops.random import fold_seed, sample_beta

PLACEMENTS = ("random", "saliency")
LABEL_WEIGHTS = ("area", "saliency")


@keras.saving.register_keras_serializable(package="keras_mixup")
class CutMix(MaskedMixing):
    """CutMix: pastes a box from a partner image, mixes labels by area.

    For images ``(B, H, W, C)`` (or ``(B, C, H, W)`` with
    ``data_format="channels_first"``) a box with sides ``∝ √(1 − λ)`` and a
    uniform centre, clipped to the image, is copied from the partner
    ``x[π]``; for sequences ``(B, T, D)`` (audio frames, time series) a
    contiguous segment of length ``∝ (1 − λ)`` is. Labels are mixed with the
    **exact** fraction of pixels (time steps) each example kept, counted
    from the mask — clipping makes it differ from the sampled λ (Yun et al.,
    "CutMix: Regularization Strategy to Train Strong Classifiers with
    Localizable Features", ICCV 2019).

    Pixels are copied, never blended, so ``uint8`` images stay exact: with
    ``dtype="uint8"`` the layer returns ``uint8`` images; by default they
    come out in the float compute dtype. Segmentation masks (integer class
    maps or one-hot floats, shaped like the images with or without the
    channel axis) are cut with the same boxes.

    Call forms, label handling and ``training=False`` are as for `MixUp`:
    ``layer(x, y)``, ``layer(x, y, sample_weight)``,
    ``layer({"images": x, "labels": y, "segmentation_masks": m})``.

    Args:
        alpha: Beta concentration (> 0) of the sampled λ; 1.0 (uniform) is
            the paper's choice.
        beta: second concentration, defaults to ``alpha``.
        per_sample: one box per example (default) or one box shared by the
            batch (the paper's code). Per example gives the same expected
            objective with lower gradient variance; the default matches
            `MixUp`'s.
        num_classes: number of classes; needed when labels are integer ids.
        label_smoothing: in [0, 1), applied to class labels before mixing.
        data_format: ``"channels_last"`` or ``"channels_first"``; defaults
            to ``keras.config.image_data_format()``. For sequences,
            channels-first means ``(B, D, T)``.
        seed: int for a reproducible stream of plans, or None.
        pairing, neighbors, mix, pairing_scope: who each example takes its
            box from (default: a random other example), and what is mixed;
            as for `MixUp`. ``pairing="nearest"`` measures distance on the
            whole image. Without an eligible partner (label-aware
            pairings) an example is not cut.
        ways: must be 2 (a cut takes each pixel from one of two images);
            for k-way mixing use ``MixUp(ways=k)``.
        placement: ``"random"`` (the paper's uniform box centre) or
            ``"saliency"``: the box, of sides ``⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋``
            kept whole inside the image, is centred on the most salient
            pixel of the partner. In a ``tf.data`` map (or any call with
            labels) saliency is the image's spectral residual and the box is
            pasted at the same place (SaliencyMix, Uddin et al., 2021). As
            the ``mixer`` of a `MixupModel`, saliency is the gradient of the
            loss with respect to the input (one extra forward and backward
            pass on the clean batch, in inference mode; with MixupE in
            "fast" mode on the whole batch, the backward of MixupE's clean
            training-mode pass instead), and the partner's region is
            pasted where it covers the least of the example's own saliency
            (PuzzleMix's signal, Kim et al., 2020, without its transport).
            Saliency is read on blocks of ``f × f`` pixels (``f = 1`` up to
            127 px a side, 3 at 224), so the box is placed to within a
            block; its size, and the area label weight, stay exact.
            With ``per_sample=False`` (one box for the batch) the box is
            centred on the peak of the first example's partner, as
            SaliencyMix's own code does, so one saliency map is computed
            instead of one per example (with the gradient, it goes where it
            covers the least of the batch's summed own saliency).
            Images only.
        label_weight: ``"area"`` (default: the exact pixel fraction) or
            ``"saliency"``: the share of saliency each source contributes,
            ``λ = k / (k + p)`` with ``k`` the fraction of the example's own
            saliency it keeps and ``p`` the fraction of the partner's it
            receives. Needs ``placement="saliency"``.
        bounding_box_format, min_visibility: boxes passed under
            ``"bounding_boxes"`` are clipped to what remains visible of
            them; see `MixUp`.
        jit_compile: apply the plan as one XLA program (default; see `MixUp`).
        **kwargs: ``keras.layers.Layer`` arguments such as ``name`` and
            ``dtype``.

    Example:

    >>> images = np.random.randint(0, 256, (4, 32, 32, 3), dtype="uint8")
    >>> labels = np.array([0, 1, 2, 3])
    >>> cutmix = keras_mixup.layers.CutMix(num_classes=4, dtype="uint8", seed=1)
    >>> mixed, soft = cutmix(images, labels)
    >>> mixed.dtype.name, soft.shape
    ('uint8', TensorShape([4, 4]))
    """

    _binary_mask = True  # a cut: 0 inside, 1 outside

    def __init__(self, *args, placement="random", label_weight="area", **kwargs):
        super().__init__(*args, **kwargs)
        name = type(self).__name__
        if placement not in self._placements:
            raise ValueError(
                f"{name}: `placement` must be one of {list(self._placements)}; "
                f"got {placement!r}."
            )
        if label_weight not in LABEL_WEIGHTS:
            raise ValueError(
                f"{name}: `label_weight` must be 'area' (the exact pixel "
                f"fraction) or 'saliency'; got {label_weight!r}."
            )
        if label_weight == "saliency" and placement != "saliency":
            raise ValueError(
                f"{name}: label_weight='saliency' weighs labels by saliency "
                "maps, which only placement='saliency' computes; pass both."
            )
        self.placement = placement
        self.label_weight = label_weight

    _placements = PLACEMENTS

    @property
    def _fused(self):
        # The fused site path reads partners at the same positions.
        return self.placement == "random"

    def get_config(self):
        config = super().get_config()
        config.update({"placement": self.placement, "label_weight": self.label_weight})
        return config

    def _check_inputs(self, inputs):
        # CutMix's own messages (its base's checks are a subset of these).
        BaseMixingLayer._check_inputs(self, inputs)
        x = inputs
        if not hasattr(x, "shape"):
            raise TypeError(
                "CutMix takes a single image or sequence tensor, not a nest "
                f"of tensors (got {type(x).__name__}). Use MixUp to mix "
                "several model inputs together."
            )
        shape, dtype = tuple(x.shape), backend.dtype_name(x)
        if not (keras.backend.is_float_dtype(dtype) or dtype == "uint8"):
            raise TypeError(
                f"CutMix takes float or uint8 inputs; got {dtype}. "
                "Cast the inputs to float32 if they are numbers; token ids "
                "cannot be cut and pasted meaningfully — mix their embeddings "
                "instead (a MixUp or CutMix site after the `Embedding` layer)."
            )
        rank = backend.rank(x)
        if rank == 2:
            raise ValueError(
                f"CutMix got inputs of shape {tuple(shape)}: rank 2 "
                "(batch, features) has no spatial or time axis to cut. Use "
                "MixUp for tabular data; CutMix takes images (B, H, W, C) or "
                "sequences (B, T, D)."
            )
        if rank not in (3, 4):
            raise ValueError(
                f"CutMix takes images (B, H, W, C) or sequences (B, T, D); "
                f"got inputs of shape {tuple(shape)}."
            )
        if self.compute_dtype == "uint8" and dtype != "uint8":
            raise TypeError(
                f"CutMix(dtype='uint8') keeps uint8 images exact, but got "
                f"{dtype} inputs; leave `dtype` unset for float inputs."
            )
        if self.placement == "saliency" and rank != 4:
            raise ValueError(
                f"{type(self).__name__}(placement='saliency') places boxes by "
                "a 2-D saliency map, so it takes images (B, H, W, C); got "
                f"inputs of shape {tuple(shape)}. Use placement='random' for "
                "sequences."
            )

    def _check_segmentation_masks(self, masks, images):
        masks = backend.ops().convert_to_tensor(masks)
        if backend.dtype_name(masks) == "bool":
            raise TypeError(
                "Pass segmentation masks as integer class maps or float "
                "one-hot masks, not bool."
            )
        return boundary.check_mask_shape("CutMix", masks, images, self.data_format)

    def _sample_parts(self, inputs, seed, context=None):
        """The plan with the cuts as bounds (``"bounds"``, int32 ``(4, N)``
        or ``(2, N)``) in place of the input-sized ``"mask"``."""
        K = backend.ops()
        rank = backend.rank(inputs)
        batch = backend.dim(inputs, 0)
        n = batch if self.per_sample else 1
        alpha, beta = K.unstack(self._state("concentration"))
        lam = sample_beta([n], alpha, beta, seed=fold_seed(seed, 1))
        sizes = self._sizes(inputs)
        if self.placement == "saliency":
            return self._salient_parts(inputs, seed, context, K.broadcast_to(lam, [batch]))
        if rank == 4:
            bounds, kept = _box_bounds(sizes[0], sizes[1], lam, fold_seed(seed, 3))
        else:
            bounds, kept = _segment_bounds(sizes[0], lam, fold_seed(seed, 3))
        return self._cut_plan(inputs, seed, context, kept, bounds)

    def _saliency(self, inputs, given=None):
        """Saliency maps on the block grid of the inputs, ``(B, H // f,
        W // f)``, and the block side ``f``: ``given`` (the loss gradient's,
        from `MixupModel`) or the spectral residual's."""
        height, width = self._sizes(inputs)
        f = sal_ops.block_factor(height, width)
        if given is None:
            return sal_ops.image_saliency(inputs, self.data_format), f
        self._check_saliency(given, inputs)
        return backend.ops().cast(given, "float32"), f

    @staticmethod
    def _in_blocks(side, size, f):
        """A box side of ``side`` pixels in blocks of ``f`` (at least one,
        at most the grid's ``size // f``)."""
        return backend.ops().clip((side + f // 2) // f, 1, size // f)

    def _least_covered(self, saliency, f, h, w, inputs):
        """Top-left pixel ``(y, x)`` of an ``h × w`` box placed where it
        covers the least saliency (searched on the block grid), and the box
        in blocks ``(hb, wb)``."""
        K = backend.ops()
        height, width = self._sizes(inputs)
        hb, wb = self._in_blocks(h, height, f), self._in_blocks(w, width, f)
        y, x = sal_ops.least_covering(saliency, hb, wb)
        return K.minimum(y * f, height - h), K.minimum(x * f, width - w), hb, wb

    def _salient_parts(self, inputs, seed, context, lam):
        """The parts of a saliency-placed plan: partners, the box sides
        from λ (exact, in pixels) and the area label weight; the saliency
        and the placement are computed in `_full_plan`, inside the XLA
        program that applies the plan."""
        K = backend.ops()
        index, found = self._partners(inputs, seed, context)
        height, width = self._sizes(inputs)
        ratio = K.sqrt(K.maximum(1.0 - lam, 0.0))
        h = K.cast(K.floor(float(height) * ratio), "int32")
        w = K.cast(K.floor(float(width) * ratio), "int32")
        kept = 1.0 - K.cast(h * w, "float32") / float(height * width)
        plan = {
            "index": index, "lam": kept, "partner": index,
            "sides": K.stack([h, w], axis=1), "active": K.ones_like(kept) > 0,
        }
        given = (context or {}).get("saliency")
        if given is not None:
            self._check_saliency(given, inputs)
            plan["saliency"] = given
        if found is not None:
            plan["found"] = found
            plan["active"] = found
            plan["lam"] = K.where(found, kept, 1.0)
        return plan

    def _check_saliency(self, given, inputs):
        height, width = self._sizes(inputs)
        f = sal_ops.block_factor(height, width)
        if tuple(given.shape)[1:] != (height // f, width // f):
            raise ValueError(
                f"{type(self).__name__}(placement='saliency') got a saliency "
                f"map of shape {tuple(given.shape)} for inputs of shape "
                f"{tuple(inputs.shape)}: gradient saliency is computed for "
                "the model's input, so use the layer as `mixer=` (or first "
                "in the model), on the images."
            )

    def _place(self, plan, inputs):
        """`_salient_parts`' plan with the box placed: the partner's region
        around its saliency peak, pasted at the same place (spectral
        residual) or where it covers the least own saliency (gradient
        saliency, given by `MixupModel`). Saliency is read on blocks of
        ``f × f`` pixels; box sizes stay exact."""
        K = backend.ops()
        plan = dict(plan)
        sides, active = plan.pop("sides"), plan.pop("active")
        partner_index = plan.pop("partner")
        given = plan.pop("saliency", None)
        height, width = self._sizes(inputs)
        h = K.where(active, sides[:, 0], 0)
        w = K.where(active, sides[:, 1], 0)
        batch = backend.dim(inputs, 0)
        if not self.per_sample and self.label_weight == "area":
            # One box for the batch (SaliencyMix's own rule): on the peak
            # of the first example's partner, so one saliency map is
            # computed, not one per example; with gradient saliency, placed
            # where it covers the least of the batch's own saliency.
            first = partner_index[:1]
            if given is None:
                partner, f = self._saliency(K.gather(inputs, first))
            else:
                self._check_saliency(given, inputs)
                f = sal_ops.block_factor(height, width)
                partner = K.gather(K.cast(given, "float32"), first)
            py, px = (K.broadcast_to(p, [batch]) for p in sal_ops.peak(partner))
            sy = sal_ops.origin_around(py * f + f // 2, h, height)
            sx = sal_ops.origin_around(px * f + f // 2, w, width)
            if given is not None:
                own = K.reduce_sum(K.cast(given, "float32"), axis=0, keepdims=True)
                ty, tx, _, _ = self._least_covered(own, f, sides[:1, 0], sides[:1, 1], inputs)
                ty = K.minimum(K.broadcast_to(ty, [batch]), height - h)
                tx = K.minimum(K.broadcast_to(tx, [batch]), width - w)
                plan["offset"] = K.stack([sy - ty, sx - tx], axis=1)
            else:
                ty, tx = sy, sx
            plan["bounds"] = K.stack([ty, tx, ty + h, tx + w])
            return plan
        saliency, f = self._saliency(inputs, given)
        grid_h, grid_w = height // f, width // f
        hb, wb = self._in_blocks(h, height, f), self._in_blocks(w, width, f)
        partner = K.gather(saliency, partner_index)
        py, px = sal_ops.peak(partner)
        sy = sal_ops.origin_around(py * f + f // 2, h, height)
        sx = sal_ops.origin_around(px * f + f // 2, w, width)
        if given is not None:
            ty, tx, _, _ = self._least_covered(saliency, f, h, w, inputs)
            plan["offset"] = K.stack([sy - ty, sx - tx], axis=1)
        else:  # SaliencyMix: the region stays where it is, a plain cut
            ty, tx = sy, sx
        plan["bounds"] = K.stack([ty, tx, ty + h, tx + w])
        if self.label_weight == "saliency":
            own = 1.0 - sal_ops.mass_in(
                saliency, K.minimum(ty // f, grid_h - hb), K.minimum(tx // f, grid_w - wb), hb, wb
            )
            got = sal_ops.mass_in(
                partner, K.minimum(sy // f, grid_h - hb), K.minimum(sx // f, grid_w - wb), hb, wb
            )
            weight = K.where(own + got > 0, K.divide_no_nan(own, own + got), plan["lam"])
            plan["lam"] = K.where(active, weight, plan["lam"])
        return plan

    def _partner_view(self, t, plan, nearest=False):
        """The partner data each output position reads (``t``'s shape), or
        None when it is ``t[index]`` at the same position."""
        if "offset" not in plan:
            return None
        K = backend.ops()
        partner = K.gather(t, plan["index"])
        rank = backend.rank(t)
        axes = (1, 2) if self.data_format == "channels_last" or rank == 3 else (2, 3)
        for k, axis in enumerate(axes):
            size = backend.dim(t, axis)
            pos = K.expand_dims(K.range(size, dtype="int32"), 0)
            rows = K.clip(pos + K.expand_dims(plan["offset"][:, k], 1), 0, size - 1)
            partner = K.take_axis(partner, rows, axis)
        return partner

    def _sizes(self, inputs):
        return [backend.dim(inputs, a) for a in self._spatial_axes(backend.rank(inputs))]

    def _full_plan(self, plan, inputs):
        # The mask from the bounds: inside the XLA program that applies the
        # plan, so that it is never written out (one pass over the data).
        if "sides" in plan:
            plan = self._place(plan, inputs)
        if "bounds" not in plan:
            return plan
        plan = dict(plan)
        bounds = plan.pop("bounds")
        mask = _bounds_mask(self._sizes(inputs), bounds)
        channel_axis = -1 if self.data_format == "channels_last" else 1
        plan["mask"] = backend.ops().expand_dims(mask, channel_axis)
        if self.data_format == "channels_last" and backend.rank(inputs) == 4:
            plan["cut"] = bounds  # for the images' own masks (`_leaf_weights`)
        return plan

    # Images (B, H, W, C) are blended on their (B, H, W·C) view, with the
    # cut's mask built in that layout (`ops.mixing._lane_mask`).

    def _leaf_weights(self, plan, leaves):
        weights = super()._leaf_weights(plan, leaves)
        if "cut" not in plan or "offset" in plan or "paste" in plan:
            # A partner read elsewhere (shifted, resized): its gathers ran
            # slower on the (B, H, W·C) view (ResizeMix 1.4x).
            return weights
        return [_lane_mask(plan["cut"], t, w) for t, w in zip(leaves, weights)]
