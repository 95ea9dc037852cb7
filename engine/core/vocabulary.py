"""The metric names rules may use (docs/rules.md#metrics): unit and the labels each one carries.

One table serves the rule checker (unknown metrics, units of thresholds,
`where` labels that can never match) and message formatting (`95.4 MiB`,
`83.0%`, `2h5m`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType


class Unit(enum.Enum):
    BYTES = "bytes"
    BYTES_PER_HOUR = "bytes per hour"
    RATIO = "ratio 0..1"
    PERCENT = "percent 0..100"
    SECONDS = "seconds"
    COUNT = "count"


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricInfo:
    name: str
    unit: Unit
    labels: frozenset[str]
    description: str


_TARGET = frozenset({"target"})
_COMPONENT = frozenset({"target", "component"})
_SITE = frozenset({"target", "site"})

_ALL = (
    MetricInfo(name="rss_bytes", unit=Unit.BYTES, labels=_TARGET, description="resident memory"),
    MetricInfo(name="vms_bytes", unit=Unit.BYTES, labels=_TARGET, description="virtual memory"),
    MetricInfo(name="uss_bytes", unit=Unit.BYTES, labels=_TARGET, description="unique memory"),
    MetricInfo(name="swap_bytes", unit=Unit.BYTES, labels=_TARGET, description="swapped out"),
    MetricInfo(
        name="limit_bytes", unit=Unit.BYTES, labels=_TARGET, description="cgroup limit or RAM"
    ),
    MetricInfo(name="pressure", unit=Unit.RATIO, labels=_TARGET, description="used / limit"),
    MetricInfo(
        name="psi_some_avg10", unit=Unit.PERCENT, labels=_TARGET, description="PSI some, 10 s"
    ),
    MetricInfo(
        name="psi_full_avg10", unit=Unit.PERCENT, labels=_TARGET, description="PSI full, 10 s"
    ),
    MetricInfo(name="up", unit=Unit.COUNT, labels=_TARGET, description="1 if the target was found"),
    # leak_bytes is per target, and per component for components the detector flags.
    MetricInfo(
        name="leak_bytes", unit=Unit.BYTES, labels=_COMPONENT, description="memory in a leak"
    ),
    MetricInfo(
        name="leak_growth_bytes_per_hour",
        unit=Unit.BYTES_PER_HOUR,
        labels=_TARGET,
        description="leak growth rate",
    ),
    MetricInfo(
        name="leak_confidence", unit=Unit.RATIO, labels=_TARGET, description="leak confidence"
    ),
    MetricInfo(
        name="time_to_limit_seconds",
        unit=Unit.SECONDS,
        labels=_TARGET,
        description="time until the limit at the current leak rate",
    ),
    MetricInfo(
        name="component_bytes",
        unit=Unit.BYTES,
        labels=_COMPONENT,
        description="outstanding bytes of a component",
    ),
    MetricInfo(
        name="component_allocations",
        unit=Unit.COUNT,
        labels=_COMPONENT,
        description="outstanding allocations of a component",
    ),
    MetricInfo(
        name="site_growth_bytes",
        unit=Unit.BYTES,
        labels=_SITE,
        description="growth at one allocation site",
    ),
)

METRICS: MappingProxyType[str, MetricInfo] = MappingProxyType({m.name: m for m in _ALL})
