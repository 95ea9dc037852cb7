"""What people read: the summary of one alert and the text of one grouped notification.

Channel-specific formatting (Slack colours, HTML email) lives in `notifiers/`;
this module gives every channel the same facts in plain text.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from memalert.engine.alerting.staleness import SeriesKey
from memalert.engine.core.metrics import INFO_METRIC
from memalert.engine.core.model import AlertEvent, Labels, Rule, Sample, Severity, SummaryRenderer
from memalert.engine.core.units import format_duration
from memalert.engine.rules.values import default_summary, format_value

# Template variable -> the detector or tracker metric that fills it: what a
# summary can show besides the rule's own value.
RELATED_VARIABLES: Mapping[str, str] = MappingProxyType(
    {
        "growth": "leak_growth_bytes_per_hour",
        "confidence": "leak_confidence",
        "time_to_limit": "time_to_limit_seconds",
        "limit": "limit_bytes",
    }
)


def related_values(series: Mapping[SeriesKey, Sample], labels: Labels) -> dict[str, float]:
    """Detector and tracker values of the same series (or its target), for templates."""
    related: dict[str, float] = {}
    target_only = Labels(target=labels.get("target", ""))
    for metric in RELATED_VARIABLES.values():
        sample = series.get((metric, labels)) or series.get((metric, target_only))
        if sample is not None:
            related[metric] = sample.value
    return related


# What a discovered target's `target_info` gives templates (docs/targets.md).
INFO_VARIABLES = ("pid", "user", "cmdline")


def target_infos(series: Mapping[SeriesKey, Sample]) -> dict[str, Labels]:
    """The newest `target_info` labels per target: who holds a discovered target now."""
    newest: dict[str, Sample] = {}
    for (metric, _), sample in series.items():
        if metric == INFO_METRIC:
            held = newest.get(sample.target)
            if held is None or sample.ts >= held.ts:
                newest[sample.target] = sample
    return {target: sample.labels for target, sample in newest.items()}


def summary_renderer(rule: Rule) -> SummaryRenderer:
    """What renders `rule`'s summary for one of its events, from that event alone."""
    return functools.partial(_event_summary, rule)


def _event_summary(rule: Rule, event: AlertEvent) -> str:
    return render_summary(
        rule,
        severity=event.severity,
        state=event.event,
        labels=event.labels,
        value=event.value,
        threshold=event.threshold,
        related=event.related,
        firing_for=None if event.firing_since is None else event.at - event.firing_since,
        info=event.info,
    )


def render_summary(
    rule: Rule,
    *,
    severity: Severity,
    state: str,
    labels: Labels,
    value: float | None,
    threshold: float | None,
    related: Mapping[str, float],
    firing_for: float | None,
    info: Mapping[str, str] | None = None,
) -> str:
    """Render the rule's summary template; never raises (see `rules.templates.render`)."""
    label_values = labels.as_dict()
    context: dict[str, object] = {
        **rule.labels,
        "rule": rule.name,
        "metric": rule.metric,
        "severity": severity.label,
        "state": state,
        "value": value,
        "threshold": threshold,
        "target": label_values.get("target", ""),
        "component": label_values.get("component", ""),
        "site": label_values.get("site", ""),
        "labels": label_values,
        **{variable: related.get(metric) for variable, metric in RELATED_VARIABLES.items()},
        "firing_for": firing_for,
        **{variable: (info or {}).get(variable, "") for variable in INFO_VARIABLES},
    }
    # Jinja loads with the first summary rendered, not with the daemon.
    from memalert.engine.rules.templates import render  # noqa: PLC0415

    return render(rule.summary or default_summary(rule.metric), context)


def describe_labels(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def event_line(event: AlertEvent) -> str:
    """One line per event: `[FIRING:warning] memory-leak {target=api} 95.4 MiB: summary`."""
    value = "no data" if event.value is None else format_value(event.metric, event.value)
    line = (
        f"[{event.event.upper()}:{event.severity.label}] {event.rule} "
        f"{describe_labels(event.labels)} {value}"
    )
    if event.threshold is not None and event.event != "resolved":
        line += f" (threshold {format_value(event.metric, event.threshold)})"
    if event.event == "resolved" and event.firing_since is not None:
        line += f" after firing {format_duration(event.at - event.firing_since)}"
    if event.reason:
        line += f" [{event.reason}]"
    return f"{line}: {event.summary}" if event.summary else line


def notification_title(events: tuple[AlertEvent, ...]) -> str:
    """`[memalert] 3 alerts: 2 firing (1 critical), 1 resolved`."""
    if len(events) == 1:
        event = events[0]
        return (
            f"[memalert] {event.event.upper()} {event.severity.label}: {event.rule} "
            f"on {event.labels.get('target', '?')}"
        )
    resolved = sum(1 for e in events if e.event == "resolved")
    critical = sum(1 for e in events if e.event != "resolved" and e.severity is Severity.CRITICAL)
    active = len(events) - resolved
    parts = [f"{active} firing ({critical} critical)"] if active else []
    if resolved:
        parts.append(f"{resolved} resolved")
    return f"[memalert] {len(events)} alerts: " + ", ".join(parts)
