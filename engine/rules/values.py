"""Values as people read them, the template variables and default summaries (no Jinja).

memalert.engine.rules.templates renders and checks templates with Jinja2; what
is here is what the rest of the engine needs without loading it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from memalert.engine.core.metrics import SAMPLE_METRICS, Unit
from memalert.engine.core.units import format_bytes, format_duration, format_percent

if TYPE_CHECKING:
    from collections.abc import Callable


TEMPLATE_VARIABLES: frozenset[str] = frozenset(
    {
        "rule",
        "metric",
        "severity",
        "state",
        "value",
        "threshold",
        "target",
        "component",
        "site",
        "labels",  # dict: the sample's labels plus the rule's labels
        "growth",  # leak growth, bytes per hour
        "confidence",  # leak confidence, 0..1
        "time_to_limit",  # seconds
        "limit",  # bytes
        "firing_for",  # seconds
        "pid",  # a discovered target's process id, user and command line (target_info)
        "user",
        "cmdline",
    }
)
"""What a summary may use, besides the keys of the rule's own `labels`."""


def _none_as_na(format_one: Callable[[float], str]) -> Callable[[float | None], str]:
    """Filters show `n/a` for a value the engine does not have yet (growth before a trend)."""

    def apply(value: float | None) -> str:
        return "n/a" if value is None else format_one(float(value))

    return apply


def format_number(value: float | None, digits: int | None = None) -> str:
    """`1500` -> `1500`; with `digits`, that many decimals: `number(1)` -> `12.3`."""
    if value is None:
        return "n/a"
    return f"{float(value):g}" if digits is None else f"{float(value):.{digits}f}"


VALUE_FILTERS: dict[str, Callable[..., str]] = {
    "bytes": _none_as_na(format_bytes),
    "percent": _none_as_na(format_percent),
    "duration": _none_as_na(format_duration),
    "number": format_number,
}
"""memalert's own template filters."""


def format_value(metric: str, value: float) -> str:
    """A metric's value as people read it: `95.4 MiB`, `83.0%`, `2h5m`, `12/h`, `3`."""
    unit = _unit_of(metric)
    if unit is Unit.BYTES:
        return format_bytes(value)
    if unit is Unit.BYTES_PER_HOUR:
        return f"{format_bytes(value)}/h"
    if unit is Unit.RATIO:
        return format_percent(value)
    if unit is Unit.PERCENT:
        return f"{format_number(value, 1)}%"
    if unit is Unit.SECONDS:
        return format_duration(value)
    return format_number(value)


def _unit_of(metric: str) -> Unit:
    info = SAMPLE_METRICS.get(metric)
    if info is not None:
        return info.unit
    if metric.endswith("_bytes"):
        return Unit.BYTES
    if metric.endswith("_seconds"):
        return Unit.SECONDS
    return Unit.COUNT


_VALUE_FILTERS = {
    Unit.BYTES: " | bytes",
    Unit.BYTES_PER_HOUR: " | bytes ~ '/h'",
    Unit.RATIO: " | percent",
    Unit.SECONDS: " | duration",
    Unit.PERCENT: " | number(1) ~ '%'",
    Unit.COUNT: " | number",
}


@functools.lru_cache(maxsize=64)
def default_summary(metric: str) -> str:
    """The summary template for a rule without one, with values in the metric's unit."""
    shown = _VALUE_FILTERS[_unit_of(metric)]
    return (
        "{{ rule }} {{ severity }}{% if state is defined %} {{ state }}{% endif %}: "
        "{{ metric }} of {{ target }}"
        "{% if component is defined and component %} (component {{ component }}){% endif %}"
        "{% if site is defined and site %} (site {{ site }}){% endif %}"
        f" is {{{{ value{shown} }}}}"
        "{% if threshold is defined and threshold is not none %}"
        f" (threshold {{{{ threshold{shown} }}}}){{% endif %}}"
    )
