"""`memalert exec`: real commands that really allocate, run through the real CLI."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

MEMALERT = (sys.executable, "-m", "memalert.engine.cli", "exec")
TIMEOUT = 120

# Keeps 2 MiB (written, so resident) per iteration while churning garbage: a leak.
LEAKY = """
import time
kept = []
for i in range(120):
    kept.append(b"k" * (2 * 1024 * 1024))
    garbage = [bytes(1000) for _ in range(2000)]
    time.sleep(0.07)
print("leaky done")
"""
# A cache that fills to its cap in the first seconds, then only churns: bounded.
BOUNDED = """
import functools, time
@functools.lru_cache(maxsize=400)
def page(key):
    return b"p" * 100_000
for i in range(250):
    for key in range(i * 20, i * 20 + 20):
        page(key % 800)
    garbage = [bytes(5000) for _ in range(2000)]
    time.sleep(0.02)
print("bounded done")
"""


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def memalert_exec(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": "true"}
    return subprocess.run(
        [*MEMALERT, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
    )


def test_a_leaking_program_fails_the_gate_with_a_report_that_shows_the_growth(
    tmp_path: Path,
) -> None:
    script = write(tmp_path, "leaky.py", LEAKY)
    done = memalert_exec(
        "--budget", "150MiB", "--report", "out", "--", sys.executable, str(script), cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == "leaky done\n"  # the command's output passes through untouched
    facts = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert facts["verdict"]["leaking"] is True
    assert facts["peak_rss_bytes"] > 150 * 2**20
    assert {(a["rule"], a["severity"]) for a in facts["alerts"]} >= {
        ("memory-budget", "critical"),
        ("memory-leak", "critical"),
    }
    assert facts["growth_bytes"] > 100 * 2**20  # to the peak: the exit frees it all
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Plotly.newPlot" in page  # the chart library is in the file: it opens offline
    assert "<script src=" not in page


def test_a_bounded_program_passes(tmp_path: Path) -> None:
    script = write(tmp_path, "bounded.py", BOUNDED)
    done = memalert_exec("--budget", "500MiB", "--", sys.executable, str(script), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "leak: no" in done.stderr


def test_the_command_exit_code_comes_through(tmp_path: Path) -> None:
    done = memalert_exec("--", sys.executable, "-c", "import sys; sys.exit(3)", cwd=tmp_path)
    assert done.returncode == 3


def test_trace_python_names_the_line_that_keeps_the_memory(tmp_path: Path) -> None:
    script = write(tmp_path, "leaky.py", LEAKY)
    done = memalert_exec(
        "--trace-python", "--report", "out", "--", sys.executable, str(script), cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr
    sites = json.loads((tmp_path / "out" / "summary.json").read_text())["growing_sites"]
    assert sites[0]["file"] == str(script)
    assert (
        sites[0]["line"]
        == LEAKY.splitlines().index('    kept.append(b"k" * (2 * 1024 * 1024))') + 1
    )


def test_sigterm_stops_the_command_and_still_writes_the_report(tmp_path: Path) -> None:
    script = write(
        tmp_path, "forever.py", 'import time\nprint("up", flush=True)\ntime.sleep(600)\n'
    )
    with subprocess.Popen(
        [*MEMALERT, "--report", "out", "--", sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": "true"},
    ) as child:
        try:
            assert child.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(child.stdout, selectors.EVENT_READ)
                assert selector.select(60), "the command never started"
            assert child.stdout.readline() == "up\n"
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == 128 + signal.SIGTERM
    facts = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert facts["signal"] == signal.SIGTERM
    assert (tmp_path / "out" / "report.html").exists()


def test_a_command_that_is_not_found_or_not_executable_exits_as_a_shell_does(
    tmp_path: Path,
) -> None:
    missing = memalert_exec("--", "no-such-command-memalert", cwd=tmp_path)
    assert missing.returncode == 127
    assert "no-such-command-memalert: command not found" in missing.stderr
    plain = write(tmp_path, "plain.sh", "echo hi\n")
    denied = memalert_exec("--", str(plain), cwd=tmp_path)
    assert denied.returncode == 126
    assert "Traceback" not in missing.stderr + denied.stderr


def test_problems_are_reported_before_the_command_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    command = ("--", sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    (tmp_path / "file").write_text("")
    for flags, named in (
        (("--report", str(tmp_path / "file" / "sub")), "--report"),
        (("--budget", "12XB"), "--budget"),
        (("--interval", "0s"), "--interval"),
        (("--interval", "soon"), "--interval"),
    ):
        done = memalert_exec(*flags, *command, cwd=tmp_path)
        assert done.returncode == 2, (flags, done.stderr)
        assert named in done.stderr
        assert "Traceback" not in done.stderr
    assert not marker.exists()
