"""Federated learning with mixup: FedAvg vs NaiveMix vs FedMix (Yoon et al., ICLR 2021).

Clients are simulated in one process with plain Keras
(`keras_mixup.federated.run_federated`): the training set is split non-IID
(each client holds two classes), every round each client trains one local
epoch from the global weights with SGD, and the server averages the
weights (FedAvg). NaiveMix and FedMix (`keras_mixup.FedMixModel`) also
pool, once, the means of groups of ``--mash-size`` examples of every client
with their mean labels, and train with a fixed weight λ on them: NaiveMix
mixes an example with an average; FedMix uses the first-order
approximation of mixup with the examples behind the average (see
`keras_mixup.federated`). Printed: the test accuracy after the last round
and the best over rounds, mean ± std over seeds::

    python examples/federated_mixup.py           # digits, 3 seeds, ~5 min on 2 cores
    python examples/federated_mixup.py --full    # Fashion-MNIST (if installed), 3 seeds
"""

import argparse
import time

from keras_mixup_cli import open_fraction, positive_int, quiet_startup, subset_of

# Imports without TensorFlow's start-up logs (TF_CPP_MIN_LOG_LEVEL=0 shows them).
with quiet_startup():
    import numpy as np

    from keras_mixup import federated
    from keras_mixup.reproduce.ablation import load_images

METHODS = federated.METHODS[::-1]  # fedavg, naivemix, fedmix


def load(name, seed):
    """Flattened inputs in [0, 1] and class ids (train, test)."""
    name, x_train, y_train, x_test, y_test = load_images(name, seed, 10000, 2000)
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    return name, (flat(x_train), y_train, flat(x_test), y_test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="Fashion-MNIST (10k training images; digits when it is not "
                        "installed), 20 clients, 40 rounds")
    parser.add_argument("--seeds", type=positive_int, default=3, help="default 3")
    parser.add_argument("--rounds", type=positive_int, help="default 25 (--full: 40)")
    parser.add_argument("--clients", type=positive_int, help="default 10 (--full: 20)")
    parser.add_argument("--local-epochs", type=positive_int, default=1,
                        help="local epochs per round (default 1)")
    parser.add_argument("--lam", type=open_fraction, default=0.1,
                        help="weight λ of the average (default 0.1)")
    parser.add_argument("--mash-size", type=positive_int, default=10,
                        help="examples per shared average (default 10)")
    parser.add_argument("--methods", type=subset_of(METHODS), default=list(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)}")
    args = parser.parse_args(argv)
    methods = args.methods
    rounds = args.rounds or (40 if args.full else 25)
    clients = args.clients or (20 if args.full else 10)
    data_name = "fashion_mnist" if args.full else "digits"

    start = time.time()
    results = {m: [] for m in methods}
    for seed in range(args.seeds):
        name, data = load(data_name, seed)
        for method in methods:
            t0 = time.time()
            accuracy = federated.run_federated(
                data, method, clients=clients, classes_per_client=2, rounds=rounds,
                local_epochs=args.local_epochs, lam=args.lam, mash_size=args.mash_size, seed=seed)
            results[method].append(accuracy)
            print(f"  seed {seed}, {method:8s}: last {accuracy[-1]:.2f}%, best "
                  f"{max(accuracy):.2f}% ({time.time() - t0:.0f} s)", flush=True)

    print(f"\n{name}: {clients} clients × 2 classes, {rounds} rounds of "
          f"{args.local_epochs} local epoch(s), "
          f"λ = {args.lam:g}, averages of {args.mash_size}, {args.seeds} seed(s); "
          f"wall time {time.time() - start:.0f} s.\n")
    print("| method | test accuracy % after the last round | best round |")
    print("|---|---:|---:|")
    for method in methods:
        runs = np.array(results[method])
        last, best = runs[:, -1], runs.max(1)
        print(f"| {method} | {last.mean():.2f} ± {last.std():.2f} | "
              f"{best.mean():.2f} ± {best.std():.2f} |")
    return results


if __name__ == "__main__":
    main()
