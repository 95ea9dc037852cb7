"""Allocation analysis over in-process records: where memory goes and what to change.

Every report reads the bounded per-component aggregates of `memalert.engine.allocations.records`,
so its cost depends on the number of components and operations, never on the
number of allocations recorded. Definitions, thresholds and the efficiency
formula are in docs/allocation-analysis.md.
"""

from __future__ import annotations

import enum
import heapq
import operator
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from memalert.engine.allocations.records import Allocation, AllocationLog
from memalert.engine.allocations.stats import RECORD_FIELDS, SIZE_BUCKETS, UsageStats, trace_text
from memalert.engine.core.units import format_bytes, format_percent

if TYPE_CHECKING:
    from collections.abc import Callable

# 64 recent records per component: enough to read what a component did lately, and
# 1,000 components then hold ~8 MB of history (about 124 bytes a record), not ~32 MB.
TIMELINE_LENGTH = 64
POOLING_MIN_ALLOCATIONS = 1000
POOLING_MIN_SMALL_SHARE = 0.8
# A hot spot holds at least a quarter of the total and 1.5x an even share of it (so
# with two components only one above 75% is singled out).
HOT_SPOT_MIN_SHARE = 0.25
HOT_SPOT_EVEN_SHARE_FACTOR = 1.5
# What one allocation costs beyond its payload (allocator header and alignment, as in
# glibc malloc on 64-bit): the efficiency score charges it to every allocation.
ALLOCATION_OVERHEAD_BYTES = 16
_SMALL_LIMIT = SIZE_BUCKETS[1][1] or 0
_LARGE_LIMIT = SIZE_BUCKETS[3][1] or 0


class RecommendationKind(enum.Enum):
    OBJECT_POOLING = "object_pooling"
    STREAMING = "streaming"
    COMPONENT_HOT_SPOT = "component_hot_spot"
    OPERATION_HOT_SPOT = "operation_hot_spot"


@dataclass(frozen=True, kw_only=True, slots=True)
class ComponentUsage:
    component: str
    allocation_count: int
    total_bytes: int
    average_bytes: float
    largest_bytes: int


@dataclass(frozen=True, kw_only=True, slots=True)
class OperationUsage:
    component: str
    operation: str
    allocation_count: int
    total_bytes: int


@dataclass(frozen=True, kw_only=True, slots=True)
class SizeBucket:
    """Allocations of at most `upper_bound_bytes` (None: unbounded) above the previous bucket."""

    name: str
    upper_bound_bytes: int | None
    allocation_count: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Recommendation:
    kind: RecommendationKind
    component: str
    operation: str | None
    message: str


# -- recommendations: one rule each, in reporting order -------------------------------


def _object_pooling(components: list[UsageStats]) -> list[Recommendation]:
    found = []
    for stats in components:
        count = stats.allocation_count
        small = stats.bucket_counts[0] + stats.bucket_counts[1]
        if count >= POOLING_MIN_ALLOCATIONS and small >= POOLING_MIN_SMALL_SHARE * count:
            message = (
                f"{stats.name}: {format_percent(small / count)} of {_allocations(count)} are "
                f"{format_bytes(_SMALL_LIMIT)} or less (average "
                f"{format_bytes(stats.average_bytes)}): reuse objects from a pool"
            )
            found.append(_recommend(RecommendationKind.OBJECT_POOLING, stats.name, None, message))
    return found


def _streaming(components: list[UsageStats]) -> list[Recommendation]:
    found = []
    for stats in components:
        huge = stats.bucket_counts[-1]
        if huge:
            message = (
                f"{stats.name}: {_allocations(huge)} over {format_bytes(_LARGE_LIMIT)} (largest "
                f"{format_bytes(stats.largest_bytes)}): stream or process the data in chunks"
            )
            found.append(_recommend(RecommendationKind.STREAMING, stats.name, None, message))
    return found


def _component_hot_spots(components: list[UsageStats]) -> list[Recommendation]:
    total = sum(s.allocated_bytes for s in components)
    if len(components) < 2 or total == 0:
        return []
    floor = max(HOT_SPOT_MIN_SHARE, HOT_SPOT_EVEN_SHARE_FACTOR / len(components)) * total
    return [
        _recommend(
            RecommendationKind.COMPONENT_HOT_SPOT,
            s.name,
            None,
            f"{s.name}: {format_percent(s.allocated_bytes / total)} of all bytes allocated "
            f"({format_bytes(s.allocated_bytes)}): start optimising here",
        )
        for s in components
        if s.allocated_bytes >= floor
    ]


def _operation_hot_spots(components: list[UsageStats]) -> list[Recommendation]:
    # Each allocation is counted under exactly one operation: the operations' calls add
    # up to the allocations, and no operation of a component below the floor reaches it.
    total = sum(s.allocation_count for s in components)
    operations = sum(len(s.operations) for s in components)
    if operations < 2 or total == 0:
        return []
    floor = max(HOT_SPOT_MIN_SHARE, HOT_SPOT_EVEN_SHARE_FACTOR / operations) * total
    return [
        _recommend(
            RecommendationKind.OPERATION_HOT_SPOT,
            s.name,
            op,
            f"{s.name}/{op}: {format_percent(count / total)} of all allocation calls "
            f"({count}): batch or hoist these allocations",
        )
        for s in components
        if s.allocation_count >= floor
        for op, (count, _) in s.operations.items()
        if count >= floor
    ]


def _recommend(
    kind: RecommendationKind, component: str, op: str | None, message: str
) -> Recommendation:
    return Recommendation(kind=kind, component=component, operation=op, message=message)


_RULES: tuple[Callable[[list[UsageStats]], list[Recommendation]], ...] = (
    _object_pooling,
    _streaming,
    _component_hot_spots,
    _operation_hot_spots,
)


def _allocations(count: int) -> str:
    return f"{count} allocation" if count == 1 else f"{count} allocations"


def _checked_count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    return n


class AllocationAnalyzer(AllocationLog[UsageStats]):
    """Records allocations per component and reports on them (thread-safe).

    `timeline(component)` keeps the last `timeline_length` allocations per component.
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, *, timeline_length: int = TIMELINE_LENGTH
    ) -> None:
        if isinstance(timeline_length, bool) or not isinstance(timeline_length, int):
            raise TypeError(f"timeline_length must be an int, got {timeline_length!r}")
        if timeline_length < 1:
            raise ValueError(f"timeline_length must be >= 1, got {timeline_length}")
        super().__init__(clock, partial(UsageStats, timeline_length=timeline_length))

    def top_allocators(self, n: int = 20) -> list[ComponentUsage]:
        """The `n` components that allocated the most bytes, most first."""
        n = _checked_count(n)
        with self._settled():
            top = heapq.nlargest(n, self._by_name(), key=_by_allocated_bytes)
            return [
                ComponentUsage(
                    component=s.name,
                    allocation_count=s.allocation_count,
                    total_bytes=s.allocated_bytes,
                    average_bytes=s.average_bytes,
                    largest_bytes=s.largest_bytes,
                )
                for s in top
            ]

    def top_operations(self, n: int = 20) -> list[OperationUsage]:
        """The `n` (component, operation) pairs with the most allocation calls, most first."""
        n = _checked_count(n)
        with self._settled() as stats:
            counts = [entry[0] for s in stats.values() for entry in s.operations.values()]
            if not n or not counts:
                return []
            # Only pairs counted at least as often as the n-th most frequent can be in the
            # top n, and no operation is counted more often than its component.
            floor = heapq.nlargest(n, counts)[-1]
            rows = sorted(
                (name, op, entry[0], entry[1])
                for name, s in stats.items()
                if s.allocation_count >= floor
                for op, entry in s.operations.items()
                if entry[0] >= floor
            )
        return [
            OperationUsage(component=c, operation=op, allocation_count=count, total_bytes=size)
            for c, op, count, size in heapq.nlargest(n, rows, key=operator.itemgetter(2))
        ]

    def size_distribution(self) -> list[SizeBucket]:
        """Allocation counts per size bucket, tiny to huge."""
        with self._settled() as stats:
            counts = [
                sum(column)
                for column in zip(*(s.bucket_counts for s in stats.values()), strict=True)
            ]
        counts = counts or [0] * len(SIZE_BUCKETS)
        return [
            SizeBucket(name=name, upper_bound_bytes=bound, allocation_count=count)
            for (name, bound), count in zip(SIZE_BUCKETS, counts, strict=True)
        ]

    def recommendations(self) -> list[Recommendation]:
        with self._settled():
            components = self._by_name()
            return [found for rule in _RULES for found in rule(components)]

    def fragmentation(self) -> dict[str, float]:
        """Largest / average allocation per component (1.0: all the same size)."""
        with self._settled():
            return {s.name: _spread(s) for s in self._by_name()}

    def efficiency_score(self) -> float:
        """Payload share after per-allocation overhead, times byte-weighted size uniformity.

        In [0, 1]; 1.0 when nothing was recorded. See docs/allocation-analysis.md.
        """
        with self._settled() as stats:
            components = list(stats.values())
        count = sum(s.allocation_count for s in components)
        if count == 0:
            return 1.0
        payload = sum(s.allocated_bytes for s in components)
        overhead_share = payload / (payload + ALLOCATION_OVERHEAD_BYTES * count)
        if payload == 0:
            return overhead_share
        uniformity = sum(s.allocated_bytes / _spread(s) for s in components) / payload
        return overhead_share * uniformity

    def timeline(self, component: str) -> list[Allocation]:
        """The component's most recent allocations in time order (empty if unknown)."""
        with self._settled_component(component) as found:
            fields = list(found.timeline) if found else []
        recent = list(zip(*[iter(fields)] * RECORD_FIELDS, strict=True))
        recent.sort(key=operator.itemgetter(2))
        return [
            Allocation(
                component=component,
                operation=op,
                size_bytes=size,
                timestamp=stamp,
                stack_trace=trace_text(trace),
            )
            for op, size, stamp, trace in recent
        ]


_by_allocated_bytes = operator.attrgetter("allocated_bytes")


def _spread(stats: UsageStats) -> float:
    average = stats.average_bytes
    return stats.largest_bytes / average if average > 0 else 1.0


__all__ = [
    "AllocationAnalyzer",
    "ComponentUsage",
    "OperationUsage",
    "Recommendation",
    "RecommendationKind",
    "SizeBucket",
]
