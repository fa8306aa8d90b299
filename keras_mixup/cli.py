"""The ``keras-mixup`` command: a demo, paper reproductions and benchmarks.

    keras-mixup demo                          # ERM vs the mixup family on digits
    keras-mixup demo --data fashion_mnist --label-noise 0.5
    keras-mixup reproduce label-noise         # Zhang et al., Table 2, on digits
    keras-mixup bench --quick                 # benchmarks/ of a source checkout

`main(argv)` returns the exit code: 0 on success, 2 for bad arguments or
missing data (with a one-line message on stderr).
"""

import argparse
import os
import pathlib
import subprocess
import sys

from keras_mixup import __version__

PROG = "keras-mixup"
METHODS = ("erm", "mixup", "cutmix", "manifold", "mixupe")
DATASETS = ("digits", "fashion_mnist", "cifar10")
BENCHMARKS = ("bench_layers.py", "bench_train_step.py")


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line: ``prog: error: ... (see --help)``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class UsageError(Exception):
    """Bad arguments found after parsing; reported as one line, exit 2."""


# ------------------------------------------------------------ arguments


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _fraction(text):
    """A fraction of corrupted labels, in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(
            f"must be in [0, 1) (a fraction of the training labels), got {text!r}")
    return value


def _fractions(text):
    values = [_fraction(part) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError("give at least one noise level, e.g. 0.2,0.5,0.8")
    return values


def _methods(text):
    methods = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part not in METHODS:
            raise argparse.ArgumentTypeError(
                f"unknown method {part!r}; choose from {','.join(METHODS)}")
        if part not in methods:
            methods.append(part)
    if not methods:
        raise argparse.ArgumentTypeError(f"give at least one of {','.join(METHODS)}")
    return methods


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def build_parser():
    parser = _Parser(
        prog=PROG,
        description="The mixup family of regularizers for Keras 3: a demo, paper "
        "reproductions and benchmarks.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="train ERM and the mixup family on offline data; table + PNGs",
        description="Trains the same MLP with ERM, input mixup, CutMix, manifold "
        "mixup (sites at the input and after the first hidden block) and MixupE "
        "(input mixup + MixupE(mode='fast')), all through keras_mixup.MixupModel. "
        "Prints best / last test error, calibration (ECE) and the rescaled "
        "prediction of Carratino et al. as a Markdown table, and writes learning "
        "curves, a reliability diagram and mixed samples as PNGs. About 2 "
        "minutes on 2 CPU cores with the defaults.",
    )
    demo.add_argument("--data", choices=DATASETS, default="digits",
                      help="digits (default; ships with scikit-learn), fashion_mnist "
                      "(Debian package dataset-fashion-mnist; 10k/2k subset) or cifar10 "
                      "(tensorflow_datasets, if already downloaded; else digits)")
    demo.add_argument("--label-noise", type=_fraction, default=0.5, metavar="FRACTION",
                      help="fraction of training labels replaced by random classes, in "
                      "[0, 1) (default 0.5: Zhang et al.'s label-noise experiment; 0 "
                      "for clean labels)")
    demo.add_argument("--methods", type=_methods, default=list(METHODS), metavar="LIST",
                      help=f"comma-separated subset of {','.join(METHODS)} (default: all)")
    demo.add_argument("--epochs", type=_positive_int, default=None,
                      help="epochs per method (default 50 for digits, 15 otherwise)")
    demo.add_argument("--alpha", type=_positive_float, default=None,
                      help="mixup's Beta(α, α) concentration (default: 1 for clean "
                      "labels, 8 up to 35%% noise, 32 above, as in Zhang et al.)")
    demo.add_argument("--batch-size", type=_positive_int, default=64)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="keras_mixup_demo", metavar="FOLDER",
                      help="folder for the PNGs (default keras_mixup_demo/)")
    demo.set_defaults(handler=_demo)

    reproduce = commands.add_parser(
        "reproduce", help="reproduce a paper's experiment at small scale",
        description="Reproduces a paper's experiment at small scale on CPU.")
    experiments = reproduce.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    noise = experiments.add_parser(
        "label-noise", help="Zhang et al. (2018), Table 2: ERM vs mixup, corrupted labels",
        description="The label-corruption experiment of Zhang et al. (ICLR 2018, "
        "Table 2) on sklearn's digits: an MLP trained with SGD, ERM vs input "
        "mixup (α = 8 at 20% noise, 32 above), best and last-epoch test error, "
        "next to the paper's CIFAR-10 numbers. About 2 minutes on 2 CPU cores "
        "with the defaults.")
    noise.add_argument("--noise", type=_fractions, default=[0.2, 0.5, 0.8], metavar="LIST",
                       help="comma-separated fractions of corrupted labels (default "
                       "0.2,0.5,0.8)")
    noise.add_argument("--epochs", type=_positive_int, default=60,
                       help="epochs per run (default 60)")
    noise.add_argument("--seed", type=int, default=0)
    noise.set_defaults(handler=_reproduce_label_noise)
    reproduce.set_defaults(handler=_missing(reproduce, "choose an experiment: label-noise"))

    bench = commands.add_parser(
        "bench", help="run the benchmarks of a source checkout",
        description="Runs benchmarks/bench_layers.py and benchmarks/bench_train_step.py "
        "(they ship with the source repository, not with the package).")
    bench.add_argument("--quick", action="store_true", help="short runs with small shapes")
    bench.set_defaults(handler=_bench)

    parser.set_defaults(handler=_missing(parser, "choose a command: demo, reproduce or bench"))
    return parser


def _missing(parser, message):
    def handler(args):
        raise UsageError(f"{message} (see `{parser.prog} --help`)")
    return handler


# ------------------------------------------------------------- commands


def _quiet_tensorflow():
    # Hides TensorFlow's C++ info logs (effective if it is not imported yet).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _demo(args):
    _quiet_tensorflow()
    from keras_mixup import demo  # imports TensorFlow: only when needed

    try:
        demo.run_demo(
            data_name=args.data, methods=args.methods, epochs=args.epochs,
            label_noise=args.label_noise, alpha=args.alpha, seed=args.seed,
            out=args.out, batch_size=args.batch_size,
        )
    except demo.DataUnavailable as error:
        raise UsageError(str(error)) from None
    return 0


def _reproduce_label_noise(args):
    _quiet_tensorflow()
    from keras_mixup import demo

    print(f"Zhang et al. (2018), Table 2, on digits: {args.epochs} epochs per run, "
          f"noise {', '.join(f'{n:.0%}' for n in args.noise)}")
    rows = demo.reproduce_label_noise(args.noise, epochs=args.epochs, seed=args.seed)
    print()
    print(demo.label_noise_table(rows))
    return 0


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


# ----------------------------------------------------------------- main


def main(argv=None):
    """Runs the ``keras-mixup`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else 2
    command = " ".join(filter(None, [PROG, args.command, getattr(args, "experiment", None)]))
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
