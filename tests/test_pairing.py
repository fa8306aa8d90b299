"""Pairings, k-way (Dirichlet) mixing, partner pools and `mix=` modes.

Runs on every backend (TensorFlow and JAX). Statistical checks draw many
plans in one compiled loop (`keras.ops.map` under `xla`) with fixed seeds;
their tolerances come from the sampling distributions (chi-square and
Kolmogorov-Smirnov p-values above 1e-3).
"""

import keras
import numpy as np
import pytest
import scipy.stats

import keras_mixup
from keras_mixup import backend, ops
from keras_mixup.layers import CutMix, MixUp, RandomMix
from keras_mixup.ops import pairing as pairings
from tests.conftest import BACKEND, id_rows_plan, xla


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def seeds(n):
    rows = np.stack([np.arange(n) // 1000, np.arange(n) % 1000], axis=1)
    return keras.ops.cast(rows, backend.ops().SEED_DTYPE)


def many(fn, n):
    """``fn(seed)`` for ``n`` seeds, in one compiled loop."""
    return to_np(xla(lambda ss: keras.ops.map(fn, ss))(seeds(n)))


def plan_np(plan):
    return {k: to_np(v) for k, v in plan.items()}


# ------------------------------------------------------------------ pairings


def test_derangement_has_no_fixed_points_and_a_uniform_partner():
    batch, n = 6, 6000
    p = many(lambda s: ops.derangement(batch, s), n)
    assert (p != np.arange(batch)).all()
    # Each example is the partner of exactly one other (a permutation).
    assert (np.sort(p, axis=1) == np.arange(batch)).all()
    # The partner of example 0 is uniform over the 5 others.
    counts = np.bincount(p[:, 0], minlength=batch)
    assert counts[0] == 0
    assert scipy.stats.chisquare(counts[1:]).pvalue > 1e-3
    # And the pair (i, partner) is uniform over all ordered pairs i != j.
    pairs = np.zeros((batch, batch))
    for row in p:
        pairs[np.arange(batch), row] += 1
    off = pairs[~np.eye(batch, dtype=bool)]
    assert scipy.stats.chisquare(off).pvalue > 1e-3


def test_k_way_derangement_partners_are_distinct_and_never_self():
    p = many(lambda s: ops.derangement(7, s, ways=4), 200)  # (n, 7, 3)
    assert p.shape == (200, 7, 3)
    full = np.concatenate([np.broadcast_to(np.arange(7)[:, None], (200, 7, 1)), p], axis=2)
    assert all(len(set(r)) == 4 for r in full.reshape(-1, 4))
    for j in range(3):  # each column is a permutation
        assert (np.sort(p[:, :, j], axis=1) == np.arange(7)).all()


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_derangement_small_batches(batch):
    p = to_np(ops.derangement(batch, seed=3))
    if batch == 1:
        assert p.tolist() == [0]
    else:
        assert (p != np.arange(batch)).all()


def test_permutation_pairs_some_examples_with_themselves():
    # The papers' randperm: P(no fixed point) ≈ 1/e for B = 32.
    p = many(lambda s: pairings.permutation(32, s), 400)
    has_fixed = (p == np.arange(32)).any(axis=1).mean()
    assert 0.5 < has_fixed < 0.75  # 1 - 1/e ≈ 0.632, sd ≈ 0.024


def test_flip_and_roll_are_exact():
    assert to_np(pairings.flip_pairing(5)).tolist() == [4, 3, 2, 1, 0]
    assert to_np(pairings.roll(5)).tolist() == [4, 0, 1, 2, 3]
    assert to_np(pairings.roll(4, ways=3)).tolist() == [[3, 2], [0, 3], [1, 0], [2, 1]]


def test_same_and_other_class_partners():
    ids = np.array([0, 1, 0, 2, 1, 0, 2, 1], "int32")
    for same in (True, False):
        out = many(lambda s: keras.ops.stack(pairings.class_pairing(ids, s, same), 0), 300)
        index, found = out[:, 0].astype(int), out[:, 1].astype(bool)
        assert found.all()
        assert (index != np.arange(8)).all()
        assert ((ids[index] == ids) == same).all()
    # Uniform among the eligible: example 0's same-class partners are 2 and 5.
    out = many(lambda s: pairings.class_pairing(ids, s, True)[0], 2000)
    counts = np.bincount(out[:, 0], minlength=8)
    assert counts[[2, 5]].sum() == 2000
    assert scipy.stats.binomtest(int(counts[2]), 2000).pvalue > 1e-3


def test_class_pairing_without_an_eligible_partner_is_not_found():
    index, found = pairings.class_pairing(np.array([0, 1, 1, 1]), 0, same=True)
    assert to_np(found).tolist() == [False, True, True, True]
    index, found = pairings.class_pairing(np.array([2, 2, 2]), 0, same=False)
    assert not to_np(found).any()


def test_nearest_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5, 3)).astype("float32")
    index, found = pairings.nearest(x, 0)
    got = to_np(index)
    assert to_np(found).all()
    flat = x.reshape(32, -1).astype(np.float64)
    d = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    # Ties are measure-zero here; allow float32 rounding of near-ties.
    assert np.allclose(d[np.arange(32), got], d.min(1), rtol=1e-4)
    assert (got == d.argmin(1)).mean() > 0.95


def test_nearest_with_neighbors_draws_among_the_k_nearest():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 4)).astype("float32")
    d = ((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    top3 = np.argsort(d, axis=1)[:, :3]
    got = many(lambda s: pairings.nearest(x, s, neighbors=3)[0], 600)
    assert all(got[t, i] in top3[i] for t in range(600) for i in range(16))
    counts = np.array([[np.sum(got[:, i] == j) for j in top3[i]] for i in range(16)])
    assert scipy.stats.chisquare(counts.ravel().reshape(16, 3), axis=1).pvalue.min() > 1e-4
    k_way = to_np(pairings.nearest(x, 0, neighbors=3, ways=3)[0])
    assert all(set(r) <= set(t) and len(set(r)) == 2 for r, t in zip(k_way, top3))


def test_nearest_same_class_matches_brute_force_within_the_class():
    # The mixup paper's "SC + KNN": the nearest other example of the same
    # class, even when an example of another class is nearer; an example
    # alone in its class has no partner.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 6)).astype("float32")
    ids = rng.integers(0, 4, size=40)
    ids[-1] = 9  # alone in its class
    index, found = pairings.sample_partners("nearest_same_class", 40, 0, ids=ids, features=x)
    got, found = to_np(index), to_np(found)
    d = ((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    d_same = np.where(ids[:, None] == ids[None], d, np.inf)
    assert found.tolist() == [True] * 39 + [False]
    assert (ids[got[:39]] == ids[:39]).all()
    assert np.allclose(d[np.arange(39), got[:39]], d_same.min(1)[:39], rtol=1e-4)
    assert (d.argmin(1) != d_same.argmin(1)).sum() > 10  # the class restriction mattered
    # Through a layer, from a pool: the nearest pool entry of the same class.
    pool_x = np.array([[0.0], [10.0], [20.0], [30.0]], "float32")
    pool_y = np.array([0, 1, 0, 1])
    layer = MixUp(alpha=1.0, pairing="nearest_same_class", num_classes=2, seed=0)
    plan = plan_np(layer.sample_plan(
        np.array([[1.0], [19.0], [29.0]], "float32"), ops.as_seed(0),
        {"labels": keras.ops.one_hot(np.array([1, 0, 0]), 2),
         "partners": {"images": pool_x, "labels": keras.ops.one_hot(pool_y, 2)}}))
    assert plan["index"].tolist() == [1, 2, 2]
    with pytest.raises(ValueError, match="labels"):
        layer(np.zeros((4, 1), "float32"))


# ------------------------------------------------------------------ k-way


def test_dirichlet_sums_to_one_and_own_weight_is_beta():
    alpha, k = 0.7, 4
    w = to_np(ops.sample_dirichlet([20_000], k, alpha, seed=5))
    assert np.allclose(w.sum(1), 1.0, atol=1e-5) and (w >= 0).all()
    for j in range(k):
        ks = scipy.stats.kstest(w[:, j], scipy.stats.beta(alpha, (k - 1) * alpha).cdf)
        assert ks.pvalue > 1e-3


def test_two_way_mixup_plan_is_the_papers_plan_bit_for_bit():
    # ways=2 with pairing="permutation" draws exactly what MixUp always drew.
    layer = MixUp(alpha=0.4, pairing="permutation", ways=2, num_classes=3)
    seed = ops.as_seed(11)
    plan = plan_np(layer.sample_plan(np.zeros((9, 2), "float32"), seed))
    assert np.array_equal(plan["index"], to_np(ops.random_permutation(9, seed)))
    lam = ops.sample_beta([9], 0.4, 0.4, seed=ops.fold_seed(seed, 1))
    assert np.array_equal(plan["lam"], to_np(lam))
    # And the default pairing keeps the same weights.
    default = plan_np(MixUp(alpha=0.4, num_classes=3).sample_plan(np.zeros((9, 2), "float32"), seed))
    assert np.array_equal(default["lam"], plan["lam"])
    assert (default["index"] != np.arange(9)).all()


def test_k_way_mixup_mixes_inputs_and_labels_with_the_same_weights():
    batch = 8
    x = np.eye(batch, dtype="float32")
    layer = MixUp(alpha=1.0, ways=3, num_classes=batch, seed=2)
    xm, ym = layer(x, np.arange(batch))
    xm, ym = to_np(xm), to_np(ym)
    assert np.allclose(xm, ym, atol=1e-6)  # identity rows: input = label
    assert np.allclose(ym.sum(1), 1.0, atol=1e-5)
    assert ((ym > 1e-6).sum(1) <= 3).all()
    assert ((ym > 1e-6).sum(1) >= 2).mean() > 0.5


def test_k_way_mixup_compiles_and_runs_in_tf_data():
    tf = pytest.importorskip("tensorflow")
    x = np.random.rand(16, 4, 4, 3).astype("float32")
    y = np.arange(16) % 4
    layer = MixUp(alpha=0.5, ways=3, num_classes=4, seed=0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).map(layer)
    for xm, ym in ds:
        assert xm.shape == (8, 4, 4, 3) and ym.shape == (8, 4)
        assert np.allclose(ym.numpy().sum(1), 1.0, atol=1e-5)
    plan = xla(lambda s: layer.sample_plan(x, s))(ops.as_seed(3))
    assert tuple(plan["index"].shape) == (16, 2) and tuple(plan["weights"].shape) == (16, 2)


def test_cutmix_refuses_k_way():
    with pytest.raises(ValueError, match="MixUp\\(ways=k\\)"):
        CutMix(ways=3)


def test_k_way_expected_partner_weight():
    # E over own weights reweighted by themselves: (k-1)α / (kα + 1).
    layer = MixUp(alpha=0.5, ways=3)
    assert np.isclose(float(to_np(layer.expected_partner_weight())), 2 * 0.5 / (3 * 0.5 + 1))
    w = to_np(ops.sample_dirichlet([200_000], 3, 0.5, seed=1))
    own = w[:, 0]
    assert np.isclose(np.sum(own * (1 - own)) / np.sum(own), 1 / 2.5, atol=5e-3)


def test_random_mix_pads_two_way_mixers_to_k_way():
    x = np.eye(8, dtype="float32")
    mix = RandomMix([MixUp(1.0, ways=3, num_classes=8), MixUp(1.0, num_classes=8)],
                    per_sample=True, seed=1)
    xm, ym = mix(x, np.arange(8))
    assert np.allclose(to_np(xm), to_np(ym), atol=1e-6)
    with pytest.raises(ValueError, match="CutMix"):
        RandomMix([MixUp(1.0, ways=3), CutMix()])


# ---------------------------------------------------------- layers, labels


@pytest.mark.parametrize("pairing", ["derangement", "flip", "roll", "permutation"])
def test_layer_pairings(pairing):
    x = np.eye(8, dtype="float32")
    xm, _ = MixUp(alpha=1.0, pairing=pairing, num_classes=8, seed=0)(x, np.arange(8))
    partner, lam = id_rows_plan(to_np(xm))
    mixed = lam < 1 - 1e-6
    if pairing == "flip":
        assert (partner[mixed] == 7 - np.arange(8)[mixed]).all()
    if pairing == "roll":
        assert (partner[mixed] == (np.arange(8) - 1)[mixed] % 8).all()
    if pairing != "permutation":
        assert (partner != np.arange(8))[mixed].all() and mixed.sum() >= 6


@pytest.mark.parametrize("pairing", ["same_class", "other_class"])
def test_label_aware_layers(pairing):
    y = np.array([0, 1, 0, 2, 1, 0, 2, 1])
    x = np.eye(8, dtype="float32")
    layer = MixUp(alpha=1.0, pairing=pairing, num_classes=3, seed=0)
    for _ in range(3):
        xm, ym = layer(x, y)
        partner, lam = id_rows_plan(to_np(xm))
        mixed = lam < 1 - 1e-6
        assert ((y[partner] == y) == (pairing == "same_class"))[mixed].all()
    assert layer.unpaired_fraction() == 0.0
    # CutMix too (with images), and the dict form.
    images = np.broadcast_to(np.arange(8.0).reshape(8, 1, 1, 1), (8, 8, 8, 1)).copy()
    out = CutMix(pairing=pairing, num_classes=3, seed=1)({"images": images, "labels": y})
    src = to_np(out["images"]).reshape(8, -1)
    for i in range(8):
        other = set(src[i].astype(int)) - {i}
        assert all((y[j] == y[i]) == (pairing == "same_class") for j in other)


def test_unpaired_examples_keep_themselves_and_are_counted():
    y = np.array([0, 1, 1, 1])  # class 0 has no other member
    x = np.eye(4, dtype="float32")
    layer = MixUp(alpha=1.0, pairing="same_class", num_classes=2, seed=0)
    xm, ym = layer(x, y)
    assert np.array_equal(to_np(xm)[0], x[0]) and np.array_equal(to_np(ym)[0], [1, 0])
    assert layer.unpaired_fraction() == 0.25
    layer(x, y)
    assert layer.unpaired_fraction() == 0.25
    with pytest.raises(ValueError, match="pairs by 'derangement'"):
        MixUp().unpaired_fraction()


def test_label_aware_pairing_in_tf_data_counts():
    tf = pytest.importorskip("tensorflow")
    y = np.array([0, 1, 1, 1] * 4)
    x = np.eye(16, dtype="float32")
    layer = MixUp(alpha=1.0, pairing="same_class", num_classes=2, seed=0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).map(layer)
    for i, (xm, _) in enumerate(ds):
        assert np.array_equal(xm.numpy()[0], x[4 * i])  # class 0 alone: unmixed
    assert layer.unpaired_fraction() == 0.25


@pytest.mark.parametrize("mix", ["inputs", "labels"])
def test_mix_modes(mix):
    x = np.eye(6, dtype="float32")
    y = np.arange(6)
    w = np.arange(1.0, 7.0, dtype="float32")
    xm, ym, wm = MixUp(alpha=1.0, mix=mix, num_classes=6, seed=0)(x, y, w)
    if mix == "inputs":
        assert not np.allclose(to_np(xm), x)
        assert np.array_equal(to_np(ym), np.eye(6)) and np.array_equal(to_np(wm), w)
    else:
        assert np.array_equal(to_np(xm), x)
        assert not np.allclose(to_np(ym), np.eye(6))
        partner, lam = id_rows_plan(to_np(ym))
        assert np.allclose(to_np(wm), lam * w + (1 - lam) * w[partner], atol=1e-5)


# ---------------------------------------------------------------- pools


def test_pool_partners_come_from_the_pool_only():
    x = np.zeros((8, 5), "float32")
    pool_x = np.eye(5, dtype="float32")[:4] + 1.0  # entry j: 2 at j, 1 elsewhere
    pool_y = np.array([0, 1, 2, 3])
    layer = MixUp(alpha=1.0, num_classes=4, seed=3)
    xm, ym = layer(x, np.zeros(8, "int32"), partners=(pool_x, pool_y))
    xm, ym = to_np(xm), to_np(ym)
    for row, label in zip(xm, ym):
        partner_weight, j = row.min(), int(np.argmax(row))
        assert np.allclose(row, partner_weight * pool_x[j], atol=1e-5)
        expected = (1 - partner_weight) * np.eye(4)[0] + partner_weight * np.eye(4)[j]
        assert np.allclose(label, expected, atol=1e-5)


def test_pool_dict_form_and_uniform_draws():
    x = np.zeros((64, 3), "float32")
    pool_x = np.eye(3, dtype="float32")
    layer = MixUp(alpha=1.0, pairing="permutation", num_classes=3, seed=0)
    counts = np.zeros(3)
    for _ in range(20):
        out = layer({"images": x, "labels": np.zeros(64, "int32"),
                     "partners": (pool_x, np.arange(3))})
        assert set(out) == {"images", "labels"}
        counts += np.argmax(to_np(out["images"]), 1).__eq__(np.arange(3)[:, None]).sum(1)
    assert scipy.stats.chisquare(counts).pvalue > 1e-3


def test_pool_with_label_aware_and_nearest_pairing():
    pool_x = np.array([[0.0], [10.0], [20.0], [30.0]], "float32")
    pool_y = np.array([0, 1, 0, 1])
    x = np.array([[1.0], [19.0], [29.0]], "float32")
    y = np.array([1, 0, 0])
    layer = MixUp(alpha=1.0, pairing="same_class", num_classes=2, seed=0)
    plan = plan_np(layer.sample_plan(x, ops.as_seed(0), {"labels": keras.ops.one_hot(y, 2),
                                                         "partners": {"images": pool_x, "labels": keras.ops.one_hot(pool_y, 2)}}))
    assert (pool_y[plan["index"]] == y).all()
    near = MixUp(alpha=1.0, pairing="nearest", num_classes=2, seed=0)
    plan = plan_np(near.sample_plan(x, ops.as_seed(0), {"partners": {"images": pool_x}}))
    assert plan["index"].tolist() == [0, 2, 3]


def test_pool_bad_inputs():
    x, y = np.zeros((4, 3), "float32"), np.arange(4) % 2
    layer = MixUp(num_classes=2, seed=0)
    with pytest.raises(ValueError, match="shape"):
        layer(x, y, partners=(np.zeros((5, 4), "float32"), np.arange(5) % 2))
    with pytest.raises(ValueError, match="labels"):
        layer(x, y, partners=np.zeros((5, 3), "float32"))
    with pytest.raises(ValueError, match="num_classes"):
        layer(x, y, partners=(np.zeros((5, 3), "float32"), np.eye(5, dtype="float32")))
    with pytest.raises(ValueError, match="same format"):
        MixUp(seed=0)(x, np.eye(2, dtype="float32")[y],
                      partners=(np.zeros((5, 3), "float32"), np.eye(5, dtype="float32")))
    with pytest.raises(ValueError, match="cannot draw from a pool"):
        MixUp(pairing="flip", num_classes=2)(x, y, partners=(x, y))
    with pytest.raises(ValueError, match="distinct"):
        MixUp(ways=4, num_classes=2)(x, y, partners=(x[:2], y[:2]))
    # mix="inputs" needs no pool labels.
    xm, ym = MixUp(num_classes=2, mix="inputs", seed=0)(x, y, partners=np.ones((3, 3), "float32"))
    assert np.array_equal(to_np(ym), np.eye(2)[y])


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"ways": 1}, ValueError, "ways"),
        ({"ways": 2.0}, TypeError, "ways"),
        ({"ways": True}, TypeError, "ways"),
        ({"pairing": "random"}, ValueError, "'derangement', 'permutation'"),
        ({"neighbors": 0, "pairing": "nearest"}, ValueError, "neighbors"),
        ({"neighbors": 1.5}, TypeError, "neighbors"),
        ({"mix": "outputs"}, ValueError, "`mix`"),
        ({"pairing_scope": "world"}, ValueError, "pairing_scope"),
        ({"pairing": "flip", "ways": 3}, ValueError, "two by two"),
        ({"pairing": "nearest", "ways": 4, "neighbors": 2}, ValueError, "neighbors >= 3"),
        ({"ways": 3, "beta": 0.5}, ValueError, "beta"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        MixUp(**kwargs)


def test_short_batches_in_tf_data_draw_among_what_there_is():
    # A short last batch (shape unknown to the graph) with fewer examples
    # than `neighbors` or than the partners of `ways`: no failure mid-epoch.
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(0).normal(size=(9, 3)).astype("float32")
    y = np.array([0, 0, 0, 1, 1, 1, 0, 0, 1])
    for layer in (MixUp(pairing="nearest", neighbors=4, num_classes=2, seed=0),
                  MixUp(pairing="same_class", ways=4, num_classes=2, seed=0),
                  MixUp(pairing="nearest", neighbors=3, ways=4, num_classes=2, seed=0)):
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).map(layer)
        sizes = [int(xm.shape[0]) for xm, _ in ds]
        assert sizes == [4, 4, 1]
    # A batch of one keeps itself.
    xm, ym = MixUp(pairing="nearest", neighbors=2, num_classes=2, seed=0)(x[:1], y[:1])
    assert np.array_equal(to_np(xm), x[:1])


def test_label_aware_pairing_needs_labels_and_neighbors_below_batch():
    layer = MixUp(pairing="same_class")
    with pytest.raises(ValueError, match="needs the labels"):
        layer.sample_plan(np.zeros((4, 2), "float32"), ops.as_seed(0))
    with pytest.raises(ValueError, match="smaller than"):
        pairings.check_neighbors(4, batch=4)
    with pytest.raises(ValueError, match="smaller than"):
        MixUp(pairing="nearest", neighbors=4)(np.zeros((4, 2), "float32"), np.zeros((4, 2), "float32"))


def test_config_round_trip():
    layer = MixUp(alpha=0.3, ways=3, pairing="nearest", neighbors=3, mix="inputs",
                  pairing_scope="global", seed=1)
    again = MixUp.from_config(layer.get_config())
    for key in ("ways", "pairing", "neighbors", "mix", "pairing_scope"):
        assert getattr(again, key) == getattr(layer, key)


# ------------------------------------------------------------- MixupModel


def _mlp(n_in, n_out, site=None):
    inputs = keras.Input((n_in,))
    h = inputs if site is None else site(inputs)
    return keras.Model(inputs, keras.layers.Dense(n_out)(h))


@pytest.mark.parametrize("ways", [2, 3])
def test_k_way_sparse_loss_equals_cross_entropy_on_the_mixed_one_hot(ways):
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.arange(16) % 5
    inner = _mlp(4, 5)
    losses = []
    for labels, loss in ((y, keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
                         (np.eye(5, dtype="float32")[y], keras.losses.CategoricalCrossentropy(from_logits=True))):
        model = keras_mixup.MixupModel(inner, mixer=MixUp(alpha=1.0, ways=ways), seed=4)
        model.compile(optimizer="sgd", loss=loss)
        model.optimizer.build(model.trainable_variables)
        losses.append(float(to_np(model.mixed_loss(x, labels, None)[0])))
    assert np.isclose(losses[0], losses[1], rtol=1e-5)


@pytest.mark.parametrize("pairing", ["same_class", "other_class"])
def test_label_aware_pairing_at_a_site(pairing):
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.eye(4, dtype="float32")[np.arange(16) % 4]
    site = MixUp(alpha=1.0, pairing=pairing)
    model = keras_mixup.MixupModel(_mlp(4, 4, site), seed=1)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    _, _, y_metric, _ = model.mixed_loss(x, y, None)
    same = np.allclose(to_np(y_metric), y)
    assert same == (pairing == "same_class")
    # The mixed_loss call above counted 16 partners, all found (4 of each
    # class); fit's shuffled batches of 8 may leave a class alone.
    counts = to_np(site.unpaired)
    assert counts[0] >= 16 and counts[1] <= counts[0] // 2
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert to_np(site.unpaired)[0] == counts[0] + 16


def test_mix_inputs_at_a_site_keeps_the_labels():
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.eye(4, dtype="float32")[np.arange(8) % 4]
    model = keras_mixup.MixupModel(_mlp(4, 4), mixer=MixUp(alpha=1.0, mix="inputs"), seed=1)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    _, _, y_metric, _ = model.mixed_loss(x, y, None)
    assert np.array_equal(to_np(y_metric), y)


@pytest.mark.parametrize("ways", [2, 3])
def test_k_way_and_nearest_sites_train(ways):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3
    inputs = keras.Input((4,))
    h = MixUp(alpha=1.0, ways=ways)(inputs)
    h = keras.layers.Dense(8, activation="relu")(h)
    h = MixUp(alpha=1.0, ways=ways, pairing="nearest", neighbors=2)(h)
    model = keras_mixup.MixupModel(keras.Model(inputs, keras.layers.Dense(3)(h)), seed=0)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution data parallelism (JAX)")
@pytest.mark.parametrize("scope", ["replica", "global"])
def test_global_pairing_mixes_across_devices(scope):
    import jax

    if len(jax.devices()) < 2:
        pytest.skip("needs two devices")
    batch = 16
    x = np.eye(batch, dtype="float32")
    y = np.eye(batch, dtype="float32")
    inputs = keras.Input((batch,))
    model = keras_mixup.MixupModel(
        keras.Model(inputs, keras.layers.Dense(batch)(inputs)),
        mixer=MixUp(alpha=1.0, pairing_scope=scope), seed=0,
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    dist = keras.distribution.DataParallel(devices=jax.devices()[:2])
    cross = []
    with dist.scope():
        for step in range(40):
            model.optimizer.iterations.assign(step)
            _, _, y_metric, _ = model.mixed_loss(x, y, None)
            partner, lam = id_rows_plan(to_np(y_metric))
            half = np.arange(batch) // (batch // 2)
            cross.append(np.mean(half[partner] != half))
    rate = float(np.mean(cross))
    if scope == "replica":
        assert rate == 0.0
    else:  # a random other example of 16: 8/15 in the other half
        assert abs(rate - 8 / 15) < 4 * np.sqrt((8 / 15) * (7 / 15) / (40 * 16)) + 0.05


@pytest.mark.parametrize("kwargs", [{"ways": 3}, {"mix": "labels"}])
def test_rescaled_prediction_refuses_what_its_theory_does_not_cover(kwargs):
    from keras_mixup.callbacks.rescaled import site_theta_bar

    with pytest.raises(ValueError, match="two-way mixup"):
        site_theta_bar(MixUp(alpha=1.0, **kwargs))


@pytest.mark.parametrize("pairing", pairings.PAIRINGS)
@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_every_pairing_in_tf_data_and_under_xla(pairing, cls):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 3)).astype("float32")
    y = np.arange(16) % 3
    layer = cls(pairing=pairing, num_classes=3, seed=0)
    for xm, ym in tf.data.Dataset.from_tensor_slices((x, y)).batch(8).map(layer):
        assert xm.shape == (8, 8, 8, 3)
        assert np.allclose(ym.numpy().sum(1), 1.0, atol=1e-5)
    context = {"labels": keras.ops.one_hot(y, 3)}
    plan = xla(lambda s: layer.sample_plan(x, s, context))(ops.as_seed(1))
    index = to_np(plan["index"])
    assert index.shape == (16,) and ((index >= 0) & (index < 16)).all()


def test_pool_in_tf_data():
    tf = pytest.importorskip("tensorflow")
    x = np.zeros((8, 4), "float32")
    pool = (np.ones((3, 4), "float32"), np.array([0, 1, 2]))
    layer = MixUp(alpha=1.0, num_classes=3, seed=0)
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(8, "int32"))).batch(4)
    for xm, ym in ds.map(lambda a, b: layer(a, b, partners=pool)):
        partner_weight = xm.numpy()[:, 0]  # pool entries are all ones
        assert np.allclose(xm.numpy(), partner_weight[:, None])
        assert np.allclose(ym.numpy().sum(1), 1.0, atol=1e-5)
        # The own label (class 0) keeps at least the own weight.
        assert (ym.numpy()[:, 0] >= 1 - partner_weight - 1e-5).all()


@pytest.mark.parametrize("pairing", ["flip", "roll", "derangement"])
def test_pairings_at_a_site_follow_the_labels(pairing):
    batch = 8
    x = np.eye(batch, dtype="float32")
    inputs = keras.Input((batch,))
    model = keras_mixup.MixupModel(
        keras.Model(inputs, keras.layers.Dense(batch)(inputs)),
        mixer=MixUp(alpha=1.0, pairing=pairing), seed=3,
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    _, _, y_metric, _ = model.mixed_loss(x, x, None)
    partner, lam = id_rows_plan(to_np(y_metric))
    mixed = lam < 1 - 1e-6
    expected = {"flip": batch - 1 - np.arange(batch), "roll": (np.arange(batch) - 1) % batch}
    if pairing in expected:
        assert (partner[mixed] == expected[pairing][mixed]).all()
    assert (partner[mixed] != np.arange(batch)[mixed]).all() and mixed.sum() >= 6
