"""The machinery every mixing layer shares: call forms, seeds, labels, apply.

A subclass only says how to *sample* a plan (``sample_plan``) and which
inputs it accepts (``_check_inputs``); this base class unpacks the call,
converts labels, draws a fresh seed per call, and applies the plan to
inputs, labels, sample weights and segmentation masks alike.

Backends: every computation goes through `keras_mixup.backend.ops`, so the
same code runs on TensorFlow, on JAX, and inside a ``tf.data`` map under
any backend. The layer's state (call counter, ``enabled``,
``concentration``) lives in Keras variables; inside a ``tf.data`` graph
under JAX or PyTorch, where those cannot be read, a TensorFlow mirror of
each is made on first use and kept in step by `set_mixing_state`.
"""

import keras
import numpy as np

from keras_mixup import backend
from keras_mixup.layers import inputs as boundary
from keras_mixup.layers.sites import current_scope
from keras_mixup.ops import labels as label_ops
from keras_mixup.ops.mixing import blend, per_example
from keras_mixup.ops.random import check_concentration, check_seed, fold_seed


def identity_where_off(plan, on):
    """The plan where ``on`` (a bool scalar or ``(B,)``), the identity elsewhere:
    own index, λ = 1, full mask."""
    K = backend.ops()
    out = dict(plan)
    out["index"] = K.where(on, plan["index"], K.range(K.batch_size(plan["index"]), dtype="int32"))
    out["lam"] = K.where(on, plan["lam"], 1.0)
    if "mask" in plan:
        mask = plan["mask"]
        mask_on = on if backend.rank(on) == 0 else per_example(on, backend.rank(mask))
        out["mask"] = K.where(mask_on, mask, 1.0)
    if "bounds" in plan:  # (2k, N) cut bounds: an empty cut where off
        bounds_on = on if backend.rank(on) == 0 else K.expand_dims(on, 0)
        out["bounds"] = K.where(bounds_on, plan["bounds"], 0)
    return out


def _traced_without_scope(x):
    """Whether ``x`` is a JAX tracer while no `keras.StatelessScope`
    collects variable updates: a variable assigned now would keep the
    tracer (a bare ``jax.jit`` around a layer call)."""
    import sys

    jax = sys.modules.get("jax")
    tracer = getattr(getattr(jax, "core", None), "Tracer", None)
    if tracer is None or not isinstance(x, tracer):
        return False
    try:  # no public API (keras.StatelessScope has no "current" accessor)
        from keras.src.backend.common.stateless_scope import in_stateless_scope
    except ImportError:  # pragma: no cover - a Keras that moved it
        return False
    return not in_stateless_scope()


class BaseMixingLayer(keras.layers.Layer):
    """Base class of the mixing layers; not used directly.

    Args:
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

    def __init__(
        self,
        num_classes=None,
        label_smoothing=0.0,
        seed=None,
        jit_compile=True,
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
        # A counter advanced by every call; in TensorFlow atomically
        # (RngReadAndSkip is a fetch-and-add), so parallel tf.data map calls
        # never share a plan. (JAX without x64 has no int64: int32 there.)
        self._tf_mirrors = {}
        self.seed_state = self.add_weight(
            shape=(3,),
            dtype="int64" if backend.keras_backend() == "tensorflow" else "int32",
            initializer="zeros",
            trainable=False,
            name="seed_state",
        )
        # 1.0 mixes, 0.0 makes every plan the identity; read in the graph,
        # so `keras_mixup.callbacks.MixupSchedule` can switch mixing off
        # between epochs without retracing.
        self.enabled = self.add_weight(
            shape=(),
            dtype="float32",
            initializer="ones",
            trainable=False,
            name="enabled",
        )
        self._compiled = {}
        self.built = True

    def build(self, *args, **kwargs):
        # Nothing depends on input shapes; the seed state exists already.
        self.built = True

    # ------------------------------------------------------------------ API

    def sample_plan(self, inputs, seed):
        """Samples the plan for a batch: ``{"index", "lam"[, "mask"]}``.

        Args:
            inputs: the (converted) inputs, used for batch size and shape.
            seed: an int64 ``(2,)`` stateless seed.
        """
        raise NotImplementedError

    def plan(self, inputs, seed, shards=1):
        """`sample_plan`, or the identity plan while mixing is disabled.

        With ``shards > 1`` (data parallelism on JAX, where the step sees
        the global batch) the batch is planned as ``shards`` equal parts,
        each with its own draws and partners from its own part — what each
        device would have drawn for its own examples.
        """
        if shards == 1:
            plan = self.sample_plan(inputs, seed)
        else:
            plan = self._sharded_plan(inputs, seed, shards)
        return identity_where_off(plan, self._state("enabled") > 0.5)

    def _sharded_plan(self, inputs, seed, shards):
        K = backend.ops()
        batch = keras.tree.flatten(inputs)[0].shape[0]
        size = batch // shards
        parts = []
        for s in range(shards):
            part = keras.tree.map_structure(lambda t: t[s * size:(s + 1) * size], inputs)
            parts.append(self.sample_plan(part, fold_seed(seed, s)))
        plan = {
            "index": K.concat([p["index"] + s * size for s, p in enumerate(parts)], 0),
            "lam": K.concat([p["lam"] for p in parts], 0),
        }
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
        return self._state("enabled") * 2.0 * a * b / ((a + b) * (a + b + 1.0))

    def set_mixing_state(self, enabled=None, concentration=None):
        """Sets ``enabled`` (bool) and/or ``concentration`` ``[α, β]``, the
        values the compiled step and ``tf.data`` maps read in the graph
        (used by `keras_mixup.callbacks.MixupSchedule`)."""
        values = {}
        if enabled is not None:
            values["enabled"] = np.float32(1.0 if enabled else 0.0)
        if concentration is not None:
            values["concentration"] = np.asarray(concentration, "float32")
        for name, value in values.items():
            getattr(self, name).assign(value)
            if name in self._tf_mirrors:
                self._tf_mirrors[name].assign(value)

    def _state(self, name):
        """The layer variable ``name`` as the running op namespace reads it:
        the Keras variable, or inside a ``tf.data`` graph under another
        backend its TensorFlow mirror."""
        variable = getattr(self, name)
        if not backend.uses_tensorflow():
            # JAX: the value (traced inside a step); the counter's variable.
            return variable if name == "seed_state" else variable.value
        if backend.keras_backend() == "tensorflow":
            return variable
        mirror = self._tf_mirrors.get(name)
        if mirror is None:
            tf = backend.require_tensorflow("Mixing in a tf.data pipeline")
            value = keras.ops.convert_to_numpy(variable)
            if name == "seed_state":
                value = value.astype("int64")
            with tf.init_scope():
                mirror = tf.Variable(value, trainable=False, name=f"{self.name}_{name}")
            self._tf_mirrors[name] = mirror
        return mirror

    def next_seed(self):
        """A fresh stateless seed: the layer seed and a call counter."""
        K = backend.ops()
        state = self._state("seed_state")
        if K.NAME == "tensorflow":
            import tensorflow as tf

            old = tf.raw_ops.RngReadAndSkip(
                resource=state.handle if isinstance(state, tf.Variable) else state.value.handle,
                alg=1,
                delta=tf.constant(1, tf.uint64),
            )
            return tf.stack([tf.constant(self._base_seed, tf.int64), old[0]])
        # JAX / PyTorch: a plain read-and-increment (calls are sequential);
        # inside a jitted function Keras threads the variable's new value.
        value = keras.ops.convert_to_tensor(state)
        count = value[0]
        if _traced_without_scope(count):
            raise RuntimeError(self._bare_jit_message())
        state.assign(value + keras.ops.array([1, 0, 0], "int32"))
        return fold_seed(K.seed_from_int(self._base_seed), count)

    def _bare_jit_message(self):
        name = type(self).__name__
        return (
            f"{name} was called inside `jax.jit` (or another JAX "
            "transformation) on its own variables: its call counter, which "
            "gives every call a fresh plan, cannot change inside the "
            "compiled function, so every call would reuse one plan. Compile "
            "`layer.stateless_call(trainable_variables, "
            "non_trainable_variables, x, y)` instead and carry the "
            "non-trainable variables it returns into the next call (what a "
            "JAX training loop does), call the layer outside `jax.jit`, map "
            f"it over a tf.data pipeline (`ds.map({name}(...))`), or train "
            "with `keras_mixup.MixupModel`."
        )

    # --------------------------------------------------------------- config

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "label_smoothing": self.label_smoothing,
                "seed": self.seed,
                "jit_compile": self.jit_compile,
            }
        )
        return config

    def compute_output_shape(self, *args, **kwargs):
        spec = self.compute_output_spec(*args, **kwargs)
        return keras.tree.map_structure(lambda s: s.shape, spec)

    # ----------------------------------------------------------------- call

    def call(self, inputs, labels=None, sample_weight=None, training=True):
        name = type(self).__name__
        data, pack = boundary.unpack(name, inputs, labels, sample_weight)
        if "labels" not in data:
            scope = current_scope()
            if training and scope is None:
                raise ValueError(boundary.missing_labels_message(name, inputs))
            if not training:
                self._check_inputs(data["images"])
                return self._cast_inputs(data["images"])
            return self._site_call(data["images"], scope)
        self._check_inputs(data["images"])
        data = self._prepare(data, training)
        if not training:
            # Nothing mixed, but the same dtypes and shapes as in training.
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

    def _jit(self, name):
        """The method ``name``, XLA-compiled when ``jit_compile`` (cached).

        TensorFlow only: under JAX the step (or the user's ``jax.jit`` of
        ``stateless_call``) compiles the whole computation at once.
        """
        if not backend.uses_tensorflow() or not self.jit_compile:
            return getattr(self, name)
        key = (name, backend.keras_backend())
        fn = self._compiled.get(key)
        if fn is None:
            import tensorflow as tf

            fn = tf.function(getattr(self, name), jit_compile=True, autograph=False)
            self._compiled[key] = fn
        return fn

    def _graph(self, name):
        """The method ``name`` as a ``tf.function`` without XLA (cached;
        shapes generalized after a second signature)."""
        key = (name, backend.keras_backend(), "graph")
        fn = self._compiled.get(key)
        if fn is None:
            import tensorflow as tf

            fn = tf.function(getattr(self, name), autograph=False, reduce_retracing=True)
            self._compiled[key] = fn
        return fn

    def compute_output_spec(self, inputs, labels=None, sample_weight=None, training=True):
        data, pack = boundary.unpack(type(self).__name__, inputs, labels, sample_weight)
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
        out["labels"] = boundary.to_soft_labels(
            data["labels"], self.num_classes, self.label_smoothing if training else 0.0
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
        boundary.check_batch_sizes(name, out)
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
        if backend.uses_tensorflow() and backend.ops().executing_eagerly():
            # Eagerly, one graph call rather than ~100 ops one by one.
            plan = self._graph("_sample_plan_parts")(data["images"])
        else:
            plan = self._sample_plan_parts(data["images"])
        return self._jit("_cast_and_apply")(plan, data)

    def _sample_plan_parts(self, inputs):
        return self._plan_parts(inputs, self.next_seed())

    def _plan_parts(self, inputs, seed):
        """`plan` less its parts the size of the inputs (a CutMix mask),
        which `_full_plan` adds inside the XLA program that applies it."""
        return identity_where_off(self._sample_parts(inputs, seed), self._state("enabled") > 0.5)

    def _sample_parts(self, inputs, seed):
        """`sample_plan` less its parts the size of the inputs."""
        return self.sample_plan(inputs, seed)

    def _full_plan(self, parts, inputs):
        """The plan of `_sample_parts`' ``parts``."""
        return parts

    def _cast_and_apply(self, plan, data):
        data = dict(data)
        # Inputs come out in the compute dtype; in the XLA program the cast
        # fuses with the mixing.
        data["images"] = self._cast_inputs(data["images"])
        return self.apply_plan(self._full_plan(plan, data["images"]), data)

    def _site_call(self, inputs, scope):
        """Mixes a hidden state (or the input) as a site of a MixupModel.

        Only the site chosen for this step samples and applies a plan (in a
        ``tf.cond``, so the others cost nothing); every site reports its
        plan — the identity when not chosen — for the labels.
        """
        K = backend.ops()
        site = scope.site_id(self)
        self._check_inputs(inputs)
        x = keras.tree.map_structure(lambda t: K.cast(t, self.compute_dtype), inputs)
        if scope.clean:
            return x
        batch = K.batch_size(keras.tree.flatten(x)[0])
        seed = fold_seed(scope.seed, site)

        def mix():
            if K.NAME == "tensorflow" and scope.shards == 1:
                out, plan = self._mix_site(x, seed)
            else:
                plan = self.plan(keras.tree.flatten(x)[0], seed, scope.shards)
                out = self.mix_inputs(plan, x)
            return out, plan["index"], plan["lam"]

        def keep():
            return x, K.range(batch, dtype="int32"), K.ones([batch], "float32")

        if len(scope.site_ids) == 1:
            out, index, lam = mix()
        else:
            out, index, lam = K.cond(scope.choice == site, mix, keep)
        scope.record(site, index, lam)
        return out

    def _mix_site(self, x, seed):
        """Samples a plan and mixes ``x`` with it in one compiled call
        (TensorFlow's fast path; JAX compiles the whole step anyway).

        One XLA program (with ``jit_compile``) samples the plan and blends
        in a single pass over the data, instead of a gather and three
        element-wise ops in the step: in a train step without XLA that is
        what keeps input mixup near the plain step time. Its gradient is
        the blend's transpose, ``w·g + Σ_{i: index_i = j} (1 − w_i)·g_i``;
        the plan carries none (λ reads the ``concentration`` weight).
        """
        import tensorflow as tf

        leaves = tf.nest.flatten(x)
        plans = []

        @tf.custom_gradient
        def mixed(*leaves):
            out, plan = self._jit("_sample_and_mix")(list(leaves), seed)
            plans.append(plan)

            def grad(*upstream):
                # An op of this graph takes the plan first (a tf.cond's
                # gradient branch can only capture it that way).
                saved = tf.nest.map_structure(tf.identity, plan)
                return self._jit("_mix_transpose")(saved, list(upstream))

            return out, grad

        out = mixed(*leaves)
        plan = tf.nest.map_structure(tf.stop_gradient, plans[0])
        return tf.nest.pack_sequence_as(x, tf.nest.flatten(out)), plan

    def _sample_and_mix(self, leaves, seed):
        plan = self.plan(leaves[0], seed)
        return self._blend_leaves(plan, leaves), plan

    def _mix_transpose(self, plan, upstream):
        K = backend.ops()
        index = plan["index"]
        out = []
        for g, w in zip(upstream, self._leaf_weights(plan, upstream)):
            w = K.cast(w, g.dtype)
            partner = K.segment_sum((1 - w) * g, index, K.batch_size(g))
            out.append(w * g + partner)
        return out

    def _leaf_weights(self, plan, leaves):
        """Each leaf's blend weight: the mask, or λ reshaped to its rank."""
        mask = plan.get("mask")
        if mask is not None:
            return [mask] * len(leaves)
        return [per_example(plan["lam"], backend.rank(t)) for t in leaves]

    def _blend_leaves(self, plan, leaves):
        # A mask is copied, not blended: a select, so a NaN or Inf in one
        # example reaches only the pixels it gives its partner.
        select = "mask" in plan
        return [
            blend(t, plan["index"], w, select=select)
            for t, w in zip(leaves, self._leaf_weights(plan, leaves))
        ]

    def mix_inputs(self, plan, inputs):
        """Applies a plan to the inputs (a tensor or a nest of tensors)."""
        leaves = [backend.ops().convert_to_tensor(t) for t in keras.tree.flatten(inputs)]
        return keras.tree.pack_sequence_as(inputs, self._blend_leaves(plan, leaves))

    def apply_plan(self, plan, data):
        """Applies one plan to every entry of the normalized data dict."""
        index, lam = plan["index"], plan["lam"]
        out = dict(data)
        mask = plan.get("mask")
        out["images"] = self.mix_inputs(plan, data["images"])
        out["labels"] = keras.tree.map_structure(
            lambda y: blend(y, index, per_example(lam, backend.rank(y))), data["labels"]
        )
        if "sample_weight" in data:
            sw = data["sample_weight"]
            out["sample_weight"] = blend(sw, index, per_example(lam, backend.rank(sw)))
        if "segmentation_masks" in data:
            seg = data["segmentation_masks"]
            if mask is None:
                weight = per_example(lam, backend.rank(seg))
            else:
                weight = self._mask_for(mask, backend.rank(seg))
            out["segmentation_masks"] = blend(seg, index, weight, select=mask is not None)
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
