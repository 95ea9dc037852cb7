"""A real Alertmanager as the oracle of memalert's notification grouping.

`play` posts a scripted sequence of alerts to Debian's `prometheus-alertmanager`
(started on loopback by `scale_out_kit.Processes`) at their times, in real
time, and returns the webhook notifications it sent, each with the time it
arrived. The same script is fed to memalert's grouping by the differential test,
so both sides see the same alerts at the same offsets.

Times are seconds from the start of the script. Every change is placed at least
0.7 s away from the group timers of `TIMING`, so that which side of a flush a
change falls on does not depend on how busy the machine is.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from notifier_kit import WebhookServer
from scale_out_kit import Processes

# group_wait, group_interval, repeat_interval in seconds: short, so a script of
# new, repeated, resolved and flapping alerts in three groups runs in half a minute.
TIMING = {"group_wait": 2.0, "group_interval": 4.0, "repeat_interval": 10.0}
GROUP_BY = ("host",)
# Ends 1 s or more away from either side's next timer (memalert re-creates a resolved
# group at once, Alertmanager keeps it until its maintenance: their repeats differ).
LENGTH = 30.0


@dataclass(frozen=True, slots=True)
class Change:
    at: float
    alertname: str
    host: str
    resolved: bool = False


# host h1: two alerts batched by group_wait, one added later, resolved one by one;
# h2: one alert that stays firing, so it repeats; h3: a flap inside one
# group_interval (Alertmanager sends nothing for it), then a resolve and a re-fire.
SCRIPT = (
    Change(0.0, "A", "h1"),
    Change(0.5, "B", "h1"),
    Change(1.0, "C", "h2"),
    Change(2.3, "E", "h3"),
    Change(5.0, "D", "h1"),
    Change(6.5, "E", "h3", resolved=True),
    Change(7.3, "E", "h3"),
    Change(9.0, "A", "h1", resolved=True),
    Change(14.0, "E", "h3", resolved=True),
    Change(17.0, "E", "h3"),
    Change(20.0, "B", "h1", resolved=True),
    Change(20.0, "D", "h1", resolved=True),
)


@dataclass(frozen=True, slots=True)
class Sent:
    """One notification as both sides describe it: the group and its alerts' states."""

    at: float
    group: tuple[tuple[str, str], ...]
    alerts: tuple[tuple[str, str], ...]  # (alertname, "firing" | "resolved"), sorted


def config(webhook_port: int) -> str:
    seconds = {key: f"{value:g}s" for key, value in TIMING.items()}
    return f"""\
route:
  receiver: hook
  group_by: [{", ".join(GROUP_BY)}]
  group_wait: {seconds["group_wait"]}
  group_interval: {seconds["group_interval"]}
  repeat_interval: {seconds["repeat_interval"]}
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:{webhook_port}/
        send_resolved: true
"""


def play(tmp: Path, processes: Processes) -> list[Sent]:
    """Run SCRIPT through a real Alertmanager; its notifications, in order of arrival."""
    with WebhookServer() as hook:
        (tmp / "alertmanager.yml").write_text(config(hook.port))
        _, port = processes.alertmanager(tmp / "alertmanager.yml")
        start = time.monotonic()
        for change in SCRIPT:
            _sleep_until(start + change.at)
            _post(port, change)
        _sleep_until(start + LENGTH)
        return [_sent(request.at - start, request.body) for request in hook.requests]


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def _post(port: int, change: Change) -> None:
    now = time.time()
    alert = {
        "labels": {"alertname": change.alertname, "host": change.host},
        "startsAt": _iso(now - 1),
        # A resolved alert ends now; a firing one far after the script ends, so
        # Alertmanager's resolve_timeout never resolves it on its own.
        "endsAt": _iso(now if change.resolved else now + 3600),
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/alerts",
        data=json.dumps([alert]).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - loopback
        pass


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def _sent(at: float, body: bytes) -> Sent:
    payload = json.loads(body)
    return Sent(
        at=at,
        group=tuple(sorted(payload["groupLabels"].items())),
        alerts=tuple(sorted((a["labels"]["alertname"], a["status"]) for a in payload["alerts"])),
    )
