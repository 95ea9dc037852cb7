"""Fuzz of hostile rule files through `memalert check` and a short `dry-run`: clean errors only.

Every generated file (tests/hostile_rules.py: unbounded templates, huge, tiny and
negative durations and sizes, far times, deep nesting, odd types, backtracking
regular expressions, odd pids) gets exit 0, 1 or 2 from `check`, every error
line is `FILE:LINE:COL: message` (or `error: message`), never a traceback; a file
that passes then replays cleanly. bench/hostile_fuzz.py runs the same generator
through the installed CLI and reports the counts and the slowest run.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from hostile_rules import CLEAN_LINE, OBSERVATIONS, hostile_rule_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memalert.engine.cli.main import main

if TYPE_CHECKING:
    from pathlib import Path


def _clean(err: str) -> None:
    assert "Traceback" not in err
    assert "internal error" not in err
    for line in err.splitlines():
        assert CLEAN_LINE.match(line), line


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.data())
def test_hostile_rule_files_get_clean_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: st.DataObject
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(hostile_rule_file(lambda options: data.draw(st.sampled_from(options))))
    observations = tmp_path / "obs.jsonl"
    observations.write_text(OBSERVATIONS)
    capsys.readouterr()
    checked = main(["check", str(rules)])
    _, err = capsys.readouterr()
    assert checked in {0, 1, 2}
    _clean(err)
    if checked == 0:
        replayed = main(["dry-run", str(rules), "--observations", str(observations)])
        out, err = capsys.readouterr()
        assert replayed == 0
        _clean(err)
        assert "transitions" in out
    else:
        assert re.search(rf"{re.escape(str(rules))}:\d+:\d+: ", err), err
