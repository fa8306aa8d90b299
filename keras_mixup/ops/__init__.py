"""Pure mixing ops on every Keras backend: no Keras state, explicit seeds, XLA-safe."""

from keras_mixup.ops.labels import one_hot, smooth_labels, to_soft_labels
from keras_mixup.ops.mixing import (
    blend,
    box_mask,
    interpolate,
    segment_mask,
)
from keras_mixup.ops.random import (
    as_seed,
    flip_pairing,
    fold_seed,
    log_gamma,
    random_permutation,
    sample_beta,
)
from keras_mixup.ops.theta import theta_bar

__all__ = [
    "as_seed",
    "blend",
    "box_mask",
    "flip_pairing",
    "fold_seed",
    "interpolate",
    "log_gamma",
    "one_hot",
    "random_permutation",
    "sample_beta",
    "segment_mask",
    "smooth_labels",
    "theta_bar",
    "to_soft_labels",
]
