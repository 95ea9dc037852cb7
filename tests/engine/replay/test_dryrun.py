"""`memalert dry-run`: replay, text and JSON output, --fail-on, masking, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from memalert.engine.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
MiB = 2**20

RULES = """\
version: 1
rules:
  - name: leak
    metric: leak_bytes
    above: {warning: 50MiB, critical: 100MiB}
    notify: [hook]
    summary: "{{ target }} leaks {{ value | bytes }}"
notifiers:
  hook: {urls: ["json://${HOOK_USER}:${HOOK_PASSWORD}@127.0.0.1:9/alerts"]}
"""


def write_inputs(tmp_path: Path, values: list[float]) -> tuple[Path, Path]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    observations = tmp_path / "obs.jsonl"
    lines = [
        json.dumps({"ts": 1_764_000_000 + 15 * i, "target": "api", "metrics": {"leak_bytes": v}})
        for i, v in enumerate(values)
    ]
    observations.write_text("\n".join(lines) + "\n")
    return rules, observations


def test_json_output_is_one_object_per_transition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, obs = write_inputs(tmp_path, [0, 60 * MiB, 120 * MiB, 10 * MiB])
    assert main(["dry-run", str(rules), "--observations", str(obs), "--format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["event"], r["severity"]) for r in records] == [
        ("firing", "warning"),
        ("escalated", "critical"),
        ("resolved", "critical"),
    ]
    first = records[0]
    assert first == {
        "at": "2025-11-24T16:00:15Z",
        "event": "firing",
        "rule": "leak",
        "severity": "warning",
        "labels": {"target": "api"},
        "value": 60 * MiB,
        "notify": ["hook"],
        "message": "api leaks 60.0 MiB",
        "reason": "",
        "silenced": False,
    }


def test_text_output_groups_messages_per_notifier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, obs = write_inputs(tmp_path, [0, 60 * MiB])
    assert main(["dry-run", str(rules), "--observations", str(obs)]) == 0
    out = capsys.readouterr().out
    assert "firing      warning  leak {target=api} value=60.0 MiB" in out
    assert "-> hook: [memalert] FIRING warning: leak on api" in out
    assert out.strip().endswith(
        "1 transitions, 1 notifications would be sent; highest severity fired: warning"
    )


@pytest.mark.parametrize(
    ("values", "fail_on", "code"),
    [
        pytest.param([60 * MiB], "warning", 1, id="warning-fails-on-warning"),
        pytest.param([60 * MiB], "critical", 0, id="warning-passes-on-critical"),
        pytest.param([120 * MiB], "critical", 1, id="critical-fails-on-critical"),
        pytest.param([0.0], "warning", 0, id="nothing-fired"),
    ],
)
def test_fail_on(tmp_path: Path, values: list[float], fail_on: str, code: int) -> None:
    rules, obs = write_inputs(tmp_path, values)
    argv = ["dry-run", str(rules), "--observations", str(obs), "--fail-on", fail_on]
    assert main(argv) == code


def test_bad_observations_exit_2_naming_every_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, obs = write_inputs(tmp_path, [1.0])
    obs.write_text(
        '{"ts": 1, "target": "a", "metrics": {"rss_bytes": 1}}\n'
        "{not json\n"
        '{"ts": 2, "target": "a", "metric": {"rss_bytes": 1}}\n'
        '{"ts": "yesterday", "target": "a", "metrics": {"rss_bytes": 1}}\n'
    )
    assert main(["dry-run", str(rules), "--observations", str(obs)]) == 2
    err = capsys.readouterr().err
    assert f"{obs}:2:2: invalid JSON" in err
    assert f"{obs}:3:1: unknown key 'metric'; did you mean 'metrics'?" in err
    assert f"{obs}:4:1: 'ts' 'yesterday' is not RFC 3339" in err


@pytest.mark.parametrize(
    "record",
    [
        pytest.param({"ts": 1e300}, id="ts-beyond-time_t"),
        pytest.param({"ts": -1e300}, id="ts-before-time_t"),
        pytest.param({"ts": 253_402_300_800}, id="ts-year-10000"),
        pytest.param({"ts": -62_135_596_801}, id="ts-year-0"),
        pytest.param({"ts": "0001-01-01T00:00:00+01:00"}, id="rfc3339-year-0-in-utc"),
        pytest.param({"ts": "9999-12-31T23:59:59-01:00"}, id="rfc3339-year-10000-in-utc"),
        pytest.param({"target": "a\udcff"}, id="target-lone-surrogate"),
        pytest.param({"component": "\ud800"}, id="component-lone-surrogate"),
        pytest.param({"labels": {"team": "x\udfff"}}, id="label-value-lone-surrogate"),
        pytest.param({"labels": {"\udc80": "x"}}, id="label-name-lone-surrogate"),
        pytest.param({"metrics": {"rss\udcff": 1}}, id="metric-name-lone-surrogate"),
    ],
)
def test_observations_no_time_or_text_can_hold_are_refused_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], record: dict[str, object]
) -> None:
    rules, obs = write_inputs(tmp_path, [60 * MiB])
    good = {"ts": 1_764_000_000, "target": "api", "metrics": {"leak_bytes": 60 * MiB}}
    obs.write_text(json.dumps(good) + "\n" + json.dumps({**good, **record}) + "\n")
    for output_format in ("text", "json"):
        assert (
            main(["dry-run", str(rules), "--observations", str(obs), "--format", output_format])
            == 2
        )
        err = capsys.readouterr().err
        assert err.startswith(f"{obs}:2:1: "), err
        assert "internal error" not in err


def test_an_out_of_range_time_is_refused_with_the_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, obs = write_inputs(tmp_path, [1.0])
    obs.write_text('{"ts": -1e12, "target": "a", "metrics": {"rss_bytes": 1}}\n')
    assert main(["dry-run", str(rules), "--observations", str(obs)]) == 2
    assert "(0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\x01\x02binary", id="binary"),
        pytest.param(b'{"ts": 1, "target": "\xff", "metrics": {"x": 1}}\n', id="not-utf8"),
    ],
)
def test_unreadable_observations_exit_2(tmp_path: Path, content: bytes) -> None:
    rules, obs = write_inputs(tmp_path, [1.0])
    obs.write_bytes(content)
    assert main(["dry-run", str(rules), "--observations", str(obs)]) == 2


def test_missing_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules, _ = write_inputs(tmp_path, [1.0])
    assert main(["dry-run", str(rules), "--observations", str(tmp_path / "none.jsonl")]) == 2
    assert "none.jsonl" in capsys.readouterr().err


def test_secrets_are_masked_in_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A secret that reaches the output through data (here a target name) is masked."""
    rules, obs = write_inputs(tmp_path, [60 * MiB])
    secret = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXX"
    obs.write_text(json.dumps({"ts": 1, "target": secret, "metrics": {"leak_bytes": 1e9}}) + "\n")
    assert main(["dry-run", str(rules), "--observations", str(obs)]) == 0
    out = capsys.readouterr().out
    assert "firing" in out
    assert "XXXXXXXXXXXXXXXXXXXX" not in out


def test_literal_secret_in_rules_is_refused_and_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, obs = write_inputs(tmp_path, [60 * MiB])
    rules.write_text(RULES.replace('summary: "', 'summary: "xoxb-123456789-abcdefghij '))
    assert main(["dry-run", str(rules), "--observations", str(obs)]) == 1  # invalid rules
    err = capsys.readouterr().err
    assert "literal secret" in err
    assert "xoxb-123456789-abcdefghij" not in err


def test_sample_trace_through_the_console_script_has_no_traceback() -> None:
    """The README's first command, run as a user would, through the detector."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "memalert.engine.cli",
            "dry-run",
            "rules/memory.yaml",
            "--observations",
            "docs/samples/leaky-api.jsonl",
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    fired = [(e["event"], e["severity"]) for e in events if e["rule"] == "memory-leak"]
    # The leak starts an hour in; by the time it is proven it is past the critical level.
    assert ("firing", "critical") in fired
    assert all(e["labels"]["target"] == "api" for e in events)


def test_repeats_appear_in_both_formats_each_at_its_own_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `repeat_interval: 3m`, a 10-minute firing alert is sent at 0, 3, 6 and 9 minutes."""
    rules, obs = write_inputs(tmp_path, [60 * MiB] * 41)
    rules.write_text(RULES.replace("version: 1\n", "version: 1\nrepeat_interval: 3m\n"))
    expected = ["2025-11-24T16:00:00Z", "2025-11-24T16:03:00Z", "2025-11-24T16:06:00Z"]
    expected.append("2025-11-24T16:09:00Z")

    assert main(["dry-run", str(rules), "--observations", str(obs), "--format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    sent = [(r["at"], r["event"]) for r in records if r["notify"] == ["hook"]]
    assert sent == list(zip(expected, ["firing", "repeated", "repeated", "repeated"], strict=True))

    assert main(["dry-run", str(rules), "--observations", str(obs)]) == 0
    out = capsys.readouterr().out
    assert [line.split("  -> ")[0] for line in out.splitlines() if "  -> hook: " in line] == (
        expected
    )
    assert "1 transitions, 4 notifications would be sent" in out


def test_text_output_ends_with_what_the_detector_thinks_of_each_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, obs = write_inputs(tmp_path, [])
    # Four hours of steady RSS growth: real, but too young a life to be a leak yet.
    lines = [
        json.dumps(
            {
                "ts": 1_764_000_000 + 15 * i,
                "target": "api",
                "metrics": {"rss_bytes": 400 * MiB + 20 * MiB * i * 15 / 3600 + (i % 7) * MiB},
            }
        )
        for i in range(4 * 240)
    ]
    obs.write_text("\n".join(lines) + "\n")
    assert main(["dry-run", str(rules), "--observations", str(obs)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-2].startswith("detector: api: growing, not yet a leak (confidence 0.4")
    assert "younger than min_life" in out[-2]
    assert out[-1].startswith("0 transitions")
