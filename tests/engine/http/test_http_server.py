"""The HTTP API over real sockets on 127.0.0.1: transport limits, JSON errors, a real engine."""

from __future__ import annotations

import http.client
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest
from http_fakes import START, TOKEN, FakeSource, populated_snapshot
from prometheus_client.parser import text_string_to_metric_families

from memalert.engine.allocations.leaks import LeakDetector
from memalert.engine.http.app import MAX_BODY_BYTES
from memalert.engine.http.server import ServerHandle, parse_listen, serve
from memalert.engine.live.alert_engine import AlertEngine
from memalert.engine.live.snapshot import EngineSnapshot
from memalert.engine.sources.tracker import MemoryTracker
from memalert.engine.testing import FakeClock

pytestmark = pytest.mark.integration

NOW = START + 60
TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[3]
FIXTURE_PROC = ROOT / "tests" / "fixtures" / "proc"


class Address(NamedTuple):
    """Where a server listens, when it runs in another process."""

    host: str
    port: int


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    handle = serve(
        FakeSource(populated_snapshot(NOW)),
        port=0,
        env={"MEMALERT_API_TOKEN": TOKEN},
        clock=FakeClock(NOW),
    )
    try:
        yield handle
    finally:
        handle.close()


def connect(handle: ServerHandle | Address) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(handle.host, handle.port, timeout=TIMEOUT)


def request(
    handle: ServerHandle | Address,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = connect(handle)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def raw(handle: ServerHandle, data: bytes) -> bytes:
    """Send bytes as they are; read the answer until the server closes the connection."""
    with socket.create_connection((handle.host, handle.port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def json_body(answer: bytes) -> dict[str, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head
    payload: dict[str, object] = json.loads(body)
    return payload


def test_binds_loopback_by_default() -> None:
    handle = serve(FakeSource(populated_snapshot(NOW)), port=0, env={})
    try:
        assert handle.host == "127.0.0.1"
        assert handle.url == f"http://127.0.0.1:{handle.port}"
    finally:
        handle.close()


def test_metrics_over_http_parse(server: ServerHandle) -> None:
    status, headers, body = request(server, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"memalert_rss_bytes", "memalert_alerts", "memalert_outbox_backlog"} <= names


def test_one_connection_serves_many_requests(server: ServerHandle) -> None:
    conn = connect(server)
    try:
        for path in ("/health", "/alerts", "/metrics", "/leaks"):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == 200
    finally:
        conn.close()


def test_head_sends_headers_only(server: ServerHandle) -> None:
    answer = raw(server, b"HEAD /alerts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: " in head
    assert body == b""


def test_silences_over_http_with_the_token(server: ServerHandle) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    payload = json.dumps({"match": {"target": "api"}, "duration": "1h"}).encode()
    status, _, body = request(server, "POST", "/silences", payload, headers)
    assert status == 201
    silence_id = json.loads(body)["id"]
    status, _, body = request(server, "GET", "/silences")
    assert [s["id"] for s in json.loads(body)["silences"]] == [silence_id]
    status, _, _ = request(server, "DELETE", f"/silences/{silence_id}", headers=headers)
    assert status == 200
    status, headers_out, body = request(server, "DELETE", f"/silences/{silence_id}")
    assert status == 401
    assert headers_out["WWW-Authenticate"].startswith("Bearer")


def test_writes_are_refused_without_a_configured_token() -> None:
    handle = serve(FakeSource(populated_snapshot(NOW)), port=0, env={})
    try:
        status, _, body = request(handle, "POST", "/silences", b"{}", {"Authorization": "Bearer"})
        assert status == 403
        assert json.loads(body)["status"] == 403
    finally:
        handle.close()


def test_oversized_body_is_refused_unread(server: ServerHandle) -> None:
    # The body is never sent: the server must answer from the headers alone.
    head = (
        f"POST /silences HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    ).encode()
    answer = raw(server, head)
    assert answer.startswith(b"HTTP/1.1 413")
    assert json_body(answer)["status"] == 413


@pytest.mark.parametrize(
    ("data", "status"),
    [
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="bad-request-line"),
        pytest.param(b"GET /metrics HTTP/9.9\r\n\r\n", 505, id="bad-version"),
        pytest.param(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, id="long-uri"),
        pytest.param(
            b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431, id="long-header"
        ),
        pytest.param(
            b"POST /silences HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            411,
            id="chunked",
        ),
        pytest.param(
            b"POST /silences HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400, id="bad-length"
        ),
        pytest.param(b"BREW /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", 405, id="method"),
    ],
)
def test_malformed_requests_get_json_errors(server: ServerHandle, data: bytes, status: int) -> None:
    answer = raw(server, data)
    assert answer.startswith((f"HTTP/1.1 {status}".encode(), f"HTTP/1.0 {status}".encode()))
    assert json_body(answer)["status"] == status


class BrokenSource(FakeSource):
    def latest(self) -> EngineSnapshot:
        raise RuntimeError("boom")


def test_a_failing_handler_is_a_json_500_and_the_server_goes_on() -> None:
    source = BrokenSource(populated_snapshot(NOW))
    handle = serve(source, port=0, env={})
    try:
        status, _, body = request(handle, "GET", "/alerts")
        assert status == 500
        assert b"boom" not in body  # internals go to the log, not to the client
        status, _, _ = request(handle, "GET", "/nope")
        assert status == 404
    finally:
        handle.close()


def test_close_releases_the_port() -> None:
    handle = serve(FakeSource(populated_snapshot(NOW)), port=0, env={})
    port = handle.port
    handle.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        (":8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:9464", ("::1", 9464)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9464", "host:", "host:port", "h:70000", ""])
def test_parse_listen_refuses_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(text)


# -- a real engine -------------------------------------------------------------------------

ENGINE_RULES = """\
version: 1
interval: 15s
targets:
  - name: api
    pid: 4242
rules:
  - name: api-rss
    metric: rss_bytes
    above: {warning: 100MiB}
    for: 30s
"""


def test_a_real_engine_ticked_by_hand_is_served(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "4242").mkdir(parents=True)
    shutil.copy(FIXTURE_PROC / "meminfo", proc / "meminfo")
    (proc / "4242" / "status").write_text(
        "Name:\tapi\nVmSize:\t819200 kB\nVmRSS:\t204800 kB\nRssAnon:\t204800 kB\n"
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(ENGINE_RULES)
    clock = FakeClock()
    detector = LeakDetector(clock=clock, budget_bytes=1 << 30)
    for _ in range(10):
        detector.record_allocation("cache", "put", 1_000_000)
        clock.advance(1)
    engine = AlertEngine.from_files(
        [rules],
        state_path=tmp_path / "state.db",
        env={},
        clock=clock,
        tracker=MemoryTracker(4242, proc_root=proc, clock=clock),
        notifiers={},
        detector=detector,
    )
    handle = serve(engine, port=0, env={"MEMALERT_API_TOKEN": TOKEN}, clock=clock)
    try:
        for _ in range(4):
            engine.tick()
            clock.advance(15)
        status, _, body = request(handle, "GET", "/alerts")
        alerts = json.loads(body)["alerts"]
        assert (status, [(a["rule"], a["state"]) for a in alerts]) == (200, [("api-rss", "firing")])
        status, _, body = request(handle, "GET", "/health")
        health = json.loads(body)
        assert (status, health["status"], health["ticks_total"]) == (200, "healthy", 4)
        _, _, body = request(handle, "GET", "/snapshot")
        api, me = json.loads(body)["targets"]
        assert (api["target"], api["up"], api["rss_bytes"]) == ("api", True, 200 * 1024 * 1024)
        assert me["components"][0]["component_bytes"] == 10_000_000
        _, _, body = request(handle, "GET", "/leaks")
        leaks = json.loads(body)
        assert leaks["potential_leak_count"] == 1
        (cache,) = leaks["leaks"]
        assert (cache["component"], cache["leak_bytes"]) == ("cache", 10_000_000)
        assert cache["allocation_count"] == 10
        _, _, body = request(handle, "GET", "/metrics")
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert families["memalert_ticks"].samples[0].value == 4.0
        assert families["memalert_alerts"].samples[0].labels["state"] == "firing"
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        payload = json.dumps({"match": {"rule": "api-rss"}, "duration": "1h"}).encode()
        status, _, body = request(handle, "POST", "/silences", payload, headers)
        assert status == 201
        _, _, body = request(handle, "GET", "/silences")
        assert [s["match"] for s in json.loads(body)["silences"]] == [{"rule": "api-rss"}]
        clock.advance(60)  # 4 intervals without a tick
        status, _, body = request(handle, "GET", "/health")
        assert (status, json.loads(body)["status"]) == (503, "unhealthy")
    finally:
        handle.close()
        engine.close()


# -- a running `memalert run --listen` ----------------------------------------------------

RUN_RULES = """\
version: 1
interval: 1s
targets:
  - {name: me, self: true}
rules:
  - name: me-rss
    metric: rss_bytes
    above: {warning: 1MiB}
"""


def _serving_url(daemon: subprocess.Popen[str]) -> str:
    """The URL `memalert run` logs once its HTTP API listens (port 0 picks a free one)."""
    assert daemon.stderr is not None
    deadline = time.monotonic() + TIMEOUT
    seen = []
    with selectors.DefaultSelector() as selector:
        selector.register(daemon.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline and selector.select(deadline - time.monotonic()):
            line = daemon.stderr.readline()
            seen.append(line)
            found = re.search(r"serving the HTTP API on (http://\S+)", line)
            if found:
                return found.group(1)
            if not line:
                break
    raise AssertionError("memalert run never said where it listens:\n" + "".join(seen))


def test_a_running_memalert_run_serves_the_api(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RUN_RULES)
    command = [sys.executable, "-m", "memalert.engine.cli", "run", str(rules)]
    command += ["--state", str(tmp_path / "state.db"), "--listen", "127.0.0.1:0"]
    daemon = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "MEMALERT_API_TOKEN": TOKEN},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = urlsplit(_serving_url(daemon))
        assert url.hostname == "127.0.0.1"
        address = Address(url.hostname, url.port or 0)
        deadline = time.monotonic() + TIMEOUT
        health: dict[str, object] = {}
        # A real daemon on a real clock: wait (boundedly) for its first ticks.
        while time.monotonic() < deadline:
            _, _, body = request(address, "GET", "/health")
            health = json.loads(body)
            if isinstance(health["ticks_total"], int) and health["ticks_total"] >= 2:
                break
            time.sleep(0.1)
        assert health["status"] == "healthy"
        _, _, body = request(address, "GET", "/alerts")
        assert [a["rule"] for a in json.loads(body)["alerts"]] == ["me-rss"]
        _, _, body = request(address, "GET", "/metrics")
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert families["memalert_up"].samples[0].labels == {"target": "me"}
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        payload = json.dumps({"match": {"target": "me"}, "duration": "1h"}).encode()
        status, _, _ = request(address, "POST", "/silences", payload, headers)
        assert status == 201
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=TIMEOUT)
        assert daemon.returncode == 0, stderr
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate(timeout=TIMEOUT)
