"""The HTTP server against slow and hostile clients, over real sockets on 127.0.0.1.

Every wait is bounded; no assertion is about how long anything took.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest
from http_fakes import START, TOKEN, FakeSource, populated_snapshot

from memalert.engine.http.connections import ConnectionLimits
from memalert.engine.http.server import ServerHandle, serve
from memalert.engine.testing import FakeClock

pytestmark = pytest.mark.integration

NOW = START + 60
TIMEOUT = 30.0
# A short deadline keeps the tests quick; the trickle runs far past it.
DEADLINE = 1.0
TRICKLE_FOR = 8.0


def limited_server(**limits: float) -> ServerHandle:
    return serve(
        FakeSource(populated_snapshot(NOW)),
        port=0,
        env={"MEMALERT_API_TOKEN": TOKEN},
        clock=FakeClock(NOW),
        limits=ConnectionLimits(**limits),  # type: ignore[arg-type]
    )


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    handle = limited_server(request_seconds=DEADLINE, max_connections=4)
    try:
        yield handle
    finally:
        handle.close()


def trickle(handle: ServerHandle, data: bytes, gap: float) -> bool:
    """Send `data` a byte per `gap` s; True if the server dropped the connection first."""
    with socket.create_connection((handle.host, handle.port), timeout=TIMEOUT) as sock:
        stop_at = time.monotonic() + TRICKLE_FOR
        for byte in data:
            if time.monotonic() > stop_at:
                return False
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return True
            sock.settimeout(gap)
            try:
                if sock.recv(65536) == b"":
                    return True
            except TimeoutError:
                continue
            except OSError:
                return True
            finally:
                sock.settimeout(TIMEOUT)
    return False


def test_a_request_trickled_byte_by_byte_loses_its_connection(server: ServerHandle) -> None:
    # Each byte comes well within the per-recv timeout; the request as a whole never does.
    headers = b"GET /metrics HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 200
    assert trickle(server, headers, gap=DEADLINE / 4)


def health(handle: ServerHandle) -> int:
    conn = http.client.HTTPConnection(handle.host, handle.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    finally:
        conn.close()


def test_stalled_clients_filling_every_slot_do_not_lock_out_health() -> None:
    # A deadline longer than the test: only eviction can free a slot in time.
    handle = limited_server(request_seconds=TIMEOUT * 2, max_connections=4)
    stalled = []
    try:
        for _ in range(12):
            sock = socket.create_connection((handle.host, handle.port), timeout=TIMEOUT)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: a")
            stalled.append(sock)
        assert [health(handle) for _ in range(5)] == [200] * 5
    finally:
        for sock in stalled:
            sock.close()
        handle.close()


def raw(handle: ServerHandle, data: bytes) -> bytes:
    with socket.create_connection((handle.host, handle.port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "length",
    [
        pytest.param(b"\xb2", id="superscript-two"),
        pytest.param("\u0664".encode(), id="arabic-indic-four"),
        pytest.param(b"9" * 5000, id="beyond-int-str-digits"),
        pytest.param(b"+5", id="signed"),
    ],
)
def test_a_content_length_that_is_not_ascii_digits_is_400(
    server: ServerHandle, length: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    answer = raw(
        server,
        b"POST /silences HTTP/1.1\r\nContent-Length: " + length + b"\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400"))
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["status"] == 400
    assert "Traceback" not in capfd.readouterr().err
    assert health(server) == 200
