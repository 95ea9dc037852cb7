"""The real binaries of the scale-out tests: agents, Prometheus, Alertmanager, the relay.

Every process writes its log to a file under the test's tmp dir and is killed
by `Processes.close`; every wait is bounded (`wait_for`); storage goes to the
tmp dir too. Prometheus and Alertmanager are Debian's (`prometheus`,
`prometheus-alertmanager`), which `.ci/run` installs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from daemon_e2e_kit import DEADLINE, MEMALERT, REPO, wait_for
from notifier_kit import free_port

PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"
BINARIES = (PROMETHEUS, ALERTMANAGER, "promtool", "amtool")


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def get(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Process:
    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.name, self.argv, self.log, self.env = name, argv, log, env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self, signum: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=DEADLINE)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Processes:
    """Starts the processes of one test; `close` ends every one of them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join([str(REPO), self.env.get("PYTHONPATH", "")])
        self.started: list[Process] = []

    def start(
        self, name: str, argv: list[str], *, ready: str, env: dict[str, str] | None = None
    ) -> Process:
        """Start `argv` and wait until GET `ready` answers 200."""
        process = Process(name, argv, self.tmp / f"{name}.log", {**self.env, **(env or {})})
        self.started.append(process)
        process.start()
        wait_for(f"{name} to answer {ready}", lambda: _ready(process, ready))
        return process

    def agent(
        self, name: str, rules: Path, env: dict[str, str] | None = None
    ) -> tuple[Process, int]:
        port = free_port()
        argv = [*MEMALERT, "run", str(rules), "--state", str(self.tmp / f"{name}.db")]
        argv += ["--listen", f"127.0.0.1:{port}", "--flush-timeout", "1s"]
        return self.start(name, argv, ready=f"http://127.0.0.1:{port}/health", env=env), port

    def prometheus(self, config: Path) -> tuple[Process, int]:
        port = free_port()
        argv = [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.tmp / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--rules.alert.resend-delay=1s",
            "--log.level=warn",
        ]
        return self.start("prometheus", argv, ready=f"http://127.0.0.1:{port}/-/ready"), port

    def alertmanager(self, config: Path) -> tuple[Process, int]:
        port = free_port()
        argv = [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={self.tmp / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip port: one instance
            "--log.level=warn",
        ]
        return self.start("alertmanager", argv, ready=f"http://127.0.0.1:{port}/-/ready"), port

    def close(self) -> None:
        for process in reversed(self.started):
            process.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.text()[-3000:]}" for p in self.started)


def _ready(process: Process, url: str) -> bool:
    if process.process is not None and process.process.poll() is not None:
        raise AssertionError(
            f"{process.name} exited {process.process.returncode}:\n{process.text()}"
        )
    return answers(url)


def prometheus_config(rules: Path, alertmanager_port: int, agents: list[int]) -> str:
    return json.dumps(
        {
            "global": {
                "scrape_interval": "1s",
                "evaluation_interval": "1s",
                "scrape_timeout": "1s",
            },
            "rule_files": [str(rules)],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
                ]
            },
            "scrape_configs": [
                {
                    "job_name": "memalert",
                    "static_configs": [{"targets": [f"127.0.0.1:{port}" for port in agents]}],
                }
            ],
        }
    )
