"""Bounding boxes follow the plan: kept, clipped and dropped exactly as the
visible pixels say (checked against a brute-force count on images whose
pixels name their example), weights as the blend says, every format, in
tf.data and under XLA; Keras' own bounding-box MixUp tests, translated.

Runs on every backend.
"""

import keras
import numpy as np
import pytest

from keras_mixup.layers import CutMix, FMix, MaskMix, MixUp, RandomMix, ResizeMix
from keras_mixup.ops import boxes as box_ops


def to_np(x):
    return keras.ops.convert_to_numpy(x)


B, H, W, N = 6, 20, 16, 5


def random_boxes(seed, fmt="xyxy"):
    """Float boxes inside the image, the last ones of some rows padded."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, W, (B, N, 2)), -1)
    y = np.sort(rng.uniform(0, H, (B, N, 2)), -1)
    xyxy = np.stack([x[..., 0], y[..., 0], x[..., 1] + 0.5, y[..., 1] + 0.5], -1).clip(0, [W, H, W, H])
    labels = rng.integers(0, 7, (B, N))
    labels[::2, -2:] = -1
    xyxy[labels == -1] = -1
    boxes = to_np(box_ops.from_xyxy(xyxy.astype("float32"), fmt, H, W))
    boxes[labels == -1] = -1
    return xyxy.astype("float32"), boxes.astype("float32"), labels


def id_images():
    """Example i is the constant image i + 1 (3 channels)."""
    return np.broadcast_to(np.arange(1, B + 1, dtype="float32")[:, None, None, None], (B, H, W, 3)).copy()


def expected_box(visible, box, min_visibility):
    """Brute force: the box clipped to its visible pixels, or None."""
    x0, y0, x1, y1 = box
    rows = [h for h in range(H) if h + 1 > y0 and h < y1]
    cols = [w for w in range(W) if w + 1 > x0 and w < x1]
    region = visible[np.ix_(rows, cols)]
    if region.sum() == 0 or region.mean() < min_visibility:
        return None
    rr = [r for r, on in zip(rows, region.any(1)) if on]
    cc = [c for c, on in zip(cols, region.any(0)) if on]
    return [max(x0, cc[0]), max(y0, rr[0]), min(x1, cc[-1] + 1), min(y1, rr[-1] + 1)]


def check_against_pixels(out_images, out_bb, xyxy, labels, min_visibility, paste=False):
    img = np.round(to_np(out_images)[..., 0]).astype(int)
    boxes, out_labels, weights = (to_np(out_bb[k]) for k in ("boxes", "labels", "weights"))
    assert boxes.shape == (B, 2 * N, 4) and out_labels.shape == (B, 2 * N)
    checked = 0
    for b in range(B):
        others = set(np.unique(img[b]).tolist()) - {b + 1}
        partner = (others.pop() - 1) if others else None
        for n in range(2 * N):
            src = b if n < N else partner
            if src is None or labels[src, n % N] == -1:
                assert out_labels[b, n] == -1 and weights[b, n] == 0
                continue
            box = xyxy[src, n % N]
            if n >= N and paste:
                rows, cols = np.nonzero(img[b] == src + 1)
                y0, x0, y1, x1 = rows.min(), cols.min(), rows.max() + 1, cols.max() + 1
                sy, sx = (y1 - y0) / H, (x1 - x0) / W
                box = [x0 + box[0] * sx, y0 + box[1] * sy, x0 + box[2] * sx, y0 + box[3] * sy]
            want = expected_box(img[b] == src + 1, box, min_visibility)
            if want is None:
                assert out_labels[b, n] == -1 and weights[b, n] == 0
                assert (boxes[b, n] == -1).all()
            else:
                assert out_labels[b, n] == labels[src, n % N]
                assert np.allclose(boxes[b, n], want, atol=1e-4), (b, n, boxes[b, n], want)
                assert weights[b, n] == pytest.approx(1.0)
                checked += 1
    return checked


CUTTERS = {
    "cutmix": lambda **k: CutMix(**k),
    "fmix": lambda **k: FMix(**k),
    "maskmix": lambda **k: MaskMix(shared_axes=[3], alpha=2.0, **k),
    "resizemix": lambda **k: ResizeMix(**k),
}


@pytest.mark.parametrize("name", sorted(CUTTERS))
@pytest.mark.parametrize(
    # (The backend-neutral path runs on JAX at one threshold, to keep CI short.)
    "min_visibility", [0.0, pytest.param(0.4, marks=pytest.mark.tensorflow_only)]
)
def test_masks_clip_and_drop_boxes_as_the_pixels_say(name, min_visibility):
    layer = CUTTERS[name](bounding_box_format="xyxy", min_visibility=min_visibility, seed=3)
    checked = 0
    for step in range(2):
        xyxy, boxes, labels = random_boxes(step)
        out = layer({"images": id_images(), "bounding_boxes": {"boxes": boxes, "labels": labels}})
        checked += check_against_pixels(
            out["images"], out["bounding_boxes"], xyxy, labels, min_visibility,
            paste=name == "resizemix",
        )
    assert checked > 12


def test_planted_boxes_come_out_exactly():
    """A hand-checked case: the cut box of CutMix known from the image."""
    layer = CutMix(bounding_box_format="xyxy", seed=0, pairing="flip")
    images = np.zeros((2, 8, 8, 1), "float32")
    images[1] = 1.0
    boxes = np.array([[[0, 0, 8, 8], [2, 2, 4, 4]], [[1, 1, 3, 3], [5, 5, 7, 7]]], "float32")
    labels = np.array([[1, 2], [3, 4]])
    for _ in range(5):
        out = layer({"images": images, "bounding_boxes": {"boxes": boxes, "labels": labels}})
        img = to_np(out["images"])[0, ..., 0]
        got = to_np(out["bounding_boxes"]["boxes"])[0]
        if not img.any() or img.all():
            continue
        rows, cols = np.nonzero(img == 1)
        cut = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
        # The whole-image box of example 0 survives, shrunk only if the cut
        # removed whole rows or columns of it; partner 1's boxes are the
        # parts inside the cut.
        for n, box in enumerate(boxes[1]):
            inter = [max(box[0], cut[0]), max(box[1], cut[1]), min(box[2], cut[2]), min(box[3], cut[3])]
            if inter[0] < inter[2] and inter[1] < inter[3]:
                assert np.allclose(got[2 + n], inter)
            else:
                assert (got[2 + n] == -1).all()
        return
    pytest.fail("no partial cut in 5 draws")


@pytest.mark.tensorflow_only  # (format arithmetic: the same ops on every backend)
@pytest.mark.parametrize("fmt", ["rel_center_xywh", "yxyx", "center_yxhw"])
def test_formats_round_trip_through_the_plan(fmt):
    xyxy, boxes, labels = random_boxes(7, fmt)
    results = []
    for f, b in (("xyxy", xyxy), (fmt, boxes)):
        layer = CutMix(bounding_box_format=f, seed=5)
        out = layer({"images": id_images(), "bounding_boxes": {"boxes": b, "labels": labels}})
        results.append(out["bounding_boxes"])
    keep = to_np(results[0]["labels"]) != -1
    assert (to_np(results[1]["labels"]) != -1).tolist() == keep.tolist()
    back = to_np(box_ops.to_xyxy(results[1]["boxes"], fmt, H, W))
    assert np.allclose(back[keep], to_np(results[0]["boxes"])[keep], atol=1e-3)


def test_mixup_keeps_both_images_boxes_with_their_weights():
    xyxy, boxes, labels = random_boxes(1)
    layer = MixUp(bounding_box_format="xyxy", seed=2, ways=3, alpha=1.0, num_classes=B)
    out = layer({"images": id_images(), "labels": np.arange(B), "bounding_boxes": {"boxes": boxes, "labels": labels}})
    bb = {k: to_np(v) for k, v in out["bounding_boxes"].items()}
    assert bb["boxes"].shape == (B, 3 * N, 4)
    soft = to_np(out["labels"])  # example i's weight on source j, exactly
    img = to_np(out["images"])[:, 0, 0, 0]
    for b in range(B):
        sources = []
        for k in range(3):
            part = slice(k * N, (k + 1) * N)
            # Which example's boxes the chunk holds (own first).
            src = b if k == 0 else next(
                s for s in range(B) if (bb["labels"][b, part] == labels[s]).all()
                and np.allclose(bb["boxes"][b, part][labels[s] != -1], boxes[s][labels[s] != -1])
            )
            sources.append(src)
            valid = labels[src] != -1
            assert np.allclose(bb["boxes"][b, part][valid], boxes[src][valid])
            assert (bb["labels"][b, part] == labels[src]).all()
            assert np.allclose(bb["weights"][b, part][valid], soft[b, src], atol=1e-6)
            assert (bb["weights"][b, part][~valid] == 0).all()
        assert len(set(sources)) == 3
        # The weights are the blend of the pixels.
        assert img[b] == pytest.approx(sum(soft[b, s] * (s + 1) for s in range(B)), rel=1e-5)


def test_random_mix_boxes_take_the_pixel_share_as_weight():
    xyxy, boxes, labels = random_boxes(4)
    layer = RandomMix([MixUp(num_classes=B), CutMix(num_classes=B)], bounding_box_format="xyxy", seed=1)
    seen = set()
    for _ in range(3):
        out = layer({"images": id_images(), "labels": np.arange(B), "bounding_boxes": {"boxes": boxes, "labels": labels}})
        w = to_np(out["bounding_boxes"]["weights"])
        soft = to_np(out["labels"])
        img = to_np(out["images"])[..., 0]
        for b in range(B):
            if len(np.unique(img[b])) == 1 and soft[b, b] < 1:  # a MixUp example
                kept = w[b, :N][labels[b] != -1]
                assert np.allclose(kept, soft[b, b], atol=1e-5)
                seen.add("blend")
            else:  # cut (or unmixed): whole pixels
                assert np.isin(np.round(w[b], 5), [0.0, 1.0]).all()
                seen.add("cut")
    assert seen == {"blend", "cut"}


def test_keras_mix_up_bounding_box_tests_translated():
    """keras-team/keras mix_up_test.py: test_mix_up_bounding_boxes and
    test_mix_up_tf_data_bounding_boxes — partners [1, 0] and the boxes of
    both images kept (Keras' test passes un-batched boxes (2, 4); here the
    same boxes as a batch of two images with one box each)."""
    image = np.random.random((2, 10, 8, 3)).astype("float32")
    bb = {"boxes": np.array([[[2, 1, 4, 3]], [[6, 4, 8, 6]]], "float32"), "labels": np.array([[1], [2]])}
    expected = [[[2, 1, 4, 3], [6, 4, 8, 6]], [[6, 4, 8, 6], [2, 1, 4, 3]]]
    layer = MixUp(seed=42, bounding_box_format="xyxy", pairing="flip")
    out = layer({"images": image, "bounding_boxes": bb})
    assert np.allclose(to_np(out["bounding_boxes"]["boxes"]), expected)
    assert to_np(out["bounding_boxes"]["labels"]).tolist() == [[1, 2], [2, 1]]

    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_tensor_slices({"images": image, "bounding_boxes": bb}).batch(2)
    out = next(iter(ds.map(layer)))
    assert np.allclose(out["bounding_boxes"]["boxes"].numpy(), expected)


def test_boxes_in_a_tf_data_map():
    tf = pytest.importorskip("tensorflow")
    xyxy, boxes, labels = random_boxes(2)
    layer = CutMix(bounding_box_format="xyxy", seed=9, num_classes=B)
    ds = tf.data.Dataset.from_tensor_slices(
        {"images": id_images(), "labels": np.arange(B), "bounding_boxes": {"boxes": boxes, "labels": labels}}
    ).batch(B).map(layer)
    out = next(iter(ds))
    assert check_against_pixels(out["images"], out["bounding_boxes"], xyxy, labels, 0.0) > 5
    # training=False: boxes untouched.
    same = layer({"images": id_images(), "bounding_boxes": {"boxes": boxes, "labels": labels}}, training=False)
    assert np.allclose(to_np(same["bounding_boxes"]["boxes"]), boxes)


def test_layer_with_boxes_round_trips_its_config():
    layer = CutMix(bounding_box_format="rel_xyxy", min_visibility=0.3)
    again = CutMix.from_config(layer.get_config())
    assert (again.bounding_box_format, again.min_visibility) == ("rel_xyxy", 0.3)


# ------------------------------------------------------------- bad input


def _call(layer, boxes=None, labels=None, images=None, **extra):
    xyxy, b, l = random_boxes(0)
    data = {
        "images": id_images() if images is None else images,
        "bounding_boxes": {"boxes": b if boxes is None else boxes, "labels": l if labels is None else labels},
    }
    data.update(extra)
    return layer(data)


@pytest.mark.parametrize(
    "kwargs, call, match",
    [
        ({}, {}, "bounding_box_format"),
        ({"bounding_box_format": "xyxy"}, {"boxes": np.zeros((B, N, 3), "float32")}, r"\(B, N, 4\)"),
        ({"bounding_box_format": "xyxy"}, {"labels": np.zeros((B, N + 1), "int32")}, r"\(B, N\)"),
        ({"bounding_box_format": "xyxy"}, {"boxes": np.full((B, N, 4), 30.0, "float32")}, "outside"),
        ({"bounding_box_format": "rel_xyxy"}, {}, "outside"),
        ({"bounding_box_format": "xyxy"}, {"images": np.zeros((B, 20, 3), "float32")}, r"\(B, H, W, C\)"),
        ({"bounding_box_format": "xyxy"}, {"boxes": np.tile(np.array([5, 5, 2, 2], "float32"), (B, N, 1))}, "ends before"),
    ],
)
def test_bad_boxes_are_refused(kwargs, call, match):
    with pytest.raises(ValueError, match=match):
        _call(CutMix(**kwargs), **call)


def test_bad_box_arguments_are_refused():
    with pytest.raises(ValueError, match="bounding_box_format"):
        CutMix(bounding_box_format="xyzw")
    with pytest.raises(ValueError, match="min_visibility"):
        CutMix(min_visibility=1.5)
    with pytest.raises(ValueError, match="'bounding_boxes'"):
        CutMix(num_classes=B)({"images": id_images(), "labels": np.arange(B), "bbox": np.zeros((B, 1, 4))})
    with pytest.raises(ValueError, match="exactly the keys"):
        CutMix(bounding_box_format="xyxy")({"images": id_images(), "bounding_boxes": {"boxes": np.zeros((B, 1, 4))}})
    with pytest.raises(ValueError, match="pool"):
        _, b, l = random_boxes(0)
        MixUp(bounding_box_format="xyxy", num_classes=B)(
            {"images": id_images(), "labels": np.arange(B), "bounding_boxes": {"boxes": b, "labels": l}},
            partners=(id_images(), np.arange(B)),
        )
