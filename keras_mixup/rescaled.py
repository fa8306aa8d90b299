"""RescaledModel: the test-time rescaling of a mixup-trained model.

Carratino et al. ("On Mixup Regularization", JMLR 2022) show that mixup
trains a model on inputs shrunk toward their mean, ``x̄ + θ̄·(x − x̄)``, with
labels shrunk the same way, ``ȳ + θ̄·(y − ȳ)`` (a label smoothing toward the
class frequencies). At test time the same shrinkage should be applied to the
inputs and undone on the outputs. `RescaledModel` wraps a trained model and
does both, with the statistics stored as weights of the model.
"""

import numbers
import warnings

import keras
import numpy as np
from keras import ops

SPACES = ("probs", "logits")
# Probabilities are floored here before a log (Keras' cross-entropy clips
# probabilities to the same value, so its loss is unchanged by the floor).
_PROB_FLOOR = 1e-7
_LOG_FLOOR = float(np.finfo(np.float32).tiny)


def check_space(space):
    if space not in SPACES:
        raise ValueError(
            f"`space` must be 'probs' (rescale predicted probabilities, then "
            f"clip and renormalize) or 'logits' (rescale logits around the "
            f"log class frequencies); got {space!r}."
        )
    return space


def check_theta_bar(theta_bar):
    if isinstance(theta_bar, bool) or not isinstance(theta_bar, numbers.Real):
        raise TypeError(
            "`theta_bar` must be a Python number in [0.5, 1], e.g. "
            f"keras_mixup.ops.theta_bar(alpha); got {theta_bar!r}."
        )
    theta_bar = float(theta_bar)
    if not 0.5 <= theta_bar <= 1.0:
        raise ValueError(
            "`theta_bar` is the mean mixing weight of the dominant example, "
            "E[max(λ, 1 − λ)], so it lies in [0.5, 1] (1 means no mixing); "
            f"got {theta_bar!r}. Compute it with "
            "keras_mixup.ops.theta_bar(alpha, beta)."
        )
    return theta_bar


def _single(tensors, what):
    """The one KerasTensor of a model's inputs/outputs, or None if unknown."""
    try:
        tensors = keras.tree.flatten(tensors)
    except (AttributeError, ValueError):  # pragma: no cover - defensive
        return None
    if len(tensors) > 1:
        raise ValueError(
            f"RescaledModel supports models with a single {what} tensor; got "
            f"a model with {len(tensors)} {what}s."
        )
    return tensors[0] if tensors else None


def _known(model, attr):
    try:
        return getattr(model, attr)
    except (AttributeError, ValueError):
        return None


def check_y_mean(y_mean, space, num_classes=None):
    y_mean = np.asarray(y_mean, dtype=np.float64)
    if y_mean.ndim != 1 or y_mean.shape[0] < 2:
        raise ValueError(
            "`y_mean` must be the mean one-hot training label: a vector with "
            f"one frequency per class (at least 2); got shape {y_mean.shape}."
        )
    if num_classes is not None and y_mean.shape[0] != num_classes:
        raise ValueError(
            f"`y_mean` has {y_mean.shape[0]} entries but the model predicts "
            f"{num_classes} classes; pass one frequency per class."
        )
    if not np.all(np.isfinite(y_mean)) or np.any(y_mean < 0):
        raise ValueError(
            "`y_mean` must hold class frequencies (finite, >= 0); got "
            f"{y_mean.tolist()}."
        )
    if abs(y_mean.sum() - 1.0) > 1e-3:
        raise ValueError(
            "`y_mean` must be the mean one-hot label, which sums to 1; got a "
            f"sum of {y_mean.sum():.6g}. Pass class frequencies "
            "(counts / total)."
        )
    if space == "logits" and np.any(y_mean == 0):
        raise ValueError(
            "space='logits' rescales around log(y_mean), which is -inf for a "
            f"class that never occurs (classes {np.flatnonzero(y_mean == 0).tolist()} "
            "have frequency 0). Use space='probs', or pass frequencies > 0 "
            "(e.g. add-one smoothed counts)."
        )
    return y_mean


@keras.saving.register_keras_serializable(package="keras_mixup")
class RescaledModel(keras.Model):
    """Test-time rescaling of a mixup-trained model (Carratino et al., 2022).

    Mixup with ``λ ~ Beta(α, β)`` trains a model, in effect, on inputs shrunk
    toward the training mean, ``x̄ + θ̄·(x − x̄)``, with targets shrunk the
    same way, ``ȳ + θ̄·(y − ȳ)``, where ``θ̄ = E[max(λ, 1 − λ)]``
    (`keras_mixup.ops.theta_bar`). The paper's fix ("On Mixup
    Regularization", JMLR 2022) is a one-line change at test time: shrink
    the test input the same way and undo the shrinkage on the prediction,

        ``x ↦ x̄ + θ̄·(x − x̄)``,  ``f ↦ ȳ + (f − ȳ) / θ̄``.

    The paper states the rule for the model output ``f`` that is fitted to
    the (smoothed) labels, with ``ȳ`` the mean one-hot training label; read
    literally, that is the space of predicted probabilities — ``space="probs"``
    here. Two ways of applying it to a softmax classifier are offered:

    - ``space="probs"`` (default, the rule as stated): with ``p`` the
      predicted probabilities, ``p' = ȳ + (p − ȳ) / θ̄``. This sums to 1 but
      can leave [0, 1]: negative entries are clipped to 0 and the rows
      renormalized to sum to 1, ``p'' = max(p', 0) / Σ max(p', 0)``.
    - ``space="logits"``: with ``z`` the logits and ``c = log ȳ`` (the log
      class frequencies), ``z' = c + (z − c) / θ̄``. Since softmax ignores
      shifts, ``softmax(z') ∝ ȳ^(1 − 1/θ̄) · softmax(z)^(1/θ̄)``: a
      sharpening by the temperature θ̄ with a class-prior correction (for
      balanced classes exactly temperature scaling with ``T = θ̄``). The
      output is always a valid distribution; ``ȳ`` must be > 0 for every
      class.

    The rescaled model is a drop-in replacement: it takes the same input
    and returns the same kind of output as the wrapped model (probabilities,
    or logits when ``from_logits=True``), so the loss and metrics the model
    was compiled with apply unchanged. Conversions: a logits model in
    ``space="probs"`` returns ``log(max(p'', 1e-7))`` (Keras'
    cross-entropy clips probabilities to the same floor); a probabilities
    model in ``space="logits"`` uses ``z = log p`` and returns
    ``softmax(z')``. The rescaling runs in float32 whatever the dtype policy;
    integer inputs (uint8 images) are accepted, but a model whose ``Input``
    is declared with an integer dtype casts the shrunk (fractional) input
    back to it, so declare it float32 (a warning says so).

    ``x_mean``, ``y_mean`` and ``theta_bar`` are non-trainable weights, so
    they are saved and restored with the model (``model.save("m.keras")`` /
    ``keras.models.load_model``). `keras_mixup.callbacks.RescaledPrediction`
    computes them from the training data and builds this model for you.

    Args:
        model: the trained Keras model (single input, single output: a
            softmax classifier over the last axis). For a
            `keras_mixup.MixupModel`, pass ``mixup_model.model``.
        x_mean: mean training input, of the input's feature shape (without
            the batch axis) or broadcastable to it.
        y_mean: mean one-hot training label (class frequencies), shape
            ``(num_classes,)``, summing to 1.
        theta_bar: mean shrinkage θ̄ in [0.5, 1], e.g.
            ``keras_mixup.ops.theta_bar(alpha)``; 1 is the identity.
        space: ``"probs"`` or ``"logits"``, see above.
        from_logits: whether ``model`` returns logits (True) or
            probabilities (False, default); the rescaled model returns the
            same kind.
        **kwargs: ``keras.Model`` arguments such as ``name``.

    Example:

    >>> inputs = keras.Input((4,))
    >>> outputs = keras.layers.Dense(3, activation="softmax")(inputs)
    >>> model = keras.Model(inputs, outputs)
    >>> rescaled = keras_mixup.RescaledModel(
    ...     model, x_mean=np.zeros(4), y_mean=[0.5, 0.25, 0.25],
    ...     theta_bar=keras_mixup.ops.theta_bar(1.0))
    >>> p = rescaled.predict(np.ones((2, 4), "float32"), verbose=0)
    >>> p.shape, bool(np.allclose(p.sum(axis=-1), 1.0)), bool((p >= 0).all())
    ((2, 3), True, True)
    """

    def __init__(
        self,
        model,
        x_mean,
        y_mean,
        theta_bar,
        space="probs",
        from_logits=False,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        if not isinstance(model, keras.layers.Layer):
            raise TypeError(
                f"`model` must be a Keras model to wrap; got {type(model).__name__}."
            )
        self.space = check_space(space)
        if not isinstance(from_logits, bool):
            raise TypeError(f"`from_logits` must be True or False; got {from_logits!r}.")
        self.from_logits = from_logits
        theta = check_theta_bar(theta_bar)
        x_mean = np.asarray(x_mean, dtype=np.float64)
        if not np.all(np.isfinite(x_mean)):
            raise ValueError("`x_mean` must be finite; it holds NaN or Inf.")
        inp = _single(_known(model, "inputs"), "input")
        out = _single(_known(model, "outputs"), "output")
        if inp is not None:
            features = tuple(inp.shape[1:])
            try:
                shape = np.broadcast_shapes(
                    x_mean.shape, tuple(1 if d is None else d for d in features)
                )
                ok = len(shape) == len(features) and all(
                    d is None or d == s for d, s in zip(features, shape)
                )
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(
                    f"`x_mean` has shape {x_mean.shape}, which does not fit the "
                    f"model's input features {features}; pass the mean input "
                    "without the batch axis (e.g. x_train.mean(axis=0))."
                )
            if not keras.backend.is_float_dtype(inp.dtype):
                warnings.warn(
                    f"The model's input has dtype {inp.dtype}: the shrunk input "
                    "x̄ + θ̄·(x − x̄) is fractional and the model will cast it "
                    "back, rounding it. Declare the model's Input as float32 "
                    "(e.g. keras.Input(shape, dtype='float32') before a "
                    "Rescaling layer) for the exact rescaling.",
                    stacklevel=2,
                )
        num_classes = None
        if out is not None and out.shape[-1] is not None:
            num_classes = out.shape[-1]
        y_mean = check_y_mean(y_mean, space, num_classes)
        self.model = model
        self.x_mean = self._constant("x_mean", x_mean)
        self.y_mean = self._constant("y_mean", y_mean)
        self.theta_bar = self._constant("theta_bar", np.float64(theta))
        if getattr(model, "built", False):
            self.built = True

    def _constant(self, name, value):
        var = self.add_weight(
            shape=value.shape,
            initializer="zeros",
            trainable=False,
            dtype="float32",
            name=name,
        )
        var.assign(value.astype(np.float32))
        return var

    # ------------------------------------------------------------ forward

    def shrink_inputs(self, x):
        """``x̄ + θ̄·(x − x̄)`` in float32."""
        x = ops.cast(x, "float32")
        mean = ops.convert_to_tensor(self.x_mean)
        return mean + ops.convert_to_tensor(self.theta_bar) * (x - mean)

    def rescale_outputs(self, outputs):
        """Undoes the shrinkage on the model's outputs (see the class doc)."""
        f = ops.cast(outputs, "float32")
        theta = ops.convert_to_tensor(self.theta_bar)
        y_mean = ops.convert_to_tensor(self.y_mean)
        if self.space == "probs":
            p = ops.softmax(f, axis=-1) if self.from_logits else f
            p = ops.maximum(y_mean + (p - y_mean) / theta, 0.0)
            p = p / ops.maximum(ops.sum(p, axis=-1, keepdims=True), _LOG_FLOOR)
            return ops.log(ops.maximum(p, _PROB_FLOOR)) if self.from_logits else p
        z = f if self.from_logits else ops.log(ops.maximum(f, _LOG_FLOOR))
        center = ops.log(y_mean)
        z = center + (z - center) / theta
        return z if self.from_logits else ops.softmax(z, axis=-1)

    def call(self, inputs, training=False):
        outputs = self.model(self.shrink_inputs(inputs), training=training)
        return self.rescale_outputs(outputs)

    # -------------------------------------------------------------- config

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "model": keras.saving.serialize_keras_object(self.model),
                "x_mean_shape": list(self.x_mean.shape),
                "num_classes": int(self.y_mean.shape[0]),
                "theta_bar": float(keras.ops.convert_to_numpy(self.theta_bar)),
                "space": self.space,
                "from_logits": self.from_logits,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        model = keras.saving.deserialize_keras_object(
            config.pop("model"), custom_objects=custom_objects
        )
        # The means are weights: placeholders here, restored with the weights.
        x_mean = np.zeros(config.pop("x_mean_shape"))
        num_classes = config.pop("num_classes")
        y_mean = np.full([num_classes], 1.0 / num_classes)
        return cls(model, x_mean=x_mean, y_mean=y_mean, **config)
