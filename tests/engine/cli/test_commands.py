"""`memalert notify-test`, `silence add|list|expire` and `status` through the real CLI."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from memalert.engine.alerting.evaluate import EvalState, InstanceState
from memalert.engine.alerting.routing import Notification
from memalert.engine.alerting.views import silence_view
from memalert.engine.cli.main import main
from memalert.engine.core.model import AlertFired, Labels, Sample, Severity, Silence
from memalert.engine.store.state import StateStore


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def state(tmp_path: Path) -> str:
    return str(tmp_path / "state.db")


# -- silences ------------------------------------------------------------------------


def test_silence_add_list_and_expire(capsys: pytest.CaptureFixture[str], state: str) -> None:
    code, out, _ = run(
        capsys,
        *("silence", "add", "--match", "target=batch-*", "--match", "severity=warning"),
        *("--duration", "2h", "--comment", "migration", "--author", "alice", "--state", state),
    )
    assert code == 0
    silence_id = out.strip()

    code, out, _ = run(capsys, "silence", "list", "--state", state)
    assert code == 0
    assert silence_id in out
    assert "active" in out
    assert "{severity=warning, target=batch-*} by alice: migration" in out

    code, out, _ = run(capsys, "silence", "list", "--format", "json", "--state", state)
    (listed,) = json.loads(out)
    assert listed["match"] == {"target": "batch-*", "severity": "warning"}
    # The HTTP API's view of a silence (docs/openapi.yaml), plus what the state file knows.
    http_view = silence_view(Silence(matchers=(), starts=0, ends=1), 0)
    assert set(listed) == {*http_view, "status", "created_at"}
    assert listed["active"] is True
    assert (listed["status"], listed["author"], listed["comment"]) == (
        "active",
        "alice",
        "migration",
    )

    assert run(capsys, "silence", "expire", silence_id, "--state", state)[:2] == (
        0,
        f"expired {silence_id}\n",
    )
    code, _, err = run(capsys, "silence", "expire", silence_id, "--state", state)
    assert code == 1
    assert "no silence" in err
    assert run(capsys, "silence", "list", "--state", state)[1] == "no silences\n"
    assert silence_id in run(capsys, "silence", "list", "--all", "--state", state)[1]


def test_silence_until_an_rfc3339_time(capsys: pytest.CaptureFixture[str], state: str) -> None:
    code, out, _ = run(
        capsys,
        *("silence", "add", "--match", "rule=memory-*", "--until", "2999-01-01T00:00:00Z"),
        *("--state", state),
    )
    assert code == 0
    with StateStore(state) as store:
        (record,) = store.list_silences(time.time())
    assert record.silence.id == out.strip()
    assert record.silence.ends == 32472144000.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--match", "target", "--duration", "1h"], "is not LABEL=GLOB"),
        (["--match", "a=b", "--duration", "soon"], "--duration"),
        (["--match", "a=b", "--until", "2026-12-01T00:00:00"], "with a time zone"),
        (["--match", "a=b"], "one of the arguments --duration --until is required"),
    ],
)
def test_silence_add_rejects_bad_arguments(
    capsys: pytest.CaptureFixture[str], state: str, args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["silence", "add", *args, "--state", state])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_silence_that_already_ended_is_refused(
    capsys: pytest.CaptureFixture[str], state: str
) -> None:
    code, _, err = run(
        capsys,
        *("silence", "add", "--match", "a=b", "--until", "2001-01-01T00:00:00Z"),
        *("--state", state),
    )
    assert code == 2
    assert "must end" in err


# -- status -----------------------------------------------------------------------------


def test_status_shows_alerts_silences_backlog_and_dead_letters(
    capsys: pytest.CaptureFixture[str], state: str
) -> None:
    now = time.time()
    labels = Labels(target="api")
    fired = AlertFired(
        at=now, rule="api-rss", metric="rss_bytes", severity=Severity.CRITICAL, labels=labels,
        value=3e8, firing_since=now,
    )  # fmt: skip
    with StateStore(state) as store:
        store.commit_tick(
            EvalState(
                instances={
                    ("api-rss", labels): InstanceState(
                        active_since=(now - 60, now - 30),
                        firing=Severity.CRITICAL,
                        firing_since=now,
                    ),
                    ("api-vms", labels): InstanceState(active_since=(now - 5, None)),
                },
                series={
                    ("rss_bytes", labels): Sample("rss_bytes", labels, 111_460_000.0, now),
                    ("pressure", labels): Sample("pressure", labels, 0.834, now),
                },
            ),
            [Notification(notifier="hook", at=now, events=(fired,))],
            now=now,
            rule_metrics={"api-rss": "rss_bytes", "api-vms": "pressure"},
            inhibited=frozenset({("api-rss", labels)}),
        )
        store.add_silence(matchers={"target": "batch"}, starts=now, ends=now + 60, now=now)

    code, out, _ = run(capsys, "status", "--state", state)
    assert code == 0
    assert "alerts: 2" in out
    assert "FIRING   critical api-rss {target=api}  inhibited" in out
    assert "PENDING  warning  api-vms {target=api}" in out
    # Values in their metric's unit, not `last value 1.1146e+08`.
    assert "last value 106.3 MiB" in out
    assert "last value 83.4%" in out
    assert "silences in force: 1" in out
    assert "outbox: 1 pending" in out
    assert "dead letters: 0" in out

    code, out, _ = run(capsys, "status", "--format", "json", "--state", state)
    status = json.loads(out)
    assert [(a["rule"], a["state"], a["severity"], a["inhibited"]) for a in status["alerts"]] == [
        ("api-rss", "firing", "critical", True),
        ("api-vms", "pending", "warning", False),
    ]
    assert status["outbox"]["pending"] == 1
    assert status["dead_letters"]["total"] == 0
    assert [s["match"] for s in status["silences"]] == [{"target": "batch"}]


def test_status_of_a_state_file_that_does_not_exist(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.db"
    code, _, err = run(capsys, "status", "--state", str(missing))
    assert code == 2
    assert str(missing) in err
    assert not missing.exists()


# -- notify-test --------------------------------------------------------------------------

RULES = """\
version: 1
rules:
  - name: r
    metric: rss_bytes
    above: {warning: 1GB}
notifiers:
  log: {urls: ["file://${ALERT_LOG}"]}
  refused: {urls: ["json://127.0.0.1:PORT/hook"]}
  unset: {urls: ["json://${NOT_SET_ANYWHERE}/hook"]}
"""


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace("PORT", str(closed_port())))
    # notify-test reads the real environment, as the daemon does.
    monkeypatch.setenv("ALERT_LOG", str(tmp_path / "alerts.jsonl"))
    return path


def test_notify_test_delivers_one_test_message(
    capsys: pytest.CaptureFixture[str], rules: Path, tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "notify-test", "log", str(rules))
    assert code == 0
    # The path came from ${ALERT_LOG}: every value taken from the environment is masked.
    assert out.startswith("ok  file://***  1 alerts appended")
    assert "delivered through 'log'" in out
    (line,) = (tmp_path / "alerts.jsonl").read_text().splitlines()
    (event,) = json.loads(line)["events"]
    assert event["rule"] == "notify-test"
    assert "no action needed" in event["summary"]


def test_notify_test_reports_each_failed_url_and_exits_1(
    capsys: pytest.CaptureFixture[str], rules: Path
) -> None:
    code, out, err = run(capsys, "notify-test", "refused", str(rules))
    assert code == 1
    assert out.startswith("FAILED  json://127.0.0.1:")
    assert "notifier 'refused' failed" in err


def test_notify_test_of_an_unknown_notifier_lists_the_known_ones(
    capsys: pytest.CaptureFixture[str], rules: Path
) -> None:
    code, _, err = run(capsys, "notify-test", "oncall", str(rules))
    assert code == 1
    assert "configured: console, log, refused, unset" in err


def test_notify_test_of_a_notifier_with_an_unset_variable(
    capsys: pytest.CaptureFixture[str], rules: Path
) -> None:
    code, _, err = run(capsys, "notify-test", "unset", str(rules))
    assert code == 1
    assert "NOT_SET_ANYWHERE is not set" in err


def test_notify_test_of_the_console_needs_no_rule_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "notify-test", "console")
    assert code == 0
    assert "[FIRING:warning] notify-test" in out
