"""The experiments behind ``keras-mixup demo`` and ``keras-mixup reproduce``.

A short tour of the library on data that works offline:

- ``run_demo`` trains one small model five ways — ERM, input mixup, CutMix,
  manifold mixup and MixupE, each through `keras_mixup.MixupModel` — and
  reports best / last test error, calibration (ECE) and the rescaled
  prediction of Carratino et al.; it saves learning curves, a reliability
  diagram and a grid of mixed samples as PNG.
- ``reproduce_label_noise`` is the label-corruption experiment of Zhang et
  al. (ICLR 2018, Table 2) at small scale on sklearn's digits.

Only the public API of ``keras_mixup`` is used. The datasets come from
`keras_mixup.demo_data` (re-exported here: ``load_data``, ``Data``,
``DataUnavailable``, ``UnsuitableData``...).
"""

import os
import sys
import time

import keras
import numpy as np

import keras_mixup
from keras_mixup.demo_data import (  # noqa: F401 (the demo's data API)
    DATASETS,
    FASHION_MNIST_DIR,
    LARGE_TEST,
    LARGE_TRAIN,
    NUM_CLASSES,
    Data,
    DataUnavailable,
    UnsuitableData,
    corrupt_labels,
    load_data,
)
from keras_mixup_cli import plural

METHODS = ("erm", "mixup", "cutmix", "manifold", "mixupe")
METHOD_NAMES = {
    "erm": "ERM",
    "mixup": "input mixup",
    "cutmix": "CutMix",
    "manifold": "manifold mixup",
    "mixupe": "MixupE",
}
# Methods that interpolate inputs (MixUp sites): rescaled prediction applies.
# CutMix copies pixels instead, so there is no shrinkage θ̄ to undo.
RESCALABLE = ("mixup", "manifold", "mixupe")
DEFAULT_EPOCHS = {"digits": 50}  # 15 for the other datasets

# The mixing layers compile their sampling and mixing with XLA by default,
# which pays off on real image batches; on these tiny inputs the compile
# time (seconds per model on CPU) outweighs it, so the demo turns it off
# (`jit_compile=XLA`).
XLA = False

# Zhang et al., Table 2: CIFAR-10 test error (%), best / last epoch.
PAPER_LABEL_NOISE = {
    0.2: {"erm": (12.7, 16.6), "mixup": (5.9, 6.4), "alpha": 8.0},
    0.5: {"erm": (18.8, 44.6), "mixup": (11.3, 12.7), "alpha": 32.0},
    0.8: {"erm": (36.5, 73.9), "mixup": (25.3, 30.9), "alpha": 32.0},
}


def default_alpha(label_noise):
    """Mixup's α: Zhang et al.'s choice under label noise — 8 for up to 35%
    corrupted labels (they used it at 20%), 32 above (50%, 80%) — and α = 1
    (θ̄ = 0.75) for clean labels."""
    if label_noise == 0:
        return 1.0
    return 8.0 if label_noise <= 0.35 else 32.0


# ---------------------------------------------------------------- models


def make_mlp(input_shape, seed, width=512, manifold_alpha=None, num_classes=NUM_CLASSES):
    """A two-hidden-layer MLP; with ``manifold_alpha``, it holds two
    manifold mixup sites: the input and the output of the first block."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    h = inputs
    if manifold_alpha:
        # A mixing layer called without labels is a *site*: MixupModel picks
        # one site per step, mixes the batch there, and mixes the labels.
        h = keras_mixup.layers.MixUp(alpha=manifold_alpha, jit_compile=XLA)(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(width, activation="relu")(h)
    if manifold_alpha:
        h = keras_mixup.layers.MixUp(alpha=manifold_alpha, jit_compile=XLA)(h)
    h = keras.layers.Dense(width, activation="relu")(h)
    outputs = keras.layers.Dense(num_classes)(h)  # logits
    return keras.Model(inputs, outputs)


def make_method(method, input_shape, alpha, seed, num_classes=NUM_CLASSES):
    """``(model_to_fit, plain_model)`` for one method.

    Every mixup-family method is the same plain model wrapped in a
    `MixupModel`; ``plain_model`` is what ``predict`` and export see.
    """
    layers = keras_mixup.layers
    if method == "manifold":
        plain = make_mlp(input_shape, seed, manifold_alpha=alpha, num_classes=num_classes)
        return keras_mixup.MixupModel(plain, seed=seed), plain
    plain = make_mlp(input_shape, seed, num_classes=num_classes)
    if method == "erm":
        return plain, plain
    if method == "mixup":
        mixer = layers.MixUp(alpha=alpha, jit_compile=XLA)
        return keras_mixup.MixupModel(plain, mixer=mixer, seed=seed), plain
    if method == "cutmix":
        mixer = layers.CutMix(alpha=1.0, jit_compile=XLA)  # box side ∝ √(1 − λ), λ ~ U(0, 1)
        return keras_mixup.MixupModel(plain, mixer=mixer, seed=seed), plain
    if method == "mixupe":
        # Input mixup plus the first-order term of its implicit regularizer.
        return keras_mixup.MixupModel(
            plain, mixer=layers.MixUp(alpha=alpha, jit_compile=XLA),
            regularizer=keras_mixup.MixupE(mode="fast"), seed=seed,
        ), plain
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def compile_for_training(model, learning_rate=0.05):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        # Integer labels: MixupModel interpolates the loss,
        # λ·CE(y, ŷ) + (1 − λ)·CE(y[π], ŷ), without one-hot tensors.
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


class EpochProgress(keras.callbacks.Callback):
    """One Keras progress bar per run, advanced once per epoch.

    Shows the training loss and the test error; on a terminal the bar
    updates in place, in a log file it is one line per run.
    """

    def __init__(self, epochs, label):
        super().__init__()
        self.epochs, self.label = epochs, label

    def on_train_begin(self, logs=None):
        print(self.label)
        verbose = 1 if sys.stdout.isatty() else 2
        self.bar = keras.utils.Progbar(self.epochs, verbose=verbose, unit_name="epoch",
                                       stateful_metrics=["loss", "test error %"])

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        values = [("loss", logs.get("loss", np.nan))]
        if "val_accuracy" in logs:
            values.append(("test error %", 100.0 * (1.0 - logs["val_accuracy"])))
        self.bar.update(epoch + 1, values)


def fit(model, data, epochs, batch_size, callbacks=(), label=None):
    """Trains on ``data`` and returns the test error (%) after each epoch;
    with a ``label``, shows a progress bar."""
    progress = [] if label is None else [EpochProgress(epochs, label)]
    history = model.fit(
        data.x_train, data.y_train,
        batch_size=batch_size, epochs=epochs,
        validation_data=(data.x_test, data.y_test), validation_batch_size=512,
        callbacks=[*progress, *callbacks], verbose=0,
    ).history
    return 100.0 * (1.0 - np.asarray(history["val_accuracy"]))


def predict_probs(model, x):
    """Class probabilities of a model that returns logits (or log-probs)."""
    # A direct call in inference mode: no predict() function to trace per model.
    logits = keras.ops.convert_to_numpy(model(x, training=False)).astype("float64")
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------ demo


def run_demo(data_name="digits", methods=METHODS, epochs=None, label_noise=0.0,
             alpha=None, seed=0, out="keras_mixup_demo", batch_size=64, warn=None):
    """Trains each method, prints a Markdown table and writes three PNGs.

    Returns a list of row dicts (method, best, last, ece, ece_rescaled,
    error_rescaled; errors and ECE in %, None where rescaling does not
    apply) and a dict of the PNG paths.
    """
    start = time.time()
    # The folder first: a bad --out fails now, not after the training.
    os.makedirs(out, exist_ok=True)
    data = load_data(data_name, label_noise, seed, warn)
    epochs = epochs or DEFAULT_EPOCHS.get(data.name, 15)
    alpha = alpha or default_alpha(label_noise)
    print(f"{data.name}: {len(data.x_train)} train / {len(data.x_test)} test images "
          f"{data.x_train.shape[1:]}, {data.num_classes} classes, {label_noise:.0%} of "
          f"training labels corrupted; MLP, SGD, {plural(epochs, 'epoch')}, batch "
          f"{batch_size}, mixup α = {alpha:g} (θ̄ = {keras_mixup.ops.theta_bar(alpha):.3f})")
    rows, curves, calibration = [], {}, {}
    for method in methods:
        model, plain = make_method(method, data.x_train.shape[1:], alpha, seed,
                                   data.num_classes)
        compile_for_training(model)
        callbacks = []
        if method in RESCALABLE:
            # Rescaled prediction (Carratino et al.): reads θ̄ from the MixUp
            # site(s), the means from the un-mixed training data, and builds
            # `rescale.rescaled_model`, which shares the plain model's weights.
            rescale = keras_mixup.callbacks.RescaledPrediction((data.x_train, data.y_train))
            callbacks.append(rescale)
        errors = fit(model, data, epochs, batch_size, callbacks, METHOD_NAMES[method])
        curves[method] = errors
        probs = predict_probs(plain, data.x_test)
        row = {"method": method, "best": errors.min(), "last": errors[-1],
               "ece": 100 * keras_mixup.metrics.calibration_bins(data.y_test, probs)["ece"],
               "ece_rescaled": None, "error_rescaled": None}
        calibration[method] = {METHOD_NAMES[method]: probs}
        if method in RESCALABLE:
            # A logits model rescaled in probability space returns
            # log-probabilities: softmax turns them back into probabilities.
            rescaled = predict_probs(rescale.rescaled_model, data.x_test)
            row["ece_rescaled"] = 100 * keras_mixup.metrics.calibration_bins(
                data.y_test, rescaled)["ece"]
            row["error_rescaled"] = 100 * np.mean(rescaled.argmax(-1) != data.y_test)
            calibration[method][f"{METHOD_NAMES[method]}, rescaled"] = rescaled
        rows.append(row)

    pngs = {"curves": os.path.join(out, "learning_curves.png"),
            "samples": os.path.join(out, "mixed_samples.png")}
    plot_learning_curves(curves, pngs["curves"],
                         f"{data.name}, {label_noise:.0%} label noise")
    shown = next((m for m in ("mixup", "mixupe", "manifold") if m in calibration), None)
    if shown is not None:
        pngs["reliability"] = os.path.join(out, "reliability.png")
        keras_mixup.metrics.reliability_diagram(
            data.y_test, calibration[shown], pngs["reliability"],
            title=f"{data.name}, test set, α = {alpha:g}")
    plot_mixed_samples(data, alpha, seed, pngs["samples"])

    print()
    print(markdown_table(rows))
    if label_noise:
        print(f"\nErrors and ECE are on the clean test labels. Trained on labels that are "
              f"right only {1 - 0.9 * label_noise:.0%} of the time, a model that does not "
              "memorize them is under-confident, which rescaling cannot undo; "
              "`--label-noise 0` shows mixup's calibration and rescaled prediction.")
    print(f"\nPNGs in {out}/: " + ", ".join(os.path.basename(p) for p in pngs.values())
          + f"  ({time.time() - start:.0f} s)")
    return rows, pngs


def _pct(value):
    return "—" if value is None else f"{value:.1f}%"


def markdown_table(rows):
    lines = ["| method | best test error | last test error | ECE | ECE rescaled | "
             "error rescaled |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {METHOD_NAMES[r['method']]} | {_pct(r['best'])} | {_pct(r['last'])} "
                     f"| {_pct(r['ece'])} | {_pct(r['ece_rescaled'])} "
                     f"| {_pct(r['error_rescaled'])} |")
    return "\n".join(lines)


# ----------------------------------------------------------------- plots


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # draws without touching pyplot's global state
    return fig


def plot_learning_curves(curves, path, title):
    """Test error against epoch, one line per method."""
    fig = _figure(6.4, 4.2)
    ax = fig.subplots()
    for method, errors in curves.items():
        ax.plot(np.arange(1, len(errors) + 1), errors, label=METHOD_NAMES[method])
    ax.set_xlabel("epoch")
    ax.set_ylabel("test error (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _label_text(weights, class_names):
    """'7 (0.62) + 1 (0.38)': the classes of a mixed label and their weights."""
    top = [k for k in np.argsort(weights)[::-1][:2] if weights[k] > 0.005]
    return " + ".join(f"{class_names[k]} ({weights[k]:.2f})" for k in top)


def plot_mixed_samples(data, alpha, seed, path, count=6):
    """A row of MixUp and a row of CutMix images, with their mixed labels."""
    x, y = data.x_test[:64], data.y_test[:64]  # partners come from the whole batch
    count = min(count, len(x))
    rows = {
        f"MixUp, α = {alpha:g}": keras_mixup.layers.MixUp(
            alpha=alpha, num_classes=data.num_classes, seed=seed, jit_compile=XLA),
        "CutMix, α = 1": keras_mixup.layers.CutMix(
            alpha=1.0, num_classes=data.num_classes, seed=seed, jit_compile=XLA),
    }
    fig = _figure(2.0 * count, 4.8)
    axes = fig.subplots(len(rows), count, squeeze=False)
    for r, (name, layer) in enumerate(rows.items()):
        # Called on its own with labels, a layer mixes images and labels with
        # one plan; CutMix's label weights are the exact pixel fractions.
        images, labels = layer(x, y)
        images, labels = np.asarray(images)[:count], np.asarray(labels)[:count]
        for c in range(count):
            ax = axes[r, c]
            # Grayscale, RGB or RGBA as they are; other channel counts: the first.
            image = images[c] if images.shape[-1] in (3, 4) else images[c, ..., 0]
            ax.imshow(np.clip(image, 0, 1), cmap="gray_r" if image.ndim == 2 else None)
            ax.set_title(_label_text(labels[c], data.class_names), fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# ----------------------------------------------- reproduce: label noise


def reproduce_label_noise(noise_levels=(0.2, 0.5, 0.8), epochs=60, seed=0,
                          batch_size=64, learning_rate=0.05, verbose=True,
                          methods=("erm", "mixup")):
    """Zhang et al., Table 2, at small scale: ERM vs mixup on digits with
    corrupted training labels (the same MLP, SGD, α = 8 at 20% noise and
    32 above).

    Returns a list of dicts: noise, alpha, and best / last test error (%)
    of each of ``methods`` (keys of `METHOD_NAMES`; the table shows
    ``erm`` and ``mixup``) as ``(best, last)`` tuples.
    """
    rows = []
    for noise in noise_levels:
        data = load_data("digits", noise, seed)
        alpha = default_alpha(noise)
        row = {"noise": noise, "alpha": alpha}
        for method in methods:
            model, _ = make_method(method, data.x_train.shape[1:], alpha, seed)
            compile_for_training(model, learning_rate)
            label = f"{noise:.0%} noise, {METHOD_NAMES[method]}" + (
                f" (α = {alpha:g})" if method == "mixup" else "")
            errors = fit(model, data, epochs, batch_size, label=label if verbose else None)
            row[method] = (float(errors.min()), float(errors[-1]))
        rows.append(row)
    return rows


def label_noise_table(rows):
    lines = [
        "| corrupted labels | ERM, digits | mixup, digits | "
        "ERM, paper (CIFAR-10) | mixup, paper (CIFAR-10) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        paper = PAPER_LABEL_NOISE.get(round(r["noise"], 2))
        erm_paper = "—" if paper is None else "{} / {}".format(*paper["erm"])
        mix_paper = "—" if paper is None else "{} / {} (α={:g})".format(
            *paper["mixup"], paper["alpha"])
        lines.append(
            f"| {r['noise']:.0%} | {r['erm'][0]:.1f} / {r['erm'][1]:.1f} "
            f"| {r['mixup'][0]:.1f} / {r['mixup'][1]:.1f} (α={r['alpha']:g}) "
            f"| {erm_paper} | {mix_paper} |"
        )
    lines.append("")
    lines.append("Test error in %, best / last epoch. ERM memorizes the corrupted "
                 "labels (last ≫ best); mixup's last error stays close to its best.")
    return "\n".join(lines)
