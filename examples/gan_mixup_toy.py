"""Mixup for GAN discriminators on 2-D toy distributions.

Zhang et al. (ICLR 2018, section 3.5) train a GAN's discriminator on mixes
of real and generated samples, ``λ·x_real + (1 − λ)·G(z)`` with target λ,
``λ ~ Beta(α, α)``, and show it on mixtures of Gaussians (a ring of 8, a
5×5 grid of 25). The model is `keras_mixup.MixupGAN` (``mixup=False``: the
same model as a plain GAN); the experiment is `keras_mixup.reproduce.gan`,
which trains both on each distribution and scores the generated points
(modes covered, fraction of points within 3σ of a mode), then draws them
like the paper's Figure 5.

    python examples/gan_mixup_toy.py                 # 1 seed, 1500 steps: ~1 min
    python examples/gan_mixup_toy.py --full          # 3 seeds, 8000 steps: ~12 min

The same experiment is ``keras-mixup reproduce gan``.

Prints one line per run and a Markdown table; writes the figure to
``--out`` (default ``gan_mixup.png`` in the current directory).
"""

import argparse
import json
import time

from keras_mixup_cli import positive_float, positive_int, quiet_startup

# Imports without TensorFlow's start-up logs (TF_CPP_MIN_LOG_LEVEL=0 shows them).
with quiet_startup():
    import keras
    from keras_mixup.reproduce import gan as reproduce_gan

DISTRIBUTIONS = tuple(reproduce_gan.DISTRIBUTIONS)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true",
                        help=f"full-size run: {reproduce_gan.SEEDS} seeds, "
                             f"{reproduce_gan.STEPS} steps (default: 1 seed, "
                             f"{reproduce_gan.QUICK_STEPS} steps)")
    parser.add_argument("--steps", type=positive_int, help="training iterations per run")
    parser.add_argument("--seeds", type=positive_int, help="number of seeds")
    parser.add_argument("--distributions", default=",".join(DISTRIBUTIONS),
                        help=f"comma-separated subset of {','.join(DISTRIBUTIONS)}")
    parser.add_argument("--alpha", type=positive_float, default=reproduce_gan.ALPHA,
                        help=f"Beta(α, α) of the mixup GAN (default {reproduce_gan.ALPHA})")
    parser.add_argument("--out", default="gan_mixup.png", help="the figure (PNG)")
    parser.add_argument("--json", help="also write the results (plain data) here")
    args = parser.parse_args(argv)
    names = [d.strip() for d in args.distributions.split(",") if d.strip()]
    unknown = [d for d in names if d not in DISTRIBUTIONS]
    if unknown or not names:
        parser.error(f"--distributions: unknown {unknown}; choose from {list(DISTRIBUTIONS)}")
    if args.steps is not None and args.steps < 8:
        parser.error(f"--steps must be at least 8 (four checkpoints); got {args.steps}")

    print(f"backend {keras.backend.backend()}; ring: 8 Gaussians, radius "
          f"{reproduce_gan.RING_RADIUS:g}, std {reproduce_gan.RING_STD:g}; grid: 25, "
          f"spacing {reproduce_gan.GRID_SPACING:g}, std {reproduce_gan.GRID_STD:g}")
    start = time.perf_counter()
    results = reproduce_gan.run_gan(distributions=names, seeds=args.seeds, steps=args.steps,
                                    quick=not args.full, alpha=args.alpha)
    seconds = time.perf_counter() - start
    config = results["config"]
    print(f"\n{len(config['seeds'])} seed(s), {config['steps']} iterations, "
          f"{seconds:.0f} s in all\n")
    print(reproduce_gan.gan_table(results))
    reproduce_gan.plot_gan(results["samples"], args.out)
    print(f"\nfigure: {args.out}")
    if args.json:
        results["seconds"] = seconds
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f)
    return results


if __name__ == "__main__":
    main()
