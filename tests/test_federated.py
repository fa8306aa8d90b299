"""NaiveMix and FedMix (`keras_mixup.FedMixModel`) and the federated helpers.

Runs on every backend. The FedMix loss is checked against what it
approximates: global mixup with the examples behind an average, whose gap
must shrink like λ² (a missing or wrong gradient term leaves a gap of order
λ)."""

import keras
import numpy as np
import pytest

import keras_mixup
from keras_mixup import federated


def _net(seed=0, features=5, classes=3):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((features,)),
                             keras.layers.Dense(16, activation="tanh"),
                             keras.layers.Dense(classes)])


def _data(n=8, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype("float32"), rng.integers(0, classes, n)


def _ce(net, x, y_soft):
    return keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(
        y_soft, net(x), from_logits=True))


def _loss(model, x, y):
    y_pred = model(x, training=True)
    return float(keras.ops.convert_to_numpy(model.compute_loss(x, y, y_pred, training=True)))


def test_fedmix_loss_approximates_global_mixup_to_second_order():
    net = _net()
    x, y = _data()
    group, group_y = _data(4, seed=1)  # the examples behind the one pooled average
    pool = federated.mean_batches(group, group_y, mash_size=4, num_classes=3)
    one_hot, group_hot = np.eye(3)[y], np.eye(3)[group_y]
    gaps = []
    for lam in (0.02, 0.04):
        model = keras_mixup.FedMixModel(net, pool, lam=lam, seed=0)
        exact = np.mean([_ce(net, (1 - lam) * x + lam * group[j],
                             (1 - lam) * one_hot + lam * group_hot[j]) for j in range(4)])
        gaps.append(abs(_loss(model, x, y) - exact))
        # NaiveMix: exactly the cross-entropy of the mix with the average.
        naive = keras_mixup.FedMixModel(net, pool, lam=lam, method="naivemix", seed=0)
        mixed = (1 - lam) * x + lam * pool[0][0]
        want = _ce(net, mixed, (1 - lam) * one_hot + lam * pool[1][0]).mean()
        assert _loss(naive, x, y) == pytest.approx(want, rel=1e-5)
    # Second order: doubling λ multiplies the gap by about 4 (2 if first order).
    assert 2.8 < gaps[1] / gaps[0] < 5.5, gaps
    assert gaps[0] < 5e-3


def test_mean_batches_split_and_fedavg():
    x = np.arange(12, dtype="float32").reshape(6, 2)
    y = np.array([0, 1, 1, 2, 2, 2])
    x_bar, y_bar = federated.mean_batches(x, y, mash_size=1, num_classes=3, seed=3)
    order = [int(r[0]) // 2 for r in x_bar]  # mash_size 1: a permutation of the examples
    assert sorted(order) == list(range(6)) and np.allclose(y_bar, np.eye(3)[y[order]])
    x_bar, y_bar = federated.mean_batches(x, y, mash_size=6, num_classes=3)
    assert np.allclose(x_bar, x.mean(0, keepdims=True)) and np.allclose(y_bar, [[1 / 6, 2 / 6, 3 / 6]])
    assert federated.mean_batches(x, y, mash_size=4, num_classes=3)[0].shape == (1, 2)
    labels = np.repeat(np.arange(10), 30)
    parts = federated.split_by_class(labels, clients=10, classes_per_client=2, seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(300))
    assert max(len(set(labels[p])) for p in parts) <= 2
    w = federated.fedavg([[np.ones(2), np.zeros(1)], [np.zeros(2), np.ones(1)]], [3, 1])
    assert np.allclose(w[0], 0.75) and np.allclose(w[1], 0.25)


def test_fit_changes_weights_and_round_trips(tmp_path):
    x, y = _data(32)
    pool = federated.mean_batches(x, y, mash_size=4, num_classes=3)
    model = keras_mixup.FedMixModel(_net(), pool, lam=0.2, seed=1)
    model.compile(keras.optimizers.SGD(0.1))
    before = model.model.get_weights()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.step)) == 4
    assert any(not np.allclose(a, b) for a, b in zip(before, model.model.get_weights()))
    path = str(tmp_path / "fedmix.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, keras_mixup.FedMixModel) and loaded.method == "fedmix"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.x_bar), pool[0], rtol=1e-6)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.tensorflow_only  # the loop is plain Keras; fit on JAX is tested above
def test_run_federated_tiny():
    x, y = _data(120, features=5, classes=3, seed=2)
    data = (x[:90], y[:90], x[90:], y[90:])
    for method in ("fedavg", "naivemix"):
        accuracy = federated.run_federated(data, method, clients=3, classes_per_client=1,
                                           rounds=2, batch_size=16, mash_size=5, seed=0)
        assert len(accuracy) == 2 and all(0 <= a <= 100 for a in accuracy)


def test_bad_inputs():
    x, y = _data()
    pool = federated.mean_batches(x, y, mash_size=4, num_classes=3)
    with pytest.raises(ValueError, match="no data"):
        federated.mean_batches(x[:0], y[:0], mash_size=4, num_classes=3)
    with pytest.raises(ValueError, match="one label per example"):
        federated.mean_batches(x, y[:3], mash_size=4, num_classes=3)
    with pytest.raises(ValueError, match="mash_size"):
        federated.mean_batches(x, y, mash_size=0, num_classes=3)
    with pytest.raises(ValueError, match="model takes"):
        keras_mixup.FedMixModel(_net(features=4), pool)
    with pytest.raises(ValueError, match="classes"):
        keras_mixup.FedMixModel(_net(classes=4), pool)
    with pytest.raises(ValueError, match="same number"):
        keras_mixup.FedMixModel(_net(), (pool[0], pool[1][:1]))
    with pytest.raises(ValueError, match="lam"):
        keras_mixup.FedMixModel(_net(), pool, lam=1.0)
    with pytest.raises(ValueError, match="method"):
        keras_mixup.FedMixModel(_net(), pool, method="mixup")
    with pytest.raises(TypeError, match="Keras model"):
        keras_mixup.FedMixModel(lambda t: t, pool)
    model = keras_mixup.FedMixModel(_net(), pool)
    with pytest.raises(ValueError, match="differ"):
        model.set_averages(pool[0][:1], pool[1][:1])
    with pytest.raises(ValueError, match="clients"):
        federated.split_by_class(np.arange(5), clients=3, classes_per_client=2)
    with pytest.raises(ValueError, match="method"):
        federated.run_federated((x, y, x, y), "fedprox")
