"""One component's running aggregates, folded a batch of records at a time.

A batch is flat: each record is `RECORD_FIELDS` consecutive items of one list
(operation, size, timestamp, stack trace), so recording builds no object per
record for the garbage collector to track, and one slice takes a field of the
whole batch. With many components a fold holds only a few records of each (1,000
components share the 6,144 records of one fold), so what a fold costs per call
matters as much as what it costs per record. Hence two kinds of aggregates, each
folding only what its reports read: `LeakStats` for `LeakDetector` (held bytes,
checkpoints, doubling runs, traces) and `UsageStats` for `AllocationAnalyzer`
(size buckets, operations, timeline); per-record Python loops run only where a
batch needs them (frees, a possible doubling, several operations). Everything
kept is bounded (see docs/allocation-analysis.md).
`memalert.engine.allocations.records.AllocationLog` owns the locking: a stats object is only
touched under its lock.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections import deque
from itertools import chain, compress, repeat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

KIB = 1024
MIB = 1024 * KIB

# (name, inclusive upper bound in bytes); the last bucket is unbounded.
SIZE_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("tiny", KIB),
    ("small", 64 * KIB),
    ("medium", MIB),
    ("large", 16 * MIB),
    ("huge", None),
)
_TINY_BOUND, _SMALL_BOUND, _MEDIUM_BOUND, _LARGE_BOUND = (
    bound for _, bound in SIZE_BUCKETS if bound is not None
)
LARGE_ALLOCATION_BYTES = MIB
# An allocation "about double the previous one or more": the 5% slack makes exact
# doubling (and allocator rounding just under it) count.
DOUBLING_RATIO = 1.9

MAX_OPERATIONS = 256
TRACE_SLOTS = 16
OTHER = "<other>"

# A record is RECORD_FIELDS consecutive items of a batch: operation, size, timestamp,
# stack trace. A deallocation is FREED_OPERATION, ~size (< 0), FREED_AT, None, so
# that sorting a batch's sizes or timestamps puts its frees first.
RECORD_FIELDS = 4
FREED_OPERATION = None
FREED_AT = float("-inf")
Trace = str | tuple[str, ...] | None


def _allocations(batch: list[Any], sizes: list[int]) -> list[Any]:
    """The batch without its frees, still flat; `sizes` is its sizes field."""
    records = zip(*[iter(batch)] * RECORD_FIELDS, strict=True)
    return list(chain.from_iterable(compress(records, map(operator.ge, sizes, repeat(0)))))


def _last_allocation(sizes: list[int]) -> int:
    return next(size for size in reversed(sizes) if size >= 0)


def trace_text(trace: Trace) -> str | None:
    return "\n".join(trace) if isinstance(trace, tuple) else trace


class ComponentStats:
    """What both kinds of aggregates keep: counts, bytes and what is still held."""

    __slots__ = (
        "allocated_bytes",
        "allocation_count",
        "deallocation_count",
        "freed_bytes",
        "name",
        "outstanding_bytes",
        "over_deallocated_bytes",
        "over_deallocations",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.allocation_count = 0
        self.allocated_bytes = 0
        self.deallocation_count = 0
        self.freed_bytes = 0
        self.outstanding_bytes = 0
        self.over_deallocations = 0
        self.over_deallocated_bytes = 0

    @property
    def average_bytes(self) -> float:
        return self.allocated_bytes / self.allocation_count if self.allocation_count else 0.0

    def fold(self, batch: list[Any]) -> int:
        """Apply one flat batch in arrival order; return its largest allocation (< 0: none)."""
        sizes: list[int] = batch[1::RECORD_FIELDS]
        ordered = sorted(sizes)
        if ordered[0] < 0:
            frees = bisect_left(ordered, 0)
            outstanding_after = self._apply_frees(sizes, frees)
            if frees == len(ordered):
                return -1
            total: int = sum(ordered[frees:])
        else:
            frees = 0
            total = sum(ordered)
            self.outstanding_bytes += total
            outstanding_after = None
        self.allocation_count += len(ordered) - frees
        self.allocated_bytes += total
        self._fold_allocations(
            batch, sizes, ordered, frees, total=total, outstanding_after=outstanding_after
        )
        return ordered[-1]

    def _fold_allocations(
        self,
        batch: list[Any],
        sizes: list[int],
        ordered: list[int],
        frees: int,
        *,
        total: int,
        outstanding_after: list[int] | None,
    ) -> None:
        """Fold what this kind keeps beyond the counts; the frees are already applied.

        `ordered` is `sizes` sorted, its first `frees` items frees; `total` is the bytes
        allocated; `outstanding_after` holds the bytes held after each allocation when
        the batch had frees (else None: the allocations only added up).
        """
        raise NotImplementedError

    def _apply_frees(self, sizes: list[int], frees: int) -> list[int]:
        """Apply a batch's `frees` frees in order; return the bytes held after each allocation."""
        outstanding = self.outstanding_bytes
        freed_total = 0
        after_allocation: list[int] = []
        for size in sizes:
            if size >= 0:
                outstanding += size
                after_allocation.append(outstanding)
                continue
            freed = ~size
            if freed > outstanding:
                # More freed than held: clamp at zero and count it, never go negative.
                self.over_deallocations += 1
                self.over_deallocated_bytes += freed - outstanding
                freed = outstanding
            freed_total += freed
            outstanding -= freed
        self.deallocation_count += frees
        self.freed_bytes += freed_total
        self.outstanding_bytes = outstanding
        return after_allocation


class LeakStats(ComponentStats):
    """What leak detection reads: activity span, recent growth, patterns' evidence."""

    __slots__ = (
        "checkpoint_due",
        "doubling_limit",
        "doubling_run",
        "first_seen",
        "large_count",
        "last_seen",
        "longest_doubling_run",
        "newer_checkpoint",
        "older_checkpoint",
        "tiny_count",
        "top_trace",
        "traces",
        "traces_tracked",
    )

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.first_seen = float("inf")
        self.last_seen = float("-inf")
        self.tiny_count = 0
        self.large_count = 0
        # An allocation above the limit continues the doubling run: DOUBLING_RATIO times
        # the last allocation (nothing before the first allocation doubles).
        self.doubling_limit = float("inf")
        self.doubling_run = 0
        self.longest_doubling_run = 0
        # trace -> [count, error, when tracked]; see `_count_traces`.
        self.traces: dict[str | tuple[str, ...], list[int]] = {}
        self.traces_tracked = 0
        # The trace with the highest guaranteed count (count - error), the first tracked
        # among equals, and that count: kept up to date so analyses need not search.
        self.top_trace: tuple[Trace, int] = (None, 0)
        # (timestamp, outstanding bytes) reference points; see `_advance_checkpoints`.
        self.older_checkpoint: tuple[float, int] | None = None
        self.newer_checkpoint: tuple[float, int] | None = None
        self.checkpoint_due = float("-inf")

    @property
    def span_seconds(self) -> float:
        return max(0.0, self.last_seen - self.first_seen) if self.allocation_count else 0.0

    @property
    def recent_growth_bytes(self) -> int:
        """Outstanding bytes gained since the older checkpoint (covers >= the recent half)."""
        reference = self.older_checkpoint[1] if self.older_checkpoint else 0
        return self.outstanding_bytes - reference

    def _fold_allocations(
        self,
        batch: list[Any],
        sizes: list[int],
        ordered: list[int],
        frees: int,
        *,
        total: int,
        outstanding_after: list[int] | None,
    ) -> None:
        chronological = sorted(batch[2::RECORD_FIELDS])  # frees (FREED_AT) first
        self.first_seen = min(self.first_seen, chronological[frees])
        self.last_seen = max(self.last_seen, chronological[-1])
        tiny = bisect_right(ordered, _TINY_BOUND, frees)
        self.tiny_count += tiny - frees
        self.large_count += len(ordered) - bisect_left(ordered, LARGE_ALLOCATION_BYTES, tiny)
        if ordered[-1] > min(ordered[frees] * DOUBLING_RATIO, self.doubling_limit):
            self._count_doublings(sizes)
        else:  # nothing here is big enough to be a step: the run is broken
            self.doubling_run = 0
            last = _last_allocation(sizes) if frees else sizes[-1]
            self.doubling_limit = last * DOUBLING_RATIO
        traces: list[Trace] = batch[3::RECORD_FIELDS]
        if traces.count(None) != len(traces):
            self._count_traces(traces)
        if self.last_seen >= self.checkpoint_due:
            if outstanding_after is None:
                before = self.outstanding_bytes - total
                stamps = batch[2::RECORD_FIELDS]
                self._advance_checkpoints(stamps, lambda i: before + sum(sizes[: i + 1]))
            else:
                stamps = list(compress(batch[2::RECORD_FIELDS], map(operator.ge, sizes, repeat(0))))
                self._advance_checkpoints(stamps, outstanding_after.__getitem__)

    def _count_doublings(self, sizes: list[int]) -> None:
        # Runs of allocations each more than DOUBLING_RATIO x the previous one; the first
        # run continues the one carried over from the previous batch, and frees (< 0) do
        # not break a run. A plain loop: it beats building a byte string of steps with
        # map() at any batch size.
        run = self.doubling_run
        longest = self.longest_doubling_run
        limit = self.doubling_limit
        for size in sizes:
            if size > limit:
                run += 1
                limit = size * DOUBLING_RATIO
            elif size >= 0:
                if run:
                    longest = max(longest, run)
                    run = 0
                limit = size * DOUBLING_RATIO
        self.doubling_run = run
        self.longest_doubling_run = max(longest, run)
        self.doubling_limit = limit

    def _count_traces(self, traces: Sequence[Trace]) -> None:
        # Space-saving heavy hitters: when all slots are taken, the least counted trace
        # gives its slot to the newcomer, whose count inherits it as a known error bound.
        tracked = self.traces
        top, top_count, top_order = self._top_trace()
        for trace in traces:
            if not trace:
                continue
            entry = tracked.get(trace)
            if entry is None:
                floor = 0
                if len(tracked) >= TRACE_SLOTS:
                    evicted = min(tracked, key=lambda key: tracked[key][0])
                    floor = tracked.pop(evicted)[0]
                    if evicted == top:
                        self.top_trace = (None, 0)
                        top, top_count, top_order = self._top_trace()
                entry = tracked[trace] = [floor, floor, self.traces_tracked]
                self.traces_tracked += 1
            entry[0] += 1
            count = entry[0] - entry[1]
            if count > top_count or (count == top_count and entry[2] < top_order):
                top, top_count, top_order = trace, count, entry[2]
        self.top_trace = (top, top_count)

    def _top_trace(self) -> tuple[Trace, int, int]:
        """`top_trace` and when it was tracked; searched for if unknown (it was evicted)."""
        top, count = self.top_trace
        if top is not None:
            return top, count, self.traces[top][2]
        best: tuple[Trace, int, int] = (None, 0, 0)
        for trace, (trace_count, error, order) in self.traces.items():
            if trace_count - error > best[1]:
                best = (trace, trace_count - error, order)
        return best

    def _advance_checkpoints(
        self, stamps: Sequence[float], outstanding_at: Callable[[int], int]
    ) -> None:
        """Keep `older_checkpoint` within the older half of the activity span.

        The newer checkpoint moves to the first allocation at least as far past it as it
        is past `first_seen`, and the older one takes its place, so the window from the
        older checkpoint to now always covers at least the recent half of the span
        (assuming records arrive in time order; otherwise placement is approximate).
        """
        newer = self.newer_checkpoint or (self.first_seen, 0)
        start = 0
        while True:
            if newer[0] <= self.first_seen:
                index = bisect_right(stamps, newer[0], start)
            else:
                index = bisect_left(stamps, 2 * newer[0] - self.first_seen, start)
            if index >= len(stamps):
                break
            self.older_checkpoint = newer
            newer = (stamps[index], outstanding_at(index))
            start = index + 1
        self.newer_checkpoint = newer
        # Folds skip this method until the newer checkpoint is due to move.
        self.checkpoint_due = max(newer[0], 2 * newer[0] - self.first_seen)


class UsageStats(ComponentStats):
    """What the allocation analyzer reads: sizes, operations and recent allocations."""

    __slots__ = ("bucket_counts", "largest_bytes", "operations", "timeline")

    def __init__(self, name: str, timeline_length: int) -> None:
        super().__init__(name)
        self.largest_bytes = 0
        self.bucket_counts = [0] * len(SIZE_BUCKETS)
        self.operations: dict[str, list[int]] = {}  # operation -> [count, bytes]
        # The recent allocations, flat as in a batch (RECORD_FIELDS items each).
        self.timeline: deque[Any] = deque(maxlen=timeline_length * RECORD_FIELDS)

    def _fold_allocations(
        self,
        batch: list[Any],
        sizes: list[int],
        ordered: list[int],
        frees: int,
        *,
        total: int,
        outstanding_after: list[int] | None,
    ) -> None:
        count = len(ordered) - frees
        largest = ordered[-1]
        self.largest_bytes = max(self.largest_bytes, largest)
        if largest <= _TINY_BOUND:  # the common case for object-heavy code: one bucket
            self.bucket_counts[0] += count
        else:
            self._count_sizes(ordered, frees)
        operations: list[str] = batch[0::RECORD_FIELDS]
        entry = self.operations.get(operations[0])
        if entry is not None and operations.count(operations[0]) == count:
            entry[0] += count
            entry[1] += total
        else:
            self._count_operations(operations, sizes)
        self.timeline.extend(_allocations(batch, sizes) if frees else batch)

    def _count_sizes(self, ordered: list[int], frees: int) -> None:
        """Count the allocations of `ordered`, sorted sizes whose first `frees` are frees."""
        tiny = bisect_right(ordered, _TINY_BOUND, frees)
        small = bisect_right(ordered, _SMALL_BOUND, tiny)
        medium = bisect_right(ordered, _MEDIUM_BOUND, small)
        large = bisect_right(ordered, _LARGE_BOUND, medium)
        buckets = self.bucket_counts
        buckets[0] += tiny - frees
        buckets[1] += small - tiny
        buckets[2] += medium - small
        buckets[3] += large - medium
        buckets[4] += len(ordered) - large

    def _count_operations(self, operations: Sequence[str | None], sizes: Sequence[int]) -> None:
        known = self.operations
        for name, size in zip(operations, sizes, strict=True):
            entry = known.get(name)  # type: ignore[arg-type]  # None: a free, never a key
            if entry is None:
                if name is None:  # a free
                    continue
                # Past the cap, new names share one entry instead of growing without bound.
                key = name if len(known) < MAX_OPERATIONS else OTHER
                entry = known.setdefault(key, [0, 0])
            entry[0] += 1
            entry[1] += size
