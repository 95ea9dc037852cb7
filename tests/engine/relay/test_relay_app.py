"""`memalert relay` in-process: webhooks in, memalert notifications out, each once, none lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from relay_kit import RULES, STARTS, TOKEN, alert, webhook

from memalert.engine.core.model import AlertFired, AlertResolved, Labels, Severity
from memalert.engine.http.app import Request, Response
from memalert.engine.relay.app import RelayConfig
from memalert.engine.relay.service import Relay
from memalert.engine.rules.load import load_rules
from memalert.engine.store.state import StateStore
from memalert.notifiers.testing import RecordingNotifier

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, tmp_path: Path, *, failures: int = 0) -> None:
        path = tmp_path / "rules.yaml"
        path.write_text(RULES, encoding="utf-8")
        self.ruleset = load_rules([path], env=None)
        self.clock = Clock()
        self.notifier = RecordingNotifier("hook", failures=failures)
        self.state = tmp_path / "relay.db"
        self.open()

    def open(self) -> None:
        config = RelayConfig(
            rules={r.name: r for r in self.ruleset.rules},
            notifiers=frozenset({"hook", "console"}),
            token=TOKEN,
            dedup_window=600.0,
        )
        self.store = StateStore(self.state, exclusive=True)
        self.relay = Relay(config, self.store, {"hook": self.notifier}, clock=self.clock)

    def post(
        self, body: bytes, *, path: str = "/alertmanager/hook", token: str | None = TOKEN
    ) -> Response:
        headers = {"content-type": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        return self.relay.app.handle(
            Request(method="POST", target=path, headers=headers, body=body)
        )

    def get(self, path: str) -> Response:
        return self.relay.app.handle(Request(method="GET", target=path, headers={}))

    def deliver(self) -> int:
        return self.relay.worker.run_once(self.clock.now)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.store.close()


def body(response: Response) -> Any:
    return json.loads(response.body)


def test_a_webhook_is_rendered_with_the_rules_own_summary_and_delivered(harness: Harness) -> None:
    response = harness.post(webhook())
    assert (response.status, body(response)) == (200, {"status": "accepted", "alerts": 1})
    assert harness.deliver() == 1
    (event,) = harness.notifier.events
    assert isinstance(event, AlertFired)
    assert event.rule == "memory-leak"
    assert event.severity is Severity.WARNING
    # the agent's labels, without alertname/severity (kept apart) and the rule's own labels
    assert event.labels == Labels(target="app", instance="h1:9464")
    assert event.summary == "app leaks 1.5 MiB (warning above 1.0 MiB, core)"
    assert event.firing_since == STARTS


def test_resolved_alerts_become_resolutions(harness: Harness) -> None:
    harness.post(webhook(alert("resolved"), status="resolved"))
    harness.deliver()
    (event,) = harness.notifier.events
    assert isinstance(event, AlertResolved)
    assert event.at == STARTS - 0.123456 + 600


def test_an_alert_from_no_memalert_rule_keeps_its_annotations(harness: Harness) -> None:
    other = alert(alertname="NodeDown", severity="page")
    harness.post(webhook(other))
    harness.deliver()
    (event,) = harness.notifier.events
    assert (event.rule, event.severity, event.summary) == (
        "NodeDown",
        Severity.WARNING,
        "prometheus' own",
    )
    assert event.labels["team"] == "core"


def test_the_same_webhook_again_within_the_window_is_delivered_once(harness: Harness) -> None:
    assert body(harness.post(webhook()))["status"] == "accepted"
    harness.clock.now += 30
    # Alertmanager retrying, or its HA peer sending the same notification
    assert body(harness.post(webhook()))["status"] == "duplicate"
    # a change of status, or of the alerts in the group, is news
    assert body(harness.post(webhook(alert("resolved"), status="resolved")))["status"] == "accepted"
    assert (
        body(harness.post(webhook(alert(), alert(fingerprint="f2", target="db"))))["status"]
        == "accepted"
    )
    # after the window, the reminder Alertmanager sends at repeat_interval goes out
    harness.clock.now += 601
    assert body(harness.post(webhook()))["status"] == "accepted"
    harness.deliver()
    assert len(harness.notifier.sent) == 4


def test_de_duplication_outlives_a_restart(harness: Harness) -> None:
    harness.post(webhook())
    harness.store.close()
    harness.open()
    assert body(harness.post(webhook()))["status"] == "duplicate"


def test_what_was_accepted_survives_a_crash_before_delivery_and_failures(tmp_path: Path) -> None:
    h = Harness(tmp_path, failures=2)
    h.post(webhook())
    assert h.deliver() == 0  # first try fails: retried later
    h.store.close()  # the process dies; the state file stays
    h.open()
    h.clock.now += 3600
    while not h.notifier.sent and h.clock.now < T0 + 7200:
        h.deliver()
        h.clock.now += 60
    assert len(h.notifier.sent) == 1
    assert len(h.notifier.attempts) == 3
    h.store.close()


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        (b"not json", 400, "the body is not JSON"),
        (b"\xff\xfe", 400, "the body is not JSON"),
        (b"[1, 2]", 400, "not an object"),
        (
            json.dumps({"version": "3", "status": "firing", "alerts": [alert()]}).encode(),
            400,
            "version '3' is not supported",
        ),
        (
            json.dumps({"version": "4", "status": "firing", "alerts": []}).encode(),
            400,
            "'alerts' must be a non-empty list",
        ),
        (
            json.dumps(
                {"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": {}}]}
            ).encode(),
            400,
            "alerts[0] has no labels",
        ),
        (
            json.dumps(
                {"version": "4", "status": "firing", "alerts": [{"status": "firing"}]}
            ).encode(),
            400,
            "alerts[0] has no labels",
        ),
        (
            json.dumps(
                {
                    "version": "4",
                    "status": "firing",
                    "alerts": [{"status": "firing", "labels": {"a": 1}}],
                }
            ).encode(),
            400,
            "must be an object of strings",
        ),
        (
            json.dumps({"version": "4", "status": "maybe", "alerts": [alert()]}).encode(),
            400,
            "'status' of the payload",
        ),
        (
            json.dumps(
                {
                    "version": "4",
                    "status": "firing",
                    "alerts": [{**alert(), "startsAt": "yesterday"}],
                }
            ).encode(),
            400,
            "not an RFC 3339 time",
        ),
    ],
)
def test_bad_payloads_get_a_json_4xx_and_nothing_queued_is_lost(
    harness: Harness, payload: bytes, status: int, message: str
) -> None:
    harness.post(webhook())  # queued before the bad one
    response = harness.post(payload)
    assert response.status == status
    assert response.content_type == "application/json"
    assert message in body(response)["error"]
    assert harness.deliver() == 1
    assert len(harness.notifier.sent) == 1


def test_the_webhook_needs_the_bearer_token(harness: Harness) -> None:
    for token in (None, "wrong"):
        response = harness.post(webhook(), token=token)
        assert response.status == 401
        assert ("WWW-Authenticate", "Bearer") in response.headers
    assert harness.deliver() == 0


def test_unknown_notifiers_and_methods_are_refused(harness: Harness) -> None:
    assert harness.post(webhook(), path="/alertmanager/nope").status == 404
    assert harness.get("/alertmanager/hook").status == 405
    assert harness.get("/nothing").status == 404


def test_health_and_metrics_show_the_backlog_and_results(harness: Harness) -> None:
    harness.post(webhook())
    harness.post(webhook())
    harness.post(b"bad")
    health = body(harness.get("/health"))
    assert (health["status"], health["outbox_backlog"], health["dead_letters"]) == ("healthy", 1, 0)
    harness.deliver()
    metrics = harness.get("/metrics")
    assert metrics.status == 200
    text = metrics.body.decode()
    assert 'memalert_relay_webhooks_total{result="accepted"} 1.0' in text
    assert 'memalert_relay_webhooks_total{result="duplicate"} 1.0' in text
    assert 'memalert_relay_webhooks_total{result="refused"} 1.0' in text
    assert 'memalert_relay_deliveries_total{outcome="delivered"} 1.0' in text
    assert "memalert_outbox_backlog 0.0" in text


def test_a_state_file_that_fails_answers_503_so_alertmanager_retries(harness: Harness) -> None:
    harness.store.close()
    response = harness.post(webhook())
    assert response.status == 503
    assert "retry" in body(response)["error"]


def test_related_values_from_the_exports_annotations_reach_the_summary(tmp_path: Path) -> None:
    rules = tmp_path / "leak.yaml"
    rules.write_text(
        "version: 1\nrules:\n  - name: memory-leak\n    metric: leak_bytes\n"
        "    above: {warning: 1MiB}\n    summary: >-\n"
        "      leaks{% if growth is defined and growth %} {{ growth | bytes }}/h{% endif %}\n",
        encoding="utf-8",
    )
    h = Harness(tmp_path)
    h.ruleset = load_rules([rules], env=None)
    h.store.close()
    h.open()
    with_growth = alert()
    with_growth["annotations"]["growth"] = "1048576"
    h.post(webhook(with_growth))
    h.post(webhook(alert(fingerprint="f2"), group="other"))  # no growth: the branch is skipped
    h.deliver()
    assert [e.summary for e in h.notifier.events] == ["leaks 1.0 MiB/h", "leaks"]
    h.store.close()
