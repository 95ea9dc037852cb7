"""Robust statistics for short series, in pure Python (no numpy by house rule).

The trend detector judges windows of at most a few dozen points, so the
quadratic Theil-Sen estimator costs a few tens of microseconds and needs no
cleverness. Both functions take plain sequences and return plain floats.
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
