"""``keras-mixup tune``: hyper-parameter search by uniform design on digits.

Each run trains the demo's MLP (256 units) through `MixupModel` with the
run's factor values on 300 images of scikit-learn's digits (the rest of the
training split, 957 images, validates; 540 test), and records the
validation and test error of the last epoch. Factors (ranges from the command line):

- ``alpha``: the MixUp α (input mixup; with ``site_weight``, at both sites);
- ``label_smoothing``: ε of the cross-entropy (labels one-hot);
- ``learning_rate``: SGD with momentum 0.9;
- ``eta``: MixupE's η (adds ``MixupE(eta, mode="fast")``);
- ``site_weight``: share of the steps that mix at the hidden site (manifold
  mixup with sites at the input and after the first hidden block).

Runs are appended to a JSON-lines results file as they finish (the first
line says what search it holds), so an interrupted search loses no
finished run and continues where it stopped. ``--compare`` runs grid search
(``⌊n^(1/s)⌋`` levels a factor, at most ``n`` runs) and random search
(``n`` points) at the same budget.
"""

import json
import math
import os
import sys
import time

import numpy as np

from keras_mixup_cli import UsageError

ORDER = ("uniform", "grid", "random")
TRAIN = 300


# ------------------------------------------------------------- plans


def search_plans(factors, runs, levels, compare, seed=12345):
    """``{method: (n, s) values}``: the uniform design, and with ``compare``
    the grid and the random points of the same budget."""
    from keras_mixup import tune

    s = len(factors)
    try:
        design = tune.uniform_design(runs, s, levels)
    except ValueError as error:
        raise UsageError(str(error)) from None
    ranges = [(low, high, scale) for _, low, high, scale in factors]
    plans = {"uniform": tune.level_values(design, ranges, levels or runs)}
    if compare:
        per = max(2, int(math.floor(runs ** (1.0 / s) + 1e-9)))
        while per > 2 and per**s > runs:
            per -= 1
        grid = np.array(list(np.ndindex(*([per] * s))), dtype=float) / max(per - 1, 1)
        plans["grid"] = tune.unit_values(grid[:runs] if per**s > runs else grid, ranges)
        rng = np.random.default_rng(seed)
        plans["random"] = tune.unit_values(rng.uniform(size=(runs, s)), ranges)
    return plans


# ----------------------------------------------------------- results


def spec_of(args):
    return {
        "data": "digits",
        "factors": [list(f) for f in args.factors],
        "runs": args.runs,
        "levels": args.levels or args.runs,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "compare": bool(args.compare),
    }


def read_results(path, spec):
    """The finished runs ``{(method, run, seed): record}`` of a results file
    written for ``spec`` (an empty dict when there is no file)."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(
            f"--results {path}: cannot read it as a keras-mixup tune results file "
            f"({error}); pass a new --results path, or delete the file") from None
    if not lines or lines[0].get("kind") != "keras-mixup tune":
        raise UsageError(
            f"--results {path}: not a keras-mixup tune results file; pass a new "
            "--results path")
    if lines[0].get("spec") != spec:
        raise UsageError(
            f"--results {path} holds a different search ({_describe(lines[0].get('spec'))}); "
            f"this one is ({_describe(spec)}). Pass the same arguments to continue "
            "it, or a new --results path")
    done = {}
    for record in lines[1:]:
        try:
            done[(record["method"], int(record["run"]), int(record["seed"]))] = record
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"--results {path}: a malformed line {record!r}") from None
    return done


def _describe(spec):
    if not isinstance(spec, dict):
        return repr(spec)
    names = ",".join(f[0] for f in spec.get("factors", []))
    return (f"factors {names}, runs {spec.get('runs')}, levels {spec.get('levels')}, "
            f"epochs {spec.get('epochs')}, seeds {spec.get('seeds')}, "
            f"compare {spec.get('compare')}")


def _append(path, record):
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


# ----------------------------------------------------------- training


def _split(data, seed=0):
    """A fixed training subset of `TRAIN` examples of the training split;
    the rest of it validates (a small training set keeps the errors far
    enough from 0 for the runs to differ)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.x_train))
    train, val = order[:TRAIN], order[TRAIN:]
    return (data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val])


def train_one(data, values, epochs, seed):
    """Trains one configuration; returns ``(validation error %, test error
    %)`` after the last epoch."""
    import keras

    import keras_mixup
    from keras_mixup import demo

    alpha = values.get("alpha", 0.2)
    smoothing = values.get("label_smoothing", 0.0)
    lr = values.get("learning_rate", 0.05)
    x_train, y_train, x_val, y_val = _split(data)
    classes = data.num_classes
    if "site_weight" in values:
        w = values["site_weight"]
        plain = demo.make_mlp(x_train.shape[1:], seed, width=256, manifold_alpha=alpha,
                              num_classes=classes)
        model, mixer, sites = plain, None, (1.0 - w, w)
    else:
        plain = demo.make_mlp(x_train.shape[1:], seed, width=256, num_classes=classes)
        mixer, sites = keras_mixup.layers.MixUp(alpha=alpha), None
    regularizer = keras_mixup.MixupE(eta=values["eta"]) if "eta" in values else None
    model = keras_mixup.MixupModel(plain, mixer=mixer, site_weights=sites, seed=seed,
                                   regularizer=regularizer)
    model.compile(
        optimizer=keras.optimizers.SGD(lr, momentum=0.9),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing),
    )
    one_hot = np.eye(classes, dtype="float32")
    model.fit(x_train, one_hot[y_train], batch_size=64, epochs=epochs, verbose=0)

    def error(x, y):
        logits = keras.ops.convert_to_numpy(plain(x, training=False))
        return 100.0 * float(np.mean(np.argmax(logits, -1) != y))

    return error(x_val, y_val), error(data.x_test, data.y_test)


# ------------------------------------------------------------- report


def summarize(records, plans, factors):
    """Per method: the configuration with the lowest mean validation error
    over seeds, with its test error (mean, std over seeds)."""
    rows = []
    names = [f[0] for f in factors]
    for method in ORDER:
        if method not in plans:
            continue
        by_run = {}
        for (m, run, _), r in records.items():
            if m == method:
                by_run.setdefault(run, []).append(r)
        if not by_run:
            continue
        best = min(by_run, key=lambda run: np.mean([r["val_error"] for r in by_run[run]]))
        val = [r["val_error"] for r in by_run[best]]
        test = [r["test_error"] for r in by_run[best]]
        rows.append({
            "method": method, "runs": len(plans[method]), "best_run": best,
            "values": dict(zip(names, plans[method][best].tolist())),
            "val": (float(np.mean(val)), float(np.std(val))),
            "test": (float(np.mean(test)), float(np.std(test))),
            "mean_val": {run: float(np.mean([r["val_error"] for r in rs]))
                         for run, rs in by_run.items()},
        })
    return rows


def table(rows):
    lines = ["| search | runs | best validation error % | its test error % | values |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        values = ", ".join(f"{k}={_fmt(v)}" for k, v in r["values"].items())
        lines.append(f"| {r['method']} | {r['runs']} | {r['val'][0]:.2f} ± {r['val'][1]:.2f} "
                     f"| {r['test'][0]:.2f} ± {r['test'][1]:.2f} | {values} |")
    return "\n".join(lines)


def _fmt(v):
    return f"{v:.3g}"


def plot(rows, plans, factors, path):
    """The runs of each search on the first two factors, coloured by mean
    validation error; the best circled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(4.6 * len(rows), 3.8), squeeze=False)
    fig.subplots_adjust(wspace=0.35)
    errors = [v for r in rows for v in r["mean_val"].values()]
    lo, hi = min(errors), max(errors)
    for ax, r in zip(axes[0], rows):
        pts = plans[r["method"]]
        runs = sorted(r["mean_val"])
        x = pts[runs, 0]
        y = pts[runs, 1] if pts.shape[1] > 1 else np.zeros(len(runs))
        sc = ax.scatter(x, y, c=[r["mean_val"][i] for i in runs], cmap="viridis_r",
                        vmin=lo, vmax=hi, s=40)
        bx = pts[r["best_run"], 0]
        by = pts[r["best_run"], 1] if pts.shape[1] > 1 else 0.0
        ax.scatter([bx], [by], s=160, facecolors="none", edgecolors="red", linewidths=1.5)
        ax.set_title(f"{r['method']} ({r['runs']} runs): best {r['val'][0]:.2f}%")
        for k, (set_label, set_scale, set_lim) in enumerate((
                (ax.set_xlabel, ax.set_xscale, ax.set_xlim),
                (ax.set_ylabel, ax.set_yscale, ax.set_ylim))):
            if k >= pts.shape[1]:
                break
            name, low, high, scale = factors[k]
            set_label(name)
            if scale == "log":
                set_scale("log")
                set_lim(low / 1.25, high * 1.25)
            else:
                pad = 0.05 * (high - low)
                set_lim(low - pad, high + pad)
    fig.colorbar(sc, ax=axes[0].tolist(), label="validation error % (mean over seeds)")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# --------------------------------------------------------------- main


def run_tune(args, train=train_one, out=None):
    """The command: plans, runs what the results file lacks, reports."""
    out = out or sys.stdout
    from keras_mixup.demo_data import load_data

    factors = [tuple(f) for f in args.factors]
    plans = search_plans(factors, args.runs, args.levels, args.compare)
    spec = spec_of(args)
    done = read_results(args.results, spec)
    if not os.path.exists(args.results):
        folder = os.path.dirname(os.path.abspath(args.results))
        os.makedirs(folder, exist_ok=True)
        _append(args.results, {"kind": "keras-mixup tune", "spec": spec})
    todo = [
        (method, run, seed)
        for method in ORDER if method in plans
        for run in range(len(plans[method]))
        for seed in range(args.seeds)
        if (method, run, seed) not in done
    ]
    total = sum(len(p) for p in plans.values()) * args.seeds
    names = [f[0] for f in factors]
    print(f"Uniform-design search on digits: {len(factors)} factor(s) "
          f"({', '.join(names)}), {args.runs} runs x {args.seeds} seed(s), "
          f"{args.epochs} epoch(s) each; {total - len(todo)} of {total} trainings "
          f"already in {args.results}", file=out, flush=True)
    data = load_data("digits", seed=0) if todo else None
    start = time.time()
    for k, (method, run, seed) in enumerate(todo, 1):
        values = dict(zip(names, plans[method][run].tolist()))
        t0 = time.time()
        val, test = train(data, values, args.epochs, seed)
        record = {"method": method, "run": run, "seed": seed, "values": values,
                  "val_error": val, "test_error": test, "seconds": round(time.time() - t0, 2)}
        _append(args.results, record)
        done[(method, run, seed)] = record
        shown = ", ".join(f"{n}={_fmt(v)}" for n, v in values.items())
        print(f"[{k}/{len(todo)}] {method} run {run + 1} seed {seed}: {shown} -> "
              f"validation {val:.2f}%, test {test:.2f}% ({record['seconds']:.1f} s)",
              file=out, flush=True)
    rows = summarize(done, plans, factors)
    print("", file=out)
    print(table(rows), file=out)
    print(f"\nWall time {time.time() - start:.0f} s for {len(todo)} training(s).", file=out)
    if args.out:
        print(f"Wrote {plot(rows, plans, factors, args.out)}", file=out)
    return rows
