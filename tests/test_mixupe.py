"""MixupE: the regularizer against a float64 NumPy reference, and in training.

Runs on the backend Keras runs on (TensorFlow or JAX; see conftest.py).
"""

import contextlib

import keras
import numpy as np
import pytest

import keras_mixup
from keras_mixup import MixupE, MixupModel
from keras_mixup.layers import CutMix, MixUp
from keras_mixup.ops import as_seed, fold_seed
from tests.conftest import xla

BACKEND = keras.backend.backend()

ALPHA = 2.0
PARTNER = ALPHA / (2 * ALPHA + 1)  # E[1 − λ] for α = β

to_np = keras.ops.convert_to_numpy


def tiny_mlp(seed=0, softmax=False):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    h = keras.layers.Dense(5, activation="tanh")(inputs)
    out = keras.layers.Dense(3, activation="softmax" if softmax else None)(h)
    return keras.Model(inputs, out)


def np_forward(model, x):
    """Logits, hidden activations and the kernels of `tiny_mlp`, float64
    (``model`` may also be its list of weights)."""
    weights = model if isinstance(model, list) else model.get_weights()
    k1, b1, k2, b2 = (np.asarray(w, np.float64) for w in weights)
    h = np.tanh(x @ k1 + b1)
    return h @ k2 + b2, h, k1, k2


def np_penalty(model, x, y1h, mode, x_mean=None):
    f, h, k1, k2 = np_forward(model, x.astype(np.float64))
    p = np.exp(f - f.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    if mode == "fast":
        q = ((y1h - p) * f).sum(1)
    else:
        jvp = (((x_mean - x) @ k1) * (1 - h**2)) @ k2
        q = ((p - y1h) * jvp).sum(1)
    return PARTNER * np.abs(q).mean(), p


def wrap(model, mode, eta=0.1, fraction=1.0, **kwargs):
    return MixupModel(
        model,
        mixer=MixUp(alpha=ALPHA),
        regularizer=MixupE(eta=eta, mode=mode, batch_fraction=fraction, **kwargs),
        seed=0,
    )


def data(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_penalty_matches_numpy(mode):
    x, y = data()
    mm = wrap(tiny_mlp(), mode)
    mm.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x_mean = None
    if mode == "exact":  # a running mean that already averages 10 examples
        prior = np.random.default_rng(1).normal(size=4)
        mm.regularizer.input_mean.assign(prior)
        mm.regularizer.input_count.assign(10.0)
        x_mean = (10 * prior + x.sum(0)) / (10 + len(x))
    reg = mm.regularizer.penalty(mm, x, y, None, as_seed(1), PARTNER)
    expected, _ = np_penalty(mm.model, x, np.eye(3)[y], mode, x_mean)
    np.testing.assert_allclose(float(reg), expected, rtol=1e-5)
    if mode == "exact":
        np.testing.assert_allclose(to_np(mm.regularizer.input_mean), x_mean, rtol=1e-5)
        assert float(to_np(mm.regularizer.input_count)) == 10 + len(x)


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_training_step_matches_numpy_gradient(mode):
    """Batch size 1 makes the pairing trivial (x̃ = x), so one SGD step must
    move the weights by −lr·η̂·∇(L + η·R) with η̂ = L / (L + η·R), and the
    reported loss must equal L: the η̂ scaling keeps the loss's magnitude."""
    x, y = data(1)
    y1h = np.eye(3)[y]
    eta, lr = 0.5, 0.1
    mm = wrap(tiny_mlp(1), mode, eta=eta)
    mm.compile(keras.optimizers.SGD(lr),
               keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [np.asarray(w, np.float64) for w in mm.model.get_weights()]
    x_mean = x[0].astype(np.float64) + 0.0
    if mode == "exact":
        mm.regularizer.input_mean.assign([0.3, -0.2, 0.1, 0.5])
        mm.regularizer.input_count.assign(3.0)
        x_mean = (3 * np.array([0.3, -0.2, 0.1, 0.5]) + x[0]) / 4

    def objective(weights):
        reg, p = np_penalty(weights, x, y1h, mode, x_mean)
        return -np.log(p[0, y[0]]), reg

    loss, reg = objective(before)
    scale = loss / (loss + eta * reg)
    def total(weights):
        loss, reg = objective(weights)
        return loss + eta * reg

    grads = []
    for k, w in enumerate(before):  # central differences of L + η·R, float64
        g = np.zeros_like(w)
        for i in np.ndindex(w.shape):
            plus = [v.copy() for v in before]
            minus = [v.copy() for v in before]
            plus[k][i] += 1e-6
            minus[k][i] -= 1e-6
            g[i] = (total(plus) - total(minus)) / 2e-6
        grads.append(g)
    logs = mm.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(logs["mixupe_reg"], reg, rtol=1e-4)
    np.testing.assert_allclose(logs["mixupe_scale"], scale, rtol=1e-5)
    after = mm.model.get_weights()
    for w0, w1, g in zip(before, after, grads):
        assert np.abs(g).max() > 0  # every weight gets a gradient
        np.testing.assert_allclose(w1, w0 - lr * scale * g, atol=2e-6)


def conv_model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(4, 3, activation="gelu")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(3)(h))


def bn_model():
    """Batch normalization and dropout: a training-mode forward pass assigns
    moving statistics and advances a seed generator."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(4, 3)(inputs)
    h = keras.layers.BatchNormalization(momentum=0.5)(h)
    h = keras.layers.Activation("gelu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dropout(0.25)(h)
    return keras.Model(inputs, keras.layers.Dense(3)(h))


def test_exact_jvp_equals_finite_difference_directional_derivative():
    mm = MixupModel(conv_model(), mixer=MixUp(alpha=ALPHA),
                    regularizer=MixupE(mode="exact"), seed=0)
    mm.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 6, 6, 2)).astype("float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2, 1, 0]]
    reg = float(mm.regularizer.penalty(mm, x, y, None, as_seed(0), 1.0))
    t = to_np(mm.regularizer.input_mean)[None] - x  # x̄ = the batch mean now
    eps = 1e-2
    f = mm.model.predict(x, verbose=0).astype(np.float64)
    df = (mm.model.predict(x + eps * t, verbose=0).astype(np.float64)
          - mm.model.predict(x - eps * t, verbose=0).astype(np.float64)) / (2 * eps)
    p = np.exp(f) / np.exp(f).sum(1, keepdims=True)
    expected = np.abs(((p - y) * df).sum(1)).mean()
    np.testing.assert_allclose(reg, expected, rtol=2e-3)


def reference_jvp(fn, x, t):
    """``J_fn(x)·t`` by another route than `_jvp`'s: forward mode
    (``tf.autodiff.ForwardAccumulator``) on TensorFlow, the explicit
    Jacobian from reverse mode (``jax.jacrev``) on JAX."""
    if BACKEND == "jax":
        import jax

        jac = jax.jacrev(fn)(x)  # (batch, classes, *x.shape)
        return jax.numpy.tensordot(jac, t, axes=t.ndim)
    import tensorflow as tf

    with tf.autodiff.ForwardAccumulator(x, t) as acc:
        f = fn(x)
    return acc.jvp(f)


def test_jvp_equals_an_independent_derivative():
    from keras_mixup.regularizers import _jvp

    net = conv_model()
    rng = np.random.default_rng(6)
    x = keras.ops.convert_to_tensor(rng.normal(size=(4, 6, 6, 2)), "float32")
    t = keras.ops.convert_to_tensor(rng.normal(size=(4, 6, 6, 2)), "float32")
    fn = lambda v: net(v, training=True)
    expected = xla(lambda: reference_jvp(fn, x, t))()
    got_f, got = xla(lambda: _jvp(fn, x, t, net.variables))()
    np.testing.assert_allclose(to_np(got_f), to_np(fn(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_np(got), to_np(expected), rtol=1e-4, atol=1e-6)


def stateless(variables, fn):
    """``fn`` compiled as a step inside a ``keras.StatelessScope`` over
    ``variables`` (how the JAX train step runs): ``step(values, *args)``
    returns ``(fn(*args), the variables' values after it)``."""
    def step(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            out = fn(*args)
        new = [scope.get_current_value(v) for v in variables]
        return out, [v if n is None else n for v, n in zip(values, new)]
    return xla(step)


def test_jvp_in_a_stateless_step_makes_the_forward_pass_updates():
    """Inside a compiled step's `keras.StatelessScope` (how the JAX train
    step runs), `_jvp` gives the forward pass's outputs and assignments
    (moving statistics, seed-generator state) — no derivative tracer in
    them — and leaves the variables themselves alone."""
    from keras_mixup.regularizers import _jvp

    net = bn_model()
    variables = net.variables
    values = [keras.ops.convert_to_tensor(v) for v in variables]
    before = [to_np(v) for v in values]
    rng = np.random.default_rng(7)
    x = keras.ops.convert_to_tensor(rng.normal(size=(6, 6, 6, 2)), "float32")
    t = keras.ops.convert_to_tensor(rng.normal(size=(6, 6, 6, 2)), "float32")

    forward = lambda v: net(v, training=True)
    (f, df), after_jvp = stateless(variables, lambda x, t: _jvp(forward, x, t, variables))(
        values, x, t)
    f0, after_forward = stateless(variables, forward)(values, x)
    np.testing.assert_allclose(to_np(f), to_np(f0), rtol=1e-5, atol=1e-6)
    changed = 0
    for a, b, v0 in zip(after_jvp, after_forward, before):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-5, atol=1e-6)
        changed += not np.array_equal(to_np(b), v0)
    assert changed == 3  # moving mean, moving variance, dropout's seed state
    for v, v0 in zip(variables, before):
        np.testing.assert_array_equal(to_np(v), v0)
    # The directional derivative of the same function: each pass starts from
    # the same seed state, so dropout draws the same mask.
    eps = 1e-2
    run = stateless(variables, forward)
    fd = (to_np(run(values, x + eps * t)[0]) - to_np(run(values, x - eps * t)[0])) / (2 * eps)
    np.testing.assert_allclose(to_np(df), fd, rtol=2e-2, atol=2e-3)


def test_jvp_with_input_gradient_is_the_jvp_and_the_loss_gradient_of_one_pass():
    """`jvp_with_input_gradient` in a compiled stateless step: the outputs,
    the Jacobian-vector product and the assignments (moving statistics,
    dropout's seed state) of `_jvp`, and the input gradient of the loss
    that a separate backward pass of the same forward pass (same dropout
    mask) gives."""
    from keras_mixup.regularizers import _jvp, jvp_with_input_gradient

    net = bn_model()
    variables = net.variables
    values = [keras.ops.convert_to_tensor(v) for v in variables]
    rng = np.random.default_rng(9)
    x = keras.ops.convert_to_tensor(rng.normal(size=(6, 6, 6, 2)), "float32")
    t = keras.ops.convert_to_tensor(rng.normal(size=(6, 6, 6, 2)), "float32")
    forward = lambda v: net(v, training=True)
    loss_of = lambda out: keras.ops.sum(keras.ops.sin(out) * keras.ops.arange(1.0, 4.0))

    def with_loss(v):
        out = forward(v)
        return out, loss_of(out)

    (f, df, gradient), after = stateless(
        variables, lambda x, t: jvp_with_input_gradient(with_loss, x, t, variables))(values, x, t)
    (f0, df0), after_jvp = stateless(
        variables, lambda x, t: _jvp(forward, x, t, variables))(values, x, t)

    @xla
    def separate(values, x):  # the state it assigns is dropped
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return keras_mixup.backend.ops().gradient_of(lambda v: loss_of(forward(v)), x)

    gradient0 = separate(values, x)
    np.testing.assert_allclose(to_np(f), to_np(f0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(to_np(df), to_np(df0), rtol=1e-5, atol=1e-6)
    for a, b in zip(after, after_jvp):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-6, atol=1e-7)
    assert np.abs(to_np(gradient0)).max() > 1e-3
    np.testing.assert_allclose(to_np(gradient), to_np(gradient0), rtol=1e-5, atol=1e-6)


class _CountCalls(keras.layers.Layer):
    """The identity; counts the forward passes traced through it."""

    calls = 0

    def call(self, x):
        _CountCalls.calls += 1
        return x

    def compute_output_shape(self, shape):
        return shape


def saliency_mixupe(net, share=True, **kwargs):
    """``net`` trained with CutMix placed by gradient saliency plus MixupE;
    ``share=False`` forces a separate saliency pass."""
    mm = MixupModel(net, mixer=CutMix(alpha=1.0, placement="saliency"),
                    regularizer=MixupE(eta=0.5, **kwargs), seed=2)
    if not share:
        mm._shares_clean_pass = lambda: False
    mm.compile(keras.optimizers.SGD(0.5),
               keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    return mm


def small_cnn(batch_norm=False):
    """8x8x2 images, 3 classes; no dropout. Without batch normalization a
    training-mode pass equals an inference-mode one."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((8, 8, 2))
    h = keras.layers.Conv2D(3, 3, padding="same")(_CountCalls()(inputs))
    if batch_norm:
        h = keras.layers.BatchNormalization(momentum=0.5)(h)
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Activation("tanh")(h))
    return keras.Model(inputs, keras.layers.Dense(3)(h))


def saliency_data(n=6):
    rng = np.random.default_rng(8)
    return rng.normal(size=(n, 8, 8, 2)).astype("float32"), rng.integers(0, 3, n)


def forwards_per_step(mm, x, y):
    """Forward passes through the model in one traced step (no compiling)."""
    def step(x, y):
        with keras.StatelessScope():
            return mm.mixed_loss(x, y, None)[0]

    _CountCalls.calls = 0
    if BACKEND == "jax":
        import jax

        jax.eval_shape(step, x, y)
    else:
        import tensorflow as tf

        tf.function(step, autograph=False).get_concrete_function(x, y)
    return _CountCalls.calls


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_saliency_shares_the_clean_pass_one_forward_fewer(mode):
    """With a saliency-placed mixer, MixupE's clean pass (whole batch, fast
    or exact mode) gives the saliency too: one forward pass fewer per step;
    on a subset (batch_fraction < 1) the saliency keeps its own pass. The
    step trains, its MixupE term is the one MixupE computes on its own, and
    the pass's assignments (batch normalization's moving statistics; on JAX
    from inside ``jax.vjp`` or ``jax.linearize``) are made. The step is
    XLA-compiled."""
    x, y = saliency_data()
    mm = saliency_mixupe(small_cnn(batch_norm=True), mode=mode)
    assert mm._shares_clean_pass()
    subset = saliency_mixupe(small_cnn(), mode=mode, batch_fraction=0.5)
    assert not subset._shares_clean_pass()
    assert forwards_per_step(mm, x, y) == 2  # the clean pass, the mixed pass
    assert forwards_per_step(saliency_mixupe(small_cnn(), mode=mode, share=False), x, y) == 3
    assert forwards_per_step(subset, x, y) == 3
    # Batch statistics in training mode: the term does not read the moving
    # ones, so the step's term equals MixupE's own on the same weights.
    expected = float(mm.regularizer.penalty(
        mm, x, y, None, as_seed(0), mm.mixer.expected_partner_weight()))
    moving = [v for v in mm.model.non_trainable_variables if "moving_mean" in v.path]
    before, weights = to_np(moving[0]), mm.model.get_weights()
    logs = mm.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["mixupe_reg"], expected, rtol=1e-5)
    assert np.isfinite(logs["loss"]) and 0 < logs["mixupe_scale"] < 1
    assert not np.allclose(to_np(moving[0]), before)
    assert all(np.isfinite(w).all() for w in mm.model.get_weights())
    assert not np.allclose(mm.model.get_weights()[0], weights[0])


def gradients(fn, variables):
    """``∂ fn() / ∂ variables`` (JAX: as a train step takes it, through a
    ``keras.StatelessScope`` over the variables' values)."""
    if BACKEND == "jax":
        import jax

        def pure(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn()

        return jax.grad(pure)([v.value for v in variables])
    import tensorflow as tf

    with tf.GradientTape() as tape:
        value = fn()
    return tape.gradient(value, variables)


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_shared_clean_pass_gives_the_same_saliency_term_and_gradient(mode):
    """Without dropout or batch normalization, the saliency of the shared
    training-mode pass equals the separate inference-mode one, and MixupE's
    term from the shared pass — value and gradient for the weights — equals
    the term MixupE computes with its own pass (in exact mode, its
    Jacobian-vector product)."""
    x, y = saliency_data()
    mm = saliency_mixupe(small_cnn(), mode=mode)
    y = keras.ops.convert_to_tensor(y)
    seed, variables = as_seed(0), mm.trainable_variables
    if mode == "exact":
        # A running mean over 1e9 examples: a batch of 6 moves it by less
        # than float32 resolves, so every pass below sees the same x̄.
        prior = np.random.default_rng(2).uniform(0.5, 1.0, size=(8, 8, 2))
        mm.regularizer.input_mean.assign(prior)
        mm.regularizer.input_count.assign(1e9)

    def shared_term():
        _, clean = mm._clean_pass_with_saliency(x, y, None)
        return mm.regularizer.penalty(mm, x, y, None, seed, PARTNER, clean=clean)

    def own_term():
        return mm.regularizer.penalty(mm, x, y, None, seed, PARTNER)

    def both():
        return (mm._clean_pass_with_saliency(x, y, None)[0], mm._input_saliency(x, y, None),
                shared_term(), own_term(),
                gradients(shared_term, variables), gradients(own_term, variables))

    if BACKEND == "jax":
        # One program (eagerly, JAX runs op by op); x̄'s updates stay in
        # a stateless scope.
        run = xla(lambda: _in_stateless_scope(both))
    else:
        import tensorflow as tf

        run = tf.function(both, autograph=False)
    shared, separate, reg_shared, reg, grad_shared, grad = run()
    shared, separate = to_np(shared), to_np(separate)
    assert shared.shape == (6, 8, 8) and np.ptp(separate) > 1e-3  # not flat
    np.testing.assert_allclose(shared, separate, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(to_np(reg_shared), to_np(reg), rtol=1e-6)
    for a, b in zip(grad_shared, grad):
        assert np.abs(to_np(b)).max() > 0
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-5, atol=1e-7)
    if mode == "exact":
        np.testing.assert_array_equal(to_np(mm.regularizer.input_mean),
                                      prior.astype("float32"))
    subset = saliency_mixupe(small_cnn(), mode=mode, batch_fraction=0.5).regularizer
    with pytest.raises(ValueError, match="batch_fraction=1"):
        subset.clean_pass(mm, x, lambda out: keras.ops.sum(out))
    with pytest.raises(ValueError, match="batch_fraction=1"):
        subset.penalty(mm, x, y, None, seed, PARTNER, clean=(mm(x), mm(x)))


def _in_stateless_scope(fn):
    with keras.StatelessScope():
        return fn()


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_softmax_output_gives_the_same_penalty_as_logits(mode):
    x, y = data()
    seed = as_seed(0)
    values = []
    for softmax, loss in [(False, keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
                          (True, "sparse_categorical_crossentropy")]:
        mm = wrap(tiny_mlp(softmax=softmax), mode)
        mm.compile("sgd", loss)  # from_logits read from the loss
        values.append(float(mm.regularizer.penalty(mm, x, y, None, seed, PARTNER)))
    np.testing.assert_allclose(values[0], values[1], rtol=1e-5)


def test_labels_and_weights():
    x, y = data(8)
    mm = wrap(tiny_mlp(), "fast")
    mm.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seed = as_seed(0)
    pen = lambda *a: float(mm.regularizer.penalty(mm, *a, seed, 1.0))
    sparse = pen(x, y, None)
    np.testing.assert_allclose(pen(x, np.eye(3, dtype="float32")[y], None), sparse, rtol=1e-6)
    np.testing.assert_allclose(pen(x, y[:, None], None), sparse, rtol=1e-6)
    w = np.linspace(0, 2, 8).astype("float32")
    _, p = np_penalty(mm.model, x, np.eye(3)[y], "fast")
    f = np_forward(mm.model, x.astype(np.float64))[0]
    q = np.abs(((np.eye(3)[y] - p) * f).sum(1))
    np.testing.assert_allclose(pen(x, y, w), (w * q).sum() / 8, rtol=1e-5)


def test_batch_fraction_is_an_unbiased_estimate_on_a_subset():
    x, y = data(16, seed=5)
    mm = wrap(tiny_mlp(), "fast", fraction=0.25)
    mm.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    full, _ = np_penalty(mm.model, x, np.eye(3)[y], "fast")
    f = np_forward(mm.model, x.astype(np.float64))[0]
    p = np.exp(f) / np.exp(f).sum(1, keepdims=True)
    q = PARTNER * np.abs(((np.eye(3)[y] - p) * f).sum(1))

    base = as_seed(9)

    @xla
    def estimate(i):
        return mm.regularizer.penalty(mm, x, y, None, fold_seed(base, i), PARTNER)

    n = 400
    draws = np.array([float(estimate(keras.ops.convert_to_tensor(i, "int32")))
                      for i in range(n)])
    # Each draw is the mean of 4 of the 16 values: the possible means are
    # exactly the 4-subsets, and their spread follows sampling without
    # replacement.
    sd = np.sqrt(q.var() / 4 * (16 - 4) / (16 - 1))
    assert abs(draws.mean() - full) < 5 * sd / np.sqrt(n)
    subsets = {round(v, 5) for v in draws}
    assert len(subsets) > 50  # the subset changes with the seed
    assert draws.std() == pytest.approx(sd, rel=0.2)


def test_partner_weight_follows_the_chosen_site_and_schedule():
    inputs = keras.Input((8, 8, 1))
    h = CutMix(alpha=1.0)(inputs)
    h = keras.layers.Conv2D(2, 3)(h)
    h = MixUp(alpha=0.5, beta=2.0)(h)
    out = keras.layers.Dense(3)(keras.layers.Flatten()(h))
    mm = MixupModel(keras.Model(inputs, out), regularizer=MixupE(), seed=0)
    site = lambda i: keras.ops.convert_to_tensor(i, "int32")
    np.testing.assert_allclose(float(mm._partner_weight(site(0))), 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(
        float(mm._partner_weight(site(1))), 2 * 0.5 * 2 / (2.5 * 3.5), rtol=1e-6
    )
    mm.sites[1].enabled.assign(0.0)
    assert float(mm._partner_weight(site(1))) == 0.0
    mix = keras_mixup.layers.RandomMix([MixUp(alpha=1.0), CutMix(alpha=3.0)],
                                       weights=[1, 3], rate=0.5)
    np.testing.assert_allclose(
        float(mix.expected_partner_weight()), 0.5 * (0.25 / 3 + 0.75 * 3 / 7), rtol=1e-6
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_fit_with_xla_manifold_sites_and_save_load(mode, tmp_path):
    """Batch normalization and dropout make the clean pass assign state."""
    inputs = keras.Input((8, 8, 1))
    h = MixUp(alpha=1.0)(inputs)
    h = keras.layers.Conv2D(4, 3)(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Activation("relu")(h)
    h = CutMix(alpha=1.0)(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dropout(0.1)(h)
    out = keras.layers.Dense(3)(h)
    mm = MixupModel(keras.Model(inputs, out), seed=1,
                    regularizer=MixupE(eta=0.1, mode=mode, batch_fraction=0.5))
    mm.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
               jit_compile=True)
    # A short last batch (a second compile) in exact mode only: the
    # compile dominates this test's time.
    n = 40 if mode == "exact" else 32
    x = np.random.default_rng(0).random((n, 8, 8, 1)).astype("float32")
    y = np.arange(n) % 3
    logs = mm.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    assert np.isfinite(logs["loss"]).all() and min(logs["mixupe_reg"]) > 0
    assert 0 < min(logs["mixupe_scale"]) <= max(logs["mixupe_scale"]) <= 1.0
    path = str(tmp_path / "m.keras")
    mm.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), mm.predict(x, verbose=0))
    assert loaded.regularizer.get_config() == mm.regularizer.get_config()
    if mode == "exact":
        np.testing.assert_allclose(to_np(loaded.regularizer.input_mean),
                                   to_np(mm.regularizer.input_mean))
        np.testing.assert_allclose(to_np(loaded.regularizer.input_mean), x.mean(0), atol=1e-5)


def test_data_parallel_mean_is_global(request):
    """Two devices share each batch (a MirroredStrategy on TensorFlow,
    `keras.distribution.DataParallel` on JAX): x̄ averages all of it."""
    if BACKEND == "tensorflow":
        build, train = request.getfixturevalue("mirrored").scope(), contextlib.nullcontext()
    else:
        devices = keras.distribution.list_devices("cpu")[:2]
        distribution = keras.distribution.DataParallel(devices=devices)
        build, train = distribution.scope(), distribution.scope()
    with build:
        mm = wrap(tiny_mlp(), "exact", fraction=0.5)
        mm.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = data(32)
    with train:
        logs = mm.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
    assert np.isfinite(logs["mixupe_reg"]).all()
    np.testing.assert_allclose(to_np(mm.regularizer.input_mean), x.mean(0), atol=1e-5)
    assert float(to_np(mm.regularizer.input_count)) == 32


def test_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mm = wrap(tiny_mlp(), "exact")
        mm.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                   jit_compile=True)
        x, y = data(16)
        logs = mm.fit(x, y, batch_size=8, epochs=1, verbose=0).history
        assert np.isfinite(logs["loss"]).all() and np.isfinite(logs["mixupe_reg"]).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bad_arguments():
    with pytest.raises(ValueError, match="eta"):
        MixupE(eta=-1)
    with pytest.raises(ValueError, match="mode"):
        MixupE(mode="slow")
    with pytest.raises(ValueError, match="batch_fraction"):
        MixupE(batch_fraction=0.0)
    with pytest.raises(TypeError, match="MixupE"):
        MixupModel(tiny_mlp(), mixer=MixUp(), regularizer="mixupe")
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    two = keras.Model([a, b], keras.layers.Dense(3)(keras.layers.Concatenate()([a, b])))
    with pytest.raises(ValueError, match="one input of known shape"):
        MixupModel(two, mixer=MixUp(), regularizer=MixupE(mode="exact"))
    mm = wrap(tiny_mlp(), "fast")
    mm.compile("sgd", lambda y_true, y_pred: keras.ops.mean(keras.ops.square(y_pred)))
    x, y = data(4)
    with pytest.raises(ValueError, match="from_logits"):
        mm.train_on_batch(x, np.eye(3, dtype="float32")[y])
