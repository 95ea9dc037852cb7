"""What the running engine publishes after every tick, for readers on other threads.

The HTTP endpoints, `memalert status` and the OTLP exporter read an
`EngineSnapshot`; they never reach into the engine's live state. The engine
replaces the snapshot atomically (one reference assignment) at the end of each
tick, so a reader always sees one consistent tick and no handler holds a lock
across the engine's work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from memalert.engine.alerting.views import AlertView
from memalert.engine.core.model import Sample, Silence

if TYPE_CHECKING:
    from memalert.engine.allocations.leaks import LeakAnalysis


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetLeak:
    """The trend detector's view of one target (or one component of it)."""

    target: str
    component: str | None
    leak_bytes: float
    growth_bytes_per_hour: float
    confidence: float
    time_to_limit_seconds: float | None
    patterns: tuple[str, ...] = ()
    top_sites: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineSnapshot:
    """One consistent picture of the engine, as of its last tick."""

    started_at: float
    interval: float
    last_tick_at: float | None = None
    last_tick_error: str | None = None
    ticks_total: int = 0
    missed_ticks_total: int = 0
    tick_errors_total: int = 0
    # Recent tick durations in seconds (bounded), for a histogram or a percentile.
    tick_durations: tuple[float, ...] = ()
    # The latest sample of every series (tracker and detector metrics).
    samples: tuple[Sample, ...] = ()
    alerts: tuple[AlertView, ...] = ()
    leaks: tuple[TargetLeak, ...] = ()
    # The in-process component detector's analysis, when one is attached.
    component_leaks: LeakAnalysis | None = None
    silences: tuple[Silence, ...] = ()
    # (notifier, "delivered" | "failed" | "dead") -> count since start.
    notifications_total: Mapping[tuple[str, str], int] = field(default_factory=dict)
    outbox_backlog: int = 0
    dead_letters: int = 0
    # Per target: its recent (time, bytes) and the detector's floor history.
    memory: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    floors: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)


class SnapshotSource(Protocol):
    """What readers (HTTP, status, OTLP) need from a running engine."""

    def latest(self) -> EngineSnapshot: ...

    def add_silence(self, silence: Silence) -> str: ...

    def expire_silence(self, silence_id: str) -> bool: ...
