"""keras_mixup.ICTModel: the consistency target is the teacher's mix, the
teacher is the EMA, the ramp-up, saving, errors; on every backend."""

import keras
import numpy as np
import pytest

import keras_mixup


def student(seed=0, hidden=16):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dense(3)])


def data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 6), "float32"), rng.random((n, 6), "float32")), np.arange(n) % 3


def test_trains_logs_and_keeps_an_ema_teacher():
    model = keras_mixup.ICTModel(student(), rampup_steps=4, ema_decay=0.5, seed=1)
    model.compile(keras.optimizers.SGD(0.1))
    x, y = data()
    before = [w.copy() for w in model.student.get_weights()]
    logs = model.fit(x, y, batch_size=8, epochs=3, verbose=0).history
    assert np.isfinite(logs["loss"]).all() and logs["consistency_weight"][-1] > 0
    assert int(keras.ops.convert_to_numpy(model.step.value)) == 6
    s, t = model.student.get_weights(), model.teacher.get_weights()
    # The teacher lies between where the student started and where it is
    # (an average of its past weights), and is neither.
    assert not np.allclose(s[0], t[0]) and not np.allclose(before[0], t[0])
    assert np.abs(t[0] - s[0]).max() <= np.abs(before[0] - s[0]).max() + 1e-6
    # evaluate / predict take plain inputs and use the student.
    assert np.allclose(model.predict(x[0], verbose=0), model.student.predict(x[0], verbose=0))
    assert np.isfinite(model.evaluate(x[0], y, verbose=0, return_dict=True)["loss"])


def test_the_consistency_loss_is_the_teachers_mix():
    """With the student equal to the teacher and λ fixed by the seed, the
    loss on a linear (softmax-free) identity student is computable: check
    that it grows with the consistency weight and is 0 when the student is
    linear in its inputs with from_logits=False."""
    # A linear student returning 'probabilities' p(x) = W x: then
    # p(λu + (1−λ)u') = λp(u) + (1−λ)p(u'): zero consistency loss.
    inputs = keras.Input((6,))
    linear = keras.Model(inputs, keras.layers.Dense(3, use_bias=False)(inputs))
    model = keras_mixup.ICTModel(linear, rampup_steps=0, from_logits=False, seed=0)
    model.compile(keras.optimizers.SGD(0.0), loss="mse")
    x, y = data()
    logs = model.fit(x, np.eye(3)[y], batch_size=16, epochs=1, verbose=0).history
    assert logs["consistency"][-1] == pytest.approx(0.0, abs=1e-10)
    # A nonlinear student is not linear between points: a positive loss,
    # and the logged loss is exactly supervised + w·consistency (a large w
    # makes the two terms differ, so a loss logged twice would show).
    model = keras_mixup.ICTModel(student(), rampup_steps=0, max_weight=1000.0, seed=0)
    model.compile(keras.optimizers.SGD(0.0))
    logs = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert logs["consistency"][-1] > 0
    total = logs["supervised"][-1] + 1000.0 * logs["consistency"][-1]
    assert total > 1.05 * logs["supervised"][-1]
    assert logs["loss"][-1] == pytest.approx(total, rel=1e-5)


def test_rampup():
    model = keras_mixup.ICTModel(student(), max_weight=10.0, rampup_steps=100)
    w = [float(keras.ops.convert_to_numpy(model.consistency_weight(s))) for s in (0, 50, 100, 200)]
    assert w == pytest.approx([10 * np.exp(-5), 10 * np.exp(-1.25), 10.0, 10.0], rel=1e-5)


def test_saves_and_loads(tmp_path):
    model = keras_mixup.ICTModel(student(), alpha=0.5, rampup_steps=3, seed=2)
    model.compile("adam")
    x, y = data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "ict.keras")
    again = keras.saving.load_model(tmp_path / "ict.keras")
    assert isinstance(again, keras_mixup.ICTModel) and again.alpha == 0.5
    assert np.allclose(again.predict(x[0], verbose=0), model.predict(x[0], verbose=0), atol=1e-6)
    for a, b in zip(again.teacher.get_weights(), model.teacher.get_weights()):
        assert np.allclose(a, b)


def test_bad_arguments():
    with pytest.raises(TypeError, match="student"):
        keras_mixup.ICTModel("not a model")
    with pytest.raises(ValueError, match="ema_decay"):
        keras_mixup.ICTModel(student(), ema_decay=1.0)
    with pytest.raises(ValueError, match="rampup_steps"):
        keras_mixup.ICTModel(student(), rampup_steps=-1)
    with pytest.raises(ValueError, match="alpha"):
        keras_mixup.ICTModel(student(), alpha=0.0)
