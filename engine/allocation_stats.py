"""One component's running aggregates, folded a batch of records at a time.

The fold uses C-level builtins over whole batches (`sum`, `sorted`, `bisect`,
`bytes.split`) so that its cost per record stays a fraction of a microsecond;
everything it keeps is bounded (see docs/allocation-analysis.md).
`engine.allocations.AllocationLog` owns the locking: a `ComponentStats` is only
touched under its lock.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections import deque
from itertools import accumulate, chain, compress, repeat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

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

# (operation, size, timestamp, stack trace); a deallocation stores ~size (< 0) and
# no operation or timestamp, so one `min()` tells a batch of pure allocations.
Record = tuple[str | None, int, float | None, str | tuple[str, ...] | None]


def _deltas(sizes: Sequence[int]) -> Iterator[int]:
    """Signed byte changes of records: a free stored as ~size = -size - 1 gives -size."""
    return map(operator.add, sizes, map(operator.lt, sizes, repeat(0)))


def trace_text(trace: str | tuple[str, ...] | None) -> str | None:
    return "\n".join(trace) if isinstance(trace, tuple) else trace


class ComponentStats:
    """Running aggregates of one component; mutated only under the owning log's lock."""

    __slots__ = (
        "allocated_bytes",
        "allocation_count",
        "bucket_counts",
        "checkpoint_due",
        "deallocation_count",
        "doubling_run",
        "first_seen",
        "freed_bytes",
        "large_count",
        "largest_bytes",
        "last_seen",
        "last_size",
        "longest_doubling_run",
        "name",
        "newer_checkpoint",
        "older_checkpoint",
        "operations",
        "outstanding_bytes",
        "over_deallocated_bytes",
        "over_deallocations",
        "timeline",
        "traces",
    )

    def __init__(self, name: str, timeline_length: int) -> None:
        self.name = name
        self.allocation_count = 0
        self.allocated_bytes = 0
        self.deallocation_count = 0
        self.freed_bytes = 0
        self.outstanding_bytes = 0
        self.over_deallocations = 0
        self.over_deallocated_bytes = 0
        self.first_seen = float("inf")
        self.last_seen = float("-inf")
        self.largest_bytes = 0
        self.bucket_counts = [0] * len(SIZE_BUCKETS)
        self.large_count = 0
        self.last_size: float = float("inf")  # nothing before the first allocation doubles
        self.doubling_run = 0
        self.longest_doubling_run = 0
        self.operations: dict[str, list[int]] = {}  # operation -> [count, bytes]
        self.traces: dict[str | tuple[str, ...], list[int]] = {}  # trace -> [count, error]
        self.timeline: deque[Record] | None = (
            deque(maxlen=timeline_length) if timeline_length else None
        )
        # (timestamp, outstanding bytes) reference points; see `_advance_checkpoints`.
        self.older_checkpoint: tuple[float, int] | None = None
        self.newer_checkpoint: tuple[float, int] | None = None
        self.checkpoint_due = float("-inf")

    @property
    def average_bytes(self) -> float:
        return self.allocated_bytes / self.allocation_count if self.allocation_count else 0.0

    @property
    def span_seconds(self) -> float:
        return max(0.0, self.last_seen - self.first_seen) if self.allocation_count else 0.0

    @property
    def recent_growth_bytes(self) -> int:
        """Outstanding bytes gained since the older checkpoint (covers >= the recent half)."""
        reference = self.older_checkpoint[1] if self.older_checkpoint else 0
        return self.outstanding_bytes - reference

    def most_repeated_trace(self) -> tuple[str | tuple[str, ...] | None, int]:
        """The trace with the highest guaranteed count (count - error), and that count."""
        best: tuple[str | tuple[str, ...] | None, int] = (None, 0)
        for trace, (count, error) in self.traces.items():
            if count - error > best[1]:
                best = (trace, count - error)
        return best

    def fold(self, records: list[Record]) -> tuple[Sequence[Record], int]:
        """Apply one batch in arrival order; return its allocations and the largest size."""
        operations, sizes, stamps, traces = zip(*records, strict=True)
        ordered = sorted(sizes)
        if ordered[0] < 0:
            frees = bisect_left(ordered, 0)
            outstanding_after = self._apply_frees(sizes, ordered, frees)
            if frees == len(ordered):
                return (), -1
            records = list(compress(records, map(operator.ge, sizes, repeat(0))))
            operations, sizes, stamps, traces = zip(*records, strict=True)
            ordered = ordered[frees:]
            total: int = sum(sizes)
        else:
            before = self.outstanding_bytes
            total = sum(sizes)
            self.outstanding_bytes = before + total
            outstanding_after = None
        count = len(sizes)
        self.allocation_count += count
        self.allocated_bytes += total
        self.first_seen = min(self.first_seen, *stamps)
        self.last_seen = max(self.last_seen, *stamps)

        largest = ordered[-1]
        self.largest_bytes = max(self.largest_bytes, largest)
        if largest <= _TINY_BOUND:  # the common case for object-heavy code: one bucket
            self.bucket_counts[0] += count
        else:
            self._count_sizes(ordered)

        if largest > DOUBLING_RATIO * min(ordered[0], self.last_size):
            self._count_doublings(sizes)
        else:  # nothing here is big enough to be a step: the run is broken
            self.doubling_run = 0
        self.last_size = sizes[-1]

        first_operation = operations[0]
        entry = self.operations.get(first_operation)
        if entry is not None and operations.count(first_operation) == count:
            entry[0] += count
            entry[1] += total
        else:
            self._count_operations(operations, sizes)
        if any(traces):
            self._count_traces(traces)
        if self.timeline is not None:
            self.timeline.extend(records)
        if self.last_seen >= self.checkpoint_due:
            self._advance_checkpoints(
                stamps,
                outstanding_after or (lambda i: before + sum(sizes[: i + 1])),
            )
        return records, largest

    def _apply_frees(
        self, sizes: Sequence[int], ordered: list[int], frees: int
    ) -> Callable[[int], int]:
        """Apply a batch holding `frees` frees; return outstanding bytes after allocation i.

        `ordered` is `sizes` sorted, frees (stored as ~size = -size - 1) first.
        """
        before = self.outstanding_bytes
        freed = -sum(ordered[:frees]) - frees
        if freed > before and min(accumulate(_deltas(sizes), initial=before)) < 0:
            return self._apply_frees_clamped(sizes)
        # Otherwise no free can exceed what is held at its turn, whatever the order.
        self.deallocation_count += frees
        self.freed_bytes += freed
        self.outstanding_bytes = before + sum(ordered[frees:]) - freed
        return lambda i: (
            list(compress(accumulate(_deltas(sizes)), map(operator.ge, sizes, repeat(0))))[i]
            + before
        )

    def _apply_frees_clamped(self, sizes: Sequence[int]) -> Callable[[int], int]:
        """The record-by-record walk, for the rare batch that frees more than it holds."""
        outstanding = self.outstanding_bytes
        after_allocation: list[int] = []
        for size in sizes:
            if size >= 0:
                outstanding += size
                after_allocation.append(outstanding)
                continue
            freed = ~size
            self.deallocation_count += 1
            if freed > outstanding:
                # More freed than allocated: clamp at zero and count it, never go negative.
                self.over_deallocations += 1
                self.over_deallocated_bytes += freed - outstanding
                freed = outstanding
            self.freed_bytes += freed
            outstanding -= freed
        self.outstanding_bytes = outstanding
        return after_allocation.__getitem__

    def _count_sizes(self, ordered: list[int]) -> None:
        tiny = bisect_right(ordered, _TINY_BOUND)
        small = bisect_right(ordered, _SMALL_BOUND, tiny)
        medium = bisect_right(ordered, _MEDIUM_BOUND, small)
        large = bisect_right(ordered, _LARGE_BOUND, medium)
        count = len(ordered)
        buckets = self.bucket_counts
        buckets[0] += tiny
        buckets[1] += small - tiny
        buckets[2] += medium - small
        buckets[3] += large - medium
        buckets[4] += count - large
        self.large_count += count - bisect_left(ordered, LARGE_ALLOCATION_BYTES, small)

    def _count_doublings(self, sizes: Sequence[int]) -> None:
        # Runs of allocations each more than DOUBLING_RATIO x the previous one, as runs of
        # 1-bytes; the first run continues the run carried over from the previous batch.
        previous = chain((self.last_size,), sizes)  # map() stops with the shorter `sizes`
        steps = bytes(map(operator.gt, sizes, map(operator.mul, previous, repeat(DOUBLING_RATIO))))
        if 1 in steps:
            runs = list(map(len, steps.split(b"\0")))
            runs[0] += self.doubling_run
            self.longest_doubling_run = max(self.longest_doubling_run, *runs)
            self.doubling_run = runs[-1]
        else:
            self.doubling_run = 0

    def _count_operations(self, operations: Sequence[str], sizes: Sequence[int]) -> None:
        known = self.operations
        for name, size in zip(operations, sizes, strict=True):
            entry = known.get(name)
            if entry is None:
                # Past the cap, new names share one entry instead of growing without bound.
                key = name if len(known) < MAX_OPERATIONS else OTHER
                entry = known.setdefault(key, [0, 0])
            entry[0] += 1
            entry[1] += size

    def _count_traces(self, traces: Sequence[str | tuple[str, ...] | None]) -> None:
        # Space-saving heavy hitters: when all slots are taken, the least counted trace
        # gives its slot to the newcomer, whose count inherits it as a known error bound.
        tracked = self.traces
        for trace in traces:
            if not trace:
                continue
            entry = tracked.get(trace)
            if entry is not None:
                entry[0] += 1
            elif len(tracked) < TRACE_SLOTS:
                tracked[trace] = [1, 0]
            else:
                evicted = min(tracked, key=lambda key: tracked[key][0])
                floor = tracked.pop(evicted)[0]
                tracked[trace] = [floor + 1, floor]

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
