"""In-process allocation records, folded into bounded per-component aggregates.

`AllocationLog` is the recording half shared by `LeakDetector` and
`AllocationAnalyzer`. Recording must cost well under a microsecond, so the hot
path only validates and extends the component's pending list by the record's
fields (`list += tuple` is atomic under the GIL: no lock, no lost records; see
`memalert.engine.allocations.stats` for the flat layout). Every
`FLUSH_EVERY` records, or before any analysis, the pending lists are folded under
a lock into per-component aggregates (`memalert.engine.allocations.stats`; each subclass
picks the kind its reports read). Memory stays bounded:
aggregates per component, about `FLUSH_EVERY` pending records at most, the ten
largest allocations, and at most `MAX_COMPONENTS` component names (new names
beyond it are counted under `<other>`).

See docs/allocation-analysis.md for what each aggregate means.
"""

from __future__ import annotations

import heapq
import operator
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, SupportsIndex, TypeVar

from memalert.engine.allocations.stats import (
    FREED_AT,
    FREED_OPERATION,
    OTHER,
    RECORD_FIELDS,
    ComponentStats,
    trace_text,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

# The worst case of a report is a fold of FLUSH_EVERY - 1 records over every component;
# a smaller buffer makes it cheaper and recording dearer (each component's share of a
# fold holds fewer records). 6144 balances the two at 1,000 components: see the
# "Speed" section of docs/allocation-analysis.md.
FLUSH_EVERY = 6144
MAX_COMPONENTS = 10_000
LARGEST_KEPT = 10


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


def _checked_size(size: object, what: str) -> int:
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


Stats = TypeVar("Stats", bound=ComponentStats)


class AllocationLog(Generic[Stats]):
    """Thread-safe allocation recording; subclasses add the analysis (see module doc).

    `new_stats(name)` makes the aggregates of a component seen for the first time.
    """

    def __init__(self, clock: Callable[[], float], new_stats: Callable[[str], Stats]) -> None:
        self._clock = clock
        self._new_stats = new_stats
        self._lock = threading.Lock()
        self._pending: dict[str, list[Any]] = {}  # flat records, see allocation_stats
        # Approximate (increments may race): it only decides when to fold, never what counts.
        self._appended = 0
        self._stats: dict[str, Stats] = {}
        self._named: list[Stats] = []  # `_stats` in name order; see `_by_name`
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
            size = _checked_size(size, "allocation")
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
        pending += (operation, size, timestamp, stack_trace)
        self._appended += 1
        if self._appended >= FLUSH_EVERY:
            self._flush()

    def record_deallocation(self, component: str, size: int) -> None:
        """Record `size` bytes freed by `component`; see the docs for mismatched frees."""
        if size.__class__ is not int or size < 0:
            size = _checked_size(size, "deallocation")
        pending = self._pending.get(component) if component.__class__ is str else None
        if pending is None:
            _checked_name(component, "component")
            # A full log folds new names into OTHER, so their frees go there too.
            pending = self._pending.get(OTHER) if len(self._pending) > MAX_COMPONENTS else None
            if pending is None:
                with self._lock:
                    self._unknown_deallocations += 1
                return
        pending += (FREED_OPERATION, ~size, FREED_AT, None)
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

    def _pending_for_new(self, component: object) -> list[Any]:
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
    def _settled(self) -> Iterator[dict[str, Stats]]:
        """Hold the lock with every pending record folded in; yields the aggregates."""
        with self._lock:
            self._fold_pending()
            yield self._stats

    @contextmanager
    def _settled_component(self, name: str) -> Iterator[Stats | None]:
        """Like `_settled` for one component: folds its pending records only."""
        with self._lock:
            pending = self._pending.get(name)
            if pending:
                self._fold(name, pending)
            yield self._stats.get(name)

    def _by_name(self) -> list[Stats]:
        """The aggregates in component-name order: call under the lock, do not mutate.

        Sorted again only when components appeared since the last call (sorting 1,000
        names costs a report about a fifth of a millisecond).
        """
        if len(self._named) != len(self._stats):
            self._named = [self._stats[name] for name in sorted(self._stats)]
        return self._named

    def _fold_pending(self) -> None:
        self._appended = 0
        for name, pending in list(self._pending.items()):
            if pending:
                self._fold(name, pending)

    def _fold(self, name: str, pending: list[Any]) -> None:
        # Copy then delete the prefix: appends racing with us land after it and stay.
        taken = len(pending)
        batch = pending[:taken]
        del pending[:taken]
        stats = self._stats.get(name)
        if stats is None:
            stats = self._stats[name] = self._new_stats(name)
        if stats.fold(batch) > self._largest_floor:
            self._keep_largest(name, batch)

    def _keep_largest(self, name: str, batch: list[Any]) -> None:
        largest = self._largest
        floor = self._largest_floor
        sizes = batch[1::RECORD_FIELDS]
        for index in heapq.nlargest(LARGEST_KEPT, range(len(sizes)), key=sizes.__getitem__):
            if sizes[index] > floor:  # never a free: floor >= -1 > ~size
                operation, size, stamp, trace = batch[
                    index * RECORD_FIELDS : (index + 1) * RECORD_FIELDS
                ]
                largest.append(
                    Allocation(
                        component=name,
                        operation=operation,
                        size_bytes=size,
                        timestamp=stamp,
                        stack_trace=trace_text(trace),
                    )
                )
        largest.sort(key=operator.attrgetter("size_bytes"), reverse=True)
        del largest[LARGEST_KEPT:]
        if len(largest) == LARGEST_KEPT:
            self._largest_floor = largest[-1].size_bytes
