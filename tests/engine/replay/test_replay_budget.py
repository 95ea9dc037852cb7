"""Replays and rule tests that would run for hours are refused before they start.

`dry-run` and `test` count the evaluations a run needs from its input and refuse
more than `--max-evaluations` (default 1,000,000), naming the input (the file
and flag, or FILE:LINE:COL of the `eval_time`) with no traceback and no output.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from memalert.engine.cli.main import main
from memalert.engine.replay.budget import MAX_EVALUATIONS, grid_points

if TYPE_CHECKING:
    from pathlib import Path

RULES = """\
version: 1
interval: 15s
rules:
  - name: high-rss
    metric: rss_bytes
    above: {warning: 100MiB}
"""


def write_observations(tmp_path: Path, stamps: list[float]) -> tuple[Path, Path]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    observations = tmp_path / "obs.jsonl"
    observations.write_text(
        "".join(
            json.dumps({"ts": ts, "target": "api", "metrics": {"rss_bytes": 1.0}}) + "\n"
            for ts in stamps
        )
    )
    return rules, observations


def test_observations_spanning_decades_are_refused_naming_the_file_and_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, observations = write_observations(tmp_path, [0.0, 1_764_000_000.0])
    assert main(["dry-run", str(rules), "--observations", str(observations)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert str(observations) in err
    assert "--max-evaluations" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("limit", "code"), [("3", 2), ("4", 0)])
def test_the_limit_counts_every_evaluation_of_a_replay(
    tmp_path: Path, limit: str, code: int
) -> None:
    # 0 s, 15 s, 30 s, 45 s: four evaluations on the 15 s grid.
    rules, observations = write_observations(tmp_path, [0.0, 15.0, 30.0, 45.0])
    argv = ["dry-run", str(rules), "--observations", str(observations)]
    assert main([*argv, "--max-evaluations", limit]) == code


@pytest.mark.parametrize("limit", ["0", "-5", "ten", "\u0661\u0660", "1e6"])
def test_a_bad_limit_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    rules, observations = write_observations(tmp_path, [0.0])
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "dry-run",
                str(rules),
                "--observations",
                str(observations),
                f"--max-evaluations={limit}",
            ]
        )
    assert exit_info.value.code == 2
    assert "--max-evaluations" in capsys.readouterr().err


def test_grid_points_match_the_replay_and_rule_test_loops() -> None:
    assert grid_points(45.0, 15.0, through_end=True) == 4
    assert grid_points(46.0, 15.0, through_end=True) == 5  # a replay runs past the last one
    assert grid_points(46.0, 15.0, through_end=False) == 4  # a test stops at or before it
    assert grid_points(0.0, 15.0, through_end=True) == 1
    assert grid_points(1e308, 1e-300, through_end=False) > MAX_EVALUATIONS
    assert grid_points(60.0, 0.0, through_end=True) > MAX_EVALUATIONS


def write_test_file(tmp_path: Path, body: str) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text("rule_files: [rules.yaml]\n" + body)
    return test_file


@pytest.mark.parametrize(
    ("body", "position"),
    [
        pytest.param(
            "evaluation_interval: 1m\n"
            "tests:\n"
            "  - input_series: []\n"
            "    alert_rule_test:\n"
            "      - rule: high-rss\n"
            "        eval_time: 1000000w\n",
            "rules_test.yaml:7:20:",
            id="eval-time-of-a-million-weeks",
        ),
        pytest.param(
            "evaluation_interval: 1ms\n"
            "tests:\n"
            "  - input_series: []\n"
            "    alert_rule_test:\n"
            "      - {rule: high-rss, eval_time: 1d}\n",
            "rules_test.yaml:6:37:",
            id="a-day-every-millisecond",
        ),
    ],
)
def test_a_rule_test_that_never_ends_is_refused_at_its_eval_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, position: str
) -> None:
    test_file = write_test_file(tmp_path, body)
    assert main(["test", str(test_file)]) == 2
    out, err = capsys.readouterr()
    assert position in err
    assert "--max-evaluations" in err
    assert "Traceback" not in err
    assert out.strip() == "0 passed, 0 failed"


def test_the_limit_is_for_all_tests_of_a_file_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each test evaluates 0s .. 15m every 15 s: 61 evaluations; two need 122.
    case = "  - input_series: []\n    alert_rule_test:\n      - {rule: high-rss, eval_time: 15m}\n"
    test_file = write_test_file(tmp_path, "evaluation_interval: 15s\ntests:\n" + case * 2)
    assert main(["test", str(test_file), "--max-evaluations", "122"]) == 0
    capsys.readouterr()
    assert main(["test", str(test_file), "--max-evaluations", "121"]) == 2
    err = capsys.readouterr().err
    assert "rules_test.yaml:9:" in err  # the second test's eval_time
    assert "the tests before it left 60" in err


@pytest.mark.parametrize(
    ("values", "line"),
    [
        pytest.param('"_x99999999999"', 4, id="one-huge-missing-run"),
        pytest.param('"1+1x99999999999"', 4, id="one-huge-expansion"),
        pytest.param('"_x600000"', 5, id="two-series-over-the-file-limit"),
    ],
)
def test_input_series_are_bounded_for_the_whole_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], values: str, line: int
) -> None:
    test_file = write_test_file(
        tmp_path,
        "tests:\n"
        "  - input_series:\n"
        f"      - {{target: a, metric: rss_bytes, values: {values}}}\n"
        f"      - {{target: b, metric: rss_bytes, values: {values}}}\n"
        "    alert_rule_test: []\n",
    )
    assert main(["test", str(test_file)]) == 2
    assert f"rules_test.yaml:{line}:" in capsys.readouterr().err
