"""`memalert run` with no rule file, end to end, over 20 real child processes.

One child leaks, one is a cache that warms up and then holds, one restarts
every 6 s, and 17 hold a constant amount. The daemon runs the built-in rules
with `MEMALERT_TIME_SCALE=600` (docs/operations.md): a tick every 25 ms of real
time stamped 15 s apart, so the detector's 6 h minimum life is 36 s. Only the
leaking child is reported, by its name; the restarting one keeps one target
name across its pids. Every wait is bounded; every child is in a session of its
own, killed with its group at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# Imported first (isort's order): it puts notifier_kit's directory on sys.path.
from daemon_e2e_kit import MEMALERT, REPO, wait_for
from notifier_kit import free_port

pytestmark = pytest.mark.integration

TIME_SCALE = 600
# The detector's 6 h minimum life is 36 s at 600x; the leak was reported after
# about 40 s here. The bound leaves room for a loaded machine.
DETECT_WITHIN = 240.0
BASE_MIB = 60  # above the built-in 50 MiB floor
# The children's executable as their names begin: `python` in a virtual
# environment, `python3` where CI runs the system's interpreter.
EXE = Path(sys.executable).name
RESTARTS = 5

# Each child holds BASE_MIB, every page written; then, by its role:
_CHILD = f"""
import sys, time
role = sys.argv[1]
held = [b"x" * ({BASE_MIB} << 20)]
started = time.monotonic()
while True:
    age = time.monotonic() - started
    if role == "leak":  # 4 MiB a second, never freed: 24 MiB/h at 600x
        held.append(b"x" * (2 << 20))
    elif role == "cache" and age < 15:  # warms up by 80 MiB, then holds
        held.append(b"x" * (1 << 20))
    elif role == "restart" and age > 6:
        sys.exit(0)
    time.sleep(0.5 if role != "cache" else 0.18)
"""
# Starts the restarting child again each time it exits, with the same arguments.
_SUPERVISOR = """
import subprocess, sys
while True:
    subprocess.run(sys.argv[1:], check=False)
"""


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    for name in ("leaker", "cache", "restarter", "steady"):
        (tmp_path / f"{name}.py").write_text(_CHILD)
    (tmp_path / "supervisor.py").write_text(_SUPERVISOR)
    return tmp_path


@pytest.fixture
def children(scripts: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    python = sys.executable
    commands = [
        [python, str(scripts / "leaker.py"), "leak"],
        [python, str(scripts / "cache.py"), "cache"],
        [python, str(scripts / "supervisor.py"), python, str(scripts / "restarter.py"), "restart"],
        *([python, str(scripts / "steady.py"), "steady", str(n)] for n in range(17)),
    ]
    started: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            started.append(subprocess.Popen(command, start_new_session=True))  # noqa: PERF401
        yield started
    finally:
        for child in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text: str = answer.read().decode()
        return text


FIRING = re.compile(r"^\s*\[FIRING:\w+\] [\w-]+ \{target=([^}]*)\}", re.MULTILINE)
_INFO = re.compile(r"^memalert_target_info\{([^}]*)\}", re.MULTILINE)


def _infos(text: str) -> list[dict[str, str]]:
    return [
        dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1))) for m in _INFO.finditer(text)
    ]


def test_no_rule_file_reports_only_the_leak_by_name(
    tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    out, log = tmp_path / "daemon.out", tmp_path / "daemon.log"
    env = {**os.environ, "MEMALERT_TIME_SCALE": str(TIME_SCALE)}
    command = [
        *MEMALERT,
        "run",
        *("--state", str(tmp_path / "state.db"), "--listen", f"127.0.0.1:{port}"),
        *("--flush-timeout", "3s"),
    ]
    with out.open("wb") as stdout, log.open("wb") as stderr:
        daemon = subprocess.Popen(command, cwd=REPO, env=env, stdout=stdout, stderr=stderr)
    try:
        wait_for("the daemon to start", lambda: "memalert running" in log.read_text())
        restarter_pids: set[str] = set()
        names: set[str] = set()

        def leak_reported() -> bool:
            for info in _infos(_metrics(port)):
                if str(tmp_path) in info.get("cmdline", ""):
                    names.add(info["target"])
                    if "restarter.py" in info["cmdline"]:
                        restarter_pids.add(info["pid"])
            return f"memory-leak {{target={EXE}:leaker.py}}" in out.read_text()

        wait_for("the leak to be reported", leak_reported, timeout=DETECT_WITHIN)
        # Some 3 h more (at 600x) for a false alarm to show, over the restarting
        # child's next lives, which must all go under one name.
        wait_for("restarts", lambda: leak_reported() and len(restarter_pids) >= RESTARTS)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    reported = out.read_text()
    firing = set(
        re.findall(r"^\s*\[FIRING:\w+\] [\w-]+ \{target=([^}]*)\}", reported, re.MULTILINE)
    )
    assert f"{EXE}:leaker.py" in firing, reported
    ours = {name for name in firing if name in names}
    assert ours == {f"{EXE}:leaker.py"}, reported
    # The summary names the process: its pid and full command line.
    assert "leaker.py leak" in reported
    restarter_names = {n for n in names if n.startswith(f"{EXE}:restarter.py")}
    assert restarter_names == {f"{EXE}:restarter.py"}, names
    assert f"{EXE}:cache.py" in names
    assert len({n for n in names if n.startswith(f"{EXE}:steady.py")}) == 17
    assert "Traceback" not in log.read_text()
