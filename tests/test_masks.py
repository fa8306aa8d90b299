"""The mask families: FMix, MaskMix, PatchUp (and their plans' exactness).

Runs on every backend. Label weights are checked from the outside, on
inputs that name their source: images whose channel ``c`` is 1 for
example ``c`` (so a mixed pixel's channel ``i`` is the share example ``i``
kept there), and tabular rows holding their example's number.
"""

import keras
import numpy as np
import pytest

import keras_mixup
from keras_mixup import ops
from keras_mixup.layers import CutMix, FMix, MaskMix, MixUp, PatchUp, RandomMix, ResizeMix
from tests.conftest import xla


def to_np(x):
    return keras.ops.convert_to_numpy(x)


B = 8


def id_channels(h=12, w=12):
    """(B, h, w, B): pixel channel c is 1 for example c."""
    return np.broadcast_to(np.eye(B, dtype="float32")[:, None, None, :], (B, h, w, B)).copy()


LAYERS = {
    "fmix": lambda **k: FMix(**k),
    "fmix_soft": lambda **k: FMix(max_soft=0.2, **k),
    "maskmix": lambda **k: MaskMix(shared_axes=[3], **k),
    "patchup_hard": lambda **k: PatchUp(block_size=3, gamma=0.5, **k),
    "patchup_soft": lambda **k: PatchUp(block_size=3, gamma=0.5, mode="soft", **k),
    "resizemix": lambda **k: ResizeMix(**k),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_label_weight_is_the_realized_share(name):
    layer = LAYERS[name](num_classes=B, seed=1)
    x = id_channels()
    for _ in range(3):
        xm, ym = layer(x, np.arange(B))
        xm, ym = to_np(xm), to_np(ym)
        own = xm[np.arange(B), :, :, np.arange(B)].mean(axis=(1, 2))  # share kept
        assert np.allclose(ym[np.arange(B), np.arange(B)], own, atol=1e-5)
        assert np.allclose(ym.sum(1), 1.0, atol=1e-5)
        # Every pixel's sources sum to one, and come from the pair only.
        assert np.allclose(xm.sum(-1), 1.0, atol=1e-5)
        assert ((xm > 1e-6).sum(-1) <= 2).all()
    assert (own < 1 - 1e-6).any(), "something was mixed"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_in_tf_data_and_under_xla(name):
    tf = pytest.importorskip("tensorflow")
    layer = LAYERS[name](num_classes=B, seed=2)
    x = id_channels()
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(B))).batch(B).map(layer)
    xm, ym = next(iter(ds))
    own = xm.numpy()[np.arange(B), :, :, np.arange(B)].mean(axis=(1, 2))
    assert np.allclose(ym.numpy()[np.arange(B), np.arange(B)], own, atol=1e-5)
    plan = xla(lambda s: layer.sample_plan(x, s))(ops.as_seed(5))
    mask, lam = to_np(plan["mask"]), to_np(plan["lam"])
    # One mask for all channels (MaskMix's shared_axes=[3]: repeated along them).
    assert mask.shape[:3] == (B, 12, 12) and (np.ptp(mask, axis=3) == 0).all()
    assert np.allclose(mask.mean(axis=(1, 2, 3)), lam, atol=1e-6)


def test_fmix_keeps_exactly_round_lambda_n_pixels():
    layer = FMix(alpha=1.0, num_classes=B)
    x = np.zeros((B, 16, 16, 1), "float32")
    for s in range(5):
        seed = ops.as_seed(s)
        mask = to_np(layer.sample_plan(x, seed)["mask"])
        assert set(np.unique(mask)) <= {0.0, 1.0}
        lam = to_np(ops.sample_beta([B], 1.0, 1.0, seed=ops.fold_seed(seed, 1)))
        kept = mask.reshape(B, -1).sum(1)
        assert np.array_equal(kept, np.round(lam * 256))


def test_fmix_on_large_images_ranks_cells_and_stays_exact_to_the_pixel():
    # From 128 px up the field lives on cells of f × f pixels (f = 2 here;
    # the last column of cells is 1 px wide): every cell but the one at the
    # cut is all kept or all given, and the count is still round(λ·H·W).
    height, width, f = 130, 129, 2
    layer = FMix(alpha=1.0, num_classes=3)
    x = np.zeros((3, height, width, 1), "float32")
    for s in range(2):
        seed = ops.as_seed(s)
        mask = to_np(xla(lambda t: layer.sample_plan(x, t)["mask"])(seed))[..., 0]
        lam = to_np(ops.sample_beta([3], 1.0, 1.0, seed=ops.fold_seed(seed, 1)))
        assert np.array_equal(mask.reshape(3, -1).sum(1), np.round(lam * height * width))
        for b in range(3):
            cells = [mask[b, i:i + f, j:j + f] for i in range(0, height, f)
                     for j in range(0, width, f)]
            mixed = [c for c in cells if 0 < c.mean() < 1]
            assert len(mixed) <= 1
            if mixed:  # the cut's cell keeps its first pixels in raster order
                flat = mixed[0].reshape(-1)
                assert np.all(np.diff(flat) <= 0)
    # decay_power=1 puts 20% of the power in finer frequencies: full resolution.
    rough = to_np(FMix(decay_power=1.0).sample_plan(x, ops.as_seed(0))["mask"])[0, ..., 0]
    cells = [rough[i:i + f, j:j + f].mean() for i in range(0, height, f) for j in range(0, width, f)]
    assert sum(0 < c < 1 for c in cells) > 10


def test_fmix_cells_tied_at_the_cut_are_filled_in_raster_order():
    # Keys that tie (equal field values, as the 23-bit ranking keys can):
    # the counts still add up to the pixels to keep, cells above the cut
    # are whole, and the tied cells at the cut fill in raster order, at
    # most one of them in part. Checked with and without ties in the batch
    # (the tie-breaking prefix sum runs only when some row ties).
    from keras_mixup.layers.fmix import _kept_cells

    rng = np.random.default_rng(0)
    # Small cells, and cells over a byte (counted a byte at a time).
    for pixels, tied in [(rng.integers(1, 10, 40), True), (rng.integers(1, 10, 40), False),
                         (rng.integers(200, 700, 40), True)]:
        levels = rng.integers(0, 6, (5, 40)) if tied else rng.permutation(200)[:200].reshape(5, 40)
        field = levels.astype("float32")
        keep = np.array([0, 1, pixels.sum() // 3, pixels.sum() - 1, pixels.sum()], "int32")
        counts = to_np(xla(lambda f, k: _kept_cells(f, k, pixels))(field, keep))
        assert np.array_equal(counts.sum(1), keep)
        for b in range(5):
            if keep[b] == 0:
                assert not counts[b].any()
                continue
            c, order = counts[b], np.argsort(-levels[b], kind="stable")  # value, then position
            filled = c[order]
            # Kept whole, then at most one part-kept cell, then nothing.
            whole = filled == pixels[order]
            first_short = np.argmin(whole) if not whole.all() else len(c)
            assert (filled[first_short + 1:] == 0).all()


def test_order_keys_keep_the_order_of_the_values():
    from keras_mixup.layers.fmix import _ORDER_BITS, _order_keys

    field = np.random.default_rng(1).normal(size=(3, 500)).astype("float32") * [[1.0], [1e4], [1e-4]]
    keys = to_np(_order_keys(field))
    assert keys.min() == 0 and keys.max() == 2**_ORDER_BITS - 1
    for b in range(3):
        order = np.argsort(field[b])
        assert (np.diff(keys[b][order]) >= 0).all()  # never reversed
        assert len(np.unique(keys[b])) >= 499  # 500 normals: ties are rare


def _high_frequency_share(mask):
    m = mask[..., 0] - mask[..., 0].mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(m)) ** 2
    f = np.sqrt(np.fft.fftfreq(m.shape[1])[:, None] ** 2 + np.fft.fftfreq(m.shape[2])[None] ** 2)
    return power[:, f > 0.25].sum() / power.sum()


def test_fmix_masks_are_low_pass():
    x = np.zeros((64, 32, 32, 1), "float32")
    fmix = to_np(FMix(decay_power=3.0).sample_plan(x, ops.as_seed(0))["mask"])
    bern = to_np(MaskMix().sample_plan(x, ops.as_seed(0))["mask"])
    # White (Bernoulli) noise puts ~80% of its power above |f| = 0.25 on a
    # 32x32 grid; a binarized 1/f^3 field keeps all but its edges below
    # (~7% here).
    assert _high_frequency_share(bern) > 0.6
    assert _high_frequency_share(fmix) < 0.15
    # Higher decay: smoother masks.
    rough = to_np(FMix(decay_power=1.0).sample_plan(x, ops.as_seed(0))["mask"])
    assert _high_frequency_share(rough) > _high_frequency_share(fmix)


def test_fmix_on_sequences():
    x = np.random.default_rng(0).random((B, 40, 3)).astype("float32")
    xm, ym = FMix(num_classes=B, seed=0)(x, np.arange(B))
    assert tuple(xm.shape) == (B, 40, 3) and np.allclose(to_np(ym).sum(1), 1.0, atol=1e-5)


def test_patchup_blocks_are_unions_of_squares():
    layer = PatchUp(block_size=3, gamma=0.3)
    x = np.zeros((16, 12, 12, 2), "float32")
    mask = to_np(layer.sample_plan(x, ops.as_seed(3))["mask"])[..., 0]
    patched = mask < 0.5
    assert patched.any() and not patched.all()
    # Opening by a 3x3 square leaves a union of 3x3 squares unchanged.
    for p in patched:
        eroded = np.zeros_like(p)
        for i in range(1, 11):
            for j in range(1, 11):
                eroded[i, j] = p[i - 1:i + 2, j - 1:j + 2].all()
        opened = np.zeros_like(p)
        for i, j in zip(*np.nonzero(eroded)):
            opened[i - 1:i + 2, j - 1:j + 2] = True
        assert np.array_equal(opened, p)


def test_patchup_soft_label_weight_formula():
    layer = PatchUp(block_size=3, gamma=0.5, mode="soft", alpha=2.0)
    x = np.zeros((B, 12, 12, 1), "float32")
    seed = ops.as_seed(4)
    mask = to_np(layer.sample_plan(x, seed)["mask"])[..., 0]
    lam = to_np(ops.sample_beta([B], 2.0, 2.0, seed=ops.fold_seed(seed, 1)))
    patched = (mask < 1 - 1e-6).mean(axis=(1, 2))
    assert np.allclose(mask.mean(axis=(1, 2)), 1 - patched + patched * lam, atol=1e-5)


def test_maskmix_tabular_share_and_rate():
    x = np.repeat(np.arange(1.0, B + 1, dtype="float32")[:, None], 2000, axis=1)
    layer = MaskMix(alpha=2.0, num_classes=B, seed=0)
    xm, ym = layer(x, np.arange(B))
    xm, ym = to_np(xm), to_np(ym)
    kept = (xm == x).mean(1)
    assert np.allclose(ym[np.arange(B), np.arange(B)], kept, atol=1e-6)
    # Each value is the partner's with probability 1 − λ: the kept share of
    # 2,000 values is within 4 binomial standard deviations of some λ.
    assert ((kept > 0) & (kept < 1)).all()


def test_mask_layers_as_sites_train():
    x = np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32")
    y = np.arange(16) % 2
    inputs = keras.Input((8, 8, 3))
    h = FMix()(inputs)
    h = keras.layers.Conv2D(4, 3, padding="same")(h)
    h = PatchUp(block_size=3, mode="soft")(h)
    h = keras.layers.Conv2D(4, 3, padding="same")(h)
    h = MaskMix(shared_axes=[-1])(h)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras_mixup.MixupModel(keras.Model(inputs, outputs), seed=0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert len(model.sites) == 3 and np.isfinite(history.history["loss"]).all()


def test_random_mix_counts_mask_families_from_their_masks():
    x = id_channels()
    mix = RandomMix([MaskMix(shared_axes=[3], num_classes=B), FMix(num_classes=B),
                     MixUp(num_classes=B), CutMix(num_classes=B)], per_sample=True, seed=0)
    xm, ym = mix(x, np.arange(B))
    own = to_np(xm)[np.arange(B), :, :, np.arange(B)].mean(axis=(1, 2))
    assert np.allclose(to_np(ym)[np.arange(B), np.arange(B)], own, atol=1e-5)


def test_uint8_stays_exact():
    x = np.random.default_rng(0).integers(0, 256, (B, 8, 8, 3)).astype("uint8")
    for layer in (FMix(dtype="uint8", num_classes=B, seed=0), MaskMix(dtype="uint8", num_classes=B, seed=0),
                  PatchUp(block_size=2, dtype="uint8", num_classes=B, seed=0)):
        xm, _ = layer(x, np.arange(B))
        assert keras.backend.standardize_dtype(xm.dtype) == "uint8"


def test_config_round_trip():
    for layer in (FMix(decay_power=2.0, max_soft=0.1, seed=1),
                  MaskMix(shared_axes=[-1], alpha=0.5),
                  PatchUp(block_size=5, gamma=0.7, mode="soft", pairing="roll")):
        again = type(layer).from_config(layer.get_config())
        assert again.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: FMix(decay_power=0.0), ValueError, "decay_power"),
        (lambda: FMix(max_soft=0.7), ValueError, "max_soft"),
        (lambda: FMix(max_soft=0.1, dtype="uint8"), ValueError, "uint8"),
        (lambda: PatchUp(block_size=0), ValueError, "block_size"),
        (lambda: PatchUp(gamma=1.5), ValueError, "gamma"),
        (lambda: PatchUp(mode="medium"), ValueError, "mode"),
        (lambda: PatchUp(mode="soft", dtype="uint8"), ValueError, "uint8"),
        (lambda: MaskMix(shared_axes=3), TypeError, "shared_axes"),
        (lambda: FMix(ways=3), ValueError, "ways"),
        (lambda: PatchUp(block_size=9)(np.zeros((2, 8, 8, 1), "float32"), np.zeros((2, 2), "float32")),
         ValueError, "larger than the feature map"),
        (lambda: FMix()(np.zeros((2, 8), "float32"), np.zeros((2, 2), "float32")), ValueError, "images"),
        (lambda: MaskMix(shared_axes=[0])(np.zeros((2, 8), "float32"), np.zeros((2, 2), "float32")),
         ValueError, "batch axis"),
        (lambda: MaskMix()({"images": np.zeros((2, 4, 4, 1), "float32"), "labels": np.zeros((2, 2), "float32"),
                            "segmentation_masks": np.zeros((2, 4, 4, 2), "float32")}), ValueError, "segmentation"),
    ],
)
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ------------------------------------------------------------ ResizeMix


def test_resize_mix_pastes_the_resized_partner_and_weighs_labels_by_area():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    x = rng.random((B, 16, 12, 3)).astype("float32")
    seg = rng.integers(0, 5, (B, 16, 12)).astype("int32")
    layer = ResizeMix(num_classes=B)
    plan = layer.sample_plan(x, ops.as_seed(7))
    box, index, lam = to_np(plan["paste"]), to_np(plan["index"]), to_np(plan["lam"])
    out = layer.apply_plan(plan, {"images": x, "labels": np.eye(B, dtype="float32"),
                                  "segmentation_masks": seg})
    xm, ym, sm = (to_np(out[k]) for k in ("images", "labels", "segmentation_masks"))
    for i in range(B):
        y0, x0, y1, x1 = box[:, i]
        assert 1 <= y1 - y0 and 1 <= x1 - x0
        ref = tf.image.resize(x[index[i]], (y1 - y0, x1 - x0)).numpy()
        assert np.allclose(xm[i, y0:y1, x0:x1], ref, atol=1e-5)
        ref_seg = tf.image.resize(seg[index[i]][..., None], (y1 - y0, x1 - x0), method="nearest")
        assert np.array_equal(sm[i, y0:y1, x0:x1], ref_seg.numpy()[..., 0])
        outside = np.ones((16, 12), bool)
        outside[y0:y1, x0:x1] = False
        assert np.array_equal(xm[i][outside], x[i][outside])
        assert np.array_equal(sm[i][outside], seg[i][outside])
        area = (y1 - y0) * (x1 - x0) / (16 * 12)
        assert np.isclose(lam[i], 1 - area, atol=1e-6)
        assert np.isclose(ym[i, i], 1 - area, atol=1e-6) and np.isclose(ym[i, index[i]], area, atol=1e-6)
    sides = (box[2] - box[0]) / 16.0
    assert (sides >= 0.1 - 1 / 16).all() and (sides <= 0.8 + 1 / 16).all()


def test_resize_mix_in_tf_data_under_xla_channels_first_and_uint8():
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(0).integers(0, 256, (B, 3, 10, 10)).astype("uint8")
    layer = ResizeMix(num_classes=B, data_format="channels_first", dtype="uint8", seed=0)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(B))).batch(B).map(layer)
    xm, ym = next(iter(ds))
    assert xm.dtype == tf.uint8 and xm.shape == (B, 3, 10, 10)
    last = ResizeMix(num_classes=B)
    plan = xla(lambda s: last.sample_plan(x.transpose(0, 2, 3, 1), s))(ops.as_seed(1))
    assert to_np(plan["mask"]).shape == (B, 10, 10, 1)


def test_resize_mix_site_trains_and_mixupe_weight():
    x = np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32")
    model = keras_mixup.MixupModel(
        keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)]),
        mixer=ResizeMix(), seed=0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, np.arange(16) % 2, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # E[1 − λ] weighted by λ, for λ = 1 − τ², τ ~ U(0.1, 0.8), by sampling.
    tau = np.random.default_rng(0).uniform(0.1, 0.8, 1_000_000)
    lam = 1 - tau**2
    expected = np.sum(lam * (1 - lam)) / np.sum(lam)
    assert np.isclose(float(to_np(ResizeMix().expected_partner_weight())), expected, rtol=1e-2)


@pytest.mark.parametrize("compiled", [False, True])
def test_resize_mix_call_pastes_the_resized_partner(compiled):
    """The layer's own call (the plan it samples carries where each output
    position reads the partner) pastes `tf.image.resize` of the partner,
    eagerly and in a graph; box and partner are read back from the output
    and the soft labels."""
    tf = pytest.importorskip("tensorflow")
    if compiled and keras.backend.backend() != "tensorflow":
        pytest.skip("a tf.function call is the TensorFlow backend's (the eager case covers the rest)")
    rng = np.random.default_rng(1)
    x = rng.random((B, 20, 14, 3)).astype("float32")
    layer = ResizeMix(num_classes=B, seed=4)
    call = tf.function(lambda x, y: layer(x, y)) if compiled else layer
    for _ in range(2):  # a second call draws a new plan
        xm, soft = (to_np(v) for v in call(x, np.arange(B)))
        for i in range(B):
            others = np.where(np.arange(B) == i, 0.0, soft[i])
            partner = int(np.argmax(others)) if others.max() > 0 else i
            changed = np.any(xm[i] != x[i], axis=-1)
            rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
            y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            assert changed[y0:y1, x0:x1].all() and changed.sum() == (y1 - y0) * (x1 - x0)
            ref = tf.image.resize(x[partner], (y1 - y0, x1 - x0)).numpy()
            assert np.allclose(xm[i, y0:y1, x0:x1], ref, atol=1e-5)
            if partner != i:
                assert np.isclose(soft[i, i], 1 - (y1 - y0) * (x1 - x0) / (20 * 14), atol=1e-6)


def test_resize_mix_on_sequences_resamples_the_partner_into_a_segment():
    # (B, T, D) and channels-first (B, D, T): the whole partner sequence,
    # linearly resampled (half-sample centres, as tf.image.resize), in a
    # segment of round(τ·T) steps; the partner's label weight is τ.
    rng = np.random.default_rng(1)
    x = rng.random((B, 20, 3)).astype("float32")
    for fmt, data in (("channels_last", x), ("channels_first", x.transpose(0, 2, 1))):
        layer = ResizeMix(num_classes=B, data_format=fmt)
        plan = xla(lambda s: layer.sample_plan(data, s))(ops.as_seed(3))
        out = to_np(layer.apply_plan(plan, {"images": data})["images"])
        if fmt == "channels_first":
            out = out.transpose(0, 2, 1)
        seg, index, lam = to_np(plan["paste"]), to_np(plan["index"]), to_np(plan["lam"])
        assert seg.shape == (2, B)
        for i in range(B):
            t0, t1 = seg[:, i]
            src = np.clip((np.arange(t1 - t0) + 0.5) * 20 / (t1 - t0) - 0.5, 0, 19)
            lo = np.floor(src).astype(int)
            hi = np.minimum(lo + 1, 19)
            w = (src - lo)[:, None]
            want = x[index[i]][lo] * (1 - w) + x[index[i]][hi] * w
            assert np.allclose(out[i, t0:t1], want, atol=1e-5)
            assert np.array_equal(np.delete(out[i], np.s_[t0:t1], 0), np.delete(x[i], np.s_[t0:t1], 0))
            assert np.isclose(lam[i], 1 - (t1 - t0) / 20, atol=1e-6)
    # MixupE's weight for λ = 1 − τ on sequences (once the layer has seen
    # them), by sampling.
    layer(x, np.arange(B))
    tau = np.random.default_rng(0).uniform(0.1, 0.8, 1_000_000)
    expected = np.sum((1 - tau) * tau) / np.sum(1 - tau)
    assert np.isclose(float(to_np(layer.expected_partner_weight())), expected, rtol=1e-2)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ResizeMix(scale=(0.5, 0.2)), "scale"),
        (lambda: ResizeMix(scale=(0.0, 0.5)), "scale"),
        (lambda: ResizeMix()(np.zeros((2, 8), "float32"), np.zeros((2, 2), "float32")), "rank 2"),
        (lambda: ResizeMix(placement="saliency")(np.zeros((2, 8, 3), "float32")), "images"),
    ],
)
def test_resize_mix_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_hash_uniform_is_uniform_and_seed_dependent():
    import scipy.stats

    from keras_mixup.ops.random import hash_uniform

    u = to_np(hash_uniform([200, 500], ops.as_seed(0))).ravel()
    assert scipy.stats.chisquare(np.histogram(u, bins=32, range=(0, 1))[0]).pvalue > 1e-3
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 4 / np.sqrt(len(u))  # neighbours
    v = to_np(hash_uniform([200, 500], ops.as_seed(1))).ravel()
    assert abs(np.corrcoef(u, v)[0, 1]) < 4 / np.sqrt(len(u))  # seeds
    w = to_np(xla(lambda s: hash_uniform([200, 500], s))(ops.as_seed(0))).ravel()
    assert np.array_equal(u, w)  # the same stream under XLA


# ------------------------------------- RandomMix holding ResizeMix and saliency CutMix


def pixel_ids(h=12, w=12):
    """(B, h, w, 3) images with every value distinct."""
    return np.arange(B * h * w * 3, dtype="float32").reshape(B, h, w, 3) / (B * h * w * 3)


def view_data(h=12, w=12, float_masks=False):
    rng = np.random.default_rng(0)
    seg = rng.integers(0, 4, (B, h, w)).astype("int32")
    if float_masks:
        seg = np.eye(4, dtype="float32")[seg]
    xy = np.sort(rng.uniform(0, w, (B, 3, 2)), -1)
    boxes = np.stack([xy[..., 0], xy[..., 0] * h / w, xy[..., 1], xy[..., 1] * h / w], -1)
    return {
        "images": keras.ops.convert_to_tensor(pixel_ids(h, w)),
        "labels": keras.ops.convert_to_tensor(np.eye(B, dtype="float32")),
        "segmentation_masks": keras.ops.convert_to_tensor(seg),
        "bounding_boxes": {
            "boxes": keras.ops.convert_to_tensor(boxes.astype("float32")),
            "labels": keras.ops.convert_to_tensor(rng.integers(0, 5, (B, 3)).astype("int32")),
        },
    }


def each_mixer(layer, data, seed, context=None):
    """RandomMix's output and its plan, and each of its mixers' own output
    under the sub-plan RandomMix drew for it (mixer i: seed folded with
    100 + i)."""
    seed = ops.as_seed(seed)
    x = data["images"]
    plan = layer.sample_plan(x, seed, context)
    out = keras.tree.map_structure(to_np, layer.apply_plan(plan, data))
    refs = [
        keras.tree.map_structure(
            to_np, m.apply_plan(m.sample_plan(x, ops.fold_seed(seed, 100 + i), context), data)
        )
        for i, m in enumerate(layer.mixers)
    ]
    return out, refs, keras.tree.map_structure(to_np, plan)


def same_example(a, b, i):
    return all(
        np.allclose(u[i], v[i], atol=1e-6) for u, v in zip(keras.tree.flatten(a), keras.tree.flatten(b))
    )


# (On JAX, whose eager ops compile one by one, the light case: the gradient
# saliency placement and box following compile for seconds there; they read
# the same plan on every backend.)
@pytest.mark.parametrize("shifted", [False, pytest.param(True, marks=pytest.mark.tensorflow_only)])
def test_random_mix_gives_each_example_its_mixers_view_of_the_partner(shifted):
    """Per example, images, labels (the mixer's exact weight), integer
    segmentation masks (nearest) and boxes are what the chosen mixer alone
    gives under its sub-plan: a ResizeMix's resized partner; a saliency
    CutMix's region pasted elsewhere (gradient saliency given in the
    context, as MixupModel passes it); a CutMix's box. Unmixed examples
    are unchanged. (Spectral-residual saliency: in a call, below.)"""
    fmt = {"bounding_box_format": "xyxy"} if shifted else {}
    kw = {"num_classes": B, **fmt}
    mixers = [ResizeMix(**kw), CutMix(**kw)]
    if shifted:
        mixers.insert(1, CutMix(placement="saliency", label_weight="saliency", **kw))
    layer = RandomMix(mixers, per_sample=True, rate=0.9, **fmt)
    assert not layer._fused and layer.data_format == "channels_last"
    assert layer.placement == ("saliency" if shifted else None)
    data = view_data()
    if not shifted:
        del data["bounding_boxes"]
    x = to_np(data["images"])
    context = {"saliency": np.random.default_rng(1).random((B, 12, 12)).astype("float32")} if shifted else None
    seen, moved = set(), 0
    for seed in range(2):
        out, refs, plan = each_mixer(layer, data, seed, context)
        for i in range(B):
            chosen = [k for k, ref in enumerate(refs) if np.allclose(out["images"][i], ref["images"][i], atol=1e-6)]
            if not chosen:  # not mixed
                assert np.array_equal(out["images"][i], x[i]) and out["labels"][i, i] == 1.0
                seen.add("off")
                continue
            assert any(same_example(out, refs[k], i) for k in chosen), (seed, i, chosen)
            seen.add(chosen[0])
            moved += shifted and chosen == [1] and np.any(plan["offset"][i] != 0)
    assert seen == {*range(len(mixers)), "off"} and (moved > 0) == shifted


def test_random_mix_with_one_mixer_weighted_is_that_mixer():
    data = view_data()
    data = {k: data[k] for k in ("images", "labels")}
    for k, per_sample in ((0, True), (1, True), (1, False)):
        layer = RandomMix([MixUp(num_classes=B), ResizeMix(num_classes=B, per_sample=per_sample)],
                          weights=[1 - k, k], per_sample=per_sample)
        out, refs, _ = each_mixer(layer, data, k)
        assert all(same_example(out, refs[k], i) for i in range(B))


def test_random_mix_resizes_sequences_and_channels_first():
    x = pixel_ids()
    for data_format, inputs in (("channels_last", x[:, 0]), ("channels_first", x.transpose(0, 3, 1, 2))):
        layer = RandomMix([ResizeMix(num_classes=B, data_format=data_format), MixUp(num_classes=B)],
                          per_sample=True)
        data = {"images": keras.ops.convert_to_tensor(inputs), "labels": np.eye(B, dtype="float32")}
        out, refs, _ = each_mixer(layer, data, 0)
        chosen = [[k for k in (0, 1) if same_example(out, refs[k], i)] for i in range(B)]
        assert all(chosen) and {c[0] for c in chosen} == {0, 1}, (data_format, chosen)


def test_random_mix_with_views_label_weight_is_the_realized_share_and_uint8():
    x = id_channels()
    layer = RandomMix([ResizeMix(num_classes=B), CutMix(placement="saliency", num_classes=B),
                       MixUp(num_classes=B)], per_sample=True, seed=3)
    xm, ym = layer(x, np.arange(B))
    xm, ym = to_np(xm), to_np(ym)
    own = xm[np.arange(B), :, :, np.arange(B)].mean(axis=(1, 2))
    assert np.allclose(ym[np.arange(B), np.arange(B)], own, atol=1e-5)
    assert np.allclose(xm.sum(-1), 1.0, atol=1e-5) and ((xm > 1e-6).sum(-1) <= 2).all()
    assert (own < 1 - 1e-6).all()
    # Nested: the inner RandomMix's views reach the outer one's examples.
    nested = RandomMix([RandomMix([ResizeMix(num_classes=B), MixUp(num_classes=B)], per_sample=True),
                        CutMix(placement="saliency", num_classes=B)], per_sample=True, seed=0,
                       jit_compile=False)  # (compiled above)
    assert nested.placement == "saliency"
    xm, ym = nested(x, np.arange(B))
    own = to_np(xm)[np.arange(B), :, :, np.arange(B)].mean(axis=(1, 2))
    assert np.allclose(to_np(ym)[np.arange(B), np.arange(B)], own, atol=1e-5)
    # uint8: as before, only cutting mixers, and uint8 out.
    x = np.random.default_rng(0).integers(0, 256, (B, 12, 12, 3)).astype("uint8")
    layer = RandomMix([ResizeMix(num_classes=B), CutMix(placement="saliency", num_classes=B)],
                      per_sample=True, dtype="uint8", seed=0, jit_compile=False)
    xm, _ = layer(x, np.arange(B))
    assert keras.backend.standardize_dtype(xm.dtype) == "uint8"
    with pytest.raises(ValueError, match="uint8"):
        RandomMix([MixUp(), ResizeMix()], dtype="uint8")


# (The plan is the same on every backend; planning in shards is JAX's data
# parallelism, whose eager ops compile slowly: checked on TensorFlow.)
@pytest.mark.tensorflow_only
def test_random_mix_with_views_planned_in_shards():
    layer = RandomMix([ResizeMix(), CutMix(placement="saliency"), MixUp()], per_sample=True)
    x = pixel_ids()
    saliency = np.random.default_rng(1).random((B, 12, 12)).astype("float32")
    seed = ops.as_seed(4)
    plan = layer.plan(x, seed, shards=2, context={"saliency": saliency})
    assert tuple(plan["paste"].shape) == (4, B) and tuple(plan["offset"].shape) == (B, 2)
    out = to_np(layer.mix_inputs(plan, x))
    for s in range(2):
        part = slice(s * B // 2, (s + 1) * B // 2)
        sub = layer.sample_plan(x[part], ops.fold_seed(seed, s), {"saliency": saliency[part]})
        assert np.allclose(out[part], to_np(layer.mix_inputs(sub, x[part])), atol=1e-6)


@pytest.mark.tensorflow_only
def test_compiled_site_with_a_partner_view_has_the_op_by_op_gradient():
    # A site that reads its partner resized (ResizeMix) samples and blends in
    # one XLA program in a TensorFlow step, differentiated by TensorFlow:
    # the loss and every weight gradient (those before the site included)
    # equal the same step run op by op (jit_compile=False).
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    x = rng.random((8, 10, 10, 3)).astype("float32")
    y = np.arange(8) % 2

    def build(jit):
        inputs = keras.Input((10, 10, 3))
        h = keras.layers.Conv2D(4, 3, padding="same", name="before")(inputs)
        h = ResizeMix(jit_compile=jit, name="site")(h)
        h = keras.layers.Conv2D(4, 3, padding="same", name="after")(h)
        outputs = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(h))
        model = keras_mixup.MixupModel(keras.Model(inputs, outputs), seed=3)
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    compiled, plain = build(True), build(False)
    plain.set_weights(compiled.get_weights())

    def loss_and_grads(model):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = model.mixed_loss(x, y, None)[0]
            return loss, tape.gradient(loss, model.trainable_variables)

        return step()

    (la, ga), (lb, gb) = loss_and_grads(compiled), loss_and_grads(plain)
    np.testing.assert_allclose(la.numpy(), lb.numpy(), rtol=1e-5)
    for a, b in zip(ga, gb):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    before = compiled.trainable_variables[0]
    assert "before" in before.path and np.abs(ga[0].numpy()).max() > 0
