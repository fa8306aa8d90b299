"""The boundary of every mixing layer: call forms, validation, label conversion.

A mixing layer is called as ``layer(x, y[, sample_weight])`` or on a dict
(Keras' keys ``"images"``/``"labels"`` or tensorflow-datasets' ``"image"``/
``"label"``). `unpack` normalizes every form to one dict with the canonical
keys ``images``, ``labels``, ``sample_weight``, ``segmentation_masks``, and
returns a function that packs the results back into the caller's form and
keys. Everything a caller can get wrong is checked here, once, before any
tensor is touched, with a message that says what was wrong and what to
pass instead.
"""

import numbers
import sys

import keras

from keras_mixup import backend
from keras_mixup.ops import labels as label_ops

# Accepted dict keys: canonical name -> the names callers use (Keras'
# preprocessing layers first, then tensorflow-datasets').
ALIASES = {
    "images": ("images", "image"),
    "labels": ("labels", "label"),
    "sample_weight": ("sample_weight", "sample_weights"),
    "segmentation_masks": ("segmentation_masks", "segmentation_mask"),
    "bounding_boxes": ("bounding_boxes",),
}
# Keys whose values would have to move with the mixing, under names other
# than Keras': refused rather than passed through unchanged (which would
# silently pair them with the wrong pixels).
_REFUSED = ("boxes", "bbox", "bboxes", "objects")


def _accepted():
    return [name for names in ALIASES.values() for name in names]


def _find(data, canonical, name):
    present = [k for k in ALIASES[canonical] if k in data]
    if len(present) > 1:
        raise ValueError(
            f"{name} got a dict with both {present[0]!r} and {present[1]!r}; "
            f"pass one of them."
        )
    return present[0] if present else None


def unpack(name, inputs, labels, sample_weight, partners=None):
    """Normalizes a call to ``(data, pack)``.

    ``data`` is a dict with canonical keys (``"images"`` always; the others
    when given; ``"partners"``, a pool of partners, as given); ``pack(out)``
    returns the results in the form and with the keys of the call. Dict
    keys that are not mixed (an ``"id"``, a ``"file_name"``) are passed
    through unchanged; a pool is consumed.
    """
    data, pack = _unpack(name, inputs, labels, sample_weight)
    if partners is not None:
        if "partners" in data:
            raise ValueError(
                f"{name} got partners both as the 'partners' key and as the "
                "`partners` argument; pass one."
            )
        data["partners"] = partners
    return data, pack


def _unpack(name, inputs, labels, sample_weight):
    if labels is None and isinstance(inputs, dict):
        keys = {c: _find(inputs, c, name) for c in ALIASES}
        # (Detection data: images and boxes, the boxes' labels the targets.)
        if keys["labels"] is not None or keys["bounding_boxes"] is not None:
            return _unpack_dict(name, inputs, keys, sample_weight)
    if labels is None:
        if sample_weight is not None:
            raise ValueError(
                f"{name} got `sample_weight` without `labels`; call "
                "layer(x, y, sample_weight)."
            )
        return {"images": inputs}, lambda d: d["images"]
    data = {"images": inputs, "labels": labels}
    if sample_weight is None:
        return data, lambda d: (d["images"], d["labels"])
    data["sample_weight"] = sample_weight
    return data, lambda d: (d["images"], d["labels"], d["sample_weight"])


def _unpack_dict(name, inputs, keys, sample_weight):
    if sample_weight is not None:
        raise ValueError(
            f"{name}: pass `sample_weight` inside the dict (key "
            "'sample_weight'), not as a separate argument."
        )
    if keys["images"] is None:
        raise ValueError(
            f"{name} got a dict with labels ({keys['labels']!r}) but no "
            f"images; found keys {sorted(inputs)}. Put the images under "
            "'images' (Keras) or 'image' (tensorflow-datasets)."
        )
    refused = [k for k in inputs if k in _REFUSED]
    if refused:
        raise ValueError(
            f"{name} does not know the key {refused[0]!r}; boxes passed "
            "through unmoved would keep their own example's coordinates "
            "while its pixels are mixed or cut. Pass them as Keras does: "
            "'bounding_boxes': {'boxes': (B, N, 4), 'labels': (B, N)}, with "
            "the layer's `bounding_box_format`; or drop the key before mixing."
        )
    used = {v for v in keys.values() if v is not None}
    extra_labels = [
        k for k in inputs if k not in used and "label" in str(k).lower()
    ]
    if extra_labels:
        raise ValueError(
            f"{name} got a second label key {extra_labels[0]!r} besides "
            f"{keys['labels']!r}; it would pass through unmixed. Drop it, or "
            "mix both as a dict of labels: layer(d['image'], {'label': "
            f"d['label'], {extra_labels[0]!r}: d[{extra_labels[0]!r}]}}) "
            "with `num_classes` a dict of the same keys."
        )
    data = {c: inputs[k] for c, k in keys.items() if k is not None}
    if "partners" in inputs:
        data["partners"] = inputs["partners"]
    order = [k for k in inputs if k != "partners"]

    def pack(out):
        back = {k: out[c] for c, k in keys.items() if k is not None and c in out}
        return {k: back.get(k, inputs[k]) for k in order}

    return data, pack


def missing_labels_message(name, inputs):
    """The error for inputs alone in training mode outside a MixupModel step."""
    found = ""
    if isinstance(inputs, dict):
        found = (
            f" The dict has keys {sorted(map(str, inputs))}; a dict is "
            f"mixed when it holds images and labels under the keys "
            f"{list(ALIASES['images'])} and {list(ALIASES['labels'])} "
            f"(optional: {list(ALIASES['sample_weight'])}, "
            f"{list(ALIASES['segmentation_masks'])}, 'bounding_boxes'; other "
            "keys pass through)."
        )
    return (
        f"{name} was called on inputs alone in training mode, outside a "
        "MixupModel training step: mixing inputs without mixing their labels "
        "would train on wrong targets." + found + " In a tf.data pipeline, "
        f"call it with the labels — `ds.batch(n).map({name}(...))` on (x, y) "
        "elements, `layer(x, y)`, or a dict {'images': x, 'labels': y}. "
        "Inside a model, train with `keras_mixup.MixupModel(model)`, which "
        "mixes the labels to match. With training=False nothing is mixed."
    )


# ------------------------------------------------------------- validation


def _python_values(value):
    """Whether a nest holds plain Python numbers or strings as leaves."""
    return any(
        isinstance(leaf, (numbers.Number, str, bytes))
        for leaf in keras.tree.flatten(value)
    )


def check_value(value, role, name):
    """Checks one argument of a call (a tensor, array or nest of them).

    Refuses, with the fix in the message: plain Python lists and numbers,
    ragged and sparse tensors, strings, and tensors without a batch axis.
    """
    if value is None:
        return
    tf = sys.modules.get("tensorflow")
    if isinstance(value, (list, tuple)) and _python_values(value):
        raise TypeError(
            f"{name} got {role} as a Python {type(value).__name__} of "
            "numbers; pass an array or tensor instead, e.g. "
            f"`np.asarray({role.split()[0]})`. (A list or tuple of arrays is "
            "taken as several " + ("model inputs" if role == "inputs" else "tensors")
            + ".)"
        )
    for leaf in keras.tree.flatten(value):
        if tf is not None and isinstance(leaf, getattr(tf, "RaggedTensor", ())):
            raise TypeError(
                f"{name} got {role} as a tf.RaggedTensor: mixing pairs "
                "examples of one shape. Make the batch dense first — resize "
                "images to one size before `batch()` (`tf.image.resize`), or "
                "pad: `x.to_tensor()`."
            )
        if tf is not None and isinstance(leaf, getattr(tf, "SparseTensor", ())):
            raise TypeError(
                f"{name} got {role} as a tf.SparseTensor; mixing needs dense "
                "tensors: `tf.sparse.to_dense(x)`."
            )
        if isinstance(leaf, (numbers.Number, str, bytes)) or not (
            hasattr(leaf, "shape") and hasattr(leaf, "dtype")
        ):
            raise TypeError(
                f"{name} mixes tensors or arrays; got {role} of type "
                f"{type(leaf).__name__}. Convert it first, e.g. "
                "`np.asarray(x, 'float32')`."
            )
        try:
            dtype = backend.dtype_name(leaf)
            numeric = dtype == "bool" or keras.backend.is_float_dtype(dtype) or (
                keras.backend.is_int_dtype(dtype))
        except ValueError:  # a dtype Keras does not know (<U1, object...)
            dtype, numeric = str(leaf.dtype), False
        if not numeric:
            raise TypeError(
                f"{name} got {role} of dtype {dtype}; it mixes numbers. "
                "Decode or encode them first (image bytes with "
                "`tf.io.decode_image`, class names with a lookup table)."
            )
        if backend.rank(leaf) == 0:
            raise ValueError(
                f"{name} got {role} without a batch axis (a scalar): it mixes "
                "the examples of a batch, so batch the dataset before "
                "mapping the layer: `ds.batch(n).map(layer)`."
            )


def check_call(name, args, kwargs):
    """`check_value` on the arguments of ``layer(...)`` before Keras sees them."""
    names = ("inputs", "labels", "sample_weight")
    values = dict(zip(names, args))
    values.update({k: v for k, v in kwargs.items() if k in names})
    inputs = values.get("inputs")
    if inputs is None:
        raise TypeError(
            f"{name} got no inputs (None); call layer(x, y) with a batch of "
            "inputs and its labels."
        )
    if values.get("labels") is None and isinstance(inputs, dict):
        if any(k in inputs for k in ALIASES["labels"] + ALIASES["bounding_boxes"]):
            # The dict form: check what is mixed; other keys pass through.
            for key, value in inputs.items():
                if key == "bounding_boxes" and isinstance(value, dict):
                    for k, v in value.items():
                        check_value(v, f"bounding_boxes[{k!r}]", name)
                elif any(key in aliases for aliases in ALIASES.values()):
                    check_value(value, f"{key!r}", name)
        # (A dict without labels: model inputs at a site, checked there.)
        return
    for key in names:
        check_value(values.get(key), key, name)


def check_images(name, images):
    """The base checks of the tensors to mix: a batch axis and a feature axis."""
    leaves = keras.tree.flatten(images)
    if not leaves:
        raise ValueError(f"{name} got no input tensors to mix.")
    for x in leaves:
        check_value(x, "inputs", name)
        rank = backend.rank(x)
        if rank is not None and rank < 2:
            raise ValueError(
                f"{name} mixes batches: inputs need a batch axis and at "
                f"least one feature axis; got shape {tuple(x.shape)}. If "
                "the dataset is not batched, batch it before mapping the "
                "layer: `ds.batch(n).map(layer)`."
            )


# ----------------------------------------------------------------- labels


def num_classes_for(num_classes, labels):
    """``num_classes`` per label leaf: one value for all, or a dict by key."""
    if not isinstance(num_classes, dict):
        return keras.tree.map_structure(lambda _: num_classes, labels)
    if not isinstance(labels, dict) or set(labels) != set(num_classes):
        shown = sorted(labels) if isinstance(labels, dict) else type(labels).__name__
        raise ValueError(
            "`num_classes` is a dict, so the labels must be a dict with the "
            f"same keys {sorted(num_classes)}; got labels {shown}."
        )
    return {k: num_classes[k] for k in labels}


def check_num_classes(num_classes):
    """An int, None, or a dict of them (one per label of a dict of labels)."""
    if isinstance(num_classes, dict):
        return {k: label_ops.check_num_classes(v) for k, v in num_classes.items()}
    return label_ops.check_num_classes(num_classes)


def to_soft_labels(labels, num_classes, label_smoothing):
    """Every label leaf as the float32 targets mixing interpolates."""
    per_leaf = num_classes_for(num_classes, labels)
    return keras.tree.map_structure(
        lambda y, n: label_ops.to_soft_labels(y, n, label_smoothing), labels, per_leaf
    )


def label_shapes(labels, num_classes):
    """The shapes `to_soft_labels` gives, for `compute_output_spec`."""
    per_leaf = num_classes_for(num_classes, labels)

    def shape(y, n):
        if label_ops.is_class_ids(y):
            return (y.shape[0], n)
        return tuple(y.shape)

    return keras.tree.map_structure(shape, labels, per_leaf)


# ---------------------------------------------------------- shapes, masks


def _static_batch(t):
    return t.shape[0] if backend.rank(t) else None


def check_batch_sizes(name, data):
    """Every tensor holds the same examples (statically, and in a TF graph)."""
    first = keras.tree.flatten(data["images"])[0]
    parts = [("inputs", x) for x in keras.tree.flatten(data["images"])[1:]]
    for key in ("labels", "sample_weight", "segmentation_masks", "bounding_boxes"):
        if key in data:
            parts += [(key, t) for t in keras.tree.flatten(data[key])]
    static = _static_batch(first)
    for what, t in parts:
        other = _static_batch(t)
        if static is not None and other is not None and static != other:
            raise ValueError(
                f"{name}: {what} have batch size {other} but the inputs have "
                f"{static}; every tensor must hold the same examples. Batch "
                "inputs and labels together, e.g. "
                "`tf.data.Dataset.from_tensor_slices((x, y)).batch(n)` (an "
                "unbatched dataset mapped with the layer fails this way too)."
            )
    target = "labels" if "labels" in data else "bounding_boxes"
    data[target] = _graph_asserts(
        data[target],
        [(f"{name}: {what} and inputs have different batch sizes", t, 0, first, 0)
         for what, t in parts],
    )


def _graph_asserts(value, checks):
    """``value`` after asserting ``tf.shape(a)[i] == tf.shape(b)[j]`` for
    each check in a TF graph (dynamic shapes only; XLA drops them, and JAX
    shapes are always static)."""
    K = backend.ops()
    if K.NAME != "tensorflow" or K.executing_eagerly() or not checks:
        return value
    import tensorflow as tf

    # tf.Assert on one comparison: a third of the graph nodes of
    # tf.debugging.assert_equal, which a tf.data map instantiates again on
    # every new iterator (every epoch).
    ops = [
        tf.debugging.Assert(tf.equal(tf.shape(a)[i], tf.shape(b)[j]), [message])
        for message, a, i, b, j in checks
    ]
    with tf.control_dependencies(ops):
        return keras.tree.map_structure(tf.identity, value)


def check_mask_shape(name, masks, images, data_format):
    """Segmentation masks cover the images' spatial axes exactly (for
    methods that cut: a blend needs only the batch axis). Returns the masks
    (with a run-time check attached in a TF graph of unknown sizes)."""
    if isinstance(images, (dict, list, tuple)):
        raise ValueError(
            f"{name}: segmentation masks need a single image tensor, not a "
            "nest of inputs."
        )
    rank, mask_rank = backend.rank(images), backend.rank(masks)
    if rank is None or mask_rank is None:
        return masks
    first = 1 if data_format == "channels_last" else 2
    spatial = list(range(first, first + rank - 2))
    if mask_rank == rank:
        mask_spatial = spatial
    elif mask_rank == rank - 1:
        mask_spatial = list(range(1, rank - 1))
    else:
        raise ValueError(
            f"{name}: segmentation masks of shape {tuple(masks.shape)} do not "
            f"match images of shape {tuple(images.shape)}: pass masks shaped "
            "like the images, with or without the channel axis."
        )
    checks = []
    for i, j in zip(mask_spatial, spatial):
        a, b = masks.shape[i], images.shape[j]
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"{name}: segmentation masks of shape {tuple(masks.shape)} do "
                f"not cover images of shape {tuple(images.shape)} (spatial "
                "sizes differ). Resize the masks with the images, with "
                "nearest-neighbour interpolation for class maps "
                "(`tf.image.resize(m, size, method='nearest')`)."
            )
        if a is None or b is None:
            checks.append((f"{name}: segmentation masks and images differ in size", masks, i, images, j))
    return _graph_asserts(masks, checks)
