"""One exit-code policy (memalert.engine.core.errors): every command takes it from the error class.

Before, `main`, each command and the daemon decided: an invalid rule file was
exit 1 for `check` and `run` but 2 for `dry-run`, `test`, `record` and
`notify-test`; a NotifierError's position was formatted into text and parsed back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from memalert.engine.cli import main as cli_main
from memalert.engine.cli.main import main
from memalert.engine.core.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERNAL,
    Diagnostic,
    MemalertError,
    RuleFileError,
)
from memalert.engine.core.model import Position
from memalert.engine.store.silences import InvalidSilenceError
from memalert.engine.store.state import StateStoreError
from memalert.notifiers.base import NotifierError

INVALID = "version: 1\nrules:\n  - name: r\n    metric: rss_bytez\n    above: {warning: 1MiB}\n"


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """`run` adds its log handler to the root logger, on a stream pytest closes afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def invalid(tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(INVALID)
    return str(path)


def _commands(rules: str, tmp: Path) -> dict[str, list[str]]:
    test_file = tmp / "t.yaml"
    test_file.write_text(
        f"rule_files: [{rules}]\ntests:\n  - name: t\n    input_series:\n"
        '      - {target: a, metric: rss_bytes, values: "1 2"}\n'
        "    alert_rule_test:\n      - {eval_time: 15s, rule: r, exp_alerts: []}\n"
    )
    observations = tmp / "o.jsonl"
    observations.write_text('{"ts": 1, "target": "a", "metrics": {"rss_bytes": 1}}\n')
    out = str(tmp / "out.jsonl")
    return {
        "check": ["check", rules],
        "dry-run": ["dry-run", rules, "--observations", str(observations)],
        "test": ["test", str(test_file)],
        "record": ["record", "--rules", rules, "--out", out, "--duration", "0s"],
        "notify-test": ["notify-test", "console", rules],
        "run": ["run", rules, "--state", str(tmp / "state.db")],
    }


@pytest.mark.parametrize("command", ["check", "dry-run", "test", "record", "notify-test", "run"])
def test_an_invalid_rule_file_is_exit_1_for_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, invalid: str, command: str
) -> None:
    assert main(_commands(invalid, tmp_path)[command]) == RuleFileError.exit_code == EXIT_FAILED
    captured = capsys.readouterr()
    assert f"{invalid}:4:13: unknown metric 'rss_bytez'" in captured.err
    assert "Traceback" not in captured.err


def test_bad_observations_are_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, invalid: str
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(INVALID.replace("rss_bytez", "rss_bytes"))
    observations = tmp_path / "bad.jsonl"
    observations.write_text("{not json\n")
    assert main(["dry-run", str(good), "--observations", str(observations)]) == EXIT_BAD_INPUT
    assert f"{observations}:1:2: invalid JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RuleFileError([Diagnostic(file="f", line=1, col=2, message="bad")]), 1),
        (NotifierError.about("n", "no such scheme"), 1),
        (StateStoreError("state file s: locked"), 2),
        (InvalidSilenceError("a silence must end in the future"), 2),
        (MemalertError("anything else"), 2),
    ],
)
def test_main_exits_with_the_error_class_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: MemalertError,
    code: int,
) -> None:
    def fail(_args: object) -> int:
        raise error

    monkeypatch.setattr(cli_main, "cmd_check", fail)
    assert main(["check", "x"]) == code == type(error).exit_code
    err = capsys.readouterr().err
    assert err.splitlines()[0] in {"f:1:2: bad", f"error: {error.diagnostics[0].message}"}


def test_a_bug_is_exit_70_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(_args: object) -> int:
        raise RuntimeError("oops")

    monkeypatch.setattr(cli_main, "cmd_check", fail)
    assert main(["check", "x"]) == EXIT_INTERNAL
    assert "Traceback" not in capsys.readouterr().err


def test_a_notifier_error_keeps_its_position_as_data() -> None:
    position = Position(file="rules.yaml", line=7, col=5)
    error = NotifierError.combine(
        [
            NotifierError.about("chat", "unset ${X}", position=position),
            NotifierError.about("b", "?"),
        ]
    )
    assert error.diagnostics == (
        Diagnostic(file="rules.yaml", line=7, col=5, message="notifier 'chat': unset ${X}"),
        Diagnostic(file="", line=0, col=0, message="notifier 'b': ?"),
    )
    assert str(error) == "rules.yaml:7:5: notifier 'chat': unset ${X}\nnotifier 'b': ?"
