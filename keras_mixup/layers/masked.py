"""What the mask families share: a partner, a sampled λ, and a mask that
says, value by value, how much of each source is kept.

A subclass says only how to draw the mask (`MaskedMixing._mask`). The
plan is sampled in two parts, like CutMix's: a few numbers per example
before (partners, λ, a seed for the mask), and the input-sized mask inside
the XLA program that applies it (`_full_plan`), where the label weight is
counted from the mask — the exact fraction each example kept, whatever was
drawn.
"""

import keras

from keras_mixup import backend
from keras_mixup.layers.base import BaseMixingLayer
from keras_mixup.layers.mix_up import check_per_sample
from keras_mixup.ops.mixing import per_example
from keras_mixup.ops.plans import identity_where_off
from keras_mixup.ops.random import fold_seed, sample_beta


def standardize_data_format(data_format):
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'; got "
            f"{data_format!r}."
        )
    return data_format


class MaskedMixing(BaseMixingLayer):
    """Base class of the mask-family layers, CutMix's included (two-way: each
    value comes from the example, the partner, or — soft masks — a blend of
    the two)."""

    _max_ways = 2
    # Inputs ranks the family takes (None: any rank >= 2).
    _ranks = None

    def __init__(
        self,
        alpha=1.0,
        beta=None,
        per_sample=True,
        num_classes=None,
        label_smoothing=0.0,
        data_format=None,
        seed=None,
        pairing="derangement",
        neighbors=1,
        mix="both",
        pairing_scope="replica",
        **kwargs,
    ):
        for key in ("placement", "label_weight"):
            if key in kwargs:
                raise ValueError(
                    f"{type(self).__name__} has no `{key}`: its mask is not "
                    "one box, so there is nothing to place by saliency. "
                    "Saliency placement is for CutMix and ResizeMix."
                )
        super().__init__(
            num_classes=num_classes,
            label_smoothing=label_smoothing,
            seed=seed,
            pairing=pairing,
            neighbors=neighbors,
            mix=mix,
            pairing_scope=pairing_scope,
            **kwargs,
        )
        self._set_concentration(alpha, beta)
        self.per_sample = check_per_sample(per_sample)
        self.data_format = standardize_data_format(data_format)
        name = type(self).__name__
        if self.compute_dtype != "uint8" and not keras.backend.is_float_dtype(
            self.compute_dtype
        ):
            raise ValueError(
                f"{name}'s dtype must be a float type or 'uint8' (to keep "
                f"uint8 images exact); got dtype={self.compute_dtype!r}."
            )

    @property
    def _data_format(self):
        return self.data_format

    def get_config(self):
        config = super().get_config()
        config.pop("ways", None)
        config.update(
            {
                "alpha": self.alpha,
                "beta": self.beta,
                "per_sample": self.per_sample,
                "data_format": self.data_format,
            }
        )
        return config

    def _check_inputs(self, inputs):
        super()._check_inputs(inputs)
        name = type(self).__name__
        if not hasattr(inputs, "shape"):
            raise TypeError(
                f"{name} takes a single tensor, not a nest of tensors (got "
                f"{type(inputs).__name__}). Use MixUp to mix several inputs together."
            )
        dtype = backend.dtype_name(inputs)
        if not (keras.backend.is_float_dtype(dtype) or dtype == "uint8"):
            raise TypeError(
                f"{name} takes float or uint8 inputs; got {dtype}. Mix the "
                "embeddings of token ids instead (a site after `Embedding`)."
            )
        rank = backend.rank(inputs)
        if self._ranks is not None and rank not in self._ranks:
            raise ValueError(
                f"{name} takes {self._rank_text}; got inputs of shape "
                f"{tuple(inputs.shape)}."
            )
        if rank is not None and rank < 2:
            raise ValueError(f"{name} takes batched inputs; got shape {tuple(inputs.shape)}.")
        if self.compute_dtype == "uint8" and dtype != "uint8":
            raise TypeError(
                f"{name}(dtype='uint8') keeps uint8 inputs exact, but got "
                f"{dtype} inputs; leave `dtype` unset for float inputs."
            )

    _rank_text = "images (B, H, W, C) or sequences (B, T, D)"

    def _spatial_axes(self, rank):
        if self.data_format == "channels_last":
            return list(range(1, rank - 1))
        return list(range(2, rank))

    def _channel_axis(self, rank):
        return rank - 1 if self.data_format == "channels_last" else 1

    # ----------------------------------------------------------- the plan

    def sample_plan(self, inputs, seed, context=None):
        return self._full_plan(self._sample_parts(inputs, seed, context), inputs)

    def _sample_parts(self, inputs, seed, context=None):
        """Partners, λ, and what the mask needs: ``"active"`` (bool ``(B,)``:
        False makes the mask all ones) and ``"mask_seed"``."""
        K = backend.ops()
        batch = backend.dim(inputs, 0)
        n = batch if self.per_sample else 1
        alpha, beta = K.unstack(self._state("concentration"))
        lam = K.broadcast_to(sample_beta([n], alpha, beta, seed=fold_seed(seed, 1)), [batch])
        index, found = self._partners(inputs, seed, context)
        active = K.ones_like(lam) > 0
        plan = {"index": index, "lam": lam, "active": active, "mask_seed": fold_seed(seed, 3)}
        if found is not None:
            plan["found"] = found
            plan["active"] = active & found
            plan["lam"] = K.where(found, lam, 1.0)
        return plan

    def _cut_plan(self, inputs, seed, context, kept, bounds, partners=None):
        """The parts of a box plan (CutMix, ResizeMix): partners (drawn
        unless given as ``(index, found)``), the kept fractions ``kept``
        ``(N,)`` and int32 ``bounds`` ``(2k, N)``; an example without a
        partner gets an empty box."""
        K = backend.ops()
        index, found = partners or self._partners(inputs, seed, context)
        batch = backend.dim(inputs, 0)
        plan = {
            "index": index,
            "lam": kept if self.per_sample else K.broadcast_to(kept, [batch]),
            "bounds": bounds,
        }
        if found is not None:
            plan = identity_where_off(plan, found)
            plan["found"] = found
        return plan

    def _full_plan(self, plan, inputs):
        """The mask (float, 1 = own value, shaped like the inputs with size
        1 where one value serves a whole axis, as FMix's channels) and the
        realized own fraction as ``lam``."""
        if "mask_seed" not in plan:
            return plan
        K = backend.ops()
        plan = dict(plan)
        seed, active = plan.pop("mask_seed"), plan.pop("active")
        rank = backend.rank(inputs)
        mask = self._mask(inputs, plan["lam"], seed)
        mask, kept = mask if isinstance(mask, tuple) else (mask, None)
        mask = K.where(per_example(active, rank), K.cast(mask, "float32"), 1.0)
        plan["mask"] = mask
        # The label weight: the fraction of the own example each one kept.
        if kept is None:
            axes = list(range(1, rank))
            kept = K.reduce_sum(mask, axis=axes) / float(_count(mask, axes))
        plan["lam"] = K.where(active, kept, 1.0)
        return plan

    def _mask(self, inputs, lam, seed):
        """The mask for ``inputs`` given the sampled own weights ``lam``,
        or ``(mask, kept)`` where the mask's kept fraction ``kept`` ``(B,)``
        is known without counting its values (counted at a coarser level,
        say); otherwise the count is taken from the mask."""
        raise NotImplementedError


def _count(mask, axes):
    size = 1
    for a in axes:
        size *= mask.shape[a]
    return size
