"""Manifold mixup in a small ResNet: mixing sites at the input and between stages.

Manifold mixup (Verma et al., ICML 2019) mixes hidden states instead of (or
as well as) inputs: each training step picks one *site* at random — the
input or the output of an early residual stage — mixes the batch there, and
mixes the labels with the same weights. With keras_mixup a site is just a
`MixUp` layer placed in the model, and `keras_mixup.MixupModel` does the
rest inside the compiled train step:

    inputs -> [MixUp] -> stage 1 -> [MixUp] -> stage 2 -> [MixUp] -> stage 3 -> head

This script trains the same ResNet three ways — ERM (no sites), input mixup
(one site at the input) and manifold mixup (sites at the input and after
stages 1 and 2, as the paper recommends) — and prints the test error and
the training time of each. Integer labels go straight into `fit`: the loss
is interpolated, no one-hot tensors are built.

    python examples/manifold_mixup_resnet.py                 # digits, ~1 min on 2 cores
    python examples/manifold_mixup_resnet.py --full          # 3 seeds, 120 epochs
    python examples/manifold_mixup_resnet.py --data fashion_mnist --full

Data: scikit-learn's 8×8 digits (offline, default), or Fashion-MNIST read
from the Debian package ``dataset-fashion-mnist`` (``apt-get install -y
dataset-fashion-mnist``; idx files in /usr/share/datasets/fashion-mnist/, or
pass ``--data-dir``). Without ``--full`` Fashion-MNIST uses a 10k-image
training subset (about 15 s an epoch on 2 CPU cores).

What to expect: the digits are easy for a ResNet — about 1% test error, i.e.
five or so of the 540 test images — so on digits the methods differ by a
few images, within the noise of one seed; the digits run shows the
mechanics and the cost (seconds per epoch, after the first epoch, which
also compiles). Compare methods with ``--full`` (3 seeds) and on
Fashion-MNIST.
"""

import argparse
import gzip
import pathlib
import time

from keras_mixup_cli import positive_float, positive_int, quiet_startup, subset_of

# Imports without TensorFlow's start-up logs (TF_CPP_MIN_LOG_LEVEL=0 shows them).
with quiet_startup():
    import keras
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import keras_mixup

NUM_CLASSES = 10
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
# Where each method may mix. "input" is input mixup; the others are hidden
# states between residual stages (manifold mixup).
METHODS = {
    "erm": (),
    "mixup": ("input",),
    "manifold": ("input", "stage1", "stage2"),
}


# ---------------------------------------------------------------- data


def load_fashion_mnist(data_dir, train_size):
    def read(name, header):
        with gzip.open(pathlib.Path(data_dir) / name, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=header)

    x_train = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y_train = read("train-labels-idx1-ubyte.gz", 8)
    x_test = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y_test = read("t10k-labels-idx1-ubyte.gz", 8)
    if train_size:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    x_train, x_test = ((x / 255.0).astype("float32") for x in (x_train, x_test))
    return x_train, y_train.astype("int32"), x_test, y_test.astype("int32")


def load_data(name, data_dir, full, seed):
    if name == "fashion_mnist":
        return load_fashion_mnist(data_dir, None if full else 10_000)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y.astype("int32"), test_size=0.3, random_state=seed, stratify=y
    )
    return x_train, y_train, x_test, y_test


# --------------------------------------------------------------- model


def residual_block(x, filters, stride):
    shortcut = x
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = keras.layers.BatchNormalization()(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
        shortcut = keras.layers.BatchNormalization()(shortcut)
    return keras.layers.ReLU()(y + shortcut)


def build_model(input_shape, sites=(), alpha=2.0, width=16, blocks=1, seed=0):
    """A 3-stage ResNet with a `MixUp` site wherever ``sites`` says.

    ``sites`` is a subset of ("input", "stage1", "stage2"). With no sites
    the model is an ordinary Keras model (for ERM): a site layer inside a
    model refuses plain ``fit`` in training mode, by design.
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = inputs
    if "input" in sites:
        x = keras_mixup.layers.MixUp(alpha=alpha, seed=seed, name="mix_input")(x)
    x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    for stage, filters in enumerate([width, 2 * width, 4 * width], start=1):
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            x = residual_block(x, filters, stride)
        if f"stage{stage}" in sites:
            # A manifold site: MixupModel mixes the hidden state here on the
            # steps that choose this site, and mixes the labels to match.
            x = keras_mixup.layers.MixUp(alpha=alpha, seed=seed + stage,
                                         name=f"mix_stage{stage}")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(NUM_CLASSES)(x)
    return keras.Model(inputs, outputs, name="resnet")


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch; the first one also includes tracing/compiling."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def train(method, data, args, seed):
    x_train, y_train, x_test, y_test = data
    sites = METHODS[method]
    model = build_model(x_train.shape[1:], sites, args.alpha, args.width,
                        args.blocks, seed)
    if sites:
        # Every MixUp layer of the model is a site; each step mixes at one.
        model = keras_mixup.MixupModel(model, seed=seed)
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, steps)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True,
                                       weight_decay=5e-4),
        # Integer labels: MixupModel interpolates this loss between the two
        # sources of each mixed example.
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # Shuffle, repeat, then batch: every batch is full, so the train step
    # is compiled for one batch size only.
    ds = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
          .shuffle(len(x_train), seed=seed).repeat().batch(args.batch_size)
          .prefetch(tf.data.AUTOTUNE))
    timer = EpochTimer()
    model.fit(ds, steps_per_epoch=steps // args.epochs, epochs=args.epochs,
              verbose=args.verbose, callbacks=[timer], shuffle=False)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    # Steady-state epoch time: mixing should cost little once compiled.
    epoch_seconds = np.median(timer.times[1:] or timer.times)
    return 100.0 * (1.0 - accuracy), float(epoch_seconds)


# ---------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["digits", "fashion_mnist"], default="digits")
    parser.add_argument("--data-dir", default=FASHION_DIR,
                        help="folder of the Fashion-MNIST idx .gz files")
    parser.add_argument("--full", action="store_true",
                        help="full-size run: 3 seeds, 120 epochs, 2 blocks per stage "
                             "(all 60k Fashion-MNIST images)")
    parser.add_argument("--epochs", type=positive_int, help="default 30 (--full: 120)")
    parser.add_argument("--seeds", type=positive_int, help="default 1 (--full: 3)")
    parser.add_argument("--methods", type=subset_of(METHODS), default=list(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--alpha", type=positive_float, default=2.0,
                        help="Beta(α, α) of the mixing weight (default 2.0, the "
                             "manifold mixup paper's)")
    parser.add_argument("--width", type=positive_int, default=16)
    parser.add_argument("--blocks", type=positive_int, help="residual blocks per stage "
                        "(default 1; --full: 2)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--lr", type=positive_float, default=0.05)
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    args = parser.parse_args(argv)
    methods = args.methods
    if args.data == "fashion_mnist" and not (
        pathlib.Path(args.data_dir) / "train-images-idx3-ubyte.gz"
    ).exists():
        parser.error(
            f"--data fashion_mnist: no idx files in {args.data_dir}; install them "
            "with `apt-get install -y dataset-fashion-mnist` or pass --data-dir"
        )
    args.epochs = args.epochs or (120 if args.full else 30)
    args.blocks = args.blocks or (2 if args.full else 1)
    seeds = range(args.seeds or (3 if args.full else 1))

    data = load_data(args.data, args.data_dir, args.full, 0)
    print(f"{args.data}: {len(data[0])} train / {len(data[2])} test images "
          f"{data[0].shape[1:]}, ResNet width {args.width} × {args.blocks} block(s) "
          f"per stage, {args.epochs} epochs, {len(seeds)} seed(s)")
    rows = []
    for method in methods:
        runs = [train(method, data, args, seed) for seed in seeds]
        errors = np.array([r[0] for r in runs])
        seconds = float(np.mean([r[1] for r in runs]))
        sites = ", ".join(METHODS[method]) or "—"
        rows.append((method, sites, float(errors.mean()), float(errors.std()), seconds))
        print(f"  {method:9s} test error {errors.mean():5.2f}% ± {errors.std():.2f}"
              f"  ({seconds:.2f} s per epoch)")

    print("\n| method | mixing sites | test error | ± std over seeds | s / epoch |")
    print("|---|---|---:|---:|---:|")
    for method, sites, mean, std, seconds in rows:
        print(f"| {method} | {sites} | {mean:.2f}% | {std:.2f} | {seconds:.2f} |")
    return rows


if __name__ == "__main__":
    main()
