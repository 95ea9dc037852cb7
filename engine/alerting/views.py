"""Active alerts and silences as people and tests see them.

`memalert test`, the /alerts endpoint and `memalert status` read these views of
an `EvalState`; the evaluator itself never needs them. `silence_view` is the one
JSON form of a silence, for the HTTP API and `memalert silence list|status
--format json` alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memalert.engine.alerting.evaluate import EvalState
from memalert.engine.alerting.inhibition import inhibited_alerts
from memalert.engine.alerting.messages import related_values, render_summary
from memalert.engine.core.model import Labels, RuleSet, Severity, Silence
from memalert.engine.core.secrets import mask


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertView:
    """An active alert as `memalert test`, /alerts and status show it."""

    rule: str
    labels: Labels
    state: str  # "pending" | "firing"
    severity: Severity
    active_since: float
    value: float | None
    summary: str
    # Muted by an inhibit rule: still evaluated and shown, not notified.
    inhibited: bool = False


def active_alerts(rules: RuleSet, state: EvalState, now: float) -> list[AlertView]:
    """The pending and firing alerts in `state`, one entry per instance and level.

    A firing instance with a higher level pending shows both, as two Prometheus
    rules would.
    """
    by_name = {rule.name: rule for rule in rules.rules}
    muted = inhibited_alerts(rules, state)
    views: list[AlertView] = []
    for (name, labels), inst in state.instances.items():
        rule = by_name.get(name)
        if rule is None:
            continue
        shown: list[tuple[str, Severity, float]] = []
        if inst.firing is not None and inst.firing_since is not None:
            shown.append(("firing", inst.firing, inst.firing_since))
        for level in sorted(rule.thresholds, reverse=True):
            since = inst.active_since[level - 1]
            if since is not None and (inst.firing is None or level > inst.firing):
                shown.append(("pending", level, since))
                break
        if not shown:
            continue
        alert_labels = labels.merged(rule.labels) if rule.labels else labels
        sample = state.series.get((rule.metric, labels))
        value = None if sample is None else sample.value
        related = related_values(state.series, labels)
        for view_state, severity, since in shown:
            threshold = rule.thresholds.get(severity)
            summary = render_summary(
                rule,
                severity=severity,
                state=view_state,
                labels=alert_labels,
                value=value,
                threshold=threshold,
                related=related,
                firing_for=now - since if view_state == "firing" else None,
            )
            views.append(
                AlertView(
                    rule=name,
                    labels=alert_labels,
                    state=view_state,
                    severity=severity,
                    active_since=since,
                    value=value,
                    summary=summary,
                    inhibited=view_state == "firing" and (name, alert_labels) in muted,
                )
            )
    return views


def silence_view(silence: Silence, now: float) -> dict[str, Any]:
    """A silence as JSON (docs/openapi.yaml `Silence`): times in unix seconds, text masked."""
    view: dict[str, Any] = {
        "id": silence.id,
        "match": {mask(m.label): mask(m.pattern) for m in silence.matchers},
        "starts": silence.starts,
        "ends": silence.ends,
        "comment": mask(silence.comment),
        "author": mask(silence.author),
        "active": silence.active(now),
    }
    if silence.time_intervals:  # a rule file's recurring silence
        view["time_intervals"] = list(silence.time_intervals)
    return view
