"""Stable JSON for what the state file keeps: labels, notifications and their events.

An outbox row may be written by one memalert version and delivered by the next
after an upgrade, so the encoding is explicit (one encoder and one decoder per
field, in a table) rather than whatever `dataclasses.asdict` happens to emit.
Decoding checks every value and names the first thing that is wrong.

Payload (version 1):

    {"version": 1, "notifier": "oncall", "at": 1764000000.0,
     "events": [{"event": "firing", "at": ..., "rule": "...", "metric": "...",
                 "severity": "warning", "labels": {"target": "api"}, "value": 1.5e8,
                 "threshold": 1e8, "summary": "...", "silenced": false,
                 "related": {"leak_growth_bytes_per_hour": 5e6},
                 "top_sites": [["cache.py:42", 4.2e7]],
                 "active_since": ..., "firing_since": ..., "reason": ""}]}

A notification of a route's group (alerting.grouping) also has `"group"`: the
group's labels. Older payloads have none and read as a tick's events.

Non-finite numbers are written as Python's json writes them (`Infinity`, `NaN`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from memalert.engine.alerting.grouping import Group
from memalert.engine.alerting.routing import Notification
from memalert.engine.core.model import (
    AlertDeescalated,
    AlertEscalated,
    AlertEvent,
    AlertFired,
    AlertPending,
    AlertRepeated,
    AlertResolved,
    Labels,
    Severity,
)

if TYPE_CHECKING:
    from memalert.notifiers.base import DeliveryResult

PAYLOAD_VERSION = 1

EVENT_KINDS: dict[str, type[AlertEvent]] = {
    cls.event: cls
    for cls in (
        AlertPending,
        AlertFired,
        AlertEscalated,
        AlertDeescalated,
        AlertResolved,
        AlertRepeated,
    )
}


class PayloadError(ValueError):
    """A notification that cannot be encoded, or a stored payload that cannot be read."""


def encode_labels(labels: Mapping[str, str]) -> str:
    """Canonical JSON (sorted keys, no spaces): equal label sets give equal text."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# What reading a stored value can raise besides PayloadError: a column of another
# type (SQLite stores what it is given), JSON nested past the recursion limit,
# numbers beyond a float, unhashable values where keys are looked up.
_UNREADABLE = (TypeError, ValueError, KeyError, OverflowError, RecursionError, AttributeError)


def decode_labels(text: str) -> Labels:
    try:
        return _labels(json.loads(text))
    except PayloadError:
        raise
    except _UNREADABLE as exc:
        raise PayloadError(f"labels cannot be read: {type(exc).__name__}: {exc}") from None


def encode_notification(notification: Notification) -> str:
    try:
        document: dict[str, Any] = {
            "version": PAYLOAD_VERSION,
            "notifier": notification.notifier,
            "at": _number(notification.at),
            "events": encode_events(notification.events),
        }
        if notification.group is not None:
            document["group"] = notification.group.as_dict()
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise PayloadError(
            f"cannot encode the notification for {notification.notifier!r}: {exc}"
        ) from exc


def decode_notification(text: str) -> Notification:
    """The stored notification; any payload that cannot be read raises PayloadError only,
    so the delivery worker makes it a dead letter instead of retrying it for ever."""
    try:
        return _decode_notification(text)
    except PayloadError:
        raise
    except _UNREADABLE as exc:
        raise PayloadError(f"payload cannot be read: {type(exc).__name__}: {exc}") from None


def _decode_notification(text: str) -> Notification:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"payload is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(document).__name__}")
    version = document.get("version")
    if version != PAYLOAD_VERSION:
        raise PayloadError(f"payload version {version!r} is not {PAYLOAD_VERSION}")
    events = document.get("events")
    if not isinstance(events, list):
        raise PayloadError("payload 'events' must be a list")
    group = document.get("group")  # absent before grouping existed, and for a tick's events
    return Notification(
        notifier=_field(document, "notifier", _text),
        at=_field(document, "at", _number),
        events=decode_events(events),
        group=None if group is None else _field(document, "group", _labels),
    )


def encode_url_results(result: DeliveryResult | None) -> str:
    """Each URL's outcome of a delivery, for the notification log (URLs arrive masked)."""
    urls = () if result is None else result.urls
    return json.dumps(
        [{"url": u.url, "ok": u.ok, "detail": u.detail} for u in urls], ensure_ascii=False
    )


def encode_alert_list(notification: Notification) -> str:
    """What a notification was about, for the log that outlives the outbox row."""
    return json.dumps(
        [
            {
                "event": e.event,
                "rule": e.rule,
                "severity": e.severity.label,
                "labels": e.labels.as_dict(),
            }
            for e in notification.events
        ],
        ensure_ascii=False,
    )


# -- field codecs ---------------------------------------------------------------


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"expected a number, got {value!r}")
    return float(value)


def _optional_number(value: Any) -> float | None:
    return None if value is None else _number(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"expected a string, got {value!r}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise PayloadError(f"expected true or false, got {value!r}")
    return value


def _labels(value: Any) -> Labels:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PayloadError(f"labels must be an object of strings, got {value!r}")
    return Labels(value)


def _severity(value: Any) -> Severity:
    try:
        return Severity.parse(_text(value))
    except KeyError:
        raise PayloadError(f"unknown severity {value!r}") from None


def _numbers_by_name(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise PayloadError(f"expected an object of numbers, got {value!r}")
    return {k: _number(v) for k, v in value.items()}


def _sites(value: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(pair, list | tuple) and len(pair) == 2 for pair in value
    ):
        raise PayloadError(f"expected a list of [site, bytes] pairs, got {value!r}")
    return tuple((_text(site), _number(grown)) for site, grown in value)


def _site_list(value: tuple[tuple[str, float], ...]) -> list[list[Any]]:
    return [[site, grown] for site, grown in _sites(value)]


def _severity_label(value: Severity) -> str:
    return value.label


def _labels_dict(value: Labels) -> dict[str, str]:
    return value.as_dict()


def _text_by_name(value: Mapping[str, str]) -> dict[str, str]:
    return dict(value)


# field -> (encode, decode); a test checks this covers every AlertEvent field,
# so a new field cannot be dropped from the outbox unnoticed.
EVENT_FIELDS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "at": (_number, _number),
    "rule": (_text, _text),
    "metric": (_text, _text),
    "severity": (_severity_label, _severity),
    "labels": (_labels_dict, _labels),
    "value": (_optional_number, _optional_number),
    "threshold": (_optional_number, _optional_number),
    "summary": (_text, _text),
    "silenced": (_flag, _flag),
    "related": (_numbers_by_name, _numbers_by_name),
    "top_sites": (_site_list, _sites),
    "active_since": (_optional_number, _optional_number),
    "firing_since": (_optional_number, _optional_number),
    "reason": (_text, _text),
    "info": (_text_by_name, _labels),
}


_REQUIRED_EVENT_FIELDS = frozenset(
    f.name
    for f in dataclasses.fields(AlertEvent)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)


def encode_events(events: Sequence[AlertEvent]) -> list[dict[str, Any]]:
    """Events as JSON values (a notification's, a notification group's alerts)."""
    return [_encode_event(e, i) for i, e in enumerate(events)]


def decode_events(values: Sequence[Any]) -> tuple[AlertEvent, ...]:
    """What `encode_events` wrote; PayloadError names the first event that is wrong."""
    return tuple(_decode_event(value, index) for index, value in enumerate(values))


def _encode_event(event: AlertEvent, index: int) -> dict[str, Any]:
    encoded: dict[str, Any] = {"event": event.event}
    for name, (encode, _) in EVENT_FIELDS.items():
        try:
            encoded[name] = encode(getattr(event, name))
        except PayloadError as exc:
            raise PayloadError(f"events[{index}].{name}: {exc}") from None
    return encoded


def _decode_event(value: Any, index: int) -> AlertEvent:
    if not isinstance(value, dict):
        raise PayloadError(f"events[{index}] must be an object")
    kind = EVENT_KINDS.get(value.get("event", ""))
    if kind is None:
        raise PayloadError(f"events[{index}]: unknown event {value.get('event')!r}")
    # A field missing from the payload takes its default, so a field added in a
    # later release still reads payloads queued before the upgrade.
    fields = {
        name: _field(value, name, decode, where=f"events[{index}].")
        for name, (_, decode) in EVENT_FIELDS.items()
        if name in value or name in _REQUIRED_EVENT_FIELDS
    }
    return kind(**fields)


def _field(
    document: dict[str, Any], name: str, decode: Callable[[Any], Any], where: str = ""
) -> Any:
    if name not in document:
        raise PayloadError(f"{where}{name} is missing")
    try:
        return decode(document[name])
    except PayloadError as exc:
        raise PayloadError(f"{where}{name}: {exc}") from None


# -- notification groups (alerting.grouping) -------------------------------------


def encode_group(group: Group) -> str:
    """A group's alerts and notification log; its key and timer are columns of their own."""
    document = {
        "alerts": encode_events(tuple(group.alerts.values())),
        "sent_firing": [
            [rule, labels.as_dict(), severity.label]
            for (rule, labels), severity in sorted(group.sent_firing, key=_sent_order)
        ],
        "sent_resolved": [
            [rule, labels.as_dict()]
            for rule, labels in sorted(group.sent_resolved, key=lambda k: (k[0], k[1].items_key))
        ],
        "renotify": group.renotify,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def decode_group(text: str, *, due: float, notified_at: float | None) -> Group:
    """What `encode_group` wrote; any problem raises PayloadError only."""
    try:
        document = json.loads(text)
        if not isinstance(document, dict):
            raise PayloadError("a group must be a JSON object")
        events = document.get("alerts")
        if not isinstance(events, list):
            raise PayloadError("a group's 'alerts' must be a list")
        alerts = {(e.rule, e.labels): e for e in decode_events(events)}
        return Group(
            alerts=alerts,
            due=due,
            notified_at=notified_at,
            sent_firing=frozenset(
                ((_text(rule), _labels(labels)), _severity(severity))
                for rule, labels, severity in _field(document, "sent_firing", _list)
            ),
            sent_resolved=frozenset(
                (_text(rule), _labels(labels))
                for rule, labels in _field(document, "sent_resolved", _list)
            ),
            renotify=_field(document, "renotify", _flag),
        )
    except PayloadError:
        raise
    except _UNREADABLE as exc:
        raise PayloadError(f"group cannot be read: {type(exc).__name__}: {exc}") from None


def _sent_order(item: tuple[tuple[str, Labels], Severity]) -> tuple[Any, ...]:
    (rule, labels), severity = item
    return (rule, labels.items_key, severity)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise PayloadError(f"expected a list, got {value!r}")
    return value
