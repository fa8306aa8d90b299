"""JAX-backend rows of the train-step and layer benchmarks.

Keras reads ``KERAS_BACKEND`` once, when it is imported, so the JAX rows
cannot run in the TensorFlow processes of ``bench_train_step.py`` and
``bench_layers.py``: those scripts run this one in a subprocess (``--json``)
and add its rows to their tables. It also runs on its own, e.g. on a GPU
machine that has JAX but no TensorFlow (``benchmarks/gpu_check.sh``).

Sections
--------
``--section train`` (TensorFlow-free: tensorflow is never imported)
    Milliseconds per ``model.train_on_batch(x, y)`` on one fixed batch held
    on the device (random float32 images, int class ids, 10 classes; SGD,
    ``SparseCategoricalCrossentropy(from_logits=True)``). Keras on JAX
    ``jax.jit``-compiles the train step. The network is the CNN of
    ``bench_train_step.py`` (two stages of Conv-Conv-MaxPool, then
    GlobalAveragePooling and Dense 10); ``--scale`` sets its size:

    - ``cpu`` (default): batch 128 of 32x32x3, widths 16/32 — the TF rows'
      model;
    - ``cpu-small``: batch 32 of 32x32x3, widths 8/16, few short rounds (a
      smoke test of the script, not a measurement);
    - ``gpu``: batch 256 of 128x128x3, widths 64/128, so that a step is
      tens of milliseconds of convolutions on a GPU, not kernel launches.

    Rows: ``plain (A)`` (the reference), ``plain (B)`` (the same plain model
    built a second time: the noise floor), ``input MixUp``
    (``MixupModel(plain, mixer=MixUp(alpha=0.2))``), ``input CutMix``
    (``mixer=CutMix(alpha=1.0)``) and ``manifold, 3 sites`` (``MixUp(alpha=
    2.0)`` layers at the input and after each stage), all from the same
    initial weights. Timing as in ``bench_train_step.py``: warm-up (the
    first step compiles; its time is shown), loops of about ``--min-time``
    seconds, timed round-robin in an order rotated every round; *vs plain
    (A)* is the median over the rounds of the paired ratio to plain (A) in
    the same round. Targets: input MixUp <= 1.05x, input CutMix <= 1.05x,
    manifold <= 1.10x.

``--section layers`` (needs TensorFlow for ``tf.data``)
    Images per second of ``Dataset.from_tensors((x, y)).repeat().map(layer)
    .prefetch(2)`` under the JAX backend, float32 64x224x224x3 batches with
    one-hot labels (128x32x32x3 with ``--quick``): ``keras_mixup`` ``MixUp(
    alpha=0.2, num_classes=10)`` and ``CutMix(num_classes=10)`` against
    ``keras.layers.MixUp(alpha=0.2)`` / ``keras.layers.CutMix()`` (called with
    the ``{"images", "labels"}`` dict they take). Timed like
    ``bench_layers.py`` (whose tf.data runner this reuses): median of
    ``--repeats`` round-robin loops. Target: ours >= 2x the Keras layer.

Usage, from the repository root (FAIL is reported, not raised)::

    python benchmarks/bench_jax.py                       # both sections
    python benchmarks/bench_jax.py --section train --scale gpu --markdown out.md
    python benchmarks/bench_jax.py --section layers --quick
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"  # before Keras is imported
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _NoTensorFlow:
    """``--no-tensorflow``: any import of tensorflow fails, as on a machine
    without it (a ``sys.modules`` entry of None would not do: code that asks
    whether TensorFlow was imported would see it there)."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r} (--no-tensorflow)",
                                      name=name)
        return None


if "--no-tensorflow" in sys.argv[1:]:  # must act before Keras is imported
    sys.meta_path.insert(0, _NoTensorFlow())

import numpy as np  # noqa: E402
import jax  # noqa: E402
import keras  # noqa: E402

import keras_mixup  # noqa: E402

NUM_CLASSES = 10
SCALES = {  # batch, image, stage widths, rounds (full, --quick), seconds per loop
    "cpu": dict(batch=128, image=(32, 32, 3), widths=(16, 32), repeats=(41, 9),
                min_time=0.25),
    "cpu-small": dict(batch=32, image=(32, 32, 3), widths=(8, 16), repeats=(5, 3),
                      min_time=0.05),
    "gpu": dict(batch=256, image=(128, 128, 3), widths=(64, 128), repeats=(15, 7),
                min_time=0.25),
}
COMPILE = "JAX jit"
PLAIN_A, PLAIN_B = "plain (A)", "plain (B)"
MIXUP, CUTMIX, MANIFOLD = "input MixUp", "input CutMix", "manifold, 3 sites"
ROWS = [PLAIN_A, PLAIN_B, MIXUP, CUTMIX, MANIFOLD]
TARGETS = {MIXUP: 1.05, CUTMIX: 1.05, MANIFOLD: 1.10}

K_MIXUP, O_MIXUP = "keras.layers.MixUp", "keras_mixup MixUp"
K_CUTMIX, O_CUTMIX = "keras.layers.CutMix", "keras_mixup CutMix"
LAYER_METHODS = [K_MIXUP, O_MIXUP, K_CUTMIX, O_CUTMIX]
LAYER_BASELINE = {O_MIXUP: K_MIXUP, O_CUTMIX: K_CUTMIX}
LAYER_TARGET = 2.0


def _error(e):
    lines = str(e).strip().splitlines()
    return f"error: {type(e).__name__}: {(lines[0] if lines else '')[:120]}"


def device_text():
    devs = jax.devices()
    kinds = sorted({getattr(d, "device_kind", d.platform) for d in devs})
    return f"{jax.default_backend()} x{len(devs)} ({', '.join(kinds)})"


# ------------------------------------------------------------- the model


def build_network(image, widths, sites=False):
    """The benchmark CNN; ``sites`` puts MixUp(2.0) at input/stage 1/stage 2."""
    L = keras.layers

    def site(x, name):
        return keras_mixup.layers.MixUp(alpha=2.0, name=name)(x) if sites else x

    inputs = keras.Input(image)
    x = site(inputs, "site_input")
    for stage, width in enumerate(widths, start=1):
        x = L.Conv2D(width, 3, padding="same", activation="relu",
                     name=f"s{stage}_conv1")(x)
        x = L.Conv2D(width, 3, padding="same", activation="relu",
                     name=f"s{stage}_conv2")(x)
        x = L.MaxPooling2D(name=f"s{stage}_pool")(x)
        x = site(x, f"site_stage{stage}")
    x = L.GlobalAveragePooling2D(name="gap")(x)
    outputs = L.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs)


def make_model(row, reference, image, widths):
    net = build_network(image, widths, sites=(row == MANIFOLD))
    for layer in reference.layers:  # same initial weights in every row
        if layer.weights:
            net.get_layer(layer.name).set_weights(layer.get_weights())
    if row in (PLAIN_A, PLAIN_B):
        model = net
    elif row == MIXUP:
        model = keras_mixup.MixupModel(
            net, mixer=keras_mixup.layers.MixUp(alpha=0.2), seed=0)
    elif row == CUTMIX:
        model = keras_mixup.MixupModel(
            net, mixer=keras_mixup.layers.CutMix(alpha=1.0), seed=0)
    elif row == MANIFOLD:
        model = keras_mixup.MixupModel(net, seed=0)
        assert len(model.sites) == 3, model.sites
    else:
        raise ValueError(row)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


# ----------------------------------------------------------------- timing


class Loop:
    """Times loops of ``step`` (a call that returns once its work is done)."""

    def __init__(self, step):
        self.step, self.first, self.n, self.spent = step, None, None, 0.0

    def warm_up(self, min_time, settle=1):
        t0 = time.perf_counter()
        self.step()  # traces and compiles
        self.first = time.perf_counter() - t0
        for _ in range(settle):
            self.step()
        count, t0 = 0, time.perf_counter()
        while count < 2 or time.perf_counter() - t0 < min(0.3, min_time / 2):
            self.step()
            count += 1
        per_call = max((time.perf_counter() - t0) / count, 1e-6)
        self.n = int(min(max(round(min_time / per_call), 1), 2000))
        return per_call

    def timed(self):
        t0 = time.perf_counter()
        for _ in range(self.n):
            self.step()
        dt = time.perf_counter() - t0
        self.spent += dt
        return dt / self.n


def round_robin(loops, repeats, log, label, timed=None):
    """``{name: {round: seconds per call}}`` and ``{name: error}``; the order
    of the loops is rotated every round so drifts hit them alike."""
    timed = timed or (lambda loop: loop.timed())
    names = list(loops)
    times, errors = {n: {} for n in names}, {}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            if name in errors:
                continue
            try:
                times[name][r] = timed(loops[name])
            except Exception as e:  # report, don't crash
                errors[name] = _error(e)
        log(f"{label} round {r + 1}/{repeats}: " + ", ".join(
            f"{n} {times[n][r] * 1e3:.2f}" for n in names if r in times[n]))
    return times, errors


# ------------------------------------------------------------ train steps


def measure_train(scale, repeats, min_time, log):
    cfg = SCALES[scale]
    batch, image, widths = cfg["batch"], cfg["image"], cfg["widths"]
    keras.utils.set_random_seed(0)
    reference = build_network(image, widths)
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.random((batch,) + image, dtype=np.float32))
    y = jax.device_put(rng.integers(0, NUM_CLASSES, batch).astype(np.int32))
    loops, results = {}, {}
    for row in ROWS:
        try:
            model = make_model(row, reference, image, widths)
            loop = Loop(lambda m=model: m.train_on_batch(x, y))  # logs -> floats: waits
            loop.warm_up(min_time)
            loops[row] = loop
            log(f"{row:<20} first step {loop.first:.1f} s, n={loop.n}")
        except Exception as e:
            results[row] = _error(e)
            log(f"{row:<20} {results[row]}")
    times, errors = round_robin(loops, repeats, log, COMPILE)
    results.update(errors)
    ref = times.get(PLAIN_A, {})
    for row, loop in loops.items():
        if row in errors or not times[row]:
            continue
        e = {"ms": statistics.median(times[row].values()) * 1e3,
             "first": loop.first, "loops": len(times[row])}
        ratios = [t / ref[r] for r, t in times[row].items() if r in ref]
        if ratios and PLAIN_A not in errors:
            e.update(ratio=statistics.median(ratios), rmin=min(ratios), rmax=max(ratios))
        results[row] = e
    return results


def train_report(results, scale, repeats):
    """Markdown table lines (the columns of bench_train_step.py), target
    lines and a note."""
    table = []
    for row in ROWS:
        e = results.get(row, "error: not measured")
        target = f"<= {TARGETS[row]:.2f}x" if row in TARGETS else ""
        if isinstance(e, str):
            table.append(f"| {COMPILE} | {row} | {e} | | | | {target} | |")
            continue
        ratio = f"{e['ratio']:.3f}x" if "ratio" in e else "n/a"
        spread = f"{e['rmin']:.2f}..{e['rmax']:.2f}" if "ratio" in e else ""
        table.append(f"| {COMPILE} | {row} | {e['ms']:.2f} | {1e3 / e['ms']:.2f} "
                     f"| {ratio} | {spread} | {target} | {e['first']:.1f} |")
    targets = ["  (cpu-small is a smoke test of the script: not judged)"] if (
        scale == "cpu-small") else []
    ref = results.get(PLAIN_A)
    for row, limit in TARGETS.items():
        e = results.get(row)
        label = f"{COMPILE} {row} <= {limit:.2f}x"
        if not isinstance(e, dict) or "ratio" not in e:
            targets.append(f"  [N/A ] {label}: could not be measured")
            continue
        verdict = "PASS" if e["ratio"] <= limit else "FAIL"
        if scale == "cpu-small":  # too few, too short rounds to judge
            verdict = "----"
        targets.append(f"  [{verdict}] {label}: {e['ratio']:.3f}x "
                       f"({e['ms'] - ref['ms']:+.2f} ms/step)")
        if e["ratio"] > 3 and e["ms"] / 1e3 > 0.3 * e["first"]:
            targets.append(f"    ({row}: a step costs about as much as the first, "
                           "compiling one: recompiling every step?)")
    b = results.get(PLAIN_B)
    noise = (f"{abs(b['ratio'] - 1) * 100:.1f}%" if isinstance(b, dict) and "ratio" in b
             else "not measured")
    cfg = SCALES[scale]
    shape = "x".join(map(str, (cfg["batch"],) + cfg["image"]))
    note = (f"JAX rows ({COMPILE}): Keras {keras.__version__} on JAX {jax.__version__}, "
            f"{device_text()}, scale '{scale}': `train_on_batch` on one {shape} "
            f"float32 batch held on the device, int labels, CNN widths "
            f"{cfg['widths'][0]}/{cfg['widths'][1]}; median paired ratio over "
            f"{repeats} round-robin rounds; noise floor |plain (B) / plain (A) - 1| "
            f"= {noise}.")
    return table, targets, note


# ----------------------------------------------------------------- layers


def measure_layers(shape, repeats, min_time, log):
    """Seconds per batch of each tf.data pipeline (or an error string)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_layers  # imports TensorFlow; Keras stays on JAX

    x, y = bench_layers.make_batch(shape, "float32")
    calls = {
        K_MIXUP: lambda: bench_layers._dict_call(keras.layers.MixUp(alpha=0.2, seed=1)),
        O_MIXUP: lambda: keras_mixup.layers.MixUp(alpha=0.2, num_classes=NUM_CLASSES,
                                                  seed=1),
        K_CUTMIX: lambda: bench_layers._dict_call(keras.layers.CutMix(seed=1)),
        O_CUTMIX: lambda: keras_mixup.layers.CutMix(num_classes=NUM_CLASSES, seed=1),
    }
    runners, results = {}, {}
    for method in LAYER_METHODS:
        try:
            runner = bench_layers._Runner(calls[method](), x, y, "tf.data")
            runner.warm_up(min_time)
            runners[method] = runner
            log(f"{method:<22} first batch {runner.first_call:.1f} s, n={runner.n}")
        except Exception as e:
            results[method] = _error(e)
            log(f"{method:<22} {results[method]}")
    times, errors = round_robin(runners, repeats, log, "tf.data",
                                timed=lambda r: r.timed_loop())
    results.update(errors)
    for method in runners:
        if method not in errors:
            results[method] = {"s": statistics.median(times[method].values()),
                               "first": runners[method].first_call}
    for ours, theirs in LAYER_BASELINE.items():  # paired: same round
        if isinstance(results.get(ours), dict) and isinstance(results.get(theirs), dict):
            ratios = [t / times[ours][r] for r, t in times[theirs].items()
                      if r in times[ours]]
            results[ours].update(ratio=statistics.median(ratios),
                                 rmin=min(ratios), rmax=max(ratios))
    return results


def layers_report(results, shape, repeats):
    label = "x".join(map(str, shape))
    judged = tuple(shape) == (64, 224, 224, 3)  # the targets' case
    table = ["| Batch | dtype | Mode | Method | images/s | ms/batch | vs keras "
             "| paired min..max | target |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    targets = [] if judged else ["  skipped (--quick times only 128x32x32x3)"]
    for method in LAYER_METHODS:
        e = results.get(method, "error: not measured")
        target = f">= {LAYER_TARGET:g}x" if method in LAYER_BASELINE else ""
        cells = [e, "", "", ""]
        if isinstance(e, dict):
            cells = [f"{shape[0] / e['s']:,.0f}", f"{e['s'] * 1e3:.2f}", "", ""]
            if "ratio" in e:
                cells[2:] = [f"{e['ratio']:.2f}x", f"{e['rmin']:.2f}..{e['rmax']:.2f}"]
        table.append(f"| {label} | float32 | tf.data (JAX) | {method} | "
                     + " | ".join(cells) + f" | {target} |")
        if method in LAYER_BASELINE and judged:
            name = (f"JAX tf.data {label} {method} >= {LAYER_TARGET:g}x "
                    f"{LAYER_BASELINE[method]}")
            if isinstance(e, dict) and "ratio" in e:
                verdict = "PASS" if e["ratio"] >= LAYER_TARGET else "FAIL"
                targets.append(f"  [{verdict}] {name}: {e['ratio']:.2f}x")
            else:
                targets.append(f"  [N/A ] {name}: could not be measured")
    note = (f"JAX rows: KERAS_BACKEND=jax (Keras {keras.__version__}, JAX "
            f"{jax.__version__}), `Dataset.from_tensors((x, y)).repeat().map(layer)"
            f".prefetch(2)` on a float32 {label} batch with one-hot labels. "
            f"*ms/batch*: median of {repeats} round-robin loops; *vs keras*: median "
            "over the rounds of the paired ratio Keras layer time / keras_mixup "
            "time (higher is better).")
    return table, targets, note


# ------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--section", choices=["train", "layers", "all"], default="all")
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu",
                        help="train-step model and batch size (default cpu)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds; the layers section uses 128x32x32x3")
    parser.add_argument("--repeats", type=int, default=None,
                        help="round-robin rounds (train default: per scale; layers: 5)")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds per timed loop (default: per scale; layers 0.25)")
    parser.add_argument("--json", metavar="PATH",
                        help="write the results (table lines, target lines, notes) "
                             "as JSON to PATH")
    parser.add_argument("--markdown", metavar="PATH",
                        help="also write the printed report to PATH")
    parser.add_argument("--no-tensorflow", action="store_true",
                        help="make any import of tensorflow fail (train section "
                             "only), and check at the end that none happened")
    args = parser.parse_args(argv)
    if args.no_tensorflow and args.section != "train":
        parser.error("--no-tensorflow: the layers section needs TensorFlow (tf.data)")

    wall0 = time.perf_counter()

    def log(msg):
        print(f"  [jax {time.perf_counter() - wall0:5.0f} s] {msg}",
              file=sys.stderr, flush=True)

    header = (f"JAX {jax.__version__}, Keras {keras.__version__} "
              f"(backend {keras.backend.backend()}), keras_mixup "
              f"{getattr(keras_mixup, '__version__', '?')}, devices: {device_text()}, "
              f"{os.cpu_count()} CPUs")
    print(header, flush=True)
    out = {"header": header}
    report = []
    if args.section in ("train", "all"):
        cfg = SCALES[args.scale]
        repeats = args.repeats or cfg["repeats"][1 if args.quick else 0]
        min_time = args.min_time or cfg["min_time"]
        results = measure_train(args.scale, repeats, min_time, log)
        table, targets, note = train_report(results, args.scale, repeats)
        out["train"] = {"table": table, "targets": targets, "note": note,
                        "results": results}
        report += ["| Compile | Model | ms/step | steps/s | vs plain (A) | "
                   "paired min..max | target | 1st step (s) |",
                   "|---|---|---:|---:|---:|---:|---:|---:|", *table, "", note, "",
                   "Targets (ratio vs plain (A)):", *targets, ""]
    if args.section in ("layers", "all"):
        shape = (128, 32, 32, 3) if args.quick else (64, 224, 224, 3)
        repeats = args.repeats or (3 if args.quick else 5)
        min_time = args.min_time or (0.1 if args.quick else 0.25)
        results = measure_layers(shape, repeats, min_time, log)
        table, targets, note = layers_report(results, shape, repeats)
        out["layers"] = {"table": table, "targets": targets, "note": note,
                         "results": results}
        report += [*table, "", note, "", "Targets (images/s vs the Keras layer):",
                   *targets, ""]
    if args.no_tensorflow:
        report.append("TensorFlow imported: "
                      f"{'YES (a bug)' if 'tensorflow' in sys.modules else 'no'}")
    report.append(f"Total wall time (JAX): {time.perf_counter() - wall0:.0f} s")
    text = "\n".join([header, "", *report])
    print("\n" + "\n".join(report), flush=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
