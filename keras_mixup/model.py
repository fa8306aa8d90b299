"""MixupModel: mixing inside the compiled train step (input and manifold).

The step's logic — choose a site, run the forward pass with the sites
mixing, mix the labels with the realized plan, interpolate the loss — is
written once (`MixupModel.mixed_loss`). Each backend only wraps it in its
own way of taking gradients: ``tf.GradientTape`` on TensorFlow, and on JAX
a pure function of the variables' values (``keras.StatelessScope``) under
``jax.value_and_grad``, the way Keras' own JAX trainer works.
"""

import keras

from keras_mixup import backend
from keras_mixup import losses as loss_info
from keras_mixup.layers.base import BaseMixingLayer
from keras_mixup.layers.sites import MixingScope
from keras_mixup.ops import saliency as sal_ops
from keras_mixup.ops.labels import is_class_ids
from keras_mixup.ops.mixing import blend, blend_ways, partner_columns, per_example
from keras_mixup.ops.pairing import class_ids
from keras_mixup.ops.random import check_seed, check_weights, choose, fold_seed
from keras_mixup.regularizers import MixupE

SUPPORTED_BACKENDS = ("tensorflow", "jax")


def unscale_loss_for_distribution(loss):
    """Undoes Keras' per-replica loss scaling (TensorFlow, several replicas).

    Keras divides the loss by the number of replicas in sync under
    ``tf.distribute`` (from Keras 3.8: ``keras.src.losses.loss.
    scale_loss_for_distribution``; no public API says whether it does, so
    this reads keras.src); the logged loss should not be divided.
    """
    if backend.keras_backend() != "tensorflow":
        return loss
    from keras.src.losses import loss as loss_module  # no public API

    if not hasattr(loss_module, "scale_loss_for_distribution"):
        return loss
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss * replicas if replicas > 1 else loss


def find_sites(model):
    """The mixing layers inside ``model``, in depth-first order.

    Nested models and layers are searched (functional, Sequential and
    subclassed); the mixers held by a `RandomMix` belong to it and are not
    sites of their own.
    """
    sites, seen, stack = [], set(), [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, BaseMixingLayer):
            sites.append(layer)
            continue
        children = layer._flatten_layers(include_self=False, recursive=False)
        stack.extend(reversed(list(children)))
    return sites


@keras.saving.register_keras_serializable(package="keras_mixup")
class MixupModel(keras.Model):
    """Trains a model with input, manifold or CutMix mixing inside ``fit``.

    Wraps any Keras model. Place `MixUp` / `CutMix` / `RandomMix` layers in
    the model where inputs or hidden states may be mixed (without labels:
    they are *sites*), or pass ``mixer=`` to mix the inputs without editing
    the model. Each training step picks **one** site at random (uniformly,
    or by ``site_weights``; the input counts as a site — manifold mixup,
    Verma et al., 2019), mixes the batch there with that site's plan, and
    mixes the labels with the realized per-example weights — all inside the
    compiled train step (``jit_compile``, ``tf.distribute``, mixed
    precision). Outside training every site is the identity, so
    ``evaluate``, ``predict`` and export see the plain model
    (``mixup_model.model``).

    A `CutMix` site on a hidden convolutional feature map cuts and pastes
    feature blocks with the same label bookkeeping (PatchUp-style feature
    CutMix, Faramarzi et al., 2022).

    Labels:

    - one-hot, soft and multi-hot float labels (and float regression
      targets) are mixed, ``ỹ = λ·y + (1 − λ)·y[π]``, and come out float32;
    - integer class ids ``(B,)`` / ``(B, 1)`` stay integers: the loss is
      interpolated, ``λ·L(y, ŷ) + (1 − λ)·L(y[π], ŷ)`` (k-way sites:
      ``w₀·L(y, ŷ) + Σⱼ wⱼ·L(y[πⱼ], ŷ)``), which equals the loss
      on the mixed one-hot target for cross-entropy — without building a
      ``(B, classes)`` tensor, for every loss reduction (with
      ``"mean_with_sample_weight"`` the two terms are renormalized by
      their weight sums). Float class ids with a sparse loss
      (``SparseCategoricalCrossentropy``, which casts them, as Keras does)
      are taken as ids, not blended into fractional ids.
    - sample weights are mixed like labels, ``w̃ = λ·w + (1 − λ)·w[π]``.

    Training metrics are computed against the mixed targets: for float
    labels the mixed target itself (so ``accuracy`` compares with its arg-max,
    the dominant source), for integer labels the label of the dominant
    source (``y`` where ``λ >= 0.5``, else ``y[π]``). Validation metrics
    see unmixed data.

    Sites pair as they are configured (``pairing=``, ``ways=``, ``mix=``):
    label-aware pairings get the step's labels, ``"nearest"`` measures
    distance in the site's representation, and ``pairing_scope="global"``
    draws partners from the whole global batch under ``tf.distribute`` or
    ``keras.distribution``.

    Randomness: each step's seed is derived from ``seed``, the optimizer's
    iteration count and the replica id, so the same seed repeats a run, a
    run resumed by ``keras.callbacks.BackupAndRestore`` continues the same
    random stream, and every replica draws its own plans.

    Args:
        model: the Keras model to train (built: a functional or Sequential
            model, or a subclassed model called once).
        mixer: optional mixing layer applied to the inputs, e.g.
            ``keras_mixup.layers.MixUp(alpha=0.2)``; an input site without
            editing the model.
        site_weights: probabilities of choosing each site, in the order of
            `sites` (the ``mixer``, if any, first); default uniform.
        seed: int seed of the mixing stream; None draws one.
        regularizer: optional `keras_mixup.MixupE`, which adds the
            first-order term of mixup's implicit regularizer to the loss.
            With a ``placement="saliency"`` mixer and MixupE on the whole
            batch (``batch_fraction=1``, ``"fast"`` or ``"exact"`` mode),
            one clean forward pass serves both: the gradient saliency is
            then ``|∂L/∂x|`` of MixupE's training-mode pass (dropout
            active, batch normalization on the batch statistics) instead
            of a separate inference-mode pass — the same maps for a model
            without such layers, one forward pass fewer per step.
        **kwargs: ``keras.Model`` arguments such as ``name``.

    Example:

    >>> inputs = keras.Input((16,))
    >>> h = keras_mixup.layers.MixUp(alpha=2.0)(inputs)      # input site
    >>> h = keras.layers.Dense(32, activation="relu")(h)
    >>> h = keras_mixup.layers.MixUp(alpha=2.0)(h)           # manifold site
    >>> outputs = keras.layers.Dense(3)(h)
    >>> model = keras_mixup.MixupModel(keras.Model(inputs, outputs), seed=0)
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> x, y = np.random.rand(64, 16).astype("float32"), np.arange(64) % 3
    >>> history = model.fit(x, y, epochs=2, verbose=0)
    >>> len(model.sites), model.predict(x[:2], verbose=0).shape
    (2, (2, 3))
    """

    def __init__(
        self, model, mixer=None, site_weights=None, seed=None, regularizer=None, **kwargs
    ):
        super().__init__(**kwargs)
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        if isinstance(mixer, dict):
            mixer = keras.saving.deserialize_keras_object(mixer)
        if isinstance(regularizer, dict):
            regularizer = keras.saving.deserialize_keras_object(regularizer)
        if backend.keras_backend() not in SUPPORTED_BACKENDS:
            raise NotImplementedError(
                "MixupModel trains on the TensorFlow and JAX backends; Keras "
                f"is running on {backend.keras_backend()!r}. Set "
                "KERAS_BACKEND=jax (or tensorflow) before importing Keras, or "
                "mix in the input pipeline instead — keras_mixup's layers "
                "work in a tf.data map under every backend: "
                "`ds.batch(n).map(keras_mixup.layers.MixUp(alpha=0.2, "
                "num_classes=C))`."
            )
        if not isinstance(model, keras.layers.Layer):
            raise TypeError(
                f"`model` must be a Keras model to wrap; got {type(model).__name__}."
            )
        if mixer is not None and not isinstance(mixer, BaseMixingLayer):
            raise TypeError(
                "`mixer` must be a keras_mixup mixing layer such as "
                f"keras_mixup.layers.MixUp(alpha=0.2); got {mixer!r}."
            )
        self.model = model
        self.mixer = mixer
        sites = ([mixer] if mixer is not None else []) + find_sites(model)
        if not sites:
            raise ValueError(
                "MixupModel found no place to mix: the model holds no "
                "MixUp / CutMix / RandomMix layer. Pass "
                "`mixer=keras_mixup.layers.MixUp(alpha=0.2)` to mix the "
                "inputs, or put mixing layers inside the model where hidden "
                "states should be mixed."
            )
        if len({id(s) for s in sites}) != len(sites):
            raise ValueError(
                "The `mixer` is also a layer of the model; pass it once."
            )
        self.sites = sites
        self._site_ids = {id(s): i for i, s in enumerate(sites)}
        self.site_weights = check_weights(
            site_weights, len(sites), "site_weights", f"site of {[s.name for s in sites]}"
        )
        self.seed, self._base_seed = check_seed(seed)
        if regularizer is not None and not isinstance(regularizer, MixupE):
            raise TypeError(
                "`regularizer` must be a keras_mixup.MixupE instance, e.g. "
                f"keras_mixup.MixupE(eta=1e-3); got {regularizer!r}."
            )
        self.regularizer = regularizer
        if regularizer is not None:
            for site in sites:
                site.expected_partner_weight()  # fails early for unknown sites
            if not regularizer.built:  # (a deserialized one comes built)
                regularizer.build(self._input_shape(regularizer))
        if getattr(model, "built", False):
            self.built = True

    def _input_shape(self, regularizer):
        if regularizer.mode != "exact":
            return None
        inputs = getattr(self.model, "inputs", None)
        if inputs:
            shapes = [tuple(t.shape) for t in keras.tree.flatten(inputs)]
        else:  # a subclassed model, built by a first call
            built = getattr(self.model, "_build_shapes_dict", None) or {}
            shapes = [tuple(s) for s in built.values()]
        if len(shapes) != 1 or any(d is None for d in shapes[0][1:]):
            raise ValueError(
                "MixupE(mode='exact') keeps the mean of the training inputs, "
                "so it needs a model with one input of known shape (e.g. "
                f"built from keras.Input((32, 32, 3))); got input shapes "
                f"{shapes}. Use mode='fast' otherwise."
            )
        return shapes[0]

    # ------------------------------------------------------------ forward

    def call(self, inputs, training=None):
        if self.mixer is not None:
            inputs = self.mixer(inputs, training=training)
        return self.model(inputs, training=training)

    # --------------------------------------------------------- train step

    def _step_seed(self):
        """Seed of this step on this replica: (seed, iteration, replica)."""
        K = backend.ops()
        iterations = self.optimizer.iterations
        if K.NAME == "tensorflow":
            import tensorflow as tf

            seed = self._shared_seed()
            replica = tf.distribute.get_replica_context()
            replica_id = 0 if replica is None else replica.replica_id_in_sync_group
            return fold_seed(seed, tf.cast(replica_id, tf.int64))
        # JAX: one program for the global batch; devices differ through the
        # shards of the plan (see `_num_shards`), not through the seed.
        return fold_seed(K.seed_from_int(self._base_seed), K.convert_to_tensor(iterations))

    def _shared_seed(self):
        """The step's seed before the replica is folded in (TensorFlow)."""
        import tensorflow as tf

        iterations = tf.cast(self.optimizer.iterations, tf.int64)
        return fold_seed(backend.ops().seed_from_int(self._base_seed), iterations)

    def _global_replicas(self):
        """The replica context when a site pairs across the global batch
        under tf.distribute with several replicas; None otherwise."""
        if backend.keras_backend() != "tensorflow":
            return None
        if not any(s.pairing_scope == "global" for s in self.sites):
            return None
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return None
        return context

    @staticmethod
    def _num_shards(x):
        """Devices that split the batch under ``keras.distribution`` (JAX)."""
        if backend.keras_backend() != "jax":
            return 1
        dist = keras.distribution.distribution()
        name = getattr(dist, "batch_dim_name", None)
        if dist is None or name is None:
            return 1
        mesh = dist.device_mesh
        if name not in mesh.axis_names:
            return 1
        shards = mesh.shape[list(mesh.axis_names).index(name)]
        batch = keras.tree.flatten(x)[0].shape[0]
        return shards if shards > 1 and batch and batch % shards == 0 else 1

    def _choose_site(self, seed):
        if len(self.sites) == 1:
            return backend.ops().convert_to_tensor(0, "int32")
        return choose(self.site_weights, [], fold_seed(seed, -1))

    def _partner_weight(self, choice):
        """E[1 − λ] (MixupE's weight) of the site chosen this step."""
        K = backend.ops()
        weights = [site.expected_partner_weight() for site in self.sites]
        if len(weights) == 1:
            return weights[0]
        return K.gather(K.stack(weights), choice)

    def mix_targets(self, plan, y, sample_weight, source=None):
        """Mixed labels for the loss and the metrics, and mixed weights.

        ``plan`` is a label plan (``index``, ``lam`` and, k-way,
        ``weights``). Returns ``(y_own, y_partners, y_metric,
        sample_weight)``: float label leaves are mixed (and ``y_partners``,
        one structure per partner column, holds that same mixed target);
        integer class ids stay unmixed in ``y_own`` and are gathered per
        partner in ``y_partners``, for loss interpolation. ``source``:
        ``(y, sample_weight)`` of the whole global batch when the plan's
        partner ids are global (``pairing_scope="global"``).
        """
        K = backend.ops()
        lam = plan["lam"]
        index, weights = partner_columns(plan)
        kway = "weights" in plan
        y_source, w_source = (y, sample_weight) if source is None else source

        def mix(t, src):
            if kway:
                return blend_ways(t, plan["index"], lam, plan["weights"], src)
            return blend(t, plan["index"], per_example(lam, backend.rank(t)), source=src)

        def own(t, src):
            t = K.convert_to_tensor(t)
            if is_class_ids(t):
                return t
            t = K.cast(t, "float32")
            return mix(t, None if source is None else K.cast(src, "float32"))

        def partner(j):
            def get(src, mixed):
                src = K.convert_to_tensor(src)
                return K.gather(src, index[:, j]) if is_class_ids(src) else mixed

            return get

        def dominant(t, src, mixed):
            t, src = K.convert_to_tensor(t), K.convert_to_tensor(src)
            if not is_class_ids(t):
                return mixed
            if not kway:
                keep = per_example(lam >= 0.5, backend.rank(t))
                return K.where(keep, t, K.gather(src, index[:, 0]))
            # The source with the largest weight (the example on ties).
            best = K.argmax(K.concat([K.expand_dims(lam, 1), weights], 1), axis=1)
            flat = K.reshape(src, [-1])
            sources = K.stack(
                [K.reshape(t, [-1])]
                + [K.gather(flat, index[:, j]) for j in range(backend.dim(index, 1))],
                1,
            )
            return K.reshape(K.gather_rows(sources, best), K.shape(t))

        y_own = keras.tree.map_structure(own, y, y_source)
        y_partners = [
            keras.tree.map_structure(partner(j), y_source, y_own)
            for j in range(backend.dim(index, 1))
        ]
        y_metric = keras.tree.map_structure(dominant, y, y_source, y_own)
        if sample_weight is not None:
            sample_weight = keras.tree.map_structure(
                lambda w, src: mix(
                    K.cast(w, "float32"), None if source is None else K.cast(src, "float32")
                ),
                sample_weight,
                w_source,
            )
        return y_own, y_partners, y_metric, sample_weight

    def compute_mixed_loss(self, x, y_own, y_partners, y_pred, sample_weight, plan):
        """The training loss on mixed targets (interpolated for class ids:
        ``λ·L(y, ŷ) + Σⱼ wⱼ·L(y[πⱼ], ŷ)``)."""
        interpolate = any(
            o is not p
            for o, p in zip(keras.tree.flatten(y_own), keras.tree.flatten(y_partners[0]))
        )
        if not interpolate:
            return self._compute_loss(
                x=x, y=y_own, y_pred=y_pred, sample_weight=sample_weight,
                training=True,
            )
        if self._compile_loss is None:
            raise ValueError(
                "Integer labels need a loss passed to compile(), e.g. "
                "keras.losses.SparseCategoricalCrossentropy()."
            )
        K = backend.ops()
        lam = plan["lam"]
        _, partner_weights = partner_columns(plan)
        w = K.ones_like(lam) if sample_weight is None else sample_weight
        terms = [(y_own, lam)] + [
            (y_j, partner_weights[:, j]) for j, y_j in enumerate(y_partners)
        ]
        losses, sums = [], []
        for y_term, weight in terms:
            w_term = keras.tree.map_structure(
                lambda s, weight=weight: s * per_example(weight, backend.rank(s)), w
            )
            # Summed (or averaged over the batch size), the loss is linear
            # in the weights, so weighted calls add up to λ·L(y) + Σ wⱼ·L(y[πⱼ])
            # per example.
            losses.append(self._compile_loss(y_term, y_pred, w_term))
            sums.append(K.reduce_sum(keras.tree.flatten(w_term)[0]))
        if self._weight_normalized(w):
            # Divided by the sum of the weights, each call is normalized by
            # its own sum: weigh them back by it.
            loss = K.divide_no_nan(
                sum(l * s for l, s in zip(losses, sums)), sum(sums)
            )
        else:
            loss = sum(losses[1:], losses[0])
        for extra in self.losses:
            loss = loss + self._aggregate_additional_loss(extra)
        return loss

    def _weight_normalized(self, weights):
        """Whether the compiled loss divides by the sum of the weights."""
        reductions = {loss_info.reduction(l) for l in loss_info.flat_losses(self)}
        if "mean_with_sample_weight" not in reductions:
            return False
        if len(reductions) > 1 or len(keras.tree.flatten(weights)) > 1:
            raise NotImplementedError(
                "MixupModel interpolates the loss of integer class ids as "
                "two weighted terms; with reduction='mean_with_sample_weight' "
                "that needs one reduction for every output and one sample "
                f"weight tensor (got reductions {sorted(map(str, reductions))}). "
                "Use the same reduction for every output, or pass one-hot "
                "float labels (mixed directly, one loss call)."
            )
        return True

    def _class_ids(self, y):
        """Float class ids under a sparse loss, cast to int32 (Keras' sparse
        cross-entropy casts them too); everything else unchanged."""
        K = backend.ops()

        def cast(t, sparse):
            t = K.convert_to_tensor(t)
            rank = backend.rank(t)
            ids = rank == 1 or (rank == 2 and t.shape[-1] == 1)
            if sparse and ids and backend.is_float(t):
                return K.cast(t, "int32")
            return t

        return keras.tree.map_structure(cast, y, loss_info.sparse_structure(self, y))

    def mixed_loss(self, x, y, sample_weight):
        """One mixing step's forward pass and loss, on any backend.

        Returns ``(loss, y_pred, y_metric, sample_weight)``: the loss on
        the mixed batch (with MixupE's term when configured), the
        predictions, and the targets and weights the training metrics see.
        """
        if y is None:
            raise ValueError(
                "MixupModel needs labels to mix: fit it on (x, y) data."
            )
        y = self._class_ids(y)
        seed = self._step_seed()
        ids = class_ids(y) if any(s._label_aware() for s in self.sites) else None
        replicas = self._global_replicas()
        # Pairing across replicas needs every replica to mix at the same
        # site (a partner's hidden state must be unmixed): one choice.
        shared = seed if replicas is None else self._shared_seed()
        scope = MixingScope(
            self._site_ids, seed, self._choose_site(shared), self._num_shards(x), ids, replicas
        )
        source = None
        if replicas is not None:
            # Partners may sit on other replicas: plans use global ids, and
            # the labels (and weights) of the whole global batch are read.
            K = backend.ops()
            scope.global_seed = shared
            sizes = scope.gather_all(K.reshape(K.batch_size(keras.tree.flatten(x)[0]), [1]))
            scope.offset = K.reduce_sum(sizes[: replicas.replica_id_in_sync_group])
            source = (
                keras.tree.map_structure(scope.gather_all, y),
                None if sample_weight is None
                else keras.tree.map_structure(scope.gather_all, sample_weight),
            )
        clean = None
        if self._shares_clean_pass():
            scope.saliency, clean = self._clean_pass_with_saliency(
                x, y, sample_weight
            )
        else:
            scope.saliency = self._input_saliency(x, y, sample_weight)
        with scope:
            y_pred = self(x, training=True)
        plan = scope.realized_plan(len(self.sites))
        y_own, y_partners, y_metric, weights = self.mix_targets(
            plan, y, sample_weight, source
        )
        loss = self.compute_mixed_loss(x, y_own, y_partners, y_pred, weights, plan)
        if self.regularizer is not None:
            reg = self.regularizer.penalty(
                self, x, y, sample_weight, seed, self._partner_weight(scope.choice),
                clean=clean,
            )
            loss = self.regularizer.combine(loss, reg)
        return loss, y_pred, y_metric, weights

    def _saliency_sites(self):
        """The sites that place boxes by gradient saliency."""
        return [s for s in self.sites if getattr(s, "placement", None) == "saliency"]

    def _shares_clean_pass(self):
        """Whether one clean forward pass gives both MixupE's term and the
        gradient saliency: a saliency-placed site, and a MixupE that can
        share its clean pass (on the whole batch, ``batch_fraction=1``,
        in either mode)."""
        return (
            self.regularizer is not None
            and self.regularizer.can_share_clean_pass()
            and bool(self._saliency_sites())
        )

    def _saliency_images(self, x):
        """The one image input ``(B, H, W, C)`` saliency is taken for,
        float32; refuses what gradient saliency cannot read."""
        K = backend.ops()
        leaves = keras.tree.flatten(x)
        if len(leaves) != 1 or backend.rank(leaves[0]) != 4:
            raise ValueError(
                "Gradient saliency (placement='saliency' in a MixupModel) is "
                "the loss gradient with respect to one image input (B, H, W, "
                f"C); got inputs of shapes {[tuple(t.shape) for t in leaves]}."
            )
        if self._compile_loss is None:
            raise ValueError(
                "placement='saliency' in a MixupModel takes the gradient of the "
                "compiled loss: compile the model with a loss."
            )
        return K.cast(K.stop_gradient(leaves[0]), "float32")

    def _saliency_of(self, gradient):
        """Saliency maps of the sites from the loss gradient ``∂L/∂x``
        (no gradient flows through them)."""
        K = backend.ops()
        site = self._saliency_sites()[0]
        return K.stop_gradient(sal_ops.gradient_saliency(gradient, site.data_format))

    def _input_saliency(self, x, y, sample_weight):
        """Gradient saliency ``(B, H, W)`` of the clean batch for sites with
        ``placement="saliency"``: ``|∂L/∂x|`` (the compiled loss, the model
        in inference mode, no mixing), summed over channels and smoothed.
        One extra forward and backward pass; None when no site needs it.
        (With MixupE on the whole batch, MixupE's clean pass gives it
        instead: `_clean_pass_with_saliency`.)"""
        if not self._saliency_sites():
            return None
        K = backend.ops()
        images = self._saliency_images(x)

        def loss_of(inputs):
            y_pred = self(inputs, training=False)
            return K.cast(self._compile_loss(y, y_pred, sample_weight), "float32")

        return self._saliency_of(K.gradient_of(loss_of, images))

    def _clean_pass_with_saliency(self, x, y, sample_weight):
        """One clean forward pass for both MixupE and the gradient saliency.

        MixupE runs its clean pass (`MixupE.clean_pass`: the unmixed batch
        in *training* mode with every site as the identity; in ``"exact"``
        mode with its Jacobian-vector product) and also gives ``∂L/∂x`` of
        the compiled loss on that pass's outputs. Returns ``(saliency,
        clean)``: the saliency maps from that gradient (stopped gradient),
        and the `CleanPass` for ``MixupE.penalty(..., clean=clean)``,
        differentiable with respect to the weights. This saves the
        separate inference-mode pass of `_input_saliency`; the saliency
        then sees dropout active and batch normalization on the batch's
        statistics (equal to the inference-mode saliency for a model
        without such layers).
        """
        K = backend.ops()
        images = self._saliency_images(x)

        def loss_of(outputs):
            return K.cast(self._compile_loss(y, outputs, sample_weight), "float32")

        clean, gradient = self.regularizer.clean_pass(self, images, loss_of)
        return self._saliency_of(gradient), clean

    def train_step(self, *args):
        # Keras calls train_step(data) on TensorFlow and
        # train_step(state, data) on JAX.
        if backend.keras_backend() == "jax":
            return self._jax_train_step(*args)
        return self._tf_train_step(*args)

    def _tf_train_step(self, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            loss, y_pred, y_metric, weights = self.mixed_loss(x, y, sample_weight)
            self._loss_tracker.update_state(
                unscale_loss_for_distribution(loss),
                sample_weight=tf.shape(keras.tree.flatten(x)[0])[0],
            )
            if self.optimizer is not None:
                loss = self.optimizer.scale_loss(loss)
        trainable = self.trainable_weights
        gradients = tape.gradient(loss, trainable)
        self.optimizer.apply_gradients(zip(gradients, trainable))
        return self.compute_metrics(x, y_metric, y_pred, sample_weight=weights)

    def _jax_train_step(self, state, data):
        import jax

        trainable, non_trainable, optimizer_vars, metrics_vars = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        fixed = list(zip(self.optimizer.variables, optimizer_vars))

        def loss_fn(trainable, non_trainable, metrics_vars):
            mapping = (
                list(zip(self.trainable_variables, trainable))
                + list(zip(self.non_trainable_variables, non_trainable))
                + list(zip(self.metrics_variables, metrics_vars))
                + fixed
            )
            with keras.StatelessScope(state_mapping=mapping) as scope:
                loss, y_pred, y_metric, weights = self.mixed_loss(x, y, sample_weight)
                scaled = self.optimizer.scale_loss(loss)
            non_trainable = _current(scope, self.non_trainable_variables, non_trainable)
            metrics_vars = _current(scope, self.metrics_variables, metrics_vars)
            return scaled, (loss, y_pred, y_metric, weights, non_trainable, metrics_vars)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (_, aux), grads = grad_fn(trainable, non_trainable, metrics_vars)
        loss, y_pred, y_metric, weights, non_trainable, metrics_vars = aux
        trainable, optimizer_vars = self.optimizer.stateless_apply(
            optimizer_vars, grads, trainable
        )
        mapping = list(zip(self.metrics_variables, metrics_vars))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self._loss_tracker.update_state(
                loss, sample_weight=keras.tree.flatten(x)[0].shape[0]
            )
            logs = self.compute_metrics(x, y_metric, y_pred, sample_weight=weights)
        metrics_vars = _current(scope, self.metrics_variables, metrics_vars)
        return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)

    # -------------------------------------------------------------- config

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "model": keras.saving.serialize_keras_object(self.model),
                "mixer": None
                if self.mixer is None
                else keras.saving.serialize_keras_object(self.mixer),
                "site_weights": self.site_weights,
                "seed": self.seed,
                "regularizer": None
                if self.regularizer is None
                else keras.saving.serialize_keras_object(self.regularizer),
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        model = keras.saving.deserialize_keras_object(
            config.pop("model"), custom_objects=custom_objects
        )
        mixer, regularizer = config.pop("mixer", None), config.pop("regularizer", None)
        mixer, regularizer = (
            None
            if c is None
            else keras.saving.deserialize_keras_object(c, custom_objects=custom_objects)
            for c in (mixer, regularizer)
        )
        return cls(model, mixer=mixer, regularizer=regularizer, **config)


def _current(scope, variables, values):
    """The values ``variables`` hold at the end of a ``StatelessScope``."""
    out = []
    for variable, value in zip(variables, values):
        new = scope.get_current_value(variable)
        out.append(value if new is None else new)
    return out
