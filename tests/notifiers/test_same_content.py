"""Every notifier carries the same facts: one notification with a diagnosis follow-up, sent
through one notifier holding every kind of URL (console, file, json://, email, Slack,
alertmanager://), must say the same things on every channel.

The follow-up is made by the engine's own code (`FinishedDiagnosis.follow_up`) from
evaluation state one interval after the alert fired, so its value, summary and growth
are the current ones, not the trigger's.
"""

from __future__ import annotations

import email
import html
import io
import json
from typing import TYPE_CHECKING, Any

import pytest
from notifier_kit import T0, MiB, SmtpServer, WebhookServer, note

from memalert.engine.alerting.pipeline import Pipeline
from memalert.engine.allocations.attribution import SiteGrowth
from memalert.engine.core.model import Labels, NotifierConfig, Sample
from memalert.engine.live.leak_followup import FinishedDiagnosis
from memalert.engine.rules.load import load_rules
from memalert.notifiers.apprise_notifier import instantiate_plugin
from memalert.notifiers.base import Transport
from memalert.notifiers.registry import build_notifier

if TYPE_CHECKING:
    from pathlib import Path

    from apprise import AppriseAsset

    from memalert.engine.core.model import AlertEvent

pytestmark = pytest.mark.integration

RULES = """\
version: 1
rules:
  - name: memory-leak
    metric: leak_bytes
    above: {warning: 50MiB}
    summary: "{{ target }} leaks {{ value | bytes }}"
"""
PASSWORD = "smtp-Pa55-word"


def follow_up(tmp_path: Path) -> AlertEvent:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    ruleset = load_rules([rules], env=None)
    pipeline = Pipeline(ruleset)
    api = Labels(target="api")
    trigger = pipeline.step(T0, [Sample("leak_bytes", api, 60 * MiB, T0)]).events[0]
    now = T0 + 15
    pipeline.step(
        now,
        [
            Sample("leak_bytes", api, 80 * MiB, now),
            Sample("leak_growth_bytes_per_hour", api, 30 * MiB, now),
            Sample("time_to_limit_seconds", api, 9000, now),
        ],
    )
    sites = (
        SiteGrowth(site="cache.py:42", size_diff_bytes=12 * MiB, count_diff=5, traceback=()),
        SiteGrowth(site="db.py:7", size_diff_bytes=3 * MiB, count_diff=1, traceback=()),
    )
    event = FinishedDiagnosis(trigger=trigger, sites=sites).follow_up(
        ruleset, pipeline.state, now, ()
    )
    assert event is not None
    return event


# What a person on call must read on every channel, whatever its form.
FACTS = (
    "repeated",
    "warning",
    "memory-leak",
    "api",
    "80.0 MiB",  # the value now, not the trigger's 60 MiB
    "50.0 MiB",  # the threshold
    "api leaks 80.0 MiB",  # the summary, rendered now
    "allocation sites diagnosed",
    "30.0 MiB/h",
    "2h30m",
    "cache.py:42 +12.0 MiB",
    "db.py:7 +3.0 MiB",
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _part(message: email.message.Message, content_type: str) -> str:
    for part in message.walk():
        if part.get_content_type() == content_type:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError(f"no {content_type} part")


def test_every_channel_carries_the_same_facts(tmp_path: Path) -> None:
    event = follow_up(tmp_path)
    assert event.summary == "api leaks 80.0 MiB"
    console = io.StringIO()
    jsonl = tmp_path / "alerts.jsonl"
    with (
        WebhookServer() as hook,
        WebhookServer() as manager,
        WebhookServer() as slack,
        SmtpServer(user="alerts", password=PASSWORD) as smtp,
    ):

        def instantiate(url: str, asset: AppriseAsset) -> Any:
            plugin = instantiate_plugin(url, asset)
            if url.startswith("https://hooks.slack.com/"):
                # Slack's plugin posts to a fixed host (see test_apprise_notifier._slack_to).
                plugin.webhook_url = f"http://127.0.0.1:{slack.port}/services"
            return plugin

        urls = (
            "console://",
            jsonl.as_uri(),
            f"json://127.0.0.1:{hook.port}/hook",
            f"alertmanager://127.0.0.1:{manager.port}/am",
            (
                f"mailto://alerts:${{SMTP_PASSWORD}}@127.0.0.1:{smtp.port}"
                "?from=memalert@example.com&to=oncall@example.com"
            ),
            "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefghijklmnop",
        )
        notifier = build_notifier(
            NotifierConfig(name="oncall", urls=urls),
            env={"SMTP_PASSWORD": PASSWORD},
            transport=Transport(stream=console, instantiate=instantiate),
        )
        result = notifier.send(note(event))
        assert result.ok, result
        (hook_request,) = hook.requests
        (manager_request,) = manager.requests
        (slack_request,) = slack.requests
        (mail,) = smtp.mails

    hook_body = json.loads(hook_request.body)
    attachment = json.loads(slack_request.body)["attachments"][0]
    message = email.message_from_bytes(mail.content)
    channels = {
        "console": console.getvalue(),
        "file": "\n".join(_strings(json.loads(jsonl.read_text()))),
        "json://": f"{hook_body['title']}\n{hook_body['message']}",
        "alertmanager://": "\n".join(_strings(json.loads(manager_request.body)["alerts"])),
        "email html": html.unescape(_part(message, "text/html")),
        "email text": _part(message, "text/plain"),
        "slack": f"{attachment['title']}\n{attachment['text']}",
    }
    missing = {
        channel: [fact for fact in FACTS if fact.casefold() not in text.casefold()]
        for channel, text in channels.items()
    }
    assert missing == {channel: [] for channel in channels}


def test_the_file_keeps_the_follow_ups_sites_and_growth_as_numbers(tmp_path: Path) -> None:
    event = follow_up(tmp_path)
    jsonl = tmp_path / "alerts.jsonl"
    notifier = build_notifier(NotifierConfig(name="log", urls=(jsonl.as_uri(),)), env={})
    assert notifier.send(note(event)).ok
    (record,) = json.loads(jsonl.read_text())["events"]
    assert record["top_sites"] == [
        {"site": "cache.py:42", "growth_bytes": 12 * MiB},
        {"site": "db.py:7", "growth_bytes": 3 * MiB},
    ]
    assert record["related"]["leak_growth_bytes_per_hour"] == 30 * MiB
    assert record["value"] == 80 * MiB
