"""``keras-mixup reproduce adversarial``: robustness to adversarial examples.

Zhang et al. (ICLR 2018, §3.5) report that mixup-trained networks are
more robust than ERM-trained ones to adversarial examples made by the
fast gradient sign method (FGSM) and its iterative version (I-FGSM), both
white-box (the attack uses the attacked model's own gradients) and
black-box (the examples are made on an independently trained ERM model and
transferred). Their table is for ImageNet and a ResNet-101; its numbers
are not in this project's reference notes, so the command prints ours
only, with the paper's qualitative claim.

Here, per seed: an ERM model and a mixup model (α = 1, input mixup through
`keras_mixup.MixupModel`) of the ablation's small CNN (weight decay 1e-4),
and a third, ERM model of another seed as the black-box source. On the test
images (inputs in [0, 1]):

- FGSM: ``x' = clip(x + ε·sign(∇ₓ CE(f(x), y)), 0, 1)``;
- I-FGSM: 10 steps of size ε/10, each followed by a projection onto the
  ε-ball around ``x`` (L∞) and onto [0, 1].

The score is the top-1 error on the attacked images, mean ± std over seeds.
Gradients are taken with the backend's own differentiation
(`keras_mixup.backend`'s ``gradient_of``), so the command runs on every
backend.
"""

import time

import numpy as np

EPSILONS = (0.02, 0.05, 0.1)
ATTACKS = ("FGSM", "I-FGSM")
BOXES = ("white-box", "black-box")
METHODS = ("erm", "mixup")
STEPS = 10


def input_gradient(model, x, y):
    """``∇ₓ`` of the summed cross-entropy of ``model``'s logits at ``x``
    against integer labels ``y``."""
    import keras

    from keras_mixup import backend

    x = keras.ops.convert_to_tensor(x, "float32")
    y = keras.ops.convert_to_tensor(y, "int32")

    def loss(inputs):
        logits = model(inputs, training=False)
        return keras.ops.sum(keras.losses.sparse_categorical_crossentropy(
            y, logits, from_logits=True))

    return backend.ops().gradient_of(loss, x)


def fgsm(model, x, y, epsilon):
    """One signed-gradient step of size ``epsilon``, clipped to [0, 1]."""
    import keras

    if epsilon == 0:
        return keras.ops.convert_to_tensor(x, "float32")
    step = epsilon * keras.ops.sign(input_gradient(model, x, y))
    return keras.ops.clip(keras.ops.convert_to_tensor(x, "float32") + step, 0.0, 1.0)


def iterative_fgsm(model, x, y, epsilon, steps=STEPS):
    """``steps`` FGSM steps of ``epsilon / steps``, each projected onto the
    L∞ ball of radius ``epsilon`` around ``x`` and onto [0, 1]."""
    import keras

    x = keras.ops.convert_to_tensor(x, "float32")
    adv = x
    if epsilon == 0:
        return adv
    for _ in range(steps):
        adv = fgsm(model, adv, y, epsilon / steps)
        adv = keras.ops.clip(adv, x - epsilon, x + epsilon)
    return adv


ATTACK_FUNCTIONS = {"FGSM": fgsm, "I-FGSM": iterative_fgsm}


def top1_error(model, x, y):
    import keras

    logits = keras.ops.convert_to_numpy(model(x, training=False))
    return 100.0 * float(np.mean(np.argmax(logits, -1) != np.asarray(y)))


def _trained(spec, data, seed, epochs):
    """The plain network of a trained ablation row (weight decay 1e-4)."""
    from keras_mixup.reproduce.ablation import fit_row

    return fit_row(spec, data[0], data[1], seed, 1e-4, epochs)


def run_adversarial(data="fashion_mnist", seeds=3, epochs=15, epsilons=EPSILONS,
                    train_size=4000, test_size=1000, log=print):
    """``{"data", "epsilons", "clean": {method: [%]}, "errors": {attack:
    {box: {method: {ε: [% per seed]}}}}}``."""
    from keras_mixup.reproduce.ablation import load_images

    epsilons = [float(e) for e in epsilons]
    clean = {m: [] for m in METHODS}
    errors = {a: {b: {m: {e: [] for e in epsilons} for m in METHODS} for b in BOXES}
              for a in ATTACKS}
    name = data
    for seed in range(seeds):
        t0 = time.time()
        name, *arrays = load_images(data, seed, train_size, test_size, warn=log)
        x_test, y_test = arrays[2], arrays[3]
        models = {"erm": _trained({}, arrays, seed, epochs),
                  "mixup": _trained({"mix": {"pairing": "permutation"}}, arrays, seed, epochs)}
        source = _trained({}, arrays, seed + 1000, epochs)  # the black-box attacker's model
        for method, model in models.items():
            clean[method].append(top1_error(model, x_test, y_test))
        for attack, make in ATTACK_FUNCTIONS.items():
            for eps in epsilons:
                transferred = make(source, x_test, y_test, eps)
                for method, model in models.items():
                    own = make(model, x_test, y_test, eps)
                    errors[attack]["white-box"][method][eps].append(
                        top1_error(model, own, y_test))
                    errors[attack]["black-box"][method][eps].append(
                        top1_error(model, transferred, y_test))
        log(f"seed {seed}: clean ERM {clean['erm'][-1]:.2f}%, mixup {clean['mixup'][-1]:.2f}% "
            f"({time.time() - t0:.1f} s)")
    return {"data": name, "epsilons": epsilons, "clean": clean, "errors": errors}


def _cell(values):
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}"


def adversarial_table(outcome):
    from keras_mixup.reproduce.common import seeds_text

    clean, errors = outcome["clean"], outcome["errors"]
    lines = ["| attack | ε | ERM top-1 error % | mixup top-1 error % | mixup − ERM |",
             "|---|---:|---:|---:|---:|",
             f"| none (clean test images) | 0 | {_cell(clean['erm'])} | {_cell(clean['mixup'])} "
             f"| {np.mean(clean['mixup']) - np.mean(clean['erm']):+.1f} |"]
    for box in BOXES:
        for attack in ATTACKS:
            for eps in outcome["epsilons"]:
                erm, mixup = (errors[attack][box][m][eps] for m in METHODS)
                lines.append(f"| {attack}, {box} | {eps:g} | {_cell(erm)} | {_cell(mixup)} "
                             f"| {np.mean(mixup) - np.mean(erm):+.1f} |")
    seeds = len(clean["erm"])
    lines += ["", f"Top-1 error % on {outcome['data']}'s test images, mean ± std over "
              f"{seeds_text(seeds)}; inputs in [0, 1], ε in the same units. Black-box: "
              "examples made on an independently trained ERM model. Zhang et al. (2018) "
              "report mixup more robust than ERM on ImageNet (ResNet-101) under these "
              "attacks; their table is not in our reference notes, so it is not printed."]
    return "\n".join(lines)


def plot_adversarial(outcome, path):
    """Error against ε, one panel per attack, ERM and mixup; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps = [0.0] + list(outcome["epsilons"])
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), sharey=True)
    panels = [(a, b) for b in BOXES for a in ATTACKS]
    for ax, (attack, box) in zip(axes, panels):
        for method, color in zip(METHODS, ("tab:red", "tab:blue")):
            runs = np.array([outcome["clean"][method]]
                            + [outcome["errors"][attack][box][method][e]
                               for e in outcome["epsilons"]])
            ax.errorbar(eps, runs.mean(1), yerr=runs.std(1), color=color, marker="o",
                        capsize=3, label="ERM" if method == "erm" else "mixup")
        ax.set_title(f"{attack}, {box}")
        ax.set_xlabel("ε")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 error %")
    axes[0].legend()
    fig.suptitle(f"Adversarial examples on {outcome['data']} "
                 f"({len(outcome['clean']['erm'])} seed(s))")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
