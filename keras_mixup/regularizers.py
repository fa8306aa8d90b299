"""MixupE: mixup plus the first-order term of its implicit regularizer."""

import collections
import numbers

import keras

from keras_mixup import backend
from keras_mixup import losses as loss_info
from keras_mixup.layers.sites import MixingScope
from keras_mixup.ops.labels import is_class_ids
from keras_mixup.ops.random import fold_seed, random_permutation

_MODES = ("fast", "exact")


class CleanPass(collections.namedtuple("CleanPass", ["logits", "direction"])):
    """What MixupE's clean forward pass gives `MixupE.penalty`: the logits
    ``f`` of the clean batch and the derivative that ``(softmax(f) − y)``
    is projected on — ``f`` itself in ``"fast"`` mode, the
    Jacobian-vector product ``J_f(x)(x̄ − x)`` in ``"exact"`` mode. Both
    stay differentiable with respect to the weights."""

    __slots__ = ()


def _single(value, what):
    leaves = keras.tree.flatten(value)
    if len(leaves) != 1:
        raise ValueError(
            f"MixupE supports models with one classification output and one "
            f"label tensor; got {len(leaves)} {what}. Train multi-output "
            "models with MixupModel without `regularizer=`."
        )
    return leaves[0]


def _jvp(fn, x, tangent, variables=()):
    """``fn(x)`` and the Jacobian-vector product ``J_fn(x)·tangent``.

    The result stays differentiable with respect to the weights.

    On TensorFlow, computed with the double-backward trick: the
    vector-Jacobian product ``u ↦ J^T u`` is linear in ``u``, so its
    gradient with respect to ``u`` along ``tangent`` is ``J·tangent`` —
    exactly what forward mode gives (bit for bit in our tests).
    `tf.autodiff.ForwardAccumulator` is the direct route but, under XLA, its
    convolution rules turn the kernels into compile-time constants: the step
    recompiles whenever the weights change (1.4 s per step on a one-conv
    model on CPU), and without XLA it was 1.6x slower on the benchmark CNN.
    Every op here is an ordinary gradient op.

    On JAX, forward mode (``jax.jvp``) is the cheap route and is used
    directly. ``fn`` runs inside a nested ``keras.StatelessScope`` that maps
    ``variables`` (every variable ``fn`` reads) to their current values, so
    the assignments ``fn`` makes (batch-normalization moving statistics,
    seed-generator states) carry JVP tracers only inside it; their primal
    values come out of ``jax.jvp`` as auxiliary outputs and are assigned
    after it, as a plain forward pass would assign them.
    """
    if backend.keras_backend() == "jax":
        return _jax_jvp(fn, x, tangent, variables)
    f, direction, _ = _tf_double_backward(lambda inputs: (fn(inputs), None), x, tangent)
    return f, direction


def jvp_with_input_gradient(fn, x, tangent, variables=()):
    """`_jvp` that also gives an input gradient, from the same forward pass.

    ``fn(x)`` returns a pair ``(f, loss)``, ``loss`` a scalar; the result is
    ``(f, J_f(x)·tangent, ∂loss/∂x)``. ``f`` and the Jacobian-vector
    product stay differentiable with respect to the weights, exactly as
    from `_jvp`; the input gradient is for reading only (e.g. saliency) and
    comes with its gradient stopped.

    On TensorFlow, the double-backward trick of `_jvp` with one backward
    pass for both: the gradient of ``[f, loss]`` with respect to ``x``
    under the output gradients ``[u, 1]`` is ``J_fᵀu + ∂loss/∂x``, which
    is ``∂loss/∂x`` at ``u = 0``, and its gradient with respect to ``u``
    along ``tangent`` is still ``J_f·tangent`` (``∂loss/∂x`` does not
    depend on ``u``).

    On JAX, ``jax.linearize`` runs the forward pass once and gives its
    linear map ``t ↦ (J_f·t, J_loss·t)``: applied to ``tangent`` it gives
    the Jacobian-vector product, and its transpose (``jax.linear_transpose``)
    applied to 1 gives ``∂loss/∂x``. As in `_jvp`, ``fn`` runs in a nested
    ``keras.StatelessScope`` over ``variables`` (every variable it reads),
    and the values it assigns are assigned after it with their primal
    values.
    """
    if backend.keras_backend() == "jax":
        return _jax_jvp_with_input_gradient(fn, x, tangent, variables)
    return _tf_double_backward(fn, x, tangent)


def _tf_double_backward(fn, x, tangent):
    """TensorFlow's `_jvp` and `jvp_with_input_gradient`: ``fn(x)`` returns
    ``(f, loss)`` or ``(f, None)``; returns ``(f, J_f·tangent,
    ∂loss/∂x or None)``."""
    import tensorflow as tf

    with tf.GradientTape() as along_u:
        with tf.GradientTape() as along_x:
            along_x.watch(x)
            f, loss = fn(x)
        u = tf.zeros_like(f)
        along_u.watch(u)
        if loss is None:
            vjp = along_x.gradient(f, x, output_gradients=u)
        else:  # J_fᵀu + ∂loss/∂x: one backward pass
            vjp = along_x.gradient(
                [f, loss], x, output_gradients=[u, tf.ones_like(loss)]
            )
    direction = along_u.gradient(vjp, u, output_gradients=tangent)
    return f, direction, None if loss is None else tf.stop_gradient(vjp)


class _RecordingScope(keras.StatelessScope):
    """A `keras.StatelessScope` that remembers which variables were assigned."""

    def __init__(self, state_mapping):
        super().__init__(state_mapping=state_mapping)
        self.assigned = {}

    def add_update(self, update):
        super().add_update(update)
        self.assigned[id(update[0])] = update[0]


def _recorded(fn, variables):
    """``fn`` made safe to transform with JAX (``jax.jvp``, ``jax.vjp``,
    ``jax.linearize``):
    ``run(x)`` calls it in a nested `_RecordingScope` over ``variables``
    and returns ``(fn(x), the values it assigned)`` (the values as an
    auxiliary output); ``assign(values)`` then assigns those, as a plain
    forward pass would have."""
    # Read in the enclosing scope (the train step's, or none): traced or
    # concrete values, but never the transformation's tracers.
    mapping = [(v, v.value) for v in variables]
    assigned = []

    def run(inputs):
        with _RecordingScope(mapping) as scope:
            out = fn(inputs)
        assigned[:] = scope.assigned.values()
        return out, [scope.get_current_value(v) for v in assigned]

    def assign(values):
        for variable, value in zip(assigned, values):  # primal values only
            variable.assign(value)

    return run, assign


def _jax_jvp(fn, x, tangent, variables):
    import jax

    run, assign = _recorded(fn, variables)
    f, df, values = jax.jvp(run, (x,), (tangent,), has_aux=True)
    assign(values)
    return f, df


def _jax_jvp_with_input_gradient(fn, x, tangent, variables):
    import jax

    run, assign = _recorded(fn, variables)
    (f, loss), linear, values = jax.linearize(run, x, has_aux=True)
    assign(values)
    direction = linear(tangent)[0]
    (gradient,) = jax.linear_transpose(lambda t: linear(t)[1], x)(
        jax.numpy.ones_like(loss)
    )
    return f, direction, jax.lax.stop_gradient(gradient)


def forward_with_input_gradient(forward, x, loss_of, variables=()):
    """``forward(x)`` and ``∂ loss_of(forward(x)) / ∂x`` from one forward pass.

    The outputs stay differentiable with respect to the weights (the
    enclosing train step's gradient goes through them, as through a plain
    forward pass); the input gradient is for reading only (e.g. saliency):
    nothing should differentiate through it.

    On TensorFlow an inner ``tf.GradientTape`` watches ``x`` around the
    forward pass (the train step's own tape records the same ops, for the
    weights). On JAX, ``jax.vjp`` of ``x ↦ forward(x)`` gives the outputs
    and the pullback, applied to ``∂ loss_of / ∂ outputs``; as in `_jvp`,
    ``forward`` runs in a nested ``keras.StatelessScope`` over
    ``variables`` (every variable it reads), and the values it assigns
    (batch-normalization statistics, seed-generator states) are assigned
    after it with their primal values.
    """
    if backend.keras_backend() == "jax":
        return _jax_forward_with_input_gradient(forward, x, loss_of, variables)
    import tensorflow as tf

    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        outputs = forward(x)
        loss = loss_of(outputs)
    return outputs, tape.gradient(loss, x)


def _jax_forward_with_input_gradient(forward, x, loss_of, variables):
    import jax

    run, assign = _recorded(forward, variables)
    outputs, pullback, values = jax.vjp(run, x, has_aux=True)
    assign(values)
    cotangent = jax.grad(loss_of)(jax.lax.stop_gradient(outputs))
    (gradient,) = pullback(cotangent)
    return outputs, gradient


def _scale_for_distribution(value):
    """``value`` scaled like Keras scales a loss for distribution.

    Under ``tf.distribute`` with several replicas, Keras (from 3.8) divides
    each replica's loss by the number of replicas; a term added to that loss
    must be divided alike. Elsewhere (one replica, JAX) it is returned as is.
    """
    if backend.keras_backend() != "tensorflow":
        return value
    # The one place MixupE reads keras.src: no public API says whether this
    # Keras scales losses for distribution.
    from keras.src.losses import loss as loss_module

    if not hasattr(loss_module, "scale_loss_for_distribution"):
        return value
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        value = value * tf.cast(1.0 / replicas, value.dtype)
    return value


@keras.saving.register_keras_serializable(package="keras_mixup")
class MixupE(keras.layers.Layer):
    """MixupE: adds a directional-derivative term to the mixup loss.

    Zou, Verma et al. ("Mixup Enhanced", UAI 2023) write mixup's implicit
    regularization as a series in the mixing weight and add its first-order
    term back, with its own strength ``eta``. Pass an instance to
    `MixupModel`; it combines with every site (input mixup, CutMix and
    manifold mixup — "MixupE + manifold" in the paper).

    On the clean (unmixed) batch, with logits ``f`` and labels ``y``:

    - ``mode="fast"`` (the paper's practical version):
      ``q̂ᵢ = (yᵢ − softmax(fᵢ))ᵀ fᵢ``, one extra forward pass;
    - ``mode="exact"``: ``qᵢ = (softmax(fᵢ) − yᵢ)ᵀ J_f(xᵢ)(x̄ − xᵢ)``, a
      Jacobian-vector product (the forward-mode derivative: ``jax.jvp`` on
      JAX; on TensorFlow the double-backward trick, which compiles well
      with XLA), with ``x̄`` the running mean of the training inputs (kept
      in this layer's weights, saved with the model).

    ``R = E[1 − λ]·mean|qᵢ|``, with ``E[1 − λ] = 2αβ/((α+β)(α+β+1))``
    (``α/(2α+1)`` for α = β) read from the site that mixes this step, and
    the training loss becomes ``η̂·(L_mix + eta·R)`` with
    ``η̂ = |L_mix| / |L_mix + eta·R|`` held constant in the gradient: the
    loss keeps the magnitude of ``L_mix`` while its gradient gains the
    regularizer's direction. ``R`` and ``η̂`` are logged as the metrics
    ``mixupe_reg`` and ``mixupe_scale``.

    The clean pass runs in training mode (dropout active, batch
    normalization on the clean batch statistics, which its moving averages
    also see). Models that end in a softmax work too: with
    ``from_logits=False`` the log-probabilities serve as logits, and ``q̂``
    does not change under a constant shift of the logits because
    ``Σy = Σsoftmax = 1``.

    With a ``placement="saliency"`` mixer (gradient saliency) and MixupE on
    the whole batch (``batch_fraction=1``, either mode), `MixupModel` runs
    this clean pass once for both (`clean_pass`): before the mixed pass,
    and the saliency is the loss gradient of this training-mode pass
    (dropout active) rather than of a separate inference-mode pass — one
    forward pass fewer per step. In ``"exact"`` mode the Jacobian-vector
    product and the loss gradient come from that one forward pass (one
    backward pass for both on TensorFlow; ``jax.linearize`` and its
    transpose on JAX).

    Args:
        eta: strength of the regularizer (>= 0); the paper tunes it in
            [1e-4, 1e-1].
        mode: ``"fast"`` or ``"exact"`` (see above).
        batch_fraction: in (0, 1]; estimate ``R`` on a random subset of this
            fraction of the clean batch (an unbiased estimate of the same
            mean; at least one example), trading gradient variance for speed.
        from_logits: whether the model outputs logits. None reads
            ``from_logits`` from the compiled loss (a string loss such as
            ``"categorical_crossentropy"`` means probabilities).
        **kwargs: ``keras.layers.Layer`` arguments such as ``name``.

    Example:

    >>> inputs = keras.Input((4,))
    >>> outputs = keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(inputs))
    >>> model = keras_mixup.MixupModel(
    ...     keras.Model(inputs, outputs),
    ...     mixer=keras_mixup.layers.MixUp(alpha=1.0),
    ...     regularizer=keras_mixup.MixupE(eta=1e-2),
    ...     seed=0,
    ... )
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> x, y = np.random.rand(32, 4).astype("float32"), np.arange(32) % 3
    >>> logs = model.fit(x, y, epochs=1, verbose=0).history
    >>> sorted(k for k in logs if k.startswith("mixupe"))
    ['mixupe_reg', 'mixupe_scale']
    """

    def __init__(self, eta=1e-3, mode="fast", batch_fraction=1.0, from_logits=None, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(eta, bool)
            or not isinstance(eta, numbers.Real)
            or not eta >= 0
            or eta == float("inf")
        ):
            raise ValueError(
                f"`eta` is the regularizer's strength and must be a finite "
                f"number >= 0 (e.g. 1e-3); got {eta!r}."
            )
        if mode not in _MODES:
            raise ValueError(
                f"`mode` must be 'fast' (the paper's practical version) or "
                f"'exact' (a Jacobian-vector product); got {mode!r}."
            )
        if (
            isinstance(batch_fraction, bool)
            or not isinstance(batch_fraction, numbers.Real)
            or not 0.0 < batch_fraction <= 1.0
        ):
            raise ValueError(
                "`batch_fraction` is the fraction of the batch on which the "
                f"regularizer is estimated and must be in (0, 1]; got "
                f"{batch_fraction!r}."
            )
        if from_logits is not None and not isinstance(from_logits, bool):
            raise TypeError(f"`from_logits` must be True, False or None; got {from_logits!r}.")
        self.eta = float(eta)
        self.mode = mode
        self.batch_fraction = float(batch_fraction)
        self.from_logits = from_logits
        self.reg_tracker = keras.metrics.Mean(name="mixupe_reg")
        self.scale_tracker = keras.metrics.Mean(name="mixupe_scale")

    def build(self, input_shape):
        if self.mode == "exact":
            # x̄, the running mean of the (clean) training inputs, and how
            # many examples it averages. Every replica computes the same
            # update from all-reduced sums, so the first replica's is kept.
            self.input_mean = self.add_weight(
                shape=tuple(input_shape[1:]),
                initializer="zeros",
                trainable=False,
                aggregation="only_first_replica",
                name="input_mean",
            )
            self.input_count = self.add_weight(
                shape=(),
                initializer="zeros",
                trainable=False,
                aggregation="only_first_replica",
                name="input_count",
            )
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "eta": self.eta,
                "mode": self.mode,
                "batch_fraction": self.batch_fraction,
                "from_logits": self.from_logits,
            }
        )
        return config

    # ----------------------------------------------------------- training

    def combine(self, loss, reg):
        """``η̂·(loss + eta·reg)`` with ``η̂ = |loss| / |loss + eta·reg|``
        constant in the gradient; logs ``reg`` and ``η̂``.

        ``loss`` and ``reg`` must be scaled alike for distribution (both per
        replica); ``reg`` is logged unscaled.
        """
        K = backend.ops()
        total = loss + self.eta * _scale_for_distribution(reg)
        scale = K.stop_gradient(K.divide_no_nan(K.abs(loss), K.abs(total)))
        self.reg_tracker.update_state(reg)
        self.scale_tracker.update_state(scale)
        return scale * total

    def can_share_clean_pass(self):
        """Whether `clean_pass` can run MixupE's clean pass ahead of
        `penalty` and also give an input gradient: on the whole batch
        (``batch_fraction=1``), in either mode. `MixupModel` then takes the
        gradient saliency of a ``placement="saliency"`` mixer from it."""
        return self.batch_fraction == 1.0

    def clean_pass(self, model, x, loss_of):
        """MixupE's clean forward pass on ``x``, plus ``∂L/∂x`` of a loss
        ``L = loss_of(outputs)`` of the same pass.

        Runs the model on ``x`` in training mode with every site as the
        identity — the pass `penalty` would run (in ``"exact"`` mode with
        the Jacobian-vector product, after updating the running mean
        ``x̄`` with ``x``) — and differentiates ``L`` with respect to ``x``
        from that same forward pass. Only when `can_share_clean_pass`.

        Args:
            model: the `MixupModel`.
            x: the clean batch: one input tensor (the whole batch).
            loss_of: maps the model's outputs to a scalar loss.

        Returns:
            ``(clean, input_gradient)``: a `CleanPass` for `penalty`'s
            ``clean=`` (differentiable with respect to the weights), and
            ``∂L/∂x``, float32 and for reading only (its gradient stopped:
            it adds nothing to the weights' gradient).
        """
        if not self.can_share_clean_pass():
            raise ValueError(
                "MixupE runs its clean pass ahead of `penalty` only on the "
                "whole batch (batch_fraction=1); got "
                f"batch_fraction={self.batch_fraction!r}."
            )
        K = backend.ops()
        x = K.convert_to_tensor(_single(x, "input tensors"))
        if self.mode == "exact":
            self._update_input_mean(x)
        return self._run_clean_pass(model, x, loss_of)

    def penalty(self, model, x, y, sample_weight, seed, partner_weight, clean=None):
        """``R = partner_weight · mean|qᵢ|`` on the clean batch (float32).

        Args:
            model: the `MixupModel`; its forward pass runs with every site
                as the identity.
            x, y, sample_weight: the clean batch.
            seed: the step's ``(2,)`` stateless seed (int64 on TensorFlow,
                a uint32 key on JAX), for the subset.
            partner_weight: ``E[1 − λ]`` of the mixing site, a scalar.
            clean: optional `CleanPass` of this batch from `clean_pass`
                (which already updated ``x̄`` with ``x``); only when
                `can_share_clean_pass` (the whole batch). None runs the
                clean pass here.
        """
        K = backend.ops()
        if clean is not None and not self.can_share_clean_pass():
            raise ValueError(
                "MixupE takes a clean pass from `clean_pass` only on the whole "
                f"batch (batch_fraction=1); got batch_fraction={self.batch_fraction!r}."
            )
        y = K.convert_to_tensor(_single(y, "label tensors"))
        self._check_classifier(model, y)
        if sample_weight is not None:
            sample_weight = K.cast(_single(sample_weight, "sample weights"), "float32")
        if clean is None:
            if self.mode == "exact":
                x = K.convert_to_tensor(_single(x, "input tensors"))
                self._update_input_mean(x)
            x, y, sample_weight = self._subset(x, y, sample_weight, seed)
            clean, _ = self._run_clean_pass(model, x)
        # q = (p − y)ᵀ·direction; in fast mode direction = f and the
        # paper's q̂ = (y − p)ᵀ f = −q: the sign goes in |·|.
        f, direction = clean
        p = K.softmax(f)
        if is_class_ids(y):
            ids = K.reshape(K.cast(y, "int32"), [-1])
            own = K.gather_rows(direction, ids)
            q = K.reduce_sum(p * direction, axis=-1) - own
        else:
            y = K.cast(y, "float32")
            q = K.reduce_sum((p - y) * direction, axis=-1)
        q = K.abs(q)
        count = K.cast(K.batch_size(q), "float32")
        if sample_weight is not None:
            q = q * K.reshape(sample_weight, [-1])
        return K.cast(partner_weight, "float32") * K.reduce_sum(q) / count

    # ------------------------------------------------------------ helpers

    def _run_clean_pass(self, model, x, loss_of=None):
        """The clean pass on ``x`` (after ``x̄``'s update): ``(CleanPass,
        ∂ loss_of(outputs)/∂x)``, the gradient None without ``loss_of``."""
        K = backend.ops()
        from_logits = self._resolve_from_logits(model)
        unmixed = MixingScope(model._site_ids)

        def forward(inputs):
            with unmixed:
                return model(inputs, training=True)

        def as_logits(out):
            out = K.cast(_single(out, "model outputs"), "float32")
            if from_logits:
                return out
            return K.log(K.maximum(out, 1e-30))

        def loss_float32(out):
            return K.cast(loss_of(out), "float32")

        if self.mode == "fast":
            gradient = None
            if loss_of is None:
                outputs = forward(x)
            else:
                outputs, gradient = forward_with_input_gradient(
                    forward, x, loss_float32, model.variables
                )
                gradient = K.stop_gradient(gradient)
            f = as_logits(outputs)
            return CleanPass(f, f), gradient
        x = K.cast(x, "float32")
        tangent = K.stop_gradient(self.input_mean - x)
        if loss_of is None:
            def logits_of(inputs):
                return as_logits(forward(inputs))

            return CleanPass(*_jvp(logits_of, x, tangent, model.variables)), None

        def logits_and_loss(inputs):
            out = forward(inputs)
            return as_logits(out), loss_float32(out)

        f, direction, gradient = jvp_with_input_gradient(
            logits_and_loss, x, tangent, model.variables
        )
        return CleanPass(f, direction), gradient

    def _check_classifier(self, model, y):
        """MixupE's term is defined for softmax classifiers: refuse a
        regression or binary (one-output) model rather than train on a
        meaningless term."""
        losses = loss_info.flat_losses(model)
        loss = losses[0] if len(losses) == 1 else None
        wrong = None
        if loss is not None and loss_info.is_known(loss) and not loss_info.is_categorical(loss):
            wrong = f"the compiled loss is {loss_info.name_of(loss)!r}"
        outputs = keras.tree.flatten(getattr(model.model, "outputs", None) or [])
        classes = outputs[0].shape[-1] if len(outputs) == 1 else None
        if wrong is None and classes is not None and classes < 2:
            wrong = f"the model has {classes} output unit"
        if wrong is None and not is_class_ids(y) and backend.rank(y) == 1:
            wrong = f"the labels have shape {tuple(y.shape)} (one value per example)"
        if wrong is not None:
            raise ValueError(
                "MixupE adds the first-order term of mixup's regularizer for a "
                "softmax classifier (q = (softmax(f) − y)ᵀ·∂f), but "
                f"{wrong}: for regression or single-logit binary outputs the "
                "term means nothing. Train such a model with MixupModel "
                "without `regularizer=`, or give it C >= 2 class outputs "
                "with a (sparse) categorical cross-entropy loss."
            )

    def _resolve_from_logits(self, model):
        if self.from_logits is not None:
            return self.from_logits
        loss = getattr(model, "loss", None)
        if isinstance(loss, str):
            return False
        if hasattr(loss, "from_logits"):
            return bool(loss.from_logits)
        raise ValueError(
            "MixupE cannot tell whether the model outputs logits or "
            f"probabilities from the compiled loss {loss!r}; pass "
            "`MixupE(from_logits=True)` for logits or `from_logits=False` "
            "for a softmax output."
        )

    def _subset(self, x, y, sample_weight, seed):
        if self.batch_fraction == 1.0:
            return x, y, sample_weight
        K = backend.ops()
        first = keras.tree.flatten(x)[0]
        static = first.shape[0]
        batch = K.batch_size(first)
        if static is not None:
            k = max(1, round(self.batch_fraction * static))
        else:
            k = K.maximum(
                1, K.cast(K.round(self.batch_fraction * K.cast(batch, "float32")), "int32")
            )
        index = random_permutation(batch, fold_seed(seed, -2))[:k]
        take = lambda t: None if t is None else K.gather(t, index)
        return keras.tree.map_structure(take, x), take(y), take(sample_weight)

    def _update_input_mean(self, x):
        K = backend.ops()
        x = K.stop_gradient(K.cast(x, "float32"))
        total = K.reduce_sum(x, axis=0)
        count = K.cast(K.batch_size(x), "float32")
        if backend.keras_backend() != "tensorflow":
            # JAX: one program sees the global batch (sharded or not under
            # keras.distribution), so these are already the global sums.
            self._assign_mean(total, count)
            return
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # One update from the sums of all replicas, made in a merge_call:
            # the replicas meet there, so this reduction cannot interleave
            # with the gradients' all-reduce in a different order per replica.
            context.merge_call(self._merged_update, args=(total, count))
        else:
            self._assign_mean(total, count)

    def _merged_update(self, strategy, total, count):
        import tensorflow as tf

        total, count = strategy.extended.batch_reduce_to(
            tf.distribute.ReduceOp.SUM, [(total, total), (count, count)]
        )
        self._assign_mean(total, count)

    def _assign_mean(self, total, count):
        n = self.input_count + count
        self.input_mean.assign(self.input_mean + (total - count * self.input_mean) / n)
        self.input_count.assign(n)
