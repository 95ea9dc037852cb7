"""Soak on the built-in rules: `memalert run` with no rule file watches this whole host.

The daemon runs as a newcomer runs it (README, first line): no rule file, so
the built-in rules watch the host, every process and every service or
container cgroup above the size floor, at their 15 s interval. Every
`--every` seconds the bench reads the daemon's CPU time and VmRSS from /proc;
at the end it reads how many targets the daemon watched (GET /snapshot) and
counts the alerts the console notifier printed: on a healthy host that is no
page at all. Targets (issue 13): no false page; CPU well inside the tick
(under 50 ms of CPU per tick on 1,000 processes: bench/tick_cost.py); RSS at
most 35 MB on a console-only configuration.

    python bench/host_soak.py [--minutes 30] [--every 10]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon_kit import Processes, cpu_seconds, free_port, rss_bytes

MB = 1e6
INTERVAL = 15.0  # the built-in rules' interval
RSS_TARGET_MB = 35.0
TICK_CPU_TARGET_MS = 50.0
# The console notifier's first line of an event: `[firing:critical] target ...`.
EVENT = re.compile(r"^\[(firing|resolved|repeat\w*|escalated|deescalated):(\w+)\] (\S+)", re.M)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between readings")
    args = parser.parse_args()
    processes = Processes()
    try:
        with tempfile.TemporaryDirectory(prefix="memalert-host-soak-") as tmp:
            work = Path(tmp)
            port = free_port()
            daemon = processes.daemon(
                None,
                work / "state.db",
                work / "daemon.log",
                {},
                stdout=work / "console.txt",
                options=("--listen", f"127.0.0.1:{port}"),
            )
            start, cpu0 = time.monotonic(), cpu_seconds(daemon)
            readings: list[tuple[float, float, int]] = []
            end = start + args.minutes * 60
            while time.monotonic() < end:
                time.sleep(min(args.every, max(0.0, end - time.monotonic())))
                readings.append((time.monotonic() - start, cpu_seconds(daemon), rss_bytes(daemon)))
            targets = _targets(port)
            processes.stop_daemon(daemon)
            console = (work / "console.txt").read_text(errors="replace")
    finally:
        processes.close()
    _report(args.minutes, cpu0, readings, targets, console)


def _targets(port: int) -> list[str]:
    url = f"http://127.0.0.1:{port}/snapshot"
    with urllib.request.urlopen(url, timeout=10) as response:
        snapshot = json.load(response)
    return sorted(t["target"] for t in snapshot["targets"])


def _report(
    minutes: float,
    cpu0: float,
    readings: list[tuple[float, float, int]],
    targets: list[str],
    console: str,
) -> None:
    elapsed, cpu, _ = readings[-1]
    ticks = elapsed / INTERVAL
    per_tick_ms = (cpu - cpu0) / ticks * 1e3
    rss = [r for _, _, r in readings]
    pages = [m.groups() for m in EVENT.finditer(console) if m.group(1) == "firing"]
    print(f"soak on the built-in rules: {minutes:g} min, {ticks:.0f} ticks of {INTERVAL:g} s")
    print(f"targets watched at the end: {len(targets)} ({', '.join(targets[:12])}...)")
    print(
        f"daemon CPU: {cpu - cpu0:.1f} s over {elapsed:.0f} s "
        f"({(cpu - cpu0) / elapsed * 100:.2f}% of one core), {per_tick_ms:.1f} ms per tick "
        f"(target < {TICK_CPU_TARGET_MS:.0f} ms) ratio {TICK_CPU_TARGET_MS / per_tick_ms:.2f}"
    )
    print(
        f"daemon RSS: first {rss[0] / MB:.1f} MB, last {rss[-1] / MB:.1f} MB, "
        f"max {max(rss) / MB:.1f} MB (target <= {RSS_TARGET_MB:.0f} MB) "
        f"ratio {RSS_TARGET_MB * MB / max(rss):.2f}"
    )
    print(f"alerts fired: {len(pages)} (target 0 on a healthy host)")
    for state, severity, target in pages:
        print(f"  {state}:{severity} {target}")


if __name__ == "__main__":
    main()
