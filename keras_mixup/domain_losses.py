"""Building blocks of `keras_mixup.DomainAdaptationModel`.

- `reverse_gradient` / `GradientReversal`: the gradient-reversal layer of
  DANN (Ganin & Lempitsky, 2015), identity forward and ``−scale`` times
  the gradient backward, written with ``keras.ops`` only.
- `mix_domains`: domain mixup (Wu, Inkpen & El-Roby, 2020): source and
  target inputs mixed with a per-example λ, the discriminator's soft
  target (1 = source).
- The per-example losses and the two ramp-ups the model uses.

Every function is backend-neutral: the same code runs on TensorFlow and JAX.
"""

import math

import keras

from keras_mixup import backend
from keras_mixup.ops.random import check_concentration, sample_beta


def reverse_gradient(x, scale=1.0):
    """Identity in the forward pass; ``−scale`` times the gradient backward.

    Computed as ``stop_gradient(x) + (r − stop_gradient(r))`` with
    ``r = −scale·x``: the bracket is exactly 0 forward (a number minus
    itself), so the output equals ``x`` bit for bit, and its derivative is
    ``−scale``. (The shorter ``stop_gradient((1 + c)·x) − c·x`` has the
    same gradient but returns ``x`` only up to the rounding of
    ``(1 + c)·x``.)

    Args:
        x: a float tensor.
        scale: a float or scalar float tensor, the reversal's strength.

    Example:

    >>> x = keras.ops.convert_to_tensor([1.0, -2.0])
    >>> keras.ops.convert_to_numpy(keras_mixup.domain_losses.reverse_gradient(x, 0.5))
    array([ 1., -2.], dtype=float32)
    """
    ops = keras.ops
    x = ops.convert_to_tensor(x)
    r = -ops.cast(scale, x.dtype) * x
    return ops.stop_gradient(x) + (r - ops.stop_gradient(r))


@keras.saving.register_keras_serializable(package="keras_mixup")
class GradientReversal(keras.layers.Layer):
    """`reverse_gradient` as a layer, for hand-built DANN models.

    Args:
        scale: the reversal's strength (a float >= 0).

    Example:

    >>> layer = keras_mixup.domain_losses.GradientReversal(scale=1.0)
    >>> keras.ops.convert_to_numpy(layer(np.ones((2, 3), "float32"))).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = check_weight(scale, "scale")

    def call(self, inputs):
        return reverse_gradient(inputs, self.scale)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def check_weight(value, name):
    """A loss weight: a finite Python number >= 0, returned as a float."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value < 0):
        raise ValueError(f"`{name}` must be a finite number >= 0; got {value!r}.")
    return float(value)


def mix_domains(x_source, x_target, alpha=1.0, seed=None):
    """Domain mixup: ``λ·x_source + (1 − λ)·x_target``, ``λ ~ Beta(α, α)``
    per example, with λ as the domain discriminator's target (1 = source).

    Row ``i`` of the source batch is mixed with row ``i`` of the target
    batch; when the batches differ in size, the first ``min`` rows of each
    are used.

    Args:
        x_source, x_target: float tensors of the same per-example shape.
        alpha: Beta(α, α) concentration, > 0.
        seed: an int, a shape-``(2,)`` int tensor, or None.

    Returns:
        ``(mixed, lam)``: the mixed inputs and the ``(n,)`` float32 targets.

    Example:

    >>> xs, xt = np.ones((4, 3), "float32"), np.zeros((4, 3), "float32")
    >>> mixed, lam = keras_mixup.domain_losses.mix_domains(xs, xt, seed=0)
    >>> bool(np.allclose(keras.ops.convert_to_numpy(mixed)[:, 0],
    ...                  keras.ops.convert_to_numpy(lam)))
    True
    """
    check_concentration(alpha, "alpha")
    x_source, x_target, n = _domain_pairs(x_source, x_target)
    lam = sample_beta([n], alpha, seed=seed)
    return blend_domains(x_source, x_target, lam), lam


def _domain_pairs(x_source, x_target):
    """The two batches cut to their common size ``n``, and ``n``."""
    ops = keras.ops
    x_source = ops.convert_to_tensor(x_source)
    x_target = ops.cast(ops.convert_to_tensor(x_target), x_source.dtype)
    if tuple(x_source.shape[1:]) != tuple(x_target.shape[1:]):
        raise ValueError(
            f"Source and target examples must have the same shape to be mixed; got "
            f"{tuple(x_source.shape[1:])} and {tuple(x_target.shape[1:])}."
        )
    ns, nt = backend.dim(x_source, 0), backend.dim(x_target, 0)
    n = min(ns, nt) if isinstance(ns, int) and isinstance(nt, int) else ops.minimum(ns, nt)
    return x_source[:n], x_target[:n], n


def blend_domains(x_source, x_target, lam):
    """``λ·x_source + (1 − λ)·x_target`` row by row for given ``(n,)`` weights
    (the batches cut to ``n`` rows)."""
    ops = keras.ops
    x_source, x_target, _ = _domain_pairs(x_source, x_target)
    w = ops.reshape(ops.cast(lam, x_source.dtype), [-1] + [1] * (backend.rank(x_source) - 1))
    return w * x_source + (1.0 - w) * x_target


# ------------------------------------------------------------ losses


def log_probs(scores, from_logits):
    scores = keras.ops.cast(scores, "float32")
    if from_logits:
        return keras.ops.log_softmax(scores, axis=-1)
    return keras.ops.log(keras.ops.clip(scores, 1e-7, 1.0))


def probs(scores, from_logits):
    scores = keras.ops.cast(scores, "float32")
    return keras.ops.softmax(scores, axis=-1) if from_logits else scores


def cross_entropy(targets, scores, from_logits=True):
    """Per-example ``−Σ_k t_k log p_k`` for (soft) target distributions."""
    return -keras.ops.sum(targets * log_probs(scores, from_logits), axis=-1)


def kl_divergence(targets, scores, from_logits=True):
    """Per-example ``KL(t ‖ p) = Σ_k t_k (log t_k − log p_k)`` (0·log 0 = 0)."""
    ops = keras.ops
    t = ops.cast(targets, "float32")
    t_log_t = ops.where(t > 0, t * ops.log(ops.maximum(t, 1e-30)), 0.0)
    return ops.sum(t_log_t, axis=-1) + cross_entropy(t, scores, from_logits)


def entropy(scores, from_logits=True):
    """Per-example Shannon entropy of the predicted distribution."""
    p = probs(scores, from_logits)
    return -keras.ops.sum(p * log_probs(scores, from_logits), axis=-1)


def binary_cross_entropy(targets, logits):
    """Per-example BCE of logits against (soft) targets in [0, 1]:
    ``softplus(l) − t·l`` (stable for any logit)."""
    logits = keras.ops.cast(logits, "float32")
    return keras.ops.softplus(logits) - keras.ops.cast(targets, "float32") * logits


def weighted_mean(values, sample_weight=None):
    """``Σ w·v / Σ w`` (the plain mean without weights)."""
    ops = keras.ops
    if sample_weight is None:
        return ops.mean(values)
    w = ops.reshape(ops.cast(sample_weight, "float32"), [-1])
    return ops.sum(w * values) / ops.maximum(ops.sum(w), 1e-12)


# ------------------------------------------------------------ ramp-ups


def _progress(step, rampup_steps):
    return keras.ops.minimum(keras.ops.cast(step, "float32") / float(rampup_steps), 1.0)


def adversarial_rampup(step, rampup_steps):
    """Ganin & Lempitsky's schedule of the reversal's strength:
    ``2 / (1 + exp(−10 t)) − 1``, ``t = min(step / rampup_steps, 1)``
    (0 at the start, 0.987 half-way, 1 at the end; 1 if ``rampup_steps`` is 0)."""
    if rampup_steps == 0:
        return keras.ops.convert_to_tensor(1.0, "float32")
    return 2.0 / (1.0 + keras.ops.exp(-10.0 * _progress(step, rampup_steps))) - 1.0


def sigmoid_rampup(step, rampup_steps):
    """``exp(−5 (1 − t)²)``, ``t = min(step / rampup_steps, 1)`` (Laine &
    Aila's ramp of consistency weights; 1 if ``rampup_steps`` is 0)."""
    if rampup_steps == 0:
        return keras.ops.convert_to_tensor(1.0, "float32")
    return keras.ops.exp(-5.0 * keras.ops.square(1.0 - _progress(step, rampup_steps)))
