"""Mixup against label noise, through MixupModel (Zhang et al., Table 2).

With 50% of the training labels corrupted, plain training (ERM) memorizes
them: its last-epoch test error climbs far above its best. Input mixup
(α = 32, the paper's value) and manifold mixup keep it low.
"""

import importlib.util
import pathlib

import keras
import numpy as np
import pytest

import keras_mixup

ROOT = pathlib.Path(__file__).resolve().parents[1]
EPOCHS = 60


def demo():
    spec = importlib.util.spec_from_file_location("digits_mixup", ROOT / "examples" / "digits_mixup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifold_mlp(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(inputs)
    h = keras_mixup.layers.MixUp(alpha=32.0)(h)  # input site
    h = keras.layers.Dense(512, activation="relu")(h)
    h = keras_mixup.layers.MixUp(alpha=32.0)(h)  # hidden site
    h = keras.layers.Dense(512, activation="relu")(h)
    outputs = keras.layers.Dense(10)(h)
    return keras.Model(inputs, outputs)


def train_errors(model, data):
    x_train, y_train, x_test, y_test = data
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    hist = model.fit(x_train, y_train, batch_size=32, epochs=EPOCHS,
                     validation_data=(x_test, y_test), verbose=0).history
    err = 100 * (1 - np.array(hist["val_accuracy"]))
    return err.min(), err[-1]



@pytest.mark.slow
def test_mixup_resists_label_noise_on_digits():
    d = demo()
    data = d.load_data(label_noise=0.5, seed=0)
    erm_best, erm_last = train_errors(d.make_model(0), data)
    mix_best, mix_last = train_errors(
        keras_mixup.MixupModel(d.make_model(0), mixer=keras_mixup.layers.MixUp(alpha=32.0), seed=0), data)
    man_best, man_last = train_errors(keras_mixup.MixupModel(manifold_mlp(0), seed=0), data)
    print(f"ERM {erm_best:.1f}/{erm_last:.1f}  mixup {mix_best:.1f}/{mix_last:.1f}  "
          f"manifold {man_best:.1f}/{man_last:.1f}  (best/last test error, %)")
    assert erm_last - erm_best >= 15, "ERM memorizes the noisy labels"
    assert mix_last <= erm_last - 15, "input mixup's last error is far below ERM's"
    assert man_last <= erm_last - 15, "manifold mixup's last error is far below ERM's"
