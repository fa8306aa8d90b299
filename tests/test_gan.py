"""keras_mixup.gan and keras_mixup.reproduce.gan: the mixes and their targets,
λ's distribution, each player learning from its own loss only, plain
targets, training, saving, errors, the toy distributions and their scores;
on every backend."""

import math

import keras
import numpy as np
import pytest

import keras_mixup
from keras_mixup.reproduce import gan as reproduce_gan
from keras_mixup.ops import as_seed, fold_seed
from keras_mixup.ops.random import normal

BACKEND = keras.backend.backend()


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def compiled(fn):
    """``fn`` compiled whole on JAX (op-by-op eager JAX compiles every
    small op of the Beta sampler on first use, slowly); as is on TensorFlow."""
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


def mlp(inputs, outputs, seed, hidden=8, norm=False):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((inputs,)), keras.layers.Dense(hidden, activation="relu")]
    if norm:
        layers.append(keras.layers.BatchNormalization())
    return keras.Sequential(layers + [keras.layers.Dense(outputs)])


def gan(mixup=True, norm=False, **kwargs):
    return keras_mixup.MixupGAN(mlp(2, 3, 0), mlp(3, 1, 1, norm=norm), alpha=0.5,
                                mixup=mixup, seed=0, **kwargs)


def gradients(model, *fns):
    """For each scalar function ``fn()``, its gradients with respect to
    each of ``model.trainable_variables`` (None or zeros where it does not
    depend on one), computed the way each backend's train step does."""
    variables = model.trainable_variables
    if BACKEND == "tensorflow":
        import tensorflow as tf

        out = []
        for fn in fns:
            with tf.GradientTape() as tape:
                value = fn()
            out.append(tape.gradient(value, variables))
    else:
        import jax

        def scoped(fn):
            def f(values):
                with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                    return fn()
            return jax.grad(f)

        everything = jax.jit(lambda values: [scoped(fn)(values) for fn in fns])
        out = everything([v.value for v in variables])
    return [[None if g is None else np.asarray(g) for g in grads] for grads in out]


def reaches(grads):
    return [g is not None and bool(np.abs(g).max() > 0) for g in grads]


# ---------------------------------------------------------------- the op


def test_each_mix_is_its_own_lambda_of_real_and_fake_and_the_target_is_lambda():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(64, 3, 2)).astype("float32"), rng.normal(size=(64, 3, 2)).astype("float32")
    mix = compiled(lambda r, f, seed: keras_mixup.discriminator_mixup(r, f, 0.5, seed))
    mixed, targets = mix(real, fake, as_seed(3))
    mixed, targets = to_numpy(mixed), to_numpy(targets)
    assert mixed.shape == real.shape and targets.shape == (64, 1)
    # λ recovered per example by least squares on the segment fake → real.
    d = (real - fake).reshape(64, -1)
    lam = ((mixed - fake).reshape(64, -1) * d).sum(1) / (d * d).sum(1)
    assert np.allclose(lam, targets[:, 0], atol=1e-5)
    assert np.allclose(mixed, targets[:, :, None] * real + (1 - targets[:, :, None]) * fake,
                       atol=1e-6)
    assert len(np.unique(np.round(lam, 6))) > 50  # one λ per example
    again, _ = mix(real, fake, as_seed(3))
    other, _ = mix(real, fake, as_seed(4))
    assert np.array_equal(to_numpy(again), mixed) and not np.allclose(to_numpy(other), mixed)


@pytest.mark.parametrize("alpha", [0.2, 2.0])
def test_lambda_follows_beta_alpha_alpha(alpha):
    n = 20_000
    mixed, targets = compiled(lambda r, f: keras_mixup.discriminator_mixup(r, f, alpha, 11))(
        np.ones((n, 1), "float32"), np.zeros((n, 1), "float32"))
    lam = to_numpy(targets)[:, 0].astype(np.float64)
    assert np.allclose(to_numpy(mixed)[:, 0], lam, atol=1e-6)
    # Beta(α, α): mean 1/2, variance 1/(4(2α + 1)), excess kurtosis −6/(2α + 3).
    var = 1 / (4 * (2 * alpha + 1))
    fourth = var**2 * (3 - 6 / (2 * alpha + 3))
    assert abs(lam.mean() - 0.5) < 5 * math.sqrt(var / n)
    assert abs(lam.var() - var) < 5 * math.sqrt((fourth - var**2) / n)


@pytest.mark.parametrize("real,fake,error,match", [
    (np.zeros((4, 2), "float32"), np.zeros((4, 3), "float32"), ValueError, "same shape"),
    (np.zeros((4, 2), "float32"), np.zeros((5, 2), "float32"), ValueError, "same shape"),
    (np.zeros((4, 2), "int32"), np.zeros((4, 2), "float32"), ValueError, "`real` must hold floating"),
    (np.zeros((4, 2), "float32"), np.zeros((4, 2), "uint8"), ValueError, "`fake` must hold floating"),
    ([[0.0, 1.0]], np.zeros((1, 2), "float32"), TypeError, "`real` must be a float tensor"),
    (np.zeros((4, 2), "float32"), "fake", TypeError, "`fake` must be a float tensor"),
])
def test_bad_inputs_are_named(real, fake, error, match):
    with pytest.raises(error, match=match):
        keras_mixup.discriminator_mixup(real, fake, alpha=1.0, seed=0)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan")])
def test_bad_alpha_is_named(alpha):
    x = np.zeros((4, 2), "float32")
    with pytest.raises(ValueError, match="`alpha` must be a finite number > 0"):
        keras_mixup.discriminator_mixup(x, x, alpha=alpha)
    with pytest.raises(ValueError, match="`alpha`"):
        keras_mixup.MixupGAN(mlp(2, 3, 0), mlp(3, 1, 1), alpha=alpha)


# ---------------------------------------------------------------- the model


@pytest.mark.parametrize("mixup", [True, False])
def test_each_player_learns_from_its_own_loss_only(mixup):
    model = gan(mixup=mixup, norm=True)
    real = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    seed = as_seed(5)
    g_vars = {id(v) for v in model.generator.trainable_variables}
    is_g = [id(v) in g_vars for v in model.trainable_variables]
    assert sum(is_g) == 4 and len(is_g) == 10  # 2 + 2 Dense, BN's gamma and beta

    z = normal([16, 2], fold_seed(seed, 1))  # the latent codes losses_for draws

    def live():  # the generator's loss through the discriminator as it is
        fake = model.generator(z, training=True)
        return keras.ops.mean(keras.ops.softplus(-model.discriminator(fake, training=True)))

    d_term, g_term, through_live = gradients(
        model, lambda: model.losses_for(real, seed)[0], lambda: model.losses_for(real, seed)[1],
        live)
    assert reaches(d_term) == [not g for g in is_g]  # all of D's weights, none of G's
    assert reaches(g_term) == is_g  # all of G's weights, none of D's
    # The held discriminator is the current one: G's gradient equals the
    # one through the live discriminator, which alone also reaches D.
    assert all(reaches(through_live))
    for g, a, b in zip(is_g, g_term, through_live):
        if g:
            assert np.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_plain_gan_uses_hard_targets_and_mixup_the_drawn_lambdas():
    # D(x) = x₁ + x₂ + x₃ and G(z) = 0; the real samples are all ones, so
    # D says 3 on real data, 0 on fakes and 3λ on a mix.
    def fixed(mixup):
        g = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, kernel_initializer="zeros")])
        d = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="ones")])
        return keras_mixup.MixupGAN(g, d, alpha=0.5, mixup=mixup, seed=0)

    real, seed = np.ones((32, 3), "float32"), as_seed(9)
    d_loss, g_loss = (float(to_numpy(v)) for v in compiled(fixed(False).losses_for)(real, seed))
    softplus = lambda v: np.logaddexp(0.0, v)  # noqa: E731
    assert d_loss == pytest.approx(0.5 * (softplus(-3.0) + math.log(2)), rel=1e-5)
    assert g_loss == pytest.approx(math.log(2), rel=1e-5)  # −log σ(0)

    d_loss, _ = (float(to_numpy(v)) for v in compiled(fixed(True).losses_for)(real, seed))
    mix = compiled(lambda r, f, s: keras_mixup.discriminator_mixup(r, f, 0.5, s))
    _, lam = mix(real, np.zeros_like(real), fold_seed(seed, 2))
    lam = to_numpy(lam)[:, 0].astype(np.float64)
    assert d_loss == pytest.approx(np.mean(softplus(3 * lam) - lam * 3 * lam), rel=1e-5)


def test_fit_updates_both_players_and_logs_both_losses():
    model = gan(norm=True)
    model.compile(keras.optimizers.Adam(1e-2))
    g0, d0 = model.generator.get_weights(), model.discriminator.get_weights()
    x = np.random.default_rng(1).normal(size=(32, 3)).astype("float32")
    logs = model.fit(x, batch_size=16, epochs=2, verbose=0).history
    assert set(logs) == {"loss", "d_loss", "g_loss"}
    assert np.isfinite(logs["loss"]).all()
    assert logs["loss"][-1] == pytest.approx(logs["d_loss"][-1] + logs["g_loss"][-1], rel=1e-5)
    for before, after in ((g0, model.generator.get_weights()), (d0, model.discriminator.get_weights())):
        assert not np.allclose(before[0], after[0])
    assert int(to_numpy(model.step.value)) == 4
    logits = model.predict(x, verbose=0)
    assert logits.shape == (32, 1)


@pytest.mark.parametrize("built", [True, False])
def test_saves_and_loads(tmp_path, built):
    if built:
        model = gan(mixup=False)
    else:  # players without keras.Input: built by the first step (and on loading)
        players = [keras.Sequential([keras.layers.Dense(8, activation="relu"),
                                     keras.layers.Dense(n)]) for n in (3, 1)]
        model = keras_mixup.MixupGAN(*players, latent_dim=2, alpha=0.5, mixup=False, seed=0)
    model.compile("adam")
    x = np.random.default_rng(2).normal(size=(16, 3)).astype("float32")
    model.fit(x, batch_size=8, verbose=0)
    model.save(tmp_path / "gan.keras")
    again = keras.saving.load_model(tmp_path / "gan.keras")
    assert isinstance(again, keras_mixup.MixupGAN)
    assert (again.alpha, again.mixup, again.seed, again.latent_shape) == (0.5, False, 0, (2,))
    z = np.random.default_rng(3).normal(size=(10, 2)).astype("float32")
    assert np.array_equal(again.generate(z), model.generate(z))
    assert np.array_equal(again.generate(10, seed=4), model.generate(10, seed=4))
    assert np.allclose(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_models_and_data_are_named():
    with pytest.raises(ValueError, match=r"generator makes samples of shape \(3,\) but the "
                                         r"discriminator takes \(4,\)"):
        keras_mixup.MixupGAN(mlp(2, 3, 0), mlp(4, 1, 1))
    with pytest.raises(ValueError, match="one logit per example"):
        keras_mixup.MixupGAN(mlp(2, 3, 0), mlp(3, 2, 1))
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="pass `latent_dim`"):
        keras_mixup.MixupGAN(unbuilt, mlp(3, 1, 1))
    with pytest.raises(ValueError, match="does not match the generator's input"):
        keras_mixup.MixupGAN(mlp(2, 3, 0), mlp(3, 1, 1), latent_dim=5)
    with pytest.raises(TypeError, match="`generator` must be a Keras model"):
        keras_mixup.MixupGAN(lambda z: z, mlp(3, 1, 1))
    with pytest.raises(TypeError, match="`mixup` must be True or False"):
        keras_mixup.MixupGAN(mlp(2, 3, 0), mlp(3, 1, 1), mixup="yes")
    model = gan()
    model.compile("adam")
    with pytest.raises(ValueError, match=r"generator's output shape \(3,\) must match the "
                                         r"data's feature shape \(5,\)"):
        model.losses_for(np.zeros((4, 5), "float32"), as_seed(0))
    with pytest.raises(ValueError, match="no labels"):
        model.fit(np.zeros((4, 3), "float32"), np.zeros(4), verbose=0)


# ---------------------------------------------------------------- the toy experiment


def test_toy_distributions_and_their_scores():
    rng = np.random.default_rng(0)
    for sample, centres, std, k in ((reproduce_gan.ring, reproduce_gan.ring_centres, 0.02, 8),
                                    (reproduce_gan.grid, reproduce_gan.grid_centres, 0.05, 25)):
        x = sample(5000, rng)
        assert x.shape == (5000, 2) and x.dtype == np.float32
        modes, quality = reproduce_gan.mode_metrics(x, centres(), std)
        # P(|N(0, σ²I₂)| <= 3σ) = 1 − exp(−9/2) ≈ 0.989.
        assert modes == k and abs(quality - (1 - math.exp(-4.5))) < 0.01
    assert np.allclose(np.linalg.norm(reproduce_gan.ring_centres(), axis=1), 2.0)
    centres = reproduce_gan.ring_centres()
    one = np.repeat(centres[3:4], 30, 0)
    assert reproduce_gan.mode_metrics(one, centres, 0.02) == (1, 1.0)
    assert reproduce_gan.mode_metrics(one[:19], centres, 0.02) == (0, 1.0)  # < 20 points
    assert reproduce_gan.mode_metrics(one + 0.07, centres, 0.02) == (0, 0.0)  # > 3σ away
    assert reproduce_gan.mode_metrics(np.zeros((50, 2)), centres, 0.02) == (0, 0.0)
    half = np.concatenate([one, np.full((30, 2), 9.0)])
    assert reproduce_gan.mode_metrics(half, centres, 0.02) == (1, 0.5)


def test_run_gan_smoke_table_and_plot(tmp_path):
    lines = []
    results = reproduce_gan.run_gan(distributions=("ring",), seeds=1, steps=4,
                                    checkpoints=[2, 4], log=lines.append)
    assert [(r["method"], r["iterations"]) for r in results["runs"]] == [
        ("gan", [2, 4]), ("mixup", [2, 4])]
    assert len(lines) == 2 and "modes" in lines[0]
    assert len(results["samples"]) == 4 and len(results["samples"][0]["points"]) == 2500
    table = reproduce_gan.gan_table(results)
    assert "| ring | GAN |" in table and "of 8" in table and "mixup GAN (α = 0.2)" in table
    path = reproduce_gan.plot_gan(results["samples"], tmp_path / "gan.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="Unknown distributions"):
        reproduce_gan.run_gan(distributions=("spiral",))
