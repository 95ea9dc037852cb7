"""Shared parts of the daemon benches: `memalert run` as a subprocess, /proc readings, a webhook.

Not a bench itself. Every process started here is killed by `Processes.close()`.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MiB = 2**20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


class Webhook:
    """An HTTP server on 127.0.0.1 noting when each JSON body arrived (time.time())."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.received.append((time.time(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                del format, args

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,))
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


# `hold N` holds N MiB (freeing what it held), `add N` adds N MiB to it; every page
# is written, and "ok" answers once the memory is resident.
HOLDER = """
import sys
held = []
print("ok", flush=True)
for line in sys.stdin:
    command, size = line.split()
    if command == "hold":
        held = []
    held.append(b"x" * (int(size) * 1024 * 1024))
    print("ok", flush=True)
"""


class Processes:
    """Children of the bench: the daemon, a memory holder, idle `sleep`s; all killed on close."""

    def __init__(self) -> None:
        self._started: list[subprocess.Popen[Any]] = []

    def daemon(
        self,
        rules: Path | None,
        state: Path,
        log: Path,
        env: dict[str, str],
        *,
        stdout: Path | None = None,
        options: tuple[str, ...] = (),
    ) -> int:
        """`memalert run` on `rules` (None: the built-in rules); its console output to `stdout`."""
        full_env = dict(os.environ, **env)
        full_env["PYTHONPATH"] = os.pathsep.join([str(REPO), full_env.get("PYTHONPATH", "")])
        argv = [sys.executable, "-m", "memalert.engine.cli", "run"]
        argv += [] if rules is None else [str(rules)]
        with log.open("ab") as stderr, (stdout or Path(os.devnull)).open("ab") as out:
            process = subprocess.Popen(
                [*argv, "--state", str(state), *options],
                cwd=REPO,
                env=full_env,
                stdout=out,
                stderr=stderr,
            )
        self._started.append(process)
        wait_for("the daemon to start", lambda: "memalert running" in log.read_text())
        return process.pid

    def stop_daemon(self, pid: int) -> int:
        process = next(p for p in self._started if p.pid == pid)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=60)

    def holder(self) -> Holder:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._started.append(process)
        holder = Holder(process)
        holder.answer()
        return holder

    def sleepers(self, count: int) -> list[int]:
        started = [subprocess.Popen(["sleep", "3600"]) for _ in range(count)]
        self._started.extend(started)
        return [p.pid for p in started]

    def close(self) -> None:
        for process in self._started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()


class Holder:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def hold(self, mib: int) -> float:
        """Hold `mib` MiB in all; returns the time.time() at which they were resident."""
        return self._tell(f"hold {mib}")

    def add(self, mib: int) -> float:
        """Hold `mib` MiB more; returns the time.time() at which they were resident."""
        return self._tell(f"add {mib}")

    def _tell(self, command: str) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        self.answer()
        return time.time()

    def answer(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ok":
            raise RuntimeError(f"memory holder said {line!r}")
