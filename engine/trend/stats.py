"""Small robust and least-squares statistics in pure Python (no numpy by house rule).

Every function takes plain sequences, returns plain floats and never raises on
short input: the caller checks the point counts it needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

# For a normal distribution, sigma = 1.4826 x the median absolute deviation.
MAD_TO_SIGMA = 1.4826


def median(values: Sequence[float]) -> float:
    """The median; 0 for an empty sequence (callers check counts first)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def diff_jitter(values: Sequence[float]) -> float:
    """Robust sigma of a series' own jitter around its local trend.

    The MAD of consecutive differences (around their median, which removes a
    linear trend), divided by sqrt(2) because a difference holds two jitters.
    Rare large moves (a step, a GC drop) are outliers the median ignores.
    """
    diffs = [b - a for a, b in pairwise(values)]
    if len(diffs) < 2:
        return 0.0
    centre = median(diffs)
    return MAD_TO_SIGMA * median([abs(d - centre) for d in diffs]) / math.sqrt(2.0)


def linear_fit(times: Sequence[float], values: Sequence[float]) -> tuple[float, float, float]:
    """Least squares line: (slope, intercept at the mean time, sum of squared time deviations)."""
    n = len(times)
    if n < 2:
        return 0.0, values[0] if values else 0.0, 0.0
    tm = sum(times) / n
    vm = sum(values) / n
    stt = sum((t - tm) ** 2 for t in times)
    if stt <= 0:
        return 0.0, vm, 0.0
    stv = sum((t - tm) * (v - vm) for t, v in zip(times, values, strict=True))
    return stv / stt, vm, stt


def quadratic_curvature(
    times: Sequence[float], values: Sequence[float]
) -> tuple[float, float, float]:
    """Least squares parabola on centred, scaled time.

    Returns (c, se_unit, residual_sd): c is the quadratic coefficient in units
    of value per (half-span)^2, se_unit its standard error per unit of noise
    sigma, residual_sd the residuals' standard deviation (n - 3 dof).
    """
    n = len(times)
    if n < 4:
        return 0.0, math.inf, 0.0
    t0, t1 = times[0], times[-1]
    half = (t1 - t0) / 2.0
    if half <= 0:
        return 0.0, math.inf, 0.0
    xs = [(t - t0) / half - 1.0 for t in times]
    # Orthogonalise x^2 against 1 and x (Gram-Schmidt on this design).
    xm = sum(xs) / n
    x = [v - xm for v in xs]
    sxx = sum(v * v for v in x)
    q = [v * v for v in xs]
    qm = sum(q) / n
    q = [v - qm for v in q]
    sqx = sum(a * b for a, b in zip(q, x, strict=True))
    p = [a - (sqx / sxx) * b for a, b in zip(q, x, strict=True)] if sxx > 0 else q
    spp = sum(v * v for v in p)
    if spp <= 0 or sxx <= 0:
        return 0.0, math.inf, 0.0
    vm = sum(values) / n
    c = sum(a * (v - vm) for a, v in zip(p, values, strict=True)) / spp
    b = sum(a * (v - vm) for a, v in zip(x, values, strict=True)) / sxx
    resid = [v - vm - b * xi - c * pi for v, xi, pi in zip(values, x, p, strict=True)]
    dof = max(1, n - 3)
    rsd = math.sqrt(sum(r * r for r in resid) / dof)
    return c, 1.0 / math.sqrt(spp), rsd


def theil_sen_slope(times: Sequence[float], values: Sequence[float]) -> float:
    """Slope of the Theil-Sen line: the median of the slopes between all pairs of points.

    Robust to up to ~29% of arbitrary outliers, so a batch spike or a missed
    saw-tooth trough that leaks into the floor cannot tilt the fit.
    Returns 0 when fewer than two distinct times are given.
    """
    n = len(times)
    slopes = [
        (values[j] - values[i]) / (times[j] - times[i])
        for i in range(n)
        for j in range(i + 1, n)
        if times[j] != times[i]
    ]
    return median(slopes) if slopes else 0.0
