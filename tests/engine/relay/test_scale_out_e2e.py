"""Scale-out end to end with the real binaries (docs/scale-out.md).

Three `memalert run --listen` agents (one watching a real child process whose
memory the test sets), a real Prometheus scraping them every second with the
rules `memalert export prometheus` wrote, a real Alertmanager with the
configuration `memalert export alertmanager` wrote, and `memalert relay`
delivering to a local webhook and an aiosmtpd server. The relay is killed
(SIGKILL) while a notification waits for a retry, and restarted: nothing is
lost and nothing arrives twice.
"""

from __future__ import annotations

import email
import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

# Imported first (isort's order): it puts notifier_kit's directory on sys.path.
from daemon_e2e_kit import MEMALERT, SMTP_PASSWORD, Child, FlakyWebhook, wait_for
from memchildren import MiB, stop
from notifier_kit import SmtpServer, free_port
from scale_out_kit import Process, Processes, get, missing_binaries, prometheus_config

from memalert.engine.cli.main import main

pytestmark = [pytest.mark.integration, pytest.mark.alertmanager]

TOKEN = "relay-e2e-token"
CENTRAL = """\
version: 1
interval: 1s
repeat_interval: 1h
notifiers:
  hook: {{urls: ["json://127.0.0.1:{hook_port}/alerts"]}}
  mail:
    urls:
      - "mailto://alerts:${{SMTP_PASSWORD}}@127.0.0.1:{smtp_port}?from=memalert@example.com&to=oncall@example.com"
routes:
  - match: {{severity: critical}}
    notify: [mail]
    continue: true
  - match: {{rule: child-rss}}
    notify: [hook]
rules:
  - name: child-rss
    metric: rss_bytes
    where: {{target: child}}
    above: {{warning: {warning}, critical: {critical}}}
    summary: >-
      {{{{ target }}}} holds {{{{ value | bytes }}}}
      ({{{{ severity }}}} above {{{{ threshold | bytes }}}})
"""
AGENT_CHILD = "version: 1\ninterval: 1s\ntargets:\n  - name: child\n    pid: ${CHILD_PID}\n"
AGENT_HOST = "version: 1\ninterval: 1s\ntargets:\n  - name: host\n    system: true\n"


@pytest.fixture
def child() -> Iterator[Child]:
    started = Child()
    try:
        yield started
    finally:
        stop(started.process)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"not installed: {', '.join(missing)} (Debian's prometheus, prometheus-alertmanager)"
        )
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def hook() -> Iterator[FlakyWebhook]:
    webhook = FlakyWebhook()
    webhook.up()
    try:
        yield webhook
    finally:
        webhook.down()


def _export(*argv: str) -> None:
    assert main(["export", *argv]) == 0


def _relay(processes: Processes, central: Path, port: int) -> Process:
    argv = [*MEMALERT, "relay", str(central), "--listen", f"127.0.0.1:{port}"]
    argv += ["--state", str(processes.tmp / "relay.db"), "--flush-timeout", "1s"]
    env = {"MEMALERT_RELAY_TOKEN": TOKEN, "SMTP_PASSWORD": SMTP_PASSWORD}
    return processes.start("relay", argv, ready=f"http://127.0.0.1:{port}/health", env=env)


def _inhibited_warnings(alertmanager: int) -> list[object]:
    alerts = get(f"http://127.0.0.1:{alertmanager}/api/v2/alerts")
    return [
        a["status"]["inhibitedBy"]
        for a in alerts
        if a["labels"].get("severity") == "warning" and a["status"]["inhibitedBy"]
    ]


def test_agents_prometheus_alertmanager_and_the_relay_deliver_each_alert_once(
    tmp_path: Path,
    child: Child,
    processes: Processes,
    hook: FlakyWebhook,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with SmtpServer(user="alerts", password=SMTP_PASSWORD) as smtp:
        warning = child.baseline + 40 * MiB
        central = tmp_path / "central.yaml"
        central.write_text(
            CENTRAL.format(
                hook_port=hook.port,
                smtp_port=smtp.port,
                warning=warning,
                critical=warning + 60 * MiB,
            ),
            encoding="utf-8",
        )
        token_file = tmp_path / "relay.token"
        token_file.write_text(TOKEN, encoding="utf-8")
        relay_port = free_port()
        _export("prometheus", str(central), "-o", str(tmp_path / "rules.yml"), "--strict")
        _export(
            "alertmanager",
            str(central),
            "-o",
            str(tmp_path / "alertmanager.yml"),
            *("--relay-url", f"http://127.0.0.1:{relay_port}", "--token-file", str(token_file)),
            *("--group-wait", "1s", "--group-interval", "1s"),
        )
        capsys.readouterr()

        (tmp_path / "agent-child.yaml").write_text(AGENT_CHILD, encoding="utf-8")
        (tmp_path / "agent-host.yaml").write_text(AGENT_HOST, encoding="utf-8")
        _, child_agent = processes.agent(
            "agent-child", tmp_path / "agent-child.yaml", {"CHILD_PID": str(child.process.pid)}
        )
        agents = [child_agent]
        agents += [
            processes.agent(f"agent-host-{i}", tmp_path / "agent-host.yaml")[1] for i in (1, 2)
        ]
        relay = _relay(processes, central, relay_port)
        _, alertmanager = processes.alertmanager(tmp_path / "alertmanager.yml")
        prometheus_yml = tmp_path / "prometheus.yml"
        prometheus_yml.write_text(
            prometheus_config(tmp_path / "rules.yml", alertmanager, agents), encoding="utf-8"
        )
        _, prometheus = processes.prometheus(prometheus_yml)

        def hooked() -> Counter[tuple[str, str, str]]:
            return Counter(hook.delivered())

        def subjects() -> Counter[str]:
            return Counter(str(email.message_from_bytes(m.content)["Subject"]) for m in smtp.mails)

        try:
            wait_for(
                "Prometheus to scrape the three agents",
                lambda: (
                    len(
                        [
                            t
                            for t in get(f"http://127.0.0.1:{prometheus}/api/v1/targets")["data"][
                                "activeTargets"
                            ]
                            if t["health"] == "up"
                        ]
                    )
                    == 3
                ),
            )
            child.hold(60)
            wait_for("the warning", lambda: hooked()[("FIRING", "warning", "child-rss")] == 1)

            # The webhook fails while the critical is on its way: the relay queues and retries.
            hook.status = 503
            child.hold(120)
            wait_for(
                "the critical by email",
                lambda: subjects()["[memalert] FIRING critical: child-rss on child"] == 1,
            )
            wait_for(
                "a failed try of the critical",
                lambda: any(status == 503 for status, _ in hook.answered),
            )
            relay.kill(signal.SIGKILL)
            hook.status = 200
            relay = _relay(processes, central, relay_port)
            wait_for("the critical", lambda: hooked()[("FIRING", "critical", "child-rss")] == 1)
            wait_for("the warning to be inhibited", lambda: bool(_inhibited_warnings(alertmanager)))

            child.hold(0)
            wait_for(
                "the resolutions",
                lambda: (
                    hooked()[("RESOLVED", "critical", "child-rss")] == 1
                    and subjects()["[memalert] RESOLVED critical: child-rss on child"] == 1
                ),
            )
            time.sleep(3)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{processes.logs()}") from None

        assert hooked() == Counter(
            {
                ("FIRING", "warning", "child-rss"): 1,
                ("FIRING", "critical", "child-rss"): 1,
                ("RESOLVED", "critical", "child-rss"): 1,
                ("RESOLVED", "warning", "child-rss"): 1,
            }
        ), processes.logs()
        assert subjects() == Counter(
            {
                "[memalert] FIRING critical: child-rss on child": 1,
                "[memalert] RESOLVED critical: child-rss on child": 1,
            }
        )
        first = next(body for status, body in hook.answered if status == 200)
        # the agent's labels, and the rule's own summary
        assert f"instance=127.0.0.1:{child_agent}" in first["message"]
        assert "job=memalert" in first["message"]
        assert "target=child" in first["message"]
        assert "child holds" in first["message"]
        assert "(warning above " in first["message"]
        assert relay.alive()
        relay.kill(signal.SIGTERM)
        assert relay.process is not None
        assert relay.process.returncode == 0
        assert SMTP_PASSWORD not in relay.text()
        assert json.dumps(TOKEN) not in relay.text()
