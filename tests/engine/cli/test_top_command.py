"""`memalert top` as plain text (stdout is not a terminal here) and when the daemon fails it.

A real memalert HTTP server over a fake snapshot source answers the good
cases; a raw socket server on 127.0.0.1 plays the daemons that answer badly,
late or not at all. The terminal itself is driven in test_top_terminal.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from http_fakes import START, FakeSource, populated_snapshot
from notifier_kit import free_port

from memalert.engine.cli.main import main
from memalert.engine.http.server import serve

pytestmark = pytest.mark.integration

NOW = START + 60


@pytest.fixture
def daemon() -> Iterator[str]:
    handle = serve(FakeSource(populated_snapshot(NOW)), port=0, env={})
    try:
        yield f"127.0.0.1:{handle.port}"
    finally:
        handle.close()


class BadServer:
    """Answers every connection with `answer`, `pause` seconds between its bytes if set."""

    def __init__(self, answer: bytes, pause: float = 0.0) -> None:
        self.answer, self.pause = answer, pause
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with connection:
                try:
                    connection.recv(65536)
                    if not self.pause:
                        connection.sendall(self.answer)
                    for byte in self.answer if self.pause else b"":
                        if self.done.wait(self.pause):
                            break
                        connection.sendall(bytes([byte]))
                except OSError:
                    pass  # the client gave up: what the trickle test wants

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=10)
        self.listener.close()


def response(body: bytes, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\nConnection: close\r\n\r\n" + body


def run_top(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["top", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_not_on_a_terminal_the_table_is_printed_once_as_plain_text(
    daemon: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_top(capsys, "--connect", daemon)
    assert (code, err) == (0, "")
    title, header, *rows = out.splitlines()
    assert title.startswith(f"memalert top  {daemon}  3 targets (1 down)")
    assert "alerts: 1 firing, 1 pending" in title
    assert header.split()[:3] == ["TARGET", "RSS", "LIMIT"]
    assert [row.split()[0] for row in rows] == ["api", "batch", "hook"]
    assert "FIRING critical memory-leak +1" in rows[0]
    assert "+11.4 MiB/h" in rows[0]
    assert rows[1].split()[1] == "down"
    assert "\x1b" not in out  # no escape codes when piped


def test_sort_by_rss(daemon: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_top(capsys, "--connect", daemon, "--sort", "rss")
    assert code == 0
    assert [row.split()[0] for row in out.splitlines()[2:]] == ["api", "hook", "batch"]
    assert out.splitlines()[0].endswith("ago)")


def test_an_unreachable_daemon_is_one_error_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    code, out, err = run_top(capsys, "--connect", f"127.0.0.1:{port}")
    assert (code, out) == (2, "")
    said = f"error: cannot read http://127.0.0.1:{port}/snapshot: [Errno 111] Connection refused"
    assert err.splitlines() == [f"{said} (is `memalert run --listen` running there?)"]


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (response(b"<html>not here</html>"), "/snapshot: the answer is not JSON"),
        (response(b"[" * 100_000 + b"]" * 100_000), "/snapshot: the answer is not JSON"),
        (response(b"\xff\xfe"), "/snapshot: the answer is not JSON"),
        (response(b'{"error": "no"}', "500 Internal Server Error"), "HTTP 500"),
        (response(b'{"targets": {}}'), "GET /snapshot: expected a JSON object with a 'targets'"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "(BadStatusLine: SSH-2.0-OpenSSH_9.2)"),
        (b"", "cannot read http://127.0.0.1:"),
    ],
)
def test_a_bad_answer_is_one_error_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], answer: bytes, said: str
) -> None:
    server = BadServer(answer)
    try:
        code, out, err = run_top(capsys, "--connect", server.address)
    finally:
        server.close()
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith("error: ")
    assert said in line
    assert "Traceback" not in err


def test_a_daemon_that_trickles_its_answer_is_given_up_at_the_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # One byte every 0.2 s: no read waits 1 s, so only a deadline over them all ends it.
    server = BadServer(response(b'{"targets": []}' + b" " * 1000), pause=0.2)
    try:
        code, _, err = run_top(capsys, "--connect", server.address, "--timeout", "1s")
    finally:
        server.close()
    assert code == 2
    assert err.splitlines() == [f"error: http://{server.address}/snapshot: no answer within 1s"]


def test_bad_options_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--connect", "nowhere"], ["--interval", "0s"], ["--sort", "name"]):
        with pytest.raises(SystemExit) as exit_:
            main(["top", *argv])
        assert exit_.value.code == 2
    assert "expects HOST:PORT, the daemon's --listen address" in capsys.readouterr().err


def test_the_cli_loads_curses_and_http_client_only_when_top_runs() -> None:
    # `memalert run` imports the CLI too: the daemon's footprint stays without them.
    script = (
        "import sys; from memalert.engine.cli.main import build_parser; build_parser(); "
        "print(' '.join(m for m in ('curses', '_curses', 'http.client') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == ""
