"""What the compiled loss is: sparse or not, classification or not, and how
it reduces — what `MixupModel` and `MixupE` must know to mix correctly.

Read from ``model.loss`` (the argument given to ``compile``: a string, a
function, a ``keras.losses.Loss``, or a list/dict of them per output).
"""

import keras

_SPARSE = ("sparse_categorical_crossentropy",)
_CATEGORICAL = (
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "categorical_focal_crossentropy",
    "kl_divergence",
    "kld",
)


def name_of(loss):
    """A snake_case name for a loss given as a string, function or object."""
    if isinstance(loss, str):
        name = loss
    else:
        fn = getattr(loss, "fn", None)  # keras.losses.LossFunctionWrapper
        name = getattr(fn, "__name__", None) or getattr(loss, "__name__", None)
        if name is None:
            name = getattr(loss, "name", None) or type(loss).__name__
    name = str(name)
    # CamelCase class names to snake_case.
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(c.lower())
    return "".join(out)


def flat_losses(model):
    """The losses given to ``compile``, flattened (empty when none)."""
    loss = getattr(model, "loss", None)
    if loss is None:
        return []
    return [l for l in keras.tree.flatten(loss) if l is not None]


def is_sparse(loss):
    """Whether ``loss`` takes integer class ids (sparse categorical CE)."""
    return name_of(loss) in _SPARSE


def is_categorical(loss):
    """Whether ``loss`` compares a class distribution with the outputs."""
    return name_of(loss) in _CATEGORICAL


def is_known(loss):
    """Whether ``loss`` is one of Keras' built-in losses."""
    name = name_of(loss)
    try:
        keras.losses.get(name)
    except (ValueError, TypeError):
        return False
    return True


def reduction(loss):
    """The reduction of a loss; Keras' default for strings and functions."""
    return getattr(loss, "reduction", "sum_over_batch_size")


def sparse_structure(model, y):
    """For each label leaf of ``y``, whether its loss is sparse: a nest of
    bools shaped like ``y`` (False where the pairing is unclear)."""
    loss = getattr(model, "loss", None)
    if loss is None:
        return keras.tree.map_structure(lambda _: False, y)
    if not isinstance(y, (dict, list, tuple)):
        losses = flat_losses(model)
        return len(losses) == 1 and is_sparse(losses[0])
    if isinstance(loss, dict) and isinstance(y, dict):
        return {k: k in loss and is_sparse(loss[k]) for k in y}
    if isinstance(loss, (list, tuple)) and isinstance(y, (list, tuple)) and len(loss) == len(y):
        return type(y)(is_sparse(l) for l in loss)
    if not isinstance(loss, (dict, list, tuple)):  # one loss for every output
        return keras.tree.map_structure(lambda _: is_sparse(loss), y)
    return keras.tree.map_structure(lambda _: False, y)
