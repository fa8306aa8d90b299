"""CutMix (Yun et al., 2019) as a Keras layer, for images and sequences."""

import keras

from keras_mixup import backend
from keras_mixup.layers import inputs as boundary
from keras_mixup.layers.base import BaseMixingLayer
from keras_mixup.layers.masked import MaskedMixing
from keras_mixup.ops.mixing import _bounds_mask, _box_bounds, _segment_bounds
from keras_mixup.ops.random import fold_seed, sample_beta


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
        if rank == 4:
            bounds, kept = _box_bounds(sizes[0], sizes[1], lam, fold_seed(seed, 3))
        else:
            bounds, kept = _segment_bounds(sizes[0], lam, fold_seed(seed, 3))
        return self._cut_plan(inputs, seed, context, kept, bounds)

    def _sizes(self, inputs):
        return [backend.dim(inputs, a) for a in self._spatial_axes(backend.rank(inputs))]

    def _full_plan(self, plan, inputs):
        # The mask from the bounds: inside the XLA program that applies the
        # plan, so that it is never written out (one pass over the data).
        if "bounds" not in plan:
            return plan
        plan = dict(plan)
        mask = _bounds_mask(self._sizes(inputs), plan.pop("bounds"))
        channel_axis = -1 if self.data_format == "channels_last" else 1
        plan["mask"] = backend.ops().expand_dims(mask, channel_axis)
        return plan
