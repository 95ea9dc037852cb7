"""Component leak detection over in-process allocation records (DESIGN §7).

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from engine.allocation_stats import (
    DOUBLING_RATIO,
    LARGE_ALLOCATION_BYTES,
    SIZE_BUCKETS,
    ComponentStats,
    trace_text,
)
from engine.allocations import Allocation, AllocationLog
from engine.model import Labels, Sample
from engine.sources.base import TargetUnavailableError, read_optional
from engine.sources.cgroup import cgroup_limit, memory_cgroup_of
from engine.units import format_bytes

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

SECONDS_PER_HOUR = 3600.0
BYTES_PER_MB = 1e6  # DESIGN §3: MB is SI, MiB is IEC
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


def is_potential_leak(stats: ComponentStats) -> bool:
    held = stats.outstanding_bytes
    return held > 0 and stats.recent_growth_bytes >= MIN_RECENT_GROWTH_FRACTION * held


# Below this span a per-hour rate is an extrapolation of noise: 200 allocations in
# 64 microseconds would "grow" 10^16 bytes an hour. Such components report 0 until
# they have a minute of history.
MIN_RATE_SPAN_SECONDS = 60.0


def growth_rate_bytes_per_hour(stats: ComponentStats) -> float:
    """Held bytes over the component's own span; 0 while that span is under a minute."""
    span = stats.span_seconds
    return (
        stats.outstanding_bytes * SECONDS_PER_HOUR / span if span >= MIN_RATE_SPAN_SECONDS else 0.0
    )


def _leak_info(stats: ComponentStats) -> LeakInfo:
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

_NONE: tuple[SuspiciousPattern, ...] = ()
_TINY_TEXT = format_bytes(SIZE_BUCKETS[0][1] or 0)
_LARGE_TEXT = format_bytes(LARGE_ALLOCATION_BYTES)


def _exponential_growth(stats: ComponentStats) -> Sequence[SuspiciousPattern]:
    steps = stats.longest_doubling_run
    if steps < EXPONENTIAL_MIN_STEPS:
        return _NONE
    detail = f"{steps} allocations in a row each over {DOUBLING_RATIO}x the one before"
    kind = PatternKind.EXPONENTIAL_GROWTH
    return (SuspiciousPattern(component=stats.name, kind=kind, count=steps, detail=detail),)


def _many_small_allocations(stats: ComponentStats) -> Sequence[SuspiciousPattern]:
    # Frees carry no identity, so count as alive only what no free could have released.
    live = stats.bucket_counts[0] - stats.deallocation_count
    if live < MANY_SMALL_MIN_LIVE:
        return _NONE
    detail = f"at least {live} allocations of {_TINY_TEXT} or less still alive"
    kind = PatternKind.MANY_SMALL_ALLOCATIONS
    return (SuspiciousPattern(component=stats.name, kind=kind, count=live, detail=detail),)


def _frequent_large_allocations(stats: ComponentStats) -> Sequence[SuspiciousPattern]:
    large = stats.large_count
    if large < FREQUENT_LARGE_MIN:
        return _NONE
    detail = f"{large} allocations of {_LARGE_TEXT} or more"
    kind = PatternKind.FREQUENT_LARGE_ALLOCATIONS
    return (SuspiciousPattern(component=stats.name, kind=kind, count=large, detail=detail),)


def _repeated_stack_trace(stats: ComponentStats) -> Sequence[SuspiciousPattern]:
    # One pattern per kind and component: the most repeated trace stands for the others.
    trace, count = stats.most_repeated_trace()
    if count < REPEATED_TRACE_MIN:
        return _NONE
    return (
        SuspiciousPattern(
            component=stats.name,
            kind=PatternKind.REPEATED_STACK_TRACE,
            count=count,
            detail=f"one stack trace allocated {count} times",
            stack_trace=trace_text(trace),
        ),
    )


_PATTERNS: tuple[Callable[[ComponentStats], Sequence[SuspiciousPattern]], ...] = (
    _exponential_growth,
    _many_small_allocations,
    _frequent_large_allocations,
    _repeated_stack_trace,
)


# -- the detector ---------------------------------------------------------------------


class LeakDetector(AllocationLog):
    """Records allocations per component and reports potential leaks (thread-safe).

    `budget_bytes` is what `memory_pressure()` divides by; by default the process's
    memory limit (cgroup limit, else physical RAM), read on first use.
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, budget_bytes: int | None = None
    ) -> None:
        super().__init__(clock)
        if budget_bytes is not None and (
            isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int) or budget_bytes <= 0
        ):
            raise ValueError(f"budget_bytes must be a positive int, got {budget_bytes!r}")
        self._budget = budget_bytes

    @property
    def budget_bytes(self) -> int:
        if self._budget is None:
            self._budget = process_memory_limit()
        return self._budget

    def analyze_leaks(self) -> LeakAnalysis:
        with self._settled() as stats:
            components = [stats[name] for name in sorted(stats)]
            # Stable: equal outstanding bytes stay in name order.
            components.sort(key=operator.attrgetter("outstanding_bytes"), reverse=True)
            leaks = tuple(_leak_info(s) for s in components if is_potential_leak(s))
            patterns: list[SuspiciousPattern] = []
            for component in components:
                for check in _PATTERNS:
                    patterns.extend(check(component))
            largest = tuple(self._largest)
        return LeakAnalysis(
            potential_leaks=leaks,
            growth_rate_mb_per_hour=sum(leak.growth_rate_bytes_per_hour for leak in leaks)
            / BYTES_PER_MB,
            largest_allocations=largest,
            suspicious_patterns=tuple(patterns),
        )

    def memory_pressure(self) -> float:
        """Outstanding tracked bytes over the budget, clamped to [0, 1]."""
        budget = self.budget_bytes
        with self._settled() as stats:
            held = sum(s.outstanding_bytes for s in stats.values())
        return min(1.0, held / budget)

    def samples(self, target: str, now: float) -> list[Sample]:
        """DESIGN §3 component metrics, labelled {target, component}, stamped `now`.

        `leak_bytes` is the held bytes of a potential leak and 0 for other components.
        """
        out: list[Sample] = []
        with self._settled() as stats:
            for name in sorted(stats):
                component = stats[name]
                labels = Labels(target=target, component=name)
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


# -- the default budget -----------------------------------------------------------------


def process_memory_limit(
    proc_root: Path = Path("/proc"),
    cgroup_root: Path = Path("/sys/fs/cgroup"),
    physical_bytes: int | None = None,
) -> int:
    """The tighter of this process's cgroup memory limit (v1 or v2) and physical RAM.

    Unreadable or garbage cgroup files fall back to RAM: the budget only scales
    `memory_pressure`, so that is the documented behaviour rather than an error.
    """
    physical = physical_bytes if physical_bytes is not None else psutil.virtual_memory().total
    membership = read_optional(proc_root / str(os.getpid()) / "cgroup")
    where = memory_cgroup_of(membership, cgroup_root) if membership else None
    try:
        limit = cgroup_limit(where, cgroup_root) if where is not None else None
    except TargetUnavailableError:
        limit = None
    return physical if limit is None else min(limit, physical)


__all__ = [
    "LeakAnalysis",
    "LeakDetector",
    "LeakInfo",
    "PatternKind",
    "SuspiciousPattern",
    "process_memory_limit",
]
