"""Bernoulli-mask mixing (Beckham et al.'s latent mixing) as a Keras layer."""

import numbers

import keras

from keras_mixup import backend
from keras_mixup.layers.masked import MaskedMixing
from keras_mixup.ops.random import bernoulli_mask


@keras.saving.register_keras_serializable(package="keras_mixup")
class MaskMix(MaskedMixing):
    """Mixes by a random Bernoulli mask: each value comes from the partner
    with probability ``1 − λ``.

    ``x̃ = m·x + (1 − m)·x[π]`` with ``m ~ Bernoulli(λ)`` elementwise and
    ``λ ~ Beta(alpha, beta)``; the label weight is the fraction of values
    each example actually kept (Beckham et al., "On Adversarial Mixup
    Resynthesis", NeurIPS 2019, mix latent features this way). Values are
    copied, never blended, so ``uint8`` inputs stay exact. Any rank >= 2:
    tabular features, hidden states at a `MixupModel` site, images,
    sequences.

    Args:
        alpha, beta: Beta concentrations of λ (``beta`` defaults to
            ``alpha``).
        per_sample: one λ per example (default) or one per batch.
        shared_axes: axes along which one mask value is shared, e.g.
            ``[3]`` (or ``[-1]``) to take whole pixels (all channels) from
            one source; default none (every value drawn apart).
        num_classes, label_smoothing, seed, pairing, neighbors, mix,
            pairing_scope, jit_compile: as for `MixUp`.
        **kwargs: ``keras.layers.Layer`` arguments (``dtype="uint8"``
            keeps uint8 inputs).

    Example:

    >>> x = np.random.rand(8, 16).astype("float32")
    >>> layer = keras_mixup.layers.MaskMix(alpha=1.0, num_classes=4, seed=0)
    >>> x_mixed, y_mixed = layer(x, np.arange(8) % 4)
    >>> x_mixed.shape, y_mixed.shape
    (TensorShape([8, 16]), TensorShape([8, 4]))
    """

    _rank_text = "batched inputs of rank >= 2"
    _binary_mask = True

    def __init__(self, alpha=1.0, beta=None, per_sample=True, shared_axes=None, **kwargs):
        super().__init__(alpha=alpha, beta=beta, per_sample=per_sample, **kwargs)
        if shared_axes is not None and (
            not isinstance(shared_axes, (list, tuple))
            or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in shared_axes)
        ):
            raise TypeError(
                "`shared_axes` must be a list of int axes (e.g. [-1] to share "
                f"the mask across channels) or None; got {shared_axes!r}."
            )
        self.shared_axes = None if shared_axes is None else [int(a) for a in shared_axes]

    def get_config(self):
        config = super().get_config()
        config.pop("data_format", None)
        config["shared_axes"] = self.shared_axes
        return config

    def _check_inputs(self, inputs):
        super()._check_inputs(inputs)
        rank = backend.rank(inputs)
        for a in self.shared_axes or []:
            if not (-rank < a < rank) or a % rank == 0:
                raise ValueError(
                    f"`shared_axes` {self.shared_axes} do not fit inputs of shape "
                    f"{tuple(inputs.shape)}: axes must be in 1..{rank - 1} (or "
                    f"-{rank - 1}..-1); the batch axis cannot be shared."
                )

    def _check_segmentation_masks(self, masks, images):
        raise ValueError(
            "MaskMix draws each value's source apart, so a segmentation map "
            "has no single source per pixel; use CutMix or FMix for "
            "segmentation data."
        )

    def _mask(self, inputs, lam, seed):
        # Drawn at the inputs' full shape, repeated along the shared axes
        # (cheaper under XLA than a smaller mask broadcast), and counted
        # without a pass over the mask.
        rank = backend.rank(inputs)
        shape = [backend.dim(inputs, axis) for axis in range(rank)]
        shared = self.shared_axes or ()
        mask, count = bernoulli_mask(shape, lam, seed, shared)
        draws = 1
        for axis in range(1, rank):
            draws *= 1 if axis in {a % rank for a in shared} else shape[axis]
        return mask, backend.ops().cast(count, "float32") / float(draws)
