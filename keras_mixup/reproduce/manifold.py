"""``keras-mixup reproduce manifold``: ERM, input mixup, manifold mixup at
each hidden site alone, at every site (one chosen per step), and at every
site with the gradient blocked through the site on the steps it mixes
(``stop_gradient=True``, the ablation of Verma et al., ICML 2019), on
digits with a three-block MLP, α = 2; best and last test error, mean ± std
over seeds.
"""

import time

import numpy as np

from keras_mixup.reproduce.common import load_table, mlp, seeds_text, split, train

MANIFOLD_ROWS = (
    ("ERM", None, None, False),
    ("input mixup", (1, 0, 0), 1.0, False),
    ("manifold, site 1 only (after block 1)", (0, 1, 0), 2.0, False),
    ("manifold, site 2 only (after block 2)", (0, 0, 1), 2.0, False),
    ("manifold, all sites", (1, 1, 1), 2.0, False),
    ("manifold, all sites, gradient blocked at the site", (1, 1, 1), 2.0, True),
)


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
            data = split(x, y, seed)
            if weights is None:
                model = mlp(x.shape[1], 10, seed, blocks=3)
            else:
                plain = mlp(x.shape[1], 10, seed, blocks=3, sites=weights, alpha=alpha,
                             stop_gradient=stop)
                model = keras_mixup.MixupModel(plain, site_weights=weights, seed=seed)
            errors = train(model, data, epochs, every=5)
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
              f"the input), mean ± std over {seeds_text(len(rows[0][1]))}. Verma et al. (2019): "
              "mixing at the input and after the first stages works best; deeper sites do "
              "not help."]
    return "\n".join(lines)
