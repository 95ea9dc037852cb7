"""The HTTP API in-process: every endpoint, auth, limits and errors, on a FakeClock."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from http_fakes import SLACK_SECRET, START, TOKEN, FakeSource, populated_snapshot
from prometheus_client.parser import text_string_to_metric_families

from memalert.engine.core.errors import MemalertError
from memalert.engine.http.app import MAX_BODY_BYTES, HttpApp, RateLimit, Request, Response
from memalert.engine.live.snapshot import EngineSnapshot
from memalert.engine.store.state import InvalidSilenceError
from memalert.engine.testing import FakeClock

NOW = START + 60
READS = ("/metrics", "/health", "/snapshot", "/leaks", "/alerts", "/silences")
AUTH = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
A_SILENCE = {"match": {"target": "api"}, "duration": "2h", "comment": "deploy"}


class Client:
    def __init__(
        self,
        snapshot: EngineSnapshot | None = None,
        *,
        token: str | None = TOKEN,
        limit: RateLimit | None = None,
    ) -> None:
        self.clock = FakeClock(NOW)
        self.source = FakeSource(snapshot or populated_snapshot(NOW))
        self.app = HttpApp(self.source, token=token, clock=self.clock, write_limit=limit)

    def call(
        self, method: str, target: str, *, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Response:
        return self.app.handle(
            Request(method=method, target=target, headers=headers or {}, body=body)
        )

    def json(self, method: str, target: str, **kwargs: Any) -> tuple[int, Any]:
        response = self.call(method, target, **kwargs)
        assert response.content_type == "application/json"
        return response.status, json.loads(response.body)

    def post_silence(self, payload: object, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(payload).encode()
        return self.call(
            "POST", "/silences", headers=AUTH if headers is None else headers, body=body
        )


@pytest.fixture
def client() -> Client:
    return Client()


# -- reads ------------------------------------------------------------------------------


def test_metrics_is_prometheus_text_that_parses(client: Client) -> None:
    response = client.call("GET", "/metrics")
    assert response.status == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.body.decode())}
    rss = {s.labels["target"]: s.value for s in families["memalert_rss_bytes"].samples}
    assert rss["api"] == 120 * (1 << 20)
    assert families["memalert_ticks"].type == "counter"


def test_metrics_is_openmetrics_when_asked(client: Client) -> None:
    accept = "application/openmetrics-text; version=1.0.0, text/plain;q=0.5"
    response = client.call("GET", "/metrics", headers={"accept": accept})
    assert response.content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert response.body.endswith(b"# EOF\n")


def test_health_is_healthy_after_a_recent_tick(client: Client) -> None:
    status, body = client.json("GET", "/health")
    assert status == 200
    assert body == {
        "status": "healthy",
        "uptime_seconds": 60.0,
        "last_tick_at": NOW,
        "last_tick_error": None,
        "outbox_backlog": 2,
        "dead_letters": 0,
        "ticks_total": 5,
        "reasons": [],
    }


def test_health_is_degraded_by_a_failed_tick_or_dead_letters() -> None:
    failed = replace(
        populated_snapshot(NOW),
        last_tick_error=f"POST https://hooks.slack.com/services/{SLACK_SECRET} refused",
    )
    status, body = Client(failed).json("GET", "/health")
    assert (status, body["status"]) == (200, "degraded")
    assert SLACK_SECRET not in json.dumps(body)
    assert body["last_tick_error"] == "POST https://hooks.slack.com/services/*** refused"
    dead = replace(populated_snapshot(NOW), dead_letters=4)
    status, body = Client(dead).json("GET", "/health")
    assert (status, body["status"], body["dead_letters"]) == (200, "degraded", 4)


@pytest.mark.parametrize(
    ("silent_for", "expected"),
    [
        pytest.param(44.0, (200, "healthy"), id="under-3-intervals"),
        pytest.param(45.0, (200, "healthy"), id="exactly-3-intervals"),
        pytest.param(46.0, (503, "unhealthy"), id="over-3-intervals"),
    ],
)
def test_health_is_unhealthy_with_503_after_three_silent_intervals(
    client: Client, silent_for: float, expected: tuple[int, str]
) -> None:
    client.clock.advance(silent_for)
    status, body = client.json("GET", "/health")
    assert (status, body["status"]) == expected


def test_health_counts_silence_from_the_start_before_the_first_tick() -> None:
    fresh = EngineSnapshot(started_at=NOW, interval=10.0)
    client = Client(fresh)
    assert client.json("GET", "/health")[1]["status"] == "healthy"
    client.clock.advance(31)
    status, body = client.json("GET", "/health")
    assert (status, body["status"], body["last_tick_at"]) == (503, "unhealthy", None)


def test_snapshot_lists_every_target_with_its_latest_values(client: Client) -> None:
    status, body = client.json("GET", "/snapshot")
    assert status == 200
    targets = {t["target"]: t for t in body["targets"]}
    assert sorted(targets) == ["api", "batch", "hook"]
    api = targets["api"]
    assert api["up"] is True
    assert api["rss_bytes"] == 120 * (1 << 20)
    assert api["virtual_bytes"] == 480 * (1 << 20)
    assert api["timestamp_unix"] == NOW
    assert api["components"] == [
        {
            "component": "cache",
            "timestamp_unix": NOW,
            "component_bytes": 52e6,
            "component_allocations": 200.0,
        }
    ]
    assert api["sites"] == [{"site": "app.py:42", "timestamp_unix": NOW, "site_growth_bytes": 8e6}]
    batch = targets["batch"]
    assert (batch["up"], batch["rss_bytes"], batch["pressure"]) == (False, None, None)


def test_leaks_lists_target_and_component_leaks(client: Client) -> None:
    status, body = client.json("GET", "/leaks")
    assert status == 200
    assert body["potential_leak_count"] == 2
    assert body["growth_rate_mb_per_hour"] == pytest.approx(15.0)
    target, component = body["leaks"]
    assert (target["target"], target["component"]) == ("api", None)
    assert target["top_sites"] == [{"site": "app.py:42", "growth_bytes": 8e6}]
    assert target["time_to_limit_seconds"] == 7200.0
    assert "allocation_count" not in target
    assert (component["target"], component["component"]) == ("api", "cache")
    assert component["patterns"] == ["frequent_large_allocations"]
    assert component["pattern_details"] == ["7 allocations of 1 MiB or more"]
    assert component["allocation_count"] == 200


def test_alerts_lists_active_alerts_with_masked_summaries(client: Client) -> None:
    status, body = client.json("GET", "/alerts")
    assert status == 200
    assert [(a["rule"], a["state"], a["severity"]) for a in body["alerts"]] == [
        ("high-rss", "pending", "warning"),
        ("memory-leak", "firing", "critical"),
    ]
    assert body["alerts"][1]["labels"] == {"target": "api", "component": "cache"}
    assert "hooks.slack.com/services/***" in body["alerts"][1]["summary"]


@pytest.mark.parametrize("path", READS)
def test_no_read_endpoint_shows_a_secret(client: Client, path: str) -> None:
    client.post_silence(
        {**A_SILENCE, "comment": f"see https://hooks.slack.com/services/{SLACK_SECRET}"}
    )
    response = client.call("GET", path)
    assert response.status == 200
    assert SLACK_SECRET.encode() not in response.body
    assert SLACK_SECRET.split("/")[-1].encode() not in response.body


def test_head_answers_like_get(client: Client) -> None:
    response = client.call("HEAD", "/alerts")
    assert response.status == 200
    assert response.body == client.call("GET", "/alerts").body  # the server drops it


def test_reads_are_rendered_once_per_snapshot(client: Client) -> None:
    first = client.call("GET", "/metrics")
    assert client.call("GET", "/metrics") is first
    client.source.publish(replace(populated_snapshot(NOW), ticks_total=6))
    again = client.call("GET", "/metrics")
    assert again is not first
    assert b"memalert_ticks_total 6.0" in again.body


# -- errors -------------------------------------------------------------------------------


def test_unknown_path_is_a_json_404(client: Client) -> None:
    status, body = client.json("GET", "/nope?x=1")
    assert status == 404
    assert body == {"error": "no endpoint '/nope'; see docs/http.md", "status": 404}


@pytest.mark.parametrize(
    ("method", "target", "allow"),
    [
        ("POST", "/metrics", "GET, HEAD"),
        ("PUT", "/silences", "GET, HEAD, POST"),
        ("GET", "/silences/s1", "DELETE"),
        ("DELETE", "/alerts", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405_with_allow(
    client: Client, method: str, target: str, allow: str
) -> None:
    response = client.call(method, target, headers=AUTH)
    assert response.status == 405
    assert dict(response.headers)["Allow"] == allow


# -- writes -------------------------------------------------------------------------------


def test_silence_round_trip_with_the_token(client: Client) -> None:
    response = client.post_silence(A_SILENCE)
    assert response.status == 201
    created = json.loads(response.body)
    assert created["match"] == {"target": "api"}
    assert (created["starts"], created["ends"], created["active"]) == (NOW, NOW + 7200, True)
    listed = client.json("GET", "/silences")[1]["silences"]
    assert [s["id"] for s in listed] == [created["id"]]
    status, body = client.json("DELETE", f"/silences/{created['id']}", headers=AUTH)
    assert (status, body) == (200, {"id": created["id"], "expired": True})
    assert client.json("GET", "/silences")[1] == {"silences": []}
    assert client.json("DELETE", f"/silences/{created['id']}", headers=AUTH)[0] == 404


def test_writes_are_refused_with_403_when_no_token_is_configured() -> None:
    client = Client(token=None)
    response = client.post_silence(A_SILENCE)
    assert response.status == 403
    assert b"MEMALERT_API_TOKEN" in response.body
    assert client.call("DELETE", "/silences/s1", headers=AUTH).status == 403


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"],
)
def test_writes_are_refused_with_401_on_a_wrong_token(client: Client, authorization: str) -> None:
    headers = {"content-type": "application/json", "authorization": authorization}
    response = client.post_silence(A_SILENCE, headers=headers)
    assert response.status == 401
    assert dict(response.headers)["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN.encode() not in response.body
    assert client.json("GET", "/silences")[1] == {"silences": []}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"{", "not JSON", id="bad-json"),
        pytest.param(b"\xff\xfe", "not JSON", id="not-utf8"),
        pytest.param(b"[" * 60_000, "not JSON", id="deeply-nested"),
        pytest.param(b"[]", "JSON object", id="not-an-object"),
        pytest.param(b'{"duration": "1h"}', "'match'", id="no-match"),
        pytest.param(b'{"match": {}, "duration": "1h"}', "'match'", id="empty-match"),
        pytest.param(b'{"match": {"a b": "x"}, "duration": "1h"}', "label name", id="bad-label"),
        pytest.param(b'{"match": {"a": 1}, "duration": "1h"}', "glob string", id="bad-glob"),
        pytest.param(b'{"match": {"a": "x"}}', "exactly one", id="no-end"),
        pytest.param(
            b'{"match": {"a": "x"}, "duration": "1h", "ends": 1}', "exactly one", id="both-ends"
        ),
        pytest.param(b'{"match": {"a": "x"}, "duration": "soon"}', "'duration'", id="bad-duration"),
        pytest.param(b'{"match": {"a": "x"}, "duration": 1e400}', "'duration'", id="inf-duration"),
        pytest.param(
            b'{"match": {"a": "x"}, "duration": 1' + b"0" * 400 + b"}", "'duration'", id="huge-int"
        ),
        pytest.param(b'{"match": {"a": "x"}, "ends": "tomorrow"}', "'ends'", id="bad-ends"),
        pytest.param(
            b'{"match": {"a": "x"}, "starts": 500, "ends": 1000}', "in the future", id="past"
        ),
        pytest.param(
            b'{"match": {"a": "x"}, "starts": 1764000200, "ends": 1764000100}',
            "after it starts",
            id="backwards",
        ),
        pytest.param(b'{"match": {"a": "x"}, "duration": "1h", "why": 1}', "unknown key", id="key"),
        pytest.param(
            b'{"match": {"a": "x"}, "duration": "1h", "comment": 5}', "'comment'", id="comment"
        ),
    ],
)
def test_bad_silences_are_400_naming_the_problem(client: Client, body: bytes, message: str) -> None:
    status, payload = client.json("POST", "/silences", headers=AUTH, body=body)
    assert status == 400
    assert message in payload["error"]


def test_silence_rejected_by_the_store_is_400_and_a_store_failure_503(client: Client) -> None:
    client.source.fail_next_add = InvalidSilenceError("a silence must end in the future")
    assert client.post_silence(A_SILENCE).status == 400
    client.source.fail_next_add = MemalertError("database is locked")
    status, body = client.json(
        "POST", "/silences", headers=AUTH, body=json.dumps(A_SILENCE).encode()
    )
    assert status == 503
    assert "database is locked" in body["error"]


def test_silence_needs_a_json_content_type(client: Client) -> None:
    headers = {**AUTH, "content-type": "text/plain"}
    assert client.post_silence(A_SILENCE, headers=headers).status == 415


def test_oversized_body_is_413(client: Client) -> None:
    body = b" " * (MAX_BODY_BYTES + 1)
    assert client.call("POST", "/silences", headers=AUTH, body=body).status == 413


@pytest.mark.parametrize("silence_id", ["a/b", "x" * 129, "%00", "sp ace"])
def test_malformed_silence_ids_are_400(client: Client, silence_id: str) -> None:
    assert client.call("DELETE", f"/silences/{silence_id}", headers=AUTH).status == 400


def test_writes_are_rate_limited_then_refill() -> None:
    client = Client(limit=RateLimit(burst=3, per_second=0.5))
    statuses = [client.post_silence(A_SILENCE).status for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = client.post_silence(A_SILENCE)
    assert dict(refused.headers)["Retry-After"] == "2"
    client.clock.advance(2.0)
    assert client.post_silence(A_SILENCE).status == 201
    assert client.post_silence(A_SILENCE).status == 429
    # Reads are never limited.
    assert all(client.call("GET", "/silences").status == 200 for _ in range(20))


def test_requests_without_the_token_cannot_use_up_the_writes() -> None:
    client = Client(limit=RateLimit(burst=3, per_second=0.5))
    wrong = {"authorization": "Bearer guess", "content-type": "application/json"}
    guesses = [client.post_silence(A_SILENCE, headers=wrong).status for _ in range(5)]
    # Guessing is limited by a bucket of its own...
    assert guesses == [401, 401, 401, 429, 429]
    assert client.call("DELETE", "/silences/x", headers={}).status == 429
    # ...which leaves the writes of those holding the token untouched.
    assert [client.post_silence(A_SILENCE).status for _ in range(4)] == [201, 201, 201, 429]


def test_error_messages_mask_what_they_quote(client: Client) -> None:
    response = client.call("GET", f"/https://hooks.slack.com/services/{SLACK_SECRET}")
    assert response.status == 404
    assert SLACK_SECRET.split("/")[-1].encode() not in response.body
    client.source.fail_next_add = MemalertError("cannot reach postgres://u:hunter2hunter2@db/x")
    stored = client.post_silence(A_SILENCE)
    assert stored.status == 503
    assert b"hunter2" not in stored.body
