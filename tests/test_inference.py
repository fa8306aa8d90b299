"""Inference side of the theory: θ̄, rescaled prediction, calibration (ECE).

Runs under every backend (``KERAS_BACKEND=jax``); only the tf.distribute
tests are TensorFlow-only. ``tf.data`` inputs are tested under JAX too, when
TensorFlow is installed.
"""

import ast
import importlib.util
import math
import pathlib

import keras
import numpy as np
import pytest
from scipy import integrate, special, stats

import keras_mixup
from keras_mixup.callbacks.rescaled import (
    RescaledPrediction,
    model_theta_bar,
    training_means,
)
from keras_mixup.metrics import (
    ExpectedCalibrationError,
    calibration_bins,
    reliability_diagram,
)
from keras_mixup.ops import theta_bar
from keras_mixup.ops.theta import incomplete_beta
from tests.conftest import xla

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKEND = keras.backend.backend()


def tensorflow():
    """TensorFlow, for the tests that feed tf.data (skipped without it)."""
    return pytest.importorskip("tensorflow")


@pytest.mark.parametrize("path", [
    "keras_mixup/metrics.py", "keras_mixup/rescaled.py",
    "keras_mixup/callbacks/rescaled.py", "keras_mixup/ops/theta.py",
])
def test_inference_modules_do_not_import_tensorflow(path):
    # TensorFlow is imported lazily, only for TF objects the user passed.
    tree = ast.parse((ROOT / path).read_text())
    names = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n and n.split(".")[0] == "tensorflow"]


# ----------------------------------------------------------------------- θ̄


@pytest.mark.parametrize("alpha,beta", [
    (0.2, None), (1.0, None), (4.0, None), (2.0, 0.5), (0.3, 0.9), (1e-3, None),
])
def test_theta_bar_matches_monte_carlo(alpha, beta):
    rng = np.random.default_rng(0)
    lam = rng.beta(alpha, alpha if beta is None else beta, size=2_000_000)
    theta = np.maximum(lam, 1.0 - lam)
    # Five standard errors: a false alarm has probability < 1e-6. The
    # standard error is at most 0.25 / sqrt(2e6) ≈ 1.8e-4, so tol < 1e-3.
    tol = 5.0 * theta.std() / math.sqrt(theta.size)
    assert tol < 1e-3
    assert abs(theta_bar(alpha, beta) - theta.mean()) < tol


@pytest.mark.parametrize("alpha,beta", [(0.2, 0.2), (1.0, 1.0), (3.0, 3.0), (2.0, 0.5),
                                        (0.3, 0.9), (5.0, 2.0)])
def test_theta_bar_matches_numerical_integration(alpha, beta):
    pdf = stats.beta(alpha, beta).pdf
    low, _ = integrate.quad(lambda t: (1.0 - t) * pdf(t), 0.0, 0.5, limit=200)
    high, _ = integrate.quad(lambda t: t * pdf(t), 0.5, 1.0, limit=200)
    assert theta_bar(alpha, beta) == pytest.approx(low + high, abs=1e-8)


@pytest.mark.parametrize("alpha,beta", [
    (1e-3, None), (1e3, None), (1e-3, 1e3), (1e3, 1e-3), (1e3, 999.0), (0.05, 0.07),
    (1e-3, 2e-3), (40.0, 60.0),
])
def test_theta_bar_extreme_concentrations_match_scipy(alpha, beta):
    b = alpha if beta is None else beta
    # E[max(λ, 1−λ)] = E[λ] + P(λ < ½) − 2·E[λ·1{λ < ½}], by SciPy's betainc.
    mean = alpha / (alpha + b)
    ref = mean + special.betainc(alpha, b, 0.5) - 2 * mean * special.betainc(alpha + 1, b, 0.5)
    value = theta_bar(alpha, beta)
    assert isinstance(value, float) and 0.5 <= value <= 1.0
    assert value == pytest.approx(ref, abs=1e-12)
    assert incomplete_beta(0.5, alpha, b) == pytest.approx(
        special.betainc(alpha, b, 0.5), abs=1e-12
    )


def test_theta_bar_known_values_and_symmetry():
    assert theta_bar(1.0) == 0.75
    assert theta_bar(1) == theta_bar(1.0, 1.0)
    assert theta_bar(2.0, 0.5) == pytest.approx(theta_bar(0.5, 2.0), abs=1e-14)
    # Closed form of the design doc: 1 − I_½(α + 1, α).
    assert theta_bar(0.4) == pytest.approx(1.0 - special.betainc(1.4, 0.4, 0.5), abs=1e-14)
    assert theta_bar(1e-3) > 0.999 and theta_bar(1e6) < 0.501
    values = [theta_bar(a) for a in (0.01, 0.1, 1.0, 10.0, 100.0)]
    assert values == sorted(values, reverse=True)  # more mixing, more shrinkage


@pytest.mark.parametrize("kwargs,error,match", [
    ({"alpha": 0.0}, ValueError, "alpha.*> 0"),
    ({"alpha": -1.0}, ValueError, "alpha"),
    ({"alpha": float("nan")}, ValueError, "finite"),
    ({"alpha": float("inf")}, ValueError, "finite"),
    ({"alpha": 1.0, "beta": 0.0}, ValueError, "beta"),
    ({"alpha": "1"}, TypeError, "alpha.*number"),
    ({"alpha": True}, TypeError, "alpha"),
    ({"alpha": None}, TypeError, "alpha"),
])
def test_theta_bar_rejects_bad_concentrations(kwargs, error, match):
    with pytest.raises(error, match=match):
        theta_bar(**kwargs)


# ------------------------------------------------------------ RescaledModel


def small_model(softmax, seed=0, features=4, classes=3):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((features,))
    h = keras.layers.Dense(8, activation="tanh")(inputs)
    outputs = keras.layers.Dense(classes, activation="softmax" if softmax else None)(h)
    return keras.Model(inputs, outputs)


def numpy_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


X_MEAN = np.array([0.5, -1.0, 2.0, 0.0])
Y_MEAN = np.array([0.5, 0.3, 0.2])


def hand_rescaled(model, x, theta, space, from_logits, x_mean=X_MEAN, y_mean=Y_MEAN):
    """RescaledModel's documented operator, in NumPy (float64)."""
    shrunk = (x_mean + theta * (x - x_mean)).astype("float32")
    f = keras.ops.convert_to_numpy(model(shrunk)).astype(np.float64)
    if space == "probs":
        p = numpy_softmax(f) if from_logits else f
        p = np.maximum(y_mean + (p - y_mean) / theta, 0.0)
        p = p / p.sum(axis=-1, keepdims=True)
        return np.log(np.maximum(p, 1e-7)) if from_logits else p
    z = f if from_logits else np.log(f)
    c = np.log(y_mean)
    z = c + (z - c) / theta
    return z if from_logits else numpy_softmax(z)


@pytest.mark.parametrize("space", ["probs", "logits"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_rescaled_model_equals_numpy(space, from_logits):
    model = small_model(softmax=not from_logits)
    x = np.random.default_rng(1).normal(size=(16, 4)).astype("float32") * 3
    theta = theta_bar(0.5)
    rescaled = keras_mixup.RescaledModel(
        model, X_MEAN, Y_MEAN, theta, space=space, from_logits=from_logits
    )
    out = rescaled.predict(x, verbose=0)
    np.testing.assert_allclose(out, hand_rescaled(model, x, theta, space, from_logits),
                               rtol=2e-5, atol=2e-6)
    probs = numpy_softmax(out) if from_logits else out
    assert np.all(probs >= 0) and np.allclose(probs.sum(axis=-1), 1.0, atol=1e-5)


def test_rescaled_probs_clips_and_renormalizes():
    # A constant model predicting [0.1, 0.3, 0.6]: (p − ȳ)/θ̄ + ȳ leaves [0, 1].
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(
        lambda t: keras.ops.zeros_like(t[:, :3]) + np.array([0.1, 0.3, 0.6], "float32")
    )(inputs)
    model = keras.Model(inputs, outputs)
    rescaled = keras_mixup.RescaledModel(model, X_MEAN, Y_MEAN, 0.5)
    raw = Y_MEAN + (np.array([0.1, 0.3, 0.6]) - Y_MEAN) / 0.5  # [-0.3, 0.3, 1.0]
    expected = np.maximum(raw, 0) / np.maximum(raw, 0).sum()
    np.testing.assert_allclose(rescaled(np.zeros((2, 4)))[0], expected, atol=1e-6)


def test_rescaled_model_with_theta_one_is_the_model():
    model = small_model(softmax=True)
    x = np.random.default_rng(2).normal(size=(8, 4)).astype("float32")
    rescaled = keras_mixup.RescaledModel(model, X_MEAN, Y_MEAN, 1.0)
    np.testing.assert_allclose(rescaled(x), model(x), atol=1e-6)


@pytest.mark.parametrize("space", ["probs", "logits"])
def test_rescaled_model_save_load_round_trip(tmp_path, space):
    model = small_model(softmax=False, seed=3)
    x = np.random.default_rng(3).normal(size=(8, 4)).astype("float32")
    rescaled = keras_mixup.RescaledModel(
        model, X_MEAN, Y_MEAN, theta_bar(0.4), space=space, from_logits=True
    )
    before = rescaled.predict(x, verbose=0)
    path = tmp_path / f"rescaled_{space}.keras"
    rescaled.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True by default
    assert isinstance(loaded, keras_mixup.RescaledModel)
    assert (loaded.space, loaded.from_logits) == (space, True)
    np.testing.assert_allclose(loaded.x_mean.numpy(), X_MEAN, rtol=1e-7)
    np.testing.assert_allclose(loaded.y_mean.numpy(), Y_MEAN, rtol=1e-7)
    assert float(loaded.theta_bar.numpy()) == pytest.approx(theta_bar(0.4), abs=1e-7)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)
    assert not loaded.x_mean.trainable and len(loaded.non_trainable_weights) == 3


@pytest.mark.parametrize("kwargs,error,match", [
    ({"theta_bar": 0.4}, ValueError, r"\[0.5, 1\]"),
    ({"theta_bar": 1.5}, ValueError, "theta_bar"),
    ({"theta_bar": "0.75"}, TypeError, "theta_bar"),
    ({"space": "prob"}, ValueError, "'probs'.*'logits'"),
    ({"y_mean": [0.5, 0.5, 0.5]}, ValueError, "sums to 1"),
    ({"y_mean": [0.5, 0.5]}, ValueError, "3 classes"),
    ({"y_mean": [[0.5, 0.5, 0.0]]}, ValueError, "one frequency per class"),
    ({"y_mean": [1.2, -0.1, -0.1]}, ValueError, ">= 0"),
    ({"y_mean": [0.5, 0.5, 0.0], "space": "logits"}, ValueError, "space='probs'"),
    ({"x_mean": np.zeros(5)}, ValueError, "x_mean.*input features"),
    ({"x_mean": [np.nan, 0, 0, 0]}, ValueError, "finite"),
    ({"from_logits": "yes"}, TypeError, "from_logits"),
])
def test_rescaled_model_rejects_bad_arguments(kwargs, error, match):
    args = {"x_mean": X_MEAN, "y_mean": Y_MEAN, "theta_bar": 0.75, **kwargs}
    with pytest.raises(error, match=match):
        keras_mixup.RescaledModel(small_model(softmax=True), **args)


def test_rescaled_model_accepts_uint8_and_warns_about_integer_inputs():
    model = small_model(softmax=True)
    rescaled = keras_mixup.RescaledModel(model, X_MEAN, Y_MEAN, 0.75)
    x = np.arange(8, dtype=np.uint8).reshape(2, 4)
    np.testing.assert_allclose(rescaled(x), hand_rescaled(model, x, 0.75, "probs", False),
                               atol=1e-6)
    images = keras.Input((4,), dtype="uint8")
    int_model = keras.Model(images, keras.layers.Dense(3)(keras.layers.Rescaling(1.0)(images)))
    with pytest.warns(UserWarning, match="Input as float32"):
        keras_mixup.RescaledModel(int_model, X_MEAN, Y_MEAN, 0.75, from_logits=True)


def test_rescaled_model_rejects_multi_input_models():
    a, b = keras.Input((2,)), keras.Input((2,))
    model = keras.Model([a, b], keras.layers.Dense(3)(keras.layers.Concatenate()([a, b])))
    with pytest.raises(ValueError, match="single input"):
        keras_mixup.RescaledModel(model, np.zeros(2), Y_MEAN, 0.75)
    with pytest.raises(TypeError, match="Keras model"):
        keras_mixup.RescaledModel("model", np.zeros(2), Y_MEAN, 0.75)


# ---------------------------------------------------------------------- ECE


def reference_ece(y_true, probs, num_bins, weights=None):
    """ECE by the definition, bin by bin, in float64 (intervals on float32 edges)."""
    probs = np.asarray(probs, np.float32)
    labels = y_true.argmax(-1) if y_true.ndim == 2 and y_true.shape[1] > 1 else y_true.ravel()
    weights = np.ones(len(probs)) if weights is None else np.asarray(weights, np.float64)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = [np.float32(k / num_bins) for k in range(num_bins + 1)]
    total, ece = weights.sum(), 0.0
    for b in range(num_bins):
        upper_ok = conf <= edges[b + 1] if b == num_bins - 1 else conf < edges[b + 1]
        members = (conf >= edges[b]) & upper_ok
        n_b = weights[members].sum()
        if n_b > 0:
            acc = (weights * correct)[members].sum() / n_b
            mean_conf = (weights * conf)[members].sum() / n_b
            ece += n_b / total * abs(acc - mean_conf)
    return ece


def edge_case_predictions(num_bins, classes=4, n=300, seed=0):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(classes, 0.4), size=n).astype(np.float32)
    # Confidence exactly 1.0, exactly 0.0 (not a distribution, but accepted),
    # and exactly on every bin boundary k / num_bins >= 1 / classes.
    probs[0] = np.eye(classes)[1]
    probs[1] = 0.0
    k = np.arange(math.ceil(num_bins / classes), num_bins)
    for i, edge in enumerate((k / num_bins).astype(np.float32)):
        row = np.full(classes, (1 - edge) / (classes - 1), np.float32)
        row[i % classes] = edge
        probs[2 + i] = row
    labels = rng.integers(0, classes, n)
    return labels, probs


@pytest.mark.parametrize("num_bins", [15, 10, 1])
def test_ece_matches_numpy_reference_with_edge_bins(num_bins):
    labels, probs = edge_case_predictions(num_bins)
    ref = reference_ece(labels, probs, num_bins)
    for y in (labels, labels[:, None], np.eye(4, dtype="float32")[labels]):
        metric = ExpectedCalibrationError(num_bins=num_bins)
        metric.update_state(y, probs)
        assert float(metric.result()) == pytest.approx(ref, abs=1e-6)
    stats = calibration_bins(labels, probs, num_bins)
    assert stats["ece"] == pytest.approx(ref, abs=1e-12)
    assert stats["count"].sum() == len(labels)
    assert stats["count"][0] >= 1 and stats["count"][-1] >= 1  # conf 0.0 and 1.0
    np.testing.assert_allclose(metric.bin_counts.numpy(), stats["count"])


def test_ece_boundaries_go_to_the_upper_bin():
    # Left-closed bins: a confidence equal to float32(k/B) belongs to bin k.
    metric = ExpectedCalibrationError(num_bins=10)
    probs = np.array([[0.3, 0.7], [0.5, 0.5], [0.0, 1.0], [0.0, 0.0]], np.float32)
    metric.update_state([1, 0, 1, 0], probs)
    assert np.flatnonzero(metric.bin_counts.numpy()).tolist() == [0, 5, 7, 9]


def test_ece_streams_weights_logits_and_compiles():
    labels, probs = edge_case_predictions(15, n=240, seed=4)
    weights = np.random.default_rng(5).random(240)
    logits = np.log(np.maximum(probs, 1e-30))
    whole = ExpectedCalibrationError(from_logits=True)
    whole.update_state(labels, logits, sample_weight=weights)
    streamed = ExpectedCalibrationError(from_logits=True)
    for part in np.split(np.arange(240), 6):  # one batch shape: one trace under JAX
        streamed.update_state(labels[part], logits[part], sample_weight=weights[part, None])
    ref = reference_ece(labels, numpy_softmax(logits.astype(np.float64)), 15, weights)
    assert float(whole.result()) == pytest.approx(ref, abs=1e-5)
    assert float(streamed.result()) == pytest.approx(float(whole.result()), abs=1e-6)

    # Compiled with XLA (tf.function(jit_compile=True) or jax.jit), statelessly.
    jit = ExpectedCalibrationError()
    state = xla(jit.stateless_update_state)(
        [v.value for v in jit.variables], labels.astype("int32"), probs
    )
    for var, value in zip(jit.variables, state):
        var.assign(value)
    plain = ExpectedCalibrationError()
    plain.update_state(labels, probs)
    assert float(jit.result()) == pytest.approx(float(plain.result()), abs=1e-6)

    plain.reset_state()
    assert float(plain.result()) == 0.0 and plain.bin_counts.numpy().sum() == 0
    clone = ExpectedCalibrationError.from_config(streamed.get_config())
    assert (clone.num_bins, clone.from_logits, clone.name) == (15, True, "ece")


def test_ece_sequences_and_errors():
    rng = np.random.default_rng(6)
    probs = rng.dirichlet(np.ones(3), size=(4, 5)).astype(np.float32)
    labels = rng.integers(0, 3, (4, 5))
    metric = ExpectedCalibrationError()
    metric.update_state(labels, probs)
    ref = reference_ece(labels.ravel(), probs.reshape(-1, 3), 15)
    assert float(metric.result()) == pytest.approx(ref, abs=1e-6)
    with pytest.raises(ValueError, match="num_classes >= 2.*sigmoid"):
        metric.update_state([1, 0], [[0.7], [0.2]])
    with pytest.raises(ValueError, match="num_bins"):
        ExpectedCalibrationError(num_bins=0)
    with pytest.raises(TypeError, match="from_logits"):
        ExpectedCalibrationError(from_logits=1)


def test_ece_as_compiled_metric():
    model = small_model(softmax=True)
    model.compile(loss="sparse_categorical_crossentropy",
                  metrics=[ExpectedCalibrationError(num_bins=5)])
    x = np.random.default_rng(7).normal(size=(40, 4)).astype("float32")
    y = np.arange(40) % 3
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert result["ece"] == pytest.approx(reference_ece(y, model.predict(x, verbose=0), 5),
                                          abs=1e-5)


def test_reliability_diagram_writes_png(tmp_path):
    labels, probs = edge_case_predictions(15, seed=8)
    path = tmp_path / "plots" / "reliability.png"
    stats = reliability_diagram(labels, probs, path, title="test")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert stats["ece"] == pytest.approx(reference_ece(labels, probs, 15), abs=1e-12)
    two = reliability_diagram(labels, {"a": probs, "b": probs[:, ::-1]},
                              tmp_path / "two.png", num_bins=5)
    assert set(two) == {"a", "b"} and two["a"]["count"].shape == (5,)
    import matplotlib.image

    assert matplotlib.image.imread(tmp_path / "two.png").shape[1] > \
        matplotlib.image.imread(path).shape[1] * 1.5
    with pytest.raises(ValueError, match="one label per prediction"):
        reliability_diagram(labels[:-1], probs, tmp_path / "x.png")
    with pytest.raises(ValueError, match="num_classes"):
        reliability_diagram(labels, probs[:, :1], tmp_path / "x.png")


# ------------------------------------------------------- training statistics


def stats_data(n=53, classes=4, seed=9):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3, 2)).astype(np.float32) * 5 + 1
    y = rng.integers(0, classes, n)
    return x, y, np.bincount(y, minlength=classes) / n


class Batches(keras.utils.PyDataset):
    """Array batches as a PyDataset (the backend-neutral Keras data class)."""

    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[part], self.y[part]


def make_data(kind, x, y, batch_size=8):
    """The same examples as training data of one kind."""
    if kind == "arrays":
        return (x, y)
    if kind == "backend tensors":  # jax.Array under JAX, tf.Tensor under TF
        return (keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y))
    if kind == "generator":
        return ((x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size))
    if kind == "py_dataset":
        return Batches(x, y, batch_size)
    tf = tensorflow()
    ds = tf.data.Dataset.from_tensor_slices
    if kind == "tf.data":
        return ds((x, y)).batch(batch_size)  # short last batch
    if kind == "tf.data (x, y, w)":
        return ds((x, y[:, None] if y.ndim == 1 else y, np.ones(len(y), "float32"))).batch(16)
    if kind == "tf.data dict":
        return ds({"images": x, "labels": y}).batch(len(x))
    if kind == "tf.data shards":  # two shards of one dataset, one after the other
        return ds((x, y)).shard(2, 0).concatenate(ds((x, y)).shard(2, 1)).batch(10)
    raise AssertionError(kind)


KINDS = ["arrays", "backend tensors", "generator", "py_dataset", "tf.data",
         "tf.data (x, y, w)", "tf.data dict", "tf.data shards"]


@pytest.mark.parametrize("kind", KINDS)
def test_training_means_of_batches_equal_numpy(kind):
    x, y, freq = stats_data()
    x_mean, y_mean, n = training_means(make_data(kind, x, y), num_classes=4)
    assert n == 53
    np.testing.assert_allclose(x_mean, x.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(y_mean, freq, rtol=1e-12)
    # One-hot labels need no num_classes.
    _, y_mean, _ = training_means(make_data(kind, x, np.eye(4, dtype=np.float32)[y]))
    np.testing.assert_allclose(y_mean, freq, rtol=1e-6)


@pytest.mark.tensorflow_only
def test_training_means_under_mirrored_strategy(mirrored):
    import tensorflow as tf

    devices = tf.config.list_logical_devices("CPU")
    assert len(devices) >= 2, "tests/conftest.py configures 2 logical CPUs"
    strategy = mirrored
    assert strategy.num_replicas_in_sync == 2
    x, y, freq = stats_data(n=37)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    # A plain dataset is split over the replicas; a distributed one is used as it is.
    results = [training_means(ds, 4, strategy=strategy)]
    with strategy.scope():
        results.append(training_means(strategy.experimental_distribute_dataset(ds), 4))
    for x_mean, y_mean, n in results:
        assert n == 37
        np.testing.assert_allclose(x_mean, x.astype(np.float64).mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(y_mean, freq, rtol=1e-12)
    with pytest.raises(ValueError, match="strategy="):
        training_means(strategy.experimental_distribute_dataset(ds), 4)
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        training_means(ds, 3, strategy=strategy)


def test_training_means_rejects_bad_data():
    x, y, _ = stats_data()
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        training_means((x, y), 3)
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        training_means(make_data("generator", x, y), 3)
    with pytest.raises(ValueError, match="num_classes"):
        training_means(Batches(x, y, 8))
    with pytest.raises(ValueError, match="empty"):
        training_means(iter([]), 4)
    with pytest.raises(ValueError, match="same examples"):
        training_means((x, y[:-1]), 4)
    with pytest.raises(TypeError, match="single input"):
        training_means(({"a": x}, y), 4)
    for data in ("data", x, {"images": x, "labels": y}, 3):
        with pytest.raises(TypeError, match="tf.data.Dataset.*PyDataset"):
            training_means(data, 4)

    class Endless(keras.utils.PyDataset):
        num_batches = None

        def __getitem__(self, index):
            return x[:8], y[:8]

    with pytest.raises(ValueError, match="never ends"):
        training_means(Endless(), 4)


def test_training_means_rejects_bad_tf_datasets():
    tf = tensorflow()
    x, y, _ = stats_data()
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(ValueError, match="infinite.*repeat"):
        training_means(ds.batch(8).repeat(), 4)
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        training_means(ds.batch(8), 3)
    with pytest.raises(ValueError, match="num_classes"):
        training_means(ds.batch(8))
    with pytest.raises(ValueError, match="empty"):
        training_means(ds.take(0).batch(8), 4)
    with pytest.raises(TypeError, match="single input"):
        training_means(tf.data.Dataset.from_tensor_slices(({"a": x}, y)).batch(8), 4)
    with pytest.raises(TypeError, match=r"\(x, y\)"):
        training_means(tf.data.Dataset.from_tensor_slices(x).batch(8), 4)


# ----------------------------------------------------------------- callback


def digits_like(n=96, features=4, classes=3, seed=10):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32) + 2.0
    y = (x[:, 0] > 2.0).astype(np.int64) + (x[:, 1] > 2.5)
    return x, np.minimum(y, classes - 1)


def test_callback_reads_alpha_builds_model_and_logs_validation():
    x, y = digits_like()
    plain = small_model(softmax=False, seed=11)
    model = keras_mixup.MixupModel(
        plain, mixer=keras_mixup.layers.MixUp(alpha=0.4), seed=0
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy", ExpectedCalibrationError(from_logits=True)])
    callback = RescaledPrediction(make_data("tf.data", x, y, 32),
                                  validation_data=(x[:48], y[:48]))
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0,
                        validation_data=(x[:48], y[:48]), callbacks=[callback])
    logs = history.history
    for name in ("val_rescaled_accuracy", "val_rescaled_loss", "val_rescaled_ece"):
        assert len(logs[name]) == 2
    assert "val_accuracy" in logs
    assert callback.theta_bar == theta_bar(0.4)
    rescaled = callback.rescaled_model
    assert isinstance(rescaled, keras_mixup.RescaledModel) and rescaled.model is plain
    assert rescaled.from_logits and rescaled.space == "probs"
    np.testing.assert_allclose(callback.x_mean, x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(callback.y_mean, np.bincount(y, minlength=3) / len(y))
    # The logged score is the rescaled model's, after the last epoch.
    probs = numpy_softmax(rescaled.predict(x[:48], verbose=0).astype(np.float64))
    assert logs["val_rescaled_accuracy"][-1] == pytest.approx(
        np.mean(probs.argmax(-1) == y[:48]), abs=1e-6)


def test_callback_with_explicit_alpha_on_a_pipeline_model():
    tf = tensorflow()
    x, y = digits_like(n=64)
    model = small_model(softmax=True, seed=12)
    mixup = keras_mixup.layers.MixUp(alpha=1.0, num_classes=3, seed=0)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    onehot = tf.data.Dataset.from_tensor_slices((x, np.eye(3, dtype="float32")[y])).batch(16)
    model.compile("adam", "categorical_crossentropy")
    callback = RescaledPrediction(onehot, alpha=1.0, space="logits")
    model.fit(train.map(mixup), epochs=1, verbose=0, shuffle=False, callbacks=[callback])
    assert callback.theta_bar == 0.75 and not callback.rescaled_model.from_logits
    out = callback.rescaled_model.predict(x[:5], verbose=0)
    assert np.allclose(out.sum(axis=-1), 1.0, atol=1e-5)
    # Without alpha there is nothing in the model to read it from.
    with pytest.raises(ValueError, match="alpha="):
        model.fit(train.map(mixup), epochs=1, verbose=0, shuffle=False,
                  callbacks=[RescaledPrediction((x, y))])


def test_theta_bar_from_sites():
    def wrap(*sites, mixer=None):
        inputs = keras.Input((4,))
        h = inputs
        for site in sites:
            h = keras.layers.Dense(4)(site(h))
        model = keras.Model(inputs, keras.layers.Dense(3)(h))
        return keras_mixup.MixupModel(model, mixer=mixer, seed=0)

    mixup = keras_mixup.layers
    assert model_theta_bar(wrap(mixup.MixUp(0.3), mixup.MixUp(0.3))) == theta_bar(0.3)
    assert model_theta_bar(wrap(mixer=mixup.MixUp(2.0, beta=0.5))) == theta_bar(2.0, 0.5)
    random_mix = mixup.RandomMix([mixup.MixUp(1.0), mixup.MixUp(0.2)], weights=[3, 1],
                                 rate=0.5)
    expected = 0.5 * (0.75 * theta_bar(1.0) + 0.25 * theta_bar(0.2)) + 0.5
    assert model_theta_bar(wrap(mixer=random_mix)) == pytest.approx(expected, abs=1e-15)
    with pytest.raises(ValueError, match="different α.*alpha="):
        model_theta_bar(wrap(mixup.MixUp(0.3), mixup.MixUp(1.0)))
    images = keras.Input((8, 8, 1))
    cut = keras.Model(images, keras.layers.Dense(3)(keras.layers.Flatten()(images)))
    with pytest.raises(ValueError, match="CutMix.*alpha="):
        model_theta_bar(keras_mixup.MixupModel(cut, mixer=mixup.CutMix(1.0), seed=0))
    with pytest.raises(ValueError, match="No mixing layer.*alpha="):
        model_theta_bar(small_model(softmax=True))


def test_callback_rejects_bad_arguments():
    x, y = digits_like(n=16)
    with pytest.raises(ValueError, match="beta.*without.*alpha"):
        RescaledPrediction((x, y), beta=0.5)
    with pytest.raises(ValueError, match="alpha"):
        RescaledPrediction((x, y), alpha=-1.0)
    with pytest.raises(ValueError, match="'probs'"):
        RescaledPrediction((x, y), alpha=1.0, space="softmax")
    with pytest.raises(TypeError, match="un-mixed training data"):
        RescaledPrediction(x, alpha=1.0)
    with pytest.raises(TypeError, match="validation_data"):
        RescaledPrediction((x, y), alpha=1.0, validation_data=x)
    with pytest.raises(TypeError, match="validation_data"):
        RescaledPrediction((x, y), alpha=1.0, validation_data=iter([(x, y)]))
    with pytest.raises(TypeError, match="from_logits"):
        RescaledPrediction((x, y), alpha=1.0, from_logits="no")
    with pytest.raises(ValueError, match="batch_size"):
        RescaledPrediction((x, y), alpha=1.0, batch_size=0)
    # A class missing from the data cannot be a log-space centre: caught
    # before the first epoch.
    model = small_model(softmax=True)
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = RescaledPrediction((x, np.zeros(16, np.int64)), alpha=1.0, space="logits")
    with pytest.raises(ValueError, match="space='probs'"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])


def test_callback_on_a_plain_model_matches_the_numpy_rescaling():
    # A plain Keras model trained on NumPy arrays, no MixupModel: the
    # callback's statistics, rescaled predictions and logged scores. One
    # fit() serves a callback per kind of `data`.
    x, y = digits_like(n=64)
    model = small_model(softmax=True, seed=13)
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=["accuracy", ExpectedCalibrationError(num_bins=5)])
    kinds = ["arrays", "generator", "py_dataset"]
    kinds += ["tf.data"] if importlib.util.find_spec("tensorflow") else []
    validate = {"validation_data": (x[:32], y[:32]), "batch_size": 16}  # one logs
    callbacks = [RescaledPrediction(make_data(kind, x, y, 16), alpha=0.5,
                                    **(validate if kind == "arrays" else {}))
                 for kind in kinds]
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=callbacks)
    expected = hand_rescaled(model, x[:32], theta_bar(0.5), "probs", False,
                             x.astype(np.float64).mean(axis=0), np.bincount(y) / 64)
    for kind, callback in zip(kinds, callbacks):
        assert callback.theta_bar == theta_bar(0.5), kind
        np.testing.assert_allclose(callback.x_mean, x.astype(np.float64).mean(axis=0),
                                   rtol=1e-12, err_msg=kind)
        np.testing.assert_allclose(callback.y_mean, np.bincount(y) / 64, err_msg=kind)
        rescaled = callback.rescaled_model
        assert rescaled.model is model and not rescaled.from_logits
        probs = rescaled.predict(x[:32], verbose=0)
        np.testing.assert_allclose(probs, expected, rtol=2e-5, atol=2e-6, err_msg=kind)
    logs = history.history
    assert logs["val_rescaled_accuracy"][-1] == pytest.approx(
        np.mean(expected.argmax(-1) == y[:32]), abs=1e-6)
    assert logs["val_rescaled_ece"][-1] == pytest.approx(
        reference_ece(y[:32], expected, 5), abs=1e-5)


def test_callback_reads_a_generator_once_for_a_subclassed_model():
    # A subclassed model has no symbolic output: the callback runs it on the
    # first batch to count the classes, and still averages every batch.
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden, self.head = keras.layers.Dense(8), keras.layers.Dense(3)

        def call(self, inputs):
            return self.head(self.hidden(inputs))

    x, y = digits_like(n=48)
    model = Classifier()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = RescaledPrediction(make_data("generator", x, y, 16), alpha=1.0)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[callback])
    np.testing.assert_allclose(callback.x_mean, x.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(callback.y_mean, np.bincount(y, minlength=3) / 48)
    assert callback.rescaled_model.from_logits


# ------------------------------------------------------------------ example


def load_example():
    spec = importlib.util.spec_from_file_location(
        "rescaled_calibration", ROOT / "examples" / "rescaled_calibration.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rescaled_calibration_example_runs(tmp_path, capsys):
    demo = load_example()
    rows = demo.main(["--seeds", "1", "--epochs", "2", "--out", str(tmp_path)])
    assert [r[0] for r in rows] == list(demo.METHODS)
    for _, acc, acc_sd, ece, ece_sd in rows:
        assert 50.0 < acc <= 100.0 and 0.0 <= ece <= 100.0 and acc_sd == ece_sd == 0.0
    out = capsys.readouterr().out
    assert "| model | test accuracy (%) | ECE (%) |" in out
    assert "| mixup + rescaled (probs) |" in out
    assert (tmp_path / "rescaled_reliability.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv,word", [
    (["--seeds", "0"], "seeds"),
    (["--epochs", "x"], "epochs"),
    (["--alpha", "-1"], "alpha"),
])
def test_rescaled_calibration_example_rejects_bad_arguments(argv, word, capsys):
    demo = load_example()
    with pytest.raises(SystemExit) as exc:
        demo.main(argv)
    assert exc.value.code == 2
    assert word in capsys.readouterr().err
