"""The Alertmanager-compatible webhook body (v4), rendered and received by a real HTTP server."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest
from notifier_kit import MiB, WebhookServer, fired, note, resolved

from memalert.engine.alerting.routing import group_notifications
from memalert.engine.core.model import NotifierConfig, Rule, RuleSet, Severity
from memalert.notifiers.base import NotifierError
from memalert.notifiers.registry import build_notifier
from memalert.notifiers.render import alertmanager_body, fingerprint

if TYPE_CHECKING:
    from collections.abc import Iterator


def test_v4_fields_for_firing_and_resolved_alerts() -> None:
    body = alertmanager_body(
        note(fired(component="cache"), resolved(component="cache")),
        receiver="oncall",
        external_url="http://memalert:9100",
    )
    assert body["version"] == "4"
    assert body["receiver"] == "oncall"
    assert body["status"] == "firing"
    assert body["externalURL"] == "http://memalert:9100"
    assert body["truncatedAlerts"] == 0
    assert body["groupLabels"] == {}
    assert body["commonLabels"] == {
        "alertname": "memory-leak",
        "target": "api",
        "component": "cache",
    }
    assert isinstance(body["groupKey"], str)
    firing, done = body["alerts"]
    assert firing["status"] == "firing"
    assert firing["labels"] == {
        "alertname": "memory-leak",
        "severity": "critical",
        "target": "api",
        "component": "cache",
    }
    assert firing["annotations"]["summary"] == "api leaks 150 MiB"
    assert firing["startsAt"] == "2025-11-24T15:55:00Z"
    assert firing["endsAt"] == "0001-01-01T00:00:00Z"
    assert firing["generatorURL"] == "http://memalert:9100/alerts"
    assert len(firing["fingerprint"]) == 16
    assert done["status"] == "resolved"
    assert done["endsAt"] == "2025-11-24T16:00:00Z"
    assert done["startsAt"] == "2025-11-24T14:30:00Z"


def test_status_is_resolved_only_when_every_alert_is() -> None:
    body = alertmanager_body(note(resolved(), resolved(target="db")), receiver="r")
    assert body["status"] == "resolved"
    assert body["commonLabels"] == {"alertname": "memory-leak", "severity": "warning"}


def test_fingerprint_identifies_the_instance_not_the_moment() -> None:
    assert fingerprint(fired()) == fingerprint(fired(value=1.0, severity=Severity.WARNING))
    assert fingerprint(fired()) != fingerprint(fired(target="db"))
    assert fingerprint(fired()) != fingerprint(fired(rule="other"))


def test_max_alerts_truncates_and_counts_the_rest() -> None:
    events = [fired(target=f"t{i}") for i in range(5)]
    body = alertmanager_body(note(*events), receiver="r", max_alerts=2)
    assert len(body["alerts"]) == 2
    assert body["truncatedAlerts"] == 3


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.mark.integration
def test_alertmanager_url_posts_the_v4_body(webhook: WebhookServer) -> None:
    url = (
        f"alertmanager://hook:${{HOOK_PASSWORD}}@127.0.0.1:{webhook.port}/api/alerts"
        "?external_url=http://memalert:9100&+X-Team=core"
    )
    config = NotifierConfig(name="am", urls=(url,))
    notifier = build_notifier(config, env={"HOOK_PASSWORD": "pw-0123456789"})

    result = notifier.send(note(fired(), resolved(target="db"), notifier="am"))

    assert result.ok, result
    (request,) = webhook.requests
    assert request.path == "/api/alerts"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Team"] == "core"
    expected_auth = base64.b64encode(b"hook:pw-0123456789").decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"
    body = json.loads(request.body)
    assert body["version"] == "4"
    assert body["receiver"] == "am"
    assert body["externalURL"] == "http://memalert:9100"
    assert [a["status"] for a in body["alerts"]] == ["firing", "resolved"]
    assert "pw-0123456789" not in repr(result)
    assert result.urls[0].url.startswith("alertmanager://")


@pytest.mark.integration
def test_a_thousand_alerts_of_one_tick_arrive_as_one_request_per_url(
    webhook: WebhookServer,
) -> None:
    urls = (
        f"alertmanager://127.0.0.1:{webhook.port}/hook",
        f"json://127.0.0.1:{webhook.port}/json",
    )
    rule = Rule(
        name="memory-leak",
        metric="leak_bytes",
        direction="above",
        thresholds={Severity.CRITICAL: 100 * MiB},
        notify=("am",),
    )
    ruleset = RuleSet(rules=(rule,), notifiers={"am": NotifierConfig(name="am", urls=urls)})
    events = [fired(target=f"svc-{i}") for i in range(1000)]
    (notification,) = group_notifications(ruleset, events)
    notifier = build_notifier(ruleset.notifiers["am"], env={})

    result = notifier.send(notification)

    assert result.ok, result
    assert [r.path for r in webhook.requests] == ["/hook", "/json"]
    alerts = json.loads(webhook.requests[0].body)["alerts"]
    assert len(alerts) == 1000
    message = json.loads(webhook.requests[1].body)["message"]
    assert message.count("[FIRING:critical]") == 1000


def test_a_bad_max_alerts_is_a_configuration_error() -> None:
    config = NotifierConfig(name="am", urls=("alertmanager://127.0.0.1/x?max_alerts=many",))
    with pytest.raises(NotifierError, match="max_alerts must be a whole number"):
        build_notifier(config, env={})
