"""AdaMixup (`keras_mixup.AdaMixupModel`) and `collision_rate`; every backend."""

import keras
import numpy as np
import pytest

import keras_mixup
from keras_mixup.adamixup import collision_rate


def _net(features=4, classes=3, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((features,)), keras.layers.Dense(8, activation="tanh"),
                             keras.layers.Dense(classes)])


def _data(n=32, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype("float32"), rng.integers(0, classes, n)


def np_(t):
    return keras.ops.convert_to_numpy(t)


def test_sample_mix_draws_lambda_in_the_policy_interval():
    x, _ = _data(64)
    model = keras_mixup.AdaMixupModel(_net(), seed=0)
    mixed, lam, index, low, width = (np_(t) for t in model.sample_mix(
        x, keras_mixup.ops.as_seed(3)))
    assert sorted(index.tolist()) == list(range(64))
    assert np.all(lam >= low - 1e-6) and np.all(lam <= low + width + 1e-6)
    assert np.all(low >= 0) and np.all(low + width <= 1 + 1e-6)
    np.testing.assert_allclose(mixed, lam[:, None] * x + (1 - lam[:, None]) * x[index],
                               rtol=1e-5, atol=1e-6)
    # λ is uniform within its interval: its position there is U(0, 1).
    position = (lam - low) / width
    assert 0.35 < position.mean() < 0.65  # mean 0.5, std 0.29/√64 = 0.036


def test_loss_is_the_sum_of_its_terms_and_the_policy_learns_from_intrusion_only():
    x, y = _data()
    for weight in (0.0, 1.0):
        model = keras_mixup.AdaMixupModel(_net(), intrusion_weight=weight, seed=1)
        model.compile(keras.optimizers.SGD(0.5))
        policy = [np_(w) for w in model.policy.trainable_weights]
        net = [np_(w) for w in model.model.trainable_weights]
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        logs = {m.name: float(np_(m.result())) for m in model.metrics
                if m.name in ("loss", "original_loss", "mixup_loss", "intrusion_loss")}
        assert logs["loss"] == pytest.approx(
            logs["original_loss"] + logs["mixup_loss"] + weight * logs["intrusion_loss"], rel=1e-5)
        moved = [not np.allclose(a, np_(b)) for a, b in zip(policy, model.policy.trainable_weights)]
        assert any(moved) == (weight > 0)  # no gradient reaches the policy from the classifier
        assert any(not np.allclose(a, np_(b)) for a, b in zip(net, model.model.trainable_weights))


@pytest.mark.tensorflow_only  # config and weights are backend-neutral; JAX fits above
def test_fit_logs_and_round_trips(tmp_path):
    x, y = _data()
    model = keras_mixup.AdaMixupModel(_net(), seed=2)
    model.compile("adam", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert {"intrusion_loss", "lam_low", "lam_width", "mixup_loss"} <= set(history.history)
    assert int(np_(model.step)) == 4
    path = str(tmp_path / "ada.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, keras_mixup.AdaMixupModel)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    seed = keras_mixup.ops.as_seed(0)
    np.testing.assert_allclose(np_(loaded.sample_mix(x, seed)[1]), np_(model.sample_mix(x, seed)[1]),
                               rtol=1e-5)


def test_collision_rate_on_planted_points():
    x_real = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 0.0], [5.0, 9.0], [0.0, 1.0], [10.0, 1.0]])
    y_real = np.array([0, 1, 2, 0, 0, 1])
    sources = np.array([[0, 1], [0, 1], [4, 5]])
    # Nearest-neighbour distances of the real points: 1, 1, 5, 9, 1, 1; their
    # 90th percentile (the default radius) is 7.
    mixed = np.array([[5.0, 0.2],    # on the class-2 example, between classes 0 and 1
                      [5.0, 3.0],    # 3 from the class-2 example: within 7, not within 2
                      [0.0, 0.1]])   # next to a class-0 example: not a third class
    assert collision_rate(x_real, y_real, mixed, sources) == pytest.approx(2 / 3)
    assert collision_rate(x_real, y_real, mixed, sources, radius=2.0) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="sources"):
        collision_rate(x_real, y_real, mixed, sources[:, :1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="3 score"):
        keras_mixup.AdaMixupModel(_net(), policy=_net(features=8, classes=2))
    with pytest.raises(ValueError, match="policy"):
        keras_mixup.AdaMixupModel(_net(), policy=_net(features=5, classes=3))
    with pytest.raises(ValueError, match="1 score"):
        keras_mixup.AdaMixupModel(_net(), discriminator=_net(classes=2))
    with pytest.raises(ValueError, match="intrusion_weight"):
        keras_mixup.AdaMixupModel(_net(), intrusion_weight=-1)
    with pytest.raises(TypeError, match="Keras model"):
        keras_mixup.AdaMixupModel(lambda t: t)
    with pytest.raises(ValueError, match="known shape"):
        keras_mixup.AdaMixupModel(keras.Sequential([keras.layers.Dense(3)]))
