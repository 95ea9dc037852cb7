"""Alertmanager's webhook payload (version 4), read strictly: every refusal says why.

https://prometheus.io/docs/alerting/latest/configuration/#webhook_config gives
the format. Only what the relay uses is required: `version` "4", `status`,
`alerts` (each with non-empty `labels`); the rest is taken when present.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memalert.engine.core.model import Labels

SUPPORTED_VERSION = "4"
MAX_ALERTS = 10_000
_STATUSES = ("firing", "resolved")
# Go's zero time: what Alertmanager sends as `endsAt` of an alert still firing.
_GO_ZERO_YEAR = 1


class WebhookError(ValueError):
    """A payload the relay refuses (400); the message says what is wrong."""


@dataclass(frozen=True, kw_only=True, slots=True)
class WebhookAlert:
    status: str
    labels: Labels
    annotations: Labels
    starts_at: float | None
    ends_at: float | None
    fingerprint: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Webhook:
    group_key: str
    status: str
    receiver: str
    alerts: tuple[WebhookAlert, ...]
    truncated_alerts: int = 0

    def dedup_key(self, notifier: str) -> str:
        """Names what this webhook says: Alertmanager sending it again (a retry, an HA peer)
        sends the same key; a change of status or of the alerts in the group, a new one."""
        alerts = sorted((a.fingerprint, a.status) for a in self.alerts)
        text = json.dumps([notifier, self.group_key, self.status, alerts], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def parse_webhook(body: bytes) -> Webhook:
    """The webhook in `body`; WebhookError naming the first problem."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookError(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WebhookError(f"the body is a JSON {type(data).__name__}, not an object")
    version = data.get("version")
    if version != SUPPORTED_VERSION:
        raise WebhookError(
            f"payload version {version!r} is not supported: memalert relay reads "
            f"Alertmanager's version {SUPPORTED_VERSION!r}"
        )
    status = _choice(data, "status", "the payload")
    alerts = data.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise WebhookError("'alerts' must be a non-empty list")
    if len(alerts) > MAX_ALERTS:
        raise WebhookError(f"'alerts' has {len(alerts)} alerts; at most {MAX_ALERTS} are read")
    truncated = data.get("truncatedAlerts", 0)
    return Webhook(
        group_key=_text(data, "groupKey", "the payload"),
        status=status,
        receiver=_text(data, "receiver", "the payload"),
        alerts=tuple(_alert(alert, i) for i, alert in enumerate(alerts)),
        truncated_alerts=truncated if isinstance(truncated, int) and truncated > 0 else 0,
    )


def _alert(value: Any, index: int) -> WebhookAlert:
    where = f"alerts[{index}]"
    if not isinstance(value, dict):
        raise WebhookError(f"{where} is not an object")
    labels = _labels(value.get("labels"), f"{where}.labels")
    if not labels:
        raise WebhookError(f"{where} has no labels")
    fingerprint = value.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        # Alertmanager always sends one; a hand-made payload gets the labels' own.
        fingerprint = hashlib.sha256(repr(labels.items_key).encode()).hexdigest()[:16]
    return WebhookAlert(
        status=_choice(value, "status", where),
        labels=labels,
        annotations=_labels(value.get("annotations", {}), f"{where}.annotations"),
        starts_at=_time(value.get("startsAt"), f"{where}.startsAt"),
        ends_at=_time(value.get("endsAt"), f"{where}.endsAt"),
        fingerprint=fingerprint,
    )


def _choice(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if value not in _STATUSES:
        raise WebhookError(f"'{key}' of {where} must be 'firing' or 'resolved', got {value!r}")
    return str(value)


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise WebhookError(f"'{key}' of {where} must be a string")
    return value


def _labels(value: Any, where: str) -> Labels:
    if value is None:
        return Labels()
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise WebhookError(f"{where} must be an object of strings")
    return Labels(value)


def _time(value: Any, where: str) -> float | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WebhookError(f"{where} must be an RFC 3339 time")
    try:
        # Python reads RFC 3339 with Go's nanoseconds since 3.11 (keeping microseconds).
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise WebhookError(f"{where} {value[:64]!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise WebhookError(f"{where} {value[:64]!r} has no time zone")
    return None if moment.year == _GO_ZERO_YEAR else moment.timestamp()
