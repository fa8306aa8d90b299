"""Pure mixing ops on every Keras backend: no Keras state, explicit seeds, XLA-safe."""

from keras_mixup.ops.labels import one_hot, smooth_labels, to_soft_labels
from keras_mixup.ops import pairing
from keras_mixup.ops.mixing import (
    blend,
    blend_ways,
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
    sample_dirichlet,
)
from keras_mixup.ops.pairing import derangement
from keras_mixup.ops.theta import theta_bar

__all__ = [
    "as_seed",
    "blend",
    "blend_ways",
    "derangement",
    "box_mask",
    "flip_pairing",
    "fold_seed",
    "interpolate",
    "log_gamma",
    "one_hot",
    "pairing",
    "random_permutation",
    "sample_beta",
    "sample_dirichlet",
    "segment_mask",
    "smooth_labels",
    "theta_bar",
    "to_soft_labels",
]
