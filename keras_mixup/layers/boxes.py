"""The ``"bounding_boxes"`` entry of a mixing layer's dict: checked at the
boundary, then moved by the same plan as the pixels (`follow`).

The arithmetic is in `keras_mixup.ops.boxes`; this module knows the
layers' conventions (data formats, plans with and without masks).
"""

import numbers

import numpy as np

from keras_mixup import backend
from keras_mixup.ops import boxes as box_ops
from keras_mixup.ops.mixing import partner_columns

KEYS = ("boxes", "labels")


def check_min_visibility(value):
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ValueError(
            "`min_visibility` must be a number in [0, 1]: boxes keeping a "
            "smaller fraction of their pixels visible are dropped; got "
            f"{value!r}."
        )
    return float(value)


def spatial_sizes(images, data_format):
    axes = (1, 2) if data_format == "channels_last" else (2, 3)
    return [backend.dim(images, a) for a in axes]


def prepare(layer, bounding_boxes, images):
    """Checks a ``{"boxes", "labels"}`` dict against the images; returns it
    with tensors (boxes float32)."""
    name = type(layer).__name__
    K = backend.ops()
    if layer.bounding_box_format is None:
        raise ValueError(
            f"{name} got bounding boxes but no `bounding_box_format`: pass "
            f"the format of the boxes, e.g. {name}(bounding_box_format='xyxy') "
            f"(one of {', '.join(box_ops.FORMATS)})."
        )
    if not isinstance(bounding_boxes, dict) or set(bounding_boxes) != set(KEYS):
        got = sorted(bounding_boxes) if isinstance(bounding_boxes, dict) else type(bounding_boxes).__name__
        raise ValueError(
            f"{name}: 'bounding_boxes' must be a dict with exactly the keys "
            f"'boxes' (B, N, 4) and 'labels' (B, N), padded with label -1; "
            f"got {got}."
        )
    if not hasattr(images, "shape") or backend.rank(images) != 4:
        raise ValueError(
            f"{name} moves bounding boxes with images (B, H, W, C); got inputs "
            f"of shape {tuple(getattr(images, 'shape', ()))}."
        )
    boxes = K.convert_to_tensor(bounding_boxes["boxes"])
    labels = K.convert_to_tensor(bounding_boxes["labels"])
    b, l = tuple(boxes.shape), tuple(labels.shape)
    if len(b) != 3 or b[2] != 4 or len(l) != 2 or any(
        x is not None and y is not None and x != y for x, y in zip(b[:2], l)
    ):
        raise ValueError(
            f"{name}: bounding boxes must be 'boxes' (B, N, 4) and 'labels' "
            f"(B, N) (pad every example to N boxes with label -1); got boxes "
            f"of shape {b} and labels of shape {l}."
        )
    if b[0] is not None and images.shape[0] is not None and b[0] != images.shape[0]:
        raise ValueError(
            f"{name}: {b[0]} examples of bounding boxes for a batch of "
            f"{images.shape[0]} images; pass one row of boxes per image."
        )
    height, width = spatial_sizes(images, layer._data_format)
    _check_values(name, boxes, labels, layer.bounding_box_format, height, width)
    return {"boxes": K.cast(boxes, "float32"), "labels": labels}


def _check_values(name, boxes, labels, fmt, height, width):
    """By value, when the values are known (eagerly): boxes inside the
    image with positive size (padding, label -1, ignored)."""
    K = backend.ops()
    known, ids = K.concrete(boxes), K.concrete(labels)
    if known is None or ids is None or not isinstance(height, int) or not isinstance(width, int):
        return
    xyxy = np.asarray(box_ops.to_xyxy(K.convert_to_tensor(known), fmt, height, width))
    real = xyxy[ids != -1]
    if not real.size:
        return
    tol = 1e-3
    outside = (
        (real[:, 0] < -tol) | (real[:, 1] < -tol)
        | (real[:, 2] > width + tol) | (real[:, 3] > height + tol)
    )
    inverted = (real[:, 2] < real[:, 0]) | (real[:, 3] < real[:, 1])
    if outside.any():
        raise ValueError(
            f"{name}: bounding boxes reach outside the {height}x{width} image "
            f"(in {fmt!r}: first offending box, as xyxy pixels, "
            f"{real[outside][0].round(3).tolist()}). Check `bounding_box_format` "
            "(relative formats take coordinates in [0, 1]), or clip the boxes "
            "first (`keras.utils.bounding_boxes.clip_to_image_size`)."
        )
    if inverted.any():
        raise ValueError(
            f"{name}: a bounding box ends before it starts (as xyxy pixels "
            f"{real[inverted][0].round(3).tolist()}); check `bounding_box_format`."
        )


def _pixel_shares(mask, data_format, batch, height, width):
    """The own example's share of each pixel, ``(B, H, W)``, from a plan's
    mask (its size-1 axes broadcast; several channels averaged)."""
    K = backend.ops()
    channel = 3 if data_format == "channels_last" else 1
    share = K.reduce_sum(mask, axis=channel) / float(mask.shape[channel])
    return K.broadcast_to(share, [batch, height, width])


def follow(layer, plan, bounding_boxes, images):
    """The boxes of every image each mixed example shows (see
    `keras_mixup.ops.boxes`): ``{"boxes", "labels", "weights"}`` with
    ``(B, k·N)`` entries, own boxes first."""
    K = backend.ops()
    fmt = layer.bounding_box_format
    height, width = spatial_sizes(images, layer._data_format)
    batch = backend.dim(images, 0)
    boxes = box_ops.to_xyxy(bounding_boxes["boxes"], fmt, height, width)
    labels = bounding_boxes["labels"]
    valid = labels != K.cast(-1, labels.dtype)
    index, weights = partner_columns(plan)
    mask = plan.get("mask")
    share = None
    if mask is not None:
        share = _pixel_shares(mask, layer._data_format, batch, height, width)
    parts = [(boxes, labels, valid, share, plan["lam"])]
    for j in range(backend.dim(index, 1)):
        p_boxes = K.gather(boxes, index[:, j])
        if "paste" in plan:  # ResizeMix: the whole partner, shrunk
            p_boxes = box_ops.scale_into(p_boxes, plan["paste"], height, width)
        if "offset" in plan:  # a region pasted elsewhere (saliency placement)
            dy, dx = (K.cast(plan["offset"][:, k], "float32") for k in (0, 1))
            shift = K.expand_dims(K.stack([dx, dy, dx, dy], axis=1), 1)
            p_boxes = p_boxes - shift
        p_share = None if share is None else 1.0 - share
        parts.append(
            (p_boxes, K.gather(labels, index[:, j]), K.gather(valid, index[:, j]),
             p_share, weights[:, j])
        )
    out_boxes, out_labels, out_weights = [], [], []
    for b, l, v, s, w in parts:
        if s is None:  # interpolation: every pixel shows both images
            keep = v & K.expand_dims(w > 0, 1)
            weight = K.broadcast_to(K.expand_dims(w, 1), K.shape(keep))
        else:
            b, keep, weight = box_ops.clip_to_visible(b, v, s, layer.min_visibility)
        out_boxes.append(K.where(K.expand_dims(keep, -1), b, -1.0))
        out_labels.append(K.where(keep, l, K.cast(-1, l.dtype)))
        out_weights.append(K.where(keep, weight, 0.0))
    boxes = K.concat(out_boxes, 1)
    keep = K.concat(out_labels, 1) != K.cast(-1, labels.dtype)
    boxes = K.where(K.expand_dims(keep, -1), box_ops.from_xyxy(boxes, fmt, height, width), -1.0)
    return {
        "boxes": boxes,
        "labels": K.concat(out_labels, 1),
        "weights": K.concat(out_weights, 1),
    }
