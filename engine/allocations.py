"""In-process allocation records, folded into bounded per-component aggregates.

`AllocationLog` is the recording half shared by `LeakDetector` and
`AllocationAnalyzer`. Recording must cost well under a microsecond, so the hot
path only validates and appends a tuple to the component's pending list
(`list.append` is atomic under the GIL: no lock, no lost records). Every
`FLUSH_EVERY` records, or before any analysis, the pending lists are folded under
a lock into `ComponentStats`, mostly with C-level builtins over whole batches
(`sum`, `sorted`, `bisect`, `bytes.split`). Memory stays bounded: aggregates per
component, at most `FLUSH_EVERY` pending records, a fixed-length recent timeline,
and caps on distinct components, operations and stack traces.

See docs/allocation-analysis.md for what each aggregate means.
"""

from __future__ import annotations

import heapq
import operator
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, chain, compress, repeat
from typing import TYPE_CHECKING, SupportsIndex

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
_BUCKET_BOUNDS = tuple(bound for _, bound in SIZE_BUCKETS if bound is not None)
_TINY_BOUND = _BUCKET_BOUNDS[0]
LARGE_ALLOCATION_BYTES = MIB
# An allocation "about double the previous one or more": the 5% slack makes exact
# doubling (and allocator rounding just under it) count.
DOUBLING_RATIO = 1.9

FLUSH_EVERY = 8192
MAX_COMPONENTS = 10_000
MAX_OPERATIONS = 256
TRACE_SLOTS = 16
LARGEST_KEPT = 10
OTHER = "<other>"

# (operation, size, timestamp, stack trace); a deallocation stores ~size (< 0) and
# no operation or timestamp, so one `min()` tells a batch of pure allocations.
Record = tuple[str | None, int, float | None, str | tuple[str, ...] | None]


@dataclass(frozen=True, kw_only=True, slots=True)
class Allocation:
    """One recorded allocation (kept for the largest few and the recent timeline)."""

    component: str
    operation: str
    size_bytes: int
    timestamp: float
    stack_trace: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordingAnomalies:
    """Deallocations that did not match the allocations recorded (see the docs)."""

    unknown_component_deallocations: int
    over_deallocations: int
    over_deallocated_bytes: int


def trace_text(trace: str | tuple[str, ...] | None) -> str | None:
    return "\n".join(trace) if isinstance(trace, tuple) else trace


def checked_size(size: object, what: str) -> int:
    """Slow path for sizes that are not a plain non-negative int: accept int-likes, else raise."""
    if isinstance(size, bool):
        raise TypeError(f"{what} size must be an int number of bytes, got {size!r}")
    if not isinstance(size, SupportsIndex):
        raise TypeError(
            f"{what} size must be an int number of bytes, got {size!r} ({type(size).__name__})"
        )
    value = operator.index(size)
    if value < 0:
        raise ValueError(f"{what} size must be >= 0 bytes, got {value}")
    return value


def _checked_timestamp(timestamp: object) -> float:
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        value = float(timestamp)
        if value - value == 0.0:
            return value
    raise TypeError(f"timestamp must be finite unix seconds, got {timestamp!r}")


def _checked_name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {value!r} ({type(value).__name__})")
    return value


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
            is_allocation = list(map(operator.ge, sizes, repeat(0)))
            outstanding_after = self._apply_frees(sizes, is_allocation)
            records = list(compress(records, is_allocation))
            if not records:
                return records, -1
            operations, sizes, stamps, traces = zip(*records, strict=True)
            ordered = ordered[len(ordered) - len(records) :]
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
        buckets = self.bucket_counts
        if largest <= _TINY_BOUND:  # the common case for object-heavy code: one bucket
            buckets[0] += count
        else:
            start = 0
            for index, bound in enumerate(_BUCKET_BOUNDS):
                end = bisect_right(ordered, bound, start)
                buckets[index] += end - start
                start = end
            buckets[-1] += count - start
            self.large_count += count - bisect_left(ordered, LARGE_ALLOCATION_BYTES)

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
            self._count_traces(Counter(trace for trace in traces if trace))
        if self.timeline is not None:
            self.timeline.extend(records)
        if self.last_seen >= self.checkpoint_due:
            self._advance_checkpoints(
                stamps,
                outstanding_after or (lambda i: before + sum(sizes[: i + 1])),
            )
        return records, largest

    def _apply_frees(self, sizes: Sequence[int], is_allocation: list[bool]) -> Callable[[int], int]:
        """Apply a batch's frees in order; return outstanding bytes after allocation i."""
        before = self.outstanding_bytes
        # A free is stored as ~size = -size - 1: adding 1 to it gives -size.
        deltas = map(operator.add, sizes, map(operator.not_, is_allocation))
        running = list(accumulate(deltas, initial=before))
        if min(running) < 0:
            return self._apply_frees_clamped(sizes)
        self.deallocation_count += len(sizes) - sum(is_allocation)
        self.freed_bytes += before + sum(compress(sizes, is_allocation)) - running[-1]
        self.outstanding_bytes = running[-1]
        return lambda i: list(compress(running[1:], is_allocation))[i]

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
        per_operation: dict[str, list[int]] = {}
        for name, size in zip(operations, sizes, strict=True):
            entry = per_operation.setdefault(name, [0, 0])
            entry[0] += 1
            entry[1] += size
        for name, (count, size_total) in per_operation.items():
            self._add_operation(name, count, size_total)

    def _add_operation(self, name: str, count: int, size_total: int) -> None:
        entry = self.operations.get(name)
        if entry is None:
            if len(self.operations) >= MAX_OPERATIONS:
                name = OTHER
            entry = self.operations.setdefault(name, [0, 0])
        entry[0] += count
        entry[1] += size_total

    def _count_traces(self, counts: Counter[str | tuple[str, ...]]) -> None:
        # Space-saving heavy hitters: when all slots are taken, the least counted trace
        # gives its slot to the newcomer, whose count inherits it as a known error bound.
        tracked = self.traces
        for trace, count in counts.items():
            entry = tracked.get(trace)
            if entry is not None:
                entry[0] += count
            elif len(tracked) < TRACE_SLOTS:
                tracked[trace] = [count, 0]
            else:
                evicted = min(tracked, key=lambda key: tracked[key][0])
                floor = tracked.pop(evicted)[0]
                tracked[trace] = [floor + count, floor]

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


class AllocationLog:
    """Thread-safe allocation recording; subclasses add the analysis (see module doc)."""

    def __init__(self, clock: Callable[[], float] = time.time, *, timeline_length: int = 0) -> None:
        self._clock = clock
        self._timeline_length = timeline_length
        self._lock = threading.Lock()
        self._pending: dict[str, list[Record]] = {}
        # Approximate (increments may race): it only decides when to fold, never what counts.
        self._appended = 0
        self._stats: dict[str, ComponentStats] = {}
        self._largest: list[Allocation] = []
        self._largest_floor = -1  # only allocations above it can enter `_largest`
        self._unknown_deallocations = 0

    def record_allocation(
        self,
        component: str,
        operation: str,
        size: int,
        *,
        timestamp: float | None = None,
        stack_trace: str | Sequence[str] | None = None,
    ) -> None:
        """Record `size` bytes allocated by `operation` in `component` (O(1), lock-free)."""
        if size.__class__ is not int or size < 0 or operation.__class__ is not str:
            size = checked_size(size, "allocation")
            _checked_name(operation, "operation")
        if timestamp is None:
            timestamp = self._clock()
        elif timestamp.__class__ is not float or timestamp - timestamp != 0.0:
            timestamp = _checked_timestamp(timestamp)
        if stack_trace is not None and stack_trace.__class__ is not str:
            stack_trace = tuple(stack_trace)  # a caller's list may change after we return
        try:
            pending = self._pending[component]
        except (KeyError, TypeError):
            pending = self._pending_for_new(component)
        pending.append((operation, size, timestamp, stack_trace))
        self._appended += 1
        if self._appended >= FLUSH_EVERY:
            self._flush()

    def record_deallocation(self, component: str, size: int) -> None:
        """Record `size` bytes freed by `component`; see the docs for mismatched frees."""
        if size.__class__ is not int or size < 0:
            size = checked_size(size, "deallocation")
        pending = self._pending.get(component) if component.__class__ is str else None
        if pending is None:
            _checked_name(component, "component")
            # A full log folds new names into OTHER, so their frees go there too.
            pending = self._pending.get(OTHER) if len(self._pending) > MAX_COMPONENTS else None
            if pending is None:
                with self._lock:
                    self._unknown_deallocations += 1
                return
        pending.append((None, ~size, None, None))
        self._appended += 1
        if self._appended >= FLUSH_EVERY:
            self._flush()

    def anomalies(self) -> RecordingAnomalies:
        with self._settled() as stats:
            return RecordingAnomalies(
                unknown_component_deallocations=self._unknown_deallocations,
                over_deallocations=sum(s.over_deallocations for s in stats.values()),
                over_deallocated_bytes=sum(s.over_deallocated_bytes for s in stats.values()),
            )

    def _pending_for_new(self, component: object) -> list[Record]:
        name = _checked_name(component, "component")
        if not name:
            raise ValueError("component must be a non-empty name")
        if len(self._pending) >= MAX_COMPONENTS:
            name = OTHER
        # setdefault is atomic: two threads meeting a new component share one list.
        return self._pending.setdefault(name, [])

    def _flush(self) -> None:
        self._appended = 0  # first, so that other threads do not queue up to flush too
        with self._lock:
            self._fold_pending()

    @contextmanager
    def _settled(self) -> Iterator[dict[str, ComponentStats]]:
        """Hold the lock with every pending record folded in; yields the aggregates."""
        with self._lock:
            self._fold_pending()
            yield self._stats

    def _fold_pending(self) -> None:
        self._appended = 0
        for name, pending in list(self._pending.items()):
            if not pending:
                continue
            # Copy then delete the prefix: appends racing with us land after it and stay.
            taken = len(pending)
            batch = pending[:taken]
            del pending[:taken]
            stats = self._stats.get(name)
            if stats is None:
                stats = self._stats[name] = ComponentStats(name, self._timeline_length)
            allocations, batch_largest = stats.fold(batch)
            if batch_largest > self._largest_floor:
                self._keep_largest(name, allocations)

    def _keep_largest(self, name: str, allocations: Sequence[Record]) -> None:
        largest = self._largest
        floor = self._largest_floor
        for operation, size, stamp, trace in heapq.nlargest(
            LARGEST_KEPT, allocations, key=operator.itemgetter(1)
        ):
            if size > floor:
                largest.append(
                    Allocation(
                        component=name,
                        operation=operation or "",
                        size_bytes=size,
                        timestamp=stamp or 0.0,
                        stack_trace=trace_text(trace),
                    )
                )
        largest.sort(key=operator.attrgetter("size_bytes"), reverse=True)
        del largest[LARGEST_KEPT:]
        if len(largest) == LARGEST_KEPT:
            self._largest_floor = largest[-1].size_bytes
