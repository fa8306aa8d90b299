"""Saliency placement: the box lands on a planted salient blob (spectral
residual, in tf.data) and away from what the loss gradient marks (in
MixupModel); saliency label weights; errors. Runs on every backend."""

import keras
import numpy as np
import pytest

import keras_mixup
from keras_mixup.layers import CutMix, FMix, ResizeMix
from keras_mixup.ops import saliency as sal_ops


def to_np(x):
    return keras.ops.convert_to_numpy(x)


B, S = 16, 32


def blob_images(seed):
    """Flat noisy images with one bright 6x6 blob each (centre returned);
    channel 2 holds the example's id, invisible to the saliency (a
    constant only moves the spectrum's DC term)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.02, (B, S, S, 3)).astype("float32")
    centres = rng.integers(8, S - 8, (B, 2))
    for b, (cy, cx) in enumerate(centres):
        x[b, cy - 3:cy + 3, cx - 3:cx + 3, :2] = 1.0
    x[..., 2] = (np.arange(B, dtype="float32")[:, None, None] + 1) / 10
    return x, centres


def cut_of(out, b):
    """The partner and the pasted box (y0, x0, y1, x1) of example ``b``."""
    ids = np.round(out[b, ..., 2] * 10).astype(int) - 1
    rows, cols = np.nonzero(ids != b)
    if not len(rows):
        return None, None
    partner = int(np.bincount(ids[rows, cols]).argmax())
    return partner, (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)


def blob_hits(layer, seeds=3):
    """Fraction of cuts whose box holds the partner's blob centre."""
    hits = total = 0
    for seed in range(seeds):
        x, centres = blob_images(seed)
        out, _ = layer(x, np.arange(B))
        out = to_np(out)
        for b in range(B):
            partner, box = cut_of(out, b)
            if box is None:
                continue
            cy, cx = centres[partner]
            total += 1
            hits += box[0] <= cy < box[2] and box[1] <= cx < box[3]
    return hits / total, total


@pytest.mark.parametrize("radius", [1, 3, 20])
def test_box_filter_is_the_window_mean(radius):
    x = np.random.default_rng(0).random((2, 9, 13)).astype("float32")
    want = np.zeros_like(x)
    for i in range(9):
        for j in range(13):
            want[:, i, j] = x[:, max(0, i - radius):i + radius + 1,
                              max(0, j - radius):j + radius + 1].mean(axis=(1, 2))
    assert np.allclose(to_np(sal_ops.box_filter(x, radius)), want, atol=1e-5)


def test_spectral_residual_peaks_on_the_planted_blob():
    x, centres = blob_images(0)
    py, px = sal_ops.peak(sal_ops.image_saliency(x))
    dist = np.abs(np.stack([to_np(py), to_np(px)], 1) - centres).max(1)
    assert (dist <= 4).all(), dist


def test_saliency_box_covers_the_partners_blob():
    # Beta(4, 4): the box covers about half the image, so a random box
    # holds the blob centre about half the time (binomial sd ~0.06 over
    # ~48 cuts); centred on the saliency peak, always.
    kwargs = dict(alpha=4.0, num_classes=B, seed=1)
    salient, n = blob_hits(CutMix(placement="saliency", **kwargs))
    random, _ = blob_hits(CutMix(**kwargs))
    assert n >= 40
    assert salient >= 0.95
    assert random <= 0.8


def test_saliency_cutmix_in_tf_data_pastes_at_the_same_place():
    tf = pytest.importorskip("tensorflow")
    x, centres = blob_images(3)
    layer = CutMix(placement="saliency", alpha=4.0, num_classes=B, seed=2)
    out, y = next(iter(tf.data.Dataset.from_tensor_slices((x, np.arange(B))).batch(B).map(layer)))
    out, y = out.numpy(), y.numpy()
    for b in range(B):
        partner, box = cut_of(out, b)
        if box is None:
            continue
        y0, x0, y1, x1 = box
        # SaliencyMix: the partner's own pixels, same positions.
        assert np.array_equal(out[b, y0:y1, x0:x1], x[partner, y0:y1, x0:x1])
        area = (y1 - y0) * (x1 - x0) / S**2
        assert y[b, partner] == pytest.approx(area, abs=1e-6)


def test_one_box_a_batch_on_the_first_partners_peak():
    # per_sample=False: SaliencyMix's own rule, one box for the batch on the
    # peak of the first example's partner (one saliency map computed).
    for seed in range(2):
        x, centres = blob_images(seed)
        layer = CutMix(placement="saliency", per_sample=False, alpha=4.0, num_classes=B, seed=seed)
        out, y = layer(x, np.arange(B))
        out, y = to_np(out), to_np(y)
        cuts = [cut_of(out, b) for b in range(B)]
        boxes = {box for _, box in cuts if box is not None}
        assert len(boxes) == 1
        (y0, x0, y1, x1), = boxes
        cy, cx = centres[cuts[0][0]]
        assert y0 <= cy < y1 and x0 <= cx < x1
        assert np.allclose(y[np.arange(B), np.arange(B)], 1 - (y1 - y0) * (x1 - x0) / S**2, atol=1e-6)


def test_one_box_a_batch_with_gradient_saliency_avoids_the_summed_own_saliency():
    from keras_mixup import ops

    x = np.zeros((B, S, S, 3), "float32")
    given = np.full((B, S, S), 1e-4, "float32")
    given[:, :8, :] += 1.0  # every example's own saliency: the top rows
    given[:, 20:24, 4:8] += 5.0  # every partner's peak there
    given /= given.sum(axis=(1, 2), keepdims=True)
    layer = CutMix(placement="saliency", per_sample=False, alpha=4.0, seed=0)
    plan = layer.sample_plan(x, ops.as_seed(1), {"saliency": given})
    given_rows = to_np(plan["mask"])[..., 0].min(axis=2) < 0.5  # (B, S): rows cut
    tops = given_rows.argmax(axis=1)
    h = given_rows.sum(axis=1)
    assert len(set(tops)) == 1 and len(set(h)) == 1 and 0 < h[0] < S
    assert tops[0] == S - h[0]  # as low as it goes: off the own saliency
    # The pasted region is the partner's, around its peak (rows 20-23).
    src = tops[0] + to_np(plan["offset"])[0, 0]
    assert src <= 20 < src + h[0]


def test_saliency_label_weight_is_the_saliency_share():
    x, _ = blob_images(4)
    layer = CutMix(placement="saliency", label_weight="saliency", alpha=4.0, num_classes=B, seed=3)
    out, y = layer(x, np.arange(B))
    out, y = to_np(out), to_np(y)
    sal = to_np(sal_ops.image_saliency(x))  # 32x32: one pixel per block
    checked = 0
    for b in range(B):
        partner, box = cut_of(out, b)
        if box is None:
            continue
        y0, x0, y1, x1 = box
        kept = 1 - sal[b, y0:y1, x0:x1].sum()
        given = sal[partner, y0:y1, x0:x1].sum()
        assert y[b, b] == pytest.approx(kept / (kept + given), abs=1e-4)
        assert y[b, b] + y[b, partner] == pytest.approx(1.0, abs=1e-6)
        checked += 1
    assert checked >= 10


def test_resize_mix_saliency_avoids_the_own_blob():
    x, centres = blob_images(5)
    layer = ResizeMix(scale=(0.3, 0.4), placement="saliency", num_classes=B, seed=0)
    out = to_np(layer(x, np.arange(B))[0])
    for b in range(B):
        _, box = cut_of(out, b)
        cy, cx = centres[b]
        # The pasted image (at most 13x13) fits beside the 6x6 blob.
        assert not (box[0] <= cy < box[2] and box[1] <= cx < box[3])


class _Recorder(keras.layers.Layer):
    """Keeps the (mixed) inputs it sees (eager steps only)."""

    seen = []

    def call(self, x):
        try:
            _Recorder.seen.append(keras.ops.convert_to_numpy(x))
        except Exception:  # symbolic (building the model)
            pass
        return x

    def compute_output_shape(self, shape):
        return shape


@pytest.mark.tensorflow_only  # records eager steps (JAX's step is traced)
def test_gradient_saliency_in_mixup_model():
    """The loss depends only on pixels in rows/cols 2..5, so its gradient
    marks that region: the partner's region there is pasted where the
    example's own saliency is least (away from it)."""
    side, classes = 16, 4
    region = np.zeros((side, side, 1), bool)
    region[2:6, 2:6] = True
    rng = np.random.default_rng(0)
    kernel = np.zeros((side * side, classes), "float32")
    # Small: the logits of these large pixel values must not saturate
    # (a saturated softmax has a zero gradient).
    kernel[region.ravel()] = 1e-6 * rng.normal(size=(int(region.sum()), classes))
    inputs = keras.Input((side, side, 1))
    h = keras.layers.Flatten()(_Recorder()(inputs))
    outputs = keras.layers.Dense(classes, kernel_initializer=keras.initializers.Constant(kernel))(h)
    mixer = CutMix(placement="saliency", alpha=2.0, beta=1.0, num_classes=classes)
    model = keras_mixup.MixupModel(keras.Model(inputs, outputs), mixer=mixer, seed=0)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
    # Pixel value = 1000·example + position: every pasted pixel says where
    # it came from.
    n = 8
    pos = np.arange(side * side, dtype="float32").reshape(side, side, 1)
    x = np.arange(n, dtype="float32")[:, None, None, None] * 1000 + pos
    _Recorder.seen.clear()
    model.fit(x, np.arange(n) % classes, batch_size=n, epochs=3, verbose=0, shuffle=False)
    # Each step: the clean pass for the saliency, then the mixed one.
    seen = [m for m in _Recorder.seen if m.shape[0] == n]
    assert len(seen) == 6
    checked = 0
    for clean, out in zip(seen[::2], seen[1::2]):
        for b in range(n):
            own = int(clean[b, 0, 0, 0]) // 1000  # (in whatever order fit feeds rows)
            src = np.round(out[b, ..., 0]).astype(int)
            pasted = src // 1000 != own
            if not pasted.any():
                continue
            rows, cols = np.nonzero(pasted)
            h, w = rows.max() + 1 - rows.min(), cols.max() + 1 - cols.min()
            assert pasted.sum() == h * w  # one box
            origin = src[rows.min(), cols.min()] % 1000
            sy, sx = divmod(origin, side)
            # The source box holds part of the partner's salient centre
            # (rows and columns 3..4)...
            assert sy < 5 and sy + h > 3 and sx < 5 and sx + w > 3
            # ...and the target avoids the own region whenever it can.
            if h <= side - 6 or w <= side - 6:
                assert not pasted[region[..., 0]].any()
                checked += 1
    assert checked >= 5


@pytest.mark.parametrize(
    "layer", ["cutmix", pytest.param("resizemix", marks=pytest.mark.tensorflow_only)]
)
def test_saliency_mixup_model_trains_and_saves(layer, tmp_path):
    x, _ = blob_images(0)
    y = np.arange(B) % 4
    inputs = keras.Input((S, S, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    net = keras.Model(inputs, keras.layers.Dense(4)(h))
    cls = CutMix if layer == "cutmix" else ResizeMix
    mixer = cls(placement="saliency", label_weight="saliency", num_classes=4)
    model = keras_mixup.MixupModel(net, mixer=mixer, seed=1)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = model.fit(x, y, batch_size=8, epochs=2, verbose=0).history["loss"]
    assert np.isfinite(loss).all()
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert (again.mixer.placement, again.mixer.label_weight) == ("saliency", "saliency")
    assert np.allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_saliency_errors():
    with pytest.raises(ValueError, match="placement"):
        CutMix(placement="center")
    with pytest.raises(ValueError, match="label_weight"):
        CutMix(label_weight="saliency")
    with pytest.raises(ValueError, match=r"images \(B, H, W, C\)"):
        CutMix(placement="saliency", num_classes=2)(np.zeros((2, 10, 3), "float32"), np.arange(2))
    with pytest.raises(ValueError, match="CutMix and ResizeMix"):
        FMix(placement="saliency")
    again = CutMix.from_config(CutMix(placement="saliency", label_weight="saliency").get_config())
    assert (again.placement, again.label_weight) == ("saliency", "saliency")


def test_spectral_residual_on_blocks_of_a_large_image():
    """At 128x130 the map is computed on 2x2 blocks (64x65): it sums to 1
    and peaks on the planted 24x24 blob (its edge or inside)."""
    rng = np.random.default_rng(1)
    x = rng.normal(0.3, 0.02, (4, 128, 130, 3)).astype("float32")
    centres = rng.integers(30, 98, (4, 2))
    for b, (cy, cx) in enumerate(centres):
        x[b, cy - 12:cy + 12, cx - 12:cx + 12] = 1.0
    sal = sal_ops.image_saliency(x)
    assert tuple(sal.shape) == (4, 64, 65)
    assert np.allclose(to_np(sal).sum(axis=(1, 2)), 1.0, atol=1e-4)
    # The same as the spectral residual of the block means.
    means = x.reshape(4, 64, 2, 65, 2, 3).mean(axis=(2, 4, 5))
    assert np.allclose(to_np(sal_ops.spectral_residual(means)), to_np(sal), atol=1e-6)
    py, px = sal_ops.peak(sal)
    dist = np.abs(np.stack([to_np(py), to_np(px)], 1) * 2 + 1 - centres).max(1)
    assert (dist <= 14).all(), dist


@pytest.mark.tensorflow_only  # (slow eagerly on JAX; the block path is backend-neutral)
def test_large_images_place_boxes_on_blocks():
    """At 128x128 (2x2 blocks) the saliency box still holds the partner's
    blob and the label weight is the exact area."""
    rng = np.random.default_rng(2)
    n, side = 8, 128
    x = rng.normal(0.3, 0.02, (n, side, side, 3)).astype("float32")
    centres = rng.integers(30, 98, (n, 2))
    for b, (cy, cx) in enumerate(centres):
        x[b, cy - 12:cy + 12, cx - 12:cx + 12, :2] = 1.0
    x[..., 2] = (np.arange(n, dtype="float32")[:, None, None] + 1) / 10
    layer = CutMix(placement="saliency", alpha=4.0, num_classes=n, seed=0)
    out, y = layer(x, np.arange(n))
    out, y = to_np(out), to_np(y)
    for b in range(n):
        ids = np.round(out[b, ..., 2] * 10).astype(int) - 1
        rows, cols = np.nonzero(ids != b)
        partner = int(np.bincount(ids[rows, cols]).argmax())
        box = rows.min(), cols.min(), rows.max() + 1, cols.max() + 1
        cy, cx = centres[partner]
        assert box[0] - 3 <= cy < box[2] + 3 and box[1] - 3 <= cx < box[3] + 3
        assert y[b, partner] == pytest.approx(len(rows) / side**2, abs=1e-6)


# (A MixupModel step on JAX compiles for several seconds: TensorFlow only in
# CI; the saliency a context carries reaches the mixers on every backend in
# test_masks.py's RandomMix tests.)
@pytest.mark.tensorflow_only
def test_random_mix_passes_gradient_saliency_to_its_mixers_and_saves(tmp_path, monkeypatch):
    """A RandomMix holding a ResizeMix and a saliency CutMix, as the mixer
    of a MixupModel: the model computes gradient saliency for it and the
    CutMix receives it; the model trains and round-trips through .keras."""
    x, _ = blob_images(0)
    cut = CutMix(placement="saliency", label_weight="saliency", num_classes=4)
    given = []
    check = cut._check_saliency
    monkeypatch.setattr(cut, "_check_saliency", lambda s, inputs: (given.append(tuple(s.shape)), check(s, inputs))[1])
    mixer = keras_mixup.layers.RandomMix([ResizeMix(num_classes=4), cut], per_sample=True)
    assert mixer.placement == "saliency"
    inputs = keras.Input((S, S, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras_mixup.MixupModel(keras.Model(inputs, keras.layers.Dense(4)(h)), mixer=mixer, seed=1)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = model.fit(x[:8], np.arange(8) % 4, batch_size=8, epochs=1, verbose=0).history["loss"]
    assert np.isfinite(loss).all()
    assert given and all(shape[1:] == (S, S) for shape in given)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras").mixer
    assert [type(m) for m in again.mixers] == [ResizeMix, CutMix]
    assert (again.placement, again.mixers[1].label_weight) == ("saliency", "saliency")
    assert again.get_config() == mixer.get_config()
