"""The mixup paper's ablation study, at small scale, on scikit-learn's digits.

Zhang et al. ("mixup: Beyond Empirical Risk Minimization", ICLR 2018,
Section 3.8) ask which parts of mixup matter: mixing random pairs of all
classes ("AC + RP") against pairs of the same class ("SC") or of nearest
neighbours ("KNN"), mixing the inputs only or the labels only (close to
label smoothing), against plain training (ERM). On CIFAR-10 they found that
AC + RP, the plain mixup, works best. This script reruns those rows on the
8×8 digits (1257 train / 540 test images), plus this library's
default random pairing (never an example with itself) and three-way
(Dirichlet) mixing::

    python examples/pairing_ablation.py       # 3 seeds, 3-4 minutes on 2 CPU cores

Every method trains the same MLP with SGD for the same number of epochs,
with the same α (1.0 by default: λ uniform) and the same train/test split
per seed. Partners come from the batch (64 examples): "KNN" draws the
partner among the 5 nearest examples of the batch (Euclidean, in pixel
space; the paper used k = 200 on CIFAR-10), "SC" a random other example of
the same class. The mixing runs inside the compiled train step
(`keras_mixup.MixupModel`), which hands the labels to the label-aware
pairings. Printed: the mean ± std over seeds of the best and of the
final-epoch test error.
"""

import argparse
import time

from keras_mixup_cli import quiet_startup, subset_of

# Imports without TensorFlow's start-up logs (TF_CPP_MIN_LOG_LEVEL=0 shows them).
with quiet_startup():
    import keras
    import numpy as np

    import keras_mixup
    from keras_mixup.demo_data import load_data

NUM_CLASSES = 10
NEIGHBORS = 5
# key: (row label, MixUp arguments besides alpha/num_classes/seed; None = ERM)
METHODS = {
    "erm": ("ERM", None),
    "ac+rp": ("AC + RP (pairing=permutation, the paper's)", {"pairing": "permutation"}),
    "ac+rp-derangement": ("AC + RP (pairing=derangement, our default)", {}),
    "sc": ("SC + RP (pairing=same_class)", {"pairing": "same_class"}),
    "knn": (f"AC + KNN (pairing=nearest, k={NEIGHBORS})",
            {"pairing": "nearest", "neighbors": NEIGHBORS}),
    "inputs-only": ("inputs only (mix=inputs)", {"mix": "inputs"}),
    "labels-only": ("labels only (mix=labels)", {"mix": "labels"}),
    "3-way": ("3-way (ways=3, Dirichlet)", {"ways": 3}),
}


def build(method, seed, alpha):
    keras.utils.set_random_seed(seed)
    net = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(NUM_CLASSES),
    ])
    options = METHODS[method][1]
    if options is None:
        return net
    mixer = keras_mixup.layers.MixUp(alpha=alpha, num_classes=NUM_CLASSES, seed=seed, **options)
    return keras_mixup.MixupModel(net, mixer=mixer, seed=seed)


def run(method, data, seed, epochs, alpha, batch_size):
    """Trains one method on one seed: (best, final) test error in %."""
    model = build(method, seed, alpha)
    model.compile(
        keras.optimizers.SGD(0.05, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs,
                        validation_data=(data.x_test, data.y_test), verbose=0).history
    errors = 100.0 * (1.0 - np.array(history["val_accuracy"]))
    return errors.min(), errors[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--epochs", type=int, default=30, help="default 30")
    parser.add_argument("--alpha", type=float, default=1.0,
                        help="mixup concentration for every method (default 1.0)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--methods", type=subset_of(METHODS), default=list(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)}")
    args = parser.parse_args(argv)
    methods = args.methods
    if args.seeds < 1 or args.epochs < 1:
        parser.error("--seeds and --epochs must be >= 1")
    if not args.alpha > 0:
        parser.error(f"--alpha must be > 0; got {args.alpha}")
    if args.batch_size < 2:
        parser.error(f"--batch-size must be >= 2 (mixing needs pairs); got {args.batch_size}")

    splits = [load_data("digits", seed=s) for s in range(args.seeds)]
    print(f"digits: {len(splits[0].x_train)} train / {len(splits[0].x_test)} test images, "
          f"{args.seeds} seed(s), {args.epochs} epochs, α = {args.alpha:g}", flush=True)
    rows = []
    for method in methods:
        start = time.time()
        runs = np.array([run(method, splits[s], s, args.epochs, args.alpha, args.batch_size)
                         for s in range(args.seeds)])
        best, last = runs.mean(0)
        best_sd, last_sd = runs.std(0)
        rows.append((method, best, best_sd, last, last_sd))
        print(f"  {method:18s} best {best:5.2f}%  final {last:5.2f}%  "
              f"({time.time() - start:.0f} s)", flush=True)

    print(f"\nTest error (%), mean ± std over {args.seeds} seed(s); "
          f"best = lowest over the {args.epochs} epochs, final = last epoch.")
    print("\n| method | best test error | final test error |")
    print("|---|---:|---:|")
    for method, best, best_sd, last, last_sd in rows:
        print(f"| {METHODS[method][0]} | {best:.2f} ± {best_sd:.2f} | "
              f"{last:.2f} ± {last_sd:.2f} |")
    return rows


if __name__ == "__main__":
    main()
