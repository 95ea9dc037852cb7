"""Which samples stand for their series at `now`: Prometheus's lookback and staleness.

A series whose sample is missing keeps its last value for `LOOKBACK_SECONDS`
(promtool's `_`, a skipped scrape); a target reported `up` == 0 is stale at
once, and a NaN sample ends its series (Prometheus's staleness markers).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from memalert.engine.core.model import Labels, Sample

# Prometheus's default query lookback: how long a sample stands for its series.
LOOKBACK_SECONDS = 300.0

SeriesKey = tuple[str, Labels]


def current_series(
    previous: Mapping[SeriesKey, Sample], samples: Iterable[Sample], now: float
) -> dict[SeriesKey, Sample]:
    """Merge this tick's samples over the remembered ones, dropping stale series.

    The order is the evaluator's event order: remembered series first, then this
    tick's in the order given.
    """
    fresh: dict[SeriesKey, Sample] = {}
    down: set[str] = set()
    for sample in samples:
        fresh[(sample.metric, sample.labels)] = sample
        if sample.metric == "up" and sample.value == 0:
            down.add(sample.target)
    oldest = now - LOOKBACK_SECONDS
    merged = {
        key: sample
        for key, sample in previous.items()
        if key not in fresh and sample.ts >= oldest and not (down and sample.target in down)
    }
    for key, sample in fresh.items():
        # NaN is Prometheus's staleness marker: the series ends here (promtool `stale`).
        if math.isnan(sample.value) or (down and sample.metric != "up" and sample.target in down):
            continue
        merged[key] = sample
    return merged
