"""Training-step throughput of MixupModel against the plain Keras model.

What is measured
----------------
Milliseconds per training step (and steps/s) of ``model.train_on_batch(x,
y)`` on one fixed in-memory batch: 128 random float32 images of 32x32x3 and
integer class ids ``(128,)`` (10 classes), trained with SGD and
``SparseCategoricalCrossentropy(from_logits=True)`` in every row. Keras 3's
``train_on_batch`` calls the same compiled step function that ``fit`` uses
(a ``tf.function``, XLA-compiled with ``jit_compile=True``), and the batch is
passed as ``tf.Tensor`` s, so there is no data pipeline in the loop: every
row pays the same small per-call Python overhead (metrics reset, logs to
Python floats, which also waits for the step to finish).

The network is a small CNN in two stages, about 60 ms per step on 2 CPU
cores without XLA::

    input 32x32x3
    stage 1: Conv 16 -> Conv 16 -> MaxPool        (-> 16x16x16)
    stage 2: Conv 32 -> Conv 32 -> MaxPool        (-> 8x8x32)
    head:    GlobalAveragePooling -> Dense 10 (logits)

Rows (every model starts from the same weights):

- ``plain (A)``, ``plain (B)``: the plain ``keras.Model``, built and compiled
  twice. (A) is the reference of the ratios; (B) is a control row, so its
  ratio shows the noise floor of the machine;
- ``input MixUp``: ``MixupModel(plain, mixer=MixUp(alpha=0.2))``;
- ``input CutMix``: ``MixupModel(plain, mixer=CutMix(alpha=1.0))``;
- ``input CutMix, gradient saliency``: the same with
  ``placement="saliency"``: one more forward and backward pass (to the
  input) on the clean batch, the saliency maps, the box search;
- ``input CutMix, gradient saliency + MixupE fast``: the saliency row plus
  ``regularizer=MixupE(eta=1e-3)`` (fast mode, whole batch): MixupE's clean
  forward pass (training mode) also gives the saliency, so the step has one
  clean forward pass, its backward to the input and, for MixupE's term, to
  the weights — not the two clean passes of the saliency and MixupE rows
  combined;
- ``input CutMix, gradient saliency + MixupE exact``: the same with
  ``mode="exact"``: one clean forward pass, whose one backward pass gives
  both the saliency and (differentiated again) MixupE's JVP;
- ``manifold, 3 sites``: the same network with ``MixUp(alpha=2.0)`` layers at
  the input, after stage 1 and after stage 2, wrapped in ``MixupModel``
  (each step mixes at one site, chosen uniformly);
- ``plain deep`` and ``manifold, 8 sites (vs plain deep)``: a deeper CNN
  (three stages of two convolutions, 16/32/48 filters, then
  GlobalAveragePooling and Dense 10), plain, and with ``MixUp(alpha=2.0)``
  sites at the input, after each of its six convolutions and after the
  pooling: 8 sites, one chosen per step. The 8-site ratio is taken against
  ``plain deep`` (the same network without the sites), not plain (A): the
  cost of the site machinery as the number of sites grows;
- ``MixupE fast`` / ``MixupE fast, 1/4 batch`` / ``MixupE exact``: input
  MixUp plus ``regularizer=MixupE(eta=1e-3, mode=..., batch_fraction=...)``.
  The fast mode adds a forward and backward pass on the clean batch (or on a
  random quarter of it); the exact mode adds a forward pass, a
  Jacobian-vector product computed by the double-backward trick, and the
  backward pass of both for the weights.

each compiled twice: ``jit_compile=False`` (graph) and ``jit_compile=True``
(XLA).

Timing: every model is warmed up (the first step traces, and compiles XLA;
its time is shown) and calibrated; then the rows of one compile mode are
timed round-robin: each of ``--repeats`` rounds times one loop of ``n``
steps of every row (``n`` >= 1 chosen so a loop lasts about ``--min-time``
seconds), in an order rotated every round. Short loops in many rounds keep
the rows of a round close in time, so the load of a shared machine hits
them alike. *ms/step* is the median loop. *vs plain* is the median over the
rounds of the *paired* ratio ``loop time / plain (A) loop time of the same
round``, which cancels drifts better than a ratio of medians; its min..max
is shown too. A pathologically slow row sits out later rounds once it has
used ``--max-row-time`` seconds (and has 3 loops). A row many times slower
than plain whose step costs about as much as its first (compiling) step is
flagged as probably recompiling every step. The per-loop log goes to
stderr.

``--profile`` adds rows and a breakdown that say where extra time goes:

- a train-step row ``manifold, always input``: the 3-site model with
  ``site_weights=(1, 0, 0)``, so it always mixes the input like ``input
  MixUp`` does, but through the 3-way ``tf.cond`` of a manifold model: the
  cost of the site machinery itself, apart from mixing hidden states;
- the mixing pieces alone, each in its own ``tf.function`` with the same
  ``jit_compile``: plan sampling, sampling + blending at every site's shape,
  and the interpolated loss (with its gradient) against the plain loss;
- gradient saliency's extra pass against a step's gradient work, on the
  same CNN: its forward pass, forward + weight gradients, forward + input
  gradient (the saliency pass), and forward + gradient to the first
  convolution's output.

Run it from the repository root::

    python benchmarks/bench_train_step.py             # full run, ~2-3 minutes
    python benchmarks/bench_train_step.py --quick     # ~1-1.5 minutes
    python benchmarks/bench_train_step.py --profile   # + breakdown, ~5 minutes

It prints a Markdown table, then a PASS/FAIL summary of the targets (ratio
vs plain (A) in the same compile mode: input MixUp <= 1.03x, input CutMix <=
1.05x, saliency CutMix <= 1.7x, manifold with 3 sites <= 1.10x, MixupE fast <= 2.0x, fast on a quarter
of the batch <= 1.35x, exact <= 3.0x; manifold with 8 sites <= 1.10x vs plain
deep). FAIL is reported, not raised: the exit status is 0.

JAX rows (compile mode ``JAX jit``; plain (A), plain (B), input MixUp,
input CutMix, manifold with 3 sites; targets <= 1.05x, 1.05x, 1.10x) come
from ``benchmarks/bench_jax.py --section train``, run after the TensorFlow
rows in a subprocess with ``KERAS_BACKEND=jax`` (Keras reads the backend
when it is imported), and are added to the table; 1-3 minutes more on 2
CPU cores (``--no-jax`` skips them, as does a machine without JAX).
"""

import argparse
import os
import statistics
import sys
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

import keras_mixup  # noqa: E402

BATCH = 128
IMAGE = (32, 32, 3)
NUM_CLASSES = 10
WIDTHS = (16, 32)  # filters of stage 1 and stage 2

PLAIN_A = "plain (A)"
PLAIN_B = "plain (B)"
MIXUP = "input MixUp"
CUTMIX = "input CutMix"
MANIFOLD = "manifold, 3 sites"
PLAIN_DEEP = "plain deep"
MANIFOLD_DEEP = "manifold, 8 sites (vs plain deep)"
MANIFOLD_INPUT = "manifold, always input"  # --profile only
MIXUPE_FAST = "MixupE fast"
MIXUPE_QUARTER = "MixupE fast, 1/4 batch"
MIXUPE_EXACT = "MixupE exact"
MIXUPE = {  # row: (mode, batch_fraction)
    MIXUPE_FAST: ("fast", 1.0),
    MIXUPE_QUARTER: ("fast", 0.25),
    MIXUPE_EXACT: ("exact", 1.0),
}
CUTMIX_SALIENCY = "input CutMix, gradient saliency"
CUTMIX_SALIENCY_MIXUPE = "input CutMix, gradient saliency + MixupE fast"
CUTMIX_SALIENCY_EXACT = "input CutMix, gradient saliency + MixupE exact"
SALIENCY_MIXUPE = {CUTMIX_SALIENCY_MIXUPE: "fast", CUTMIX_SALIENCY_EXACT: "exact"}
ROWS = [PLAIN_A, PLAIN_B, MIXUP, CUTMIX, CUTMIX_SALIENCY, *SALIENCY_MIXUPE, MANIFOLD, *MIXUPE,
        PLAIN_DEEP, MANIFOLD_DEEP]
PROFILE_ROWS = [MANIFOLD_INPUT]
REFERENCE = PLAIN_A
# Rows whose ratio is taken against another row than REFERENCE.
REFERENCES = {MANIFOLD_DEEP: PLAIN_DEEP}
TARGETS = {
    MIXUP: 1.03,
    CUTMIX: 1.05,
    CUTMIX_SALIENCY: 1.7,
    MANIFOLD: 1.10,
    MANIFOLD_DEEP: 1.10,
    MIXUPE_FAST: 2.0,
    MIXUPE_QUARTER: 1.35,
    MIXUPE_EXACT: 3.0,
}
MODES = [("graph", False), ("XLA", True)]


# ------------------------------------------------------------------ models


def build_network(sites=False):
    """The CNN; with ``sites``, MixUp layers at input / stage 1 / stage 2.

    Layers carry fixed names, so weights can be copied between instances.
    """
    L = keras.layers
    w1, w2 = WIDTHS

    def site(x, name):
        return keras_mixup.layers.MixUp(alpha=2.0, name=name)(x) if sites else x

    inputs = keras.Input(IMAGE)
    x = site(inputs, "site_input")
    x = L.Conv2D(w1, 3, padding="same", activation="relu", name="s1_conv1")(x)
    x = L.Conv2D(w1, 3, padding="same", activation="relu", name="s1_conv2")(x)
    x = L.MaxPooling2D(name="s1_pool")(x)
    x = site(x, "site_stage1")
    x = L.Conv2D(w2, 3, padding="same", activation="relu", name="s2_conv1")(x)
    x = L.Conv2D(w2, 3, padding="same", activation="relu", name="s2_conv2")(x)
    x = L.MaxPooling2D(name="s2_pool")(x)
    x = site(x, "site_stage2")
    x = L.GlobalAveragePooling2D(name="gap")(x)
    outputs = L.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name="cnn_sites" if sites else "cnn")


DEEP_WIDTHS = (16, 32, 48)  # filters of the three stages of the deeper CNN


def build_deep_network(sites=False):
    """The deeper CNN; with ``sites``, 8 MixUp sites (input, after each
    convolution, after the pooling)."""
    L = keras.layers
    count = [0]

    def site(x):
        if not sites:
            return x
        count[0] += 1
        return keras_mixup.layers.MixUp(alpha=2.0, name=f"site_{count[0]}")(x)

    inputs = keras.Input(IMAGE)
    x = site(inputs)
    for stage, width in enumerate(DEEP_WIDTHS):
        for k in range(2):
            x = L.Conv2D(width, 3, padding="same", activation="relu",
                         name=f"d{stage}_conv{k}")(x)
            x = site(x)
        if stage < len(DEEP_WIDTHS) - 1:
            x = L.MaxPooling2D(name=f"d{stage}_pool")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = site(x)
    outputs = L.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name="deep_sites" if sites else "deep")


def copy_weights(src, dst):
    for layer in src.layers:
        if layer.weights:
            dst.get_layer(layer.name).set_weights(layer.get_weights())


def make_model(row, jit, reference, deep_reference=None):
    if row == PLAIN_DEEP:
        model = build_deep_network()
        copy_weights(deep_reference, model)
    elif row == MANIFOLD_DEEP:
        net = build_deep_network(sites=True)
        copy_weights(deep_reference, net)
        model = keras_mixup.MixupModel(net, seed=0)
        assert len(model.sites) == 8, model.sites
    elif row in (PLAIN_A, PLAIN_B):
        model = build_network()
        copy_weights(reference, model)
    elif row == MIXUP or row in MIXUPE:
        net = build_network()
        copy_weights(reference, net)
        regularizer = None
        if row in MIXUPE:
            mode, fraction = MIXUPE[row]
            regularizer = keras_mixup.MixupE(eta=1e-3, mode=mode, batch_fraction=fraction)
        model = keras_mixup.MixupModel(
            net, mixer=keras_mixup.layers.MixUp(alpha=0.2), seed=0,
            regularizer=regularizer)
    elif row in (CUTMIX, CUTMIX_SALIENCY, *SALIENCY_MIXUPE):
        net = build_network()
        copy_weights(reference, net)
        placement = "random" if row == CUTMIX else "saliency"
        regularizer = None
        if row in SALIENCY_MIXUPE:
            regularizer = keras_mixup.MixupE(eta=1e-3, mode=SALIENCY_MIXUPE[row])
        model = keras_mixup.MixupModel(
            net, mixer=keras_mixup.layers.CutMix(alpha=1.0, placement=placement), seed=0,
            regularizer=regularizer)
    elif row in (MANIFOLD, MANIFOLD_INPUT):
        net = build_network(sites=True)
        copy_weights(reference, net)
        weights = (1.0, 0.0, 0.0) if row == MANIFOLD_INPUT else None
        model = keras_mixup.MixupModel(net, site_weights=weights, seed=0)
        assert len(model.sites) == 3, model.sites
    else:
        raise ValueError(row)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
    )
    return model


# ------------------------------------------------------------------ timing


def _error(e):
    msg = str(e).strip().splitlines()
    msg = msg[0] if msg else ""
    return f"error: {type(e).__name__}: {msg[:120]}"


class _Runner:
    """Times loops of a callable ``step`` (which must block until done)."""

    def __init__(self, step):
        self.step = step
        self.first_call = None
        self.n = None
        self.spent = 0.0  # seconds spent in timed loops

    def warm_up(self, min_time):
        t0 = time.perf_counter()
        self.step()  # traces, compiles XLA
        self.first_call = time.perf_counter() - t0
        self.step()  # settles (a retrace with relaxed shapes would show here)
        count, t0 = 0, time.perf_counter()
        while count < 1 or time.perf_counter() - t0 < min(0.3, min_time / 2):
            self.step()
            count += 1
        per_call = max((time.perf_counter() - t0) / count, 1e-6)
        self.n = int(min(max(round(min_time / per_call), 1), 2000))

    def timed_loop(self):
        """Seconds per call over ``n`` calls."""
        t0 = time.perf_counter()
        for _ in range(self.n):
            self.step()
        dt = time.perf_counter() - t0
        self.spent += dt
        return dt / self.n


def round_robin(runners, repeats, log, label, max_row_time=float("inf")):
    """Loop times per runner: ``{name: {round: seconds per call}}``.

    Every round times one loop of every runner, in an order rotated every
    round. A runner that has used up ``max_row_time`` seconds (a
    pathologically slow one) sits out the later rounds once it has 3 loops.
    """
    names = list(runners)
    times = {name: {} for name in names}
    errors = {}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            runner = runners[name]
            if name in errors or (len(times[name]) >= 3
                                  and runner.spent >= max_row_time):
                continue
            try:
                times[name][r] = runner.timed_loop()
            except Exception as e:  # report, don't crash
                errors[name] = _error(e)
        log(f"{label}: round {r + 1}/{repeats}: " + ", ".join(
            f"{n} {times[n][r] * 1e3:.1f}" for n in names if r in times[n]))
    return times, errors


# ------------------------------------------------------------- train steps


def measure_train_steps(rows, repeats, min_time, max_row_time, log):
    """Per mode and row: loop times (list), first-step time, or an error."""
    keras.utils.set_random_seed(0)
    reference = build_network()  # the initial weights of every row
    deep_reference = build_deep_network()  # ... and of the deep rows
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((BATCH,) + IMAGE, dtype=np.float32))
    y = tf.constant(rng.integers(0, NUM_CLASSES, BATCH), tf.int32)

    results = {}
    for mode, jit in MODES:
        runners = {}
        for row in rows:
            try:
                model = make_model(row, jit, reference, deep_reference)
                runner = _Runner(lambda m=model: m.train_on_batch(x, y))
                runner.warm_up(min_time)
                runners[row] = runner
                log(f"{mode:>5} {row:<24} first step {runner.first_call:.1f} s, "
                    f"n={runner.n}")
            except Exception as e:
                results[(mode, row)] = _error(e)
                log(f"{mode:>5} {row:<24} {results[(mode, row)]}")
        times, errors = round_robin(runners, repeats, log, mode, max_row_time)
        results.update({(mode, row): msg for row, msg in errors.items()})
        for row, runner in runners.items():
            if row not in errors:
                results[(mode, row)] = {"times": times[row],
                                        "first": runner.first_call}
    return results


def summarize(results, rows):
    """ms, paired ratio (median, min, max) per (mode, row)."""
    out = {}
    for mode, _ in MODES:
        for row in rows:
            ref = results.get((mode, REFERENCES.get(row, REFERENCE)))
            r = results.get((mode, row))
            if not isinstance(r, dict):
                out[(mode, row)] = r or "error: not measured"
                continue
            entry = {"ms": statistics.median(r["times"].values()) * 1e3,
                     "first": r["first"], "loops": len(r["times"])}
            if isinstance(ref, dict):
                ratios = [t / ref["times"][k] for k, t in r["times"].items()
                          if k in ref["times"]]
                if ratios:
                    entry["ratio"] = statistics.median(ratios)
                    entry["rmin"], entry["rmax"] = min(ratios), max(ratios)
            out[(mode, row)] = entry
    return out


# ---------------------------------------------------------------- profile


def make_components():
    """name -> fn(jit) returning a blocking zero-argument call, for --profile."""
    rng = np.random.default_rng(1)
    w1, w2 = WIDTHS
    shapes = {
        "input": (BATCH,) + IMAGE,
        "stage 1": (BATCH, 16, 16, w1),
        "stage 2": (BATCH, 8, 8, w2),
    }
    data = {k: tf.constant(rng.random(s, dtype=np.float32)) for k, s in shapes.items()}
    logits = tf.constant(rng.normal(size=(BATCH, NUM_CLASSES)).astype(np.float32))
    labels = tf.constant(rng.integers(0, NUM_CLASSES, BATCH), tf.int32)
    seed = tf.constant([0, 1], tf.int64)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def wrap(body, *args):
        def build(jit):
            fn = tf.function(body, jit_compile=jit)
            state = {"i": 0}

            def call():
                state["i"] += 1
                s = seed + state["i"]  # a fresh plan per call
                out = fn(s, *args)
                tf.nest.flatten(out)[-1].numpy()  # wait for the result
            return call
        return build

    comps = {}

    def copy(s, x):  # reads and writes the batch once
        return x * tf.cast(s[1], x.dtype)

    comps["copy floor x*s (input batch)"] = wrap(copy, data["input"])
    mixup_in = keras_mixup.layers.MixUp(alpha=0.2)
    cutmix_in = keras_mixup.layers.CutMix(alpha=1.0)
    mixup_site = keras_mixup.layers.MixUp(alpha=2.0)

    def sample_only(layer):
        def body(s, x):
            plan = layer.sample_plan(x, s)
            return plan["index"], plan["lam"]
        return body

    def sample_blend(layer):
        def body(s, x):
            plan = layer.sample_plan(x, s)
            return plan["lam"], layer.mix_inputs(plan, x)
        return body

    comps["MixUp(0.2) plan only"] = wrap(sample_only(mixup_in), data["input"])
    comps["MixUp(0.2) plan + blend, input"] = wrap(
        sample_blend(mixup_in), data["input"])
    def cutmix_plan(s, x):
        plan = cutmix_in.sample_plan(x, s)
        return plan["index"], plan["lam"], plan["mask"]

    comps["CutMix plan only (index, lam, mask)"] = wrap(cutmix_plan, data["input"])
    comps["CutMix plan + blend, input"] = wrap(sample_blend(cutmix_in), data["input"])
    for where in ("input", "stage 1", "stage 2"):
        comps[f"MixUp(2.0) plan + blend, {where} {shapes[where][1:]}"] = wrap(
            sample_blend(mixup_site), data[where])

    def loss_plain(s, z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            loss = loss_fn(labels, z)
        return loss, tape.gradient(loss, z)

    def loss_interp(s, z):
        plan = mixup_in.sample_plan(z, s)
        index, lam = plan["index"], plan["lam"]
        with tf.GradientTape() as tape:
            tape.watch(z)
            loss = loss_fn(labels, z, lam) + loss_fn(
                tf.gather(labels, index), z, 1.0 - lam)
        return loss, tape.gradient(loss, z)

    comps["loss + grad, plain"] = wrap(loss_plain, logits)
    comps["loss + grad, interpolated (incl. plan)"] = wrap(loss_interp, logits)

    # Gradient saliency's extra pass against a step's own gradient work, on
    # the same CNN: what the saliency row's ratio is made of.
    cnn = build_network()
    head = keras.Model(cnn.get_layer("s1_conv1").output, cnn.output)

    def cnn_loss(net, z, training):
        return loss_fn(labels, net(z, training=training))

    def forward(s, x):
        return cnn_loss(cnn, x, False)

    def weight_gradients(s, x):
        with tf.GradientTape() as tape:
            loss = cnn_loss(cnn, x, True)
        return tape.gradient(loss, cnn.trainable_variables)

    def input_gradient(s, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = cnn_loss(cnn, x, False)
        return tape.gradient(loss, x)

    def first_conv_gradient(s, x):
        h = cnn.get_layer("s1_conv1")(x)
        with tf.GradientTape() as tape:
            tape.watch(h)
            loss = cnn_loss(head, h, False)
        return tape.gradient(loss, h)

    comps["CNN forward (inference)"] = wrap(forward, data["input"])
    comps["CNN forward + weight gradients (a step's gradient work)"] = wrap(
        weight_gradients, data["input"])
    comps["CNN forward + input gradient (the saliency pass)"] = wrap(
        input_gradient, data["input"])
    comps["CNN forward + gradient to the first conv's output"] = wrap(
        first_conv_gradient, data["input"])
    return comps


def measure_components(repeats, min_time, log):
    comps = make_components()
    results = {}
    for mode, jit in MODES:
        runners = {}
        for name, build in comps.items():
            try:
                runner = _Runner(build(jit))
                runner.warm_up(min_time)
                runners[name] = runner
            except Exception as e:
                results[(mode, name)] = _error(e)
        times, errors = round_robin(runners, repeats, log, f"profile {mode}")
        for name in runners:
            results[(mode, name)] = errors.get(name) or statistics.median(
                times[name].values())
    return list(comps), results


# -------------------------------------------------------------------- JAX


def run_jax(section, extra):
    """Runs ``bench_jax.py --section SECTION`` with KERAS_BACKEND=jax in a
    subprocess; returns its ``--json`` dict, or a string saying why not.
    Its log goes to stderr like this script's."""
    import importlib.util
    import json
    import subprocess
    import tempfile

    if importlib.util.find_spec("jax") is None:
        return "skipped: JAX is not installed"
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_jax.py")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "jax.json")
        proc = subprocess.run(
            [sys.executable, script, "--section", section, "--json", path, *extra],
            env=dict(os.environ, KERAS_BACKEND="jax"), stdout=subprocess.DEVNULL)
        if proc.returncode or not os.path.exists(path):
            return f"error: bench_jax.py exited with status {proc.returncode}"
        with open(path) as f:
            return json.load(f)


# ------------------------------------------------------------------ report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds (9) of shorter loops (0.2 s)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="round-robin rounds, one timed loop per row each "
                             "(median kept); default 41, 9 with --quick")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds per timed loop (default 0.25, 0.2 with --quick)")
    parser.add_argument("--max-row-time", type=float, default=15.0,
                        help="seconds of timed loops after which a (very slow) "
                             "row sits out the later rounds, once it has 3 loops "
                             "(default 15)")
    parser.add_argument("--rows", default=None,
                        help="semicolon-separated subset of the rows to time (the "
                             "plain rows are always timed); e.g. 'MixupE fast;"
                             "MixupE exact'")
    parser.add_argument("--modes", default="graph,XLA",
                        help="compile modes to time: 'graph', 'XLA' or both "
                             "(default 'graph,XLA')")
    parser.add_argument("--profile", action="store_true",
                        help="add the 'manifold, always input' row and time the "
                             "mixing pieces alone")
    parser.add_argument("--no-jax", action="store_true",
                        help="skip the JAX rows (bench_jax.py in a subprocess)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (9 if args.quick else 41)
    min_time = args.min_time or (0.2 if args.quick else 0.25)
    rows = ROWS + (PROFILE_ROWS if args.profile else [])
    global MODES
    chosen = [m.strip() for m in args.modes.split(",")]
    if not chosen or any(m not in dict(MODES) for m in chosen):
        parser.error(f"--modes: choose from 'graph' and 'XLA'; got {args.modes!r}")
    MODES = [m for m in MODES if m[0] in chosen]
    if args.rows:
        wanted = [r.strip() for r in args.rows.split(";") if r.strip()]
        unknown = [r for r in wanted if r not in rows]
        if unknown:
            parser.error(f"--rows: unknown row(s) {unknown}; choose from {rows}")
        always = [PLAIN_A, PLAIN_B] + ([PLAIN_DEEP] if MANIFOLD_DEEP in wanted else [])
        rows = always + [r for r in rows if r in wanted and r not in always]

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"keras_mixup {getattr(keras_mixup, '__version__', '?')}, "
          f"{os.cpu_count()} CPUs, batch {BATCH}x{'x'.join(map(str, IMAGE))}, "
          f"repeats={repeats}, min-time={min_time}s", flush=True)
    wall0 = time.perf_counter()

    def log(msg):
        print(f"  [{time.perf_counter() - wall0:5.0f} s] {msg}", file=sys.stderr, flush=True)

    results = measure_train_steps(rows, repeats, min_time, args.max_row_time, log)
    summary = summarize(results, rows)
    jax_rows = None
    if not args.no_jax:
        extra = ["--quick"] if args.quick else []
        extra += ["--repeats", str(args.repeats)] if args.repeats else []
        extra += ["--min-time", str(args.min_time)] if args.min_time else []
        jax_rows = run_jax("train", extra)
        if isinstance(jax_rows, dict):
            jax_rows = jax_rows.get("train", "error: no train rows")

    lines = [
        "| Compile | Model | ms/step | steps/s | vs plain (A) | paired min..max "
        "| target | 1st step (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    short = []  # rows that sat out rounds
    for mode, _ in MODES:
        for row in rows:
            e = summary[(mode, row)]
            target = f"<= {TARGETS[row]:.2f}x" if row in TARGETS else ""
            if isinstance(e, str):
                lines.append(f"| {mode} | {row} | {e} | | | | {target} | |")
                continue
            ratio = f"{e['ratio']:.3f}x" if "ratio" in e else "n/a"
            spread = f"{e['rmin']:.2f}..{e['rmax']:.2f}" if "ratio" in e else ""
            mark = ""
            if e["loops"] < repeats:
                mark = " (s)"
                short.append(f"{mode} {row} ({e['loops']} loops)")
            lines.append(
                f"| {mode} | {row}{mark} | {e['ms']:.1f} | {1e3 / e['ms']:.2f} | {ratio} "
                f"| {spread} | {target} | {e['first']:.1f} |")
    if isinstance(jax_rows, dict):
        lines += jax_rows["table"]
    print()
    print("\n".join(lines))

    noise = {
        m: abs(summary[(m, PLAIN_B)]["ratio"] - 1.0)
        for m, _ in MODES
        if isinstance(summary[(m, PLAIN_B)], dict) and "ratio" in summary[(m, PLAIN_B)]
    }
    noise_text = ("here |plain (B) / plain (A) - 1| came out "
                  + " and ".join(f"{v * 100:.1f}% ({m})" for m, v in noise.items())
                  ) if noise else "it could not be measured"
    print()
    print(
        "`train_on_batch` on one fixed 128x32x32x3 float32 batch with int "
        "labels, SGD, SparseCategoricalCrossentropy(from_logits=True); all "
        "rows start from the same weights. *ms/step*: median loop. *vs plain "
        f"(A)*: median over {repeats} round-robin rounds of the paired ratio "
        "(loop time / plain (A) loop time of the same round); *paired "
        "min..max*: its range. *plain (B)* is the same plain model compiled a "
        "second time, so its ratio is the noise floor of this measurement: "
        f"{noise_text}. *1st step*: trace (+ XLA compile) time. Loops of "
        f"~{min_time:g} s (at least one step) after warm-up."
    )
    if jax_rows is not None:
        print()
        print(jax_rows["note"] if isinstance(jax_rows, dict) else f"JAX rows: {jax_rows}")
    if short:
        print()
        print("(s): too slow to time in every round (--max-row-time "
              f"{args.max_row_time:g} s): " + ", ".join(short) + ".")

    print()
    print("Targets (ratio vs plain (A), or plain deep for the 8-site row; same compile mode):")
    suspects = []
    for mode, _ in MODES:
        for row, limit in TARGETS.items():
            if row not in rows:
                continue
            e = summary.get((mode, row))
            label = f"{mode:<5} {row} <= {limit:.2f}x"
            if not isinstance(e, dict) or "ratio" not in e:
                print(f"  [N/A ] {label}: could not be measured")
                continue
            ok = e["ratio"] <= limit
            print(f"  [{'PASS' if ok else 'FAIL'}] {label}: {e['ratio']:.3f}x "
                  f"({e['ms'] - summary[(mode, REFERENCES.get(row, REFERENCE))]['ms']:+.1f} ms/step)")
    for (mode, row), e in summary.items():
        # A step that costs about as much as the first (compiling) step, and
        # several times the plain step, recompiles on every call.
        if (isinstance(e, dict) and e.get("ratio", 0) > 3
                and e["ms"] / 1e3 > 0.3 * e["first"]):
            suspects.append(f"{mode} {row}")
    if isinstance(jax_rows, dict):
        print("\n".join(jax_rows["targets"]))
    if noise:
        print("  (noise floor, |plain (B) / plain (A) - 1|: "
              + ", ".join(f"{m} {v * 100:.1f}%" for m, v in noise.items()) + ")")
    if suspects:
        print()
        print(
            "Recompiling every step? " + ", ".join(suspects) + ": a step "
            "costs several plain steps and about as much as the first "
            "(compiling) step. Under XLA that happens when a value that "
            "changes every step (here: derived from the optimizer's "
            "iteration count, which seeds the site choice) is needed as a "
            "compile-time constant, e.g. the `begin` of a `StridedSlice` "
            "(`t[i]` with a tensor `i`); TensorFlow then bakes the variable's "
            "value into the program and compiles anew on each step. Confirm "
            "with XLA_FLAGS=--xla_dump_to=DIR (one new module per step) or "
            "TF_CPP_MIN_LOG_LEVEL=0 TF_CPP_VMODULE=const_analysis=3 (the "
            "must-be-const chain); `tf.gather(t, i)` has no such requirement."
        )

    if args.profile:
        names, comp = measure_components(min(repeats, 15), min(min_time, 0.2), log)
        print()
        print("Profile: the mixing pieces alone (ms per call of a tf.function "
              "returning its outputs, incl. ~0.05-0.1 ms of dispatch):")
        print()
        print("| Piece | graph ms | XLA ms |")
        print("|---|---:|---:|")
        for name in names:
            cells = []
            for mode, _ in MODES:
                v = comp.get((mode, name))
                cells.append(v if isinstance(v, str) else f"{v * 1e3:.3f}")
            print(f"| {name} | {cells[0]} | {cells[1]} |")
        print()
        print("Compare with the extra ms/step of each row over plain (A). "
              "'manifold, always input' minus 'input MixUp' is the cost of "
              "the 3-way site machinery (tf.cond at every site, the identity "
              "plans of unchosen sites, gradients through the conds, the "
              "chosen plan picked by a runtime index) apart from mixing "
              "hidden states. The CNN rows: gradient saliency's extra pass "
              "(forward + input gradient) against a step's own gradient "
              "work; the ≤ 1.7x saliency target needs the pass under ~0.65 "
              "of that, and the first conv's input gradient is the "
              "difference of the last two rows.")

    print()
    print(f"Total wall time: {time.perf_counter() - wall0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
