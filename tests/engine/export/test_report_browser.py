"""report.html in a real browser: Debian's headless Chromium (installed by .ci/run).

The chart must draw (plotly's SVG line paths carry data points) with no console
message at all, offline. The screenshot is kept for people to look at:
build/screenshots/exec-report.png (docs/ci.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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

    lines = re.findall(r'class="js-line"[^>]* d="M([^"]+)"', dom.stdout)
    assert lines, "no chart line was drawn"
    assert max(line.count("L") for line in lines) >= 3  # plotly merges collinear points
    assert ":CONSOLE" not in dom.stderr, dom.stderr
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "exec-report.png"
    chromium(tmp_path / "profile-shot", f"--screenshot={shot}", page)
    assert shot.stat().st_size > 10_000
