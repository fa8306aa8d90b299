"""keras_mixup.domain: the gradient reversal, each method's loss terms and
their sum, virtual mixup's consistency, domain mixup's targets, training,
saving and the errors; on every backend (TensorFlow and JAX)."""

import keras
import numpy as np
import pytest

from keras_mixup.domain import DomainAdaptationModel
from keras_mixup.domain_losses import GradientReversal, mix_domains, reverse_gradient

BACKEND = keras.backend.backend()


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def compiled(fn):
    """``fn`` itself on TensorFlow, ``jax.jit(fn)`` on JAX (where compiling
    one program is much faster than running its ops one by one)."""
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


def gradient(fn, x):
    """d sum(fn(x)) / dx on the running backend."""
    x = np.asarray(x, "float32")
    if BACKEND == "jax":
        import jax

        return np.asarray(jax.jit(jax.grad(lambda v: keras.ops.sum(fn(v))))(x))
    import tensorflow as tf

    v = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(v)
        out = tf.reduce_sum(fn(v))
    return tape.gradient(out, v).numpy()


def nets(seed=0, dim=6, hidden=16, classes=3, disc=True):
    keras.utils.set_random_seed(seed)
    f = keras.Sequential([keras.Input((dim,)), keras.layers.Dense(hidden, activation="relu")])
    c = keras.Sequential([keras.Input((hidden,)), keras.layers.Dense(classes)])
    d = keras.Sequential([keras.Input((hidden,)), keras.layers.Dense(8, activation="tanh"),
                          keras.layers.Dense(1)]) if disc else None
    return f, c, d


def data(n=16, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    x_s = rng.normal(size=(n, dim)).astype("float32")
    x_t = (2.0 * rng.normal(size=(n, dim)) + 1.0).astype("float32")  # shifted
    return x_s, x_t, np.arange(n) % 3


def model_for(method, seed=0, **kwargs):
    f, c, d = nets(seed)
    return DomainAdaptationModel(f, c, None if method == "source_only" else d,
                                 method=method, seed=seed, **kwargs)


# ------------------------------------------------------------ reversal


@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_gradient_reversal_is_identity_forward_and_negates_the_gradient(scale):
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32") * 1e3
    assert np.array_equal(to_numpy(reverse_gradient(x, scale)), x)  # bit for bit
    w = np.linspace(-2, 2, 20).reshape(4, 5).astype("float32")
    g = gradient(lambda v: w * reverse_gradient(v, scale), x)
    np.testing.assert_allclose(g, -scale * w, rtol=1e-6)
    g = gradient(lambda v: w * GradientReversal(scale)(v), x)  # the layer too
    np.testing.assert_allclose(g, -scale * w, rtol=1e-6)


def test_the_domain_terms_gradient_reaches_the_features_reversed():
    """d(domain term)/dx through the model = −(the same without reversal)."""
    x_s, x_t, y = data()
    model = model_for("dann", rampup_steps=0)
    f, d = model.feature_extractor, model.discriminator

    def plain(v):  # the DANN domain term, computed here without reversal
        bce = lambda t, l: keras.ops.softplus(l) - t * l  # noqa: E731
        return 0.5 * (keras.ops.mean(bce(1.0, d(f(v))[:, 0]))
                      + keras.ops.mean(bce(0.0, d(f(x_t))[:, 0])))

    g_model = gradient(lambda v: model.loss_terms(v, x_t, y)["domain"], x_s)
    g_plain = gradient(plain, x_s)
    assert np.abs(g_plain).max() > 1e-4
    np.testing.assert_allclose(g_model, -g_plain, rtol=1e-4, atol=1e-7)
    terms = compiled(lambda v: model.loss_terms(v, x_t, y))(x_s)
    np.testing.assert_allclose(to_numpy(terms["domain"]), to_numpy(plain(x_s)), rtol=1e-5)


# ------------------------------------------------------------ the terms


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def bce(t, logit):
    return np.mean(np.logaddexp(0.0, logit) - t * logit)


def test_loss_is_the_weighted_sum_of_terms_recomputed_from_the_parts():
    x_s, x_t, y = data()
    w = {"domain": 0.5, "domain_mixup": 2.0, "consistency": 3.0}
    model = model_for("dual_mixup", alpha=0.7, rampup_steps=0, domain_weight=w["domain"],
                      domain_mixup_weight=w["domain_mixup"],
                      consistency_weight=w["consistency"])
    plan, terms = compiled(lambda a, b: (model.mixing_plan(a, b, step=0),
                                         model.loss_terms(a, b, y, step=0)))(x_s, x_t)
    terms = {k: float(to_numpy(v)) for k, v in terms.items()}
    assert sorted(terms) == ["consistency", "domain", "domain_mixup", "source"]
    # Each term again, in NumPy, from the networks' outputs and the step's mixes.
    plan = keras.tree.map_structure(to_numpy, plan)
    f, c, d = model.feature_extractor, model.classifier, model.discriminator
    net = lambda m, x: to_numpy(m(x))  # noqa: E731
    lam, idx = plan["source"]["lam"][:, None], plan["source"]["index"]
    labels = lam * np.eye(3)[y] + (1 - lam) * np.eye(3)[y][idx]
    np.testing.assert_allclose(plan["source"]["x"], lam * x_s + (1 - lam) * x_s[idx],
                               rtol=1e-6, atol=1e-6)
    logp = np.log(softmax(net(c, net(f, plan["source"]["x"]))))
    assert terms["source"] == pytest.approx(-np.mean(np.sum(labels * logp, -1)), rel=1e-5)
    dom = 0.5 * (bce(1.0, net(d, net(f, x_s))[:, 0]) + bce(0.0, net(d, net(f, x_t))[:, 0]))
    assert terms["domain"] == pytest.approx(dom, rel=1e-5)
    lam = plan["domain"]["targets"]  # the discriminator's targets are the mixing weights
    np.testing.assert_allclose(plan["domain"]["x"], lam[:, None] * x_s + (1 - lam[:, None]) * x_t,
                               rtol=1e-6, atol=1e-6)
    dm = bce(lam, net(d, net(f, plan["domain"]["x"]))[:, 0])
    assert terms["domain_mixup"] == pytest.approx(dm, rel=1e-5)
    lam, idx = plan["target"]["lam"][:, None], plan["target"]["index"]
    p = softmax(net(c, net(f, x_t)))
    mix = lam * p + (1 - lam) * p[idx]
    q = softmax(net(c, net(f, plan["target"]["x"])))
    kl = np.mean(np.sum(mix * (np.log(mix) - np.log(q)), -1))
    assert terms["consistency"] == pytest.approx(kl, rel=1e-3, abs=1e-7)
    # One fit step (learning rate 0, the plan of step 0): the logged loss is
    # the weighted sum of the logged terms, which are the ones above.
    model.compile(keras.optimizers.SGD(0.0))
    logs = model.fit((x_s, x_t), y, batch_size=16, epochs=1, shuffle=False,
                     verbose=0).history
    logged = {k: logs[k][-1] for k in terms}
    assert logged == pytest.approx(terms, rel=1e-4)
    total = logged["source"] + sum(w[k] * logged[k] for k in w)
    assert logs["loss"][-1] == pytest.approx(total, rel=1e-5)


def test_virtual_mixup_consistency_is_zero_for_a_linear_model_positive_otherwise():
    rng = np.random.default_rng(1)
    x_t = rng.uniform(0.1, 0.9, (16, 3)).astype("float32")
    x_s, y = rng.uniform(0.1, 0.9, (16, 3)).astype("float32"), np.arange(16) % 2
    # p(x) = (x₁, 1 − x₁): probabilities linear in the inputs.
    f = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, use_bias=False)])
    f.set_weights([np.eye(3, dtype="float32")])
    c = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    c.set_weights([np.array([[1, -1], [0, 0], [0, 0]], "float32"), np.array([0, 1], "float32")])
    linear = DomainAdaptationModel(f, c, method="virtual_mixup", from_logits=False, seed=0)
    terms = compiled(lambda a, b: linear.loss_terms(a, b, y, step=5))(x_s, x_t)
    assert float(to_numpy(terms["consistency"])) == pytest.approx(0.0, abs=1e-6)
    # A ReLU network with a softmax is not linear between points.
    f, c, _ = nets(0, dim=3, hidden=32, classes=2, disc=False)
    nonlinear = DomainAdaptationModel(f, c, method="virtual_mixup", seed=0)
    terms = compiled(lambda a, b: nonlinear.loss_terms(a, b, y, step=5))(10 * x_s, 10 * x_t)
    assert float(to_numpy(terms["consistency"])) > 1e-3
    assert float(to_numpy(terms["entropy"])) > 0


def test_domain_mixup_targets_are_the_mixing_weights():
    ones, zeros = np.ones((32, 2, 2), "float32"), np.zeros((24, 2, 2), "float32")
    mixed, lam = map(to_numpy, compiled(lambda a, b: mix_domains(a, b, 0.5, seed=3))(ones, zeros))
    assert mixed.shape == (24, 2, 2) and lam.shape == (24,)  # the shorter batch
    # Source pixels 1, target pixels 0: a mixed pixel is its source share.
    np.testing.assert_allclose(mixed.reshape(24, -1), np.repeat(lam[:, None], 4, 1), atol=1e-6)
    assert lam.std() > 0.1  # (the model's targets: test_loss_is_the_weighted_sum...)


# ------------------------------------------------------------ training


@pytest.mark.parametrize("method,logged", [
    ("source_only", ["source"]),
    ("dann", ["domain", "reversal", "source"]),
    ("virtual_mixup", ["consistency", "entropy", "rampup", "source"]),
    ("dual_mixup", ["consistency", "domain", "domain_mixup", "rampup", "reversal", "source"]),
])
def test_fit_trains_and_logs_the_terms(method, logged):
    x_s, x_t, y = data()
    f, c, d = nets(0)
    model = DomainAdaptationModel(f, c, None if method in ("source_only", "virtual_mixup")
                                  else d, method=method, rampup_steps=4, seed=0)
    model.compile(keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    history = model.fit((x_s, x_t), y, batch_size=8, epochs=2, verbose=0).history
    assert sorted(history) == sorted(["loss", "accuracy", *logged])
    assert all(np.isfinite(v).all() for v in history.values())
    assert int(to_numpy(model.step.value)) == 4
    changed = [not np.allclose(a, b) for a, b in zip(before, model.get_weights())]
    assert all(changed[:4])  # feature extractor and classifier
    if d is not None and method != "virtual_mixup":
        assert all(changed[4:])  # the discriminator learns too
    # predict / evaluate: plain inputs, classifier(features(x)).
    p = model.predict(x_t, verbose=0)
    np.testing.assert_allclose(p, to_numpy(c(f(x_t))), rtol=1e-5, atol=1e-6)
    result = model.evaluate(x_t, y, verbose=0, return_dict=True)
    assert sorted(result) == ["accuracy", "loss"]


def test_saves_and_loads(tmp_path):
    x_s, x_t, y = data()
    model = model_for("dann", alpha=0.5, domain_weight=0.3, rampup_steps=3)
    model.compile("adam")
    model.fit((x_s, x_t), y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "da.keras")
    again = keras.saving.load_model(tmp_path / "da.keras")
    assert isinstance(again, DomainAdaptationModel) and again.method == "dann"
    assert again.alpha == 0.5 and again.weights_by_term == model.weights_by_term
    assert again.compiled  # compile_from_config: no loss to restore, the optimizer is
    assert int(to_numpy(again.step.value)) == 2
    np.testing.assert_allclose(again.predict(x_t, verbose=0), model.predict(x_t, verbose=0),
                               atol=1e-6)
    for a, b in zip(again.discriminator.get_weights(), model.discriminator.get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------ errors


def test_batches_without_target_or_labels_or_with_target_labels_are_refused():
    x_s, x_t, y = data()
    model = model_for("dann")
    model.compile("adam")
    with pytest.raises(ValueError, match=r"learns from unlabeled target.*\(x_source, x_target\)"):
        model.fit(x_s, y, verbose=0)
    with pytest.raises(ValueError, match="Target labels are not used"):
        model.fit((x_s, x_t), (y, y), verbose=0)
    with pytest.raises(ValueError, match="needs the source labels"):
        model.fit((x_s, x_t), verbose=0)
    tf = pytest.importorskip("tensorflow")
    with pytest.raises(ValueError, match="learns from unlabeled target"):
        model.fit(tf.data.Dataset.from_tensor_slices((x_s, y)).batch(8), verbose=0)
    # Refused before Keras' loop starts: the model still trains.
    model.fit((x_s, x_t), y, batch_size=8, verbose=0)
    # source_only trains on the source alone.
    plain = model_for("source_only")
    plain.compile("adam")
    plain.fit(x_s, y, verbose=0)


def test_bad_networks_and_arguments():
    f, c, d = nets(0)
    with pytest.raises(ValueError, match="one logit per example"):
        DomainAdaptationModel(f, c, keras.Sequential([keras.Input((16,)), keras.layers.Dense(2)]))
    wrong = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="do not compose.*keras.Input"):
        DomainAdaptationModel(f, wrong, d)
    with pytest.raises(TypeError, match="feature_extractor"):
        DomainAdaptationModel("not a model", c, d)
    with pytest.raises(ValueError, match="Unknown `method`.*dual_mixup"):
        DomainAdaptationModel(f, c, d, method="mixup")
    with pytest.raises(ValueError, match="needs a `discriminator`"):
        DomainAdaptationModel(f, c, method="dann")
    with pytest.raises(ValueError, match="discriminator=None"):
        DomainAdaptationModel(f, c, d, method="source_only")
    with pytest.raises(ValueError, match="alpha"):
        DomainAdaptationModel(f, c, d, alpha=0.0)
    with pytest.raises(ValueError, match="consistency_weight.*>= 0"):
        DomainAdaptationModel(f, c, d, method="dual_mixup", consistency_weight=-1.0)
    with pytest.raises(ValueError, match="`entropy_weight`: method='dann' has no 'entropy'"):
        DomainAdaptationModel(f, c, d, method="dann", entropy_weight=0.1)
    with pytest.raises(ValueError, match="rampup_steps"):
        DomainAdaptationModel(f, c, d, rampup_steps=-1)
    with pytest.raises(ValueError, match="compile it without `loss`"):
        DomainAdaptationModel(f, c, d).compile("adam", loss="mse")
