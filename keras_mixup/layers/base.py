"""The machinery every mixing layer shares: call forms, labels, plan → apply.

A subclass only says how to *sample* a plan (``sample_plan``, with its
partners from `_partners`) and which inputs it accepts (``_check_inputs``);
this base class unpacks the call, converts labels, draws a fresh seed per
call, and applies the plan to inputs, labels, sample weights and
segmentation masks alike. The seed stream and state variables are in
`keras_mixup.layers.state`, the site protocol of `MixupModel` in
`keras_mixup.layers.sites`, partner pools in `keras_mixup.layers.partners`.

Backends: every computation goes through `keras_mixup.backend.ops`, so the
same code runs on TensorFlow, on JAX, and inside a ``tf.data`` map under
any backend.
"""

import keras

from keras_mixup import backend
from keras_mixup.layers import boxes as box_layer
from keras_mixup.layers import inputs as boundary
from keras_mixup.layers import partners as pools
from keras_mixup.layers.sites import SiteMixing, current_scope
from keras_mixup.layers.state import MixingState
from keras_mixup.ops import boxes as box_ops
from keras_mixup.ops import labels as label_ops
from keras_mixup.ops.mixing import (
    _lanes_of, blend, blend_values, blend_ways, check_plan_shapes, per_example,
)
from keras_mixup.ops.pairing import (
    LABEL_AWARE,
    NEAREST,
    check_neighbors,
    check_pairing,
    check_ways,
    class_ids,
    sample_partners,
)
from keras_mixup.ops.plans import identity_where_off  # noqa: F401 (re-exported)
from keras_mixup.ops.random import check_concentration, check_seed, fold_seed

MIX_MODES = ("both", "inputs", "labels")
SCOPES = ("replica", "global")


def _check_choice(value, name, choices, what):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(repr(c) for c in choices)} "
            f"({what}); got {value!r}."
        )
    return value


class BaseMixingLayer(SiteMixing, MixingState, keras.layers.Layer):
    """Base class of the mixing layers; not used directly.

    Args:
        pairing: how partners are chosen (`keras_mixup.ops.pairing`):
            ``"derangement"`` (default: a random partner, never the example
            itself), ``"permutation"`` (the papers' ``randperm``), ``"flip"``,
            ``"roll"``, ``"same_class"``, ``"other_class"``, ``"nearest"``,
            ``"nearest_same_class"``.
        neighbors: with ``pairing="nearest"`` (or ``"nearest_same_class"``),
            draw the partner uniformly among this many nearest examples (1:
            the nearest).
        ways: how many examples make one mixed example (2: a pair).
        mix: what is mixed: ``"both"`` (default), ``"inputs"`` (labels and
            sample weights stay each example's own) or ``"labels"`` (inputs
            stay, labels mix) — the ablations of Zhang et al.
        pairing_scope: ``"replica"`` (default: partners from the examples
            a device sees) or ``"global"`` (from the whole global batch
            under a distribution; the same as ``"replica"`` on one device).
        num_classes: number of classes, needed when labels are integer ids;
            a dict with the keys of a dict of labels (multi-output) gives
            each its own.
        label_smoothing: float in [0, 1), applied to class labels before
            mixing.
        seed: int, or None for a random one.
        jit_compile: apply the plan (gather, blend, cast) as one XLA
            program (default): one pass over the batch, 2–7× faster on
            large images, in a ``tf.data`` map too, for ~60 ms of compiling
            per input shape. Set False on a platform without XLA, or for
            tiny inputs.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``,
            ``dtype``). The dtype policy decides the dtype of the mixed
            inputs; labels always come out float32.
    """

    # `ds.map(layer)` traces the layer with AutoGraph, which would transform
    # the source of `__call__` and of every function of ours it calls:
    # about 1 s per map, 15x the map's own trace. The layers need no
    # conversion (no Python control flow on tensors). This attribute is the
    # mark `tf.autograph.experimental.do_not_convert` sets on what it
    # returns (AutoGraph then calls the object as it is); set here so that
    # importing the layers does not import TensorFlow.
    autograph_info__ = frozenset()

    # Most partners a layer of this class mixes with per example (None:
    # no limit); CutMix's masks are two-way.
    _max_ways = None

    def __init__(
        self,
        num_classes=None,
        label_smoothing=0.0,
        seed=None,
        jit_compile=True,
        pairing="derangement",
        neighbors=1,
        ways=2,
        mix="both",
        pairing_scope="replica",
        bounding_box_format=None,
        min_visibility=0.0,
        stop_gradient=False,
        **kwargs,
    ):
        # Labels must stay float32 whatever the policy: cast inputs by hand.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.num_classes = boundary.check_num_classes(num_classes)
        self.label_smoothing = label_ops.check_label_smoothing(label_smoothing)
        self.seed, self._base_seed = check_seed(seed)
        if not isinstance(jit_compile, bool):
            raise TypeError(f"`jit_compile` must be True or False; got {jit_compile!r}.")
        self.jit_compile = jit_compile
        self.pairing = check_pairing(pairing)
        self.neighbors = check_neighbors(neighbors)
        self.ways = check_ways(ways)
        if self._max_ways is not None and self.ways > self._max_ways:
            raise ValueError(
                f"{type(self).__name__} mixes two examples (a mask says which "
                f"one each value comes from); got ways={self.ways}. Use "
                "MixUp(ways=k) for k-way mixing."
            )
        if self.ways > 2 and self.pairing == "flip":
            raise ValueError(
                "pairing='flip' pairs examples two by two; with ways > 2 use "
                "'derangement', 'permutation', 'roll', a label-aware pairing "
                "or 'nearest'."
            )
        if self.pairing in NEAREST and self.neighbors < self.ways - 1:
            raise ValueError(
                f"pairing={self.pairing!r} draws {self.ways - 1} distinct partners "
                f"among the `neighbors` nearest: pass neighbors >= {self.ways - 1} "
                f"(got {self.neighbors})."
            )
        self.mix = _check_choice(mix, "mix", MIX_MODES, "what is mixed")
        self.pairing_scope = _check_choice(
            pairing_scope, "pairing_scope", SCOPES, "where partners come from"
        )
        self.bounding_box_format = box_ops.check_format(
            bounding_box_format, type(self).__name__
        )
        self.min_visibility = box_layer.check_min_visibility(min_visibility)
        if not isinstance(stop_gradient, bool):
            raise TypeError(f"`stop_gradient` must be True or False; got {stop_gradient!r}.")
        self.stop_gradient = stop_gradient
        self._init_state()
        if self._label_aware():
            self._init_unpaired()
        self.built = True

    def build(self, *args, **kwargs):
        # Nothing depends on input shapes; the seed state exists already.
        self.built = True

    def _label_aware(self):
        return self.pairing in LABEL_AWARE

    def _partner_count(self):
        """Partner columns of this layer's plans (``ways - 1``)."""
        return self.ways - 1

    # ------------------------------------------------------------------ API

    def sample_plan(self, inputs, seed, context=None):
        """Samples the plan for a batch: ``{"index", "lam"[, "weights",
        "mask", "found"]}`` (see `keras_mixup.ops.mixing`).

        Args:
            inputs: the (converted) inputs, used for batch size and shape
                (and by ``pairing="nearest"``).
            seed: an int64 ``(2,)`` stateless seed.
            context: what label-aware pairings and partner pools need:
                ``{"labels": y}`` or ``{"ids": class_ids}``, and
                ``"partners"`` (a prepared pool).
        """
        raise NotImplementedError

    def _partners(self, inputs, seed, context=None):
        """The partners of a batch by this layer's pairing:
        ``(index, found)``; see `keras_mixup.ops.pairing.sample_partners`."""
        K = backend.ops()
        context = context or {}
        pool = context.get("partners")
        batch = K.batch_size(keras.tree.flatten(inputs)[0])
        extra = {}
        if self._label_aware():
            ids = context.get("ids")
            if ids is None:
                if context.get("labels") is None:
                    raise ValueError(self._needs_labels_message())
                ids = class_ids(context["labels"])
            extra["ids"] = ids
            if pool is not None:
                extra["pool_ids"] = class_ids(pool["labels"])
        if self.pairing in NEAREST:
            extra["features"] = inputs
            if pool is not None:
                extra["pool_features"] = pool["images"]
            else:
                static = keras.tree.flatten(inputs)[0].shape[0]
                if isinstance(static, int) and static > 1:
                    check_neighbors(self.neighbors, static)
        pool_size = None
        if pool is not None:
            pool_size = K.batch_size(keras.tree.flatten(pool["images"])[0])
        return sample_partners(
            self.pairing, batch, seed, self.ways, self.neighbors,
            pool_size=pool_size, **extra,
        )

    def _needs_labels_message(self):
        return (
            f"{type(self).__name__}(pairing={self.pairing!r}) pairs examples by "
            "class, so it needs the labels: call layer(x, y) (or train it as a "
            "MixupModel site, where the step passes them)."
        )

    def plan(self, inputs, seed, shards=1, context=None):
        """`sample_plan`, or the identity plan while mixing is disabled.

        With ``shards > 1`` (data parallelism on JAX, where the step sees
        the global batch) the batch is planned as ``shards`` equal parts,
        each with its own draws and partners from its own part — what each
        device would have drawn for its own examples.
        """
        if shards == 1:
            plan = self.sample_plan(inputs, seed, context)
        else:
            plan = self._sharded_plan(inputs, seed, shards, context)
        return identity_where_off(plan, self._state("enabled") > 0.5)

    def _sharded_plan(self, inputs, seed, shards, context=None):
        K = backend.ops()
        batch = keras.tree.flatten(inputs)[0].shape[0]
        size = batch // shards
        parts = []
        for s in range(shards):
            part = keras.tree.map_structure(lambda t: t[s * size:(s + 1) * size], inputs)
            sub = None
            if context is not None:
                sub = {
                    k: v if k == "partners" else keras.tree.map_structure(
                        lambda t: t[s * size:(s + 1) * size], v
                    )
                    for k, v in context.items()
                }
            parts.append(self.sample_plan(part, fold_seed(seed, s), sub))
        plan = {
            "index": K.concat([p["index"] + s * size for s, p in enumerate(parts)], 0),
        }
        for key in ("lam", "weights", "found", "offset"):
            if key in parts[0]:
                plan[key] = K.concat([p[key] for p in parts], 0)
        if "paste" in parts[0]:  # (2k, N) boxes a resized partner is pasted in
            rows = parts[0]["paste"].shape[0]
            plan["paste"] = K.concat([K.broadcast_to(p["paste"], [rows, size]) for p in parts], 1)
        if "mask" in parts[0]:
            masks = [p["mask"] for p in parts]
            masks = [K.broadcast_to(m, (size,) + tuple(m.shape[1:])) for m in masks]
            plan["mask"] = K.concat(masks, 0)
        return plan

    def _set_concentration(self, alpha, beta):
        """Sets ``alpha``/``beta`` (the configured values) and the
        ``concentration`` weight ``[α, β]`` that sampling reads in the graph
        (so a `MixupSchedule` can change it per epoch without retracing)."""
        self.alpha = float(check_concentration(alpha, "alpha"))
        self.beta = None if beta is None else float(check_concentration(beta, "beta"))
        self.concentration = self.add_weight(
            shape=(2,),
            dtype="float32",
            initializer=keras.initializers.Constant(
                [self.alpha, self.alpha if self.beta is None else self.beta]
            ),
            trainable=False,
            name="concentration",
        )

    def expected_partner_weight(self):
        """E[1 − λ] under MixupE's λ distribution, as a float32 tensor.

        The weight of the partner example in the first-order term of
        mixup's implicit regularizer (Zou, Verma et al., 2023); 0 while
        mixing is disabled. Used by `keras_mixup.MixupE`.
        """
        if not hasattr(self, "concentration"):
            raise NotImplementedError(
                f"{type(self).__name__} does not define the mixing "
                "distribution MixupE needs; use MixUp, CutMix or RandomMix "
                "sites."
            )
        # λ ~ α/(α+β)·Beta(α+1, β) + β/(α+β)·Beta(β+1, α) gives
        # E[1 − λ] = 2αβ / ((α+β)(α+β+1)); α/(2α+1) when α = β.
        a, b = backend.ops().unstack(self._state("concentration"))
        if self.ways > 2:
            # k-way: the own weight is Beta(α, (k−1)α); weighted by itself
            # (the loss term it scales), E[1 − λ] = (k−1)α / (kα + 1).
            k = float(self.ways)
            return self._state("enabled") * (k - 1.0) * a / (k * a + 1.0)
        return self._state("enabled") * 2.0 * a * b / ((a + b) * (a + b + 1.0))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "label_smoothing": self.label_smoothing,
                "seed": self.seed,
                "jit_compile": self.jit_compile,
                "pairing": self.pairing,
                "neighbors": self.neighbors,
                "ways": self.ways,
                "mix": self.mix,
                "pairing_scope": self.pairing_scope,
                "bounding_box_format": self.bounding_box_format,
                "min_visibility": self.min_visibility,
                "stop_gradient": self.stop_gradient,
            }
        )
        return config

    def compute_output_shape(self, *args, **kwargs):
        spec = self.compute_output_spec(*args, **kwargs)
        return keras.tree.map_structure(lambda s: s.shape, spec)

    # ----------------------------------------------------------------- call

    def call(self, inputs, labels=None, sample_weight=None, training=True, partners=None):
        name = type(self).__name__
        data, pack = boundary.unpack(name, inputs, labels, sample_weight, partners)
        if "labels" not in data and "bounding_boxes" not in data:
            scope = current_scope()
            if training and scope is None:
                raise ValueError(boundary.missing_labels_message(name, inputs))
            if "partners" in data:
                raise ValueError(
                    f"{name} got `partners` without labels; call "
                    "layer(x, y, partners=(x_pool, y_pool))."
                )
            if not training:
                self._check_inputs(data["images"])
                return self._cast_inputs(data["images"])
            return self._site_call(data["images"], scope)
        self._check_inputs(data["images"])
        data = self._prepare(data, training)
        if not training:
            # Nothing mixed, but the same dtypes and shapes as in training.
            data.pop("partners", None)
            data["images"] = self._cast_inputs(data["images"])
            return pack(data)
        return pack(self._mix(data))

    def _cast_inputs(self, images):
        K = backend.ops()
        return keras.tree.map_structure(
            lambda x: K.cast(x, self.compute_dtype), images
        )

    def __call__(self, *args, **kwargs):
        boundary.check_call(type(self).__name__, args, kwargs)
        # Inside a tf.data graph under JAX or PyTorch, Keras' own call
        # machinery would convert the symbolic tf.Tensors to the backend's
        # arrays and fail: compute with TensorFlow ops there instead (what
        # Keras' preprocessing layers do in tf.data).
        if backend.keras_backend() != "tensorflow" and backend.in_tf_graph():
            kwargs.setdefault("training", True)
            with backend.use("tensorflow"):
                return self.call(*args, **kwargs)
        return super().__call__(*args, **kwargs)

    def compute_output_spec(
        self, inputs, labels=None, sample_weight=None, training=True, partners=None
    ):
        data, pack = boundary.unpack(type(self).__name__, inputs, labels, sample_weight, partners)
        data.pop("partners", None)
        # Refuse what cannot be mixed when the model is built, not at fit().
        self._check_inputs(data["images"])
        out = dict(data)
        out["images"] = keras.tree.map_structure(
            lambda s: keras.KerasTensor(s.shape, self.compute_dtype), data["images"]
        )
        if "labels" in data:
            out["labels"] = self._label_specs(data["labels"])
        if "sample_weight" in data:
            out["sample_weight"] = keras.KerasTensor(data["sample_weight"].shape, "float32")
        if "bounding_boxes" in data and training and self.mix != "inputs":
            bb = data["bounding_boxes"]
            batch, n = tuple(bb["boxes"].shape)[:2]
            n = None if n is None else n * self.ways
            out["bounding_boxes"] = {
                "boxes": keras.KerasTensor((batch, n, 4), "float32"),
                "labels": keras.KerasTensor((batch, n), bb["labels"].dtype),
                "weights": keras.KerasTensor((batch, n), "float32"),
            }
        return pack(out)

    # ------------------------------------------------------------ internals

    def _label_specs(self, labels):
        per_leaf = boundary.num_classes_for(self.num_classes, labels)

        def spec(y, n):
            shape = tuple(y.shape)
            if label_ops.is_class_ids(y):
                shape = (shape[0], n)
            return keras.KerasTensor(shape, "float32")

        return keras.tree.map_structure(spec, labels, per_leaf)

    def _check_inputs(self, inputs):
        """Validates the tensors to mix (subclasses extend it)."""
        boundary.check_images(type(self).__name__, inputs)

    def _prepare(self, data, training=True):
        """Converts labels and checks shapes and batch sizes (outside XLA).

        Label smoothing is a training target: ``training=False`` converts
        the labels (one-hot float32, as in training) without it.
        """
        name = type(self).__name__
        out = dict(data)
        pool = out.pop("partners", None)
        if "labels" in data:
            out["labels"] = boundary.to_soft_labels(
                data["labels"], self.num_classes, self.label_smoothing if training else 0.0
            )
        elif self._label_aware():
            raise ValueError(
                f"pairing={self.pairing!r} pairs by class, so {name} needs "
                "class labels ('labels') besides the bounding boxes."
            )
        if "sample_weight" in data:
            boundary.check_value(data["sample_weight"], "sample_weight", name)
            sw = backend.ops().cast(data["sample_weight"], "float32")
            rank = backend.rank(sw)
            if rank is not None and not (rank == 1 or (rank == 2 and sw.shape[1] == 1)):
                raise ValueError(
                    "`sample_weight` must hold one weight per example, shape "
                    f"(batch,) or (batch, 1); got shape {tuple(sw.shape)}."
                )
            out["sample_weight"] = sw
        if "segmentation_masks" in data:
            masks = data["segmentation_masks"]
            boundary.check_value(masks, "segmentation_masks", name)
            out["segmentation_masks"] = self._check_segmentation_masks(masks, out["images"])
        if "bounding_boxes" in data:
            if pool is not None:
                raise ValueError(
                    f"{name} cannot take bounding boxes with a pool of "
                    "partners (the pool has no boxes); mix within the batch."
                )
            out["bounding_boxes"] = box_layer.prepare(self, data["bounding_boxes"], out["images"])
        boundary.check_batch_sizes(name, out)
        if pool is not None:
            out["partners"] = pools.prepare(self, pool, out, training)
        return out

    def _check_segmentation_masks(self, masks, images):
        masks = backend.ops().convert_to_tensor(masks)
        if not backend.is_float(masks):
            raise TypeError(
                f"{type(self).__name__} interpolates segmentation masks, so "
                f"integer masks (dtype {backend.dtype_name(masks)}) cannot be mixed "
                "without losing their meaning. Pass one-hot float masks "
                "(`tf.one_hot(masks, num_classes)`), or use CutMix, which "
                "copies integer masks exactly."
            )
        return masks

    def _mix(self, data):
        """Samples a fresh plan for ``data`` and applies it.

        The plan, a few numbers per example, is sampled with plain ops:
        compiled with XLA it took over a second to compile, for every new
        input shape. Only its application, which reads and writes every
        value, is an XLA program (with ``jit_compile``): one fused pass
        over the data, which compiles in about 50 ms.
        """
        context = {}
        if self._label_aware():
            context["labels"] = data["labels"]
        if "partners" in data:
            context["partners"] = data["partners"]
        if backend.uses_tensorflow() and backend.ops().executing_eagerly():
            # Eagerly, one graph call rather than ~100 ops one by one.
            plan = self._graph("_sample_plan_parts")(data["images"], context)
        else:
            plan = self._sample_plan_parts(data["images"], context)
        if hasattr(self, "unpaired"):
            self._add_unpaired(self._unpaired_delta(plan.get("found")))
        return self._jit("_cast_and_apply")(plan, data)

    def _sample_plan_parts(self, inputs, context=None):
        return self._plan_parts(inputs, self.next_seed(), context)

    def _plan_parts(self, inputs, seed, context=None):
        """`plan` less its parts the size of the inputs (a CutMix mask),
        which `_full_plan` adds inside the XLA program that applies it."""
        return identity_where_off(
            self._sample_parts(inputs, seed, context), self._state("enabled") > 0.5
        )

    def _sample_parts(self, inputs, seed, context=None):
        """`sample_plan` less its parts the size of the inputs."""
        return self.sample_plan(inputs, seed, context)

    def _full_plan(self, parts, inputs):
        """The plan of `_sample_parts`' ``parts``."""
        return parts

    def _cast_and_apply(self, plan, data):
        data = dict(data)
        # Inputs come out in the compute dtype; in the XLA program the cast
        # fuses with the mixing.
        data["images"] = self._cast_inputs(data["images"])
        if "partners" in data:
            pool = dict(data["partners"])
            pool["images"] = self._cast_inputs(pool["images"])
            data["partners"] = pool
        return self.apply_plan(self._full_plan(plan, data["images"]), data)

    def _leaf_weights(self, plan, leaves):
        """Each leaf's blend weight: the mask, or λ reshaped to its rank."""
        mask = plan.get("mask")
        if mask is not None:
            return [mask] * len(leaves)
        return [per_example(plan["lam"], backend.rank(t)) for t in leaves]

    def _blend_leaves(self, plan, leaves, sources=None):
        sources = sources or [None] * len(leaves)
        if "weights" in plan:  # k-way
            return [
                blend_ways(t, plan["index"], plan["lam"], plan["weights"], s)
                for t, s in zip(leaves, sources)
            ]
        # A mask is copied, not blended: a select, so a NaN or Inf in one
        # example reaches only the pixels it gives its partner.
        select = "mask" in plan
        return [
            self._blend_one(plan, t, w, s, select)
            for t, w, s in zip(leaves, self._leaf_weights(plan, leaves), sources)
        ]

    # Whether the plan's masks hold only 0 and 1 (cuts, binary FMix and
    # Bernoulli masks): blended by one select (`blend`'s ``binary``).
    _binary_mask = False

    def _blend_one(self, plan, t, weight, source=None, select=False, nearest=False):
        """One tensor blended with its partner: ``t[index]`` (or
        ``source[index]``), or the view `_partner_view` gives. An image
        whose weight has its full shape (a cut built on the image's layout,
        `ops.mixing._lane_mask`) is blended on its ``(B, H, W·C)`` view."""
        pool = t if source is None else source
        view = self._partner_view(pool, plan, nearest=nearest)
        binary = select and self._binary_mask
        lanes = _lanes_of(t, weight)
        if lanes is None:
            if view is None:
                return blend(t, plan["index"], weight, select=select, source=source, binary=binary)
            return blend_values(t, view, weight, select=select, binary=binary)
        K = backend.ops()
        if view is None:
            check_plan_shapes(t, plan["index"], weight, pool)
            view = K.gather(pool, plan["index"])
        merged = [K.reshape(a, lanes) for a in (t, view, weight)]
        return K.reshape(blend_values(*merged, select=select, binary=binary), K.shape(t))

    def _partner_view(self, t, plan, nearest=False):
        """The partner values each position of ``t`` reads, ``t``'s shape,
        when they are not ``t[index]`` at the same position (a region
        pasted elsewhere, a resized partner; ``nearest`` for integer
        segmentation maps), else None."""
        return None

    def mix_inputs(self, plan, inputs, source=None):
        """Applies a plan to the inputs (a tensor or a nest of tensors);
        partners from ``source`` (a pool shaped like the inputs) if given."""
        K = backend.ops()
        leaves = [K.convert_to_tensor(t) for t in keras.tree.flatten(inputs)]
        sources = None if source is None else keras.tree.flatten(source)
        return keras.tree.pack_sequence_as(inputs, self._blend_leaves(plan, leaves, sources))

    def _mix_targets(self, plan, y, source=None):
        """Mixes a label-like tensor with the plan's per-example weights."""
        if "weights" in plan:
            return blend_ways(y, plan["index"], plan["lam"], plan["weights"], source)
        return blend(y, plan["index"], per_example(plan["lam"], backend.rank(y)), source=source)

    def apply_plan(self, plan, data):
        """Applies one plan to every entry of the normalized data dict
        (inputs unless ``mix="labels"``; labels, sample weights and
        segmentation masks unless ``mix="inputs"``)."""
        out = dict(data)
        pool = out.pop("partners", None) or {}
        mask = plan.get("mask")
        if self.mix != "labels":
            out["images"] = self.mix_inputs(plan, data["images"], pool.get("images"))
        if self.mix == "inputs":
            return out
        if "bounding_boxes" in data:
            out["bounding_boxes"] = box_layer.follow(
                self, plan, data["bounding_boxes"], data["images"]
            )
        labels = pool.get("labels")
        if "labels" in data:
            out["labels"] = keras.tree.map_structure(
                lambda y, s: self._mix_targets(plan, y, s),
                data["labels"],
                labels if labels is not None else keras.tree.map_structure(lambda _: None, data["labels"]),
            )
        if "sample_weight" in data:
            sw = data["sample_weight"]
            out["sample_weight"] = self._mix_targets(plan, sw, pools.pool_weights(pool, sw))
        if "segmentation_masks" in data:
            seg = data["segmentation_masks"]
            if mask is None:
                out["segmentation_masks"] = self._mix_targets(plan, seg)
            else:
                weight = self._mask_for(mask, backend.rank(seg))
                out["segmentation_masks"] = self._blend_one(
                    plan, seg, weight, select=True, nearest=not backend.is_float(seg)
                )
        return out

    def _mask_for(self, mask, rank):
        """The input-shaped mask, adapted to a tensor of the given rank."""
        if rank == backend.rank(mask):
            return mask
        if rank == backend.rank(mask) - 1:
            axis = 1 if self._data_format == "channels_first" else -1
            return backend.ops().squeeze(mask, axis)
        raise ValueError(
            f"Segmentation masks of rank {rank} do not match inputs of rank "
            f"{backend.rank(mask)}: pass masks shaped like the inputs, with or "
            "without the channel axis."
        )

    _data_format = "channels_last"
