"""What the ``keras-mixup reproduce`` experiments share: data splits,
small models and the training loop that records test errors."""

import numpy as np


def split(x, y, seed, test=0.3):
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test, random_state=seed, stratify=y)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    return ((x_train - mean) / std).astype("float32"), y_train.astype("int32"), \
        ((x_test - mean) / std).astype("float32"), y_test.astype("int32")


def load_table(name):
    """``(x, y)`` of scikit-learn's ``digits`` or ``iris``."""
    from sklearn import datasets

    loader = {"digits": datasets.load_digits, "iris": datasets.load_iris}[name]
    x, y = loader(return_X_y=True)
    return x.astype("float32"), y.astype("int32")


def mlp(features, classes, seed, width=128, blocks=2, sites=None, stop_gradient=False, alpha=2.0):
    import keras

    import keras_mixup

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((features,))
    h = inputs
    for k in range(blocks + 1):
        if sites is not None and k < len(sites):
            h = keras_mixup.layers.MixUp(alpha=alpha, stop_gradient=stop_gradient)(h)
        if k < blocks:
            h = keras.layers.Dense(width, activation="relu")(h)
    return keras.Model(inputs, keras.layers.Dense(classes)(h))


def train(model, data, epochs, batch_size=32, learning_rate=0.05, every=None):
    """Test errors (%): after every ``every`` epochs (and the last), or
    only after the last when ``every`` is None."""
    import keras

    x_train, y_train, x_test, y_test = data
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    plain = getattr(model, "model", model)

    def error():
        logits = keras.ops.convert_to_numpy(plain(x_test, training=False))
        return 100.0 * float(np.mean(np.argmax(logits, -1) != y_test))

    errors, done = [], 0
    for stop in ([epochs] if every is None else list(range(every, epochs, every)) + [epochs]):
        model.fit(x_train, y_train, batch_size=batch_size, epochs=stop,
                  initial_epoch=done, verbose=0)
        done = stop
        errors.append(error())
    return np.asarray(errors)


def seeds_text(n):
    return "1 seed" if n == 1 else f"{n} seeds"
