"""`memalert test`: promtool-style files, pending assertions, failure output, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from memalert.engine.cli.main import main

RULES = """\
version: 1
rules:
  - name: high-rss
    metric: rss_bytes
    above: {warning: 100MiB, critical: 200MiB}
    for: 30s
    labels: {team: core}
    summary: "{{ target }} at {{ value | bytes }}"
"""


def write_case(tmp_path: Path, tests_yaml: str, rules: str = RULES) -> Path:
    (tmp_path / "rules.yaml").write_text(rules)
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text("rule_files: [rules.yaml]\nevaluation_interval: 15s\n" + tests_yaml)
    return test_file


PASSING = """\
tests:
  - name: grows
    input_series:
      - {target: api, metric: rss_bytes, values: "50MiB 150MiBx3 250MiBx3"}
    alert_rule_test:
      - eval_time: 15s
        rule: high-rss
        exp_alerts:
          - {state: pending, severity: warning, labels: {target: api, team: core}}
      - eval_time: 45s
        rule: high-rss
        exp_alerts:
          - {severity: warning, labels: {target: api, team: core}, summary: "api at 150.0 MiB"}
      - eval_time: 1m50s
        rule: high-rss
        exp_alerts:
          - {state: firing, severity: critical, labels: {target: api, team: core}}
"""


def test_passing_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(write_case(tmp_path, PASSING))]) == 0
    assert capsys.readouterr().out.strip().endswith("1 passed, 0 failed")


def test_failure_prints_expected_and_got(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = PASSING.replace("severity: critical", "severity: warning")
    assert main(["test", str(write_case(tmp_path, failing))]) == 1
    out = capsys.readouterr().out
    assert "test 'grows', rule high-rss at eval_time 1m50s" in out
    assert "expected:\n    firing warning {target=api, team=core}" in out
    assert "got:\n    firing critical {target=api, team=core}" in out
    assert out.strip().endswith("0 passed, 1 failed")


def test_pending_is_only_compared_when_asked(tmp_path: Path) -> None:
    quiet = """\
tests:
  - input_series:
      - {target: api, metric: rss_bytes, values: "150MiB"}
    alert_rule_test:
      - {eval_time: 0s, rule: high-rss, exp_alerts: []}
"""
    assert main(["test", str(write_case(tmp_path, quiet))]) == 0
    strict = quiet.replace("rule: high-rss,", "rule: high-rss, include_pending: true,")
    assert main(["test", str(write_case(tmp_path, strict))]) == 1


@pytest.mark.parametrize(
    ("tests_yaml", "message"),
    [
        pytest.param("tests: 3\n", "rules_test.yaml:3:", id="wrong-type"),
        pytest.param(
            "tests:\n  - input_series: []\n    alert_rule_test: []\n    intervall: 1m\n",
            "intervall",
            id="unknown-key",
        ),
        pytest.param(
            "tests:\n  - input_series:\n      - {target: a, metric: rss_bytes, values: '1+x'}\n"
            "    alert_rule_test: []\n",
            "rules_test.yaml:5:",
            id="bad-values",
        ),
        pytest.param(
            "tests:\n  - input_series: []\n    alert_rule_test:\n"
            "      - {eval_time: soon, rule: x}\n",
            "cannot read duration 'soon'",
            id="bad-duration",
        ),
    ],
)
def test_bad_test_file_exits_2_with_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tests_yaml: str, message: str
) -> None:
    assert main(["test", str(write_case(tmp_path, tests_yaml))]) == 2
    out, err = capsys.readouterr()
    # Diagnostics go to stderr, like every other command's; the results stay on stdout.
    assert message in err
    assert message not in out
    assert "passed" in out


def test_bad_rule_file_named_by_a_test_exits_1_as_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test_file = write_case(tmp_path, PASSING, rules=RULES.replace("above", "abovee"))
    assert main(["test", str(test_file)]) == 1
    assert "rules.yaml:" in capsys.readouterr().err


def test_missing_test_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_shipped_rule_tests_pass() -> None:
    root = Path(__file__).resolve().parents[3]
    assert main(["test", str(root / "rules" / "tests")]) == 0


PER_LEVEL_FOR = RULES.replace("for: 30s", "for: {warning: 1m, critical: 15s}")


def test_for_per_level_in_a_test_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Critical waits 15s, warning 1m: critical fires first, resolves when the value
    # falls between the thresholds at 45s, and warning, pending since 0s, fires at 1m.
    tests_yaml = """\
tests:
  - name: per-level-for
    input_series:
      - {target: api, metric: rss_bytes, values: "250MiBx2 150MiBx6"}
    alert_rule_test:
      - eval_time: 0s
        rule: high-rss
        exp_alerts:
          - {state: pending, severity: critical, labels: {target: api, team: core}}
      - eval_time: 15s
        rule: high-rss
        exp_alerts:
          - {severity: critical, labels: {target: api, team: core}}
      - eval_time: 45s
        rule: high-rss
        exp_alerts:
          - {state: pending, severity: warning, labels: {target: api, team: core}}
      - eval_time: 1m
        rule: high-rss
        exp_alerts:
          - {severity: warning, labels: {target: api, team: core}}
"""
    test_file = write_case(tmp_path, tests_yaml, PER_LEVEL_FOR)
    assert main(["test", str(test_file)]) == 0, capsys.readouterr().out
