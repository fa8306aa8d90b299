"""The ``keras-mixup`` command: a demo, paper reproductions and benchmarks.

    keras-mixup demo                          # ERM vs the mixup family on digits
    keras-mixup demo --data fashion_mnist --label-noise 0.5
    keras-mixup demo --data tfds:mnist        # any image dataset tensorflow-datasets prepared
    keras-mixup reproduce label-noise         # Zhang et al., Table 2, on digits
    keras-mixup reproduce mixupe              # MixupE's UCI rows on digits and iris
    keras-mixup reproduce manifold            # manifold mixup per site, gradient blocked
    keras-mixup reproduce ablation            # Zhang et al., §3.8 ablation table
    keras-mixup reproduce adversarial         # Zhang et al., §3.5: FGSM / I-FGSM
    keras-mixup reproduce gan                 # Zhang et al., §3.5: mixup GAN on 2-D toys
    keras-mixup tune --compare                # uniform-design search vs grid and random
    keras-mixup bench --quick                 # benchmarks/ of a source checkout

The arguments are parsed and checked by the top-level module
``keras_mixup_cli`` (the console script's entry point), which needs only the
standard library: ``--help`` and usage errors answer before Keras is
imported. This module holds the commands themselves; ``main`` here is the
same command, for ``python -m keras_mixup.cli``.

`main(argv)` returns the exit code: 0 on success, 2 for bad arguments or
missing data (with a one-line message on stderr).
"""

import importlib.util
import pathlib
import subprocess
import sys

import keras_mixup_cli
from keras_mixup_cli import (DATASETS, METHODS, PROG, UsageError, build_parser, plural,
                             quiet_startup)

__all__ = ["BENCHMARKS", "DATASETS", "METHODS", "PROG", "UsageError", "benchmarks_dir",
           "build_parser", "main", "run"]

BENCHMARKS = ("bench_layers.py", "bench_train_step.py")


# ------------------------------------------------------------- commands


def _import_tensorflow_quietly():
    # keras.utils.set_random_seed imports TensorFlow (when installed) under
    # any Keras backend: import it now, without its start-up logs.
    if "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow"):
        with quiet_startup():
            import tensorflow  # noqa: F401


def _demo(args):
    _import_tensorflow_quietly()
    from keras_mixup import demo  # imports matplotlib, scikit-learn: only when needed

    try:
        demo.run_demo(
            data_name=args.data, methods=args.methods, epochs=args.epochs,
            label_noise=args.label_noise, alpha=args.alpha, seed=args.seed,
            out=args.out, batch_size=args.batch_size,
        )
    except (demo.DataUnavailable, demo.UnsuitableData) as error:
        raise UsageError(str(error)) from None
    return 0


def _reproduce_label_noise(args):
    _import_tensorflow_quietly()
    from keras_mixup import demo

    print(f"Zhang et al. (2018), Table 2, on digits: {plural(args.epochs, 'epoch')} per run, "
          f"noise {', '.join(f'{n:.0%}' for n in args.noise)}")
    rows = demo.reproduce_label_noise(args.noise, epochs=args.epochs, seed=args.seed)
    print()
    print(demo.label_noise_table(rows))
    return 0


def _experiment(title, run, table):
    """Prints ``title``, runs ``run()``, prints ``table(result)`` and the
    wall time."""
    _import_tensorflow_quietly()
    import time

    print(title, flush=True)
    start = time.time()
    result = run()
    print()
    print(table(result))
    print(f"\nWall time {time.time() - start:.0f} s.")
    return 0


def _reproduce_mixupe(args):
    from keras_mixup import reproduce

    seeds = args.seeds or (2 if args.quick else 5)
    epochs = args.epochs or ({"digits": 15, "iris": 60} if args.quick else None)
    return _experiment(
        f"MixupE (Zou et al., 2023), UCI rows, on digits and iris: {plural(seeds, 'seed')}",
        lambda: reproduce.run_mixupe(seeds=seeds, epochs=epochs), reproduce.mixupe_table)


def _reproduce_manifold(args):
    from keras_mixup import reproduce

    seeds = args.seeds or (1 if args.quick else 3)
    epochs = args.epochs or (20 if args.quick else 60)
    return _experiment(
        f"Manifold mixup (Verma et al., 2019) on digits: {plural(seeds, 'seed')}, "
        f"{plural(epochs, 'epoch')} per run",
        lambda: reproduce.run_manifold(seeds=seeds, epochs=epochs), reproduce.manifold_table)


def _reproduce_ablation(args):
    from keras_mixup.reproduce import ablation

    if args.rows == ["help"]:
        print("\n".join(f"{key:16s} {label}" for key, (label, _, _) in ablation.ROWS.items()))
        return 0
    unknown = [r for r in args.rows or () if r not in ablation.ROWS]
    if unknown:
        raise UsageError(f"argument --rows: unknown {', '.join(unknown)}; choose from "
                         f"{','.join(ablation.ROWS)}")
    seeds = args.seeds or (1 if args.quick else 2)
    epochs = args.epochs or (4 if args.quick else 15)
    data = args.data or ("digits" if args.quick else "fashion_mnist")
    decays = ablation.WEIGHT_DECAYS[:1] if args.quick else ablation.WEIGHT_DECAYS
    return _experiment(
        f"Ablation (Zhang et al., 2018, §3.8) on {data}: {plural(seeds, 'seed')}, "
        f"{plural(epochs, 'epoch')} per run, weight decay "
        + " and ".join(ablation.decay_text(wd) for wd in decays),
        lambda: ablation.run_ablation(args.rows, data, seeds, epochs, decays),
        ablation.ablation_table)


def _reproduce_adversarial(args):
    from keras_mixup.reproduce import adversarial

    seeds = args.seeds or (1 if args.quick else 3)
    epochs = args.epochs or (5 if args.quick else 15)
    data = args.data or ("digits" if args.quick else "fashion_mnist")
    epsilons = args.epsilons or list(adversarial.EPSILONS)

    def run():
        outcome = adversarial.run_adversarial(data, seeds, epochs, epsilons)
        adversarial.plot_adversarial(outcome, args.out)
        return outcome

    code = _experiment(
        f"Adversarial examples (Zhang et al., 2018, §3.5) on {data}: "
        f"{plural(seeds, 'seed')}, {plural(epochs, 'epoch')} per model",
        run, adversarial.adversarial_table)
    print(f"Wrote {args.out}")
    return code


def _reproduce_gan(args):
    from keras_mixup.reproduce import gan

    def run():
        results = gan.run_gan(seeds=args.seeds, steps=args.steps, quick=args.quick)
        gan.plot_gan(results["samples"], args.out)
        return results

    config_seeds = args.seeds or (gan.QUICK_SEEDS if args.quick else gan.SEEDS)
    config_steps = args.steps or (gan.QUICK_STEPS if args.quick else gan.STEPS)
    code = _experiment(
        f"GAN vs mixup GAN (Zhang et al., 2018, §3.5) on a ring of 8 and a grid of 25 "
        f"Gaussians: {plural(config_seeds, 'seed')}, {config_steps} iterations per run",
        run, gan.gan_table)
    print(f"Wrote {args.out}")
    return code


def benchmarks_dir():
    """``benchmarks/`` next to the package: present in a source checkout."""
    return pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


def _bench(args):
    folder = benchmarks_dir()
    scripts = [folder / name for name in BENCHMARKS]
    if not all(script.is_file() for script in scripts):
        raise UsageError(
            f"benchmarks not found in {folder}: they ship with the source repository "
            "(git clone it and `pip install -e .`), not with the installed package")
    for script in scripts:
        command = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        print(f"$ {' '.join(command)}", flush=True)
        code = subprocess.run(command, check=False).returncode
        if code != 0:
            print(f"{PROG} bench: error: {script.name} exited with code {code}",
                  file=sys.stderr)
            return code
    return 0


def _tune(args):
    _import_tensorflow_quietly()
    from keras_mixup import cli_tune

    cli_tune.run_tune(args)
    return 0


COMMANDS = {
    "demo": _demo,
    "tune": _tune,
    "reproduce_label_noise": _reproduce_label_noise,
    "reproduce_mixupe": _reproduce_mixupe,
    "reproduce_manifold": _reproduce_manifold,
    "reproduce_ablation": _reproduce_ablation,
    "reproduce_adversarial": _reproduce_adversarial,
    "reproduce_gan": _reproduce_gan,
    "bench": _bench,
}


# ----------------------------------------------------------------- main


def run(args, command=PROG):
    """Runs the command of parsed and checked ``args`` (from
    ``keras_mixup_cli``); returns the exit code."""
    try:
        return COMMANDS[args.run](args)
    except UsageError as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


def main(argv=None):
    """Runs the ``keras-mixup`` command; returns the exit code."""
    return keras_mixup_cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
