"""`memalert run` end to end: a real daemon process, a real child that allocates, real servers.

The daemon runs as a subprocess (interval 1 s) and watches a child Python
process that holds as many MiB as it is told on stdin. Alerts go to an HTTP
webhook (apprise json://) and to aiosmtpd (apprise mailto://) on 127.0.0.1.
Every wait polls with a deadline; every process is killed at the end.
"""

from __future__ import annotations

import email
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from memchildren import MiB, stop

from engine.store import StateStore, StoredAlert

# notifier_kit lives beside the notifier tests, and pytest puts a test file's
# directory on sys.path only once it collects a file there: add it ourselves.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notifiers"))
from notifier_kit import SmtpServer, WebhookServer, free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MEMALERT = (sys.executable, "-m", "engine.cli")
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

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *MEMALERT,
                    "run",
                    str(self.rules),
                    *("--state", str(self.state), "--flush-timeout", "3s"),
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


@pytest.fixture
def child() -> Iterator[Child]:
    started = Child()
    try:
        yield started
    finally:
        stop(started.process)


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[FlakyWebhook]:
    webhook = FlakyWebhook()
    webhook.up()
    try:
        yield webhook
    finally:
        webhook.down()


def setup_for(tmp_path: Path, child: Child, hook_port: int, smtp_port: int = 1) -> Iterator[Setup]:
    setup = Setup(tmp_path, child, hook_port, smtp_port)
    try:
        yield setup
    finally:
        setup.daemon.kill()


@pytest.fixture
def flaky_setup(tmp_path: Path, child: Child, flaky: FlakyWebhook) -> Iterator[Setup]:
    yield from setup_for(tmp_path, child, flaky.port)


WARNING_FIRED = ("FIRING", "warning", "child-rss")
ESCALATED = ("ESCALATED", "critical", "child-rss")
RESOLVED = ("RESOLVED", "critical", "child-rss")


def test_warning_critical_and_resolved_arrive_by_webhook_and_email(
    tmp_path: Path, child: Child
) -> None:
    with (
        WebhookServer() as hook,
        SmtpServer(user="alerts", password=SMTP_PASSWORD) as smtp,
    ):
        for setup in setup_for(tmp_path, child, hook.port, smtp.port):
            setup.write_rules(notify="[hook, mail]")
            setup.daemon.start()

            def hooked() -> list[tuple[str, str, str]]:
                return [e for r in hook.requests for e in events_in(json.loads(r.body))]

            def subjects() -> list[str]:
                return [str(email.message_from_bytes(m.content)["Subject"]) for m in smtp.mails]

            child.hold(60)
            wait_for("the warning", lambda: len(hooked()) == 1 and len(subjects()) == 1)
            child.hold(120)
            wait_for("the escalation", lambda: len(hooked()) == 2 and len(subjects()) == 2)
            child.hold(0)
            wait_for("the resolution", lambda: len(hooked()) == 3 and len(subjects()) == 3)

            assert hooked() == [WARNING_FIRED, ESCALATED, RESOLVED]
            assert subjects() == [
                "[memalert] FIRING warning: child-rss on child",
                "[memalert] ESCALATED critical: child-rss on child",
                "[memalert] RESOLVED critical: child-rss on child",
            ]
            assert setup.daemon.stop() == 0
            log = setup.daemon.text()
            assert "every notification was delivered" in log
            assert SMTP_PASSWORD not in log


def test_a_webhook_answering_500_then_recovering_gets_everything_in_order(
    flaky: FlakyWebhook, flaky_setup: Setup
) -> None:
    flaky_setup.write_rules()
    flaky_setup.daemon.start()
    flaky.status = 500
    flaky_setup.child.hold(60)
    wait_for("a failed attempt", lambda: len(flaky.answered) >= 1)
    flaky_setup.child.hold(120)
    wait_for("both alerts queued", lambda: flaky_setup.backlog() == 2)
    flaky.status = 200
    wait_for("the queue to drain", lambda: len(flaky.delivered()) == 2)
    flaky_setup.child.hold(0)
    wait_for("the resolution", lambda: len(flaky.delivered()) == 3)

    assert flaky.delivered() == [WARNING_FIRED, ESCALATED, RESOLVED]
    assert any(status == 500 for status, _ in flaky.answered)
    assert flaky_setup.daemon.stop() == 0


def test_sigkill_with_notifications_pending_loses_none_and_repeats_none(
    flaky: FlakyWebhook, flaky_setup: Setup
) -> None:
    setup = flaky_setup
    setup.write_rules()
    setup.daemon.start()
    setup.child.hold(60)
    wait_for("the warning", lambda: flaky.delivered() == [WARNING_FIRED])

    flaky.down()  # connection refused from now on
    setup.child.hold(120)
    wait_for("the escalation queued", lambda: setup.backlog() == 1)
    setup.daemon.signal(signal.SIGKILL)
    assert setup.daemon.process is not None
    setup.daemon.process.wait(timeout=DEADLINE)

    flaky.up()
    setup.daemon.start()  # the same --state
    wait_for("the escalation", lambda: len(flaky.delivered()) == 2)
    setup.child.hold(0)
    wait_for("the resolution", lambda: len(flaky.delivered()) == 3)
    assert flaky.delivered() == [WARNING_FIRED, ESCALATED, RESOLVED]
    assert setup.daemon.stop() == 0


def test_a_restart_in_the_middle_of_for_keeps_the_pending_time(
    flaky: FlakyWebhook, flaky_setup: Setup
) -> None:
    setup = flaky_setup
    setup.write_rules(for_="8s")
    setup.daemon.start()
    setup.child.hold(60)
    wait_for("the alert to be pending", lambda: len(setup.stored_alerts()) == 1)
    (pending,) = setup.stored_alerts()
    assert pending.status == "pending"
    pending_since = pending.state.active_since[0]
    assert pending_since is not None

    assert setup.daemon.stop() == 0
    setup.daemon.start()
    wait_for("the warning", lambda: flaky.delivered() == [WARNING_FIRED])
    (firing,) = setup.stored_alerts()
    assert firing.status == "firing"
    # Had the restart lost it, the condition would count from the restart on.
    assert firing.state.active_since[0] == pending_since
    assert firing.state.firing_since is not None
    assert firing.state.firing_since >= pending_since + 8
    assert setup.daemon.stop() == 0


def test_sighup_with_a_broken_rule_file_keeps_the_old_rules(
    flaky: FlakyWebhook, flaky_setup: Setup
) -> None:
    setup = flaky_setup
    setup.write_rules()
    setup.daemon.start()
    good = setup.rules.read_text()
    setup.rules.write_text(good.replace("metric: rss_bytes", "metric: rss_bytez"))
    setup.daemon.signal(signal.SIGHUP)
    wait_for("the reload to fail", lambda: "reload failed" in setup.daemon.text())
    log = setup.daemon.text()
    line = next(n + 1 for n, text in enumerate(good.splitlines()) if "metric:" in text)
    assert re.search(rf"{re.escape(str(setup.rules))}:{line}:\d+: .*rss_bytez", log), log

    setup.child.hold(60)
    wait_for("the warning under the old rules", lambda: flaky.delivered() == [WARNING_FIRED])
    assert setup.daemon.stop() == 0
