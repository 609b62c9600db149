"""Welch's two-sample t-test, without SciPy: is a mean difference larger than the seed noise?

``holm`` adjusts a table's p-values for multiple comparisons, ``p_text`` prints one.
``contrast`` generalises Welch's test to a mean of differences over independent cells (HAM's gain
averaged over three sparsities), with a confidence interval and the smallest difference the seeds
could detect (``t_quantile`` inverts Student's t by bisection).
``mean``, ``sample_std`` and ``mean_std`` (the "mean ± std" text every table prints) are the
descriptive side. ``welch(a, b)`` returns ``(difference, t, degrees of freedom, two-sided p)`` for the means of two
small samples with unequal variances: ``t = (mean_a - mean_b) / sqrt(s_a²/n_a + s_b²/n_b)`` with the
Welch–Satterthwaite degrees of freedom; ``p = I_{df/(df+t²)}(df/2, 1/2)`` (the regularised incomplete
beta function, evaluated by its continued fraction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def sample_std(values: list[float]) -> float:
    """The sample standard deviation (n − 1 in the denominator); needs two values or more."""
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def pct(x: float | None) -> str:
    """A fraction in percent with two decimals; ``–`` for a missing value."""
    return "–" if x is None else f"{100 * x:.2f}"


def mean_std(values: list[float]) -> str:
    """``mean ± sample std`` in percent of fractions (the mean alone for one value)."""
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * mean(values):.2f} ± {100 * sample_std(values):.2f}"


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)), -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def regularized_beta(x: float, a: float, b: float) -> float:
    """``I_x(a, b)`` for ``0 <= x <= 1``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    return regularized_beta(df / (df + t * t), df / 2, 0.5)


def welch(a: list[float], b: list[float]) -> tuple[float, float, float, float]:
    """Welch's test of mean(a) - mean(b); needs two values or more on each side."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's test needs at least two values on each side")
    va, vb = sample_std(a) ** 2 / len(a), sample_std(b) ** 2 / len(b)
    diff = mean(a) - mean(b)
    if va + vb == 0.0:
        return diff, math.copysign(math.inf, diff) if diff else 0.0, float(len(a) + len(b) - 2), 0.0 if diff else 1.0
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    return diff, t, df, t_two_sided_p(t, df)


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * t_two_sided_p(t, df)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (0 < q < 1), by bisection on
    :func:`t_cdf` to 1e-12."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"a quantile level is in (0, 1), got {q}")
    if q < 0.5:
        return -t_quantile(1.0 - q, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < q:
        high *= 2.0
    while high - low > 1e-12 * max(1.0, high):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, df) < q else (low, middle)
    return (low + high) / 2


@dataclass(frozen=True)
class Contrast:
    """``mean over cells of (mean(treated) - mean(baseline))`` with its Welch–Satterthwaite test.

    For k cells with samples a_i (treated) and b_i (baseline), D = (1/k) Σ (ā_i − b̄_i); its variance
    is (1/k²) Σ v, summed over the 2k terms v = s²/n of the samples; the degrees of freedom are
    (Σ v)² / Σ v²/(n − 1). With one cell this is Welch's test.
    """

    difference: float
    standard_error: float
    df: float
    p: float

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The two-sided confidence interval of the difference."""
        half = t_quantile(0.5 + level / 2, self.df) * self.standard_error
        return self.difference - half, self.difference + half

    def detectable(self, alpha: float = 0.05, power: float = 0.8) -> float:
        """The smallest true difference a two-sided test at level ``alpha`` detects with probability
        ``power`` at this noise: (t_{1−α/2, df} + t_{power, df}) · SE (the usual approximation of the
        noncentral t by a shifted central one)."""
        return (t_quantile(1.0 - alpha / 2, self.df) + t_quantile(power, self.df)) * self.standard_error


def contrast(cells: list[tuple[list[float], list[float]]]) -> Contrast:
    """The :class:`Contrast` of ``[(treated, baseline), ...]``; each sample needs two values or more."""
    if not cells or any(len(a) < 2 or len(b) < 2 for a, b in cells):
        raise ValueError("a contrast needs at least one cell and two values or more on each side of each")
    k = len(cells)
    difference = mean([mean(a) - mean(b) for a, b in cells])
    terms = [(sample_std(x) ** 2 / len(x), len(x)) for a, b in cells for x in (a, b)]
    variance = sum(v for v, _ in terms) / (k * k)
    if variance == 0.0:
        return Contrast(difference, 0.0, float(sum(n for _, n in terms) - len(terms)), 0.0 if difference else 1.0)
    df = sum(v for v, _ in terms) ** 2 / sum(v * v / (n - 1) for v, n in terms if v > 0)
    t = difference / math.sqrt(variance)
    return Contrast(difference, math.sqrt(variance), df, t_two_sided_p(t, df))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of ``m`` p-values (family-wise error control without assuming
    independence): with the p-values sorted ascending, ``p_holm(i) = max_{j <= i} min(1, (m - j + 1)·p(j))``
    (1-based ``j``); returned in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def p_text(p: float) -> str:
    """A p-value as a reviewer reads it: three decimals, or ``< 0.001``; four where three would round
    it across the 0.05 level the verdicts use (0.0497, not 0.050)."""
    if p < 0.001:
        return "< 0.001"
    text = f"{p:.3f}"
    return f"{p:.4f}" if (p < 0.05) != (float(text) < 0.05) else text
