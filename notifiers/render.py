"""One grouped notification, rendered per channel: plain text, Markdown (Slack), HTML, JSON.

Every channel says the same facts (`memalert.engine.alerting.messages` words each alert's line);
this module only arranges them: what is worst comes first, what a person on
call needs next (value, threshold, how long, how fast it grows, where) follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memalert.engine.alerting.messages import describe_labels, event_line, notification_title
from memalert.engine.core.model import AlertEvent, AlertResolved
from memalert.engine.core.model import fingerprint as instance_fingerprint
from memalert.engine.core.units import format_bytes, format_duration, rfc3339
from memalert.engine.rules.values import format_value

if TYPE_CHECKING:
    from memalert.engine.alerting.routing import Notification

# Slack renders about 40 lines before folding a message and rejects a section
# over 3000 characters; beyond this many alerts the message says how many more.
CHAT_MAX_EVENTS = 20

# What Alertmanager puts in `endsAt` for an alert that has not ended.
_ZERO_TIME = "0001-01-01T00:00:00Z"

# How a message is coloured: the worst severity still firing, else resolved.
TONE_COLOURS = {"critical": "#D50000", "warning": "#FF8C00", "resolved": "#2EB67D"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    title: str
    body: str


def tone(notification: Notification) -> str:
    """`critical` or `warning` for the worst alert still firing; `resolved` if none is."""
    firing = [e.severity for e in notification.events if not isinstance(e, AlertResolved)]
    if not firing:
        return "resolved"
    return max(firing).label


def ordered(events: tuple[AlertEvent, ...]) -> list[AlertEvent]:
    """Firing before resolved, critical before warning; otherwise as evaluated."""
    return sorted(events, key=lambda e: (isinstance(e, AlertResolved), -e.severity))


def details(event: AlertEvent) -> list[str]:
    """The facts after the alert's line: how long, how fast, where."""
    lines: list[str] = []
    if not isinstance(event, AlertResolved):
        # An alert that fires this very tick has fired for 0s; how long its
        # condition has held (the rule's `for`) says more.
        for verb, since in (("firing", event.firing_since), ("active", event.active_since)):
            if since is not None and since < event.at:
                duration = format_duration(event.at - since)
                lines.append(f"{verb} for {duration} (since {rfc3339(since)})")
                break
    related = event.related
    growth = related.get("leak_growth_bytes_per_hour")
    if growth is not None and growth > 0 and event.metric != "leak_growth_bytes_per_hour":
        leak = f"growing {format_bytes(growth)}/h"
        to_limit = related.get("time_to_limit_seconds")
        if to_limit is not None and event.metric != "time_to_limit_seconds":
            leak += f", limit reached in {format_duration(to_limit)}"
        lines.append(leak)
    sites = event.top_sites
    if sites:
        lines.append(
            "top growing sites: " + ", ".join(f"{site} +{format_bytes(b)}" for site, b in sites)
        )
    return lines


def render_text(notification: Notification) -> Message:
    """Console, JSON Lines and generic apprise services: every alert, plain text."""
    blocks = [
        "\n".join([event_line(event), *(f"    {line}" for line in details(event))])
        for event in ordered(notification.events)
    ]
    return Message(title=notification_title(notification.events), body="\n".join(blocks))


def render_markdown(notification: Notification, *, max_events: int = CHAT_MAX_EVENTS) -> Message:
    """Slack and other chat services: bounded, worst first.

    apprise turns the Markdown into Slack's mrkdwn. Nothing is escaped: Slack
    and Discord only emphasise `_x_` at word boundaries, so `rss_bytes` stays
    as written, while a backslash escape would be shown literally.
    """
    events = ordered(notification.events)
    blocks = []
    for event in events[:max_events]:
        rest = "".join(f"\n> {line}" for line in details(event))
        blocks.append(f"**{event_line(event)}**{rest}")
    hidden = len(events) - max_events
    if hidden > 0:
        blocks.append(f"_... and {hidden} more alerts_")
    return Message(title=notification_title(notification.events), body="\n".join(blocks))


def render_html(notification: Notification) -> Message:
    """Email: one coloured block per alert; apprise derives the text part from it."""
    # `html` loads its entity tables (~0.3 MB) with it: only email needs it.
    import html  # noqa: PLC0415

    title = notification_title(notification.events)
    parts = [
        '<html><body style="font-family: sans-serif">',
        f'<h2 style="color: {TONE_COLOURS[tone(notification)]}">{html.escape(title)}</h2>',
    ]
    for event in ordered(notification.events):
        colour = TONE_COLOURS[
            "resolved" if isinstance(event, AlertResolved) else event.severity.label
        ]
        target = event.labels.get("target", "?")
        value = "no data" if event.value is None else format_value(event.metric, event.value)
        facts = [f"Value: {value}"]
        if event.threshold is not None and not isinstance(event, AlertResolved):
            facts.append(f"Threshold: {format_value(event.metric, event.threshold)}")
        if isinstance(event, AlertResolved) and event.firing_since is not None:
            facts.append(f"Fired for {format_duration(event.at - event.firing_since)}")
        if event.reason:
            facts.append(f"Reason: {event.reason}")
        facts += [line[:1].upper() + line[1:] for line in details(event)]
        facts.append(f"Labels: {describe_labels(event.labels)}")
        parts += [
            f'<div style="border-left: 4px solid {colour}; padding-left: 8px; margin: 12px 0">',
            (
                f"<p><b>[{html.escape(event.event.upper())}:{event.severity.label}] "
                f"{html.escape(event.rule)} on {html.escape(target)}</b></p>"
            ),
            *([f"<p>{html.escape(event.summary)}</p>"] if event.summary else []),
            "<ul>",
            *(f"<li>{html.escape(fact)}</li>" for fact in facts),
            "</ul>",
            "</div>",
        ]
    parts.append("</body></html>")
    return Message(title=title, body="\n".join(parts))


def event_record(event: AlertEvent) -> dict[str, Any]:
    """One alert as JSON (file notifier): raw numbers, plus the lines the text channels show."""
    return {
        "event": event.event,
        "at": rfc3339(event.at),
        "rule": event.rule,
        "metric": event.metric,
        "severity": event.severity.label,
        "labels": event.labels.as_dict(),
        "value": event.value,
        "threshold": event.threshold,
        "summary": event.summary,
        "active_since": None if event.active_since is None else rfc3339(event.active_since),
        "firing_since": None if event.firing_since is None else rfc3339(event.firing_since),
        "reason": event.reason,
        "related": dict(event.related),
        "top_sites": [{"site": site, "growth_bytes": grown} for site, grown in event.top_sites],
        "message": event_line(event),
        "details": details(event),
    }


def notification_record(notification: Notification) -> dict[str, Any]:
    return {
        "notifier": notification.notifier,
        "at": rfc3339(notification.at),
        "title": notification_title(notification.events),
        "status": tone(notification),
        "events": [event_record(e) for e in notification.events],
    }


def fingerprint(event: AlertEvent) -> str:
    """16 hex digits identifying the alert (rule + alert labels), as Alertmanager's do."""
    return instance_fingerprint(event.rule, event.labels)


def alertmanager_body(
    notification: Notification, *, receiver: str, external_url: str = "", max_alerts: int = 0
) -> dict[str, Any]:
    """The Alertmanager webhook payload (version 4) for one grouped notification.

    Existing consumers of Alertmanager webhooks can take memalert alerts as they
    are. `max_alerts` > 0 caps the list as Alertmanager's `max_alerts` does and
    reports the rest in `truncatedAlerts`.
    """
    alerts = [_alertmanager_alert(e, external_url) for e in ordered(notification.events)]
    shown = alerts[:max_alerts] if max_alerts > 0 else alerts
    status = "resolved" if all(a["status"] == "resolved" for a in alerts) else "firing"
    return {
        "version": "4",
        "groupKey": f'{{}}:{{receiver="{receiver}"}}',
        "truncatedAlerts": len(alerts) - len(shown),
        "status": status,
        "receiver": receiver,
        "groupLabels": {},
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "alerts": shown,
    }


def _alertmanager_alert(event: AlertEvent, external_url: str) -> dict[str, Any]:
    resolved = isinstance(event, AlertResolved)
    starts = next((t for t in (event.firing_since, event.active_since) if t is not None), event.at)
    description = "\n".join([event_line(event), *details(event)])
    return {
        "status": "resolved" if resolved else "firing",
        "labels": {
            **event.labels.as_dict(),
            "alertname": event.rule,
            "severity": event.severity.label,
        },
        "annotations": {"summary": event.summary or event_line(event), "description": description},
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(event.at) if resolved else _ZERO_TIME,
        "generatorURL": f"{external_url.rstrip('/')}/alerts" if external_url else "",
        "fingerprint": fingerprint(event),
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    """The pairs every map shares, as Alertmanager's commonLabels/commonAnnotations."""
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}
