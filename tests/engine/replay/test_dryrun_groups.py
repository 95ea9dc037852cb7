"""`memalert dry-run` prints a route's group notifications at their times (text and JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memalert.engine.cli.main import main

MiB = 2**20
START = 1_764_000_000  # 2025-11-24T16:00:00Z

RULES = """\
version: 1
rules:
  - name: leak
    metric: leak_bytes
    above: {warning: 50MiB}
notifiers:
  hook: {urls: ["json://127.0.0.1:9/alerts"]}
routes:
  - notify: [hook]
    group_by: [rule]
    group_wait: 30s
    group_interval: 1m
"""


def _inputs(tmp_path: Path) -> tuple[str, str]:
    """api leaks from 0 s, db from 15 s; api recovers at 90 s."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    lines = []
    for i in range(12):
        ts = START + 15 * i
        api = 60 * MiB if i < 6 else 0
        db = 60 * MiB if i >= 1 else 0
        lines += [
            json.dumps({"ts": ts, "target": "api", "metrics": {"leak_bytes": api}}),
            json.dumps({"ts": ts, "target": "db", "metrics": {"leak_bytes": db}}),
        ]
    observations = tmp_path / "obs.jsonl"
    observations.write_text("\n".join(lines) + "\n")
    return str(rules), str(observations)


def test_json_has_one_object_per_group_notification_with_its_time_and_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, obs = _inputs(tmp_path)
    assert main(["dry-run", rules, "--observations", obs, "--format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    events = [r for r in records if "event" in r]
    assert all(r["notify"] == [] for r in events)  # the group sends them, later
    groups = [r for r in records if "notification" in r]
    summary = [
        (
            r["at"],
            r["notification"],
            r["group"],
            [(a["labels"]["target"], a["state"]) for a in r["alerts"]],
        )
        for r in groups
    ]
    assert summary == [
        # group_wait from the first alert at 0 s: both alerts, one message.
        ("2025-11-24T16:00:30Z", "hook", {"rule": "leak"}, [("api", "firing"), ("db", "firing")]),
        # api resolved at 90 s; the flush at 90 s (30 + 60) sends the whole group.
        ("2025-11-24T16:01:30Z", "hook", {"rule": "leak"}, [("db", "firing"), ("api", "resolved")]),
    ]


def test_text_names_the_group_beside_the_notifier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, obs = _inputs(tmp_path)
    assert main(["dry-run", rules, "--observations", obs]) == 0
    out = capsys.readouterr().out
    sent = [line for line in out.splitlines() if "  -> " in line]
    assert sent == [
        "2025-11-24T16:00:30Z  -> hook {rule=leak}: [memalert] 2 alerts: 2 firing (0 critical)",
        (
            "2025-11-24T16:01:30Z  -> hook {rule=leak}: [memalert] 2 alerts: 1 firing (0 critical),"
            " 1 resolved"
        ),
    ]
    assert "2 notifications would be sent" in out
