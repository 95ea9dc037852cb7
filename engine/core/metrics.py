"""Every metric memalert knows: one row per metric, read by every stage that names one.

The rule checker (unknown metrics, units of thresholds, `where` labels that can
never match), message formatting (`95.4 MiB`, `83.0%`, `2h5m`), the trend
detector and the pipeline (which metrics the detector produces), /metrics
(`memalert_<name>`, its HELP and UNIT) and the OTLP export (its dotted name and
UCUM unit) all read `METRICS`; none keeps a list of its own. docs/rules.md and
docs/http.md describe the same table, and tests hold them to it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Kind = Literal["gauge", "counter", "summary"]


class Unit(enum.Enum):
    BYTES = "bytes"
    BYTES_PER_HOUR = "bytes per hour"
    RATIO = "ratio 0..1"
    PERCENT = "percent 0..100"
    SECONDS = "seconds"
    COUNT = "count"


class Producer(enum.Enum):
    """Who publishes a metric: the first three as samples rules may use, `ENGINE` its own health."""

    TRACKER = "tracker"
    DETECTOR = "detector"
    ALLOCATIONS = "allocations"
    ENGINE = "engine"


@dataclass(frozen=True, kw_only=True, slots=True)
class Metric:
    name: str
    help: str  # /metrics HELP and the OTLP instrument's description
    unit: Unit
    otlp_name: str
    otlp_unit: str  # UCUM
    producers: frozenset[Producer]
    labels: frozenset[str]
    kind: Kind = "gauge"

    @property
    def openmetrics_unit(self) -> str:
        """OpenMetrics' UNIT, which must be the name's suffix: only bytes and seconds are."""
        return {Unit.BYTES: "bytes", Unit.SECONDS: "seconds"}.get(self.unit, "")


_TRACKER = frozenset({Producer.TRACKER})
_DETECTOR = frozenset({Producer.DETECTOR})
_ALLOCATIONS = frozenset({Producer.ALLOCATIONS})
_ENGINE = frozenset({Producer.ENGINE})
_TARGET = frozenset({"target"})
_COMPONENT = frozenset({"target", "component"})
_SITE = frozenset({"target", "site"})
_NONE: frozenset[str] = frozenset()


def _tracked(name: str, unit: Unit, otlp: tuple[str, str], help_text: str) -> Metric:
    return Metric(
        name=name,
        help=help_text,
        unit=unit,
        otlp_name=otlp[0],
        otlp_unit=otlp[1],
        producers=_TRACKER,
        labels=_TARGET,
    )


# In export order: /metrics lists its families in this order.
_ALL = (
    _tracked(
        "rss_bytes", Unit.BYTES, ("memory.rss_bytes", "By"), "Resident set size of the target."
    ),
    _tracked(
        "vms_bytes", Unit.BYTES, ("memory.vms_bytes", "By"), "Virtual memory size of the target."
    ),
    _tracked(
        "uss_bytes",
        Unit.BYTES,
        ("memory.uss_bytes", "By"),
        "Unique set size of the target: memory no other process shares.",
    ),
    _tracked(
        "swap_bytes", Unit.BYTES, ("memory.swap_bytes", "By"), "Memory of the target swapped out."
    ),
    _tracked(
        "limit_bytes",
        Unit.BYTES,
        ("memory.limit_bytes", "By"),
        "Memory limit of the target: its cgroup's memory.max, else physical RAM.",
    ),
    _tracked(
        "pressure",
        Unit.RATIO,
        ("memory.pressure", "1"),
        "Memory used by the target as a fraction of its limit (0 to 1).",
    ),
    _tracked(
        "psi_some_avg10",
        Unit.PERCENT,
        ("memory.psi.some_avg10", "%"),
        "Percent of the last 10 s some tasks of the target stalled on memory.",
    ),
    _tracked(
        "psi_full_avg10",
        Unit.PERCENT,
        ("memory.psi.full_avg10", "%"),
        "Percent of the last 10 s all tasks of the target stalled on memory.",
    ),
    _tracked(
        "up",
        Unit.COUNT,
        ("memory.up", "1"),
        "1 if the target was found and read at the last tick, else 0.",
    ),
    Metric(
        name="target_info",
        help="1 per discovered target; its labels say which process or cgroup holds it now.",
        unit=Unit.COUNT,
        otlp_name="memory.target.info",
        otlp_unit="1",
        producers=_TRACKER,
        labels=frozenset({"target", "pid", "user", "cmdline", "cgroup", "discovered"}),
    ),
    # Per target from the trend detector; per component from the allocation
    # analyzer, for the components it flags (0 for the others).
    Metric(
        name="leak_bytes",
        help="Memory attributed to a sustained upward trend (0 when none).",
        unit=Unit.BYTES,
        otlp_name="memory.leak.size_bytes",
        otlp_unit="By",
        producers=_DETECTOR | _ALLOCATIONS,
        labels=_COMPONENT,
    ),
    Metric(
        name="leak_growth_bytes_per_hour",
        help="Growth rate of the detected leak, in bytes per hour.",
        unit=Unit.BYTES_PER_HOUR,
        otlp_name="memory.leak.growth_bytes_per_hour",
        otlp_unit="By/h",
        producers=_DETECTOR,
        labels=_TARGET,
    ),
    Metric(
        name="leak_confidence",
        help="Confidence of the leak detector (0 to 1; 0.5 or more is a leak).",
        unit=Unit.RATIO,
        otlp_name="memory.leak.confidence",
        otlp_unit="1",
        producers=_DETECTOR,
        labels=_TARGET,
    ),
    Metric(
        name="time_to_limit_seconds",
        help="Time until the target reaches its limit at the current leak rate.",
        unit=Unit.SECONDS,
        otlp_name="memory.leak.time_to_limit_seconds",
        otlp_unit="s",
        producers=_DETECTOR,
        labels=_TARGET,
    ),
    Metric(
        name="component_bytes",
        help="Bytes a component allocated and has not freed.",
        unit=Unit.BYTES,
        otlp_name="memory.component.size_bytes",
        otlp_unit="By",
        producers=_ALLOCATIONS,
        labels=_COMPONENT,
    ),
    Metric(
        name="component_allocations",
        help="Allocations a component made and has not freed.",
        unit=Unit.COUNT,
        otlp_name="memory.component.allocations",
        otlp_unit="{allocation}",
        producers=_ALLOCATIONS,
        labels=_COMPONENT,
    ),
    Metric(
        name="site_growth_bytes",
        help="Growth of memory allocated at one allocation site.",
        unit=Unit.BYTES,
        otlp_name="memory.site.growth_bytes",
        otlp_unit="By",
        producers=_ALLOCATIONS,
        labels=_SITE,
    ),
    # The engine's own health: counters and gauges of the running engine, not samples.
    Metric(
        name="alerts",
        help="Active alert instances by rule, severity and state (pending or firing).",
        unit=Unit.COUNT,
        otlp_name="memalert.alerts",
        otlp_unit="{alert}",
        producers=_ENGINE,
        labels=frozenset({"rule", "severity", "state"}),
    ),
    Metric(
        name="ticks",
        help="Evaluation ticks run since the engine started.",
        unit=Unit.COUNT,
        otlp_name="memalert.ticks",
        otlp_unit="{tick}",
        producers=_ENGINE,
        labels=_NONE,
        kind="counter",
    ),
    Metric(
        name="missed_ticks",
        help="Ticks skipped because the previous one was still running.",
        unit=Unit.COUNT,
        otlp_name="memalert.ticks.missed",
        otlp_unit="{tick}",
        producers=_ENGINE,
        labels=_NONE,
        kind="counter",
    ),
    Metric(
        name="tick_errors",
        help="Ticks that ended in an error.",
        unit=Unit.COUNT,
        otlp_name="memalert.ticks.errors",
        otlp_unit="{tick}",
        producers=_ENGINE,
        labels=_NONE,
        kind="counter",
    ),
    Metric(
        name="tick_duration_seconds",
        help="Duration of recent evaluation ticks.",
        unit=Unit.SECONDS,
        otlp_name="memalert.tick.duration_seconds",
        otlp_unit="s",
        producers=_ENGINE,
        labels=frozenset({"quantile"}),
        kind="summary",
    ),
    Metric(
        name="notifications",
        help="Notifications by notifier and result (delivered, failed or dead).",
        unit=Unit.COUNT,
        otlp_name="memalert.notifications",
        otlp_unit="{notification}",
        producers=_ENGINE,
        labels=frozenset({"notifier", "result"}),
        kind="counter",
    ),
    Metric(
        name="outbox_backlog",
        help="Notifications waiting in the outbox to be delivered.",
        unit=Unit.COUNT,
        otlp_name="memalert.outbox.backlog",
        otlp_unit="{notification}",
        producers=_ENGINE,
        labels=_NONE,
    ),
    Metric(
        name="dead_letters",
        help="Notifications that failed for good and were set aside.",
        unit=Unit.COUNT,
        otlp_name="memalert.outbox.dead_letters",
        otlp_unit="{notification}",
        producers=_ENGINE,
        labels=_NONE,
    ),
    Metric(
        name="last_tick_timestamp_seconds",
        help="Unix time of the last evaluation tick.",
        unit=Unit.SECONDS,
        otlp_name="memalert.tick.last_timestamp_seconds",
        otlp_unit="s",
        producers=_ENGINE,
        labels=_NONE,
    ),
)

# Labels pid, user, cmdline (or cgroup) of a discovered target, value 1: details that
# change when a process restarts stay off the memory series, whose labels are identity.
INFO_METRIC = "target_info"

METRICS: MappingProxyType[str, Metric] = MappingProxyType({m.name: m for m in _ALL})

# The metrics samples carry, which rules may name: all but the engine's own.
SAMPLE_METRICS: MappingProxyType[str, Metric] = MappingProxyType(
    {m.name: m for m in _ALL if Producer.ENGINE not in m.producers}
)


def produced_by(producer: Producer) -> tuple[str, ...]:
    """The names of the metrics `producer` publishes, in table order."""
    return tuple(m.name for m in _ALL if producer in m.producers)


# The trend detector's outputs.
DETECTOR_METRICS = produced_by(Producer.DETECTOR)
