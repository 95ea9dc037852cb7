"""The leak verdict for one short run (`memalert exec`): minutes, not hours, of history.

A CI job cannot wait for the trend detector's hour-long windows, but it has what a
daemon lacks: the whole run, start to end. The verdict judges the run's *floor*:

1. The first `warmup_share` of the run is start-up and warm-up (imports, caches,
   pools, JIT), and its end is exit (heaps freed): the last `teardown_share`, or
   the final run of falling bucket lows if longer. Neither is judged.
2. The rest is cut into `segments` of equal time; each segment's lowest sample is
   its floor. A GC saw-tooth or a per-iteration working set lifts the peaks, not
   the troughs, so a bounded program's floors stay level.
3. A leak is growth of the floor that is large (above `min_leak_bytes` and
   `z` floor jitters, the jitter measured on the floors themselves around their
   Theil-Sen line), spread out (most segment-to-segment steps rise and no single
   step holds more than `max_step_share` of it: one-time allocations are steps
   that hold), not levelling off (the later half's slope is at least
   `min_late_to_early` of the earlier half's) and still at its high at the end.

The state is bounded: `ShortRunHistory` keeps at most `MAX_BUCKETS` (min, max)
buckets and doubles their width when full, so a run of any length costs the same.
docs/ci.md explains the method and its figures.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from memalert.engine.trend.stats import median, theil_sen_slope

MAX_BUCKETS = 512
HOUR = 3600.0


@dataclass(frozen=True, kw_only=True, slots=True)
class ShortRunParams:
    warmup_share: float = 0.25
    # The end of a run is teardown (interpreters free their heaps on exit): the last
    # `teardown_share` of the run, and at least two buckets, are not judged either.
    teardown_share: float = 0.03
    segments: int = 6
    min_samples_per_segment: int = 2
    min_leak_bytes: float = 8 * 1024 * 1024
    z: float = 4.0
    min_rising_share: float = 0.6
    max_step_share: float = 0.6
    min_late_to_early: float = 0.3
    # Floors are whole pages of many allocations: jitter below this is rounding.
    min_jitter_bytes: float = 256 * 1024

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_share < 1 or self.segments < 3:
            raise ValueError("ShortRunParams: need 0 <= warmup_share < 1 and segments >= 3")


@dataclass(frozen=True, kw_only=True, slots=True)
class ShortRunVerdict:
    leaking: bool
    leak_bytes: float  # floor growth over the judged part of the run (0 when not leaking)
    growth_bytes_per_hour: float
    confidence: float  # 0..1; >= 0.5 exactly when `leaking`
    reason: str  # one line for people: why it is or is not a leak
    floors: tuple[tuple[float, float], ...] = ()  # (segment middle, floor) for the report
    # The floors' Theil-Sen line, bytes = intercept + slope x unix seconds (the report's).
    trend: tuple[float, float] | None = None  # (slope, intercept)


@dataclass
class ShortRunHistory:
    """Bucketed (start, min, max) of one series; bounded whatever the run's length."""

    width: float = 0.25
    buckets: list[list[float]] = field(default_factory=list)  # [start, low, high]
    first_ts: float | None = None
    last_ts: float | None = None

    def add(self, ts: float, value: float) -> None:
        if not (math.isfinite(ts) and math.isfinite(value)) or value < 0:
            return
        if self.last_ts is not None and ts <= self.last_ts:
            return
        first = ts if self.first_ts is None else self.first_ts
        offset = (ts - first) / self.width
        if not math.isfinite(offset):
            return  # timestamps decades apart: not one run
        self.first_ts, self.last_ts = first, ts
        start = first + math.floor(offset) * self.width
        if self.buckets and self.buckets[-1][0] == start:
            bucket = self.buckets[-1]
            bucket[1], bucket[2] = min(bucket[1], value), max(bucket[2], value)
            return
        self.buckets.append([start, value, value])
        if len(self.buckets) > MAX_BUCKETS:
            self._coarsen()

    def _coarsen(self) -> None:
        assert self.first_ts is not None
        self.width *= 2
        merged: list[list[float]] = []
        for start, low, high in self.buckets:
            aligned = self.first_ts + math.floor((start - self.first_ts) / self.width) * self.width
            if merged and merged[-1][0] == aligned:
                merged[-1][1] = min(merged[-1][1], low)
                merged[-1][2] = max(merged[-1][2], high)
            else:
                merged.append([aligned, low, high])
        self.buckets = merged


def judge(history: ShortRunHistory, params: ShortRunParams | None = None) -> ShortRunVerdict:
    """The verdict on the run so far; pure in the history it is given."""
    p = params or ShortRunParams()
    if history.first_ts is None or history.last_ts is None:
        return _not_leaking("no samples yet")
    span = history.last_ts - history.first_ts
    judged_from = history.first_ts + p.warmup_share * span
    judged_to = min(
        history.last_ts - max(2 * history.width, p.teardown_share * span),
        _final_fall_start(history.buckets),
    )
    judged = [b for b in history.buckets if judged_from <= b[0] < judged_to]
    if len(judged) < p.segments * p.min_samples_per_segment:
        return _not_leaking("too short to judge: too few samples after the warm-up")
    length = (judged_to - judged_from) / p.segments
    floors: list[tuple[float, float]] = []
    for k in range(p.segments):
        lo, hi = judged_from + k * length, judged_from + (k + 1) * length
        part = [b[1] for b in judged if lo <= b[0] < hi or (k == p.segments - 1 and b[0] >= lo)]
        if part:
            floors.append((lo + length / 2, min(part)))
    if len(floors) < 3:
        return _not_leaking("too short to judge: too few segments after the warm-up")
    return _verdict(floors, p)


def _final_fall_start(buckets: list[list[float]]) -> float:
    """Where the run's final fall begins: the start of the first bucket of it.

    Exit frees heaps bucket after bucket, and on a loaded machine (or under
    tracemalloc, which tracks every free) that takes longer than any fixed
    teardown share: a leak's kept memory going away at exit is not a floor.
    """
    i = len(buckets) - 1
    while i > 0 and buckets[i - 1][1] > buckets[i][1]:
        i -= 1
    return buckets[i + 1][0] if i < len(buckets) - 1 else math.inf


def _verdict(floors: list[tuple[float, float]], p: ShortRunParams) -> ShortRunVerdict:
    times = [t for t, _ in floors]
    values = [v for _, v in floors]
    slope = theil_sen_slope(times, values)
    intercept = median([v - slope * t for t, v in floors])
    residuals = [abs(v - (intercept + slope * t)) for t, v in floors]
    jitter = max(p.min_jitter_bytes, 1.4826 * median(residuals))
    rise = values[-1] - values[0]
    steps = [b - a for a, b in itertools.pairwise(values)]
    rising = sum(1 for s in steps if s > jitter) / len(steps)
    largest = max(steps)
    half = len(floors) // 2
    early = theil_sen_slope(times[: half + 1], values[: half + 1])
    late = theil_sen_slope(times[half:], values[half:])
    per_hour = slope * HOUR
    shown = tuple(floors)
    checks = (
        (rise >= p.min_leak_bytes, f"floor grew {rise / 2**20:.1f} MiB, under the minimum"),
        (rise >= p.z * jitter, "floor growth within its own jitter"),
        (rising >= p.min_rising_share, "growth not spread over the run (steps that hold)"),
        (largest <= p.max_step_share * rise, "most of the growth is one step that holds"),
        (early > 0 and late >= p.min_late_to_early * early, "growth levels off: saturating"),
        (values[-1] >= max(values) - jitter, "the floor fell back from its high"),
    )
    failed = [why for ok, why in checks if not ok]
    passed = len(checks) - len(failed)
    if failed:
        confidence = 0.45 * passed / len(checks)
        return ShortRunVerdict(
            leaking=False,
            leak_bytes=0.0,
            growth_bytes_per_hour=0.0,
            confidence=confidence,
            reason=failed[0],
            floors=shown,
            trend=(slope, intercept),
        )
    strength = min(1.0, rise / (2 * p.z * jitter))
    return ShortRunVerdict(
        leaking=True,
        leak_bytes=rise,
        growth_bytes_per_hour=per_hour,
        confidence=0.5 + 0.5 * strength,
        reason=f"floor grew {rise / 2**20:.1f} MiB steadily after the warm-up",
        floors=shown,
        trend=(slope, intercept),
    )


def _not_leaking(reason: str) -> ShortRunVerdict:
    return ShortRunVerdict(
        leaking=False, leak_bytes=0.0, growth_bytes_per_hour=0.0, confidence=0.0, reason=reason
    )
