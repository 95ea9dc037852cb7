"""`memalert record`: paced sampling on a FakeClock, the file format, and real round trips."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from memchildren import MiB, allocating_children

from memalert.engine.cli.main import main
from memalert.engine.core.model import Labels, Sample, TargetSpec
from memalert.engine.live.record import RecordProgress, _Terminal, record
from memalert.engine.replay.observations import (
    observation_records,
    read_observations,
    write_observations,
)
from memalert.engine.sources.tracker import MemoryTracker
from memalert.engine.testing import FakeClock

ROOT = Path(__file__).resolve().parents[3]
PROC = ROOT / "tests" / "fixtures" / "proc"
API = TargetSpec(name="api", kind="pid", pid=4242)
GONE = TargetSpec(name="gone", kind="pid", pid=999_999)
WAIT = 30.0


class TtyBuffer(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class SlowTracker(MemoryTracker):
    """Each reading takes `cost` seconds of the fake clock."""

    def __init__(self, clock: FakeClock, cost: float) -> None:
        super().__init__(4242, proc_root=PROC, clock=clock)
        self._fake_clock = clock
        self._cost = cost

    def sample_targets(self, targets: Sequence[TargetSpec], now: float) -> list[Sample]:
        self._fake_clock.advance(self._cost)
        return super().sample_targets(targets, now)


def recorded(
    *,
    duration: float | None,
    interval: float = 15.0,
    targets: Sequence[TargetSpec] = (API,),
    stop_after: int | None = None,
    cost: float = 0.0,
) -> tuple[list[dict[str, object]], RecordProgress]:
    clock = FakeClock()
    waits = 0

    def wait(seconds: float) -> bool:
        nonlocal waits
        waits += 1
        if stop_after is not None and waits > stop_after:
            return True
        clock.advance(seconds)
        return False

    out = io.StringIO()
    tracker = SlowTracker(clock, cost)
    progress = record(
        targets,
        out,
        interval=interval,
        duration=duration,
        tracker=tracker,
        clock=clock,
        wait=wait,
    )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return lines, progress


def test_readings_are_paced_on_the_interval_for_the_duration() -> None:
    lines, progress = recorded(duration=60.0)
    start = 1_764_000_000.0
    assert [line["ts"] for line in lines] == [start + 15 * n for n in range(5)]
    assert (progress.ticks, progress.observations) == (5, 5)
    assert lines[0]["target"] == "api"
    metrics = lines[0]["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["rss_bytes"] == 102400 * 1024
    assert metrics["up"] == 1


def test_a_stop_ends_the_recording_between_readings() -> None:
    lines, progress = recorded(duration=None, stop_after=3)
    assert len(lines) == progress.ticks == 3


def test_a_stop_is_seen_even_when_readings_fall_behind() -> None:
    lines, _ = recorded(duration=None, stop_after=2, cost=100.0)
    assert len(lines) == 2


def test_slots_missed_by_slow_readings_are_skipped_not_made_up() -> None:
    lines, _ = recorded(duration=60.0, cost=20.0)
    start = 1_764_000_000.0
    assert [line["ts"] for line in lines] == [start, start + 30, start + 60]


def test_a_down_target_is_recorded_as_up_0() -> None:
    lines, progress = recorded(duration=0.0, targets=(API, GONE))
    assert [(line["target"], line["metrics"]) for line in lines][1] == ("gone", {"up": 0})
    assert set(progress.down) == {"gone"}


def test_records_round_trip_through_the_observations_reader(tmp_path: Path) -> None:
    clock = FakeClock()
    samples = [
        *MemoryTracker(4242, proc_root=PROC, clock=clock).sample_targets([API, GONE], clock()),
        Sample("component_bytes", Labels(target="api", component="cache"), 5.2e7, clock()),
        Sample("site_growth_bytes", Labels(target="api", site="app.py:42"), 0.5, clock()),
        Sample("rss_bytes", Labels(target="api", pod="p-1"), 7.0, clock()),
    ]
    path = tmp_path / "obs.jsonl"
    with path.open("w") as out:
        assert write_observations(out, samples) == 5  # api, gone, cache, site, pod

    def key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
        return sample.metric, sample.labels.items_key

    assert sorted(read_observations(path), key=key) == sorted(samples, key=key)


def test_values_json_cannot_carry_are_left_out() -> None:
    labels = Labels(target="api")
    records = observation_records(
        [Sample("rss_bytes", labels, math.nan, 1.0), Sample("up", labels, 1.0, 1.0)]
    )
    assert records == [{"ts": 1.0, "target": "api", "metrics": {"up": 1}}]


def test_progress_is_drawn_only_on_a_terminal() -> None:
    progress = RecordProgress(ticks=2, observations=4, started=0.0, now=15.0, down={"b": "gone"})
    tty, pipe = TtyBuffer(), io.StringIO()
    in_ci = TtyBuffer()
    for stream, env in ((tty, {}), (pipe, {}), (in_ci, {"CI": "true"})):
        terminal = _Terminal(stream, summary="recording a, b", duration=60.0, env=env)
        terminal.on_tick(progress)
        terminal.finish(progress, "out.jsonl")
    assert "recording a, b: 4 observations, 15s of 1m" in tty.getvalue()
    assert in_ci.getvalue() == pipe.getvalue()  # a CI log gets the plain lines
    assert "\r" not in pipe.getvalue()
    assert pipe.getvalue().splitlines() == [
        "target 'b' is down: gone",
        "recorded 4 observations in 2 readings to out.jsonl",
    ]


def test_bad_arguments_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules: []\n")
    out = str(tmp_path / "o.jsonl")
    assert main(["record", "--rules", str(rules), "--out", out, "--duration", "soon"]) == 2
    assert "--duration" in capsys.readouterr().err
    missing = str(tmp_path / "no" / "such" / "dir.jsonl")
    assert main(["record", "--rules", str(rules), "--out", missing, "--duration", "0s"]) == 2
    assert "cannot write" in capsys.readouterr().err


# -- real processes --------------------------------------------------------------------

RULES = """\
version: 1
interval: 1s
targets:
  - name: child
    pid: {pid}
rules:
  - name: child-rss
    metric: rss_bytes
    above: {{warning: 40MiB}}
"""


@pytest.mark.integration
def test_a_real_child_recorded_then_replayed_fires_its_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    out = tmp_path / "child.jsonl"
    with allocating_children(64) as (child,):
        rules.write_text(RULES.format(pid=child.pid))
        assert main(["record", "--rules", str(rules), "--out", str(out), "--duration", "2s"]) == 0
    assert "recorded 3 observations in 3 readings" in capsys.readouterr().err
    samples = read_observations(out)
    rss = [s.value for s in samples if s.metric == "rss_bytes"]
    assert len(rss) == 3
    assert min(rss) >= 64 * MiB
    assert main(["dry-run", str(rules), "--observations", str(out), "--format", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    fired = [e for e in events if e["event"] == "firing"]
    assert [(e["rule"], e["labels"]["target"]) for e in fired] == [("child-rss", "child")]
    assert fired[0]["value"] >= 64 * MiB


@pytest.mark.integration
def test_sigint_stops_a_recording_cleanly(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    out = tmp_path / "self.jsonl"
    rules.write_text("version: 1\ninterval: 1s\ntargets: [{name: me, self: true}]\nrules: []\n")
    recorder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "memalert.engine.cli",
            "record",
            "--rules",
            str(rules),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT
        # A real process on a real clock: poll for its first line, boundedly.
        while not (out.exists() and out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        recorder.send_signal(signal.SIGINT)
        _, stderr = recorder.communicate(timeout=WAIT)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.communicate(timeout=WAIT)
    assert recorder.returncode == 0, stderr
    assert "recorded" in stderr
    assert "Traceback" not in stderr
    assert {s.target for s in read_observations(out)} == {"me"}


def test_record_expands_variables_in_targets_as_run_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`record` reads the pid file that `${MEMALERT_PIDFILE}` names, not a file of that name."""
    pidfile = tmp_path / "app.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    monkeypatch.setenv("MEMALERT_PIDFILE", str(pidfile))
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\ntargets: [{name: app, pidfile: '${MEMALERT_PIDFILE}'}]\nrules: []\n"
    )
    out = tmp_path / "o.jsonl"
    assert main(["record", "--rules", str(rules), "--out", str(out), "--duration", "0s"]) == 0
    assert "is down" not in capsys.readouterr().err
    (app,) = [s for s in read_observations(out) if s.metric == "up"]
    assert (app.labels["target"], app.value) == ("app", 1.0)
