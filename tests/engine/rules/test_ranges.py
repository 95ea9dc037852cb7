"""Every duration, size and time has a range `check` enforces; stored times always read back.

Before the ranges, `interval: 100000000000000s` passed `check` and `run` exited 70
(OverflowError), `interval: 0.0001ms` passed and /health stayed unhealthy, and a
silence ending in the year 20000 made `status` and `silence list` crash.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from memalert.engine.cli.main import main
from memalert.engine.core.units import rfc3339
from memalert.engine.http.app import parse_silence
from memalert.engine.rules.load import check_paths
from memalert.engine.store.silences import InvalidSilenceError
from memalert.engine.store.state import StateStore

RULE = """\
version: 1
interval: {interval}
repeat_interval: {repeat}
rules:
  - name: r
    metric: {metric}
    above: {{warning: {warning}}}
    for: {for_}
    keep_firing_for: {keep}
silences:
  - match: {{rule: r}}
    starts: "{starts}"
    ends: "{ends}"
"""
GOOD = {
    "interval": "15s",
    "repeat": "4h",
    "metric": "rss_bytes",
    "warning": "50MiB",
    "for_": "1m",
    "keep": "0s",
    "starts": "2026-01-01T00:00:00Z",
    "ends": "2026-01-02T00:00:00Z",
}
LINES = {"interval": 2, "repeat": 3, "warning": 7, "for_": 8, "keep": 9, "starts": 12, "ends": 13}


def _check(tmp_path: Path, **fields: str) -> list[str]:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.format(**{**GOOD, **fields}))
    return [str(d) for d in check_paths([path])]


def test_the_example_is_in_range(tmp_path: Path) -> None:
    assert _check(tmp_path) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interval", "100000000000000s"),
        ("interval", "0.0001ms"),
        ("interval", "99ms"),
        ("interval", "2d"),
        ("repeat", "0.5s"),
        ("repeat", "366d"),
        ("repeat", "100000000000000"),
        ("for_", "366d"),
        ("for_", "1.0e+300"),
        ("keep", "9999999w"),
        ("warning", "8388609TiB"),
        ("warning", "1e30"),
        ("warning", "-5"),
        ("starts", "9999-12-31T23:59:59-01:00"),
        ("ends", "9999-12-31T23:59:59-23:59"),
        ("starts", "1900-01-01T00:00:00Z"),
    ],
)
def test_a_value_out_of_its_range_is_refused_with_file_line_col(
    tmp_path: Path, field: str, value: str
) -> None:
    errors = _check(tmp_path, **{field: value})
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{tmp_path / 'rules.yaml'}:{LINES[field]}:")
    assert "must be" in errors[0]
    assert "docs/rules.md" in errors[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interval", "1s"),
        ("interval", "1d"),
        ("repeat", "365d"),
        ("for_", "365d"),
        ("keep", "0"),
        ("warning", "8388608TiB"),
        ("starts", "1970-01-01T00:00:00Z"),
        ("ends", "9999-12-31T23:59:59Z"),
    ],
)
def test_the_ends_of_each_range_are_accepted(tmp_path: Path, field: str, value: str) -> None:
    assert _check(tmp_path, **{field: value}) == []


@pytest.mark.parametrize(
    ("metric", "value"),
    [("time_to_limit_seconds", "40000d"), ("leak_growth_bytes_per_hour", "1e30")],
)
def test_thresholds_of_other_units_have_ranges_too(tmp_path: Path, metric: str, value: str) -> None:
    errors = _check(tmp_path, metric=metric, warning=value)
    assert any(":7:" in e and "must be" in e for e in errors), errors


# -- silences: bounded at input, and rows already stored always read ---------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exited:  # argparse refusing an option
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "until",
    [
        ["--duration", "1000000000w"],
        ["--until", "9999-12-31T23:59:59-23:00"],
        ["--duration", "5000000w"],  # from now: past the year 9999
    ],
)
def test_the_cli_refuses_a_silence_ending_past_the_range(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, until: list[str]
) -> None:
    state = str(tmp_path / "state.db")
    code, _, err = _cli(capsys, "silence", "add", "--match", "a=b", *until, "--state", state)
    assert code == 2
    assert "must be" in err
    assert "Traceback" not in err


def test_http_refuses_a_silence_ending_past_the_range(tmp_path: Path) -> None:
    now = time.time()
    silence = parse_silence(json.dumps({"match": {"a": "b"}, "duration": "5000000w"}).encode(), now)
    with StateStore(tmp_path / "state.db") as store, pytest.raises(InvalidSilenceError):
        store.add_silence(matchers={"a": "b"}, starts=silence.starts, ends=silence.ends, now=now)


def test_a_stored_silence_past_the_range_still_lists(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    now = time.time()
    with StateStore(state) as store:
        store.add_silence(matchers={"a": "b"}, starts=now, ends=now + 3600, now=now)
    # A row written by an older version, which took any end time.
    with sqlite3.connect(state) as conn:
        conn.execute("UPDATE silences SET ends = 1e300")
    for argv in (["silence", "list"], ["silence", "list", "--format", "json"], ["status"]):
        code, out, err = _cli(capsys, *argv, "--state", str(state))
        assert code == 0, err
        assert "internal error" not in err
        if "json" in argv:  # the one silence view (HTTP and CLI) gives unix seconds
            assert json.loads(out)[0]["ends"] == 1e300
        else:
            assert "9999-12-31T23:59:59Z" in out


@pytest.mark.parametrize("ts", [1e300, -1e300, float("nan"), float("inf"), 253402300800.5])
def test_rfc3339_shows_any_stored_time(ts: float) -> None:
    assert rfc3339(ts)[:4] in {"9999", "0001"}
