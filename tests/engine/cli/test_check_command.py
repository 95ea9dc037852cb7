"""`memalert check`: an unset `${VAR}` is a warning at FILE:LINE:COL, an error with --strict-env."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memalert.engine.cli.main import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

RULES = """\
version: 1
targets:
  - {name: app, pidfile: "${APP_PIDFILE}"}
notifiers:
  mail:
    urls: ["mailtos://${SMTP_USER}:${SMTP_PASSWORD}@smtp.example.com?to=ops@example.com"]
"""


def _check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *flags: str
) -> tuple[int, list[str], str]:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    code = main(["check", *flags, str(path)])
    captured = capsys.readouterr()
    return code, [line.replace(f"{path}:", "") for line in captured.err.splitlines()], captured.out


def test_unset_variables_are_warnings_naming_where_they_are_used(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("APP_PIDFILE", "SMTP_USER", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMTP_USER", "alerts")
    code, err, out = _check(capsys, tmp_path)
    assert code == 0
    assert out.startswith("ok: ")
    assert err[:2] == [
        "3:27: warning: environment variable APP_PIDFILE is not set: `run` leaves target 'app' out",
        (
            "6:36: warning: environment variable SMTP_PASSWORD is not set: `run` and "
            "`notify-test` refuse notifier 'mail'"
        ),
    ]
    assert len(err) == 3  # and the count


def test_strict_env_makes_unset_variables_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("APP_PIDFILE", "SMTP_USER", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    code, err, out = _check(capsys, tmp_path, "--strict-env")
    assert code == 1
    assert out == ""
    assert [line.split(": ", 1)[0] for line in err] == ["3:27", "6:23", "6:36", "3 error(s)"]


def test_nothing_is_said_when_every_variable_is_set(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("APP_PIDFILE", "SMTP_USER", "SMTP_PASSWORD"):
        monkeypatch.setenv(name, "x")
    assert _check(capsys, tmp_path, "--strict-env")[:2] == (0, [])


MATCHERS = """\
version: 1
rules:
  - {name: high-rss, metric: rss_bytes, above: {warning: 1MiB}, labels: {team: core}}
routes:
  - {match: {tema: core, host: "!db"}, notify: [console]}
inhibit_rules:
  - {source_matchers: {rule: high-rss}, target_matchers: {team: core, cluster: "*"}}
silences:
  - {match: {target: api}, starts: 2026-12-01T00:00:00Z, ends: 2026-12-02T00:00:00Z}
"""


def test_a_matcher_on_a_label_no_rule_produces_is_a_warning_not_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(MATCHERS)
    assert main(["check", "--strict-env", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ok: ")
    lines = [line.replace(f"{path}:", "") for line in captured.err.splitlines()]
    # A negated matcher on a missing label always matches: no warning for `host`.
    assert lines == [
        (
            "5:14: warning: 'match.tema' of route #1: no rule's alerts carry label 'tema', so it "
            "matches no alert (they carry rule, severity, target, team); did you mean 'team'?"
        ),
        (
            "7:71: warning: 'target_matchers.cluster' of inhibit rule #1: no rule's alerts carry "
            "label 'cluster', so it matches no alert (they carry rule, severity, target, team)"
        ),
        "2 warning(s) about matchers",
    ]


def test_routes_checked_without_any_rule_are_not_warned_about(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("version: 1\nroutes:\n  - {match: {team: core}, notify: [console]}\n")
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().err == ""
