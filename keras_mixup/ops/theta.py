"""θ̄, the mean shrinkage factor of mixup (Carratino et al., "On Mixup Regularization").

Mixing ``x̃ = λ·x + (1 − λ)·x[π]`` with a random pairing is the same, in
distribution, as keeping the *dominant* example with weight
``θ = max(λ, 1 − λ)``. In expectation over the partner, the training point
moves to ``x̄ + θ̄·(x − x̄)`` and its label to ``ȳ + θ̄·(y − ȳ)``, with
``θ̄ = E[θ]``: a mixup-trained model has learned on data shrunk toward the
mean by θ̄. This module computes θ̄ exactly, in pure Python (no SciPy).
"""

import math
import numbers

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 100_000


def _check(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a Python number > 0 (a Beta concentration, "
            f"e.g. 0.2 or 1.0); got {value!r}."
        )
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"`{name}` must be a finite number > 0 (the Beta concentration "
            f"the model was trained with, e.g. alpha=0.2 or alpha=1.0); got "
            f"{value!r}."
        )
    return value


def _log_beta(a, b):
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _beta_continued_fraction(a, b, x):
    """The continued fraction of I_x(a, b) (DLMF 8.17.22), modified Lentz.

    Converges quickly for ``x < (a + 1) / (a + b + 2)``.
    """
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS):
        m2 = 2 * m
        # Even step: d_{2m} = m (b − m) x / ((a + 2m − 1)(a + 2m)).
        num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + num / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        # Odd step: d_{2m+1} = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + num / c
        c = c if abs(c) > _TINY else _TINY
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            return h
    raise ArithmeticError(  # pragma: no cover - never seen for 1e-3 <= a, b <= 1e6
        f"The incomplete beta function did not converge for a={a}, b={b}."
    )


def incomplete_beta(x, a, b):
    """The regularized incomplete beta function I_x(a, b), for 0 <= x <= 1.

    Accurate to about 1e-14 (absolute) for concentrations from 1e-3 to 1e6:
    the prefactor ``x^a (1 − x)^b / (a·B(a, b))`` is computed in log space
    and the continued fraction is evaluated on the side where it converges.
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def theta_bar(alpha, beta=None):
    """Mean shrinkage ``θ̄ = E[max(λ, 1 − λ)]`` for ``λ ~ Beta(alpha, beta)``.

    Carratino et al. ("On Mixup Regularization", JMLR 2022) show that
    training with mixup amounts to training on inputs ``x̄ + θ̄·(x − x̄)``
    and labels ``ȳ + θ̄·(y − ȳ)``, shrunk toward the training means. θ̄ goes
    from 1 (``alpha`` → 0, no mixing) to 1/2 (``alpha`` → ∞); it is 0.75 at
    ``alpha = 1`` (λ uniform). `keras_mixup.RescaledModel` uses it to undo
    the shrinkage at test time.

    Exact formulas, with ``I_x(a, b)`` the regularized incomplete beta
    function and ``B`` the beta function:

    - ``alpha == beta``: ``θ̄ = 1/2 + 4^−α / (α·B(α, α))``
      (``= 1 − I_½(α + 1, α)``), computed in log space, so it stays
      accurate from 1e-3 to 1e6;
    - otherwise: ``θ̄ = α/(α+β) + (β−α)/(α+β)·I_½(α, β)
      + 2^(1−α−β) / ((α+β)·B(α, β))``, from
      ``E[max(λ, 1−λ)] = E[λ] + E[(1 − 2λ)·1{λ < ½}]``, with ``I_½``
      evaluated by a continued fraction (no SciPy needed).

    Args:
        alpha: first Beta concentration (> 0), the ``alpha`` of `MixUp`.
        beta: second concentration (> 0); None (default) means ``alpha``.

    Returns:
        θ̄ as a Python float in [0.5, 1].

    Example:

    >>> keras_mixup.ops.theta_bar(1.0)
    0.75
    >>> round(keras_mixup.ops.theta_bar(0.2), 4)
    0.8988
    >>> round(keras_mixup.ops.theta_bar(2.0, 0.5), 4)
    0.8364
    """
    a = _check(alpha, "alpha")
    b = a if beta is None else _check(beta, "beta")
    if a == b:
        log_excess = -a * math.log(4.0) - math.log(a) - _log_beta(a, a)
        return min(1.0, 0.5 + math.exp(log_excess))
    total = a + b
    log_tail = (1.0 - total) * math.log(2.0) - math.log(total) - _log_beta(a, b)
    value = a / total + (b - a) / total * incomplete_beta(0.5, a, b) + math.exp(log_tail)
    return min(1.0, max(0.5, value))
