"""Alertmanager webhooks and the rule file of the relay tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

# Alertmanager's nanoseconds, as Python keeps them (microseconds)
STARTS = datetime(2027, 1, 15, 8, 0, 0, 123456, tzinfo=UTC).timestamp()
TOKEN = "s3cret-relay-token"
RULES = """\
version: 1
rules:
  - name: memory-leak
    metric: leak_bytes
    above: {warning: 1MiB, critical: 2MiB}
    labels: {team: core}
    summary: >-
      {{ target }} leaks {{ value | bytes }}
      ({{ severity }} above {{ threshold | bytes }}, {{ team }})
"""


def alert(
    status: str = "firing", *, severity: str = "warning", fingerprint: str = "f1", **labels: str
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "memory-leak",
            "severity": severity,
            "team": "core",
            "target": "app",
            "instance": "h1:9464",
            **labels,
        },
        "annotations": {"value": "1572864", "summary": "prometheus' own"},
        "startsAt": "2027-01-15T08:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2027-01-15T08:10:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def webhook(
    *alerts: dict[str, Any], status: str = "firing", group: str = '{}:{alertname="memory-leak"}'
) -> bytes:
    return json.dumps(
        {
            "version": "4",
            "groupKey": group,
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "hook",
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": list(alerts) or [alert()],
        }
    ).encode()
