"""The ``keras-mixup`` command's front door: standard library only.

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

Importing ``keras_mixup`` imports Keras and its backend (TensorFlow takes
seconds to start and logs on the way). This module parses and checks the
arguments first, so ``--help`` and usage errors answer at once, quietens
TensorFlow's start-up logs, and only then imports the commands
(`keras_mixup.cli`). ``quiet_startup`` is usable on its own, around the
imports of a script (the examples use it).

`main(argv)` returns the exit code: 0 on success, 2 for bad arguments or
missing data (with a one-line message on stderr).
"""

import argparse
import contextlib
import os
import re
import sys

PROG = "keras-mixup"
METHODS = ("erm", "mixup", "cutmix", "manifold", "mixupe")
DATASETS = ("digits", "fashion_mnist", "cifar10")
TFDS_PREFIX = "tfds:"
# Seeds go to NumPy and scikit-learn, which take 0 ... 2**32 - 1.
MAX_SEED = 2**32 - 1


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line: ``prog: error: ... (see --help)``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class UsageError(Exception):
    """Bad arguments found after parsing; reported as one line, exit 2."""


def plural(count, word):
    """'1 epoch', '2 epochs'."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _version():
    """keras_mixup's ``__version__``, read from its source without importing it
    (the import would start Keras)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("keras_mixup")
        with open(spec.origin, encoding="utf-8") as f:
            match = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", f.read(), re.M)
        if match:
            return match.group(1)
    except (AttributeError, OSError, TypeError, ValueError):
        pass
    from importlib import metadata

    try:
        return metadata.version("keras-mixup")
    except metadata.PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------ arguments
# positive_int, positive_float, non_negative_float, open_fraction and
# subset_of are also the argument types of the scripts in examples/.


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 0 to {MAX_SEED}, got {text!r}")
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
        raise argparse.ArgumentTypeError("give at least one value in [0, 1), e.g. 0.2,0.5,0.8")
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


def _names(text):
    """A comma-separated list of names (checked against the experiment's
    own list after parsing)."""
    names = []
    for part in text.split(","):
        part = part.strip().lower()
        if part and part not in names:
            names.append(part)
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def subset_of(choices):
    """An argument type: a comma-separated subset of ``choices``, returned
    as a list in the order given (repeats dropped)."""
    choices = tuple(choices)

    def parse(text):
        names = list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
        unknown = [n for n in names if n not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}; choose from {','.join(choices)}" if unknown
                else f"give at least one of {','.join(choices)}")
        return names

    return parse


def non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def open_fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}")
    return value


def parse_tfds(text):
    """``'tfds:NAME[:SPLIT]'`` -> ``(NAME, SPLIT or None)``; None if ``text``
    does not start with ``tfds:``. Raises ValueError when NAME is missing."""
    if not text.startswith(TFDS_PREFIX):
        return None
    name, colon, split = text[len(TFDS_PREFIX):].partition(":")
    name, split = name.strip(), split.strip()
    if not name:
        raise ValueError(f"give a dataset name after {TFDS_PREFIX!r}, e.g. tfds:mnist "
                         "or tfds:cifar10:train[:50%]")
    if colon and not split:
        raise ValueError(f"give a split after {TFDS_PREFIX}{name}:, e.g. "
                         f"{TFDS_PREFIX}{name}:train, or leave the colon out")
    return name, split or None


def _dataset(text):
    text = text.strip()
    if text in DATASETS:
        return text
    try:
        parsed = parse_tfds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error))
    if parsed is None:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {text!r}; choose from {', '.join(DATASETS)} or "
            f"{TFDS_PREFIX}NAME[:SPLIT] (an image dataset tensorflow-datasets has "
            "prepared, e.g. tfds:mnist)")
    name, split = parsed
    return f"{TFDS_PREFIX}{name}" + (f":{split}" if split else "")


# `keras-mixup tune`'s factors: default range and scale, and the values
# they may take ((low, high), bounds included unless marked open).
FACTORS = {
    "alpha": ((0.05, 4.0, "log"), (0.0, None), "MixUp's α (> 0)"),
    "label_smoothing": ((0.0, 0.2, "linear"), (0.0, 1.0), "ε of the cross-entropy, in [0, 1)"),
    "learning_rate": ((0.005, 0.2, "log"), (0.0, None), "SGD's learning rate (> 0)"),
    "eta": ((1e-4, 0.1, "log"), (0.0, None), "MixupE's η (> 0)"),
    "site_weight": ((0.0, 1.0, "linear"), (0.0, 1.0), "share of steps mixing at the hidden site, in [0, 1]"),
}
DEFAULT_FACTORS = ("alpha", "learning_rate", "label_smoothing")


def _factor(text):
    """``NAME`` or ``NAME=LOW:HIGH[:log|linear]`` -> (name, low, high, scale)."""
    name, eq, spec = text.partition("=")
    name = name.strip().lower()
    if name not in FACTORS:
        raise argparse.ArgumentTypeError(
            f"unknown factor {name!r}; choose from {', '.join(FACTORS)}")
    (low, high, scale), (lo_ok, hi_ok), what = FACTORS[name]
    if eq:
        parts = [p.strip() for p in spec.split(":")]
        if len(parts) not in (2, 3):
            raise argparse.ArgumentTypeError(
                f"{name}: give the range as LOW:HIGH or LOW:HIGH:log, e.g. {name}={low}:{high}")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name}: LOW and HIGH must be numbers, got {spec!r}") from None
        if len(parts) == 3:
            if parts[2] not in ("log", "linear"):
                raise argparse.ArgumentTypeError(
                    f"{name}: the scale must be 'log' or 'linear', got {parts[2]!r}")
            scale = parts[2]
        if not low < high:
            raise argparse.ArgumentTypeError(
                f"{name}: the range {low:g}:{high:g} is empty or inverted; give LOW < HIGH")
    open_low = name in ("alpha", "learning_rate", "eta")
    if (low < lo_ok or (open_low and low <= lo_ok) or (hi_ok is not None and high > hi_ok)
            or (name == "label_smoothing" and high >= 1.0)):
        raise argparse.ArgumentTypeError(f"{name}: {low:g}:{high:g} is outside its values ({what})")
    if scale == "log" and low <= 0:
        raise argparse.ArgumentTypeError(f"{name}: a log scale needs LOW > 0, got {low:g}")
    return (name, low, high, scale)


def _run_size(parser, seeds, epochs, quick):
    """The --seeds, --epochs and --quick arguments of an experiment."""
    parser.add_argument("--seeds", type=positive_int, default=None, help=seeds)
    parser.add_argument("--epochs", type=positive_int, default=None, help=epochs)
    parser.add_argument("--quick", action="store_true", help=quick)


def _image_data(parser):
    """The --data argument of the image experiments (ablation, adversarial)."""
    parser.add_argument("--data", choices=("fashion_mnist", "digits"), default=None,
                        help="fashion_mnist (default; digits when it is not installed) or "
                        "digits (default with --quick)")


def build_parser():
    parser = _Parser(
        prog=PROG,
        description="The mixup family of regularizers for Keras 3: a demo, paper "
        "reproductions and benchmarks.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {_version()}")
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
    demo.add_argument("--data", type=_dataset, default="digits", metavar="DATA",
                      help="digits (default; ships with scikit-learn), fashion_mnist "
                      "(Debian package dataset-fashion-mnist; 10k/2k subset), cifar10 "
                      "(tensorflow-datasets, if already downloaded; else digits) or "
                      "tfds:NAME[:SPLIT]: any image-classification dataset that "
                      "tensorflow-datasets has prepared on this machine (nothing is "
                      "downloaded; else digits), e.g. tfds:mnist or "
                      "tfds:cifar100:train[:20%%]. Trains on SPLIT (default train) and "
                      "tests on the test split, or on 30%% held out of SPLIT when the "
                      "dataset has none; images larger than 32×32 or of varying size "
                      "are resized to 32×32")
    demo.add_argument("--label-noise", type=_fraction, default=0.5, metavar="FRACTION",
                      help="fraction of training labels replaced by random classes, in "
                      "[0, 1) (default 0.5: Zhang et al.'s label-noise experiment; 0 "
                      "for clean labels)")
    demo.add_argument("--methods", type=_methods, default=list(METHODS), metavar="LIST",
                      help=f"comma-separated subset of {','.join(METHODS)} (default: all)")
    demo.add_argument("--epochs", type=positive_int, default=None,
                      help="epochs per method (default 50 for digits, 15 otherwise)")
    demo.add_argument("--alpha", type=positive_float, default=None,
                      help="mixup's Beta(α, α) concentration (default: 1 for clean "
                      "labels, 8 up to 35%% noise, 32 above, as in Zhang et al.)")
    demo.add_argument("--batch-size", type=positive_int, default=64)
    demo.add_argument("--seed", type=_seed, default=0,
                      help=f"random seed, 0 to {MAX_SEED} (default 0)")
    demo.add_argument("--out", default="keras_mixup_demo", metavar="FOLDER",
                      help="folder for the PNGs (default keras_mixup_demo/); checked "
                      "before training")
    demo.set_defaults(run="demo", check=_check_demo)

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
    noise.add_argument("--epochs", type=positive_int, default=60,
                       help="epochs per run (default 60)")
    noise.add_argument("--seed", type=_seed, default=0,
                       help=f"random seed, 0 to {MAX_SEED} (default 0)")
    noise.set_defaults(run="reproduce_label_noise")
    mixupe = experiments.add_parser(
        "mixupe", help="MixupE paper's UCI rows: ERM / mixup / MixupE on digits and iris",
        description="ERM, input mixup and MixupE (Zou et al., UAI 2023) on scikit-learn's "
        "digits (the UCI Optdigits test set) and iris, next to the paper's UCI numbers: "
        "stratified 70/30 split per seed, an MLP, SGD; last-epoch test error, mean and "
        "std over seeds. About 3 minutes with the defaults; --quick about 40 seconds.")
    _run_size(mixupe, "seeds (default 5; 2 with --quick)",
              "epochs for every dataset (default 60 for digits, 200 for iris)",
              "a run of well under a minute")
    mixupe.set_defaults(run="reproduce_mixupe")
    manifold = experiments.add_parser(
        "manifold", help="manifold mixup at each site, and with the gradient blocked",
        description="ERM, input mixup, manifold mixup (Verma et al., ICML 2019) at each "
        "hidden site alone, at every site, and at every site with the gradient blocked "
        "at the mixing layer (MixUp(stop_gradient=True)), on digits with a three-block "
        "MLP. About 4 minutes with the defaults; --quick about a minute.")
    _run_size(manifold, "seeds (default 3; 1 with --quick)",
              "epochs per run (default 60; 20 with --quick)", "a run of about a minute")
    manifold.set_defaults(run="reproduce_manifold")
    ablation = experiments.add_parser(
        "ablation", help="Zhang et al. (2018), §3.8: the ablation table",
        description="The mixup paper's ablation (Zhang et al., ICLR 2018, §3.8) with a "
        "small CNN: ERM; mixup with random pairs (AC + RP) or nearest neighbours (KNN); "
        "mixing the features of layer 1, 2 or 3; mixing the inputs only (SC/AC + "
        "KNN/RP); label smoothing; mixed inputs + label smoothing; Gaussian input "
        "noise; 3-way mixup; each at weight decays 1e-4 and 5e-4. Fashion-MNIST (4,000 "
        "training / 2,000 test images; Debian package dataset-fashion-mnist) or digits. "
        "About 25 minutes on 2 CPU cores with the defaults; --quick (digits, one seed, "
        "weight decay 1e-4) about 2 minutes.")
    _image_data(ablation)
    ablation.add_argument("--rows", type=_names, default=None, metavar="LIST",
                          help="comma-separated subset of the rows (default: all; `--rows "
                          "help` lists them)")
    _run_size(ablation, "seeds (default 2; 1 with --quick)",
              "epochs per run (default 15; 4 with --quick)", "a run of about 2 minutes")
    ablation.set_defaults(run="reproduce_ablation")
    adversarial = experiments.add_parser(
        "adversarial", help="Zhang et al. (2018), §3.5: FGSM / I-FGSM, white and black box",
        description="Robustness to adversarial examples (Zhang et al., ICLR 2018, §3.5) "
        "with a small CNN: ERM vs mixup, top-1 error under FGSM and iterative FGSM "
        "(10 steps), white-box (the attacked model's own gradients) and black-box "
        "(examples made on an independently trained ERM model), at several ε on "
        "inputs in [0, 1]. Fashion-MNIST or digits. About 4 minutes with the defaults; "
        "--quick about a minute.")
    _image_data(adversarial)
    adversarial.add_argument("--epsilons", type=_fractions, default=None, metavar="LIST",
                             help="comma-separated ε in [0, 1) (default 0.02,0.05,0.1)")
    _run_size(adversarial, "seeds (default 3; 1 with --quick)",
              "epochs per model (default 15; 5 with --quick)", "a run of about a minute")
    adversarial.add_argument("--out", default="adversarial.png",
                             help="PNG of error against ε (default adversarial.png)")
    adversarial.set_defaults(run="reproduce_adversarial", check=_check_adversarial)
    gan = experiments.add_parser(
        "gan", help="Zhang et al. (2018), §3.5: plain vs mixup GAN on 2-D toy mixtures",
        description="A plain GAN and a GAN whose discriminator learns from mixup "
        "(keras_mixup.MixupGAN, α = 0.2) on a ring of 8 Gaussians and a 5×5 grid of 25, "
        "each over seeds: modes covered and the fraction of generated points within 3σ "
        "of a mode, at fixed iterations, and a PNG of the samples over training (like "
        "the paper's Figure 5). About 10 minutes on 2 CPU cores with the defaults (3 "
        "seeds, 8,000 iterations); --quick (1 seed, 1,500) about a minute.")
    gan.add_argument("--seeds", type=positive_int, default=None,
                     help="seeds (default 3; 1 with --quick)")
    gan.add_argument("--steps", type=positive_int, default=None,
                     help="iterations per run, at least 8 (default 8000; 1500 with --quick)")
    gan.add_argument("--quick", action="store_true", help="a run of about a minute")
    gan.add_argument("--out", default="gan_mixup.png",
                     help="PNG of the samples (default gan_mixup.png)")
    gan.set_defaults(run="reproduce_gan", check=_check_gan)
    reproduce.set_defaults(run=None, missing=f"choose an experiment: label-noise, mixupe, "
                           f"manifold, ablation, adversarial or gan (see `{PROG} reproduce "
                           "--help`)")

    tune = commands.add_parser(
        "tune", help="hyper-parameter search by uniform design (vs grid and random)",
        description="Searches hyper-parameters of mixup training on digits with a "
        "uniform design (Fang): N runs that take each of the N levels of every "
        "factor once, scattered evenly (good lattice points, chosen by centred L2 "
        "discrepancy). Each run trains an MLP through MixupModel and records the "
        "validation and test error; the results file lets an interrupted search "
        "continue. With --compare, grid and random search get the same budget. "
        "Prints a table and writes a PNG of the runs.")
    tune.add_argument("--factor", dest="factors", type=_factor, action="append",
                      metavar="NAME[=LOW:HIGH[:log]]",
                      help=f"a factor to search (repeat it): {', '.join(FACTORS)}; default "
                      f"{', '.join(DEFAULT_FACTORS)} with their default ranges ("
                      + "; ".join(f"{n} {r[0]:g}:{r[1]:g} {r[2]}" for n, (r, _, _) in FACTORS.items())
                      + ")")
    tune.add_argument("--runs", type=positive_int, default=None,
                      help="runs of the design (default 12; 6 with --quick)")
    tune.add_argument("--levels", type=positive_int, default=None,
                      help="levels per factor, dividing --runs (default: --runs)")
    _run_size(tune, "seeds per run (default 2; 1 with --quick)",
              "epochs per run (default 30; 5 with --quick)", "a run of about a minute")
    tune.add_argument("--compare", action="store_true",
                      help="also grid search and random search with the same budget")
    tune.add_argument("--results", default="tune_results.jsonl",
                      help="JSON-lines results file, continued if it exists (default "
                      "tune_results.jsonl)")
    tune.add_argument("--out", default="tune.png", help="PNG of the runs (default tune.png)")
    tune.set_defaults(run="tune", check=_check_tune)

    bench = commands.add_parser(
        "bench", help="run the benchmarks of a source checkout",
        description="Runs benchmarks/bench_layers.py and benchmarks/bench_train_step.py "
        "(they ship with the source repository, not with the package).")
    bench.add_argument("--quick", action="store_true", help="short runs with small shapes")
    bench.set_defaults(run="bench")

    parser.set_defaults(run=None, check=None, missing=f"choose a command: demo, reproduce, "
                        f"tune or bench (see `{PROG} --help`)")
    return parser


def check_out_folder(path):
    """Raises UsageError unless ``path`` is a folder that exists and can be
    written to, or one that can be created. Creates nothing."""
    if not path.strip():
        raise UsageError("--out: give a folder for the PNGs")
    folder = os.path.abspath(path)
    if os.path.exists(folder):
        if not os.path.isdir(folder):
            raise UsageError(f"--out {path}: that is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"--out {path}: cannot write to that folder (permission denied)")
        return
    parent = os.path.dirname(folder)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(f"--out {path}: cannot create that folder: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {path}: cannot create that folder: {parent} is not "
                         "writable (permission denied)")


def _check_demo(args):
    check_out_folder(args.out)


def _check_png(path):
    if os.path.isdir(path):
        raise UsageError(f"--out {path}: that is a folder; give a file path for the PNG")
    check_out_folder(os.path.dirname(os.path.abspath(path)))


def _check_adversarial(args):
    _check_png(args.out)


def _check_gan(args):
    if args.steps is not None and args.steps < 8:
        raise UsageError(f"--steps {args.steps}: give at least 8 (four checkpoints)")
    _check_png(args.out)


def _check_tune(args):
    quick = args.quick
    args.runs = args.runs or (6 if quick else 12)
    args.epochs = args.epochs or (5 if quick else 30)
    args.seeds = args.seeds or (1 if quick else 2)
    args.factors = args.factors or [_factor(name) for name in DEFAULT_FACTORS]
    names = [f[0] for f in args.factors]
    if len(set(names)) != len(names):
        raise UsageError(f"--factor: each factor once; got {', '.join(names)}")
    if args.runs < 2:
        raise UsageError("--runs: a design needs at least 2 runs")
    if args.levels is not None:
        if args.levels > args.runs:
            raise UsageError(f"--levels {args.levels}: more levels than runs ({args.runs}); "
                             "each level must be run at least once")
        if args.levels < 2 or args.runs % args.levels:
            divisors = [q for q in range(2, args.runs + 1) if args.runs % q == 0]
            raise UsageError(f"--levels {args.levels}: must divide --runs {args.runs} "
                             f"(each level run equally often); choose from {divisors}")
    if os.path.isdir(args.results):
        raise UsageError(f"--results {args.results}: that is a folder; give a file path")
    if args.out:
        _check_png(args.out)


# --------------------------------------------------- quiet TensorFlow


# A line of Abseil's log format, as TensorFlow and XLA write it:
# "I0000 00:00:1796008488.286147   17697 port.cc:153] message" (before
# Abseil's logging is initialized, the seconds count from the epoch), or
# "W0315 14:02:07.123456   17697 file.cc:12] message".
_ABSL_LINE = re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s\]]+:\d+\] ")
_ABSL_BEFORE_INIT = b"WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}


def _drop_startup_lines(text, level):
    """``text`` without the Abseil log lines below ``level`` (0 INFO ... 3 FATAL)."""
    kept = []
    for line in text.splitlines(keepends=True):
        if level >= 1 and line.startswith(_ABSL_BEFORE_INIT):
            continue
        match = _ABSL_LINE.match(line)
        if match and _SEVERITY[match.group(1)] < level:
            continue
        kept.append(line)
    return b"".join(kept)


@contextlib.contextmanager
def quiet_startup():
    """Imports inside this block print no TensorFlow start-up logs.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless it is set (TensorFlow then logs
    only fatal errors — not, among others, the ``failed call to cuInit``
    error of a machine without a GPU). TensorFlow reads the variable only
    after loading its libraries, which log a few lines first (oneDNN, CUDA
    stubs); so while the block runs, stderr goes to a temporary file, and
    at the end everything comes back except the Abseil log lines below the
    level. Python's own output to stderr (warnings, tracebacks) comes back
    as it was. With ``TF_CPP_MIN_LOG_LEVEL=0`` nothing is held back.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        level = int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:
        level = 0
    if level <= 0:
        yield
        return
    import faulthandler
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to hide
        yield
        return
    held = tempfile.TemporaryFile()
    os.dup2(held.fileno(), 2)
    # A crash inside the block (say, TensorFlow aborting on an unsupported
    # CPU) still shows a Python traceback on the real stderr.
    crash_report = None
    if not faulthandler.is_enabled():
        crash_report = os.fdopen(os.dup(saved), "w")
        faulthandler.enable(file=crash_report)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        os.dup2(saved, 2)
        os.close(saved)
        if crash_report is not None:
            faulthandler.disable()
            crash_report.close()
        held.seek(0)
        rest = _drop_startup_lines(held.read(), level)
        held.close()
        while rest:
            rest = rest[os.write(2, rest):]


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
        if args.run is None:
            raise UsageError(args.missing)
        if args.check is not None:
            args.check(args)
    except UsageError as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return 2
    try:
        with quiet_startup():
            from keras_mixup import cli  # imports Keras and its backend
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    return cli.run(args, command)


if __name__ == "__main__":
    sys.exit(main())
