"""Start-up cost of the layers in a tf.data pipeline, against Keras' layers.

`bench_layers.py` times batches once everything is compiled; this script
times what a pipeline pays before and around that: the first batch, a
batch of a new shape, and the cost of a new iterator, which ``fit`` creates
every epoch.

What is measured
----------------
Every measurement runs in a **fresh Python process** (a subprocess of this
script) with TensorFlow, Keras and keras_mixup already imported and the
data already in memory as NumPy arrays, so that nothing is cached from
another row: no traced function, no XLA program, no warm tf.data runtime.
Imports are not timed.

(a) *first batch*: the seconds from constructing the layer to holding the
    first mixed batch of ``ds = tf.data.Dataset.from_tensor_slices((x, y))
    .batch(n)`` (built beforehand)::

        layer = <Layer>(...)
        it = iter(ds.map(layer))
        next(it)

    with float32 images of 64x224x224x3 and 128x32x32x3 and one-hot float32
    labels (10 classes). (The dataset is a full batch followed by short
    ones, concatenated before ``map``.)
(b) *new shape*: the following ``next(it)``: a short batch (n/2 images, as
    a short last batch), an input shape the map has not seen yet; the
    median over batches of n/2, n/2 + 1, ..., n/2 + 4 images, each a new
    shape.
(e) *new iterator* (shown, no target): ``next(iter(ds))`` on the same
    dataset afterwards, what each further epoch pays to start.

Rows: ``keras.layers.MixUp(alpha=0.2)``, ``keras_mixup`` ``MixUp(alpha=0.2)``,
``keras.layers.CutMix()``, ``keras_mixup`` ``CutMix()`` (default settings:
``jit_compile=True``), and ``no mixing`` (the same pipeline without the
map: what of the time is the pipeline's own). Keras' layers are called on
the ``{"images", "labels"}`` dict they take.

(c) *per epoch under fit*: ``model.fit(ds, epochs=E)`` of a tiny CNN
    (Conv2D 8 -> GlobalAveragePooling -> Dense 10; SGD,
    ``CategoricalCrossentropy(from_logits=True)``) on 512 random images of
    32x32x3 with one-hot labels::

        ds = (tf.data.Dataset.from_tensor_slices((x, y)).batch(128)
              .map(layer, num_parallel_calls=tf.data.AUTOTUNE)
              .prefetch(tf.data.AUTOTUNE))

    four steps per epoch, so an epoch is mostly fixed costs: Keras starts a
    new iterator every epoch, which instantiates the map function again.
    *ms/epoch* is the median of epochs 2..E (epoch 1, which traces and
    compiles, is shown apart); the *overhead* of a map is its ms/epoch minus
    the ``no mixing`` row's. Rows as above, plus ``keras_mixup RandomMix``
    as in the README's tf.data snippet (MixUp(0.8) or CutMix(1.0); shown,
    no target).

Each row is run ``--repeats`` times, the repeats of all rows interleaved
(row 1, row 2, ..., row 1, row 2, ...) so that the load of a shared machine
hits them alike; the median is kept. Ratios, not absolute times, are what
carries over between machines.

Targets (default layer settings): first batch and new-shape batch of ours
<= 2x Keras' layer at both sizes; per-epoch overhead of our map <= Keras'
layer's. FAIL is reported, not raised: the exit status is 0.

Run it from the repository root::

    python benchmarks/bench_first_batch.py            # 3 repeats, 6-11 minutes on 2 cores
    python benchmarks/bench_first_batch.py --quick    # 1 repeat, 6 epochs, ~2 minutes
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

NUM_CLASSES = 10
SIZES = [(64, 224, 224, 3), (128, 32, 32, 3)]
FIT_SHAPE = (512, 32, 32, 3)
FIT_BATCH = 128
NEW_SHAPES = 5  # (b) is the median over this many batches of new shapes

NONE = "no mixing"
K_MIXUP = "keras.layers.MixUp"
O_MIXUP = "keras_mixup MixUp"
K_CUTMIX = "keras.layers.CutMix"
O_CUTMIX = "keras_mixup CutMix"
O_RANDOM = "keras_mixup RandomMix (README)"
FIRST_ROWS = [NONE, K_MIXUP, O_MIXUP, K_CUTMIX, O_CUTMIX]
FIT_ROWS = [NONE, K_MIXUP, O_MIXUP, K_CUTMIX, O_CUTMIX, O_RANDOM]
BASELINE = {O_MIXUP: K_MIXUP, O_CUTMIX: K_CUTMIX}  # ours -> Keras' layer
FIRST_TARGET = 2.0  # first / new-shape batch: ours <= 2x Keras


# ------------------------------------------------------------------ child


def _make_map(row):
    """The map function of ``row`` (None for no mixing), built now."""
    import keras

    import keras_mixup

    def keras_layer(layer):
        def call(x, y):
            out = layer({"images": x, "labels": y})
            return out["images"], out["labels"]

        return call

    if row == NONE:
        return None
    if row == K_MIXUP:
        return keras_layer(keras.layers.MixUp(alpha=0.2, seed=1))
    if row == K_CUTMIX:
        return keras_layer(keras.layers.CutMix(seed=1))
    if row == O_MIXUP:
        return keras_mixup.layers.MixUp(alpha=0.2, seed=1)
    if row == O_CUTMIX:
        return keras_mixup.layers.CutMix(seed=1)
    if row == O_RANDOM:
        return keras_mixup.layers.RandomMix(
            [keras_mixup.layers.MixUp(alpha=0.8), keras_mixup.layers.CutMix(alpha=1.0)],
            seed=0,
        )
    raise ValueError(row)


def _data(shape):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    y = np.eye(NUM_CLASSES, dtype=np.float32)[rng.integers(0, NUM_CLASSES, shape[0])]
    return x, y


def child_first(row, size):
    """(a), (b), (e) for one row and batch shape, in this fresh process."""
    import tensorflow as tf

    n = size[0]
    shorts = [n // 2 + k for k in range(NEW_SHAPES)]
    x, y = _data((n + sum(shorts),) + tuple(size[1:]))
    # One full batch, then batches of n/2, n/2 + 1, ...: each a new shape.
    ds = tf.data.Dataset.from_tensor_slices((x[:n], y[:n])).batch(n)
    start = n
    for k in shorts:
        part = (x[start:start + k], y[start:start + k])
        ds = ds.concatenate(tf.data.Dataset.from_tensor_slices(part).batch(k))
        start += k
    t0 = time.perf_counter()
    fn = _make_map(row)
    if fn is not None:
        ds = ds.map(fn)
    it = iter(ds)
    first = next(it)
    t1 = time.perf_counter()
    assert first[0].shape[0] == n
    new_shape = []
    for k in shorts:
        t = time.perf_counter()
        out = next(it)
        new_shape.append(time.perf_counter() - t)
        assert out[0].shape[0] == k
    t = time.perf_counter()
    next(iter(ds))
    return {
        "first": t1 - t0,
        "new_shape": statistics.median(new_shape),
        "new_iterator": time.perf_counter() - t,
    }


def child_fit(row, epochs):
    """(c) for one row: seconds of every epoch of ``fit``."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    x, y = _data(FIT_SHAPE)
    fn = _make_map(row)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(FIT_BATCH)
    if fn is not None:
        ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input(FIT_SHAPE[1:]),
            L.Conv2D(8, 3, activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(NUM_CLASSES),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(ds, epochs=epochs, verbose=0, callbacks=[Timer()])
    return {"epochs": times}


def run_child(args):
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow  # noqa: F401  (imports are not timed)
    import keras  # noqa: F401

    import keras_mixup  # noqa: F401

    spec = json.loads(args.child)
    if spec["kind"] == "first":
        out = child_first(spec["row"], tuple(spec["size"]))
    else:
        out = child_fit(spec["row"], spec["epochs"])
    print("RESULT " + json.dumps(out), flush=True)


# ----------------------------------------------------------------- parent


def spawn(spec):
    """Runs one measurement in a fresh process; its result, or an error."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
    return f"error: exit {proc.returncode}: {tail[:160]}"


def _median(values):
    values = [v for v in values if not isinstance(v, str)]
    return statistics.median(values) if values else None


def _fmt_s(v):
    return "n/a" if v is None else f"{v:.3f}"


def _ratio(ours, theirs):
    if ours is None or theirs is None or theirs <= 0:
        return None
    return ours / theirs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat and 6 epochs per fit (default 3 and 12)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="fresh processes per row (median kept)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per fit row (median of epochs 2..E)")
    parser.add_argument("--skip-fit", action="store_true", help="only (a), (b), (e)")
    parser.add_argument("--skip-first", action="store_true", help="only (c)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args)
    repeats = args.repeats or (1 if args.quick else 3)
    epochs = args.epochs or (6 if args.quick else 12)

    import keras
    import tensorflow as tf

    import keras_mixup

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, keras_mixup "
          f"{getattr(keras_mixup, '__version__', '?')} ({os.path.dirname(keras_mixup.__file__)}), "
          f"{os.cpu_count()} CPUs, repeats={repeats}, epochs={epochs}", flush=True)
    wall0 = time.perf_counter()

    def log(msg):
        print(f"  [{time.perf_counter() - wall0:5.0f} s] {msg}", file=sys.stderr, flush=True)

    specs = []
    if not args.skip_first:
        specs += [{"kind": "first", "row": r, "size": list(s)} for s in SIZES for r in FIRST_ROWS]
    if not args.skip_fit:
        specs += [{"kind": "fit", "row": r, "epochs": epochs} for r in FIT_ROWS]
    results = {json.dumps(s): [] for s in specs}
    for rep in range(repeats):
        for spec in specs:
            out = spawn(spec)
            results[json.dumps(spec)].append(out)
            what = spec.get("size") or f"fit x{spec['epochs']}"
            if isinstance(out, str):
                shown = out
            elif spec["kind"] == "first":
                shown = ", ".join(f"{k} {v:.3f} s" for k, v in out.items())
            else:
                shown = "epochs (ms) " + " ".join(f"{t * 1e3:.0f}" for t in out["epochs"])
            log(f"repeat {rep + 1}/{repeats} {spec['row']:<32} {what}: {shown}")

    targets = []  # (label, ok or None, measured text)

    if not args.skip_first:
        first = {}  # (row, size) -> {metric: median}
        for size in SIZES:
            for row in FIRST_ROWS:
                outs = results[json.dumps({"kind": "first", "row": row, "size": list(size)})]
                good = [o for o in outs if not isinstance(o, str)]
                first[(row, size)] = {
                    k: _median([o[k] for o in good])
                    for k in ("first", "new_shape", "new_iterator")
                } if good else {"error": outs[-1]}
        print()
        print("First batches of `ds.batch(n).map(layer)` (seconds; fresh process per "
              "measurement, median of %d):" % repeats)
        print()
        print("| Batch | Method | first batch | vs keras | new shape (short last batch) "
              "| vs keras | new iterator |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for size in SIZES:
            for row in FIRST_ROWS:
                e = first[(row, size)]
                label = "x".join(map(str, size))
                if "error" in e:
                    print(f"| {label} | {row} | {e['error']} | | | | |")
                    continue
                base = first.get((BASELINE.get(row), size), {})
                cells = []
                for metric in ("first", "new_shape"):
                    r = _ratio(e[metric], base.get(metric)) if row in BASELINE else None
                    cells += [_fmt_s(e[metric]), "" if r is None else f"{r:.2f}x"]
                print(f"| {label} | {row} | " + " | ".join(cells)
                      + f" | {_fmt_s(e['new_iterator'])} |")
                if row in BASELINE:
                    for metric, name in (("first", "first batch"), ("new_shape", "new-shape batch")):
                        r = _ratio(e[metric], base.get(metric))
                        targets.append((
                            f"{row} {name}, {label} <= {FIRST_TARGET:g}x {BASELINE[row]}",
                            None if r is None else r <= FIRST_TARGET,
                            "n/a" if r is None else
                            f"{r:.2f}x ({e[metric]:.3f} s vs {base[metric]:.3f} s)"))
        print()
        print("*first batch*: layer construction + `map` (tracing) + `iter` + first "
              "`next`; *new shape*: a following `next` of a batch of n/2 .. n/2 + 4 (each "
              "a shape not seen before; median); *new iterator*: `next(iter(ds))` afterwards (what each further "
              "epoch pays to start). *vs keras*: ours / Keras' layer (lower is better). "
              "*no mixing*: the same pipeline without the map.")

    if not args.skip_fit:
        fit = {}
        for row in FIT_ROWS:
            outs = results[json.dumps({"kind": "fit", "row": row, "epochs": epochs})]
            good = [o["epochs"] for o in outs if not isinstance(o, str)]
            if not good:
                fit[row] = {"error": outs[-1]}
                continue
            fit[row] = {
                "epoch": _median([t for run in good for t in run[1:]]),
                "first": _median([run[0] for run in good]),
            }
        none = fit.get(NONE, {}).get("epoch")
        print()
        print(f"Per epoch under `fit` ({FIT_SHAPE[0]} images of "
              f"{'x'.join(map(str, FIT_SHAPE[1:]))}, batch {FIT_BATCH}: "
              f"{FIT_SHAPE[0] // FIT_BATCH} steps per epoch; ms):")
        print()
        print("| Method | ms/epoch | overhead of the map | vs keras | epoch 1 |")
        print("|---|---:|---:|---:|---:|")
        for row in FIT_ROWS:
            e = fit[row]
            if "error" in e:
                print(f"| {row} | {e['error']} | | | |")
                continue
            over = None if none is None or row == NONE else e["epoch"] - none
            base = fit.get(BASELINE.get(row), {})
            base_over = (base["epoch"] - none) if "epoch" in base and none is not None else None
            r = _ratio(over, base_over) if row in BASELINE else None
            print(f"| {row} | {e['epoch'] * 1e3:.1f} | "
                  + ("" if over is None else f"{over * 1e3:+.1f}")
                  + f" | {'' if r is None else f'{r:.2f}x'} | {e['first'] * 1e3:.0f} |")
            if row in BASELINE:
                ok = None if over is None or base_over is None else over <= max(base_over, 0.0)
                targets.append((
                    f"{row} per-epoch overhead <= {BASELINE[row]}'s", ok,
                    "n/a" if ok is None else
                    f"{over * 1e3:+.1f} ms vs {base_over * 1e3:+.1f} ms per epoch"))
        print()
        print(f"*ms/epoch*: median of epochs 2..{epochs} over {repeats} fresh process(es); "
              "*overhead*: minus the `no mixing` row; *vs keras*: our overhead / "
              "Keras' layer's; *epoch 1*: the first epoch (tracing, XLA compiles). "
              "Pipeline: `batch(128).map(layer, num_parallel_calls=AUTOTUNE)"
              ".prefetch(AUTOTUNE)`; Keras makes a new iterator every epoch.")

    print()
    print("Targets:")
    for label, ok, text in targets:
        mark = "N/A " if ok is None else ("PASS" if ok else "FAIL")
        print(f"  [{mark}] {label}: {text}")
    print()
    print(f"Total wall time: {time.perf_counter() - wall0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
