"""A webhook as memalert's own notification: one event per alert, rendered as memalert would.

An alert from an exported memalert rule (its `alertname` names a rule of the
relay's rule files) gets the rule's own `summary`, with the `value` annotation
that `memalert export prometheus` writes (and `growth`, ... when the summary
reads them); its event carries the agent's labels
(instance, job, target, ...) without the `alertname` and `severity` memalert
keeps apart, and without the rule's own labels, which the summary sees anyway.
Any other alert keeps its labels and its `summary` (or `description`) annotation.
Pure: `now` is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from memalert.engine.alerting.messages import render_summary
from memalert.engine.alerting.routing import Notification
from memalert.engine.core.model import AlertEvent, AlertFired, AlertResolved, Labels, Rule, Severity
from memalert.engine.export.go_template import RELATED_VARIABLES
from memalert.engine.relay.payload import Webhook, WebhookAlert

_KEPT_APART = ("alertname", "severity")
# The annotations `memalert export prometheus` adds for a summary's related values.
_RELATED = RELATED_VARIABLES
_SUMMARY_ANNOTATIONS = ("summary", "description", "message")


def notification(
    rules: Mapping[str, Rule], notifier: str, webhook: Webhook, now: float
) -> Notification:
    events = tuple(alert_event(rules, alert, now) for alert in webhook.alerts)
    return Notification(notifier=notifier, at=now, events=events)


def _severity(labels: Labels) -> Severity:
    try:
        return Severity.parse(labels.get("severity", "warning"))
    except KeyError:
        # Alertmanager's `info`, `page`, ...: the lesser of memalert's levels.
        return Severity.WARNING


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def alert_event(rules: Mapping[str, Rule], alert: WebhookAlert, now: float) -> AlertEvent:
    name = alert.labels.get("alertname", "")
    rule = rules.get(name)
    severity = _severity(alert.labels)
    own = rule.labels if rule is not None else {}
    labels = Labels(
        {
            k: v
            for k, v in alert.labels.items()
            if k not in _KEPT_APART and not (k in own and own[k] == v)
        }
    )
    value = _number(alert.annotations.get("value"))
    firing = alert.status == "firing"
    at = now if firing or alert.ends_at is None else alert.ends_at
    event_type = AlertFired if firing else AlertResolved
    if rule is not None:
        threshold = rule.thresholds.get(severity)
        summary = render_summary(
            rule,
            severity=severity,
            state=event_type.event,
            labels=labels,
            value=value,
            threshold=threshold,
            related={
                metric: number
                for name, metric in _RELATED.items()
                if (number := _number(alert.annotations.get(name))) is not None
            },
            firing_for=None if alert.starts_at is None else max(at - alert.starts_at, 0.0),
        )
        metric = rule.metric
    else:
        threshold = _number(alert.annotations.get("threshold"))
        summary = next(
            (alert.annotations[k] for k in _SUMMARY_ANNOTATIONS if k in alert.annotations), ""
        )
        metric = ""
    return event_type(
        at=at,
        rule=name,
        metric=metric,
        severity=severity,
        labels=labels,
        value=value,
        threshold=threshold,
        summary=summary,
        active_since=alert.starts_at,
        firing_since=alert.starts_at,
    )
