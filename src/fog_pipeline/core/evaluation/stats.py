"""Confidence intervals for robot evaluations (stdlib and NumPy only, no SciPy).

- :func:`wilson_interval` for a success rate: the Wilson score interval (Wilson 1927;
  Newcombe 1998, method 3, no continuity correction). Unlike the textbook "p ± z·se"
  (Wald) interval it never leaves [0, 1] and does not collapse to zero width at 0 or n
  successes, which is exactly where small robot evaluations usually land.
- :func:`mean_interval` for a continuous measure (coverage, return): the Student-t
  interval ``mean ± t(n-1) · s / sqrt(n)``. Evaluations run tens of episodes, where the
  normal approximation is too narrow (n = 10: t = 2.26 against z = 1.96).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence}")


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for ``successes`` out of ``trials``.

    ``low`` is exactly 0 when there is no success and ``high`` exactly 1 when every trial
    succeeds. Raises ``ValueError`` for ``trials < 1`` (no episode, no rate) and for
    ``successes`` outside ``[0, trials]``.
    """
    _check_confidence(confidence)
    if trials < 1:
        raise ValueError(
            f"a success-rate interval needs at least one trial, got trials={trials}; "
            "evaluate at least one episode"
        )
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, trials={trials}], got {successes}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    n, p = float(trials), successes / trials
    shrink = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / shrink
    half = z / shrink * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At the ends the two terms cancel analytically; pin them so rounding cannot leave
    # a 1e-17 lower bound for a policy that never succeeded.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def _t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer ``df`` (Abramowitz & Stegun 26.7.3-4).

    Exact finite sums in theta = atan(t / sqrt(df)); no special functions needed.
    """
    theta = math.atan(t / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        # sin(theta) * [1 + 1/2 cos^2 + (1*3)/(2*4) cos^4 + ... up to cos^(df-2)]
        j = np.arange(1, df // 2)
        terms = np.cumprod((2 * j - 1) / (2 * j) * cos2)
        return float(sin * (1.0 + terms.sum()))
    if df == 1:
        return 2 * theta / math.pi
    # (2/pi) * (theta + sin * [cos + 2/3 cos^3 + (2*4)/(3*5) cos^5 + ... up to cos^(df-2)])
    j = np.arange(1, (df - 1) // 2)
    terms = np.cumprod((2 * j) / (2 * j + 1) * cos2)
    cos = math.sqrt(cos2)
    return float(2 / math.pi * (theta + sin * cos * (1.0 + terms.sum())))


def student_t_quantile(confidence: float, df: int) -> float:
    """The ``t`` with ``P(|T| < t) = confidence`` for Student's t with ``df`` >= 1.

    That is the two-sided critical value: ``student_t_quantile(0.95, 9)`` = 2.262.
    Found by bisection on the exact distribution function (to about 1e-12).
    """
    _check_confidence(confidence)
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    low, high = 0.0, 2.0
    while _t_two_sided_mass(high, df) < confidence:
        low, high = high, 2 * high
    for _ in range(100):
        middle = (low + high) / 2
        if _t_two_sided_mass(middle, df) < confidence:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * high:
            break
    return (low + high) / 2


def mean_interval(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the Student-t confidence interval of the mean of ``values``.

    ``mean ± t(confidence, n-1) · s / sqrt(n)`` with ``s`` the sample standard deviation.
    ``bounds`` is the range the measure cannot leave (coverage: ``(0, 1)``): the interval
    is clipped to it, since no mean outside it is possible (a mean near 0 with a wide
    spread would otherwise show a negative ``low``), and a value outside it is an error.
    One value gives the degenerate interval ``(x, x, x)``: one episode says nothing about
    the spread, so read its interval as "unknown", not as "exact". Raises ``ValueError``
    for no value or a non-finite one.
    """
    _check_confidence(confidence)
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        raise ValueError("the mean of no values is undefined; evaluate at least one episode")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"values must be finite, got {data[~np.isfinite(data)][:5]}")
    lowest, highest = bounds if bounds is not None else (-math.inf, math.inf)
    outside = data[(data < lowest) | (data > highest)]
    if outside.size:
        raise ValueError(f"values must lie in {bounds}, got {outside[:5]}")
    mean = float(data.mean())
    if data.size == 1:
        return mean, mean, mean
    half = student_t_quantile(confidence, data.size - 1) * float(data.std(ddof=1))
    half /= math.sqrt(data.size)
    return mean, max(lowest, mean - half), min(highest, mean + half)
