"""Robust statistics for short series, in pure Python (no numpy by house rule).

The trend detector judges windows of at most a few dozen points, so the
quadratic estimators below (Theil-Sen, Kendall's tau) cost well under a
millisecond and need no cleverness. Each function takes plain sequences and
returns plain floats.
"""

from __future__ import annotations

from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    """The median; an empty sequence is a programming error, not a data error."""
    if not values:
        raise ValueError("median of an empty sequence")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def theil_sen(times: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """Slope and intercept of the Theil-Sen line: the median of pairwise slopes.

    Robust to up to ~29% of arbitrary outliers, so a batch spike or a missed
    saw-tooth trough that leaks into the floor cannot tilt the fit.
    Returns (0, median) when fewer than two distinct times are given.
    """
    n = len(times)
    slopes = [
        (values[j] - values[i]) / (times[j] - times[i])
        for i in range(n)
        for j in range(i + 1, n)
        if times[j] != times[i]
    ]
    if not slopes:
        return 0.0, median(values) if values else 0.0
    slope = median(slopes)
    intercept = median([v - slope * t for t, v in zip(times, values, strict=True)])
    return slope, intercept


def kendall_tau(values: Sequence[float]) -> float:
    """Kendall's tau of the values against their order, in [-1, 1].

    1 means every later point is above every earlier one: growth that is
    sustained across the whole window rather than concentrated in part of it.
    """
    n = len(values)
    if n < 2:
        return 0.0
    score = 0
    for i in range(n - 1):
        vi = values[i]
        for vj in values[i + 1 :]:
            if vj > vi:
                score += 1
            elif vj < vi:
                score -= 1
    return score / (n * (n - 1) / 2.0)


def mad_scale(residuals: Sequence[float]) -> float:
    """Median absolute deviation scaled to estimate a normal standard deviation."""
    if not residuals:
        return 0.0
    centre = median(residuals)
    return 1.4826 * median([abs(r - centre) for r in residuals])
