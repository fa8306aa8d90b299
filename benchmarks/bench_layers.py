"""Throughput of keras_mixup's MixUp/CutMix against Keras' own layers.

What is measured
----------------
Images per second of one layer call on a whole batch, for every combination
of

- batch shape: 128x32x32x3 and 64x224x224x3,
- input dtype: float32 and uint8 (labels are one-hot float32, 10 classes),
- call mode:
  - ``tf.function``: the layer called inside a ``tf.function`` on a constant
    batch passed as an argument; the outputs are returned from the function,
    so the whole mixed batch is materialized on every call;
  - ``tf.data``: ``Dataset.from_tensors((x, y)).repeat().map(layer)
    .prefetch(2)``; the batch lives in the pipeline (it is not regenerated per
    step) and the benchmark pulls batches from one iterator.

Rows: ``keras.layers.MixUp(alpha=0.2)``, ``keras_mixup`` ``MixUp(alpha=0.2)``,
``keras.layers.CutMix()``, ``keras_mixup`` ``CutMix()`` (uint8 in, float32
out, like Keras), ``keras_mixup`` ``CutMix(dtype="uint8")`` (uint8 in and
out; uint8 cases only) and a *copy floor*: an XLA-compiled ``x * s`` with a
runtime scalar ``s``, which reads and writes the whole batch once in its own
dtype and cannot be folded away.

A mixing layer has to read two images (the example and its partner) and write
one, so its floor is taken as ``1.5 x`` the copy time (read-one-write-one ->
read-two-write-one, assuming time is proportional to bytes moved).

Timing: every method is warmed up (the first call traces and compiles XLA)
and calibrated; then a loop of ``n`` calls (``n`` chosen so one loop lasts
about ``--min-time`` seconds) is timed ``--repeats`` times and the median is
kept. Within a case the methods are timed round-robin, so drifts of a shared
machine hit them alike. In ``tf.data`` mode the prefetch buffer is emptied
before each loop and allowed to refill after it, so a loop times batch
production, not buffered batches or another method's background work. A
layer instance serves both modes of a (shape, dtype), so XLA compiles once.
The per-measurement log (with first-call times) goes to stderr.

Run it from the repository root::

    python benchmarks/bench_layers.py              # full run, a few minutes
    python benchmarks/bench_layers.py --quick      # small shapes, 3 repeats
    python benchmarks/bench_layers.py --masks      # only the mask-mixing table
    python benchmarks/bench_layers.py --repeats 9

It prints a Markdown table, then a PASS/FAIL summary of the performance
targets on the 64x224x224x3 float32 ``tf.function`` case. FAIL is reported,
not raised: the exit status is 0.

Then the same comparison under the JAX backend (a second table): the
``tf.data`` pipeline with ``keras_mixup`` ``MixUp(alpha=0.2,
num_classes=10)`` / ``CutMix(num_classes=10)`` against ``keras.layers.MixUp``
/ ``keras.layers.CutMix``, float32 64x224x224x3 (128x32x32x3 with
``--quick``), target >= 2x the Keras layer. Keras reads ``KERAS_BACKEND``
when it is imported, so these rows come from ``benchmarks/bench_jax.py
--section layers`` in a subprocess (under a minute; ``--no-jax`` skips them;
they are skipped when JAX is not installed).

Last, pairings and k-way mixing (``--pairings`` runs only this part,
``--no-pairings`` skips it; about a minute): ``keras_mixup``
``MixUp(alpha=0.2, num_classes=10)`` on float32 images with int32 class ids,
one row per ``pairing=`` ("derangement", "flip", "roll", "same_class",
"other_class", "nearest") against the ``pairing="permutation"`` row of the
same size, at 128x32x32x3 and 64x224x224x3 (128x32x32x3 with ``--quick``),
plus ``nearest`` at 256x32x32x3; then ``ways=3`` against ``ways=2`` (both
``pairing="derangement"``). A ``permutation (control)`` row (a second
instance of the reference) shows the noise floor. The rows of a size are
timed round-robin in the same rounds (9 by default, 3 with ``--quick``) and
each ratio is the median over the rounds of the *paired* ratio (row time /
reference time of the same round). Mode: ``tf.data`` (``--pairings-mode
tf.function`` for the other). Targets: derangement/flip/roll <= 1.05x
permutation; nearest <= 1.5x at 128x32x32x3 (informational at the other
sizes); same_class/other_class informational; ways=3 <= 1.6x ways=2::

    python benchmarks/bench_layers.py --pairings
    python benchmarks/bench_layers.py --pairings --quick

Mask mixing (``--masks`` runs only this part; about 4 minutes on 2 CPUs, so
the full run leaves it out; ``--quick`` includes a short version at
128x32x32x3, about 20 s, which ``--no-masks`` skips): ``keras_mixup``
``FMix()``, ``MaskMix()``, ``MaskMix(shared_axes=[-1])``, ``PatchUp(mode=
"hard")`` and ``PatchUp(mode="soft")`` (``block_size`` 7 at 224x224, 3 at
32x32), ``ResizeMix()`` when the library has it, ``CutMix(placement=
"saliency")`` (a saliency map per example) and ``CutMix(placement=
"saliency", per_sample=False)`` (SaliencyMix as its authors' code runs it:
one box a batch, one map; compared with ``CutMix(per_sample=False)``), and
``CutMix()`` as a reference, ``num_classes=10`` on float32 images with int32 class ids, at
128x32x32x3 and 64x224x224x3, ``tf.function`` and ``tf.data``; plus
``keras_cv.layers.FourierMix`` next to FMix when keras_cv is importable and
works with the installed Keras/TF (otherwise a line says why the row is
absent). Rows of a (size, mode), the copy floor included, are timed in the
same rounds (5, 3 with ``--quick``); *x floor* is the paired ratio layer
time / (1.5 x copy time), like the main table's. Targets: FMix, MaskMix
(both rows) and ResizeMix <= 2x the floor at 64x224x224x3 in each mode;
SaliencyMix (one box a batch) <= 2x CutMix's time at every size and mode;
the other rows and sizes are informational::

    python benchmarks/bench_layers.py --masks
    python benchmarks/bench_layers.py --masks --quick
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

import keras_mixup  # noqa: E402

NUM_CLASSES = 10
SHAPES = [(128, 32, 32, 3), (64, 224, 224, 3)]
DTYPES = ["float32", "uint8"]
MODES = ["tf.function", "tf.data"]

COPY = "copy floor (x*s, XLA)"
K_MIXUP = "keras.layers.MixUp"
O_MIXUP = "keras_mixup MixUp"
K_CUTMIX = "keras.layers.CutMix"
O_CUTMIX = "keras_mixup CutMix"
O_CUTMIX_U8 = 'keras_mixup CutMix(dtype="uint8")'
METHODS = [COPY, K_MIXUP, O_MIXUP, K_CUTMIX, O_CUTMIX, O_CUTMIX_U8]
# ours -> the Keras layer it is compared with
BASELINE = {O_MIXUP: K_MIXUP, O_CUTMIX: K_CUTMIX, O_CUTMIX_U8: K_CUTMIX}
FLOOR_FACTOR = 1.5
PREFETCH = 2


# --------------------------------------------------------------- callables


def make_call(method, dtype):
    """Returns ``f(x, y) -> (x_out, y_out)``, or None when not applicable."""
    if method == COPY:
        scale = tf.constant(1, dtype)

        @tf.function(jit_compile=True)
        def copy(x):
            return x * scale  # runtime-looking scalar: not folded to `x`

        return lambda x, y: (copy(x), y)
    if method == K_MIXUP:
        layer = keras.layers.MixUp(alpha=0.2, seed=1)
        return _dict_call(layer)
    if method == K_CUTMIX:
        layer = keras.layers.CutMix(seed=1)
        return _dict_call(layer)
    if method == O_MIXUP:
        return keras_mixup.layers.MixUp(alpha=0.2, seed=1)
    if method == O_CUTMIX:
        return keras_mixup.layers.CutMix(seed=1)
    if method == O_CUTMIX_U8:
        if dtype != "uint8":
            return None
        return keras_mixup.layers.CutMix(seed=1, dtype="uint8")
    raise ValueError(method)


def _dict_call(layer):
    def call(x, y):
        out = layer({"images": x, "labels": y})
        return out["images"], out["labels"]

    return call


# ------------------------------------------------------------------ timing


def _error(e):
    msg = str(e).strip().splitlines()
    msg = msg[0] if msg else ""
    return f"error: {type(e).__name__}: {msg[:120]}"


class _Runner:
    """One method in one case: a ``step`` that produces one mixed batch."""

    def __init__(self, call, x, y, mode):
        self.mode = mode
        if mode == "tf.function":

            @tf.function
            def fn(x, y):
                xo, yo = call(x, y)
                # The whole mixed batch is a function output, so it is
                # materialized; the scalar lets the host wait cheaply.
                return xo, yo[0, 0]

            def step():
                probe = fn(x, y)[1]
                probe.numpy()

        else:
            ds = (
                tf.data.Dataset.from_tensors((x, y))
                .repeat()
                .map(call)
                .prefetch(PREFETCH)
            )
            it = iter(ds)  # one iterator: a fresh one costs ~0.3 s to start

            def step():
                next(it)

        self.step = step
        self.first_call = None
        self.per_call = None
        self.n = None

    def warm_up(self, min_time):
        t0 = time.perf_counter()
        self.step()  # traces, compiles XLA
        self.first_call = time.perf_counter() - t0
        for _ in range(PREFETCH + 1):  # settle (and empty the prefetch buffer)
            self.step()
        # Calibrate the loop length on calls run back to back.
        count, t0 = 0, time.perf_counter()
        while count < 2 or time.perf_counter() - t0 < min(0.1, min_time / 2):
            self.step()
            count += 1
        self.per_call = max((time.perf_counter() - t0) / count, 1e-6)
        self.n = int(min(max(min_time / self.per_call, 3), 1000))

    def timed_loop(self):
        """Seconds per batch over ``n`` batches."""
        if self.mode == "tf.data":
            # Empty the prefetch buffer (filled while other methods ran), so
            # the loop times production, not buffered batches.
            for _ in range(PREFETCH + 1):
                self.step()
        t0 = time.perf_counter()
        for _ in range(self.n):
            self.step()
        dt = (time.perf_counter() - t0) / self.n
        if self.mode == "tf.data":
            # Let the background prefetch refill its buffer now, not while
            # the next method is being timed.
            time.sleep((PREFETCH + 1) * self.per_call + 0.002)
        return dt


def make_batch(shape, dtype):
    rng = np.random.default_rng(0)
    if dtype == "uint8":
        x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    else:
        x = rng.random(size=shape, dtype=np.float32)
    y = np.eye(NUM_CLASSES, dtype=np.float32)[rng.integers(0, NUM_CLASSES, shape[0])]
    return tf.constant(x), tf.constant(y)


def measure_case(calls, shape, dtype, mode, repeats, min_time, log):
    """Seconds per batch of every method (or "n/a"/an error string).

    The methods are timed round-robin (repeat 1 of every method, then repeat
    2, ...), so slow drifts of the machine (allocator, other load) hit all of
    them alike; the median over the repeats is kept.
    """
    x, y = make_batch(shape, dtype)
    results, runners = {}, {}
    for method in METHODS:
        call = calls[method]
        if isinstance(call, str):
            results[method] = call
            continue
        try:
            runner = _Runner(call, x, y, mode)
            runner.warm_up(min_time)
            runners[method] = runner
        except Exception as e:  # report, don't crash
            results[method] = _error(e)
    times = {m: [] for m in runners}
    for _ in range(repeats):
        for method, runner in list(runners.items()):
            try:
                times[method].append(runner.timed_loop())
            except Exception as e:
                results[method] = _error(e)
                del runners[method]
    for method in runners:
        results[method] = statistics.median(times[method])
    for method in METHODS:
        r = results[method]
        shown = f"{r * 1e3:8.2f} ms" if not isinstance(r, str) else r
        if method in runners:
            shown += f"  (first call {runners[method].first_call:.1f} s, n={runners[method].n})"
        log(f"{'x'.join(map(str, shape)):>13} {dtype:>7} {mode:>11}  {method:<34} {shown}")
    return results


# ------------------------------------------------------- pairings and ways
#
# keras_mixup MixUp(alpha=0.2, num_classes=10) on float32 images with integer
# labels, one row per `pairing=` (and one for `ways=3`), each against a
# reference row of the same size timed in the same rounds.

PAIRING_SHAPES = [(128, 32, 32, 3), (64, 224, 224, 3)]
NEAREST_BIG_SHAPE = (256, 32, 32, 3)  # `nearest` only, vs permutation
P_REF = "permutation"
P_CONTROL = "permutation (control)"  # a second instance of the reference
PAIRINGS = ["derangement", "flip", "roll", "same_class", "other_class", "nearest"]
W_REF = "ways=2"  # = the "derangement" row (the same instance, same rounds)
W_3 = "ways=3"
PAIRING_ROWS = [P_REF, P_CONTROL] + PAIRINGS + [W_3]
# (limit, informational) of the ratio vs the permutation row, per (row, shape)
PAIRING_LIMIT = 1.05  # derangement, flip, roll: every size
NEAREST_LIMIT = 1.5  # nearest: a target at 128x32x32x3, informational elsewhere
NEAREST_SHAPE = (128, 32, 32, 3)
WAYS_LIMIT = 1.6  # ways=3 vs ways=2, every size


def pairing_target(row, shape):
    """``(limit, informational)``, or None when the row has no target."""
    if row in ("derangement", "flip", "roll"):
        return PAIRING_LIMIT, False
    if row == "nearest":
        return NEAREST_LIMIT, shape != NEAREST_SHAPE
    return None


def make_pairing_call(row):
    kwargs = dict(alpha=0.2, num_classes=NUM_CLASSES, seed=1)
    if row == W_3:
        return keras_mixup.layers.MixUp(pairing="derangement", ways=3, **kwargs)
    pairing = P_REF if row == P_CONTROL else row
    return keras_mixup.layers.MixUp(pairing=pairing, **kwargs)


def make_int_batch(shape):
    """float32 images in [0, 1) and int32 class ids in [0, NUM_CLASSES)."""
    rng = np.random.default_rng(0)
    x = rng.random(size=shape, dtype=np.float32)
    y = rng.integers(0, NUM_CLASSES, size=shape[0]).astype(np.int32)
    return tf.constant(x), tf.constant(y)


def measure_rows(rows, shape, mode, repeats, min_time, log,
                 make=make_pairing_call, label="MixUp"):
    """Per row: the seconds per batch of every round (a list), or an error.

    Like `measure_case`: every row is warmed up and calibrated, then timed
    round-robin, one loop per row per round; the starting row rotates from
    round to round so no row always follows the same one. Round ``k`` of
    every row is comparable with round ``k`` of any other (paired ratios).
    ``make(row)`` returns the row's ``f(x, y)`` (or raises: reported as the
    row's error); ``label`` prefixes the log lines.
    """
    x, y = make_int_batch(shape)
    results, runners = {}, {}
    for row in rows:
        try:
            runner = _Runner(make(row), x, y, mode)
            runner.warm_up(min_time)
            runners[row] = runner
        except Exception as e:  # report, don't crash
            results[row] = _error(e)
    times = {r: [] for r in runners}
    order = list(runners)
    for k in range(repeats):
        start = k % max(len(order), 1)
        for row in order[start:] + order[:start]:
            if row not in runners:
                continue
            try:
                times[row].append(runners[row].timed_loop())
            except Exception as e:
                results[row] = _error(e)
                del runners[row]
    for row in rows:
        if row in runners:
            results[row] = times[row]
            med = statistics.median(times[row])
            shown = (f"{med * 1e3:8.2f} ms  (first call {runners[row].first_call:.1f} s, "
                     f"n={runners[row].n})")
        else:
            shown = results[row]
        width = max(22, *(len(r) for r in rows))
        log(f"{'x'.join(map(str, shape)):>13} float32 int {mode:>11}  {label} {row:<{width}} {shown}")
    return results


def paired_ratio(times, ref):
    """Median, min and max over the rounds of ``times[k] / ref[k]``."""
    ratios = [t / r for t, r in zip(times, ref)]
    return statistics.median(ratios), min(ratios), max(ratios)


def run_pairing_tables(shapes, mode, repeats, min_time, log):
    """Times the pairings and ways=3, prints two tables; returns the errors."""
    cases = [(shape, PAIRING_ROWS) for shape in shapes]
    cases.append((NEAREST_BIG_SHAPE, [P_REF, P_CONTROL, "nearest"]))
    results = {}  # (shape, row) -> list of seconds or str
    for shape, rows in cases:
        for row, r in measure_rows(rows, shape, mode, repeats, min_time, log).items():
            results[(shape, row)] = r
    errors = [(shape, row, r) for (shape, row), r in results.items() if isinstance(r, str)]
    verdicts = []  # (verdict, label)

    def cells(shape, row, ref_row):
        """ms, ratio, and the ratio's median (or None)."""
        t, ref = results.get((shape, row)), results.get((shape, ref_row))
        if isinstance(t, str) or t is None:
            return "n/a", "n/a", None
        ms = f"{statistics.median(t) * 1e3:.2f}"
        if row == ref_row:
            return ms, "1.00x (ref)", None
        if isinstance(ref, str) or ref is None:
            return ms, "n/a", None
        med, lo, hi = paired_ratio(t, ref)
        return ms, f"{med:.3f}x ({lo:.2f}..{hi:.2f})", med

    def judge(ratio, limit, info, label):
        if ratio is None:
            verdicts.append(("N/A ", label + ": could not be measured"))
            return "n/a"
        ok = ratio <= limit
        word = "PASS" if ok else "FAIL"
        verdicts.append((f"{word.lower() if info else word}",
                         f"{label}: {ratio:.3f}x (target <= {limit:.2f}x"
                         f"{', informational' if info else ''})"))
        return f"info ({word})" if info else word

    size = lambda shape: "x".join(map(str, shape))  # noqa: E731
    lines = [
        "| pairing | size | ms/batch | ratio vs permutation | target | PASS/FAIL |",
        "|---|---|---:|---:|---|---|",
    ]
    for shape, rows in cases:
        for row in rows:
            if row == W_3:
                continue
            ms, ratio, med = cells(shape, row, P_REF)
            target, verdict = "", ""
            if row == P_CONTROL:
                target = "noise (info)"
            elif row == P_REF:
                target = "reference"
            else:
                spec = pairing_target(row, shape)
                if spec is None:
                    target = "info"
                else:
                    limit, info = spec
                    target = f"<= {limit:.2f}x" + (" (info)" if info else "")
                    verdict = judge(med, limit, info, f"MixUp pairing={row!r} {size(shape)}")
            lines.append(f"| {row} | {size(shape)} | {ms} | {ratio} | {target} | {verdict} |")
    print()
    print(f"MixUp(alpha=0.2, num_classes=10) by pairing ({mode}, float32 images, "
          "int32 labels):")
    print()
    print("\n".join(lines))

    lines = [
        "| ways | size | ms/batch | ratio vs ways=2 | target | PASS/FAIL |",
        "|---|---|---:|---:|---|---|",
    ]
    for shape in shapes:
        ref = results.get((shape, "derangement"))
        for row, label in ((W_REF, "derangement"), (W_3, W_3)):
            t = results.get((shape, label))
            if isinstance(t, str) or t is None:
                ms, ratio, med = "n/a", "n/a", None
            else:
                ms = f"{statistics.median(t) * 1e3:.2f}"
                if row == W_REF:
                    ratio, med = "1.00x (ref)", None
                elif isinstance(ref, str) or ref is None:
                    ratio, med = "n/a", None
                else:
                    med, lo, hi = paired_ratio(t, ref)
                    ratio = f"{med:.3f}x ({lo:.2f}..{hi:.2f})"
            if row == W_REF:
                target, verdict = "reference", ""
            else:
                target = f"<= {WAYS_LIMIT:.2f}x"
                verdict = judge(med, WAYS_LIMIT, False, f"MixUp ways=3 vs ways=2 {size(shape)}")
            lines.append(f"| {row} | {size(shape)} | {ms} | {ratio} | {target} | {verdict} |")
    print()
    print(f'MixUp(alpha=0.2, num_classes=10, pairing="derangement", ways=k) ({mode}, '
          "float32 images, int32 labels):")
    print()
    print("\n".join(lines))
    print()
    print(
        "*ms/batch*: median over the rounds. *ratio*: median over the rounds "
        "of the paired ratio row time / reference time of the same round "
        "(min..max in parentheses); the rows of a size are timed round-robin "
        "in the same rounds, the starting row rotating. *permutation "
        "(control)* is a second instance of the reference layer: its ratio "
        "shows the noise floor. The ways=2 row is the derangement row of the "
        f"first table. {mode} rows: "
        + ("sequential `map` + `prefetch(2)` on a repeated in-memory batch, "
           "every batch pulled from the iterator"
           if mode == "tf.data" else
           "the layer in a `tf.function` whose outputs (the whole mixed batch) "
           "are returned")
        + f". {repeats} rounds after warm-up. Targets in parentheses / lowercase "
        "are informational."
    )
    print()
    print("Targets (pairings and ways):")
    for word, label in verdicts:
        print(f"  [{word}] {label}")
    return errors


# ------------------------------------------------------------ mask mixing
#
# keras_mixup's mask-based layers (FMix, MaskMix, PatchUp; ResizeMix when the
# library has it) on float32 images with int32 labels (num_classes=10),
# against the copy floor and our CutMix, every row of a (size, mode) timed in
# the same rounds (paired ratios, like the pairing tables).

MASK_SHAPES = [(128, 32, 32, 3), (64, 224, 224, 3)]
M_COPY = "copy floor"
M_CUTMIX = "CutMix()"
M_FMIX = "FMix()"
M_KCV_FMIX = "keras_cv FourierMix"
M_MASKMIX = "MaskMix()"
M_MASKMIX_C = "MaskMix(shared_axes=[-1])"
M_RESIZEMIX = "ResizeMix()"
M_SALIENCY = "CutMix(placement='saliency')"
# SaliencyMix as its authors' code runs it: one box a batch, on the peak of
# one partner's saliency map (the per-example row computes B maps).
M_SALIENCY_BATCH = "CutMix(placement='saliency', per_sample=False)"
M_CUTMIX_BATCH = "CutMix(per_sample=False)"  # its reference: one box a batch too
SALIENCY_LIMIT = 2.0  # x CutMix's time (>= 0.5x its throughput), every size
MASK_LIMIT = 2.0  # x floor, FMix and MaskMix at MASK_TARGET_SHAPE
MASK_TARGET_SHAPE = (64, 224, 224, 3)
MASK_TARGET_ROWS = (M_FMIX, M_MASKMIX, M_MASKMIX_C)


def patchup_block_size(shape):
    """7 at 224x224 (the paper's), 3 at 32x32."""
    return 7 if min(shape[1:3]) >= 112 else 3


def patchup_rows(shape):
    bs = patchup_block_size(shape)
    return [f'PatchUp(block_size={bs}, mode="hard")', f'PatchUp(block_size={bs}, mode="soft")']


def keras_cv_fourier_mix():
    """``(FourierMix class, None)``, or ``(None, why it is absent)``."""
    try:
        import keras_cv  # noqa: F401 (optional; not a dependency)
    except Exception as e:
        return None, f"keras_cv is not importable ({_error(e)[7:]})"
    cls = getattr(getattr(keras_cv, "layers", None), "FourierMix", None)
    if cls is None:
        return None, f"keras_cv {getattr(keras_cv, '__version__', '?')} has no layers.FourierMix"
    # Does it run here (Keras/TF versions)? One tiny eager call.
    try:
        layer = cls(alpha=1.0, decay_power=3, seed=1)
        out = layer({"images": tf.zeros((2, 8, 8, 3)), "labels": tf.one_hot([0, 1], NUM_CLASSES)})
        out["images"].shape  # noqa: B018
    except Exception as e:
        return None, (f"keras_cv {getattr(keras_cv, '__version__', '?')} FourierMix fails "
                      f"with Keras {keras.__version__} / TF {tf.__version__}: {_error(e)[7:]}")
    return cls, None


def _copy_one_hot():
    """The copy floor with int32 labels: x read and written once, the labels
    one-hot encoded like the layers' (the ``tf.function`` probe reads
    ``y[0, 0]``)."""
    copy = make_call(COPY, "float32")
    return lambda x, y: (copy(x, y)[0], tf.one_hot(y, NUM_CLASSES))


def make_mask_calls(shape, kcv_cls):
    """Row -> ``f(x, y)`` or the exception its construction raised. One
    instance per row serves both modes of a size, so XLA compiles once."""
    kw = dict(num_classes=NUM_CLASSES, seed=1)
    L = keras_mixup.layers
    bs = patchup_block_size(shape)
    hard, soft = patchup_rows(shape)
    factories = {
        M_COPY: _copy_one_hot,
        M_CUTMIX: lambda: L.CutMix(**kw),
        M_FMIX: lambda: L.FMix(alpha=1.0, decay_power=3.0, **kw),
    }
    if kcv_cls is not None:
        def kcv():
            call = _dict_call(kcv_cls(alpha=1.0, decay_power=3, seed=1))
            # one-hot the int32 ids (negligible next to the images)
            return lambda x, y: call(x, tf.one_hot(y, NUM_CLASSES))

        factories[M_KCV_FMIX] = kcv
    factories.update({
        M_MASKMIX: lambda: L.MaskMix(alpha=1.0, **kw),
        M_MASKMIX_C: lambda: L.MaskMix(alpha=1.0, shared_axes=[-1], **kw),
        hard: lambda: L.PatchUp(block_size=bs, gamma=0.9, mode="hard", **kw),
        soft: lambda: L.PatchUp(block_size=bs, gamma=0.9, mode="soft", **kw),
    })
    if hasattr(L, "ResizeMix"):  # not required; a row when the library has it
        factories[M_RESIZEMIX] = lambda: L.ResizeMix(**kw)
    factories[M_SALIENCY] = lambda: L.CutMix(placement="saliency", **kw)
    factories[M_CUTMIX_BATCH] = lambda: L.CutMix(per_sample=False, **kw)
    factories[M_SALIENCY_BATCH] = lambda: L.CutMix(placement="saliency", per_sample=False, **kw)
    calls = {}
    for row, factory in factories.items():
        try:
            calls[row] = factory()
        except Exception as e:  # shown as the row's error
            calls[row] = e
    return calls


def mask_target(row, shape):
    """``(limit, informational)`` of the row's x floor, or None."""
    if row in MASK_TARGET_ROWS or row == M_RESIZEMIX:
        return MASK_LIMIT, tuple(shape) != MASK_TARGET_SHAPE
    return None


def run_mask_tables(shapes, modes, repeats, min_time, log):
    """Times the mask-mixing layers, prints a table; returns the errors."""
    kcv_cls, kcv_why = keras_cv_fourier_mix()
    results, rows_of = {}, {}  # (shape, mode, row) -> list of seconds or str
    for shape in shapes:
        calls = make_mask_calls(shape, kcv_cls)
        rows_of[shape] = list(calls)

        def make(row, calls=calls):
            if isinstance(calls[row], Exception):
                raise calls[row]
            return calls[row]

        for mode in modes:
            for row, r in measure_rows(list(calls), shape, mode, repeats, min_time, log,
                                       make=make, label="mask").items():
                results[(shape, mode, row)] = r
    errors = [(shape, mode, row, r) for (shape, mode, row), r in results.items()
              if isinstance(r, str)]
    verdicts = []
    size = lambda shape: "x".join(map(str, shape))  # noqa: E731

    lines = [
        "| layer | size | mode | images/s | ms/batch | x floor | vs CutMix | target | PASS/FAIL |",
        "|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    for shape in shapes:
        for mode in modes:
            copy_t = results.get((shape, mode, M_COPY))
            cut_t = results.get((shape, mode, M_CUTMIX))
            cut_batch_t = results.get((shape, mode, M_CUTMIX_BATCH))
            for row in rows_of[shape]:
                t = results[(shape, mode, row)]
                target, verdict = "", ""
                spec = mask_target(row, shape)
                if spec is not None:
                    limit, info = spec
                    target = f"<= {limit:.1f}x floor" + (" (info)" if info else "")
                if isinstance(t, str):
                    rate = ms = fl = vs = "n/a"
                    if spec is not None and not spec[1]:
                        verdicts.append(("N/A ", f"{row} {size(shape)} {mode}: could not be measured"))
                        verdict = "n/a"
                else:
                    med_t = statistics.median(t)
                    rate, ms = fmt_rate(shape[0] / med_t), f"{med_t * 1e3:.2f}"
                    if row == M_COPY:
                        fl = f"({FLOOR_FACTOR:g}x = {FLOOR_FACTOR * med_t * 1e3:.2f} ms)"
                        vs = ""
                    else:
                        fl, fl_med = "n/a", None
                        if not isinstance(copy_t, str) and copy_t is not None:
                            fl_med, lo, hi = paired_ratio(
                                t, [FLOOR_FACTOR * c for c in copy_t])
                            fl = f"{fl_med:.2f} ({lo:.2f}..{hi:.2f})"
                        ref_t = cut_batch_t if row == M_SALIENCY_BATCH else cut_t
                        if row == M_CUTMIX:
                            vs = "1.00x (ref)"
                        elif isinstance(ref_t, str) or ref_t is None:
                            vs = "n/a"
                        else:
                            vs_med = paired_ratio(t, ref_t)[0]
                            vs = f"{vs_med:.2f}x" + (" (vs per-batch CutMix)" if ref_t is cut_batch_t else "")
                            if row == M_SALIENCY_BATCH:
                                word = "PASS" if vs_med <= SALIENCY_LIMIT else "FAIL"
                                target, verdict = f"<= {SALIENCY_LIMIT:.1f}x CutMix", word
                                verdicts.append((word, f"{row} {size(shape)} {mode}: "
                                                 f"{vs_med:.2f}x CutMix(per_sample=False)'s time "
                                                 f"(target <= {SALIENCY_LIMIT:.1f}x, i.e. >= 0.5x its "
                                                 "throughput)"))
                            elif row == M_SALIENCY:
                                word = "PASS" if vs_med <= SALIENCY_LIMIT else "FAIL"
                                target = f"<= {SALIENCY_LIMIT:.1f}x CutMix (info)"
                                verdict = f"info ({word})"
                        if spec is not None:
                            limit, info = spec
                            label = f"{row} {size(shape)} {mode}"
                            if fl_med is None:
                                verdict = "n/a"
                                if not info:
                                    verdicts.append(("N/A ", label + ": could not be measured"))
                            else:
                                word = "PASS" if fl_med <= limit else "FAIL"
                                verdict = f"info ({word})" if info else word
                                if not info:
                                    verdicts.append((word, f"{label}: {fl_med:.2f}x floor "
                                                     f"(target <= {limit:.1f}x; {med_t * 1e3:.2f} ms "
                                                     f"vs floor {FLOOR_FACTOR * statistics.median(copy_t) * 1e3:.2f} ms)"))
                lines.append(f"| {row} | {size(shape)} | {mode} | {rate} | {ms} | {fl} "
                             f"| {vs} | {target} | {verdict} |")
    print()
    print("Mask mixing (float32 images, int32 labels, num_classes=10; keras_mixup "
          "layers unless named):")
    print()
    print("\n".join(lines))
    print()
    print(
        "*x floor*: median over the rounds of the paired ratio layer time / "
        f"({FLOOR_FACTOR:g} x copy time of the same round) (min..max in "
        "parentheses), the main table's read-two-write-one floor; 1.0 = at the "
        "floor. *vs CutMix*: paired median of layer time / CutMix() time (the "
        "one-box-a-batch SaliencyMix row: / CutMix(per_sample=False) time) "
        "(lower is faster). *ms/batch*, *images/s*: median over the rounds. "
        "The rows of a (size, mode) are timed round-robin in the same rounds, "
        "the starting row rotating; one instance per row serves both modes. "
        "FMix() = FMix(alpha=1.0, decay_power=3.0, max_soft=0.0); PatchUp "
        "gamma=0.9, block_size 7 at 224x224 and 3 at 32x32 (PatchUp is meant "
        "for hidden feature maps; here on images). tf.data rows: sequential "
        "`map` + `prefetch(2)` on a repeated in-memory batch. "
        f"{repeats} rounds after warm-up."
    )
    if kcv_cls is not None:
        print("keras_cv FourierMix(alpha=1.0, decay_power=3): labels one-hot "
              "encoded in the call (int32 ids in), for comparison with FMix().")
    else:
        print(f"keras_cv FourierMix: row absent: {kcv_why}.")
    if not hasattr(keras_mixup.layers, "ResizeMix"):
        print("ResizeMix: row absent: keras_mixup.layers has no ResizeMix.")
    print()
    print(f"Targets (mask mixing, FMix/MaskMix/ResizeMix <= {MASK_LIMIT:.1f}x floor at "
          f"{size(MASK_TARGET_SHAPE)}, every mode; SaliencyMix (one box a batch) <= "
          f"{SALIENCY_LIMIT:.1f}x CutMix at every size; other rows informational):")
    if MASK_TARGET_SHAPE not in [tuple(sh) for sh in shapes]:
        print(f"  skipped (--quick runs only {', '.join(size(sh) for sh in shapes)})")
    for word, label in verdicts:
        print(f"  [{word}] {label}")
    return errors


# ------------------------------------------------------------------ report


def fmt_rate(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def run_layer_tables(args, shapes, repeats, min_time, log):
    """The Keras-vs-keras_mixup table, its targets and the JAX rows;
    returns the errors (shown as n/a in the table)."""
    results = {}  # (shape, dtype, mode, method) -> seconds or str
    errors = []
    for shape in shapes:
        for dtype in DTYPES:
            # One instance per method for both modes: XLA compiles once.
            calls = {}
            for method in METHODS:
                try:
                    call = make_call(method, dtype)
                    calls[method] = "n/a" if call is None else call
                except Exception as e:
                    calls[method] = _error(e)
            for mode in MODES:
                case = measure_case(calls, shape, dtype, mode, repeats, min_time, log)
                for method, r in case.items():
                    results[(shape, dtype, mode, method)] = r
                    if isinstance(r, str) and r != "n/a":
                        errors.append((shape, dtype, mode, method, r))

    lines = [
        "| Batch | dtype | Mode | Method | images/s | ms/batch | vs keras | x of floor |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for shape in shapes:
        for dtype in DTYPES:
            for mode in MODES:
                copy_t = results[(shape, dtype, mode, COPY)]
                for method in METHODS:
                    t = results[(shape, dtype, mode, method)]
                    if isinstance(t, str):
                        if method == O_CUTMIX_U8 and t == "n/a":
                            continue  # only meaningful on uint8
                        rate = ms = vs = fl = "n/a"
                    else:
                        rate = fmt_rate(shape[0] / t)
                        ms = f"{t * 1e3:.2f}"
                        base = results.get((shape, dtype, mode, BASELINE.get(method)))
                        vs = f"{base / t:.2f}x" if (
                            method in BASELINE and not isinstance(base, str)) else ""
                        if method == COPY:
                            fl = f"({FLOOR_FACTOR:g}x = {FLOOR_FACTOR * t * 1e3:.2f} ms)"
                        elif isinstance(copy_t, str):
                            fl = "n/a"
                        else:
                            fl = f"{t / (FLOOR_FACTOR * copy_t):.2f}"
                    lines.append(
                        f"| {'x'.join(map(str, shape))} | {dtype} | {mode} | {method} "
                        f"| {rate} | {ms} | {vs} | {fl} |"
                    )
    print()
    print("\n".join(lines))
    print()
    print(
        "*vs keras*: Keras layer time / keras_mixup time (higher is better). "
        "*x of floor*: layer time / (1.5 x copy time) (1.0 = at the floor). "
        "The copy floor reads and writes the batch once in the input dtype; "
        "a mixing layer reads two images and writes one, so its floor is "
        "assumed to be 1.5 x the copy time (time proportional to bytes "
        "moved). uint8 inputs come out float32 (4x the bytes written) except "
        'for CutMix(dtype="uint8"), so on uint8 rows the floor is only tight '
        "for that one. Below 1.0 the layer costs about as much as the copy: "
        "allocating and first-touching the output costs both alike, so the "
        "bytes-proportional 1.5x is a generous floor. tf.data rows: sequential `map` + `prefetch(2)` on a "
        f"repeated in-memory batch. Median of {repeats} timed loops after "
        "warm-up."
    )

    # ---------------------------------------------------------- targets
    print()
    key = ((64, 224, 224, 3), "float32", "tf.function")
    print("Targets (64x224x224x3 float32, tf.function):")
    if key[0] not in shapes:
        print("  skipped (--quick runs only the small shape)")
    else:
        get = lambda m: results[key + (m,)]  # noqa: E731

        def check(label, ok_fn, measured_fn, deps):
            vals = [get(m) for m in deps]
            if any(isinstance(v, str) for v in vals):
                print(f"  [N/A ] {label}: could not be measured")
                return
            ok = ok_fn(*vals)
            print(f"  [{'PASS' if ok else 'FAIL'}] {label}: {measured_fn(*vals)}")

        check("MixUp >= 2x keras.layers.MixUp",
              lambda o, k: k / o >= 2.0,
              lambda o, k: f"{k / o:.2f}x",
              [O_MIXUP, K_MIXUP])
        check("CutMix >= 4x keras.layers.CutMix",
              lambda o, k: k / o >= 4.0,
              lambda o, k: f"{k / o:.2f}x",
              [O_CUTMIX, K_CUTMIX])
        check("MixUp within 1.5x of the read-two-write-one floor",
              lambda o, c: o / (FLOOR_FACTOR * c) <= 1.5,
              lambda o, c: f"{o / (FLOOR_FACTOR * c):.2f}x of floor "
                           f"({o * 1e3:.2f} ms vs {FLOOR_FACTOR * c * 1e3:.2f} ms)",
              [O_MIXUP, COPY])
        check("CutMix within 1.5x of the read-two-write-one floor",
              lambda o, c: o / (FLOOR_FACTOR * c) <= 1.5,
              lambda o, c: f"{o / (FLOOR_FACTOR * c):.2f}x of floor "
                           f"({o * 1e3:.2f} ms vs {FLOOR_FACTOR * c * 1e3:.2f} ms)",
              [O_CUTMIX, COPY])

    if not args.no_jax:
        from bench_train_step import run_jax  # runs bench_jax.py in a subprocess

        extra = ["--quick"] if args.quick else []
        extra += ["--repeats", str(args.repeats)] if args.repeats else []
        extra += ["--min-time", str(args.min_time)] if args.min_time else []
        jax_rows = run_jax("layers", extra)
        print()
        if isinstance(jax_rows, dict) and "layers" in jax_rows:
            jax_rows = jax_rows["layers"]
            print("Under the JAX backend (tf.data):")
            print()
            print("\n".join(jax_rows["table"]))
            print()
            print(jax_rows["note"])
            print()
            print("Targets (JAX backend, tf.data, 64x224x224x3 float32):")
            print("\n".join(jax_rows["targets"]))
        else:
            print(f"JAX rows: {jax_rows}")

    return errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="only the small shape, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed loops per measurement (median kept); default 5, 3 with --quick")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds per timed loop (default 0.25, 0.1 with --quick)")
    parser.add_argument("--no-jax", action="store_true",
                        help="skip the JAX-backend rows (bench_jax.py in a subprocess)")
    section = parser.add_mutually_exclusive_group()
    section.add_argument("--pairings", action="store_true",
                         help="only the pairing / ways tables (MixUp by pairing= and ways=); "
                              "with --masks: those two sections")
    section.add_argument("--no-pairings", action="store_true",
                         help="skip the pairing / ways tables")
    parser.add_argument("--pairings-mode", choices=MODES, default="tf.data",
                        help="call mode of the pairing / ways tables (default tf.data)")
    masks = parser.add_mutually_exclusive_group()
    masks.add_argument("--masks", action="store_true",
                       help="only the mask-mixing table (FMix, MaskMix, PatchUp vs the copy "
                            "floor and CutMix); with --pairings: those two sections")
    masks.add_argument("--no-masks", action="store_true",
                       help="skip the mask-mixing table (--quick runs a short one; the full "
                            "run leaves it out)")
    args = parser.parse_args(argv)
    only = args.pairings or args.masks  # run only the named sections
    run_main = not only
    run_pairings = args.pairings or (not only and not args.no_pairings)
    # The full table adds ~4 min (2 CPUs): opt-in, except the short --quick one.
    run_masks = args.masks or (args.quick and not only and not args.no_masks)
    repeats = args.repeats or (3 if args.quick else 5)
    pairing_repeats = args.repeats or (3 if args.quick else 9)
    mask_repeats = args.repeats or (3 if args.quick else 5)
    min_time = args.min_time or (0.1 if args.quick else 0.25)
    shapes = SHAPES[:1] if args.quick else SHAPES
    pairing_shapes = PAIRING_SHAPES[:1] if args.quick else PAIRING_SHAPES
    mask_shapes = MASK_SHAPES[:1] if args.quick else MASK_SHAPES

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"keras_mixup {getattr(keras_mixup, '__version__', '?')}, "
          f"{os.cpu_count()} CPUs"
          + (f", repeats={repeats}" if run_main else "")
          + (f", {pairing_repeats} rounds for pairings" if run_pairings else "")
          + (f", {mask_repeats} rounds for masks" if run_masks else "")
          + f", min-time={min_time}s",
          flush=True)
    wall0 = time.perf_counter()

    def log(msg):
        print(f"  [{time.perf_counter() - wall0:5.0f} s] {msg}", file=sys.stderr, flush=True)

    errors = []
    if run_main:
        errors += run_layer_tables(args, shapes, repeats, min_time, log)
    if run_pairings:
        for shape, row, msg in run_pairing_tables(
                pairing_shapes, args.pairings_mode, pairing_repeats, min_time, log):
            errors.append((shape, "float32", args.pairings_mode, f"MixUp {row}", msg))
    if run_masks:
        for shape, mode, row, msg in run_mask_tables(
                mask_shapes, MODES, mask_repeats, min_time, log):
            errors.append((shape, "float32", mode, row, msg))
    elif not only and not args.no_masks:
        print()
        print("Mask-mixing table (FMix, MaskMix, PatchUp): not in the full run "
              "(about 4 minutes); run with --masks.")

    if errors:
        print()
        print("Errors (shown as n/a above):")
        for shape, dtype, mode, method, msg in errors:
            print(f"  {'x'.join(map(str, shape))} {dtype} {mode} {method}: {msg}")
    print()
    print(f"Total wall time: {time.perf_counter() - wall0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
