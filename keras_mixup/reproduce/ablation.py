"""``keras-mixup reproduce ablation``: the mixup paper's ablation table.

Zhang et al. (ICLR 2018, §3.8) ask which parts of mixup matter, on
CIFAR-10 with a PreAct ResNet-18 at two weight decays: plain mixup (all
classes, random pairs: "AC + RP") against pairs of nearest neighbours
("KNN") or of the same class ("SC"), mixing hidden features of layer k,
mixing the inputs only (labels stay each example's own), label smoothing,
label smoothing on mixed inputs, and Gaussian input noise. We add the
three-way (Dirichlet) row of this library.

Here every row trains the same small CNN (three blocks of 3×3 convolution,
16/32/64 channels, ReLU and 2×2 max-pooling; one dense layer) with SGD
(learning rate 0.05, momentum 0.9, batch 64), α = 1, on a subset of
Fashion-MNIST (or scikit-learn's digits), once per weight decay. Weight
decay is an L2 penalty ``wd/2·||w||²`` on every kernel, which is what
PyTorch's SGD ``weight_decay=wd`` (the paper's) adds to the gradient.
Every mixing runs at a `keras_mixup.MixupModel` site (the input, or after
block k); KNN draws the partner among the 5 nearest examples of the batch
(the paper: k = 200 in the training set). Label smoothing is the loss's
``label_smoothing``; Gaussian noise is ``keras.layers.GaussianNoise`` on
inputs in [0, 1]. The score is the test error after the last epoch,
mean ± std over seeds.
"""

import time

import numpy as np

WEIGHT_DECAYS = (1e-4, 5e-4)
NEIGHBORS = 5
# key: (row label, paper's CIFAR-10 test error % at weight decay 1e-4 or
# None, spec). spec: "mix" = MixUp arguments (None: no mixing), "site" = 0
# for the input or k for after block k, "smoothing" = label smoothing ε,
# "noise" = Gaussian input noise σ. The paper's numbers are the ones in the
# project's reference notes (REFERENCE.md): the inputs-only and label
# smoothing rows are known there only as ranges over their rows.
ROWS = {
    "erm": ("ERM", "5.53", {}),
    "mixup": ("mixup, AC + RP", "4.24", {"mix": {"pairing": "permutation"}}),
    "mixup-knn": ("mixup, AC + KNN", None,
                  {"mix": {"pairing": "nearest", "neighbors": NEIGHBORS}}),
    "layer1": ("mixup of layer-1 features, AC + RP", "4.44",
               {"mix": {"pairing": "permutation"}, "site": 1}),
    "layer2": ("mixup of layer-2 features, AC + RP", None,
               {"mix": {"pairing": "permutation"}, "site": 2}),
    "layer3": ("mixup of layer-3 features, AC + RP", None,
               {"mix": {"pairing": "permutation"}, "site": 3}),
    "inputs-sc-knn": ("mix inputs only, SC + KNN", "5.17–5.45 (4 rows)",
                      {"mix": {"pairing": "nearest_same_class", "neighbors": NEIGHBORS,
                               "mix": "inputs"}}),
    "inputs-ac-knn": ("mix inputs only, AC + KNN", "5.17–5.45 (4 rows)",
                      {"mix": {"pairing": "nearest", "neighbors": NEIGHBORS, "mix": "inputs"}}),
    "inputs-sc-rp": ("mix inputs only, SC + RP", "5.17–5.45 (4 rows)",
                     {"mix": {"pairing": "same_class", "mix": "inputs"}}),
    "inputs-ac-rp": ("mix inputs only, AC + RP", "5.17–5.45 (4 rows)",
                     {"mix": {"pairing": "permutation", "mix": "inputs"}}),
    "ls-0.05": ("label smoothing, ε = 0.05", "5.25–5.34 (3 rows)", {"smoothing": 0.05}),
    "ls-0.1": ("label smoothing, ε = 0.1", "5.25–5.34 (3 rows)", {"smoothing": 0.1}),
    "ls-0.2": ("label smoothing, ε = 0.2", "5.25–5.34 (3 rows)", {"smoothing": 0.2}),
    "inputs+ls-0.05": ("mix inputs + label smoothing, ε = 0.05", None,
                       {"mix": {"pairing": "permutation", "mix": "inputs"}, "smoothing": 0.05}),
    "inputs+ls-0.1": ("mix inputs + label smoothing, ε = 0.1", None,
                      {"mix": {"pairing": "permutation", "mix": "inputs"}, "smoothing": 0.1}),
    "noise-0.05": ("Gaussian input noise, σ = 0.05", None, {"noise": 0.05}),
    "noise-0.1": ("Gaussian input noise, σ = 0.1", None, {"noise": 0.1}),
    "noise-0.2": ("Gaussian input noise, σ = 0.2", None, {"noise": 0.2}),
    "3-way": ("3-way mixup (Dirichlet), AC + RP", None,
              {"mix": {"pairing": "permutation", "ways": 3}}),
}
WIDTHS = (16, 32, 64)


def load_images(data="fashion_mnist", seed=0, train_size=None, test_size=None, warn=print):
    """``(name, x_train, y_train, x_test, y_test)``: images in [0, 1],
    ``(N, H, W, 1)``; Fashion-MNIST falls back to digits (with a note
    through ``warn``) when the Debian package is not installed."""
    from keras_mixup.demo_data import DataUnavailable, load_data

    try:
        d = load_data(data, seed=seed)
    except DataUnavailable as error:
        if data != "fashion_mnist":
            raise
        warn(f"{error} Using digits instead.")
        d = load_data("digits", seed=seed)
    x_train, y_train = d.x_train[:train_size], d.y_train[:train_size]
    x_test, y_test = d.x_test[:test_size], d.y_test[:test_size]
    return d.name, x_train, y_train, x_test, y_test


def cnn(shape, classes, seed, weight_decay, spec):
    """The row's model: a `MixupModel` when the row mixes, else the plain
    CNN (with the row's input noise)."""
    import keras

    import keras_mixup

    keras.utils.set_random_seed(seed)
    site = spec.get("site", 0) if spec.get("mix") is not None else None

    def mixer(h, at):
        if site != at:
            return h
        return keras_mixup.layers.MixUp(alpha=1.0, seed=seed, **spec["mix"])(h)

    inputs = keras.Input(shape)
    h = inputs
    if spec.get("noise"):
        h = keras.layers.GaussianNoise(spec["noise"], seed=seed)(h)
    h = mixer(h, 0)
    size = min(shape[0], shape[1])
    for k, width in enumerate(WIDTHS, start=1):
        h = keras.layers.Conv2D(width, 3, padding="same", activation="relu",
                                kernel_regularizer=keras.regularizers.L2(weight_decay / 2))(h)
        if size >= 2:
            h = keras.layers.MaxPooling2D(2)(h)
            size //= 2
        h = mixer(h, k)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(classes,
                                 kernel_regularizer=keras.regularizers.L2(weight_decay / 2))(h)
    model = keras.Model(inputs, outputs)
    return model if site is None else keras_mixup.MixupModel(model, seed=seed)


def fit_row(spec, x_train, y_train, seed, weight_decay, epochs, batch_size=64):
    """Trains the row's model; returns the plain network."""
    import keras

    classes = 10
    model = cnn(x_train.shape[1:], classes, seed, weight_decay, spec)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=spec.get("smoothing", 0.0)),
    )
    one_hot = np.eye(classes, dtype="float32")
    model.fit(x_train, one_hot[y_train], batch_size=batch_size, epochs=epochs, verbose=0)
    return getattr(model, "model", model)


def train_row(spec, data, seed, weight_decay, epochs):
    """Test error (%) after the last epoch."""
    import keras

    x_train, y_train, x_test, y_test = data
    plain = fit_row(spec, x_train, y_train, seed, weight_decay, epochs)
    logits = keras.ops.convert_to_numpy(plain(x_test, training=False))
    return 100.0 * float(np.mean(np.argmax(logits, -1) != y_test))


def run_ablation(rows=None, data="fashion_mnist", seeds=2, epochs=15,
                 weight_decays=WEIGHT_DECAYS, train_size=4000, test_size=2000, log=print):
    """``{"data": name, "results": {row: {weight decay: [error % per seed]}}}``.

    Each seed has its own subset of the data; every row of a seed trains
    on the same one.
    """
    rows = list(ROWS) if rows is None else list(rows)
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ValueError(f"unknown ablation rows {unknown}; choose from {', '.join(ROWS)}")
    results = {r: {wd: [] for wd in weight_decays} for r in rows}
    name = data
    for seed in range(seeds):
        name, *arrays = load_images(data, seed, train_size, test_size, warn=log)
        for row in rows:
            for wd in weight_decays:
                t0 = time.time()
                error = train_row(ROWS[row][2], arrays, seed, wd, epochs)
                results[row][wd].append(error)
                log(f"seed {seed}, {row}, weight decay {decay_text(wd)}: {error:.2f}% "
                    f"({time.time() - t0:.1f} s)")
    return {"data": name, "results": results}


def decay_text(wd):
    """``1e-4`` for 0.0001."""
    return f"{wd:.0e}".replace("e-0", "e-")


def ablation_table(outcome):
    from keras_mixup.reproduce.common import seeds_text

    results = outcome["results"]
    decays = list(next(iter(results.values())))
    lines = ["| method | " + " | ".join(f"ours, wd {decay_text(wd)}" for wd in decays)
             + " | paper (CIFAR-10, wd 1e-4) |",
             "|---|" + "---:|" * len(decays) + "---|"]
    seeds = 0
    for row, by_decay in results.items():
        label, paper, _ = ROWS[row]
        cells = []
        for wd in decays:
            errors = by_decay[wd]
            seeds = len(errors)
            cells.append(f"{np.mean(errors):.2f} ± {np.std(errors):.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {paper or '—'} |")
    lines += ["", f"Test error % after the last epoch, mean ± std over {seeds_text(seeds)}, "
              f"on {outcome['data']}. The paper's column holds the numbers in our reference "
              "notes (Zhang et al., 2018, §3.8; '—': not recorded there)."]
    return "\n".join(lines)
