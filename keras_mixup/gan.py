"""Mixup for GAN discriminators (Zhang et al., ICLR 2018, section 3.5).

The discriminator sees mixes of real and generated samples,
``x̃ = λ·x_real + (1 − λ)·G(z)`` with ``λ ~ Beta(α, α)`` (one λ per example),
and is trained with binary cross-entropy against the soft target λ. The
generator is trained as usual, here with the non-saturating loss
``−log D(G(z))``.

`discriminator_mixup` mixes one batch, for any custom train step.
`MixupGAN` trains both players with ``fit(real_data)``, on every backend:
it overrides ``call`` and ``compute_loss`` only, and Keras' own train step
computes the gradients of one loss,

    L = L_D(θ_D; stop_gradient(G(z))) + L_G(θ_G; stop_gradient(θ_D)),

where the generator's term runs the discriminator through ``stateless_call``
with its weights wrapped in ``stop_gradient``. So ∂L/∂θ_D = ∂L_D/∂θ_D and
∂L/∂θ_G = ∂L_G/∂θ_G: one optimizer step updates both players at once, each
on its own loss.
"""

import numbers

import keras

from keras_mixup import backend
from keras_mixup.ops.random import (
    check_concentration, check_seed, fold_seed, normal, sample_beta)


def _float_tensor(x, name):
    """``x`` as a tensor, with clear errors for other types and dtypes."""
    if not (hasattr(x, "dtype") and hasattr(x, "shape")):
        raise TypeError(
            f"`{name}` must be a float tensor or NumPy array with a leading "
            f"batch axis; got {type(x).__name__}. Convert it first, e.g. "
            f"np.asarray({name}, 'float32')."
        )
    x = keras.ops.convert_to_tensor(x)
    if not backend.is_float(x):
        raise ValueError(
            f"`{name}` must hold floating-point values (a mix is a weighted "
            f"average); got dtype {backend.dtype_name(x)}. Cast it first, "
            f"e.g. keras.ops.cast({name}, 'float32')."
        )
    if backend.rank(x) == 0:
        raise ValueError(f"`{name}` must have a leading batch axis; got a scalar.")
    return x


def _same_shape(a, b):
    """Whether two static shapes can be equal (None matches anything)."""
    return len(a) == len(b) and all(
        p is None or q is None or p == q for p, q in zip(a, b))


def discriminator_mixup(real, fake, alpha=1.0, seed=None):
    """Mixes real and generated samples for a discriminator, with soft targets.

    ``mixed = λ·real + (1 − λ)·fake`` and ``targets = λ``, with one
    ``λ ~ Beta(α, α)`` per example broadcast over the feature axes: train
    the discriminator with binary cross-entropy between its output on
    ``mixed`` and ``targets`` (1 means real). Unlike
    `keras_mixup.ops.interpolate`, which pairs examples of one batch, the
    partner of ``real[i]`` is ``fake[i]``. Pass ``stop_gradient(fake)`` if
    the generator must not learn from the discriminator's loss.

    Args:
        real: float tensor ``(B, ...)`` of real samples.
        fake: float tensor of generated samples, shaped like ``real``
            (cast to ``real``'s dtype).
        alpha: Beta(α, α) concentration, > 0 (1.0: λ uniform in [0, 1];
            small α puts λ near 0 or 1).
        seed: an int, a shape-``(2,)`` integer tensor (e.g. folded from a
            step counter with `keras_mixup.ops.fold_seed`), or None.

    Returns:
        ``(mixed, targets)``: ``mixed`` like ``real``; ``targets`` float32
        ``(B, 1)``, the weight of the real sample in each mix.

    Example:

    >>> real, fake = np.ones((4, 3), "float32"), np.zeros((4, 3), "float32")
    >>> mixed, targets = keras_mixup.discriminator_mixup(real, fake, alpha=0.5, seed=0)
    >>> tuple(mixed.shape), tuple(targets.shape)
    ((4, 3), (4, 1))
    >>> bool(np.allclose(keras.ops.convert_to_numpy(mixed)[:, 0:1],
    ...                  keras.ops.convert_to_numpy(targets)))
    True
    """
    real = _float_tensor(real, "real")
    fake = _float_tensor(fake, "fake")
    if not _same_shape(tuple(real.shape), tuple(fake.shape)):
        raise ValueError(
            f"`real` and `fake` must have the same shape (fake[i] is mixed "
            f"into real[i]); got {tuple(real.shape)} and {tuple(fake.shape)}. "
            "Generate one fake sample per real one, shaped like it."
        )
    check_concentration(alpha, "alpha")
    lam = sample_beta([backend.dim(real, 0)], alpha, seed=seed)
    w = keras.ops.reshape(keras.ops.cast(lam, real.dtype), [-1] + [1] * (backend.rank(real) - 1))
    mixed = w * real + (1 - w) * keras.ops.cast(fake, real.dtype)
    return mixed, keras.ops.reshape(lam, [-1, 1])


def _bce(targets, logits):
    """Mean binary cross-entropy of logits against (soft) targets in [0, 1]:
    softplus(l) − t·l, stable for any logit."""
    logits = keras.ops.cast(logits, "float32")
    return keras.ops.mean(keras.ops.softplus(logits) - targets * logits)


def _model(value, name):
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if not isinstance(value, keras.Model):
        raise TypeError(f"`{name}` must be a Keras model; got {type(value).__name__}.")
    return value


def _io_shape(model, which):
    """The static shape (without the batch axis) of a built model's single
    input or output, or None when unknown."""
    try:
        tensors = getattr(model, which)
    except (AttributeError, ValueError):
        return None
    if tensors is None or len(keras.tree.flatten(tensors)) != 1:
        return None
    return tuple(keras.tree.flatten(tensors)[0].shape[1:])


@keras.saving.register_keras_serializable(package="keras_mixup")
class MixupGAN(keras.Model):
    """A GAN whose discriminator is trained on mixup of real and fake samples.

    ``fit(real_data)`` trains both players (no labels). Each step draws
    ``z ~ N(0, I)``, and the discriminator learns from
    `discriminator_mixup` of the real batch and ``G(z)`` with soft targets
    λ (``mixup=False``, a plain GAN: from the real batch with target 1 and
    ``G(z)`` with target 0, twice as many examples); the generator learns from the non-saturating
    loss ``−log σ(D(G(z)))``. The two are updated together in one
    optimizer step, each from its own loss (see the module docstring);
    an optimizer with per-weight state such as Adam then behaves as two
    optimizers with the same settings (a ``global_clipnorm`` would couple
    them). ``d_loss`` and ``g_loss`` are logged; ``loss`` is their sum.

    ``model(x)`` and ``predict`` return the discriminator's logits (real
    when positive); `generate` returns samples.

    Args:
        generator: a Keras model from latent vectors to samples shaped like
            the data (without the batch axis).
        discriminator: a Keras model from samples to one logit per example,
            ``(B, 1)`` or ``(B,)``.
        latent_dim: an int or shape tuple of the generator's input; read
            from the generator when it has a known input shape.
        alpha: Beta(α, α) of λ.
        mixup: False for the plain GAN (same code, hard targets).
        seed: int seed of the latent and mixing streams, or None.

    Example:

    >>> g = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> d = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> gan = keras_mixup.MixupGAN(g, d, alpha=0.5, seed=0)
    >>> gan.compile(keras.optimizers.Adam(1e-3))
    >>> history = gan.fit(np.random.rand(64, 3).astype("float32"), batch_size=32, verbose=0)
    >>> sorted(history.history)
    ['d_loss', 'g_loss', 'loss']
    >>> gan.generate(5, seed=0).shape
    (5, 3)
    """

    def __init__(self, generator, discriminator, latent_dim=None, alpha=1.0,
                 mixup=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = _model(generator, "generator")
        self.discriminator = _model(discriminator, "discriminator")
        self.alpha = float(check_concentration(alpha, "alpha"))
        if not isinstance(mixup, bool):
            raise TypeError(f"`mixup` must be True or False; got {mixup!r}.")
        self.mixup = mixup
        self.seed, self._base_seed = check_seed(seed)
        self.latent_shape = self._latent_shape(latent_dim)
        self.latent_dim = None if latent_dim is None else list(self.latent_shape)
        made = _io_shape(self.generator, "outputs")
        taken = _io_shape(self.discriminator, "inputs")
        if made is not None and taken is not None and not _same_shape(made, taken):
            raise ValueError(
                f"The generator makes samples of shape {made} but the discriminator "
                f"takes {taken}: the generator's output must be shaped like the data."
            )
        out = _io_shape(self.discriminator, "outputs")
        if out is not None:
            self._check_logits((None, *out))
        self.step = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                    trainable=False, name="gan_step")
        self._trackers = {n: keras.metrics.Mean(name=n) for n in ("d_loss", "g_loss")}

    def _latent_shape(self, latent_dim):
        known = _io_shape(self.generator, "inputs")
        if latent_dim is None:
            if known is None or None in known:
                raise ValueError(
                    "The generator's input shape is unknown: pass `latent_dim` "
                    "(e.g. latent_dim=2), or build the generator on keras.Input."
                )
            return known
        shape = tuple(latent_dim) if isinstance(latent_dim, (list, tuple)) else (latent_dim,)
        if not shape or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                                and d > 0 for d in shape):
            raise ValueError(
                f"`latent_dim` must be a positive int or a tuple of them; got {latent_dim!r}.")
        if known is not None and not _same_shape(shape, known):
            raise ValueError(
                f"`latent_dim` {latent_dim!r} does not match the generator's input "
                f"shape {known}; pass latent_dim=None to use the generator's.")
        return tuple(int(d) for d in shape)

    def _check_logits(self, shape):
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] in (1, None))):
            raise ValueError(
                f"The discriminator must return one logit per example, shape (B, 1) "
                f"or (B,); it returns {tuple(shape)}. End it with Dense(1) and no "
                "activation."
            )

    def _logits(self, out):
        self._check_logits(tuple(out.shape))
        return keras.ops.reshape(out, [-1])

    def build(self, input_shape):
        if not self.discriminator.built:
            self.discriminator.build(input_shape)
        if not self.generator.built:
            self.generator.build((None, *self.latent_shape))
        self.built = True

    def call(self, inputs, training=False):
        return self.discriminator(inputs, training=training)

    def frozen_discriminator(self, x, training=False):
        """The discriminator's logits ``(B,)`` on ``x`` with its weights held
        constant: gradients reach ``x`` (so the generator) but not the
        discriminator's weights."""
        d = self.discriminator
        frozen = [keras.ops.stop_gradient(v.value) for v in d.trainable_variables]
        out, _ = d.stateless_call(frozen, [v.value for v in d.non_trainable_variables],
                                  x, training=training)
        return self._logits(out)

    def losses_for(self, real, seed, training=True, real_logits=None):
        """``(d_loss, g_loss)`` on a batch of real samples, the latent codes
        and mixing weights drawn from ``seed`` (a shape-``(2,)`` int tensor).
        ``d_loss`` depends on the discriminator's weights only and ``g_loss``
        on the generator's only. ``real_logits``: the discriminator's output
        on ``real`` when already computed (the plain GAN reuses it)."""
        real = _float_tensor(real, "real")
        batch = backend.dim(real, 0)
        z = normal([batch, *self.latent_shape], fold_seed(seed, 1))
        fake = self.generator(z, training=training)
        if not _same_shape(tuple(fake.shape)[1:], tuple(real.shape)[1:]):
            raise ValueError(
                f"The generator's output shape {tuple(fake.shape)[1:]} must match the "
                f"data's feature shape {tuple(real.shape)[1:]} (samples without the "
                "batch axis)."
            )
        fake_d = keras.ops.stop_gradient(keras.ops.cast(fake, real.dtype))
        d = self.discriminator
        if self.mixup:
            mixed, targets = discriminator_mixup(real, fake_d, self.alpha, fold_seed(seed, 2))
            d_loss = _bce(keras.ops.reshape(targets, [-1]),
                          self._logits(d(mixed, training=training)))
        else:
            if real_logits is None:
                real_logits = d(real, training=training)
            d_loss = 0.5 * (_bce(1.0, self._logits(real_logits))
                            + _bce(0.0, self._logits(d(fake_d, training=training))))
        g_loss = keras.ops.mean(keras.ops.softplus(-self.frozen_discriminator(fake, training)))
        return d_loss, g_loss

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is not None or sample_weight is not None:
            raise ValueError(
                "MixupGAN learns from real samples alone: call fit(x) with no "
                "labels or sample weights (a dataset of x, not of (x, y))."
            )
        K = backend.ops()
        step = self.step.value
        seed = fold_seed(K.seed_from_int(self._base_seed), K.convert_to_tensor(step))
        d_loss, g_loss = self.losses_for(x, seed, training,
                                         None if self.mixup else y_pred)
        if training:
            self.step.assign(step + 1)
        self._trackers["d_loss"].update_state(d_loss)
        self._trackers["g_loss"].update_state(g_loss)
        total = d_loss + g_loss
        for extra in self.losses:  # weight regularizers of either player
            total = total + keras.ops.cast(extra, "float32")
        return total

    def generate(self, count, seed=None):
        """Samples from the generator, as a NumPy array.

        ``count``: an int (that many samples, ``z ~ N(0, I)`` drawn by NumPy
        from ``seed``) or an array of latent codes ``(N, *latent_shape)``.
        """
        import numpy as np

        if isinstance(count, int) and not isinstance(count, bool):
            z = np.random.default_rng(seed).standard_normal(
                (count, *self.latent_shape)).astype("float32")
        else:
            z = np.asarray(count, "float32")
        chunks = [keras.ops.convert_to_numpy(self.generator(z[i:i + 8192], training=False))
                  for i in range(0, len(z), 8192)]
        return np.concatenate(chunks) if chunks else np.zeros((0,), "float32")

    def get_config(self):
        config = super().get_config()
        config.update({
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim, "alpha": self.alpha, "mixup": self.mixup,
            "seed": self.seed,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("generator", "discriminator"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
