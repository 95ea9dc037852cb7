"""`memalert test` notification checks: `notification_test` with `exp_notifications`."""

from __future__ import annotations

from pathlib import Path

import pytest

from memalert.engine.cli.main import main

RULES = """\
version: 1
rules:
  - name: high-rss
    metric: rss_bytes
    above: {warning: 100MiB}
    labels: {team: core}
notifiers:
  pager: {urls: ["json://127.0.0.1:9/pager"]}
routes:
  - notify: [pager]
    group_by: [team]
    group_wait: 30s
    group_interval: 1m
"""

TESTS = """\
rule_files: [rules.yaml]
evaluation_interval: 15s
tests:
  - name: one group for the team
    input_series:
      - {target: api, metric: rss_bytes, values: "150MiBx8 50MiBx8"}
      - {target: db, metric: rss_bytes, values: "50MiB 150MiBx15"}
    notification_test:
      - eval_time: 15s
        exp_notifications: []
      - eval_time: 40s            # the evaluation at 30s: group_wait is over
        exp_notifications:
          - notifier: pager
            group: {team: core}
            alerts:
              - {rule: high-rss, labels: {target: db, team: core}}
              - rule: high-rss
                labels: {target: api, team: core}
                state: firing
                severity: warning
      - eval_time: 90s            # the flush at 90s: nothing new
        exp_notifications: []
      - eval_time: 150s           # api resolved at 135s, sent at the flush at 150s
        exp_notifications:
          - notifier: pager
            alerts:
              - {rule: high-rss, labels: {target: db, team: core}}
              - {rule: high-rss, labels: {target: api, team: core}, state: resolved}
"""


def _write(tmp_path: Path, tests: str = TESTS, rules: str = RULES) -> str:
    (tmp_path / "rules.yaml").write_text(rules)
    path = tmp_path / "rules_test.yaml"
    path.write_text(tests)
    return str(path)


def test_notifications_of_a_group_are_asserted_at_their_evaluation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test", _write(tmp_path)]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out.strip().endswith("1 passed, 0 failed")


def test_a_wrong_expectation_prints_what_was_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = TESTS.replace("state: resolved", "state: firing")
    assert main(["test", _write(tmp_path, wrong)]) == 1
    out = capsys.readouterr().out
    assert "notifications at eval_time 2m30s:" in out
    assert (
        "    pager group {team=core}: firing warning high-rss {target=db, team=core}, "
        "resolved warning high-rss {target=api, team=core}"
    ) in out


def test_notifications_without_grouping_have_no_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = RULES.split("    group_by", maxsplit=1)[0]
    tests = TESTS.split("    notification_test:", maxsplit=1)[0] + (
        "    notification_test:\n"
        "      - eval_time: 0s\n"
        "        exp_notifications:\n"
        "          - notifier: pager\n"
        "            group: null\n"
        "            alerts: [{rule: high-rss, labels: {target: api, team: core}}]\n"
        "      - eval_time: 15s\n"
        "        exp_notifications:\n"
        "          - notifier: pager\n"
        "            alerts: [{rule: high-rss, labels: {target: db, team: core}}]\n"
    )
    assert main(["test", _write(tmp_path, tests, plain)]) == 0, capsys.readouterr().out


def test_a_bad_expectation_is_refused_at_its_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = TESTS.replace("state: resolved", "state: gone")
    path = _write(tmp_path, bad)
    assert main(["test", path]) == 2
    err = capsys.readouterr().err
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "state: gone" in text)
    assert f"{path}:{line}:" in err
    assert "gone" in err
