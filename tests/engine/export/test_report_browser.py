"""report.html and the daemon's dashboard in a real browser: Debian's headless Chromium.

Each chart must draw (plotly's SVG line paths carry data points) with no console
message at all, offline (the dashboard's chart library is served by the daemon). The
screenshots are kept for people to look at: build/screenshots/exec-report.png
(docs/ci.md) and build/screenshots/dashboard.png (docs/http.md).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from daemon_e2e_kit import Daemon, wait_for
from notifier_kit import free_port

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "build" / "screenshots"
LEAKY = """
import time
kept = []
for i in range(100):
    kept.append(b"k" * (1024 * 1024))
    time.sleep(0.06)
"""
# The flags that keep Chromium off the network and quiet on a machine without one.
CHROMIUM = (
    "chromium",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
    "--window-size=1280,1000",
)


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHROMIUM, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_the_report_draws_its_chart_offline_without_console_messages(tmp_path: Path) -> None:
    script = tmp_path / "leaky.py"
    script.write_text(LEAKY)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "memalert.engine.cli",
            "exec",
            "--budget",
            "60MiB",
            "--report",
            str(tmp_path / "out"),
            "--",
            sys.executable,
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CI": "true"},
    )
    assert done.returncode == 1, done.stderr
    page = (tmp_path / "out" / "report.html").as_uri()

    dom = chromium(tmp_path / "profile", "--dump-dom", page)

    lines = drawn_lines(dom.stdout)
    assert lines, "no chart line was drawn"
    assert max(line.count("L") for line in lines) >= 3  # plotly merges collinear points
    assert ":CONSOLE" not in dom.stderr, dom.stderr
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "exec-report.png"
    chromium(tmp_path / "profile-shot", f"--screenshot={shot}", page)
    assert shot.stat().st_size > 10_000


def drawn_lines(dom: str) -> list[str]:
    return re.findall(r'class="js-line"[^>]* d="M([^"]+)"', dom)


def test_the_dashboard_charts_every_target_from_the_daemon_alone(tmp_path: Path) -> None:
    rules = tmp_path / "watch.yaml"
    rules.write_text(
        "version: 1\ninterval: 200ms\ntargets:\n  - {name: host, system: true}\n"
        "  - {name: memalert, self: true}\n"
    )
    port = free_port()
    daemon = Daemon(rules, tmp_path / "state.db", {**os.environ, "CI": "true"}, tmp_path / "log")
    daemon.extra = ("--listen", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"

    def enough_history() -> bool:
        with urllib.request.urlopen(f"{url}/dashboard.json", timeout=5) as answer:  # noqa: S310
            view = json.load(answer)
        return len(view["targets"]) == 2 and all(len(t["memory"]) >= 5 for t in view["targets"])

    daemon.start()
    try:
        wait_for("five ticks of history", enough_history)
        dom = chromium(tmp_path / "profile", "--dump-dom", f"{url}/")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "dashboard.png"
        chromium(tmp_path / "profile-shot", f"--screenshot={shot}", f"{url}/")
    finally:
        daemon.kill()
    assert len(drawn_lines(dom.stdout)) >= 2  # one chart per target
    assert 'id="t-host"' in dom.stdout
    assert 'id="t-memalert"' in dom.stdout
    assert ":CONSOLE" not in dom.stderr, dom.stderr
    assert shot.stat().st_size > 10_000
