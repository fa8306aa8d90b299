"""Partner pools: mixing a batch with examples that are not in it.

``layer(x, y, partners=(x_pool, y_pool))`` mixes each example with entries
of a supplied pool — FedMix's per-client means ("NaiveMix"), a memory
bank, a class-balanced reservoir — drawn by the layer's pairing
(``"derangement"``/``"permutation"``: uniformly; the label-aware pairings
and ``"nearest"`` read the pool's labels and inputs). This module checks a
pool against the batch and converts its labels the way the batch's are.
"""

import keras

from keras_mixup import backend
from keras_mixup.layers import inputs as boundary
from keras_mixup.ops.pairing import NEAREST, POOL_PAIRINGS


def _split(name, pool):
    """``(images, labels, sample_weight)`` of a pool given as a tuple or a
    dict (the layer's dict keys)."""
    if isinstance(pool, dict):
        keys = {c: boundary._find(pool, c, name) for c in boundary.ALIASES}
        unknown = [k for k in pool if k not in {v for v in keys.values() if v}]
        if keys["images"] is None or unknown:
            raise ValueError(
                f"{name}: a dict of partners needs 'images' (and 'labels', "
                f"optionally 'sample_weight'); got keys {sorted(pool)}."
            )
        get = lambda c: pool[keys[c]] if keys[c] is not None else None  # noqa: E731
        return get("images"), get("labels"), get("sample_weight")
    if isinstance(pool, (tuple, list)) and len(pool) in (2, 3):
        return (*pool, None) if len(pool) == 2 else tuple(pool)
    if isinstance(pool, (tuple, list)):
        raise ValueError(
            f"{name}: `partners` must be (x_pool, y_pool) or (x_pool, y_pool, "
            f"w_pool); got a sequence of {len(pool)}."
        )
    return pool, None, None


def _static(t, axis):
    return backend.dim(t, axis)


def prepare(layer, pool, data, training=True):
    """Checks a pool against the prepared batch ``data`` and returns it as
    ``{"images", "labels"[, "sample_weight"]}`` with labels converted like
    the batch's (one-hot float32)."""
    name = type(layer).__name__
    K = backend.ops()
    if layer.pairing not in POOL_PAIRINGS:
        raise ValueError(
            f"{name}(pairing={layer.pairing!r}) orders the batch itself and "
            "cannot draw from a pool of partners; with `partners=` use "
            f"{', '.join(repr(p) for p in POOL_PAIRINGS)}."
        )
    if "segmentation_masks" in data:
        raise ValueError(
            f"{name} cannot mix segmentation masks with a pool of partners "
            "(the pool has none); drop the masks or the pool."
        )
    images, labels, weights = _split(name, pool)
    boundary.check_value(images, "partners (inputs)", name)
    try:
        keras.tree.assert_same_structure(images, data["images"])
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: the pool's inputs must be structured like the batch's "
            "(the same nest of tensors)."
        ) from None
    leaves = [K.convert_to_tensor(t) for t in keras.tree.flatten(images)]
    size = None
    for p, x in zip(leaves, keras.tree.flatten(data["images"])):
        if tuple(p.shape[1:]) != tuple(x.shape[1:]) and None not in tuple(p.shape[1:]) + tuple(x.shape[1:]):
            raise ValueError(
                f"{name}: pool entries have shape {tuple(p.shape[1:])} but the "
                f"batch's examples have {tuple(x.shape[1:])}; a partner must "
                "look like an example."
            )
        if backend.is_float(p) != backend.is_float(x):
            raise TypeError(
                f"{name}: the pool's inputs are {backend.dtype_name(p)} but the "
                f"batch's are {backend.dtype_name(x)}; pass both as floats (or "
                "both uint8)."
            )
        size = _static(p, 0) if size is None else size
    layer._check_inputs(keras.tree.pack_sequence_as(images, leaves))
    if size is not None and size < max(layer.ways - 1, 1):
        raise ValueError(
            f"{name}: a pool of {size} cannot give {layer.ways - 1} distinct "
            f"partners (ways={layer.ways}); pass at least {layer.ways - 1} entries."
        )
    if layer.pairing in NEAREST and size is not None and layer.neighbors > size:
        raise ValueError(
            f"{name}: `neighbors={layer.neighbors}` is more than the pool's "
            f"{size} entries."
        )
    out = {"images": keras.tree.pack_sequence_as(images, leaves)}
    if labels is None:
        if layer.mix != "inputs":
            raise ValueError(
                f"{name} mixes labels, so the pool needs its labels: pass "
                "partners=(x_pool, y_pool) (or mix='inputs' to mix inputs only)."
            )
        if layer._label_aware():
            raise ValueError(
                f"pairing={layer.pairing!r} needs the pool's labels: pass "
                "partners=(x_pool, y_pool)."
            )
    else:
        boundary.check_value(labels, "partners (labels)", name)
        converted = boundary.to_soft_labels(
            labels, layer.num_classes, layer.label_smoothing if training else 0.0
        )
        try:
            keras.tree.assert_same_structure(converted, data["labels"])
        except (TypeError, ValueError):
            raise ValueError(
                f"{name}: the pool's labels must be structured like the batch's."
            ) from None
        for p, y in zip(keras.tree.flatten(converted), keras.tree.flatten(data["labels"])):
            if tuple(p.shape[1:]) != tuple(y.shape[1:]):
                raise ValueError(
                    f"{name}: the pool's labels convert to shape "
                    f"{tuple(p.shape[1:])} per entry but the batch's to "
                    f"{tuple(y.shape[1:])}: give both the same format (class "
                    "ids with the same `num_classes`, or one-hot of the same "
                    "width)."
                )
            if size is not None and _static(p, 0) not in (None, size):
                raise ValueError(
                    f"{name}: the pool has {size} inputs but {_static(p, 0)} labels."
                )
        out["labels"] = converted
    if weights is not None:
        if "sample_weight" not in data:
            raise ValueError(
                f"{name}: the pool has sample weights but the batch has none; "
                "pass the batch's too (layer(x, y, w, partners=...)) or drop them."
            )
        w = K.cast(K.convert_to_tensor(weights), "float32")
        if backend.rank(w) != backend.rank(data["sample_weight"]):
            w = K.reshape(w, [-1] + [1] * (backend.rank(data["sample_weight"]) - 1))
        out["sample_weight"] = w
    return out


def pool_weights(pool, sample_weight):
    """The pool's sample weights, or ones (a pool entry counts as 1) when a
    pool without weights mixes with a weighted batch; None without a pool."""
    if not pool:
        return None
    if "sample_weight" in pool:
        return pool["sample_weight"]
    K = backend.ops()
    size = K.batch_size(keras.tree.flatten(pool["images"])[0])
    shape = [size] + [1] * (backend.rank(sample_weight) - 1)
    return K.ones(shape, "float32")
