"""Mixup GANs on 2-D toy distributions (Zhang et al., ICLR 2018, section 3.5).

A plain GAN and a GAN whose discriminator learns from mixup
(`keras_mixup.MixupGAN`) are trained on two mixtures of Gaussians:

- ``ring``: 8 modes evenly spaced on a circle of radius 2, std 0.02;
- ``grid``: 25 modes on a 5×5 grid with spacing 2 (centres at −4, −2, 0,
  2, 4 on each axis), std 0.05.

Protocol (ours): generator and discriminator are MLPs of three hidden
ReLU layers of `WIDTH` units, a 2-D standard normal latent, one Adam
optimizer (`LEARNING_RATE`, β₁ = 0.5) updating both players at once,
batches of `BATCH_SIZE` fresh samples. At a few fixed iterations,
`SAMPLES` generated points are scored: a point is *high quality* if it
lies within 3σ of some mode's centre (Euclidean distance), and a mode is
*covered* if at least `MIN_COUNT` high-quality points lie within 3σ of
it.

    results = run_gan(quick=True)   # about a minute on 2 CPU cores (8,000 steps: ~10)
    print(gan_table(results))
    plot_gan(results["samples"], "gan_mixup.png")
"""

import math
import time

import numpy as np

RING_RADIUS, RING_STD = 2.0, 0.02
GRID_SPACING, GRID_STD = 2.0, 0.05
WIDTH, LATENT_DIM, BATCH_SIZE = 128, 2, 256
LEARNING_RATE = 1e-3
ALPHA = 0.2
SAMPLES, MIN_COUNT = 2500, 20
STEPS, QUICK_STEPS = 8000, 1500
SEEDS, QUICK_SEEDS = 3, 1


def ring_centres():
    """The 8 mode centres of `ring`, ``(8, 2)``."""
    angles = 2 * math.pi * np.arange(8) / 8
    return RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], 1)


def grid_centres():
    """The 25 mode centres of `grid`, ``(25, 2)``."""
    axis = GRID_SPACING * (np.arange(5) - 2)
    return np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)


def _mixture(centres, std, n, rng):
    modes = rng.integers(0, len(centres), n)
    return (centres[modes] + std * rng.standard_normal((n, 2))).astype("float32")


def ring(n, rng):
    """``n`` points, float32 ``(n, 2)``, from 8 Gaussians (std 0.02) on a
    circle of radius 2, each mode equally likely.

    Example:

    >>> x = keras_mixup.reproduce.gan.ring(1000, np.random.default_rng(0))
    >>> x.shape, bool(abs(np.linalg.norm(x, axis=1).mean() - 2.0) < 0.01)
    ((1000, 2), True)
    """
    return _mixture(ring_centres(), RING_STD, n, rng)


def grid(n, rng):
    """``n`` points, float32 ``(n, 2)``, from 25 Gaussians (std 0.05) on a
    5×5 grid with spacing 2, centred on the origin.

    Example:

    >>> x = keras_mixup.reproduce.gan.grid(1000, np.random.default_rng(0))
    >>> x.shape, float(np.round(np.abs(x).max()))
    ((1000, 2), 4.0)
    """
    return _mixture(grid_centres(), GRID_STD, n, rng)


DISTRIBUTIONS = {"ring": (ring, ring_centres, RING_STD), "grid": (grid, grid_centres, GRID_STD)}


def mode_metrics(points, centres, std, min_count=MIN_COUNT):
    """``(modes covered, high-quality fraction)`` of generated ``points``.

    A point is high quality if it lies within ``3·std`` of its nearest mode
    centre; a mode is covered if at least ``min_count`` high-quality points
    are near it.

    Example:

    >>> centres = np.array([[0.0, 0.0], [5.0, 0.0]])
    >>> keras_mixup.reproduce.gan.mode_metrics(np.zeros((30, 2)), centres, 0.1)
    (1, 1.0)
    """
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if not len(points):
        return 0, 0.0
    dist = np.linalg.norm(points[:, None, :] - np.asarray(centres)[None], axis=-1)
    nearest, good = dist.argmin(1), dist.min(1) <= 3 * std
    counts = np.bincount(nearest[good], minlength=len(centres))
    return int((counts >= min_count).sum()), float(good.mean())


def _mlp(inputs, outputs, seed):
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((inputs,))]
    layers += [keras.layers.Dense(WIDTH, activation="relu") for _ in range(3)]
    return keras.Sequential(layers + [keras.layers.Dense(outputs)])


def train_gan(distribution, mixup, alpha, seed, steps, checkpoints, samples=SAMPLES,
              min_count=MIN_COUNT):
    """Trains one GAN; returns ``(run, points)``: the run's metrics at each
    checkpoint (plain data) and the generated points there (arrays)."""
    import keras

    import keras_mixup

    sampler, centres, std = DISTRIBUTIONS[distribution]
    gan = keras_mixup.MixupGAN(_mlp(LATENT_DIM, 2, 2 * seed), _mlp(2, 1, 2 * seed + 1),
                               alpha=alpha, mixup=mixup, seed=seed)
    gan.compile(keras.optimizers.Adam(LEARNING_RATE, beta_1=0.5))
    rng = np.random.default_rng(1000 + seed)
    run = {"distribution": distribution, "method": "mixup" if mixup else "gan",
           "alpha": alpha if mixup else None, "seed": seed, "iterations": [],
           "modes": [], "quality": []}
    points, done, start = {}, 0, time.perf_counter()
    for at in checkpoints:
        if at > done:
            gan.fit(sampler((at - done) * BATCH_SIZE, rng), batch_size=BATCH_SIZE,
                    shuffle=False, verbose=0)
            done = at
        points[at] = gan.generate(samples, seed=seed)
        modes, quality = mode_metrics(points[at], centres(), std, min_count)
        run["iterations"].append(at)
        run["modes"].append(modes)
        run["quality"].append(quality)
    run["seconds"] = time.perf_counter() - start
    return run, points


def method_name(method, alpha=None):
    return "GAN" if method == "gan" else f"mixup GAN (α = {alpha:g})"


def run_gan(distributions=("ring", "grid"), seeds=None, steps=None, quick=False,
            log=print, alpha=ALPHA, checkpoints=None):
    """Plain GAN against mixup GAN on the toy distributions.

    Args:
        distributions: names among ``"ring"``, ``"grid"``.
        seeds: number of seeds (0, 1, ...) or a list of ints; default 3
            (1 with ``quick``).
        steps: training iterations; default `STEPS` (`QUICK_STEPS` with
            ``quick``).
        quick: the short run.
        log: called with one line per run (None: silent).
        alpha: Beta(α, α) of the mixup GAN.
        checkpoints: iterations at which samples are scored; default
            ``steps/8, steps/4, steps/2, steps``.

    Returns:
        ``{"config": ..., "runs": [...], "samples": [...]}``, plain data:
        each run holds its distribution, method (``"gan"`` or ``"mixup"``),
        alpha, seed, and at each checkpoint the modes covered and the
        high-quality fraction; ``samples`` holds the generated points of
        the first seed at each checkpoint (lists of ``[x, y]``).
    """
    unknown = [d for d in distributions if d not in DISTRIBUTIONS]
    if unknown:
        raise ValueError(f"Unknown distributions {unknown}; choose among {sorted(DISTRIBUTIONS)}.")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"`alpha` must be > 0; got {alpha!r}.")
    steps = steps or (QUICK_STEPS if quick else STEPS)
    seeds = seeds if seeds is not None else (QUICK_SEEDS if quick else SEEDS)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    checkpoints = sorted(set(checkpoints or [max(1, steps * k // 8) for k in (1, 2, 4, 8)]))
    config = {"steps": steps, "seeds": seeds, "alpha": alpha, "checkpoints": checkpoints,
              "batch_size": BATCH_SIZE, "width": WIDTH, "latent_dim": LATENT_DIM,
              "learning_rate": LEARNING_RATE, "samples": SAMPLES, "min_count": MIN_COUNT,
              "ring": {"radius": RING_RADIUS, "std": RING_STD},
              "grid": {"spacing": GRID_SPACING, "std": GRID_STD}}
    runs, samples = [], []
    for distribution in distributions:
        for method in ("gan", "mixup"):
            for seed in seeds:
                run, points = train_gan(distribution, method == "mixup", alpha, seed,
                                        steps, checkpoints)
                runs.append(run)
                if seed == seeds[0]:
                    samples += [{"distribution": distribution, "method": method,
                                 "alpha": run["alpha"], "seed": seed, "iteration": at,
                                 "points": p.tolist()} for at, p in points.items()]
                if log:
                    k = len(DISTRIBUTIONS[distribution][1]())
                    log(f"{distribution} {method_name(method, alpha)} seed {seed}: modes "
                        f"{run['modes'][-1]}/{k}, high quality {run['quality'][-1]:.1%} "
                        f"after {run['iterations'][-1]} iterations ({run['seconds']:.0f} s)")
    return {"config": config, "runs": runs, "samples": samples}


def _mean_std(values, fmt):
    values = np.asarray(values, np.float64)
    return f"{fmt(values.mean())} ± {fmt(values.std())}"


def gan_table(results, iterations=None):
    """A Markdown table of `run_gan`'s results: modes covered and
    high-quality fraction, mean ± std over seeds, at ``iterations``
    (default: the middle checkpoint and the last)."""
    runs = results["runs"]
    points = results["config"]["checkpoints"]
    iterations = iterations or sorted({points[len(points) // 2], points[-1]})
    head = "| distribution | method |"
    for at in iterations:
        head += f" modes covered @ {at} | high quality @ {at} |"
    lines = [head, "|" + "---|" * (2 + 2 * len(iterations))]
    keys = list(dict.fromkeys((r["distribution"], r["method"], r["alpha"]) for r in runs))
    for distribution, method, alpha in keys:
        group = [r for r in runs if (r["distribution"], r["method"], r["alpha"])
                 == (distribution, method, alpha)]
        k = len(DISTRIBUTIONS[distribution][1]())
        row = f"| {distribution} | {method_name(method, alpha)} |"
        for at in iterations:
            i = [r["iterations"].index(at) for r in group]
            row += " {} of {} | {} |".format(
                _mean_std([r["modes"][j] for r, j in zip(group, i)], lambda v: f"{v:.1f}"), k,
                _mean_std([r["quality"][j] for r, j in zip(group, i)],
                          lambda v: f"{100 * v:.1f}%"))
        lines.append(row)
    return "\n".join(lines)


def plot_gan(samples, path, seed=None):
    """Draws generated points like the paper's Figure 5: one row per
    distribution and method (one seed: the first, or ``seed``), one column
    per iteration, grey points over red mode centres. Writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if seed is None:
        seed = samples[0]["seed"]
    samples = [s for s in samples if s["seed"] == seed]
    rows = list(dict.fromkeys((s["distribution"], s["method"], s["alpha"]) for s in samples))
    cols = sorted({s["iteration"] for s in samples})
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(2.2 * len(cols), 2.2 * len(rows)),
                             squeeze=False)
    for s in samples:
        r = rows.index((s["distribution"], s["method"], s["alpha"]))
        ax = axes[r][cols.index(s["iteration"])]
        p = np.asarray(s["points"]).reshape(-1, 2)
        centres = DISTRIBUTIONS[s["distribution"]][1]()
        ax.scatter(p[:, 0], p[:, 1], s=1, c="0.3", alpha=0.4, linewidths=0)
        ax.scatter(centres[:, 0], centres[:, 1], s=12, c="red", marker="x", linewidths=0.8)
        lim = 3.0 if s["distribution"] == "ring" else 5.5
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xticks([])
        ax.set_yticks([])
        if r == 0:
            ax.set_title(f"iteration {s['iteration']}", fontsize=9)
        if cols.index(s["iteration"]) == 0:
            ax.set_ylabel(f"{s['distribution']}\n{method_name(s['method'], s['alpha'])}",
                          fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
