"""Paper claims as commands: ``keras-mixup reproduce mixupe | manifold``.

- ``mixupe``: ERM / input mixup / MixupE on scikit-learn's digits (the UCI
  Optdigits test set, 1,797 8×8 images) and iris (150 flowers, 4
  features), next to the MixupE paper's UCI rows (Zou et al., UAI 2023).
  Protocol (ours; the paper's UCI protocol is not restated here): for each
  seed a stratified 70/30 split, features standardized on the training
  part, an MLP of two hidden layers (128 units, ReLU), SGD with momentum
  0.9 (learning rate 0.05, batch 32), α = 1, MixupE η = 1e-3 (fast mode);
  the test error of the last epoch, mean ± std over seeds.
- ``manifold``: ERM, input mixup, manifold mixup at each hidden site alone,
  at every site (one chosen per step), and at every site with the gradient
  blocked through the site on the steps it mixes (``stop_gradient=True``,
  the ablation of Verma et al., ICML 2019), on digits with a three-block
  MLP, α = 2; best and last test error, mean ± std over seeds.
"""

import time

import numpy as np

MIXUPE_PAPER = {  # test error %, ERM / mixup / MixupE (Zou et al., 2023)
    "digits": (1.48, 1.15, 1.33),
    "iris": (9.06, 8.14, 7.29),
}
MIXUPE_METHODS = ("erm", "mixup", "mixupe")
MANIFOLD_ROWS = (
    ("ERM", None, None, False),
    ("input mixup", (1, 0, 0), 1.0, False),
    ("manifold, site 1 only (after block 1)", (0, 1, 0), 2.0, False),
    ("manifold, site 2 only (after block 2)", (0, 0, 1), 2.0, False),
    ("manifold, all sites", (1, 1, 1), 2.0, False),
    ("manifold, all sites, gradient blocked at the site", (1, 1, 1), 2.0, True),
)


def _split(x, y, seed, test=0.3):
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


def _mlp(features, classes, seed, width=128, blocks=2, sites=None, stop_gradient=False, alpha=2.0):
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


def _train(model, data, epochs, batch_size=32, learning_rate=0.05, every=None):
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


def run_mixupe(datasets=("digits", "iris"), seeds=5, epochs=None, log=print):
    """``{dataset: {method: [last-epoch test error per seed]}}``."""
    import keras_mixup

    epochs = epochs or {"digits": 60, "iris": 200}
    out = {}
    for name in datasets:
        x, y = load_table(name)
        x = x.reshape(len(x), -1)
        classes = int(y.max()) + 1
        n_epochs = epochs[name] if isinstance(epochs, dict) else epochs
        out[name] = {m: [] for m in MIXUPE_METHODS}
        for seed in range(seeds):
            data = _split(x, y, seed)
            for method in MIXUPE_METHODS:
                t0 = time.time()
                plain = _mlp(x.shape[1], classes, seed)
                if method == "erm":
                    model = plain
                else:
                    model = keras_mixup.MixupModel(
                        plain, mixer=keras_mixup.layers.MixUp(alpha=1.0), seed=seed,
                        regularizer=keras_mixup.MixupE(eta=1e-3) if method == "mixupe" else None)
                error = float(_train(model, data, n_epochs)[-1])
                out[name][method].append(error)
                log(f"{name}, seed {seed}, {method}: {error:.2f}% ({time.time() - t0:.1f} s)")
    return out


def _seeds(n):
    return "1 seed" if n == 1 else f"{n} seeds"


def mixupe_table(results):
    lines = ["| data | ERM | mixup | MixupE | paper: ERM / mixup / MixupE |",
             "|---|---:|---:|---:|---|"]
    for name, by_method in results.items():
        cells = [f"{np.mean(v):.2f} ± {np.std(v):.2f}" for v in (by_method[m] for m in MIXUPE_METHODS)]
        paper = " / ".join(f"{v:.2f}" for v in MIXUPE_PAPER[name])
        label = "digits (UCI Optdigits test set)" if name == "digits" else "iris"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {paper} |")
    seeds = len(next(iter(results.values()))["erm"])
    lines += ["", f"Test error %, last epoch, mean ± std over {_seeds(seeds)} (each its own "
              "70/30 split); the paper's numbers are for its own protocol."]
    return "\n".join(lines)


def run_manifold(seeds=3, epochs=60, log=print):
    """``[(row name, [best per seed], [last per seed])]`` on digits."""
    import keras_mixup

    x, y = load_table("digits")
    x = x.reshape(len(x), -1)
    rows = []
    for name, weights, alpha, stop in MANIFOLD_ROWS:
        best, last = [], []
        for seed in range(seeds):
            t0 = time.time()
            data = _split(x, y, seed)
            if weights is None:
                model = _mlp(x.shape[1], 10, seed, blocks=3)
            else:
                plain = _mlp(x.shape[1], 10, seed, blocks=3, sites=weights, alpha=alpha,
                             stop_gradient=stop)
                model = keras_mixup.MixupModel(plain, site_weights=weights, seed=seed)
            errors = _train(model, data, epochs, every=5)
            best.append(float(errors.min()))
            last.append(float(errors[-1]))
            log(f"{name}, seed {seed}: best {best[-1]:.2f}%, last {last[-1]:.2f}% "
                f"({time.time() - t0:.1f} s)")
        rows.append((name, best, last))
    return rows


def manifold_table(rows):
    lines = ["| method | best test error % (every 5 epochs) | last test error % |",
             "|---|---:|---:|"]
    for name, best, last in rows:
        lines.append(f"| {name} | {np.mean(best):.2f} ± {np.std(best):.2f} "
                     f"| {np.mean(last):.2f} ± {np.std(last):.2f} |")
    lines += ["", f"digits, three-block MLP (128 units), SGD, α = 2 at hidden sites (1 at "
              f"the input), mean ± std over {_seeds(len(rows[0][1]))}. Verma et al. (2019): "
              "mixing at the input and after the first stages works best; deeper sites do "
              "not help."]
    return "\n".join(lines)
