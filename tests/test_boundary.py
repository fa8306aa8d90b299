"""What the layers, ops and MixupModel accept, and the errors for the rest.

Each test here failed before the boundary checks existed: wrong results
returned silently, or an error that named neither the problem nor the fix.
Runs on every backend (tf.data parts need TensorFlow installed).
"""

import keras
import numpy as np
import pytest

import keras_mixup
from keras_mixup import ops
from keras_mixup.layers import CutMix, MixUp, RandomMix
from tests.test_layers import ALL_LAYERS, dtype, to_np

BACKEND = keras.backend.backend()


def images(batch=4, size=8):
    return np.random.default_rng(0).random((batch, size, size, 3)).astype("float32")


# ------------------------------------------------------- dict call forms


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_tensorflow_datasets_keys_are_mixed_and_metadata_passes_through(name):
    tf = pytest.importorskip("tensorflow")
    x = (images(8) * 255).astype("uint8")
    ds = tf.data.Dataset.from_tensor_slices(
        {"image": x, "label": np.arange(8) % 3, "id": [f"ex{i}".encode() for i in range(8)]}
    ).batch(4).map(ALL_LAYERS[name](num_classes=3, seed=0))
    out = next(iter(ds))
    assert list(out) == ["image", "label", "id"]
    assert out["image"].dtype == tf.float32 and out["label"].shape == (4, 3)
    np.testing.assert_allclose(out["label"].numpy().sum(1), 1.0, rtol=1e-6)
    assert [s.decode() for s in out["id"].numpy()] == ["ex0", "ex1", "ex2", "ex3"]


def test_dict_without_labels_names_its_keys_and_the_accepted_ones():
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_tensor_slices({"img": images(4), "y": np.arange(4)}).batch(2)
    with pytest.raises(ValueError, match=r"keys \['img', 'y'\].*'image'.*'label'"):
        ds.map(MixUp(num_classes=4))  # (the map traces the layer at once)


def test_dict_keys_that_cannot_pass_through_unmixed_are_refused():
    layer = MixUp(num_classes=3, seed=0)
    x, y = images(), np.arange(4) % 3
    with pytest.raises(ValueError, match="second label key 'coarse_label'"):
        layer({"image": x, "label": y, "coarse_label": y})
    with pytest.raises(ValueError, match="'objects'"):
        layer({"image": x, "label": y, "objects": x})
    with pytest.raises(ValueError, match="both 'images' and 'image'"):
        layer({"image": x, "images": x, "label": y})


def test_dict_of_labels_is_mixed_with_one_plan():
    # Multi-output labels: every leaf follows the same pairing and λ.
    b = 6
    x = np.eye(b, dtype="float32")
    ids = np.arange(b) % 3
    layer = MixUp(alpha=1.0, num_classes={"cls": 3, "reg": None, "copy": None}, seed=1)
    xm, ym = layer(x, {"cls": ids, "reg": ids.astype("float32"),
                       "copy": np.eye(b, dtype="float32")})
    np.testing.assert_allclose(to_np(ym["copy"]), to_np(xm), atol=1e-6)
    np.testing.assert_allclose(to_np(ym["cls"]), to_np(xm) @ np.eye(3)[ids], atol=1e-6)
    np.testing.assert_allclose(to_np(ym["reg"]), to_np(xm) @ ids, atol=1e-5)
    with pytest.raises(ValueError, match="num_classes.*dict"):
        MixUp(num_classes=3)(x, {"cls": ids, "soft": np.ones((b, 2), "float32")})


# --------------------------------------------------------------- labels


def test_float_class_ids_are_refused_not_blended():
    with pytest.raises(ValueError, match="class ids must be integers.*cast"):
        MixUp(num_classes=3)(images(), np.array([0.0, 1.0, 2.0, 1.0], "float32"))
    with pytest.raises(ValueError, match="cast them to int"):
        MixUp(num_classes=3)(images(), np.array([[0.0], [1.0], [2.0], [1.0]], "float32"))
    # Without num_classes, float (B,) labels are targets and are mixed.
    _, y = MixUp(alpha=1.0, seed=0)(images(), np.array([0.0, 1.0, 2.0, 1.0], "float32"))
    assert dtype(y) == "float32" and y.shape == (4,)


def test_bool_labels_are_binary_targets():
    x = np.eye(4, dtype="float32")
    xm, ym = MixUp(alpha=1.0, seed=3)(x, np.array([True, False, True, False]))
    assert dtype(ym) == "float32"
    np.testing.assert_allclose(to_np(ym), to_np(xm) @ np.array([1.0, 0.0, 1.0, 0.0]), atol=1e-6)


# ------------------------------------------------------ inputs refused


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_bad_inputs_get_errors_that_name_the_fix(name):
    layer = ALL_LAYERS[name](num_classes=3, seed=0)
    x, y = images(), np.arange(4) % 3
    with pytest.raises(TypeError, match=r"Python list of numbers.*np\.asarray"):
        layer(x.tolist(), y)
    with pytest.raises(TypeError, match=r"labels as a Python list.*np\.asarray"):
        layer(x, y.tolist())
    with pytest.raises(ValueError, match="segmentation masks.*do not cover" if name != "mixup"
                       else "batch size"):
        layer({"images": x, "labels": y,
               "segmentation_masks": np.zeros((4 if name != "mixup" else 3, 6, 6, 1), "float32")})


def test_ragged_and_sparse_inputs_are_refused():
    tf = pytest.importorskip("tensorflow")
    y = np.eye(2, dtype="float32")
    ragged = tf.ragged.constant([[1.0, 2.0], [3.0]])
    for layer in (MixUp(), CutMix()):
        ds = tf.data.Dataset.from_tensors((ragged, y))
        with pytest.raises(TypeError, match="RaggedTensor.*to_tensor"):
            ds.map(layer)
    if BACKEND == "tensorflow":
        with pytest.raises(TypeError, match="SparseTensor.*to_dense"):
            MixUp()(tf.sparse.from_dense(np.eye(2, dtype="float32")), y)


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_unbatched_dataset_is_told_to_batch(name):
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_tensor_slices((images(4), np.arange(4) % 3))
    with pytest.raises(ValueError, match=r"without a batch axis.*ds\.batch\(n\)\.map"):
        next(iter(ds.map(ALL_LAYERS[name](num_classes=3))))
    onehot = tf.data.Dataset.from_tensor_slices((images(4), np.eye(4, dtype="float32")))
    with pytest.raises(ValueError, match="unbatched dataset"):
        next(iter(onehot.map(ALL_LAYERS[name]())))


def test_segmentation_mask_size_is_checked_in_a_graph():
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_generator(
        lambda: iter([{"images": images(), "labels": np.eye(4, dtype="float32"),
                       "segmentation_masks": np.zeros((4, 6, 6), "int32")}]),
        output_signature={"images": tf.TensorSpec([None, None, None, 3]),
                          "labels": tf.TensorSpec([None, 4]),
                          "segmentation_masks": tf.TensorSpec([None, None, None], tf.int32)},
    ).map(CutMix(seed=0))
    with pytest.raises(tf.errors.InvalidArgumentError, match="segmentation masks and images"):
        next(iter(ds))


def test_seeds_outside_int64_are_refused_at_construction():
    for cls in (MixUp, CutMix):
        with pytest.raises(ValueError, match="64-bit"):
            cls(seed=2**64)
    with pytest.raises(ValueError, match="64-bit"):
        keras_mixup.MixupModel(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]),
                               mixer=MixUp(), seed=-(2**63) - 1)
    with pytest.raises(ValueError, match="64-bit"):
        ops.as_seed(2**63)
    assert MixUp(seed=np.int64(5)).seed == 5  # NumPy ints are ints


def test_negative_sizes_in_ops_are_refused():
    lam = np.array([0.5], "float32")
    cases = [
        (lambda: ops.box_mask(-4, 4, lam, 0), "height"),
        (lambda: ops.box_mask(4, 0, lam, 0), "width"),
        (lambda: ops.segment_mask(-3, lam, 0), "length"),
        (lambda: ops.random_permutation(-3, 0), "batch_size"),
        (lambda: ops.flip_pairing(-1), "batch_size"),
        (lambda: ops.sample_beta([-2], 1.0, seed=0), r"shape\[0\]"),
        (lambda: ops.log_gamma([3, -1], 1.0, seed=0), r"shape\[1\]"),
    ]
    for fn, what in cases:
        with pytest.raises(ValueError, match=f"{what}.* >= "):
            fn()


def test_list_alpha_is_refused():
    with pytest.raises(TypeError, match="one finite number"):
        MixUp(alpha=[0.2, 0.3])


# ----------------------------------------------------- values and plans


@pytest.mark.parametrize("name", ["cutmix", "random"])
def test_cut_pixels_are_copies_so_a_nan_stays_where_it_was_copied(name):
    b = 8
    x = np.broadcast_to(np.arange(b, dtype="float32").reshape(-1, 1, 1, 1), (b, 8, 8, 1)).copy()
    layer = CutMix(seed=4) if name == "cutmix" else RandomMix([CutMix(1.0)], seed=4)
    plan = layer.sample_plan(x, ops.as_seed(4))
    bad = x.copy()
    bad[2] = np.nan
    mask = np.broadcast_to(to_np(plan["mask"]), x.shape)
    index = to_np(plan["index"])
    out = to_np(layer.mix_inputs(plan, bad))
    from_two = np.where(mask > 0.5, np.arange(b)[:, None, None, None] == 2,
                        (index == 2)[:, None, None, None])
    np.testing.assert_array_equal(np.isnan(out), from_two)
    clean = to_np(layer.mix_inputs(plan, x))
    np.testing.assert_array_equal(out[~from_two], clean[~from_two])


def test_mix_inputs_and_apply_plan_take_numpy():
    b = 4
    x = np.eye(b, dtype="float32")
    plan = {"index": np.array([1, 0, 3, 2]), "lam": np.array([0.5, 1.0, 0.25, 0.0], "float32")}
    layer = MixUp(num_classes=2)
    want = plan["lam"][:, None] * x + (1 - plan["lam"][:, None]) * x[plan["index"]]
    np.testing.assert_allclose(to_np(layer.mix_inputs(plan, x)), want)
    out = layer.apply_plan(plan, {"images": {"a": x, "b": x}, "labels": x})
    np.testing.assert_allclose(to_np(out["images"]["b"]), want)
    np.testing.assert_allclose(to_np(out["labels"]), want)


# ------------------------------------------------------------ MixupModel


def _mlp(classes=3, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    return keras.Model(inputs, keras.layers.Dense(classes)(inputs))


def _first_loss(labels, loss, sample_weight=None, batch=32):
    x = np.random.default_rng(0).random((batch, 6)).astype("float32")
    model = keras_mixup.MixupModel(_mlp(), mixer=MixUp(alpha=1.0), seed=1)
    model.compile(keras.optimizers.SGD(0.0), loss)
    history = model.fit(x, labels, sample_weight=sample_weight, batch_size=batch,
                        epochs=1, shuffle=False, verbose=0)
    return history.history["loss"][0]


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight"])
def test_interpolated_loss_equals_the_mixed_one_hot_loss_for_every_reduction(reduction):
    # Integer ids take the interpolated path (two weighted loss calls);
    # one-hot labels are mixed and take one call: the same plan (seed) must
    # give the same loss whatever the reduction.
    ids = np.arange(32) % 3
    w = np.random.default_rng(1).random(32).astype("float32") + 0.5
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)
    dense = keras.losses.CategoricalCrossentropy(from_logits=True, reduction=reduction)
    for weights in (None, w):
        want = _first_loss(np.eye(3, dtype="float32")[ids], dense, weights)
        got = _first_loss(ids, sparse, weights)
        assert got == pytest.approx(want, rel=1e-5), (reduction, weights is None)


def test_float_class_ids_with_a_sparse_loss_are_ids():
    ids = np.arange(32) % 3
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    want = _first_loss(ids, loss)
    assert _first_loss(ids.astype("float32"), loss) == pytest.approx(want, rel=1e-6)
    assert _first_loss(ids.astype("float32"), "sparse_categorical_crossentropy") != pytest.approx(
        want, rel=1e-3)  # (probabilities, not logits: a different loss, but ids)


def test_mixupe_refuses_a_regression_model():
    x = np.random.default_rng(0).random((16, 6)).astype("float32")
    model = keras_mixup.MixupModel(_mlp(classes=1), mixer=MixUp(alpha=1.0),
                                   regularizer=keras_mixup.MixupE(from_logits=True))
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="MixupE.*'mse'.*regression"):
        model.fit(x, x[:, 0], epochs=1, verbose=0)


def test_more_bad_inputs_of_the_same_kinds():
    x, y = np.ones((4, 3), "float32"), np.eye(4, dtype="float32")
    cases = [
        (lambda: MixUp(jit_compile="no"), TypeError, "jit_compile.*True or False"),
        (lambda: MixUp()(None, y), TypeError, "no inputs"),
        (lambda: MixUp()(x, y, np.array(["a", "b", "c", "d"])), TypeError, "sample_weight of dtype"),
        (lambda: ops.fold_seed(ops.as_seed(0), 1.5), TypeError, "integer"),
        (lambda: ops.blend(x, [0, 1, 2, 3], np.ones((3, 1), "float32")), ValueError, "broadcast"),
        (lambda: ops.interpolate(x, np.ones(4, "float32"), [0, 1, 2, 9]), ValueError, r"\[0, 4\).*9"),
        (lambda: ops.interpolate(x, np.ones(4, "float32"), [0, 1]), ValueError, "one entry per example"),
        (lambda: keras_mixup.metrics.ExpectedCalibrationError().update_state(
            np.array([0, 1]), np.ones((3, 2), "float32") / 2), ValueError, "2 labels for 3 predictions"),
    ]
    for fn, error, match in cases:
        with pytest.raises(error, match=match):
            fn()
