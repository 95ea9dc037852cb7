"""Real child processes that hold a known amount of touched memory, for tracker tests.

Each child allocates N MiB, writes every page (untouched pages are not resident),
prints `ready`, and waits on stdin; closing stdin or killing it ends it. Every wait
is bounded and `allocating_children` kills whatever it started, even on failure.
"""

from __future__ import annotations

import contextlib
import selectors
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

MiB = 1 << 20
READY_TIMEOUT = 60.0

# b"x" * n writes every byte, so all n bytes are resident before `ready`. With a
# cgroup.procs path the child joins that cgroup first, so the cgroup is charged.
_CHILD = """
import os, sys
if sys.argv[3]:
    with open(sys.argv[3], "w") as procs:
        procs.write(str(os.getpid()))
held = b"x" * (int(sys.argv[1]) * 1024 * 1024)
print("ready", flush=True)
sys.stdin.readline()
"""


def _wait_ready(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(READY_TIMEOUT):
            raise TimeoutError(f"child {child.pid} not ready within {READY_TIMEOUT}s")
    line = child.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"child {child.pid} said {line!r} instead of ready")


def stop(child: subprocess.Popen[str]) -> None:
    """Kill and reap `child`; the wait is bounded since SIGKILL cannot be ignored."""
    if child.poll() is None:
        child.kill()
    child.wait(timeout=30)
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            stream.close()


@contextlib.contextmanager
def allocating_children(
    *mib: int, tag: str = "memalert-test", cgroup_procs: str = ""
) -> Iterator[list[subprocess.Popen[str]]]:
    """Start one child per size in `mib`; `tag` lands in each cmdline for matching."""
    children: list[subprocess.Popen[str]] = []
    try:
        for size in mib:
            # One append per start, so `finally` kills those started before a failure.
            children.append(  # noqa: PERF401
                subprocess.Popen(
                    [sys.executable, "-c", _CHILD, str(size), tag, cgroup_procs],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for child in children:
            _wait_ready(child)
        yield children
    finally:
        for child in children:
            stop(child)
