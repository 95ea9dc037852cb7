"""Pid files and pids that a user, or an attacker, points a target at.

A pid file may be a FIFO, a device, a huge file or a symlink to a secret; each
must make the target down with a reason that never quotes the file, within a
tick. Waits are bounded by running the sampling on a thread.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from memalert.engine.core.model import TargetSpec
from memalert.engine.sources.tracker import MemoryTracker
from memalert.engine.testing import FakeClock

PROC = Path(__file__).resolve().parents[2] / "fixtures" / "proc"
CGROUP_V2 = PROC.parent / "cgroup_v2"
SECRET = "hunter2-s3cret-token"
# Far above what a correct read takes; only a hang or an endless read reaches it.
BOUND_SECONDS = 10.0


def sample_bounded(spec: TargetSpec) -> tuple[dict[str, float], str]:
    """(metrics of the target, its down reason), failing instead of hanging."""
    tracker = MemoryTracker(4242, proc_root=PROC, cgroup_root=CGROUP_V2, clock=FakeClock())
    done: dict[str, object] = {}

    def run() -> None:
        samples = tracker.sample_targets([spec], 1_764_000_000.0)
        done["metrics"] = {s.metric: s.value for s in samples}

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(BOUND_SECONDS)
    assert not worker.is_alive(), "sampling the pid file did not finish"
    metrics = done["metrics"]
    assert isinstance(metrics, dict)
    return metrics, tracker.last_errors.get(spec.name, "")


def pidfile(path: Path | str) -> TargetSpec:
    return TargetSpec(name="t", kind="pidfile", pidfile=str(path))


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "app.pid"
    os.mkfifo(fifo)
    metrics, reason = sample_bounded(pidfile(fifo))
    assert metrics == {"up": 0.0}
    assert "not a regular file" in reason


def test_a_device_that_never_ends_is_refused() -> None:
    metrics, reason = sample_bounded(pidfile("/dev/zero"))
    assert metrics == {"up": 0.0}
    assert "not a regular file" in reason


def test_a_huge_file_is_not_read_whole(tmp_path: Path) -> None:
    huge = tmp_path / "app.pid"
    with huge.open("wb") as out:
        out.write(b"4242" + b" " * 100 + SECRET.encode())
        out.truncate(1 << 40)  # sparse: 1 TiB that a whole read could never hold
    metrics, reason = sample_bounded(pidfile(huge))
    assert metrics == {"up": 0.0}
    assert "longer than" in reason
    assert SECRET not in reason


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(SECRET + "\n", id="a-secret"),
        pytest.param("4242 " + SECRET, id="a-pid-then-a-secret"),
        pytest.param("\u0664\u0662\u0664\u0662\n", id="arabic-indic-digits"),
        pytest.param("\u00b2\n", id="superscript-two"),
    ],
)
def test_a_pid_file_is_never_quoted(tmp_path: Path, content: str) -> None:
    secret = tmp_path / "secret.env"
    secret.write_text(content)
    link = tmp_path / "app.pid"
    link.symlink_to(secret)
    metrics, reason = sample_bounded(pidfile(link))
    assert metrics == {"up": 0.0}
    assert reason == f"pidfile {link} does not hold a process id"


def test_a_pid_file_with_a_pid_and_newline_still_works(tmp_path: Path) -> None:
    path = tmp_path / "app.pid"
    path.write_text("4242\r\n")
    metrics, reason = sample_bounded(pidfile(path))
    assert (metrics["up"], reason) == (1.0, "")


def test_a_zombie_is_down_with_a_plain_reason() -> None:
    metrics, reason = sample_bounded(TargetSpec(name="t", kind="pid", pid=4300))
    assert metrics == {"up": 0.0}
    assert reason == ("process 4300 is a zombie: it has exited and its parent has not reaped it")
