"""AdaMixup (Guo, Mao & Zhang, AAAI 2019): mixup with a learned policy.

Guo et al. call a mixed example that lands on the data manifold with a label
the data there does not have a *manifold intrusion*; a fixed λ
distribution produces them whenever two classes mix into a third. AdaMixup
learns, per pair, where λ may lie, and a discriminator that keeps mixed
points off the data:

- a **policy** network reads the pair (``x_i``, ``x_j``, concatenated on the
  last axis) and outputs three softmax weights ``(α, Δ, γ)``; λ is drawn
  ``α + Δ·u``, ``u ~ U(0, 1)`` (reparameterized, so λ has a gradient), i.e.
  uniformly in ``[α, α + Δ] ⊂ [0, 1]``;
- an **intrusion discriminator** learns to tell the original examples
  (target 1) from the mixed ones (target 0);
- one loss trains all three at once: the classifier's cross-entropy on the
  original batch and on the mixed batch (with the mixed labels), plus
  ``intrusion_weight ×`` the discriminator's loss (original → 1, mixed →
  0), which the policy also minimizes: it learns to mix where the mixed
  points do not look like data.

Two choices of ours. In the paper the three networks share the
classifier's lower layers; here they are three networks (the defaults:
small MLPs on the flattened input), which the user may replace. And the
paper lets the classification loss train the policy too; on digits that
drove the policy to λ = 0 within a few epochs in every run we tried (the
"mixed" point is then the partner itself: an easy loss and no
regularization, and the discriminator, shown the same point as original
and as mixed, has nothing to learn). Here the classification loss takes
the policy's λ as given, and the policy learns from the intrusion loss.

`AdaMixupModel` overrides ``compute_loss`` only, so Keras' own train step
(TensorFlow or JAX) takes the gradients of all three networks in one
step. `collision_rate` measures intrusions.
"""

import numpy as np

import keras

from keras_mixup import backend
from keras_mixup.ops.labels import to_soft_labels
from keras_mixup.ops.pairing import permutation
from keras_mixup.ops.random import check_seed, fold_seed, uniform


def _mlp(shape, outputs, name, width=64):
    return keras.Sequential([
        keras.Input(shape), keras.layers.Flatten(),
        keras.layers.Dense(width, activation="relu"), keras.layers.Dense(outputs),
    ], name=name)


def _out_width(net, shape, name, want):
    """Checks ``net`` on a symbolic batch of ``shape``: ``(batch, want)``
    (or ``(batch,)`` when ``want`` is 1)."""
    try:
        out = net.compute_output_spec(keras.KerasTensor((None,) + tuple(shape)))
    except Exception as error:  # noqa: BLE001 - re-raised with what to pass
        raise ValueError(f"`{name}` cannot take inputs of shape (batch,) + {tuple(shape)}: "
                         f"{error}") from error
    ok = (len(out.shape) == 2 and out.shape[1] == want) or (want == 1 and len(out.shape) == 1)
    if not ok:
        raise ValueError(f"`{name}` must output {want} score(s) per example, shape "
                         f"(batch, {want}); it outputs {tuple(out.shape)}.")


@keras.saving.register_keras_serializable(package="keras_mixup")
class AdaMixupModel(keras.Model):
    """A classifier trained with AdaMixup's learned mixing policy.

    ``fit(x, y)`` takes inputs (one tensor per example: images, sequences
    or feature vectors) and class ids or one-hot labels; each step pairs
    the batch by a random permutation, mixes with the policy's λ, and
    trains the classifier, the policy and the discriminator together.
    ``predict``/``evaluate`` use the classifier (``model.model``).

    Logged: ``original_loss``, ``mixup_loss``, ``intrusion_loss``,
    ``lam_low`` (mean α) and ``lam_width`` (mean Δ); compiled metrics see
    the original batch.

    Args:
        model: a Keras model returning class scores ``(batch, classes)``.
        policy: a model from the pair ``concat([x_i, x_j], axis=-1)`` to 3
            scores (default: an MLP of 64 units on the flattened pair).
        discriminator: a model from an input to 1 logit (default: an MLP of
            64 units).
        intrusion_weight: weight of the intrusion loss (the paper: 1).
        from_logits: whether ``model`` returns logits (default) or
            probabilities.
        seed: int seed of the pairing and λ stream, or None.

    Example:

    >>> net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model = keras_mixup.AdaMixupModel(net, seed=0)
    >>> model.compile("adam", metrics=["accuracy"])
    >>> x, y = np.random.rand(16, 4).astype("float32"), np.arange(16) % 3
    >>> history = model.fit(x, y, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'intrusion_loss', 'lam_low', 'lam_width', 'loss', 'mixup_loss', 'original_loss']
    """

    def __init__(self, model, policy=None, discriminator=None, intrusion_weight=1.0,
                 from_logits=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        model, policy, discriminator = (
            keras.saving.deserialize_keras_object(m) if isinstance(m, dict) else m
            for m in (model, policy, discriminator))
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model` must be a Keras model returning class scores; got "
                            f"{type(model).__name__}.")
        inputs = getattr(model, "inputs", None)
        if not inputs or len(inputs) != 1 or None in inputs[0].shape[1:]:
            raise ValueError("AdaMixupModel needs a model with one input of known shape "
                             "(e.g. built with keras.Input((features,))): the policy reads "
                             "pairs of inputs and the default networks are built from it.")
        shape = tuple(inputs[0].shape[1:])
        pair_shape = shape[:-1] + (2 * shape[-1],)
        if isinstance(intrusion_weight, bool) or not isinstance(intrusion_weight, (int, float)) \
                or intrusion_weight < 0:
            raise ValueError(f"`intrusion_weight` must be a number >= 0; got "
                             f"{intrusion_weight!r}.")
        policy = policy if policy is not None else _mlp(pair_shape, 3, "policy")
        discriminator = (discriminator if discriminator is not None
                         else _mlp(shape, 1, "intrusion_discriminator"))
        for net, name in ((policy, "policy"), (discriminator, "discriminator")):
            if not isinstance(net, keras.Model):
                raise TypeError(f"`{name}` must be a Keras model; got {type(net).__name__}.")
        _out_width(policy, pair_shape, "policy", 3)
        _out_width(discriminator, shape, "discriminator", 1)
        self.model, self.policy, self.discriminator = model, policy, discriminator
        self.intrusion_weight = float(intrusion_weight)
        self.from_logits = bool(from_logits)
        self.seed, self._base_seed = check_seed(seed)
        self.step = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                    trainable=False, name="adamixup_step")
        self._trackers = {n: keras.metrics.Mean(name=n)
                          for n in ("original_loss", "mixup_loss", "intrusion_loss", "lam_low",
                                    "lam_width")}

    def call(self, inputs, training=False):
        return self.model(inputs, training=training)

    def sample_mix(self, x, seed, training=False):
        """The policy's mix of a batch: ``(mixed, lam, index, low, width)``
        (``λ`` of the own example, partner ``x[index]``)."""
        ops = keras.ops
        K = backend.ops()
        x = ops.cast(x, "float32")
        batch = K.batch_size(x)
        index = permutation(batch, fold_seed(seed, 1))
        partner = ops.take(x, index, axis=0)
        weights = ops.softmax(ops.cast(
            self.policy(ops.concatenate([x, partner], axis=-1), training=training), "float32"))
        low, width = weights[:, 0], weights[:, 1]
        lam = low + width * uniform(K.shape(low), fold_seed(seed, 2))
        shape = [-1] + [1] * (len(x.shape) - 1)
        lam_x = ops.reshape(lam, shape)
        return lam_x * x + (1.0 - lam_x) * partner, lam, index, low, width

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        ops = keras.ops
        if y is None:
            raise ValueError("AdaMixupModel needs labels: fit(x, y).")
        y = to_soft_labels(y, y_pred.shape[-1])
        if not training:
            return self._mean(keras.losses.categorical_crossentropy(
                y, y_pred, from_logits=self.from_logits), sample_weight) + self._extra()
        K = backend.ops()
        step = self.step.value
        seed = fold_seed(K.seed_from_int(self._base_seed), K.convert_to_tensor(step))
        mixed, lam, index, low, width = self.sample_mix(x, seed, training=True)
        # The classifier learns from the original batch (Keras' forward pass,
        # `y_pred`) and from the mixes, whose λ it takes as given: the policy
        # learns from the intrusion loss only (see the module docstring).
        fixed_mix, fixed_lam = ops.stop_gradient(mixed), ops.stop_gradient(lam)[:, None]
        target = fixed_lam * y + (1.0 - fixed_lam) * ops.take(y, index, axis=0)
        original_loss = self._mean(keras.losses.categorical_crossentropy(
            y, y_pred, from_logits=self.from_logits), sample_weight)
        mixup_loss = self._mean(keras.losses.categorical_crossentropy(
            target, self.model(fixed_mix, training=True), from_logits=self.from_logits),
            sample_weight)
        real = ops.reshape(self.discriminator(ops.cast(x, "float32"), training=True), [-1])
        fake = ops.reshape(self.discriminator(mixed, training=True), [-1])
        intrusion = ops.mean(
            keras.losses.binary_crossentropy(ops.ones_like(real)[:, None], real[:, None],
                                             from_logits=True)
            + keras.losses.binary_crossentropy(ops.zeros_like(fake)[:, None], fake[:, None],
                                               from_logits=True))
        self.step.assign(step + 1)
        for name, value in (("original_loss", original_loss), ("mixup_loss", mixup_loss),
                            ("intrusion_loss", intrusion),
                            ("lam_low", ops.mean(low)), ("lam_width", ops.mean(width))):
            self._trackers[name].update_state(value)
        return (original_loss + mixup_loss + self.intrusion_weight * intrusion
                + self._extra())

    @staticmethod
    def _mean(loss, sample_weight):
        ops = keras.ops
        if sample_weight is None:
            return ops.mean(loss)
        w = ops.cast(ops.reshape(sample_weight, [-1]), "float32")
        return ops.sum(loss * w) / ops.maximum(ops.sum(w), 1e-12)

    def _extra(self):
        """The regularization losses of the three networks."""
        total = 0.0
        for extra in self.losses:
            total = total + keras.ops.cast(extra, "float32")
        return total

    def get_config(self):
        config = super().get_config()
        config.update({
            "model": keras.saving.serialize_keras_object(self.model),
            "policy": keras.saving.serialize_keras_object(self.policy),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "intrusion_weight": self.intrusion_weight, "from_logits": self.from_logits,
            "seed": self.seed,
        })
        return config


def collision_rate(x_real, y_real, x_mixed, sources, radius=None):
    """The fraction of mixed points that intrude on the data: the nearest
    real example (other than the point's two sources) lies within
    ``radius`` of it and has a third class, neither source's.

    Distances are Euclidean on flattened inputs; ``radius`` defaults to the
    90th percentile of the distances from each real example to its nearest
    other real example (a mixed point that close to data is as near to it
    as the data are to each other: on the data manifold).

    Args:
        x_real, y_real: the real examples and their class ids.
        x_mixed: mixed points ``(M, ...)``.
        sources: int ``(M, 2)``: the indices in ``x_real`` of each mixed
            point's two sources.
        radius: the distance below which a mixed point meets a real one.
    """
    real = np.asarray(x_real, "float64").reshape(len(x_real), -1)
    mixed = np.asarray(x_mixed, "float64").reshape(len(x_mixed), -1)
    y_real, sources = np.asarray(y_real).reshape(-1), np.asarray(sources)
    if sources.shape != (len(mixed), 2):
        raise ValueError(f"`sources` must be (mixed points, 2) indices; got {sources.shape}.")
    if len(real) != len(y_real):
        raise ValueError(f"`x_real` has {len(real)} examples but `y_real` {len(y_real)}.")

    def squared(a, b):
        return np.maximum((a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2.0 * a @ b.T, 0)

    if radius is None:
        own = squared(real, real)
        np.fill_diagonal(own, np.inf)
        radius = float(np.sqrt(np.percentile(own.min(1), 90)))
    d = squared(mixed, real)
    rows = np.arange(len(mixed))
    d[rows, sources[:, 0]] = d[rows, sources[:, 1]] = np.inf
    nearest = d.argmin(1)
    third = (y_real[nearest] != y_real[sources[:, 0]]) & (y_real[nearest] != y_real[sources[:, 1]])
    return float(np.mean(third & (np.sqrt(d[rows, nearest]) <= radius)))
