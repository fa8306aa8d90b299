"""Pairings: which examples (or pool entries) each example is mixed with.

A pairing returns int32 partner ids — ``(B,)`` for two-way mixing, or
``(B, k - 1)`` for k-way mixing, column ``j`` the ``j``-th partner — and,
for the label-aware pairings, a bool ``found`` of the same shape, False
where no eligible partner existed (the caller then gives that partner a
weight of 0: the example keeps its own data and label).

Every pairing is stateless, seeded, and compiles with XLA; written once on
`keras_mixup.backend.ops`.

===============  ==========================================================
``derangement``  a uniformly random cyclic order of the batch: each example
                 is mixed with the next one in the cycle, so no example is
                 its own partner (B >= 2), every example is the partner of
                 exactly one other, and each one's partner is uniform over
                 the others. k-way: the next k - 1 in the cycle (distinct).
``permutation``  a uniformly random permutation (the papers' ``randperm``):
                 about one example per batch is its own partner.
                 k-way: k - 1 independent permutations.
``flip``         ``i ↔ B - 1 - i`` (timm); two-way only.
``roll``         ``i ← i - 1`` (torchvision); k-way: ``i - 1, ..., i - k + 1``.
``same_class``   a uniformly random other example of the same class.
``other_class``  a uniformly random example of another class.
``nearest``      the nearest other example (Euclidean, in the mixed
                 representation), or one drawn uniformly among the
                 ``neighbors`` nearest.
``nearest_same_class``  the same, among the examples of the same class
                 (the mixup paper's "SC + KNN" ablation row).
===============  ==========================================================

Example:

>>> ids = np.array([0, 1, 0, 1])
>>> index, found = keras_mixup.ops.pairing.sample_partners(
...     "same_class", 4, seed=0, ids=ids)
>>> keras.ops.convert_to_numpy(index).tolist()
[2, 3, 0, 1]
"""

import numbers

import numpy as np

from keras_mixup import backend
from keras_mixup.ops.random import (
    as_seed,
    check_size,
    flip_pairing,
    fold_seed,
    random_permutation,
    uniform,
)

PAIRINGS = (
    "derangement",
    "permutation",
    "flip",
    "roll",
    "same_class",
    "other_class",
    "nearest",
    "nearest_same_class",
)
LABEL_AWARE = ("same_class", "other_class", "nearest_same_class")
NEAREST = ("nearest", "nearest_same_class")
POOL_PAIRINGS = ("derangement", "permutation", "same_class", "other_class") + NEAREST


def check_pairing(pairing):
    if pairing not in PAIRINGS:
        raise ValueError(
            f"Unknown `pairing` {pairing!r}; valid pairings are "
            f"{', '.join(repr(p) for p in PAIRINGS)}."
        )
    return pairing


def check_ways(ways, maximum=None, name="ways"):
    if isinstance(ways, bool) or not isinstance(ways, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an int >= 2 (how many examples each mixed "
            f"example is made of); got {ways!r}."
        )
    if ways < 2:
        raise ValueError(
            f"`{name}` must be an int >= 2 (how many examples each mixed "
            f"example is made of; 2 is two-way mixup); got {ways}."
        )
    return int(ways)


def check_neighbors(neighbors, batch=None):
    """``neighbors`` must be an int >= 1, and below the batch (or pool)
    size when that is known."""
    if isinstance(neighbors, bool) or not isinstance(neighbors, numbers.Integral):
        raise TypeError(f"`neighbors` must be an int >= 1; got {neighbors!r}.")
    if neighbors < 1:
        raise ValueError(f"`neighbors` must be an int >= 1; got {neighbors}.")
    if isinstance(batch, int) and neighbors >= batch:
        raise ValueError(
            f"`neighbors={neighbors}` must be smaller than the number of "
            f"candidate partners: the batch has {batch} examples, so each has "
            f"{batch - 1} others (a pool has as many entries as its size). "
            "Lower `neighbors` or use a larger batch."
        )
    return int(neighbors)


def derangement(batch_size, seed, ways=2):
    """Partners from a uniformly random cyclic order of the batch.

    Example ``i`` at position ``p`` of a random cycle is mixed with the
    examples at positions ``p + 1, ..., p + k - 1`` (mod B): for B >= 2 no
    example is its own partner, k - 1 < B partners are distinct, and every
    example is used as a partner exactly once per column.

    Example:

    >>> p = keras.ops.convert_to_numpy(keras_mixup.ops.derangement(6, seed=0))
    >>> bool((p != np.arange(6)).all()), sorted(p.tolist())
    (True, [0, 1, 2, 3, 4, 5])
    """
    K = backend.ops()
    check_size(batch_size, "batch_size")
    order = random_permutation(batch_size, seed)  # position -> example
    position = K.argsort(order)  # example -> position
    if ways == 2:
        return K.gather(order, (position + 1) % batch_size)
    return K.gather(order, (K.expand_dims(position, 1) + _steps(ways)) % batch_size)


def _steps(ways):
    return backend.ops().convert_to_tensor(np.arange(1, ways, dtype="int32"))


def permutation(batch_size, seed, ways=2):
    """The papers' pairing: ``ways - 1`` independent random permutations
    (two-way: `random_permutation` itself, self-pairs allowed)."""
    first = random_permutation(batch_size, seed)
    if ways == 2:
        return first
    K = backend.ops()
    more = [random_permutation(batch_size, fold_seed(seed, j)) for j in range(1, ways - 1)]
    return K.stack([first, *more], axis=1)


def roll(batch_size, ways=2):
    """``i ← i - j`` for ``j = 1, ..., ways - 1`` (torchvision's roll)."""
    K = backend.ops()
    check_size(batch_size, "batch_size")
    i = K.range(batch_size, dtype="int32")
    if ways == 2:
        return (i - 1) % batch_size
    return (K.expand_dims(i, 1) - _steps(ways)) % batch_size


def class_ids(labels):
    """One class per example from labels: ids ``(B,)``/``(B, 1)`` (any
    dtype, compared by value) or the arg-max of ``(B, C)`` one-hot, soft or
    multi-hot labels. A nest of labels uses its first leaf."""
    import keras

    K = backend.ops()
    y = K.convert_to_tensor(keras.tree.flatten(labels)[0])
    rank = backend.rank(y)
    if rank == 1:
        return y
    if rank == 2 and y.shape[1] == 1:
        return K.reshape(y, [-1])
    if rank == 2:
        return K.argmax(y, axis=-1)
    raise ValueError(
        "Label-aware pairing needs one class per example: integer ids of "
        "shape (batch,) or (batch, 1), or one-hot labels (batch, classes); "
        f"got labels of shape {tuple(y.shape)}."
    )


def _top(score, k, fill):
    """Column ids of the ``k`` largest scores of each row, and the scores
    (int32 and float ``(B, k)``). Rows shorter than ``k`` (a short last
    batch, a small pool) are padded with ``fill``: padded picks have ids
    ``>= P`` and score ``fill``."""
    K = backend.ops()
    width = score.shape[1]  # static (None in a graph with a dynamic batch)
    if width is None or width < k:
        pad = K.ones([K.batch_size(score), k], "float32") * fill
        score = K.concat([score, pad], axis=1)
    index = K.top_k(score, k)
    return index, K.take_along(score, index)


def draw_among(eligible, ways, seed):
    """For each row of a bool ``(B, P)`` matrix, ``ways - 1`` distinct
    columns drawn uniformly among the True ones.

    Returns ``(index, found)``: int32 and bool, ``(B,)`` for two-way or
    ``(B, ways - 1)``; ``found`` is False where a row had too few eligible
    columns (its ``index`` is then 0, a valid column to give weight 0).
    """
    K = backend.ops()
    u = uniform(K.shape(eligible), as_seed(seed))
    index, score = _top(K.where(eligible, u, -1.0), ways - 1, -1.0)
    found = score >= 0.0
    index = K.where(found, index, 0)
    if ways == 2:
        return index[:, 0], found[:, 0]
    return index, found


def class_pairing(ids, seed, same, ways=2, pool_ids=None):
    """Partners of the same class (``same=True``) or of another class,
    drawn uniformly among the eligible examples (or pool entries); never
    the example itself."""
    K = backend.ops()
    candidates = ids if pool_ids is None else pool_ids
    equal = K.expand_dims(ids, 1) == K.expand_dims(candidates, 0)
    eligible = equal if same else ~equal
    if pool_ids is None:
        n = K.batch_size(ids)
        i = K.range(n, dtype="int32")
        eligible = eligible & (K.expand_dims(i, 1) != K.expand_dims(i, 0))
    return draw_among(eligible, ways, seed)


def _flat(x):
    K = backend.ops()
    import keras

    leaves = [K.cast(K.reshape(t, [K.batch_size(t), -1]), "float32") for t in keras.tree.flatten(x)]
    return leaves[0] if len(leaves) == 1 else K.concat(leaves, 1)


def squared_distances(features, candidates=None):
    """``(B, P)`` squared Euclidean distances between flattened examples
    (``||a||² + ||b||² − 2 a·b``; the diagonal set to +inf when the
    candidates are the batch itself)."""
    K = backend.ops()
    a = _flat(features)
    b = a if candidates is None else _flat(candidates)
    d = (
        K.reduce_sum(a * a, axis=1, keepdims=True)
        + K.expand_dims(K.reduce_sum(b * b, axis=1), 0)
        - 2.0 * K.matmul(a, K.transpose(b))
    )
    if candidates is None:
        i = K.range(K.batch_size(a), dtype="int32")
        d = K.where(K.expand_dims(i, 1) == K.expand_dims(i, 0), float("inf"), d)
    return d


def nearest(features, seed, neighbors=1, ways=2, candidates=None, ids=None, candidate_ids=None):
    """The nearest other example (two-way, ``neighbors=1``), or ``ways - 1``
    distinct partners drawn uniformly among the ``neighbors`` nearest.
    With class ``ids`` (and ``candidate_ids`` for a pool), only candidates
    of the example's own class count.

    Distances are Euclidean on the flattened examples (all leaves of a
    nest, concatenated), computed in float32; among equally distant
    candidates the lower index is nearer. Returns ``(index, found)`` like
    `draw_among`: with fewer candidates than ``neighbors`` (a short last
    batch) the partners are drawn among all of them, and an example with
    none (a batch of one) is not found.
    """
    K = backend.ops()
    m = ways - 1
    if neighbors < m:
        raise ValueError(
            f"`neighbors={neighbors}` is too few to draw {m} distinct partners "
            f"for ways={ways}: pass neighbors >= {m}."
        )
    distances = squared_distances(features, candidates)
    if ids is not None:
        others = ids if candidate_ids is None else candidate_ids
        same = K.expand_dims(ids, 1) == K.expand_dims(others, 0)
        distances = K.where(same, distances, float("inf"))
    near, score = _top(-distances, neighbors, -float("inf"))
    valid = score > -float("inf")  # padding and the example itself are +inf away
    if neighbors == m:
        index, found = near, valid
    else:
        u = uniform(K.shape(near), as_seed(seed))
        pick, picked = _top(K.where(valid, u, -1.0), m, -1.0)
        index, found = K.take_along(near, pick), picked >= 0.0
    index = K.where(found, index, 0)
    if ways == 2:
        return index[:, 0], found[:, 0]
    return index, found


def sample_partners(
    pairing,
    batch_size,
    seed,
    ways=2,
    neighbors=1,
    ids=None,
    features=None,
    pool_size=None,
    pool_ids=None,
    pool_features=None,
):
    """Partners of a batch by the named pairing: ``(index, found)``.

    ``found`` is None when every example has its partners (all pairings
    but the label-aware ones). With ``pool_size`` the partners are entries
    of a pool (ids in ``[0, pool_size)``): ``derangement`` and
    ``permutation`` then draw distinct pool entries uniformly (ids and
    features of the pool serve the label-aware and nearest pairings).

    Args:
        pairing: one of `PAIRINGS`.
        batch_size: B (int or scalar int tensor).
        seed: stateless seed.
        ways: k >= 2 (a Python int).
        neighbors: for ``"nearest"``.
        ids: class of each example ``(B,)`` (label-aware pairings).
        features: the mixed representation (``"nearest"``).
    """
    K = backend.ops()
    same_class_ids = ids if pairing == "nearest_same_class" else None
    if pool_size is not None:
        if pairing in NEAREST:
            return nearest(features, seed, neighbors, ways, pool_features, same_class_ids,
                           pool_ids)
        if pairing in LABEL_AWARE:
            return class_pairing(ids, seed, pairing == "same_class", ways, pool_ids)
        if pairing not in POOL_PAIRINGS:
            raise ValueError(
                f"pairing={pairing!r} orders the batch itself and cannot draw "
                f"from a pool of partners; with `partners=` use one of "
                f"{', '.join(repr(p) for p in POOL_PAIRINGS)}."
            )
        eligible = K.ones([batch_size, pool_size], "float32") > 0
        index, _ = draw_among(eligible, ways, seed)
        return index, None
    if pairing == "derangement":
        return derangement(batch_size, seed, ways), None
    if pairing == "permutation":
        return permutation(batch_size, seed, ways), None
    if pairing == "flip":
        if ways != 2:
            raise ValueError("pairing='flip' pairs examples two by two: use it with ways=2.")
        return flip_pairing(batch_size), None
    if pairing == "roll":
        return roll(batch_size, ways), None
    if pairing in NEAREST:
        return nearest(features, seed, neighbors, ways, ids=same_class_ids)
    if pairing in LABEL_AWARE:
        return class_pairing(ids, seed, pairing == "same_class", ways)
    return check_pairing(pairing)
