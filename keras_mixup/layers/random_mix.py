"""Random choice among mixers, and mixing only a fraction of the time."""

import numbers

import keras

from keras_mixup import backend
from keras_mixup.layers.base import BaseMixingLayer
from keras_mixup.layers.cut_mix import CutMix
from keras_mixup.layers.mix_up import check_per_sample
from keras_mixup.ops.mixing import per_example
from keras_mixup.ops.plans import as_columns, identity_where_off
from keras_mixup.ops.random import check_weights, choose, fold_seed, uniform

_EXACT_MIXERS = (CutMix,)


@keras.saving.register_keras_serializable(package="keras_mixup")
class RandomMix(BaseMixingLayer):
    """Switches between mixers at random and mixes only a fraction of the time.

    Each call draws, in the graph, which mixer to use (with probabilities
    ``weights``) and whether to mix at all (with probability ``rate``) —
    once for the batch, or per example with ``per_sample=True``. This is
    timm's ``switch_prob`` (MixUp vs CutMix) and ``prob`` / ``mixup_off``
    in one layer. Examples that are not mixed come out exactly unchanged,
    with their own labels (one-hot, smoothed).

    Every mixer samples its plan and the choice selects among them, so the
    mixers' own arguments (α, boxes, ``per_sample``) keep their meaning.
    The mixers must agree on ``num_classes``, ``label_smoothing`` and (for
    CutMix) ``data_format``; RandomMix takes those from them.

    Each example sees its partner as its chosen mixer does: ``x[π]`` at the
    same positions for most mixers; for a `ResizeMix` the whole partner
    resized into the box (the segment, for sequences; integer
    segmentation masks by nearest neighbour); for a ``CutMix(placement="saliency")`` the partner's
    region around its saliency peak, pasted where the mixer places it.
    Images, segmentation masks and bounding boxes follow what each
    example shows, and labels take the chosen mixer's exact weight. Only
    such mixers add work: reading the partner shifted or resized, for the
    whole batch. A saliency-placed mixer reads its spectral-residual
    saliency in a ``tf.data`` map, and the gradient saliency a `MixupModel`
    computes for it as its ``mixer`` (RandomMix then reports
    ``placement == "saliency"`` and hands the saliency on).

    Args:
        mixers: a list of mixing layers (``MixUp``, ``CutMix`` — saliency
            placement included —, ``ResizeMix``, ``FMix``, ``MaskMix``,
            or another ``RandomMix``).
        weights: probabilities of choosing each mixer (normalized);
            defaults to uniform. ``[0.5, 0.5]`` for MixUp/CutMix is timm's
            ``switch_prob=0.5``.
        rate: probability in [0, 1] that a batch (or an example, with
            ``per_sample=True``) is mixed at all.
        per_sample: decide the mixer and whether to mix per example instead
            of per batch (the default, timm's "batch" mode).
        seed: int for a reproducible stream, or None.
        mix, pairing_scope: what is mixed and where partners come from, as
            for `MixUp` (each mixer pairs by its own ``pairing``; mixers
            with different ``ways`` can be combined, but a CutMix only with
            two-way mixers).
        jit_compile: apply the plan as one XLA program (default; see `MixUp`).
        **kwargs: ``keras.layers.Layer`` arguments.

    Example:

    >>> images = np.random.rand(8, 16, 16, 3).astype("float32")
    >>> labels = np.arange(8) % 10
    >>> mix = keras_mixup.layers.RandomMix(
    ...     [keras_mixup.layers.MixUp(0.8, num_classes=10),
    ...      keras_mixup.layers.CutMix(1.0, num_classes=10)],
    ...     weights=[0.5, 0.5], rate=0.8, seed=0)
    >>> x, y = mix(images, labels)
    >>> x.shape, y.shape
    (TensorShape([8, 16, 16, 3]), TensorShape([8, 10]))
    """

    def __init__(
        self,
        mixers,
        weights=None,
        rate=1.0,
        per_sample=False,
        seed=None,
        **kwargs,
    ):
        mixers = [
            keras.saving.deserialize_keras_object(m) if isinstance(m, dict) else m
            for m in (mixers if isinstance(mixers, (list, tuple)) else [mixers])
        ]
        if not mixers or not all(isinstance(m, BaseMixingLayer) for m in mixers):
            raise TypeError(
                "`mixers` must be a non-empty list of keras_mixup mixing "
                "layers, e.g. [MixUp(alpha=0.8), CutMix(alpha=1.0)]; got "
                f"{mixers!r}."
            )
        first = mixers[0]
        for m in mixers[1:]:
            if (m.num_classes, m.label_smoothing) != (
                first.num_classes,
                first.label_smoothing,
            ):
                raise ValueError(
                    "All mixers of a RandomMix must convert labels the same "
                    "way: give them the same `num_classes` and "
                    "`label_smoothing`; got "
                    f"{[(x.num_classes, x.label_smoothing) for x in mixers]}."
                )
        formats = {m._data_format for m in mixers if getattr(m, "data_format", None)}
        if len(formats) > 1:
            raise ValueError(
                f"The mixers use different data formats {sorted(formats)}; "
                "give them the same `data_format`."
            )
        super().__init__(
            num_classes=first.num_classes,
            label_smoothing=first.label_smoothing,
            seed=seed,
            **kwargs,
        )
        self.mixers = mixers
        if self._label_aware():
            self._init_unpaired()
        if self._partner_count() > 1 and any(m._max_ways == 2 for m in mixers):
            raise ValueError(
                "A RandomMix cannot combine a CutMix (two-way masks) with a "
                f"k-way mixer (ways={self._partner_count() + 1}); use two-way "
                "mixers, or k-way MixUp layers only."
            )
        self._has_format = bool(formats)
        self._format = formats.pop() if formats else "channels_last"
        self.mixer_weights = check_weights(weights, len(mixers), "weights", "mixer")
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not (
            0.0 <= rate <= 1.0
        ):
            raise ValueError(
                "`rate` is the probability of mixing and must be in [0, 1]; "
                f"got {rate!r}."
            )
        self.rate = float(rate)
        self.per_sample = check_per_sample(per_sample)
        if self.compute_dtype == "uint8" and any(
            not any(isinstance(m, c) for c in _EXACT_MIXERS) for m in mixers
        ):
            raise ValueError(
                "RandomMix(dtype='uint8') can only hold CutMix mixers: the "
                "others blend values, which uint8 cannot hold."
            )

    @property
    def _data_format(self):
        return self._format

    @property
    def data_format(self):
        """The mixers' data format (None when none of them has one)."""
        return self._format if self._has_format else None

    @property
    def placement(self):
        """``"saliency"`` when a mixer (nested ones included) places its box
        by saliency: a `MixupModel` then computes the gradient saliency
        and passes it in the context, which the mixers read; else None."""
        return "saliency" if _find(self.mixers, _places_by_saliency) else None

    @property
    def _binary_mask(self):
        # Binary only when every member's mask is (a MixUp member's is λ).
        return all(m._binary_mask for m in self.mixers)

    @property
    def _fused(self):
        # The fused site path reads partners at the same positions.
        return all(m._fused for m in self.mixers)

    def _label_aware(self):
        return any(m._label_aware() for m in getattr(self, "mixers", []))

    def _partner_count(self):
        return max(m._partner_count() for m in self.mixers)

    def get_config(self):
        config = super().get_config()
        for key in ("num_classes", "label_smoothing", "pairing", "neighbors", "ways"):
            config.pop(key)
        config.update(
            {
                "mixers": [keras.saving.serialize_keras_object(m) for m in self.mixers],
                "weights": self.mixer_weights,
                "rate": self.rate,
                "per_sample": self.per_sample,
            }
        )
        return config

    def _check_inputs(self, inputs):
        for m in self.mixers:
            m._check_inputs(inputs)

    def _check_segmentation_masks(self, masks, images):
        for m in self.mixers:
            masks = m._check_segmentation_masks(masks, images)
        return masks

    def expected_partner_weight(self):
        weights = [m.expected_partner_weight() for m in self.mixers]
        total = sum(self.mixer_weights)
        mean = sum(w * (p / total) for w, p in zip(weights, self.mixer_weights))
        return self._state("enabled") * self.rate * mean

    def sample_plan(self, inputs, seed, context=None):
        return self._full_plan(self._sample_parts(inputs, seed, context), inputs)

    def _plan_parts(self, inputs, seed, context=None):
        # While mixing is disabled, no example is mixed.
        return self._sample_parts(inputs, seed, context, self._state("enabled") > 0.5)

    def _sample_parts(self, inputs, seed, context=None, enabled=None):
        """The plan, with the mixers' masks left as their parts (a CutMix's
        cut bounds) under ``"parts"`` for `_full_plan`."""
        K = backend.ops()
        batch = K.batch_size(keras.tree.flatten(inputs)[0])
        subs = [
            m._sample_parts(inputs, fold_seed(seed, 100 + i), context)
            for i, m in enumerate(self.mixers)
        ]
        n = batch if self.per_sample else 1
        choice = choose(self.mixer_weights, [n], fold_seed(seed, 1))
        mix = uniform([n], fold_seed(seed, 2)) < self.rate
        choice = K.broadcast_to(choice, [batch])
        mix = K.broadcast_to(mix, [batch])
        if enabled is not None:
            mix = mix & enabled
        onehot = K.one_hot(choice, len(subs))  # (B, K)
        partners = self._partner_count()
        if partners == 1:
            stacked = K.stack([p["index"] for p in subs], axis=1)  # (B, K)
            plan = {"index": K.gather_rows(stacked, choice)}
        else:  # k-way: every mixer's plan as (B, partners) columns
            cols = [as_columns(p, partners) for p in subs]
            pick = K.expand_dims(K.cast(onehot, "int32"), 2)  # (B, K, 1)
            plan = {
                "index": K.reduce_sum(K.stack([c["index"] for c in cols], 1) * pick, 1),
                "weights": K.reduce_sum(
                    K.stack([c["weights"] for c in cols], 1) * K.cast(pick, "float32"), 1
                ),
            }
        plan["lam"] = K.reduce_sum(K.stack([p["lam"] for p in subs], 1) * onehot, 1)
        if any("found" in p for p in subs):
            found = []
            for p in subs:
                f = p["found"] if "found" in p else K.ones_like(p["lam"]) > 0
                if partners > 1:
                    f = as_columns(dict(p, found=f), partners)["found"]
                found.append(K.cast(f, "int32"))
            found = K.stack(found, 1)  # (B, K) or (B, K, partners)
            if partners == 1:
                plan["found"] = K.gather_rows(found, choice) > 0
            else:
                plan["found"] = K.reduce_sum(found * pick, 1) > 0
        # Examples that are not mixed (probability 1 - rate) keep themselves.
        plan = identity_where_off(plan, mix)
        if any(set(p) - {"index", "lam", "weights", "found"} for p in subs):
            plan["parts"] = {
                "onehot": onehot,
                "mix": mix,
                "mixers": [
                    {k: v for k, v in p.items() if k not in ("index", "found")}
                    for p in subs
                ],
            }
        return plan

    def _full_plan(self, plan, inputs):
        if "parts" not in plan:
            return plan
        plan = dict(plan)
        parts = plan.pop("parts")
        rank = backend.rank(inputs)
        K = backend.ops()
        mask, lam = 0.0, 0.0
        # Where a mixer's partner is not read at the same positions, its
        # view of the partner, selected per example: a shift (a region
        # pasted elsewhere: saliency placement) and a paste box (the whole
        # partner resized into it: ResizeMix). Neutral elsewhere (no shift,
        # the whole image), so that examples of other mixers see x[index].
        offset = paste = None
        for k, (m, sub) in enumerate(zip(self.mixers, parts["mixers"])):
            sub = m._full_plan(sub, inputs)
            mk = sub["mask"] if "mask" in sub else per_example(sub["lam"], rank)
            mask += per_example(parts["onehot"][:, k], rank) * mk
            # (A mask family counts its label weight from its mask.)
            lam += parts["onehot"][:, k] * sub["lam"]
            on = parts["onehot"][:, k] > 0.5 if "offset" in sub or "paste" in sub else None
            if "offset" in sub:
                offset = K.where(
                    K.expand_dims(on, 1), sub["offset"],
                    K.zeros_like(sub["offset"]) if offset is None else offset,
                )
            if "paste" in sub:
                paste = K.where(
                    K.expand_dims(on, 0), sub["paste"],
                    self._whole_image(inputs) if paste is None else paste,
                )
        mix = parts["mix"]
        plan["mask"] = K.where(per_example(mix, rank), mask, 1.0)
        plan["lam"] = K.where(mix, lam, 1.0)
        if offset is not None:
            plan["offset"] = K.where(K.expand_dims(mix, 1), offset, K.zeros_like(offset))
        if paste is not None:
            plan["paste"] = K.where(K.expand_dims(mix, 0), paste, self._whole_image(inputs))
        return plan

    def _whole_image(self, inputs):
        """The paste box of the whole input, int32 ``(2k, 1)`` (starts,
        then ends, on its ``k`` spatial axes): a partner resized into it
        is the partner itself."""
        K = backend.ops()
        k = backend.rank(inputs) - 2
        sizes = [
            K.cast(backend.dim(inputs, a), "int32")
            for a in _spatial_axes(self._format, backend.rank(inputs), k)
        ]
        return K.reshape(K.stack([K.zeros_like(sizes[0])] * k + sizes), [2 * k, 1])

    # ------------------------------------------------ partners as each mixer sees them

    def _partner_view(self, t, plan, nearest=False):
        """The partner data each output position of ``t`` reads, as the
        chosen mixer of each example reads it (``t[index]``, shifted for a
        saliency-placed CutMix, resized into the box for a ResizeMix), or
        None when every mixer reads ``t[index]`` at the same position."""
        if "offset" not in plan and "paste" not in plan:
            return None
        K = backend.ops()
        if "offset" in plan:
            shifter = _find(self.mixers, _shifts)
            view = CutMix._partner_view(
                shifter, t, {"index": plan["index"], "offset": plan["offset"]}
            )
        else:
            view = K.gather(t, plan["index"])
        if "paste" in plan:
            resizer = _find(self.mixers, _resamples)
            paste = plan["paste"]
            warped = resizer._warp(t, {"index": plan["index"], "paste": paste}, nearest=nearest)
            # (Only where an example's partner is resized: the others are
            # read as they are, exactly.)
            k = paste.shape[0] // 2
            whole = None
            for j, axis in enumerate(_spatial_axes(self._format, backend.rank(t), k)):
                on = (paste[j] == 0) & (paste[k + j] == backend.dim(t, axis))
                whole = on if whole is None else whole & on
            view = K.where(per_example(whole, backend.rank(t)), view, warped)
        return view


def _spatial_axes(data_format, rank, k):
    """The ``k`` spatial axes of a tensor of this rank (one without the
    channel axis, a segmentation map, has them right after the batch)."""
    if data_format == "channels_last" or rank == k + 1:
        return tuple(range(1, k + 1))
    return tuple(range(2, k + 2))


def _resamples(m):
    return getattr(m, "_resamples", False)


def _places_by_saliency(m):
    return getattr(m, "placement", None) == "saliency"


def _shifts(m):
    # A saliency-placed CutMix pastes its partner's region elsewhere (a
    # ResizeMix resizes it instead).
    return _places_by_saliency(m) and not _resamples(m)


def _find(mixers, test):
    """The first mixer passing ``test``, nested RandomMix mixers included."""
    for m in mixers:
        found = _find(m.mixers, test) if isinstance(m, RandomMix) else (m if test(m) else None)
        if found is not None:
            return found
    return None
