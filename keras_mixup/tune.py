"""Uniform designs (Fang, 1980): hyper-parameter search in few runs.

A uniform design ``U_n(q^s)`` is an ``n × s`` table of levels ``1..q``:
``n`` runs of ``s`` factors, each factor taking each of its ``q`` levels
equally often (``n / q`` times), with the runs scattered as evenly as
possible over the ``s``-dimensional box — evenly scattered, neat and
comparable, in ``n`` runs where a grid needs ``q^s``.

`uniform_design` builds one by the good-lattice-point method: for a
generator ``h = (h_1, …, h_s)`` of integers coprime with ``n``, run ``i``
(``i = 1..n``) sets factor ``j`` to ``(i·h_j mod n)`` (``n`` for 0). Among
the candidate generators — every combination of the totatives of ``n``
when there are few, powers ``(1, a, a², …) mod n`` otherwise — it keeps the
one whose design has the smallest centred L2 discrepancy (`discrepancy`).
When ``n + 1`` has more totatives (``n`` even, say), designs of ``n + 1``
runs less their last run (the one at the corner) are candidates too
(Fang & Wang's modification). ``q < n`` levels (``q`` dividing ``n``) merge
consecutive levels: ``⌈u·q/n⌉``.

The centred L2 discrepancy (Hickernell, 1998) of points ``x_i ∈ [0, 1]^s``
(level ``u`` of ``q`` at ``x = (u − ½)/q``)::

    CD₂² = (13/12)^s
         − (2/n) Σᵢ Πₖ (1 + ½|xᵢₖ − ½| − ½|xᵢₖ − ½|²)
         + (1/n²) Σᵢ Σⱼ Πₖ (1 + ½|xᵢₖ − ½| + ½|xⱼₖ − ½| − ½|xᵢₖ − xⱼₖ|)

Pure NumPy; no Keras needed.

Example:

>>> design = keras_mixup.tune.uniform_design(7, 3)
>>> sorted(design[:, 0].tolist()) == list(range(1, 8))
True
"""

import itertools
import math

import numpy as np

# Above this many generator combinations, the power generators are searched.
EXHAUSTIVE_LIMIT = 3000


def totatives(n):
    """The integers in ``[1, n)`` coprime with ``n``."""
    return [h for h in range(1, n) if math.gcd(h, n) == 1]


def points(design, levels=None):
    """The design's runs as points of ``[0, 1]^s``: level ``u`` of ``q`` at
    ``(u − ½)/q``."""
    design = np.asarray(design, dtype=float)
    q = levels if levels is not None else design.max()
    return (design - 0.5) / q


def discrepancy(design, levels=None):
    """Centred L2 discrepancy ``CD₂`` of a design of levels ``1..q`` (or of
    points in ``[0, 1]^s`` when ``levels`` is 0): smaller is more uniform."""
    x = np.asarray(design, dtype=float) if levels == 0 else points(design, levels)
    n, s = x.shape
    c = np.abs(x - 0.5)
    first = np.prod(1 + 0.5 * c - 0.5 * c**2, axis=1).sum()
    pair = (1 + 0.5 * c[:, None, :] + 0.5 * c[None, :, :]
            - 0.5 * np.abs(x[:, None, :] - x[None, :, :]))
    second = np.prod(pair, axis=2).sum()
    value = (13 / 12) ** s - 2 / n * first + second / n**2
    return math.sqrt(max(value, 0.0))


def _lattice(n, generator):
    i = np.arange(1, n + 1)[:, None]
    u = (i * np.asarray(generator)[None, :]) % n
    return np.where(u == 0, n, u)


def _generators(n, s):
    units = totatives(n)
    if len(units) < s:
        return []
    if math.comb(len(units), s) <= EXHAUSTIVE_LIMIT:
        return list(itertools.combinations(units, s))
    out = []
    for a in units:
        powers = [pow(a, k, n) for k in range(s)]
        if len(set(powers)) == s:
            out.append(tuple(powers))
    return out


def servable(factors, upto=100):
    """Run counts up to ``upto`` for which a design of ``factors`` factors
    can be built (``n`` or ``n + 1`` has at least that many totatives)."""
    return [
        n for n in range(2, upto + 1)
        if _generators(n, factors) or _generators(n + 1, factors)
    ]


def uniform_design(runs, factors, levels=None):
    """A uniform design ``U_runs(levels^factors)``: int array ``(runs,
    factors)`` of levels ``1..levels`` (default ``levels = runs``).

    Args:
        runs: number of runs ``n`` (>= 2).
        factors: number of factors ``s`` (>= 1).
        levels: levels per factor ``q``; must divide ``runs``.

    Raises:
        ValueError: for a combination no good lattice point serves (the
            message lists run counts that do).
    """
    for value, name, low in ((runs, "runs", 2), (factors, "factors", 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"`{name}` must be an integer >= {low}; got {value!r}.")
    levels = runs if levels is None else levels
    if not isinstance(levels, int) or isinstance(levels, bool) or levels < 2:
        raise ValueError(f"`levels` must be an integer >= 2; got {levels!r}.")
    if levels > runs:
        raise ValueError(
            f"More levels ({levels}) than runs: each level is run at least once, so "
            f"{levels} levels need at least {levels} runs; got runs={runs}."
        )
    if runs % levels:
        raise ValueError(
            f"`levels` must divide `runs` (each level run equally often); got "
            f"{levels} levels for {runs} runs. Divisors of {runs}: "
            f"{[q for q in range(2, runs + 1) if runs % q == 0]}."
        )
    candidates = [_lattice(runs, g) for g in _generators(runs, factors)]
    # n + 1 runs less the last (all levels n + 1): levels 1..n again.
    candidates += [_lattice(runs + 1, g)[:-1] for g in _generators(runs + 1, factors)]
    if not candidates:
        ok = servable(factors, upto=max(30, runs + 10))
        raise ValueError(
            f"No good-lattice-point design has {runs} runs of {factors} factors: "
            f"neither {runs} nor {runs + 1} has {factors} integers below it coprime "
            f"with it. Run counts that serve {factors} factors: "
            f"{', '.join(map(str, ok[:20]))}{', …' if len(ok) > 20 else ''}."
        )
    if levels < runs:
        candidates = [np.ceil(c * levels / runs).astype(int) for c in candidates]
    return min(candidates, key=lambda c: discrepancy(c, levels)).astype(int)


def unit_values(t, ranges):
    """Points ``t`` ``(n, s)`` of ``[0, 1]^s`` mapped onto the factors'
    ranges: ``low + t·(high − low)``, on a log scale for a range
    ``(low, high, "log")``."""
    t = np.asarray(t, dtype=float)
    out = np.empty(t.shape, dtype=float)
    for j, spec in enumerate(ranges):
        low, high = float(spec[0]), float(spec[1])
        if len(spec) > 2 and spec[2] == "log":
            out[:, j] = np.exp(np.log(low) + t[:, j] * (np.log(high) - np.log(low)))
        else:
            out[:, j] = low + t[:, j] * (high - low)
    return out


def level_values(design, ranges, levels=None):
    """The factor values of each run: level ``u`` of ``q`` at
    ``(u − 1)/(q − 1)`` of each range (`unit_values`), so the levels span
    each range end to end.

    Args:
        design: int ``(n, s)`` levels ``1..q``.
        ranges: ``s`` tuples ``(low, high)`` or ``(low, high, "log")``.
    """
    design = np.asarray(design)
    q = levels if levels is not None else int(design.max())
    return unit_values((design - 1) / max(q - 1, 1), ranges)
