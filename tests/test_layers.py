"""Tests of MixUp, CutMix and RandomMix as preprocessing layers."""

import keras
import numpy as np
import pytest
from keras.src.testing import TestCase

from keras_mixup import backend, ops
from keras_mixup.layers import CutMix, MixUp, RandomMix
from tests.conftest import xla

# Runs on every backend (TensorFlow, JAX). Inputs are NumPy arrays; a layer
# returns the backend's tensors (read with `to_np`). The random streams
# differ by backend (Philox versus jax.random), so plans are checked by
# what they must satisfy, never by their values. tf.data tests run under
# any backend when TensorFlow is installed (mixing in a tf.data map is a
# feature on JAX too); tf.function graph internals are TensorFlow-only.
BACKEND = keras.backend.backend()


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def seeds(rows):
    """Integer ``(..., 2)`` rows as stateless seeds of the running backend
    (int64 on TensorFlow, uint32 ``jax.random`` keys on JAX)."""
    return keras.ops.cast(np.asarray(rows), backend.ops().SEED_DTYPE)


def compiled(layer):
    """The layer's call compiled with XLA (conftest's `xla`), drawing a
    fresh plan on every call.

    On TensorFlow the layer is called inside the compiled function (its
    call counter is a variable the graph advances). On JAX, state cannot
    change inside ``jax.jit``: the compiled function is the layer's
    ``stateless_call``, and the counter's new value is written back after
    each call, as a JAX training loop does.
    """
    if BACKEND != "jax":
        return xla(lambda *args: layer(*args))
    step = xla(lambda state, *args: layer.stateless_call([], state, *args))

    def call(*args):
        out, state = step([v.value for v in layer.non_trainable_variables], *args)
        for v, value in zip(layer.non_trainable_variables, state):
            v.assign(value)
        return out

    return call


def fast(layer):
    """``layer``, compiled with XLA on JAX. Eager JAX compiles every op
    for every new input shape, about twice the CPU time of compiling the
    call once; the plan checks that use this are about the plan, which is
    the same either way (test_layers_compile_with_xla). Eager JAX calls
    are checked by the other tests."""
    return compiled(layer) if BACKEND == "jax" else layer


ALL_LAYERS = {
    "mixup": lambda **kw: MixUp(alpha=0.5, **kw),
    "cutmix": lambda **kw: CutMix(alpha=1.0, **kw),
    "random": lambda **kw: RandomMix(
        [MixUp(0.5, num_classes=kw.get("num_classes")),
         CutMix(1.0, num_classes=kw.get("num_classes"))],
        rate=0.9, per_sample=True,
        **{k: v for k, v in kw.items() if k != "num_classes"},
    ),
}


def recover_plan(x_mixed, batch):
    """From id images (pixel = example index), recovers per example the
    partner and the fraction of its own pixels, for blends and cuts alike.

    A pixel of example i is λ·i + (1-λ)·j: with MixUp all pixels equal one
    value v; with CutMix they are i or j. Returns (partner, own_fraction).
    """
    x = np.asarray(x_mixed, np.float64).reshape(batch, -1)
    partner = np.empty(batch, int)
    own = np.empty(batch)
    for i in range(batch):
        vals = np.unique(np.round(x[i], 4))
        others = [v for v in vals if abs(v - i) > 1e-4]
        if len(vals) == 1 and not others:
            partner[i], own[i] = i, 1.0  # unchanged (self-pair or λ = 1)
        elif len(vals) <= 2 and all(abs(v - round(v)) < 1e-4 for v in vals):
            # pure copies: a cut (or a full replacement)
            partner[i] = int(round(others[0]))
            own[i] = np.mean(np.abs(x[i] - i) < 1e-4)
        else:
            raise AssertionError(f"example {i} is neither a blend nor a cut: {vals[:5]}")
    return partner, own


def blend_plan(x_mixed, batch):
    """For MixUp on id rows (x[i] = e_i), returns (partner, λ) per example."""
    x = np.asarray(x_mixed, np.float64)
    partner = np.empty(batch, int)
    lam = np.empty(batch)
    for i in range(batch):
        row = x[i].copy()
        lam[i] = row[i]
        row[i] = 0
        partner[i] = int(np.argmax(row)) if row.max() > 1e-7 else i
        if partner[i] == i:
            lam[i] = 1.0
    return partner, lam


# ------------------------------------------------------------- plan checks


def test_mixup_inputs_labels_weights_share_one_plan():
    b = 16
    x = np.eye(b, dtype="float32")  # row i identifies example i
    y = np.arange(b)                 # class i: one-hot labels also identify it
    w = np.arange(1, b + 1, dtype="float32")
    layer = MixUp(alpha=1.0, num_classes=b, seed=3)
    xm, ym, wm = [to_np(t) for t in fast(layer)(x, y, w)]
    partner, lam = blend_plan(xm, b)
    assert sorted(partner.tolist()) == list(range(b)), "pairing is a permutation"
    np.testing.assert_allclose(ym, xm, atol=1e-6)  # labels mixed identically
    np.testing.assert_allclose(wm, lam * w + (1 - lam) * w[partner], rtol=1e-5)
    assert len(np.unique(np.round(lam, 5))) > b // 2, "one λ per example"


def test_mixup_per_batch_shares_lambda():
    b = 12
    xm, _ = fast(MixUp(alpha=1.0, per_sample=False, num_classes=b, seed=1))(np.eye(b), np.arange(b))
    partner, lam = blend_plan(to_np(xm), b)
    mixed = partner != np.arange(b)
    assert mixed.any()
    assert np.ptp(lam[mixed]) < 1e-6


def test_mixup_nested_inputs_and_regression_targets():
    b = 10
    inputs = {"a": np.eye(b, dtype="float32"), "seq": np.eye(b, dtype="float32")[:, None, :].repeat(3, 1)}
    y = np.arange(b, dtype="float32") * 2.0  # regression target
    out, ym = fast(MixUp(alpha=1.0, seed=4))(inputs, y)
    partner, lam = blend_plan(to_np(out["a"]), b)
    for t in range(3):
        np.testing.assert_allclose(out["seq"][:, t, :], out["a"], atol=1e-6)
    np.testing.assert_allclose(ym, lam * y + (1 - lam) * y[partner], rtol=1e-5, atol=1e-5)


def test_cutmix_label_weight_is_exact_pixel_fraction(id_images):
    b = 64
    x = id_images(b, 13, 17)
    layer = CutMix(alpha=1.0, num_classes=b, seed=5)
    xm, ym = fast(layer)(x, np.arange(b))
    xm, ym = to_np(xm), to_np(ym)
    partner, own = recover_plan(xm, b)
    mixed = partner != np.arange(b)
    # A permutation: the examples seen to be cut have distinct partners (an
    # empty cut, floor(H·√(1-λ)) = 0, looks like an unchanged example).
    assert mixed.sum() > b // 2 and len(set(partner[mixed])) == mixed.sum()
    assert (ym[~mixed, ~mixed] == 1.0).all()
    # The label weight is the count of own pixels / all pixels: equal up to
    # float32 rounding (XLA turns the division by a constant pixel count
    # into a multiplication by its reciprocal, which can differ by 1 ulp).
    rows = np.where(mixed)[0]
    np.testing.assert_array_max_ulp(ym[rows, rows], own[rows].astype("float32"), maxulp=1)
    np.testing.assert_allclose(ym[rows, partner[rows]], 1 - own[rows], atol=1e-6)
    # Clipped boxes make the realized fraction differ from any
    # floor(H·√(1-λ))·floor(W·√(1-λ)) box area: the weight is not λ.
    cut_pixels = np.round((1 - own[rows]) * 13 * 17).astype(int)
    unclipped = {a * c for a in range(14) for c in range(18)
                 if abs(a / 13 - c / 17) < 0.1}
    assert any(p not in unclipped for p in cut_pixels)
    # Channels of a pixel move together.
    assert (xm == xm[..., :1]).all()


@pytest.mark.parametrize("per_sample", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_cutmix_blends_images_as_its_plan_mask_says(per_sample, dtype):
    # RGB images are blended on their (B, H, W·C) view with a mask built in
    # that layout: the result is still exactly the plan's (B, H, W, 1) mask
    # applied to every channel, in a compiled call too.
    rng = np.random.default_rng(3)
    x = (rng.random((6, 9, 11, 3)) * 255).astype(dtype)
    layer = CutMix(alpha=1.0, per_sample=per_sample, dtype=dtype, seed=2)
    seed = ops.as_seed(7)
    plan = {k: to_np(v) for k, v in xla(lambda s: layer.sample_plan(x, s))(seed).items()}
    out = to_np(xla(lambda s: layer.apply_plan(layer.sample_plan(x, s), {"images": x})["images"])(seed))
    mask = plan["mask"]
    assert mask.shape[1:] == (9, 11, 1) and (mask < 1).any()
    np.testing.assert_array_equal(out, np.where(mask > 0.5, x, x[plan["index"]]))


def test_cutmix_sequences_cut_one_segment(id_images):
    b, t = 20, 30
    x = id_images(b, t, 4)[:, :, 0, :]  # (B, T, D)
    xm, ym = [to_np(t) for t in fast(CutMix(num_classes=b, seed=2))(x, np.arange(b))]
    partner, own = recover_plan(xm, b)
    assert (partner != np.arange(b)).any()
    for i in range(b):
        steps = np.abs(xm[i, :, 0] - i) > 1e-4
        if steps.any():
            idx = np.where(steps)[0]
            assert idx.max() - idx.min() + 1 == idx.size  # contiguous
        assert ym[i, i] == pytest.approx(own[i] if partner[i] != i else 1.0, abs=1e-6)


def test_cutmix_channels_first(id_images):
    b = 8
    x = np.transpose(id_images(b, 9, 11, 2), (0, 3, 1, 2))
    layer = CutMix(data_format="channels_first", num_classes=b, seed=3)
    xm, ym = [to_np(t) for t in fast(layer)(x, np.arange(b))]
    assert xm.shape == (b, 2, 9, 11)
    assert (xm == xm[:, :1]).all()  # cut along H, W only
    partner, own = recover_plan(xm, b)
    assert (partner != np.arange(b)).any()
    np.testing.assert_allclose(ym[np.arange(b), np.arange(b)][partner != np.arange(b)],
                               own[partner != np.arange(b)], atol=1e-6)


def test_cutmix_per_batch_shares_one_box(id_images):
    b = 8
    xm, _ = fast(CutMix(per_sample=False, seed=7))(id_images(b, 16, 16), np.eye(b, dtype="float32"))
    xm = to_np(xm)
    boxes = np.stack([np.abs(xm[i, ..., 0] - i) > 1e-4 for i in range(b)])
    mixed = boxes.any(axis=(1, 2))
    assert mixed.sum() >= b // 2
    assert all((boxes[i] == boxes[np.argmax(mixed)]).all() for i in np.where(mixed)[0])


def test_segmentation_masks_follow_the_plan(id_images):
    b = 12
    x = id_images(b, 10, 10)
    seg_int = id_images(b, 10, 10, 1, "int32")[..., 0]  # (B, H, W), no channel
    out = fast(CutMix(num_classes=b, seed=8))({"images": x, "labels": np.arange(b),
                                         "segmentation_masks": seg_int})
    assert dtype(out["segmentation_masks"]) == "int32"
    assert out["segmentation_masks"].shape == (b, 10, 10)
    np.testing.assert_array_equal(out["segmentation_masks"], to_np(out["images"])[..., 0].astype("int32"))
    assert (to_np(out["images"]) != x).any()
    # MixUp interpolates one-hot float masks, keeping shape and dtype.
    seg = np.eye(b, dtype="float32")[:, None, None, :].repeat(4, 1).repeat(4, 2)
    out = fast(MixUp(alpha=1.0, num_classes=b, seed=9))({"images": np.eye(b, dtype="float32"),
                                                    "labels": np.arange(b),
                                                    "segmentation_masks": seg})
    np.testing.assert_allclose(out["segmentation_masks"][:, 2, 3, :], out["images"], atol=1e-6)
    assert dtype(out["segmentation_masks"]) == "float32"


def test_dict_form_keeps_keys_and_sample_weight():
    b = 6
    out = MixUp(num_classes=3, seed=0)({"images": np.random.rand(b, 5).astype("float32"),
                                         "labels": np.arange(b) % 3,
                                         "sample_weight": np.ones(b)})
    assert list(out) == ["images", "labels", "sample_weight"]
    np.testing.assert_allclose(out["sample_weight"], np.ones(b), rtol=1e-6)


# --------------------------------------------------- randomness and seeds


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_same_seed_same_stream_and_calls_differ(name, id_images):
    x, y = id_images(8), np.arange(8) % 4
    a, b = ALL_LAYERS[name](num_classes=4, seed=11), ALL_LAYERS[name](num_classes=4, seed=11)
    first = [to_np(a(x, y)[0]) for _ in range(3)]
    second = [to_np(b(x, y)[0]) for _ in range(3)]
    for u, v in zip(first, second):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(first[0], first[1])
    other = to_np(ALL_LAYERS[name](num_classes=4, seed=12)(x, y)[0])
    assert not np.array_equal(first[0], other)


def test_jit_and_no_jit_give_the_same_plan(id_images):
    # `jit_compile` compiles the layer's TensorFlow computation: its direct
    # calls on TensorFlow, and its tf.data maps under any backend (on JAX
    # a direct call is compiled by jax.jit or not at all).
    x, y = id_images(16), np.arange(16) % 4
    if BACKEND == "tensorflow":
        call = lambda layer: layer(x, y)  # noqa: E731
    else:
        tf = pytest.importorskip("tensorflow")
        call = lambda layer: next(  # noqa: E731
            tf.data.Dataset.from_tensors((x, y)).map(layer).as_numpy_iterator())
    for cls in (MixUp, CutMix):
        a = call(cls(num_classes=4, seed=3))
        b = call(cls(num_classes=4, seed=3, jit_compile=False))
        np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(BACKEND != "jax", reason="jax.jit around a stateful call")
def test_bare_jax_jit_refuses_and_leaves_the_layer_usable():
    # Inside jax.jit the call counter cannot advance: every call of the
    # compiled function would reuse one plan, and the counter would keep a
    # leaked tracer. The layer says to compile its stateless_call instead.
    import jax

    x, y = np.eye(4, dtype="float32"), np.arange(4) % 2
    layer = MixUp(num_classes=2, seed=0)
    with pytest.raises(RuntimeError, match="stateless_call"):
        jax.jit(lambda a, b: layer(a, b))(x, y)
    xm, ym = layer(x, y)
    assert xm.shape == (4, 4) and ym.shape == (4, 2)


def test_parallel_tf_data_calls_draw_distinct_plans(id_images):
    tf = pytest.importorskip("tensorflow")
    x, y = id_images(8, 4, 4, 1), np.arange(8)
    layer = MixUp(alpha=1.0, num_classes=8, seed=0)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat(64).map(layer, num_parallel_calls=8)
    outs = [xm.tobytes() for xm, _ in ds.as_numpy_iterator()]
    assert len(set(outs)) == 64


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_tf_data_any_batch_size(name, id_images):
    tf = pytest.importorskip("tensorflow")
    x, y = id_images(11, 6, 6), np.arange(11) % 3
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).map(ALL_LAYERS[name](num_classes=3, seed=1))
    shapes = [(tuple(a.shape), tuple(b.shape)) for a, b in ds]
    assert shapes == [((4, 6, 6, 3), (4, 3))] * 2 + [((3, 6, 6, 3), (3, 3))]
    ds = tf.data.Dataset.from_tensor_slices({"images": x, "labels": y}).batch(5).map(
        ALL_LAYERS[name](num_classes=3, seed=1))
    assert [d["labels"].shape[0] for d in ds] == [5, 5, 1]


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_batch_of_one_is_unchanged(name, id_images):
    x = id_images(1, 5, 5) + 3.0
    xm, ym = ALL_LAYERS[name](num_classes=4, seed=1)(x, np.array([2]))
    np.testing.assert_array_equal(xm, x)
    np.testing.assert_array_equal(ym, [[0, 0, 1, 0]])


# ------------------------------------------------------ modes and dtypes


@pytest.mark.parametrize("policy", [None, "mixed_float16"])
@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_training_false_mixes_nothing_with_the_training_dtypes(name, policy, id_images):
    # Output dtypes and shapes do not depend on `training` (Keras' layer
    # contract: compute_output_spec holds in both modes); nothing is mixed
    # and label smoothing, a training target, is not applied.
    x = id_images(6).astype("uint8")
    y = np.arange(6) % 3
    kw = {"dtype": policy} if policy else {}
    layer = ALL_LAYERS[name](num_classes=3, seed=0, **kw)
    if name != "random":
        layer.label_smoothing = 0.1
    spec_x, spec_y = layer.compute_output_spec(
        keras.KerasTensor(x.shape, "uint8"), keras.KerasTensor(y.shape, "int64"))
    for training in (True, False):
        xo, yo = layer(x, y, training=training)
        assert (dtype(xo), tuple(xo.shape)) == (spec_x.dtype, tuple(spec_x.shape))
        assert (dtype(yo), tuple(yo.shape)) == (spec_y.dtype, tuple(spec_y.shape))
    np.testing.assert_array_equal(to_np(xo), x.astype(spec_x.dtype))
    np.testing.assert_array_equal(to_np(yo), np.eye(3)[y])
    d = layer({"image": x, "label": y, "id": np.arange(6)}, training=False)
    assert list(d) == ["image", "label", "id"]
    np.testing.assert_array_equal(to_np(d["image"]), x.astype(spec_x.dtype))
    # Inside a model (no labels): the compute dtype, unmixed.
    assert dtype(layer(x, training=False)) == spec_x.dtype


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_layers_compile_with_xla(name, id_images):
    layer = ALL_LAYERS[name](num_classes=4, seed=2, jit_compile=False)
    f = compiled(layer)
    x, y, w = id_images(8), np.arange(8) % 4, np.ones(8, "float32")
    outs = [[to_np(t) for t in f(x, y, w)] for _ in range(2)]
    xm, ym, wm = outs[0]
    assert xm.shape == (8, 8, 8, 3) and ym.shape == (8, 4) and wm.shape == (8,)
    np.testing.assert_allclose(ym.sum(1), 1.0, rtol=1e-6)
    # Every compiled call draws a fresh plan, the one an eager call with
    # the same seed and call count draws.
    assert not np.array_equal(outs[0][0], outs[1][0])
    eager = ALL_LAYERS[name](num_classes=4, seed=2)
    for out in outs:
        for got, want in zip(out, eager(x, y, w)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_tf_function_with_unknown_batch(name, id_images):
    # A tf.function graph with an unknown batch size (JAX traces static
    # shapes; tf.data's unknown batch runs in test_tf_data_any_batch_size).
    tf = pytest.importorskip("tensorflow")
    layer = ALL_LAYERS[name](num_classes=4, seed=2)
    f = tf.function(lambda x, y: layer(x, y), input_signature=[
        tf.TensorSpec([None, 8, 8, 3]), tf.TensorSpec([None], tf.int32)])
    for b in (1, 5, 8):
        xm, ym = f(id_images(b), np.arange(b, dtype="int32") % 4)
        assert xm.shape == (b, 8, 8, 3) and ym.shape == (b, 4)


def test_uint8_images():
    x = np.random.RandomState(0).randint(0, 256, (8, 12, 12, 3)).astype("uint8")
    y = np.arange(8) % 2
    xm, _ = MixUp(num_classes=2, seed=1)(x, y)
    assert dtype(xm) == "float32"
    xc, _ = CutMix(num_classes=2, dtype="uint8", seed=1)(x, y)
    assert dtype(xc) == "uint8"
    # Every output pixel is an exact pixel of the same position in the batch.
    xc = to_np(xc)
    assert (xc != x).any()
    assert all(any((xc[i, h, w] == x[j, h, w]).all() for j in range(8))
               for i in range(8) for h in range(0, 12, 3) for w in range(0, 12, 3))
    xf, _ = CutMix(num_classes=2, seed=1)(x, y)
    np.testing.assert_array_equal(to_np(xf), xc.astype("float32"))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_mixed_precision_labels_stay_float32(policy, name, id_images):
    layer = ALL_LAYERS[name](num_classes=3, seed=0, dtype=policy)
    xm, ym, wm = layer(id_images(6), np.arange(6) % 3, np.ones(6))
    assert dtype(xm) == policy.split("_")[1]
    assert dtype(ym) == "float32" and dtype(wm) == "float32"
    np.testing.assert_allclose(to_np(ym).sum(1), 1.0, rtol=1e-6)


def test_label_smoothing_is_applied_before_mixing():
    b = 8
    _, ym = MixUp(num_classes=4, label_smoothing=0.2, seed=0)(np.eye(b, dtype="float32"), np.arange(b) % 4)
    ym = to_np(ym)
    assert ym.min() >= 0.05 - 1e-6  # ε / C
    np.testing.assert_allclose(ym.sum(1), 1.0, rtol=1e-6)


# ------------------------------------------------------------ RandomMix


def test_random_mix_rate_and_weights_frequencies():
    n = 20_000
    x = np.eye(4, dtype="float32")[np.arange(n) % 4][:, None, None, :].repeat(2, 1).repeat(2, 2)
    layer = RandomMix([MixUp(1.0), CutMix(1.0)], weights=[1, 3], rate=0.3, per_sample=True, seed=5)
    sample = layer.sample_plan if BACKEND != "jax" else xla(layer.sample_plan)  # (see `fast`)
    plan = sample(keras.ops.convert_to_tensor(x), ops.as_seed(np.array([1, 2])))
    lam = to_np(plan["lam"])
    mask = to_np(plan["mask"]).reshape(n, -1)
    mixed = to_np(plan["index"]) != np.arange(n)
    # Not mixed: exactly unchanged, except an example that was mixed but
    # drew itself as partner (about one per 20,000-example permutation):
    # its λ < 1 then mixes it with itself, which changes nothing.
    changed = (lam[~mixed] != 1.0) | (mask[~mixed] != 1.0).any(1)
    assert changed.sum() <= 3
    # Mixed fraction ~ rate (minus self-pairs).
    frac = mixed.mean()
    assert abs(frac - 0.3) < 5 * np.sqrt(0.3 * 0.7 / n) + 1.0 / n * 5
    # CutMix (weight 3/4) gives 0/1 masks; MixUp a constant λ in (0, 1).
    is_box = np.all((mask == 0) | (mask == 1), axis=1) & mixed
    blended = mixed & ~is_box
    share = is_box.sum() / mixed.sum()
    # A MixUp λ of exactly 0 or 1 would look like a box: probability ~0.
    assert abs(share - 0.75) < 5 * np.sqrt(0.75 * 0.25 / mixed.sum())
    np.testing.assert_allclose(mask[blended].mean(1), lam[blended], rtol=1e-5)


def test_random_mix_per_batch_rate():
    layer = RandomMix([MixUp(1.0, num_classes=4)], rate=0.25, seed=1)
    n = 2000
    # One compiled call maps the plan over n seeds [7, i].
    f = xla(lambda s: keras.ops.map(lambda si: layer.sample_plan(np.zeros([4, 3], "float32"), si)["lam"], s))
    mixed = (to_np(f(seeds(np.stack([np.full(n, 7), np.arange(n)], 1)))) != 1.0).any(axis=1)
    assert abs(mixed.mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / n)


def test_random_mix_rate_zero_is_identity_on_values(id_images):
    x = id_images(8)
    xm, ym = RandomMix([MixUp(1.0, num_classes=8), CutMix(num_classes=8)], rate=0.0, seed=0)(x, np.arange(8))
    np.testing.assert_array_equal(xm, x)
    np.testing.assert_array_equal(ym, np.eye(8))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_bad_arguments_fail_at_construction(cls):
    for kw, word in [({"alpha": 0}, "alpha"), ({"alpha": -1.0}, "alpha"),
                     ({"alpha": float("nan")}, "alpha"), ({"alpha": float("inf")}, "alpha"),
                     ({"beta": 0.0}, "beta"), ({"label_smoothing": 1.0}, "label_smoothing"),
                     ({"label_smoothing": -0.5}, "label_smoothing"), ({"num_classes": 0}, "num_classes"),
                     ({"per_sample": "yes"}, "per_sample"), ({"seed": 1.5}, "seed")]:
        with pytest.raises((ValueError, TypeError), match=word):
            cls(**kw)
    with pytest.raises(ValueError, match="dtype"):
        cls(dtype="int32")


def test_mixup_refuses_uint8_dtype_and_cutmix_data_format():
    with pytest.raises(ValueError, match="float"):
        MixUp(dtype="uint8")
    with pytest.raises(ValueError, match="data_format"):
        CutMix(data_format="NHWC")


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_call_errors_say_what_to_pass(name, id_images):
    layer = ALL_LAYERS[name](num_classes=3, seed=0)
    x = id_images(4)
    with pytest.raises(ValueError, match="labels"):
        layer(x)
    with pytest.raises(ValueError, match="batch size"):
        layer(x, np.arange(5) % 3)
    with pytest.raises(ValueError, match="num_classes"):
        ALL_LAYERS[name](seed=0)(x, np.arange(4))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        layer(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="labels"):
        layer({"images": x})
    with pytest.raises(ValueError, match="bounding_boxes"):
        layer({"images": x, "labels": np.arange(4) % 3, "bounding_boxes": x})
    with pytest.raises(ValueError, match="ds.batch"):
        layer(np.ones(4, "float32"), np.arange(4) % 3)
    with pytest.raises(ValueError, match="sample_weight"):
        layer(x, np.arange(4) % 3, np.ones((4, 2)))


@pytest.mark.tensorflow_only
def test_batch_mismatch_in_graph_is_reported():
    # A graph with unknown batch sizes checks them at run time (tf.data
    # too, under any backend: test_batch_mismatch_in_tf_data_is_reported).
    tf = pytest.importorskip("tensorflow")
    layer = MixUp(num_classes=3, seed=0)
    f = tf.function(lambda x, y: layer(x, y), input_signature=[
        tf.TensorSpec([None, 2]), tf.TensorSpec([None], tf.int32)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="batch sizes"):
        f(np.ones((4, 2), "float32"), np.zeros(3, "int32"))


def test_batch_mismatch_in_tf_data_is_reported():
    # A tf.data map under any backend traces unknown batch sizes: the
    # check runs in the graph.
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_generator(
        lambda: iter([(np.ones((4, 2), "float32"), np.zeros(3, "int32"))]),
        output_signature=(tf.TensorSpec([None, 2]), tf.TensorSpec([None], tf.int32)),
    ).map(MixUp(num_classes=3, seed=0))
    with pytest.raises(tf.errors.InvalidArgumentError, match="batch sizes"):
        list(ds)


def test_mixup_refuses_integer_inputs_and_names_embeddings():
    with pytest.raises(TypeError, match="[Ee]mbedding"):
        MixUp(num_classes=2)(np.ones((4, 7), "int32"), np.arange(4) % 2)


def test_cutmix_refuses_tabular_and_names_mixup():
    with pytest.raises(ValueError, match="MixUp"):
        CutMix(num_classes=2)(np.ones((4, 7), "float32"), np.arange(4) % 2)
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        CutMix(num_classes=2)(np.ones((4, 2, 2, 2, 2), "float32"), np.arange(4) % 2)


def test_random_mix_argument_errors():
    with pytest.raises(TypeError, match="mixers"):
        RandomMix([])
    with pytest.raises(ValueError, match="weights"):
        RandomMix([MixUp()], weights=[1, 2])
    with pytest.raises(ValueError, match="rate"):
        RandomMix([MixUp()], rate=1.5)
    with pytest.raises(ValueError, match="num_classes"):
        RandomMix([MixUp(num_classes=3), CutMix(num_classes=4)])
    with pytest.raises(ValueError, match="uint8"):
        RandomMix([MixUp(), CutMix()], dtype="uint8")


def test_plain_keras_fit_raises_but_predict_is_identity():
    model = keras.Sequential([keras.Input((4,)), MixUp(alpha=0.2), keras.layers.Dense(2)])
    x = np.random.rand(8, 4).astype("float32")
    ref = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    ref.layers[-1].set_weights(model.layers[-1].get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), ref.predict(x, verbose=0), rtol=1e-6)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="labels"):
        model.fit(x, np.zeros((8, 2)), epochs=1, verbose=0)


# --------------------------------------------------------- serialization


@pytest.mark.parametrize("layer", [
    MixUp(alpha=0.3, beta=0.7, per_sample=False, num_classes=5, label_smoothing=0.1, seed=4),
    CutMix(alpha=0.5, num_classes=5, data_format="channels_first", seed=2, dtype="uint8"),
    RandomMix([MixUp(0.8, num_classes=5), CutMix(num_classes=5)], weights=[2, 1], rate=0.5, seed=9),
], ids=["mixup", "cutmix", "random"])
def test_config_round_trip_gives_same_stream(layer, id_images):
    restored = type(layer).from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is type(layer) and again.get_config() == layer.get_config()
    x = id_images(6, 4, 4, 4).astype("uint8")
    y = np.arange(6) % 5
    if getattr(layer, "data_format", None) == "channels_first":
        x = np.transpose(x, (0, 3, 1, 2))
    fresh = type(layer).from_config(layer.get_config())
    np.testing.assert_array_equal(fresh(x, y)[0], restored(x, y)[0])


def test_model_with_layer_saves_and_loads(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3)(MixUp(alpha=0.2, num_classes=3, seed=1)(inputs))
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.rand(5, 4).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert isinstance(loaded.layers[1], MixUp) and loaded.layers[1].alpha == 0.2


# ------------------------------------------- Keras' conformance helper


class KerasConformanceTest(TestCase):
    def test_mixup(self):
        self.run_layer_test(
            MixUp,
            init_kwargs={"alpha": 0.4, "num_classes": 3, "seed": 1},
            input_data={"inputs": np.random.rand(4, 5, 2).astype("float32"),
                        "labels": np.array([0, 1, 2, 0])},
            expected_output_shape=((4, 5, 2), (4, 3)),
            expected_output_dtype=("float32", "float32"),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_variables=3,  # seed, enabled, [α, β]
            # fit() trains a lone tensor through the layer, which (by design)
            # raises without labels; mixing inside fit is MixupModel's job.
            run_training_check=False,
        )

    def test_cutmix(self):
        self.run_layer_test(
            CutMix,
            init_kwargs={"alpha": 1.0, "num_classes": 3, "seed": 1},
            input_data={"inputs": np.random.rand(4, 8, 8, 3).astype("float32"),
                        "labels": np.array([0, 1, 2, 0]),
                        "sample_weight": np.ones(4, "float32")},
            expected_output_shape=((4, 8, 8, 3), (4, 3), (4,)),
            expected_output_dtype=("float32", "float32", "float32"),
            expected_num_trainable_weights=0,
            run_training_check=False,
        )
