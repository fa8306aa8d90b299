"""Tests of the pure ops: sampling statistics, XLA, pairings, masks, labels."""

import keras
import numpy as np
import pytest
import scipy.stats

from keras_mixup import backend, ops
from tests.conftest import xla

# Runs on every backend (TensorFlow, JAX): tensors are NumPy arrays or
# keras.ops results, XLA is conftest's `xla`. The random streams differ by
# backend (Philox versus jax.random), so draws are checked by their
# statistics, with tolerances from their variance, never by their values.
BACKEND = keras.backend.backend()


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def draw(fn):
    """``fn()`` as a NumPy array; on JAX compiled first. Eager JAX compiles
    every op for every new shape, about twice the CPU time of compiling
    the sampler once (XLA is checked on every backend below)."""
    return to_np(xla(fn)() if BACKEND == "jax" else fn())


def assert_counted_fraction(kept, counted):
    """``kept`` equals the counted fraction in float32: exactly where
    TensorFlow divides eagerly; within 1 ulp where XLA divides (every JAX op
    is compiled by XLA, whose CPU code may divide by a broadcast scalar as a
    multiplication by its reciprocal)."""
    kept, counted = to_np(kept), np.asarray(counted, np.float32)
    if BACKEND == "tensorflow":
        np.testing.assert_array_equal(kept, counted)
    else:
        np.testing.assert_array_max_ulp(kept, counted, maxulp=1)


def seeds(rows):
    """Integer ``(..., 2)`` rows as stateless seeds of the running backend
    (int64 on TensorFlow, uint32 ``jax.random`` keys on JAX)."""
    return keras.ops.cast(np.asarray(rows), backend.ops().SEED_DTYPE)

# (alpha, beta) pairs: symmetric and asymmetric, small and large.
BETA_PARAMS = [(0.2, 0.2), (1.0, 1.0), (0.4, 2.5), (2.0, 6.0), (30.0, 5.0)]


def beta_moments(a, b):
    mean = a / (a + b)
    var = a * b / ((a + b) ** 2 * (a + b + 1))
    return mean, var


@pytest.mark.parametrize("a,b", BETA_PARAMS)
def test_beta_moments_within_sampling_error(a, b):
    n = 200_000
    lam = draw(lambda: ops.sample_beta([n], a, b, seed=1234)).astype(np.float64)
    mean, var = beta_moments(a, b)
    # Tolerances: 5 standard errors of the sample mean and sample variance.
    mu4 = scipy.stats.beta(a, b).moment(4) - 4 * mean * scipy.stats.beta(a, b).moment(3) \
        + 6 * mean**2 * scipy.stats.beta(a, b).moment(2) - 3 * mean**4
    assert abs(lam.mean() - mean) < 5 * np.sqrt(var / n)
    assert abs(lam.var() - var) < 5 * np.sqrt((mu4 - var**2) / n)


def ks_pvalue_float32(samples, cdf):
    """Kolmogorov-Smirnov p-value, with the statistic taken only where
    float32 resolves the CDF.

    Float32 cannot hold values within 6e-8 of 1, so draws there round to
    exactly 1.0 (about 2% of Beta(0.2, 0.2)); a continuous KS test would read
    that tie as a jump. Evaluating sup |F_n - F| below 1 - 1e-6 keeps the
    test exact elsewhere (and can only make it more lenient by the mass it
    skips).
    """
    xs = np.sort(samples.astype(np.float64))
    n = xs.size
    ts = xs[xs < 1 - 1e-6]
    f = cdf(ts)
    upper = np.searchsorted(xs, ts, side="right") / n
    lower = np.searchsorted(xs, ts, side="left") / n
    d = max(np.abs(upper - f).max(), np.abs(lower - f).max())
    return scipy.stats.kstwo.sf(d, n)


@pytest.mark.parametrize("a,b", BETA_PARAMS)
def test_beta_matches_distribution_ks(a, b):
    lam = draw(lambda: ops.sample_beta([20_000], a, b, seed=7))
    assert lam.dtype == np.float32
    p = ks_pvalue_float32(lam, scipy.stats.beta(a, b).cdf)
    assert p > 1e-3, f"KS p-value {p} for Beta({a}, {b})"


def test_beta_default_is_symmetric_and_seeded():
    a1 = draw(lambda: ops.sample_beta([1000], 0.5, seed=3))
    a2 = draw(lambda: ops.sample_beta([1000], 0.5, 0.5, seed=3))
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, draw(lambda: ops.sample_beta([1000], 0.5, seed=4)))


@pytest.mark.parametrize("a,b", [(1e-3, 1e-3), (1e3, 1e3), (1e-3, 1e3), (1e3, 1e-3)])
def test_beta_is_finite_at_extreme_concentrations(a, b):
    n = 1_000_000
    lam = draw(lambda: ops.sample_beta([n], a, b, seed=99))
    assert np.isfinite(lam).all()
    assert lam.min() >= 0.0 and lam.max() <= 1.0
    mean, var = beta_moments(a, b)
    assert abs(lam.mean() - mean) < 5 * np.sqrt(var / n) + 1e-6


def test_ks_check_detects_a_wrong_distribution():
    # The KS helper must have power: Beta(0.25, 0.2) draws fail Beta(0.2, 0.2).
    lam = draw(lambda: ops.sample_beta([20_000], 0.25, 0.2, seed=7))
    assert ks_pvalue_float32(lam, scipy.stats.beta(0.2, 0.2).cdf) < 1e-3


def test_tiny_alpha_puts_half_the_mass_at_each_end():
    # Beta(1e-3, 1e-3): P(λ < 0.01) ≈ P(λ > 0.99) ≈ 0.5.
    n = 100_000
    lam = draw(lambda: ops.sample_beta([n], 1e-3, seed=5))
    low = (lam < 0.01).mean()
    assert abs(low - 0.5) < 5 * np.sqrt(0.25 / n) + 0.005
    assert abs((lam > 0.99).mean() - 0.5) < 5 * np.sqrt(0.25 / n) + 0.005


def test_beta_accepts_tensor_concentration_and_compiles_with_xla():
    f = xla(lambda alpha, seed: ops.sample_beta([50_000], alpha, seed=seed))
    lam = to_np(f(keras.ops.convert_to_tensor(2.0), seeds([1, 2])))
    mean, var = beta_moments(2.0, 2.0)
    assert abs(lam.mean() - mean) < 5 * np.sqrt(var / 50_000)
    # Same seed, same draws, compiled or not.
    np.testing.assert_allclose(
        lam, to_np(ops.sample_beta([50_000], 2.0, seed=np.array([1, 2]))),
        rtol=1e-5, atol=1e-6,
    )


@pytest.mark.tensorflow_only
def test_known_gamma_ops_do_not_compile_with_xla():
    # The reason sample_beta exists: if this starts passing, the workaround
    # could be dropped; as long as it fails, the XLA checks above mean
    # something. (TensorFlow's gamma kernels; jax.random.gamma compiles.)
    tf = pytest.importorskip("tensorflow")
    with pytest.raises(Exception):
        xla(lambda: tf.random.stateless_gamma([4], seed=[1, 2], alpha=0.5))()


@pytest.mark.parametrize(
    "bad", [0.0, -1.0, float("inf"), float("nan"), None, True]
)
def test_beta_rejects_bad_concentration(bad):
    with pytest.raises((ValueError, TypeError), match="alpha"):
        ops.sample_beta([3], bad, seed=0)
    with pytest.raises((ValueError, TypeError), match="beta"):
        ops.sample_beta([3], 1.0, bad if bad is not None else -1.0, seed=0)


def test_seed_validation():
    with pytest.raises(ValueError, match="shape"):
        ops.sample_beta([3], 1.0, seed=np.array([1, 2, 3]))
    with pytest.raises(TypeError, match="seed"):
        ops.sample_beta([3], 1.0, seed=np.array([1.0, 2.0]))


def test_random_permutation_is_uniform_and_compiles():
    # One compiled loop over the seeds (a Python-level map would launch the
    # compiled function 24,000 times).
    f = xla(lambda ss: keras.ops.map(lambda s: ops.random_permutation(4, s), ss))
    counts = {}
    n = 24_000
    rows = np.stack([np.arange(n) // 1000, np.arange(n) % 1000], axis=1)
    for p in map(tuple, to_np(f(seeds(rows)))):
        counts[p] = counts.get(p, 0) + 1
    assert all(sorted(p) == [0, 1, 2, 3] for p in counts)
    assert len(counts) == 24
    chi2 = scipy.stats.chisquare(list(counts.values())).pvalue
    assert chi2 > 1e-3


@pytest.mark.parametrize("batch", [1, 2, 7, 128])
def test_random_permutation_any_batch(batch):
    p = to_np(ops.random_permutation(batch, seed=batch))
    assert sorted(p.tolist()) == list(range(batch))


def test_flip_pairing_odd_and_even():
    assert to_np(ops.flip_pairing(5)).tolist() == [4, 3, 2, 1, 0]
    assert to_np(ops.flip_pairing(4)).tolist() == [3, 2, 1, 0]
    assert to_np(ops.flip_pairing(1)).tolist() == [0]
    p = to_np(xla(lambda: ops.flip_pairing(7))())
    assert (p[p] == np.arange(7)).all()  # an involution: pairs mix both ways


def test_interpolate_nested_uses_one_plan():
    b = 6
    index = np.array([1, 0, 3, 2, 5, 4], np.int32)
    lam = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], np.float32)
    eye = np.eye(b, dtype=np.float32)
    xs = {"a": eye, "b": (eye[:, None, :] * np.ones([1, 3, 1], np.float32),)}
    out = xla(lambda: ops.interpolate(xs, lam, index))()
    expected = lam[:, None] * eye + (1 - lam[:, None]) * eye[index]
    np.testing.assert_allclose(out["a"], expected, rtol=1e-6)
    for t in range(3):
        np.testing.assert_allclose(out["b"][0][:, t, :], expected, rtol=1e-6)


def test_blend_with_binary_weight_copies_exactly():
    x = np.random.RandomState(0).randint(0, 256, (4, 5, 5, 1)).astype(np.uint8)
    w = np.random.RandomState(1).randint(0, 2, (4, 5, 5, 1)).astype(np.float32)
    out = to_np(ops.blend(x, [2, 3, 0, 1], w))
    ref = np.where(w > 0, x, x[[2, 3, 0, 1]])
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, ref)


def test_blend_binary_is_one_select_and_keeps_nans_apart():
    # binary=True: the weight is a 0/1 mask; the result is x where it is 1
    # and the partner where 0, exactly as the three-way select, and a NaN
    # reaches only the values its example gives.
    rng = np.random.RandomState(2)
    x = rng.rand(4, 6, 6, 3).astype(np.float32)
    x[1, 0, 0, 0] = np.nan
    w = rng.randint(0, 2, (4, 6, 6, 1)).astype(np.float32)
    index = [2, 3, 0, 1]
    out = to_np(xla(lambda: ops.blend(x, index, w, select=True, binary=True))())
    np.testing.assert_array_equal(out, to_np(ops.blend(x, index, w, select=True)))
    np.testing.assert_array_equal(out, np.where(w > 0, x, x[index]))
    assert np.isnan(out).sum() == (w[1, 0, 0, 0] > 0) + (w[3, 0, 0, 0] == 0)


@pytest.mark.parametrize("h,w", [(8, 8), (7, 13), (1, 5), (32, 32)])
def test_box_mask_fraction_is_exact_count(h, w):
    lam = ops.sample_beta([500], 1.0, seed=h * w)
    seed = seeds([3, 4])
    mask, kept = xla(lambda: ops.box_mask(h, w, lam, seed))()
    mask, kept = to_np(mask), to_np(kept)
    assert mask.shape == (500, h, w)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    counted = mask.reshape(500, -1).sum(1) / (h * w)
    np.testing.assert_array_equal(kept, counted.astype(np.float32))
    # The cut region is a single axis-aligned box.
    for m in mask[:50]:
        rows, cols = np.where(m == 0)
        if rows.size:
            box = np.zeros_like(m)
            box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = 1
            assert box.sum() == rows.size


def test_box_mask_cut_side_follows_sqrt_one_minus_lambda():
    # Without clipping (centre in the middle), the box is floor(32·√(1-λ)).
    lam = np.array([0.75, 0.0, 1.0, 0.5], np.float32)
    mask, kept = ops.box_mask(32, 32, lam, seed=0)
    cut = 1.0 - to_np(kept)
    side = np.floor(32 * np.sqrt(1 - lam))
    # Clipping can only shrink the box.
    assert (cut <= side**2 / 1024 + 1e-7).all()
    assert cut[2] == 0.0  # λ = 1: nothing cut
    # λ = 0: a full-size box whose centre is uniform: covers ≥ 1/4 of image.
    assert cut[1] >= 0.25


def test_segment_mask_is_contiguous_and_exact():
    lam = ops.sample_beta([300], 1.0, seed=2)
    mask, kept = ops.segment_mask(50, lam, seed=9)
    mask = to_np(mask)
    assert_counted_fraction(kept, mask.sum(1) / 50)
    for m in mask:
        cut = np.where(m == 0)[0]
        if cut.size:
            assert cut.max() - cut.min() + 1 == cut.size


def test_one_hot_and_smoothing():
    out = ops.to_soft_labels(np.array([[2], [0]]), num_classes=3, label_smoothing=0.3)
    np.testing.assert_allclose(out, [[0.1, 0.1, 0.8], [0.8, 0.1, 0.1]], rtol=1e-6)
    assert to_np(out).dtype == np.float32
    soft = ops.to_soft_labels(np.array([[0.25, 0.75]], np.float16))
    assert to_np(soft).dtype == np.float32
    np.testing.assert_array_equal(soft, [[0.25, 0.75]])
    multi = ops.to_soft_labels(np.array([[1, 0, 1]], np.int32))
    np.testing.assert_array_equal(multi, [[1.0, 0.0, 1.0]])
    reg = ops.to_soft_labels(np.array([1.5, -2.0]))
    np.testing.assert_array_equal(reg, [1.5, -2.0])


def test_label_errors_name_the_fix():
    with pytest.raises(ValueError, match="num_classes"):
        ops.to_soft_labels(np.array([1, 2]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        ops.one_hot([0, 3], 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        ops.one_hot([-1, 0], 3)
    with pytest.raises(ValueError, match="label_smoothing"):
        ops.to_soft_labels(np.eye(2), label_smoothing=1.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        ops.to_soft_labels(np.eye(2), label_smoothing=-0.1)
    with pytest.raises(ValueError, match="regression"):
        ops.to_soft_labels(np.array([0.5, 1.5]), label_smoothing=0.1)
    with pytest.raises(ValueError, match="num_classes"):
        ops.to_soft_labels(np.eye(3, dtype="float32"), num_classes=4)


@pytest.mark.tensorflow_only
def test_out_of_range_ids_fail_in_graph():
    # A tf.function graph (no XLA) keeps the assertion.
    tf = pytest.importorskip("tensorflow")
    graph = tf.function(lambda y: ops.one_hot(y, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="class ids"):
        graph(tf.constant([0, 5]))


def test_out_of_range_ids_fail_in_a_tf_data_graph():
    # tf.data maps trace with TensorFlow ops under any backend: the
    # assertion is there too.
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_tensors(np.array([0, 5], np.int32)).map(lambda y: ops.one_hot(y, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="class ids"):
        list(ds)


def test_out_of_range_ids_poison_under_xla():
    # XLA (and jax.jit) drops assertions: the bad row must be NaN, never
    # silently zero.
    out = to_np(xla(lambda y: ops.one_hot(y, 3))(keras.ops.convert_to_tensor(np.array([1, 5], np.int32))))
    np.testing.assert_array_equal(out[0], [0.0, 1.0, 0.0])
    assert np.isnan(out[1]).all()


@pytest.mark.parametrize("shape, shared", [((3, 5, 7, 3), ()), ((3, 6, 4, 3), (-1,)),
                                           ((3, 5, 7, 3), (1, 2)), ((3, 9), ())])
def test_bernoulli_mask_counts_its_own_draws(shape, shared):
    # Odd and even draws per example, shared axes: the count returned (from
    # the hashes, not the mask) is the mask's own count of draws.
    from keras_mixup.ops.random import bernoulli_mask

    p = np.array([0.1, 0.5, 0.93], "float32")
    mask, count = xla(lambda s: bernoulli_mask(shape, p, s, shared))(ops.as_seed(1))
    mask = np.asarray(keras.ops.convert_to_numpy(mask))
    draws = mask
    for axis in sorted((a % len(shape) for a in shared), reverse=True):
        assert (np.ptp(mask.astype(int), axis=axis) == 0).all()
        draws = draws.take([0], axis=axis)
    assert np.array_equal(draws.reshape(3, -1).sum(1), keras.ops.convert_to_numpy(count))


def test_bernoulli_mask_rate_and_independence():
    from keras_mixup.ops.random import bernoulli_mask

    n, p = 64 * 64 * 3, 0.3
    mask, count = bernoulli_mask((32, 64, 64, 3), np.full(32, p, "float32"), ops.as_seed(2))
    frac = keras.ops.convert_to_numpy(count) / n
    sd = np.sqrt(p * (1 - p) / n)  # binomial, per example
    assert abs(frac.mean() - p) < 4 * sd / np.sqrt(32)
    assert 0.6 * sd < frac.std() < 1.5 * sd
    flat = np.asarray(keras.ops.convert_to_numpy(mask)).reshape(-1).astype(float)
    for lag in (1, 2, 3):  # the two halves of one hash, and the next hashes
        assert abs(np.corrcoef(flat[:-lag], flat[lag:])[0, 1]) < 4 / np.sqrt(flat.size)


def test_turn_is_cos_and_sin_of_a_fraction_of_a_turn():
    from keras_mixup.ops.random import _turn

    u = np.concatenate([np.linspace(0, 1, 4097, dtype="float32")[:-1],
                        np.random.default_rng(0).random(10000, dtype="float32")])
    cos, sin = (keras.ops.convert_to_numpy(t) for t in _turn(keras.ops.convert_to_tensor(u)))
    angle = 2 * np.pi * u.astype("float64")
    assert np.abs(cos - np.cos(angle)).max() < 2e-7
    assert np.abs(sin - np.sin(angle)).max() < 2e-7


def test_hash_normal_pair_gives_two_independent_normals():
    from keras_mixup.ops.random import hash_normal_pair

    re, im = (np.asarray(keras.ops.convert_to_numpy(t)).ravel()
              for t in hash_normal_pair([100, 200], ops.as_seed(0)))
    for z in (re, im):
        assert scipy.stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(re, im)[0, 1]) < 4 / np.sqrt(re.size)
    assert abs(np.corrcoef(re ** 2, im ** 2)[0, 1]) < 4 * np.sqrt(2) / np.sqrt(re.size)
