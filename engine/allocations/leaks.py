"""Component leak detection over in-process allocation records (docs/allocation-analysis.md).

A component is a potential leak when it still holds memory (allocations minus
deallocations) and that memory kept growing over at least the recent half of the
component's own activity; its growth rate is the memory it holds divided by its
own activity span (first to last allocation), on the injected clock. Suspicious
patterns are reported per component, every one that applies. The definitions and
thresholds are in docs/allocation-analysis.md.
"""

from __future__ import annotations

import enum
import operator
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from memalert.engine.allocations.records import Allocation, AllocationLog
from memalert.engine.allocations.stats import (
    DOUBLING_RATIO,
    LARGE_ALLOCATION_BYTES,
    SIZE_BUCKETS,
    LeakStats,
    Trace,
    trace_text,
)
from memalert.engine.core.model import Labels, Sample
from memalert.engine.core.units import format_bytes

SECONDS_PER_HOUR = 3600.0
BYTES_PER_MB = 1e6  # docs/rules.md#units: MB is SI, MiB is IEC
# A plateau (cache at its cap, warmed-up pool) gains almost nothing over the recent
# half of its activity; a leak gains a share of what it holds that does not shrink.
MIN_RECENT_GROWTH_FRACTION = 0.1
EXPONENTIAL_MIN_STEPS = 4
MANY_SMALL_MIN_LIVE = 1000
FREQUENT_LARGE_MIN = 5
REPEATED_TRACE_MIN = 10


class PatternKind(enum.Enum):
    EXPONENTIAL_GROWTH = "exponential_growth"
    MANY_SMALL_ALLOCATIONS = "many_small_allocations"
    FREQUENT_LARGE_ALLOCATIONS = "frequent_large_allocations"
    REPEATED_STACK_TRACE = "repeated_stack_trace"


@dataclass(frozen=True, kw_only=True, slots=True)
class LeakInfo:
    """A potential leak; `total_size_bytes` is what the component still holds."""

    component: str
    allocation_count: int
    total_size_bytes: int
    average_size_bytes: float
    growth_rate_bytes_per_hour: float
    first_seen: float
    last_seen: float


@dataclass(frozen=True, kw_only=True, slots=True)
class SuspiciousPattern:
    """One pattern seen in one component; `count` is the evidence behind it."""

    component: str
    kind: PatternKind
    count: int
    detail: str
    stack_trace: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LeakAnalysis:
    potential_leaks: tuple[LeakInfo, ...]
    growth_rate_mb_per_hour: float
    largest_allocations: tuple[Allocation, ...]
    suspicious_patterns: tuple[SuspiciousPattern, ...]


def is_potential_leak(stats: LeakStats) -> bool:
    held = stats.outstanding_bytes
    return held > 0 and stats.recent_growth_bytes >= MIN_RECENT_GROWTH_FRACTION * held


# Below this span a per-hour rate is an extrapolation of noise: 200 allocations in
# 64 microseconds would "grow" 10^16 bytes an hour. Such components report 0 until
# they have a minute of history.
MIN_RATE_SPAN_SECONDS = 60.0


def growth_rate_bytes_per_hour(stats: LeakStats) -> float:
    """Held bytes over the component's own span; 0 while that span is under a minute."""
    span = stats.span_seconds
    return (
        stats.outstanding_bytes * SECONDS_PER_HOUR / span if span >= MIN_RATE_SPAN_SECONDS else 0.0
    )


def _leak_info(stats: LeakStats) -> LeakInfo:
    return LeakInfo(
        component=stats.name,
        allocation_count=stats.allocation_count,
        total_size_bytes=stats.outstanding_bytes,
        average_size_bytes=stats.average_bytes,
        growth_rate_bytes_per_hour=growth_rate_bytes_per_hour(stats),
        first_seen=stats.first_seen,
        last_seen=stats.last_seen,
    )


# -- patterns: one check each, in reporting order ----------------------------------
# A check returns its evidence, (count, stack trace), or None when its pattern does
# not apply; the pattern's detail is written from the count.

Evidence = tuple[int, Trace]
_TINY_TEXT = format_bytes(SIZE_BUCKETS[0][1] or 0)
_LARGE_TEXT = format_bytes(LARGE_ALLOCATION_BYTES)


def _exponential_growth(stats: LeakStats) -> Evidence | None:
    steps = stats.longest_doubling_run
    return (steps, None) if steps >= EXPONENTIAL_MIN_STEPS else None


def _many_small_allocations(stats: LeakStats) -> Evidence | None:
    # Frees carry no identity, so count as alive only what no free could have released.
    live = stats.tiny_count - stats.deallocation_count
    return (live, None) if live >= MANY_SMALL_MIN_LIVE else None


def _frequent_large_allocations(stats: LeakStats) -> Evidence | None:
    large = stats.large_count
    return (large, None) if large >= FREQUENT_LARGE_MIN else None


def _repeated_stack_trace(stats: LeakStats) -> Evidence | None:
    # One pattern per kind and component: the most repeated trace stands for the others.
    trace, count = stats.top_trace
    return (count, trace) if count >= REPEATED_TRACE_MIN else None


Check = Callable[[LeakStats], Evidence | None]
_PATTERNS: tuple[tuple[PatternKind, Check, Callable[[int], str]], ...] = (
    (
        PatternKind.EXPONENTIAL_GROWTH,
        _exponential_growth,
        lambda steps: f"{steps} allocations in a row each over {DOUBLING_RATIO}x the one before",
    ),
    (
        PatternKind.MANY_SMALL_ALLOCATIONS,
        _many_small_allocations,
        lambda live: f"at least {live} allocations of {_TINY_TEXT} or less still alive",
    ),
    (
        PatternKind.FREQUENT_LARGE_ALLOCATIONS,
        _frequent_large_allocations,
        lambda large: f"{large} allocations of {_LARGE_TEXT} or more",
    ),
    (
        PatternKind.REPEATED_STACK_TRACE,
        _repeated_stack_trace,
        lambda count: f"one stack trace allocated {count} times",
    ),
)


def physical_memory_bytes() -> int:
    """Physical RAM, from the kernel's page counts (no file is read)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# -- the detector ---------------------------------------------------------------------


class LeakDetector(AllocationLog[LeakStats]):
    """Records allocations per component and reports potential leaks (thread-safe).

    `budget_bytes` is what `memory_pressure()` divides by: a number, or a function
    read on first use. By default it is physical RAM; `AlertEngine` hands an attached
    detector the tighter cgroup-aware reader (`memalert.engine.sources.limits`), so the
    analysis itself reads no files.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        budget_bytes: int | Callable[[], int] | None = None,
    ) -> None:
        super().__init__(clock, LeakStats)
        self._budget: int | None = None
        self._read_budget: Callable[[], int] | None = None
        if callable(budget_bytes):
            self._read_budget = budget_bytes
        elif budget_bytes is None or (
            isinstance(budget_bytes, int)
            and not isinstance(budget_bytes, bool)
            and budget_bytes > 0
        ):
            self._budget = budget_bytes
        else:
            raise ValueError(f"budget_bytes must be a positive int, got {budget_bytes!r}")
        # The last pattern built per component and check, with its evidence: see `_patterns`.
        self._reported: dict[tuple[str, Check], tuple[Evidence, SuspiciousPattern]] = {}
        self._labels: dict[str, Labels] = {}  # per component, for `samples`

    def default_budget(self, read: Callable[[], int]) -> None:
        """Use `read` for the budget unless one was given or has already been read."""
        if self._budget is None and self._read_budget is None:
            self._read_budget = read

    @property
    def budget_bytes(self) -> int:
        if self._budget is None:
            read = self._read_budget or physical_memory_bytes
            self._budget = read()
        return self._budget

    def analyze_leaks(self) -> LeakAnalysis:
        with self._settled():
            # Stable: equal outstanding bytes stay in name order.
            components = sorted(
                self._by_name(), key=operator.attrgetter("outstanding_bytes"), reverse=True
            )
            leaks = tuple(_leak_info(s) for s in components if is_potential_leak(s))
            patterns = self._patterns(components)
            largest = tuple(self._largest)
        return LeakAnalysis(
            potential_leaks=leaks,
            growth_rate_mb_per_hour=sum(leak.growth_rate_bytes_per_hour for leak in leaks)
            / BYTES_PER_MB,
            largest_allocations=largest,
            suspicious_patterns=patterns,
        )

    def _patterns(self, components: list[LeakStats]) -> tuple[SuspiciousPattern, ...]:
        """Every pattern that applies, component by component, in check order.

        Building frozen values dominates an analysis, and between two analyses most
        components' evidence stays the same: a pattern built before is reused while its
        evidence is unchanged. Called under the lock (it updates that memory).
        """
        reported = self._reported
        found: list[SuspiciousPattern] = []
        for stats in components:
            for kind, check, describe in _PATTERNS:
                evidence = check(stats)
                if evidence is None:
                    continue
                key = (stats.name, check)  # not kind: Enum.__hash__ runs Python code
                known = reported.get(key)
                if known is None or known[0] != evidence:
                    count, trace = evidence
                    pattern = SuspiciousPattern(
                        component=stats.name,
                        kind=kind,
                        count=count,
                        detail=describe(count),
                        stack_trace=trace_text(trace),
                    )
                    known = reported[key] = (evidence, pattern)
                found.append(known[1])
        return tuple(found)

    def memory_pressure(self) -> float:
        """Outstanding tracked bytes over the budget, clamped to [0, 1]."""
        budget = self.budget_bytes
        with self._settled() as stats:
            held = sum(s.outstanding_bytes for s in stats.values())
        return min(1.0, held / budget)

    def samples(self, target: str, now: float) -> list[Sample]:
        """Component metrics (docs/rules.md#metrics), labelled {target, component}, stamped `now`.

        `leak_bytes` is the held bytes of a potential leak and 0 for other components.
        """
        out: list[Sample] = []
        with self._settled():
            for component in self._by_name():
                labels = self._labels.get(component.name)
                if labels is None or labels["target"] != target:
                    # Reused from call to call: building a Labels costs more than a Sample.
                    labels = self._labels[component.name] = Labels(
                        target=target, component=component.name
                    )
                held = float(component.outstanding_bytes)
                values = (
                    ("component_bytes", held),
                    ("component_allocations", float(component.allocation_count)),
                    # 0 rather than absent, so an alert resolves at once instead of
                    # waiting out the evaluator's staleness lookback.
                    ("leak_bytes", held if is_potential_leak(component) else 0.0),
                )
                out.extend(Sample(metric=m, labels=labels, value=v, ts=now) for m, v in values)
        return out


__all__ = [
    "LeakAnalysis",
    "LeakDetector",
    "LeakInfo",
    "PatternKind",
    "SuspiciousPattern",
]
