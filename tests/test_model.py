"""MixupModel: sites, labels, seeds, distribution, precision, saving."""

import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_mixup
from conftest import id_rows_plan
from keras_mixup.layers import CutMix, MixUp

# Runs on every backend the suite runs (TensorFlow, JAX). Mixed targets and
# weights are observed through Keras variables — a `Recorder` layer's
# weight and a `TargetRecorder` metric's — which both backends' compiled
# steps update (a loss holding a tf.Variable cannot work in JAX's jitted
# step). The tests of tf.distribute strategies are marked
# `tensorflow_only`; `Recorder.traces` counts traces on both backends.
BACKEND = keras.backend.backend()
B = 8  # batch = feature size: row i of the identity identifies example i


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


@keras.saving.register_keras_serializable(package="tests")
class Recorder(keras.layers.Layer):
    """Identity layer that stores its last training input in a variable."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(shape)
        self.last = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="last")
        self.traces = 0  # Python runs `call` only while tracing a graph

    def get_config(self):
        return {**super().get_config(), "shape": self.shape}

    def call(self, x, training=None):
        self.traces += 1  # Python runs this only while tracing (TF and JAX)
        if training:
            self.last.assign(keras.ops.cast(x, self.last.dtype))
        return x


class TargetRecorder(keras.metrics.Metric):
    """Keeps the last targets and sample weights the training metrics saw.

    For float labels `MixupModel` hands the metrics the very tensors it
    hands the loss (the mixed targets and mixed weights); compile it as a
    ``weighted_metrics`` entry to see the weights. ``dtypes`` collects the
    targets' dtypes (Python runs ``update_state`` while tracing)."""

    def __init__(self, shape, **kwargs):
        super().__init__(name="targets", **kwargs)
        self.y = self.add_variable(shape=shape, initializer="zeros", name="y")
        self.w = self.add_variable(shape=shape[:1], initializer="zeros", name="w")
        self.dtypes = set()

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.dtypes.add(keras.backend.standardize_dtype(y_true.dtype))
        self.y.assign(keras.ops.cast(y_true, "float32"))
        if sample_weight is not None:
            self.w.assign(keras.ops.reshape(keras.ops.cast(sample_weight, "float32"), (-1,)))

    def result(self):
        return keras.ops.sum(self.y)


def cross_entropy(y, logits):
    """Per-example categorical cross-entropy from logits (NumPy, float64)."""
    logits = np.asarray(logits, np.float64)
    logits = logits - logits.max(-1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -(np.asarray(y, np.float64) * log_p).sum(-1)


def identity_dense(units):
    return keras.layers.Dense(units, use_bias=False, trainable=False,
                              kernel_initializer="identity")


def two_site_model(record=True):
    """id rows -> site_a -> identity -> site_b -> Dense: two mixing sites
    on an identity network, with recorders of each site's output."""
    def rec(name):
        return Recorder((B, B), name=name) if record else keras.layers.Identity(name=name)

    inputs = keras.Input((B,))
    h = MixUp(alpha=1.0, name="site_a")(inputs)
    h = rec("rec_a")(h)
    h = identity_dense(B)(h)
    h = MixUp(alpha=1.0, name="site_b")(h)
    h = rec("rec_b")(h)
    outputs = keras.layers.Dense(B, kernel_initializer="identity")(h)
    return keras.Model(inputs, outputs)


def test_one_site_mixes_per_step_and_labels_follow_it():
    model = keras_mixup.MixupModel(two_site_model(), seed=1)
    recorder = TargetRecorder((B, B))
    model.compile(keras.optimizers.SGD(0.0),
                  keras.losses.CategoricalCrossentropy(from_logits=True),
                  weighted_metrics=[recorder])
    x, y = np.eye(B, dtype="float32"), np.eye(B, dtype="float32")
    w = np.arange(1, B + 1, dtype="float32")
    rec_a, rec_b = model.model.get_layer("rec_a"), model.model.get_layer("rec_b")
    chosen = []
    for step in range(30):
        model.reset_metrics()  # train_on_batch keeps running means before Keras 3.14
        logs = model.train_on_batch(x, y, sample_weight=w, return_dict=True)
        if step == 0:
            traces = rec_a.traces
        a, b = to_numpy(rec_a.last), to_numpy(rec_b.last)
        mixed_a, mixed_b = not np.allclose(a, x), not np.allclose(b, a)
        assert mixed_a + mixed_b == 1, "exactly one site mixes per step"
        hidden = a if mixed_a else b
        chosen.append("a" if mixed_a else "b")
        partner, lam = id_rows_plan(hidden)
        assert (partner != np.arange(B)).any()
        # Labels and weights mixed with the realized plan of that site...
        w_mixed = lam * w + (1 - lam) * w[partner]
        np.testing.assert_allclose(to_numpy(recorder.y), hidden, atol=1e-6)
        np.testing.assert_allclose(to_numpy(recorder.w), w_mixed, rtol=1e-5)
        # ...and the loss is computed on them: an identity net with SGD(0)
        # has logits b, and "sum_over_batch_size" divides by the batch.
        expected = np.sum(w_mixed * cross_entropy(hidden, b)) / B
        assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    assert set(chosen) == {"a", "b"}
    assert rec_a.traces == traces, "no retracing per step"


@contextlib.contextmanager
def jax_compiles():
    """A list that grows by one for every XLA compilation on JAX while the
    block runs; None on the other backends."""
    if BACKEND != "jax":
        yield None
        return
    import jax

    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    monitoring = jax.monitoring
    unregister = getattr(monitoring, "unregister_event_duration_listener", None) or getattr(
        monitoring, "_unregister_event_duration_listener_by_callback", None)
    if unregister is None:  # JAX 0.4.30: only the private module has it
        from jax._src import monitoring as private_monitoring

        unregister = private_monitoring._unregister_event_duration_listener_by_callback
    monitoring.register_event_duration_secs_listener(listener)
    try:
        yield compiles
    finally:
        unregister(listener)


@pytest.mark.parametrize("jit", [False, True])
def test_site_choice_follows_site_weights(jit):
    # jit=False: a TensorFlow graph without XLA; on JAX, the eager step.
    model = keras_mixup.MixupModel(two_site_model(), site_weights=[1, 3], seed=2)
    model.compile(keras.optimizers.SGD(0.0),
                  keras.losses.CategoricalCrossentropy(from_logits=True), jit_compile=jit)
    x = np.eye(B, dtype="float32")
    rec_a = model.model.get_layer("rec_a")
    # Eager JAX steps are slow: fewer of them there (the per-step compile
    # check needs only a few; the weights' test is looser).
    n = 200 if (not jit and keras.backend.backend() == "jax") else 600
    hits_b = 0
    seen = set()
    with jax_compiles() as compiles:
        for step in range(n):
            before = len(compiles or ())
            model.train_on_batch(x, x)
            chose_b = bool(np.allclose(to_numpy(rec_a.last), x))
            hits_b += chose_b
            if compiles is not None and chose_b in seen:
                # Nothing compiles per step, jitted or eager (an eager
                # jax.lax.cond compiles its branches on every call).
                assert len(compiles) == before, (
                    f"step {step} compiled {len(compiles) - before} XLA programs")
            seen.add(chose_b)
    # Tolerance: 5 standard errors of a binomial fraction.
    assert abs(hits_b / n - 0.75) < 5 * np.sqrt(0.75 * 0.25 / n)


def test_sparse_labels_interpolate_the_loss_like_one_hot_targets():
    results = {}
    for kind in ("sparse", "onehot"):
        keras.utils.set_random_seed(0)
        model = keras_mixup.MixupModel(two_site_model(), seed=3)
        if kind == "sparse":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            y = np.arange(B)
        else:
            loss = keras.losses.CategoricalCrossentropy(from_logits=True)
            y = np.eye(B, dtype="float32")
        model.compile(keras.optimizers.SGD(0.1), loss,
                      metrics=[keras.metrics.SparseCategoricalAccuracy() if kind == "sparse"
                               else keras.metrics.CategoricalAccuracy()])
        x = np.eye(B, dtype="float32") * 3.0 + 0.1
        w = np.linspace(0.5, 2.0, B).astype("float32")
        results[kind] = [model.train_on_batch(x, y, sample_weight=w, return_dict=True)
                         for _ in range(5)]
    for s, o in zip(results["sparse"], results["onehot"]):
        assert s["loss"] == pytest.approx(o["loss"], rel=1e-5)
        # Accuracy against the dominant label == arg-max of the mixed target.
        assert s[next(k for k in s if "accuracy" in k)] == pytest.approx(
            o[next(k for k in o if "accuracy" in k)], abs=1e-6)


def test_evaluate_and_predict_see_the_plain_model():
    model = keras_mixup.MixupModel(two_site_model(), seed=0)
    model.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True))
    x = np.random.RandomState(0).rand(B, B).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), model.model.predict(x, verbose=0))
    np.testing.assert_allclose(model.predict(x, verbose=0), x + 0.0, atol=1e-6)  # identity net
    plain = keras.Model(model.model.inputs, model.model.outputs)
    plain.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True))
    assert model.evaluate(x, np.eye(B), verbose=0) == pytest.approx(
        plain.evaluate(x, np.eye(B), verbose=0), rel=1e-6)


def test_mixer_argument_and_nested_and_subclassed_sites():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6), MixUp(0.5, name="deep")])

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.body = inner
            self.site = MixUp(0.5, name="sub_site")
            self.head = keras.layers.Dense(3)

        def call(self, x, training=None):
            return self.head(self.site(self.body(x, training=training), training=training))

    net = Net()
    net(np.zeros((1, 4), "float32"), training=False)  # build; a site needs labels to train
    model = keras_mixup.MixupModel(net, mixer=MixUp(0.2, name="inp"), seed=0)
    assert [s.name for s in model.sites] == ["inp", "deep", "sub_site"]
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    hist = model.fit(np.random.rand(32, 4), np.arange(32) % 3, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


def test_feature_cutmix_site_on_conv_maps():
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    h = CutMix(alpha=1.0, name="patch")(h)
    h = Recorder((4, 8, 8, 4), name="rec")(h)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras_mixup.MixupModel(keras.Model(inputs, outputs), seed=5)
    recorder = TargetRecorder((4, 3))
    model.compile(keras.optimizers.SGD(0.0),
                  keras.losses.CategoricalCrossentropy(from_logits=True), metrics=[recorder])
    x = np.random.RandomState(0).rand(4, 8, 8, 1).astype("float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    model.train_on_batch(x, y)
    feats = to_numpy(keras.Model(inputs, model.model.layers[1].output)(x))
    mixed = to_numpy(model.model.get_layer("rec").last)
    for i in range(4):
        own = np.all(np.isclose(mixed[i], feats[i]), axis=-1)
        if own.all():
            continue
        j = next(j for j in range(4) if np.allclose(mixed[i][~own], feats[j][~own]))
        frac = own.mean()
        expected = frac * y[i] + (1 - frac) * y[j]
        np.testing.assert_allclose(to_numpy(recorder.y)[i], expected, atol=1e-6)


def test_errors_say_what_to_do():
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="mixer="):
        keras_mixup.MixupModel(plain)
    with pytest.raises(ValueError, match="site_weights"):
        keras_mixup.MixupModel(plain, mixer=MixUp(), site_weights=[1, 2])
    with pytest.raises(TypeError, match="mixer"):
        keras_mixup.MixupModel(plain, mixer=keras.layers.Dense(2))
    with_site = keras.Sequential([keras.Input((3,)), MixUp(), keras.layers.Dense(2)])
    with_site.compile("sgd", "mse")
    with pytest.raises(ValueError, match="MixupModel"):
        with_site.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0)


def test_save_load_round_trip(tmp_path):
    model = keras_mixup.MixupModel(two_site_model(), mixer=None, site_weights=[2, 1], seed=7)
    model.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
    x = np.random.RandomState(1).rand(16, B).astype("float32")
    model.fit(x, np.eye(B)[np.arange(16) % B], batch_size=B, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, keras_mixup.MixupModel)
    assert loaded.site_weights == [2.0, 1.0] and loaded.seed == 7
    assert [s.name for s in loaded.sites] == [s.name for s in model.sites]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_array_equal(loaded.model.predict(x, verbose=0), model.predict(x, verbose=0))
    # Training continues on the loaded model.
    loaded.fit(x, np.eye(B)[np.arange(16) % B], batch_size=B, epochs=1, verbose=0)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_labels_float32(policy):
    keras.config.set_dtype_policy(policy)
    try:
        inputs = keras.Input((4, 4, 2))
        h = CutMix(name="c")(inputs)
        h = keras.layers.Conv2D(3, 1)(h)
        h = MixUp(name="m")(h)
        outputs = keras.layers.Dense(3, dtype="float32")(keras.layers.Flatten()(h))
        model = keras_mixup.MixupModel(keras.Model(inputs, outputs), seed=0)
        recorder = TargetRecorder((8, 3))
        model.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True),
                      metrics=[recorder], jit_compile=True)
        y = np.eye(3, dtype="float32")[np.arange(8) % 3] * 0.9 + 0.1 / 3
        hist = model.fit(np.random.rand(8, 4, 4, 2), y, epochs=3, verbose=0)
        assert np.isfinite(hist.history["loss"]).all()
        # The mixed targets (the loss's and the metrics') are float32: a
        # float16 blend would miss a row sum of 1 by ~1e-3.
        assert recorder.dtypes == {"float32"}
        mixed = to_numpy(recorder.y)
        assert not np.allclose(mixed, y)  # it mixed
        np.testing.assert_allclose(mixed.sum(1), 1.0, rtol=1e-6)
    finally:
        keras.config.set_dtype_policy("float32")


def make_for_resume():
    keras.utils.set_random_seed(42)
    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, activation="relu")(MixUp(1.0)(inputs))
    outputs = keras.layers.Dense(3)(MixUp(1.0)(h))
    model = keras_mixup.MixupModel(keras.Model(inputs, outputs), seed=11)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_backup_and_restore_resumes_the_same_random_stream(tmp_path):
    x = np.random.RandomState(0).rand(64, 8).astype("float32")
    y = np.arange(64) % 3
    fit = dict(batch_size=16, epochs=4, shuffle=False, verbose=0)
    reference = make_for_resume()
    reference.fit(x, y, **fit)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("interrupted")

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    model = make_for_resume()
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, callbacks=[backup, Interrupt()], **fit)
    resumed = make_for_resume()  # a fresh process would rebuild the model
    resumed.fit(x, y, callbacks=[backup], **fit)
    for a, b in zip(reference.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    # And the mixing matters: a different seed ends elsewhere.
    other = make_for_resume()
    other.seed, other._base_seed = 12, 12
    other.fit(x, y, **fit)
    assert not np.array_equal(to_numpy(other.trainable_weights[0]),
                              to_numpy(reference.trainable_weights[0]))


class CrossShardMass(keras.metrics.Metric):
    """Mass that a mixed id row puts on the other replica's examples."""

    def __init__(self, half, **kwargs):
        super().__init__(**kwargs)
        self.half = half
        self.cross = self.add_variable(shape=(), initializer="zeros", name="cross")
        self.mixed = self.add_variable(shape=(), initializer="zeros", name="mixed")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = keras.ops.cast(y_true, "float32")
        first = keras.ops.sum(y_true[:, :self.half], 1)
        second = keras.ops.sum(y_true[:, self.half:], 1)
        self.cross.assign_add(keras.ops.sum(first * second))
        self.mixed.assign_add(keras.ops.sum(1.0 - keras.ops.max(y_true, 1)))

    def result(self):
        return self.cross


# JAX's counterpart, keras.distribution.DataParallel, is
# test_backends.py::test_data_parallel_each_device_mixes_its_own_shard.
@pytest.mark.tensorflow_only
def test_mirrored_strategy_each_replica_mixes_its_own_examples(mirrored):
    import tensorflow as tf

    strategy = mirrored
    with strategy.scope():
        model = keras_mixup.MixupModel(two_site_model(record=False), seed=4)
        metric = CrossShardMass(B // 2)
        model.compile(keras.optimizers.SGD(0.01),
                      keras.losses.CategoricalCrossentropy(from_logits=True),
                      metrics=[metric], jit_compile=False)
    x = np.eye(B, dtype="float32")
    ds = tf.data.Dataset.from_tensors((x, x)).repeat(20)
    hist = model.fit(ds, epochs=1, verbose=0)
    cross, mixed = float(metric.cross.numpy()), float(metric.mixed.numpy())
    assert mixed > 1.0, "mixing happened"
    assert cross == 0.0, "no example mixed with the other replica's shard"
    assert np.isfinite(hist.history["loss"]).all()
    seeds = strategy.run(model._step_seed)
    a, b = [t.numpy() for t in strategy.experimental_local_results(seeds)]
    assert not np.array_equal(a, b), "replicas draw different plans"


class MaxGap(keras.metrics.Metric):
    """Largest |target − prediction| seen: 0 when the labels followed the
    inputs (an identity network trained with a learning rate of 0)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.gap = self.add_variable(shape=(), initializer="zeros", name="gap")

    def update_state(self, y_true, y_pred, sample_weight=None):
        diff = keras.ops.max(keras.ops.abs(keras.ops.cast(y_true, "float32") - y_pred))
        self.gap.assign(keras.ops.maximum(self.gap, diff))

    def result(self):
        return self.gap


@pytest.mark.tensorflow_only
def test_mirrored_strategy_global_pairing_mixes_across_replicas(mirrored):
    import tensorflow as tf

    with mirrored.scope():
        inputs = keras.Input((B,))
        h = MixUp(alpha=1.0, pairing_scope="global", name="site_a")(inputs)
        h = identity_dense(B)(h)
        h = MixUp(alpha=1.0, pairing_scope="global", name="site_b")(h)
        outputs = keras.layers.Dense(B, kernel_initializer="identity")(h)
        model = keras_mixup.MixupModel(keras.Model(inputs, outputs), seed=4)
        cross, gap = CrossShardMass(B // 2), MaxGap()
        model.compile(keras.optimizers.SGD(0.0),
                      keras.losses.CategoricalCrossentropy(from_logits=True),
                      metrics=[cross, gap], jit_compile=False)
    x = np.eye(B, dtype="float32")
    ds = tf.data.Dataset.from_tensors((x, x)).repeat(20)
    hist = model.fit(ds, epochs=1, verbose=0)
    # A random other example of 8 sits on the other replica 4 times in 7.
    assert float(cross.cross.numpy()) > 1.0, "partners from the other replica"
    assert float(gap.gap.numpy()) < 1e-5, "labels follow the global partners"
    assert np.isfinite(hist.history["loss"]).all()


# Keras 3's fit() fails under MultiWorkerMirroredStrategy even for a plain
# model ("Attempt to convert a value (PerReplica...)", keras-team/keras#20585),
# so the workers drive MixupModel.train_step with strategy.run themselves.
WORKER = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf, keras, keras_mixup
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, activation="relu")(keras_mixup.layers.MixUp(1.0)(inputs))
    outputs = keras.layers.Dense(3)(keras_mixup.layers.MixUp(1.0)(h))
    model = keras_mixup.MixupModel(keras.Model(inputs, outputs), seed=3)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.optimizer.build(model.trainable_variables)
x = np.random.RandomState(0).rand(64, 8).astype("float32")
ds = tf.data.Dataset.from_tensor_slices((x, np.arange(64) % 3)).batch(16).repeat()
batches = iter(strategy.experimental_distribute_dataset(ds))

@tf.function
def step(batches):
    logs = strategy.run(model.train_step, args=(next(batches),))
    seed = strategy.run(model._step_seed)
    return strategy.reduce("MEAN", logs["loss"], axis=None), seed

losses, seeds = [], []
for _ in range(6):
    loss, seed = step(batches)
    losses.append(float(loss))
    seeds.append(strategy.experimental_local_results(seed)[0].numpy().tolist())
json.dump({"loss": losses, "seeds": seeds,
           "weights": [w.tolist() for w in model.get_weights()]},
          open(sys.argv[1], "w"))
"""


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
@pytest.mark.tensorflow_only
def test_multi_worker_mirrored_strategy_on_loopback(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / f"out{i}.json")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=str(pathlib.Path(__file__).resolve().parents[1])))
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        outs.append(out.decode(errors="replace")[-3000:])
        assert p.returncode == 0, outs[-1]
    results = [json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(2)]
    assert all(np.isfinite(r["loss"]).all() for r in results)
    assert results[0]["loss"][-1] < results[0]["loss"][0]
    # Synchronous training: both workers hold the same weights...
    for a, b in zip(results[0]["weights"], results[1]["weights"]):
        np.testing.assert_array_equal(a, b)
    # ...while each worker's replica draws its own plans.
    assert all(a != b for a, b in zip(results[0]["seeds"], results[1]["seeds"]))


@pytest.mark.parametrize("run", ["eager", "graph", "xla"])
@pytest.mark.parametrize("make", [
    lambda: MixUp(1.0),
    lambda: CutMix(1.0),
    lambda: keras_mixup.layers.RandomMix([MixUp(1.0), CutMix()], per_sample=True),
    lambda: keras_mixup.layers.ResizeMix(),
], ids=["mixup", "cutmix", "random", "resizemix"])
def test_site_gradient_matches_autodiff_of_the_plan(make, run):
    # On TensorFlow a site samples and mixes in one compiled call with a
    # hand-written gradient (the blend's transpose; TensorFlow's own for a
    # partner read resized, ResizeMix); it must equal the
    # automatic gradient of applying the same plan — also inside the
    # tf.cond that picks the site of a multi-site step, and inside an XLA
    # train step. On JAX the site mixes inside a lax.cond under
    # jax.value_and_grad (eager, or jitted: JAX's only graph is XLA's).
    from keras_mixup.layers.sites import MixingScope
    from keras_mixup.ops.random import fold_seed

    if BACKEND == "jax" and run == "graph":
        pytest.skip("JAX has no graph mode apart from XLA (the 'xla' case)")
    layer = make()
    x = keras.ops.convert_to_tensor(np.random.RandomState(0).rand(6, 5, 4, 3).astype("float32"))
    upstream = keras.ops.convert_to_tensor(
        np.random.RandomState(1).rand(6, 5, 4, 3).astype("float32"))
    seed = keras_mixup.ops.as_seed(np.array([1, 2]))  # int64 on TF, uint32 on JAX
    choice = keras.ops.convert_to_tensor(0, "int32")

    def forward(x, fused):
        if fused:
            return layer(x, training=True)
        return layer.mix_inputs(layer.plan(x, fold_seed(seed, 0)), x)

    if BACKEND == "tensorflow":
        import tensorflow as tf

        def grads(x, fused):
            # Two site ids, so the layer mixes inside a tf.cond on the choice.
            with MixingScope({id(layer): 0, -1: 1}, seed, choice):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = forward(x, fused)
                    loss = tf.reduce_sum(y * upstream)
            return y, tape.gradient(loss, x)

        if run != "eager":
            grads = tf.function(grads, jit_compile=run == "xla")
    else:
        import jax

        def grads(x, fused):
            def loss(x):
                with MixingScope({id(layer): 0, -1: 1}, seed, choice):
                    y = forward(x, fused)
                return keras.ops.sum(y * upstream), y

            (_, y), g = jax.value_and_grad(loss, has_aux=True)(x)
            return y, g

        if run == "xla":
            grads = jax.jit(grads, static_argnums=1)
    (y, g), (y_ref, g_ref) = grads(x, True), grads(x, False)
    y, g, y_ref, g_ref = map(to_numpy, (y, g, y_ref, g_ref))
    assert not np.allclose(y, to_numpy(x))  # it mixed
    np.testing.assert_allclose(y, y_ref, atol=1e-6)
    np.testing.assert_allclose(g, g_ref, atol=1e-5)


def test_integer_inputs_are_refused_when_the_model_is_built():
    tokens = keras.Input((10,), dtype="int32")
    with pytest.raises(TypeError, match="Embedding"):
        keras_mixup.layers.MixUp(alpha=0.4)(tokens)
    with pytest.raises(TypeError, match="embeddings"):
        keras_mixup.layers.CutMix(alpha=1.0)(keras.Input((10, 4), dtype="int32"))
    # Mixing the embeddings is fine.
    h = keras_mixup.layers.MixUp(alpha=0.4)(keras.layers.Embedding(50, 8)(tokens))
    assert tuple(h.shape) == (None, 10, 8)


@pytest.mark.parametrize("stop", [False, True])
def test_stop_gradient_site_blocks_the_layers_below(stop):
    """MixUp(stop_gradient=True) at a hidden site: on the steps it mixes,
    the layers below it get no gradient (Verma et al.'s ablation)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    below = keras.layers.Dense(5, name="below")
    h = below(inputs)
    h = keras_mixup.layers.MixUp(alpha=1.0, stop_gradient=stop)(h)
    above = keras.layers.Dense(3, name="above")
    model = keras_mixup.MixupModel(keras.Model(inputs, above(h)), seed=0)
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    y = np.arange(16) % 3
    w_below, w_above = below.kernel.numpy().copy(), above.kernel.numpy().copy()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert not np.allclose(above.kernel.numpy(), w_above)
    assert np.allclose(below.kernel.numpy(), w_below) == stop
    site = model.sites[0]
    assert type(site).from_config(site.get_config()).stop_gradient == stop
