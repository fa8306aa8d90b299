"""Bounding boxes that follow a mixing plan.

Boxes come as Keras' preprocessing layers take them: a dict
``{"boxes": (B, N, 4), "labels": (B, N)}``, padded with label ``-1``, in
one of Keras' formats (`FORMATS`). After mixing, each example holds the
boxes of every image it shows:

- interpolation (MixUp): its own boxes and its partners', concatenated
  (``(B, k·N, 4)``), with ``"weights"`` saying how much of each image the
  mixed example holds (λ, 1 − λ);
- masks (CutMix, FMix, ResizeMix, ...): every box clipped to the pixels of
  its image that remain visible, and dropped (boxes and label set to -1,
  weight 0) when the visible fraction of its pixels falls below
  ``min_visibility`` or nothing of it is visible. ResizeMix's partner boxes
  are first scaled into the pasted box.

Pixel ``(i, j)`` belongs to a box when it overlaps it
(``x0 < j + 1`` and ``j < x1``, the same for rows), so a box that stays
fully visible is returned unchanged, and a clipped one is cut at pixel
edges. Everything here is backend-neutral and compiles with XLA.
"""

from keras_mixup import backend

FORMATS = (
    "xyxy",
    "yxyx",
    "xywh",
    "center_xywh",
    "center_yxhw",
    "rel_xyxy",
    "rel_yxyx",
    "rel_xywh",
    "rel_center_xywh",
)


def check_format(bounding_box_format, name):
    """The format, checked (None when boxes are not used)."""
    if bounding_box_format is None:
        return None
    if not isinstance(bounding_box_format, str) or bounding_box_format.lower() not in FORMATS:
        raise ValueError(
            f"{name}: unknown `bounding_box_format` {bounding_box_format!r}; "
            f"pass one of Keras' formats: {', '.join(FORMATS)}."
        )
    return bounding_box_format.lower()


def to_xyxy(boxes, fmt, height, width):
    """Boxes ``(..., 4)`` in ``fmt`` as absolute float32 ``xyxy``."""
    K = backend.ops()
    b = K.cast(boxes, "float32")
    a, c, d, e = (b[..., i] for i in range(4))
    rel = fmt.startswith("rel_")
    base = fmt[4:] if rel else fmt
    if base == "xyxy":
        x0, y0, x1, y1 = a, c, d, e
    elif base == "yxyx":
        y0, x0, y1, x1 = a, c, d, e
    elif base == "xywh":
        x0, y0, x1, y1 = a, c, a + d, c + e
    elif base == "center_xywh":
        x0, y0, x1, y1 = a - d / 2, c - e / 2, a + d / 2, c + e / 2
    else:  # center_yxhw
        y0, x0, y1, x1 = a - d / 2, c - e / 2, a + d / 2, c + e / 2
    if rel:
        h, w = float(height), float(width)
        x0, x1, y0, y1 = x0 * w, x1 * w, y0 * h, y1 * h
    return K.stack([x0, y0, x1, y1], axis=-1)


def from_xyxy(boxes, fmt, height, width):
    """Absolute ``xyxy`` boxes ``(..., 4)`` in ``fmt`` (float32)."""
    K = backend.ops()
    x0, y0, x1, y1 = (boxes[..., i] for i in range(4))
    rel = fmt.startswith("rel_")
    base = fmt[4:] if rel else fmt
    if rel:
        h, w = float(height), float(width)
        x0, x1, y0, y1 = x0 / w, x1 / w, y0 / h, y1 / h
    if base == "xyxy":
        parts = [x0, y0, x1, y1]
    elif base == "yxyx":
        parts = [y0, x0, y1, x1]
    elif base == "xywh":
        parts = [x0, y0, x1 - x0, y1 - y0]
    elif base == "center_xywh":
        parts = [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]
    else:
        parts = [(y0 + y1) / 2, (x0 + x1) / 2, y1 - y0, x1 - x0]
    return K.stack(parts, axis=-1)


def _covered(length, start, end):
    """float32 ``(B, N, length)``: pixel ``p`` overlaps ``[start, end)``."""
    K = backend.ops()
    pos = K.cast(K.range(length, dtype="int32"), "float32")
    start, end = K.expand_dims(start, -1), K.expand_dims(end, -1)
    return K.cast((pos + 1.0 > start) & (pos < end), "float32")


def _first_last(flags, length):
    """First and last index (float32) where ``flags`` (B, N, L) is set."""
    K = backend.ops()
    pos = K.cast(K.range(length, dtype="int32"), "float32")
    on = flags > 0.5
    first = K.reduce_min(K.where(on, pos, float(length)), axis=-1)
    last = K.reduce_max(K.where(on, pos, -1.0), axis=-1)
    return first, last


def clip_to_visible(boxes, valid, share, min_visibility):
    """Clips absolute ``xyxy`` boxes to the pixels that remain visible.

    Args:
        boxes: float32 ``(B, N, 4)`` absolute ``xyxy``, inside the image.
        valid: bool ``(B, N)``, False for padding.
        share: float ``(B, H, W)`` in [0, 1], how much of each pixel of the
            mixed example comes from the image the boxes belong to (0: not
            visible).
        min_visibility: drop boxes with a smaller visible fraction of their
            pixels.

    Returns:
        ``(boxes, keep, weight)``: the boxes shrunk to the bounding
        rectangle of their visible pixels (within the original box); bool
        ``(B, N)``, whether each box is kept; and float32 ``(B, N)``, the
        mean share of its visible pixels (1 for a cut, λ for a blend).
    """
    K = backend.ops()
    height, width = backend.dim(share, 1), backend.dim(share, 2)
    share = K.cast(share, "float32")
    visible = K.cast(share > 0.0, "float32")
    x0, y0, x1, y1 = (boxes[..., i] for i in range(4))
    rows = _covered(height, y0, y1)  # (B, N, H)
    cols = _covered(width, x0, x1)  # (B, N, W)
    # Visible pixels of each box per row: (B, N, H) = rows · (cols @ visibleᵀ).
    per_row = K.matmul(cols, K.transpose(visible, [0, 2, 1])) * rows
    per_col = K.matmul(rows, visible) * cols  # (B, N, W)
    shared = K.reduce_sum(K.matmul(cols, K.transpose(share, [0, 2, 1])) * rows, axis=-1)
    count = K.reduce_sum(per_row, axis=-1)
    area = K.reduce_sum(rows, axis=-1) * K.reduce_sum(cols, axis=-1)
    fraction = K.divide_no_nan(count, area)
    keep = valid & (count > 0) & (fraction >= min_visibility)
    r0, r1 = _first_last(per_row, height)
    c0, c1 = _first_last(per_col, width)
    clipped = K.stack(
        [K.maximum(x0, c0), K.maximum(y0, r0), K.minimum(x1, c1 + 1.0), K.minimum(y1, r1 + 1.0)],
        axis=-1,
    )
    return clipped, keep, K.divide_no_nan(shared, count)


def scale_into(boxes, paste, height, width):
    """Absolute ``xyxy`` boxes of a whole image, scaled into the box
    ``paste`` (int32 ``(4, B)``: y0, x0, y1, x1) it was resized into."""
    K = backend.ops()
    py0, px0, py1, px1 = (K.expand_dims(K.cast(p, "float32"), 1) for p in K.unstack(paste))
    sy = (py1 - py0) / float(height)
    sx = (px1 - px0) / float(width)
    x0, y0, x1, y1 = (boxes[..., i] for i in range(4))
    return K.stack([px0 + x0 * sx, py0 + y0 * sy, px0 + x1 * sx, py0 + y1 * sy], axis=-1)
