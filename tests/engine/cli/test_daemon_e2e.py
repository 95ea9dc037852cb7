"""`memalert run` end to end: a real daemon process, a real child that allocates, real servers.

The daemon runs as a subprocess (interval 1 s) and watches a child Python
process that holds as many MiB as it is told on stdin. Alerts go to an HTTP
webhook (apprise json://) and to aiosmtpd (apprise mailto://) on 127.0.0.1.
Every wait polls with a deadline; every process is killed at the end.
"""

from __future__ import annotations

import email
import json
import re
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Imported first (isort's order): it puts notifier_kit's directory on sys.path.
from daemon_e2e_kit import (
    DEADLINE,
    MEMALERT,
    REPO,
    SMTP_PASSWORD,
    Child,
    FlakyWebhook,
    Setup,
    events_in,
    wait_for,
)
from memchildren import stop
from notifier_kit import SmtpServer, WebhookServer, free_port

pytestmark = pytest.mark.integration


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


def memalert(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    """One `memalert` command in a subprocess, on the setup's state file, bounded."""
    return subprocess.run(
        [*MEMALERT, *args, "--state", str(setup.state)],
        cwd=REPO,
        env=setup.daemon.env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def test_a_second_daemon_on_the_same_state_is_refused_until_the_first_is_killed(
    flaky: FlakyWebhook, flaky_setup: Setup
) -> None:
    setup = flaky_setup
    setup.write_rules()
    setup.daemon.start()
    assert setup.daemon.process is not None
    first = setup.daemon.process.pid

    second = memalert(setup, "run", str(setup.rules))
    assert second.returncode == 2
    errors = [line for line in second.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, second.stderr
    assert f"state file {setup.state}: already in use by pid {first}," in errors[0]
    assert "Traceback" not in second.stderr

    # The commands that read or edit the state keep working beside the daemon.
    status = memalert(setup, "status", "--format", "json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["outbox"]["pending"] == 0
    added = memalert(setup, "silence", "add", "--match", "target=other", "--duration", "1h")
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    assert silence_id in memalert(setup, "silence", "list").stdout
    assert memalert(setup, "silence", "expire", silence_id).returncode == 0

    # A daemon killed with SIGKILL leaves no stale lock: the next one starts.
    setup.daemon.signal(signal.SIGKILL)
    setup.daemon.process.wait(timeout=DEADLINE)
    setup.daemon.start()
    setup.child.hold(60)
    wait_for("the warning from the new daemon", lambda: flaky.delivered() == [WARNING_FIRED])
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


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        pytest.param("metric: rss_bytes", "metric: rss_bytez", "rss_bytez", id="unknown-metric"),
        # Both passed `check` once: the first then killed the daemon (OverflowError).
        pytest.param("interval: 1s", "interval: 100000000000000s", "interval", id="huge-interval"),
        pytest.param("interval: 1s", "interval: 0.0001ms", "interval", id="tiny-interval"),
    ],
)
def test_sighup_with_a_broken_rule_file_keeps_the_old_rules(
    flaky: FlakyWebhook, flaky_setup: Setup, old: str, new: str, said: str
) -> None:
    setup = flaky_setup
    setup.write_rules()
    setup.daemon.start()
    good = setup.rules.read_text()
    assert old in good
    setup.rules.write_text(good.replace(old, new))
    setup.daemon.signal(signal.SIGHUP)
    wait_for("the reload to fail", lambda: "reload failed" in setup.daemon.text())
    log = setup.daemon.text()
    line = next(n + 1 for n, text in enumerate(good.splitlines()) if old in text)
    assert re.search(rf"{re.escape(str(setup.rules))}:{line}:\d+: .*{said}", log), log
    assert "Traceback" not in log

    setup.child.hold(60)
    wait_for("the warning under the old rules", lambda: flaky.delivered() == [WARNING_FIRED])
    assert setup.daemon.stop() == 0


def test_listen_serves_the_http_api_of_the_running_daemon(
    flaky: FlakyWebhook, flaky_setup: Setup
) -> None:
    setup = flaky_setup
    port = free_port()
    setup.daemon.extra = ("--listen", f"127.0.0.1:{port}")
    setup.write_rules()
    setup.daemon.start()
    setup.child.hold(60)
    wait_for("the warning", lambda: flaky.delivered() == [WARNING_FIRED])

    def get(path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return json.load(answer)

    wait_for("the alert over HTTP", lambda: len(get("/alerts")["alerts"]) == 1)
    (alert,) = get("/alerts")["alerts"]
    assert (alert["rule"], alert["state"], alert["severity"]) == ("child-rss", "firing", "warning")
    assert get("/health")["ticks_total"] >= 1
    assert setup.daemon.stop() == 0


def test_listen_on_a_port_in_use_refuses_to_start(tmp_path: Path, child: Child) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        for setup in setup_for(tmp_path, child, hook_port=1):
            setup.write_rules()
            completed = subprocess.run(
                [
                    *(*MEMALERT, "run", str(setup.rules), "--state", str(setup.state)),
                    *("--listen", f"127.0.0.1:{taken.getsockname()[1]}"),
                ],
                cwd=REPO,
                env=setup.daemon.env,
                capture_output=True,
                text=True,
                timeout=DEADLINE,
                check=False,
            )
    assert completed.returncode == 2
    assert "cannot listen on 127.0.0.1" in completed.stderr


def test_sigterm_with_an_unreachable_webhook_flushes_for_a_bounded_time_and_exits_0(
    flaky: FlakyWebhook, flaky_setup: Setup
) -> None:
    setup = flaky_setup
    setup.write_rules()
    flaky.down()
    setup.daemon.start()
    setup.child.hold(60)
    wait_for("the warning queued", lambda: setup.backlog() == 1)
    assert setup.daemon.stop() == 0  # --flush-timeout 3s, then gives up
    assert "notifications still queued" in setup.daemon.text()
    assert setup.backlog() == 1  # kept for the next start
