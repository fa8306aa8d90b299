"""Label helpers: class ids to one-hot, label smoothing. Outputs are float32."""

import numbers

import numpy as np

from keras_mixup import backend


def is_class_ids(labels):
    """Whether ``labels`` are integer class ids, shape ``(B,)`` or ``(B, 1)``."""
    rank = backend.rank(labels)
    return backend.is_int(labels) and (
        rank == 1 or (rank == 2 and labels.shape[-1] == 1)
    )


def check_label_smoothing(label_smoothing):
    """Raises unless ``0 <= label_smoothing < 1``; returns it as a float."""
    if isinstance(label_smoothing, bool) or not isinstance(
        label_smoothing, numbers.Real
    ):
        raise TypeError(
            "`label_smoothing` must be a float in [0, 1); got "
            f"{label_smoothing!r}."
        )
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(
            "`label_smoothing` must be in [0, 1) (0.1 is a common choice; 0 "
            f"disables it); got {label_smoothing}."
        )
    return float(label_smoothing)


def check_num_classes(num_classes):
    """Raises unless ``num_classes`` is None or an int >= 1."""
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(
        num_classes, numbers.Integral
    ) or num_classes < 1:
        raise ValueError(
            "`num_classes` must be a positive int (the number of classes "
            f"your integer labels index into); got {num_classes!r}."
        )
    return int(num_classes)


def one_hot(labels, num_classes):
    """Integer class ids ``(B,)`` or ``(B, 1)`` to float32 one-hot ``(B, C)``.

    Out-of-range ids raise: a ``ValueError`` in eager mode, an
    ``InvalidArgumentError`` in a graph (``tf.function``, ``tf.data``). XLA
    drops graph assertions, so under ``jit_compile=True`` the rows of
    out-of-range ids are filled with NaN instead of zeros: the loss turns NaN
    at once rather than training silently on empty targets.

    Example:

    >>> keras.ops.convert_to_numpy(keras_mixup.ops.one_hot([2, 0], num_classes=3))
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    num_classes = check_num_classes(num_classes)
    if num_classes is None:
        raise ValueError(
            "Integer labels are class ids: pass `num_classes` so they can be "
            "turned into one-hot vectors (or pass one-hot float labels)."
        )
    K = backend.ops()
    labels = K.convert_to_tensor(labels)
    if not backend.is_int(labels):
        raise TypeError(
            "`one_hot` expects integer class ids; got dtype "
            f"{backend.dtype_name(labels)}."
        )
    if backend.rank(labels) == 2 and labels.shape[-1] == 1:
        labels = labels[:, 0]
    if backend.rank(labels) != 1:
        raise ValueError(
            "Integer class-id labels must have shape (batch,) or (batch, 1); "
            f"got shape {tuple(labels.shape)}."
        )
    ids = K.cast(labels, "int32")
    valid = (ids >= 0) & (ids < num_classes)
    message = (
        f"Labels must be class ids in [0, {num_classes}) for "
        f"num_classes={num_classes}; found an id outside that range. Check "
        "`num_classes`, or shift 1-based labels to 0-based."
    )
    known = K.concrete(ids)
    if known is not None:
        bad = known[(known < 0) | (known >= num_classes)]
        if bad.size:
            raise ValueError(f"{message} Offending ids: {bad.tolist()[:5]}.")
    elif K.NAME == "tensorflow":
        import tensorflow as tf

        check = tf.debugging.Assert(tf.reduce_all(valid), [message, ids])
        with tf.control_dependencies([check]):
            ids = tf.identity(ids)
    out = K.one_hot(ids, num_classes)
    # Graph assertions vanish under XLA and jax.jit: rows of out-of-range ids
    # become NaN, so the loss turns NaN at once instead of training silently.
    nan = K.convert_to_tensor(np.float32("nan"))
    nan_rows = K.where(valid, K.zeros_like(nan), nan)[:, None]
    return out + nan_rows


def smooth_labels(labels, label_smoothing):
    """``y·(1 − ε) + ε / C`` on float labels of shape ``(..., C)``.

    Example:

    >>> keras.ops.convert_to_numpy(keras_mixup.ops.smooth_labels([[0.0, 1.0]], 0.2)).round(6)
    array([[0.1, 0.9]], dtype=float32)
    """
    K = backend.ops()
    label_smoothing = check_label_smoothing(label_smoothing)
    labels = K.cast(labels, "float32")
    if label_smoothing == 0.0:
        return labels
    num_classes = K.cast(K.shape(labels)[-1], "float32")
    return labels * (1.0 - label_smoothing) + label_smoothing / num_classes


def to_soft_labels(labels, num_classes=None, label_smoothing=0.0):
    """Converts labels to the float32 targets that mixing interpolates.

    - integer ``(B,)`` / ``(B, 1)``: class ids, one-hot with ``num_classes``;
    - integer ``(B, C)`` with ``C > 1``: one-/multi-hot, cast;
    - float or bool ``(B, C)``: one-hot, soft or multi-hot, cast to float32;
    - float or bool ``(B,)`` or any other shape: targets (regression,
      binary), cast to float32 (label smoothing needs a class axis, so it
      is refused). With ``num_classes`` set such labels are refused: class
      ids must be integers (a float id would be blended as a number).

    Label smoothing is applied to class targets before mixing.

    Example:

    >>> keras.ops.convert_to_numpy(
    ...     keras_mixup.ops.to_soft_labels([1], num_classes=2, label_smoothing=0.1))
    array([[0.05, 0.95]], dtype=float32)
    """
    num_classes = check_num_classes(num_classes)
    label_smoothing = check_label_smoothing(label_smoothing)
    K = backend.ops()
    labels = K.convert_to_tensor(labels)
    rank = backend.rank(labels)
    dtype = backend.dtype_name(labels)
    if is_class_ids(labels):
        out = one_hot(labels, num_classes)
    elif backend.is_int(labels):
        if rank != 2:
            raise ValueError(
                "Integer labels must be class ids of shape (batch,) or "
                "(batch, 1), or one-/multi-hot of shape (batch, classes); got "
                f"shape {tuple(labels.shape)}."
            )
        if num_classes is not None and labels.shape[-1] not in (None, num_classes):
            raise ValueError(
                f"Labels of shape {tuple(labels.shape)} do not match "
                f"num_classes={num_classes}."
            )
        out = K.cast(labels, "float32")
    elif backend.is_float(labels) or dtype == "bool":
        if num_classes is not None and rank == 1:
            raise ValueError(
                f"Labels of dtype {dtype} and shape {tuple(labels.shape)} with "
                f"num_classes={num_classes}: class ids must be integers, or "
                "they would be blended as numbers (ids 1 and 3 mixed half "
                "and half would become id 2). Cast them: `tf.cast(y, "
                "'int32')`. If they are regression targets or binary "
                "probabilities, leave `num_classes` unset."
            )
        if (
            num_classes is not None
            and rank is not None
            and rank >= 2
            and labels.shape[-1] not in (None, num_classes)
        ):
            ids = " (float class ids? cast them to int)" if labels.shape[-1] == 1 else ""
            raise ValueError(
                f"Labels of shape {tuple(labels.shape)} do not match "
                f"num_classes={num_classes}: the last axis should have "
                f"{num_classes} entries{ids}. For several labels (a dict) "
                "with different class counts, pass `num_classes` as a dict "
                "with the same keys (None for float targets)."
            )
        out = K.cast(labels, "float32")
    else:
        raise TypeError(
            f"Labels of dtype {dtype} cannot be mixed: pass class "
            "ids (int) with `num_classes`, or float one-hot / soft targets."
        )
    if label_smoothing:
        if backend.rank(out) is None or backend.rank(out) < 2:
            raise ValueError(
                "`label_smoothing` needs class labels (integer ids with "
                "`num_classes`, or one-hot of shape (batch, classes)); got "
                f"float labels of shape {tuple(labels.shape)}, which look "
                "like regression targets. Set label_smoothing=0."
            )
        out = smooth_labels(out, label_smoothing)
    return out
