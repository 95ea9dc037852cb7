"""The parts of the `memalert run` end-to-end tests: the daemon, a child that allocates, servers.

Every wait polls with a deadline (`wait_for`); `Daemon.kill` and the test
fixtures end every process started.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memchildren import MiB
from notifier_kit import free_port

from memalert.engine.store.state import StateStore, StoredAlert

REPO = Path(__file__).resolve().parents[2]
MEMALERT = (sys.executable, "-m", "memalert.engine.cli")
DEADLINE = 60.0
SMTP_PASSWORD = "e2e-Pa55word-secret"

# Holds `hold N` MiB (every page written, so resident) and answers "ok" to each line.
CHILD = """
import sys
held = b""
print("ok", flush=True)
for line in sys.stdin:
    held = b""
    held = b"x" * (int(line.split()[1]) * 1024 * 1024)
    print("ok", flush=True)
"""

RULES = """\
version: 1
interval: 1s
repeat_interval: 1h
targets:
  - name: child
    pid: ${{CHILD_PID}}
rules:
  - name: child-rss
    metric: rss_bytes
    above: {{warning: {warning}, critical: {critical}}}
    for: {for_}
    notify: {notify}
notifiers:
  hook: {{urls: ["json://127.0.0.1:{hook_port}/alerts"]}}
  mail:
    urls:
      - "mailto://alerts:${{SMTP_PASSWORD}}@127.0.0.1:{smtp_port}?from=memalert@example.com&to=oncall@example.com"
"""

EVENT_LINE = re.compile(r"^\[(\w+):(\w+)\] (\S+) ", re.MULTILINE)


def wait_for(what: str, check: Callable[[], bool], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


class Child:
    """A process whose RSS the test sets: `hold(mib)` returns once the memory is resident."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._answer()
        self.baseline = self.rss()

    def rss(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]

    def hold(self, mib: int) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"hold {mib}\n")
        self.process.stdin.flush()
        self._answer()

    def _answer(self) -> None:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            assert selector.select(DEADLINE), "the child did not answer"
        assert self.process.stdout.readline().strip() == "ok"


class FlakyWebhook:
    """A JSON webhook on a fixed port that can answer 500, or be down, then recover.

    notifier_kit's WebhookServer takes a fresh port each start; coming back
    after being down needs the same port, so this one keeps its own.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.status = 200
        self.answered: list[tuple[int, dict[str, Any]]] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def up(self) -> None:
        webhook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = webhook.status
                webhook.answered.append((status, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                del format, args

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.start()

    def down(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def delivered(self) -> list[tuple[str, str, str]]:
        return [e for status, body in self.answered if status == 200 for e in events_in(body)]


def events_in(payload: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(EVENT, severity, rule) for each alert line of a json:// message."""
    return [m.groups() for m in EVENT_LINE.finditer(payload["message"])]  # type: ignore[misc]


class Daemon:
    """`memalert run` in a subprocess; its stderr (the log) goes to a file."""

    def __init__(self, rules: Path, state: Path, env: dict[str, str], log: Path) -> None:
        self.rules, self.state, self.env, self.log = rules, state, env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.extra: tuple[str, ...] = ()

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *MEMALERT,
                    "run",
                    str(self.rules),
                    *("--state", str(self.state), "--flush-timeout", "3s"),
                    *self.extra,
                ],
                cwd=REPO,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_for("the daemon to start", lambda: "memalert running" in self.text()[offset:])

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self) -> int:
        """SIGTERM and wait (bounded); the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=DEADLINE)


class Setup:
    def __init__(self, tmp_path: Path, child: Child, hook_port: int, smtp_port: int) -> None:
        self.tmp, self.child = tmp_path, child
        self.hook_port, self.smtp_port = hook_port, smtp_port
        self.rules = tmp_path / "rules.yaml"
        self.state = tmp_path / "state.db"
        env = dict(os.environ, CHILD_PID=str(child.process.pid), SMTP_PASSWORD=SMTP_PASSWORD)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        self.daemon = Daemon(self.rules, self.state, env, tmp_path / "daemon.log")

    def write_rules(self, *, for_: str = "0s", notify: str = "[hook]") -> None:
        # Relative to the child's own baseline, so the machine's Python size does not matter.
        warning = self.child.baseline + 40 * MiB
        self.rules.write_text(
            RULES.format(
                warning=warning,
                critical=warning + 60 * MiB,
                for_=for_,
                notify=notify,
                hook_port=self.hook_port,
                smtp_port=self.smtp_port,
            )
        )

    def stored_alerts(self) -> list[StoredAlert]:
        if not self.state.exists():
            return []
        with StateStore(self.state, create=False) as store:
            return list(store.status(time.time()).alerts)

    def backlog(self) -> int:
        with StateStore(self.state, create=False) as store:
            return store.status(time.time()).backlog
