"""``keras-mixup reproduce mixupe``: ERM / input mixup / MixupE on
scikit-learn's digits (the UCI Optdigits test set, 1,797 8×8 images) and
iris (150 flowers, 4 features), next to the MixupE paper's UCI rows (Zou et
al., UAI 2023).

Protocol (ours; the paper's UCI protocol is not restated here): for each
seed a stratified 70/30 split, features standardized on the training part,
an MLP of two hidden layers (128 units, ReLU), SGD with momentum 0.9
(learning rate 0.05, batch 32), α = 1, MixupE η = 1e-3 (fast mode); the
test error of the last epoch, mean ± std over seeds.
"""

import time

import numpy as np

from keras_mixup.reproduce import common
from keras_mixup.reproduce.common import load_table, mlp, seeds_text, split

MIXUPE_PAPER = {  # test error %, ERM / mixup / MixupE (Zou et al., 2023)
    "digits": (1.48, 1.15, 1.33),
    "iris": (9.06, 8.14, 7.29),
}
MIXUPE_METHODS = ("erm", "mixup", "mixupe")


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
            data = split(x, y, seed)
            for method in MIXUPE_METHODS:
                t0 = time.time()
                plain = mlp(x.shape[1], classes, seed)
                if method == "erm":
                    model = plain
                else:
                    model = keras_mixup.MixupModel(
                        plain, mixer=keras_mixup.layers.MixUp(alpha=1.0), seed=seed,
                        regularizer=keras_mixup.MixupE(eta=1e-3) if method == "mixupe" else None)
                error = float(common.train(model, data, n_epochs)[-1])
                out[name][method].append(error)
                log(f"{name}, seed {seed}, {method}: {error:.2f}% ({time.time() - t0:.1f} s)")
    return out


def mixupe_table(results):
    lines = ["| data | ERM | mixup | MixupE | paper: ERM / mixup / MixupE |",
             "|---|---:|---:|---:|---|"]
    for name, by_method in results.items():
        cells = [f"{np.mean(v):.2f} ± {np.std(v):.2f}" for v in (by_method[m] for m in MIXUPE_METHODS)]
        paper = " / ".join(f"{v:.2f}" for v in MIXUPE_PAPER[name])
        label = "digits (UCI Optdigits test set)" if name == "digits" else "iris"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {paper} |")
    seeds = len(next(iter(results.values()))["erm"])
    lines += ["", f"Test error %, last epoch, mean ± std over {seeds_text(seeds)} (each its own "
              "70/30 split); the paper's numbers are for its own protocol."]
    return "\n".join(lines)
