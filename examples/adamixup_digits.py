"""AdaMixup (Guo, Mao & Zhang, AAAI 2019) against fixed-α mixup and ERM.

AdaMixup learns, per pair, the interval λ is drawn from (a policy network),
with an intrusion discriminator that keeps mixed points off the data
(`keras_mixup.AdaMixupModel`). This script trains the same MLP three ways
on scikit-learn's digits (or Fashion-MNIST with ``--full``, when the Debian
package is installed) and reports the test error, and how often mixed
points *collide* with real data (`keras_mixup.adamixup.collision_rate`: a
real example of a third class lies nearer to the mixed point than both of
its sources), for mixup's fixed λ ~ Beta(α, α) and for the learned policy,
on pairs of training examples::

    python examples/adamixup_digits.py           # digits, 3 seeds, ~3 min on 2 cores
    python examples/adamixup_digits.py --full    # Fashion-MNIST (10k images), 3 seeds
"""

import argparse
import time

from keras_mixup_cli import positive_float, positive_int, quiet_startup, subset_of

# Imports without TensorFlow's start-up logs (TF_CPP_MIN_LOG_LEVEL=0 shows them).
with quiet_startup():
    import keras
    import numpy as np

    import keras_mixup
    from keras_mixup.adamixup import collision_rate
    from keras_mixup.reproduce.ablation import load_images

METHODS = ("erm", "mixup", "adamixup")
PAIRS = 1000  # mixed training pairs on which collisions are counted


def mlp(shape, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input(shape), keras.layers.Flatten(),
        keras.layers.Dense(256, activation="relu"), keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(10),
    ])


def train(method, data, seed, epochs, alpha):
    """Returns (test error %, the trained wrapper)."""
    x_train, y_train, x_test, y_test = data
    net = mlp(x_train.shape[1:], seed)
    if method == "erm":
        model = net
    elif method == "mixup":
        model = keras_mixup.MixupModel(
            net, mixer=keras_mixup.layers.MixUp(alpha=alpha, pairing="permutation"), seed=seed)
    else:
        model = keras_mixup.AdaMixupModel(net, seed=seed)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=None if method == "adamixup"
                  else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=0)
    logits = keras.ops.convert_to_numpy(net(x_test, training=False))
    return 100.0 * float(np.mean(np.argmax(logits, -1) != y_test)), model


def collisions(x, y, lam, index, chosen):
    """Collision rate of the mixes ``λ·x[chosen] + (1 − λ)·x[index]``."""
    lam = lam.reshape((-1,) + (1,) * (x.ndim - 1))
    mixed = lam * x[chosen] + (1.0 - lam) * x[index]
    return collision_rate(x, y, mixed, np.stack([chosen, index], 1))


def policy_collisions(model, x, y, seed):
    chosen = np.random.default_rng(seed).choice(len(x), PAIRS, replace=False)
    mixed, lam, index, low, width = model.sample_mix(
        x[chosen], keras_mixup.ops.as_seed(seed), training=False)
    index = chosen[keras.ops.convert_to_numpy(index)]
    rate = collision_rate(x, y, keras.ops.convert_to_numpy(mixed), np.stack([chosen, index], 1))
    return rate, float(np.mean(keras.ops.convert_to_numpy(low))), \
        float(np.mean(keras.ops.convert_to_numpy(width)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="Fashion-MNIST (10k training images; digits when it is not "
                        "installed), 30 epochs")
    parser.add_argument("--seeds", type=positive_int, default=3, help="default 3")
    parser.add_argument("--epochs", type=positive_int, help="default 40 (--full: 30)")
    parser.add_argument("--alpha", type=positive_float, default=1.0,
                        help="fixed-α mixup's Beta(α, α) (default 1)")
    parser.add_argument("--methods", type=subset_of(METHODS), default=list(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)}")
    args = parser.parse_args(argv)
    methods = args.methods
    epochs = args.epochs or (30 if args.full else 40)

    start = time.time()
    errors = {m: [] for m in methods}
    fixed, learned, intervals = [], [], []
    for seed in range(args.seeds):
        name, *data = load_images("fashion_mnist" if args.full else "digits", seed, 10000, 2000)
        x, y = data[0], data[1]
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(x), PAIRS, replace=False)
        fixed.append(collisions(x, y, rng.beta(args.alpha, args.alpha, PAIRS),
                                rng.permutation(chosen), chosen))
        for method in methods:
            t0 = time.time()
            error, model = train(method, data, seed, epochs, args.alpha)
            errors[method].append(error)
            note = ""
            if method == "adamixup":
                rate, low, width = policy_collisions(model, x, y, seed)
                learned.append(rate)
                intervals.append((low, width))
                note = f", λ in [{low:.2f}, {low + width:.2f}] on average, collisions {rate:.1%}"
            print(f"  seed {seed}, {method:8s}: test error {error:.2f}%{note} "
                  f"({time.time() - t0:.0f} s)", flush=True)

    print(f"\n{name}: MLP 256-256, SGD, {epochs} epochs, {args.seeds} seed(s); wall time "
          f"{time.time() - start:.0f} s.\n")
    print("| method | test error % | mixed training points that collide |")
    print("|---|---:|---:|")
    for method in methods:
        e = np.array(errors[method])
        rate = {"mixup": fixed, "adamixup": learned}.get(method)
        shown = "—" if not rate else f"{100 * np.mean(rate):.1f}% ± {100 * np.std(rate):.1f}"
        label = f"mixup (α = {args.alpha:g})" if method == "mixup" else method
        print(f"| {label} | {e.mean():.2f} ± {e.std():.2f} | {shown} |")
    if intervals:
        low, width = np.mean(intervals, 0)
        print(f"\nThe learned policy draws λ in [{low:.2f}, {low + width:.2f}] on average.")
    return {"errors": errors, "fixed": fixed, "learned": learned}


if __name__ == "__main__":
    main()
