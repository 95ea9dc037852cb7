"""The daemon's own footprint: RSS with apprise loaded and 100 targets; CPU at a 15 s interval.

`memalert run` (a subprocess) watches 100 real `sleep` processes with the
default rules (leak, pressure, target-down) plus an RSS rule, and two apprise
notifiers (json:// and mailto://), so apprise and its plugins are loaded.

- RSS: VmRSS of the daemon after `--warm-ticks` ticks at a 1 s interval (and
  its peak, VmHWM). Target: under 60 MB.
- CPU: user + system time of the daemon over `--minutes` at the 15 s interval,
  after its first tick. Target: under 1% of one core. The same figure measured
  at 1 s and scaled to 15 s (CPU per tick / 15 s) is printed as a cross-check.

    python bench/footprint.py [--targets 100] [--minutes 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon_kit import MiB, Processes, Webhook, cpu_seconds, rss_bytes

RSS_TARGET_MB = 60.0
CPU_TARGET_PERCENT = 1.0
MB = 1e6

RULES_HEAD = """\
version: 1
interval: {interval}s
rules:
  - name: memory-leak
    metric: leak_bytes
    above: {{warning: 50MiB, critical: 100MiB}}
    for: 1m
    keep_firing_for: 2m
  - name: memory-pressure
    metric: pressure
    above: {{warning: 0.5, critical: 0.8}}
    for: 1m
  - name: target-down
    metric: up
    below: {{warning: 1}}
    for: 1m
  - name: rss
    metric: rss_bytes
    above: {{warning: 1GiB}}
notifiers:
  hook: {{urls: ["json://127.0.0.1:{port}/alerts"]}}
  mail:
    urls: ["mailto://alerts:${{SMTP_PASSWORD}}@127.0.0.1:2525?from=a@example.com&to=b@example.com"]
routes:
  - match: {{severity: critical}}
    notify: [hook, mail]
  - match: {{severity: warning}}
    notify: [hook]
targets:
"""


def rules_text(interval: float, port: int, pids: list[int]) -> str:
    targets = "".join(f"  - name: t{i}\n    pid: {pid}\n" for i, pid in enumerate(pids))
    return RULES_HEAD.format(interval=interval, port=port) + targets


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def run_daemon(
    processes: Processes, work: Path, name: str, *, interval: float, port: int, pids: list[int]
) -> int:
    rules = work / f"{name}.yaml"
    rules.write_text(rules_text(interval, port, pids))
    log = work / f"{name}.log"
    return processes.daemon(
        rules, work / f"{name}.db", log, {"SMTP_PASSWORD": "not-used-no-alert-fires"}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=3.0, help="CPU window at 15 s")
    parser.add_argument("--warm-ticks", type=int, default=30, help="1 s ticks before RSS")
    args = parser.parse_args()
    processes = Processes()
    webhook = Webhook()
    try:
        with tempfile.TemporaryDirectory(prefix="memalert-footprint-") as tmp:
            work = Path(tmp)
            pids = processes.sleepers(args.targets)

            fast = run_daemon(processes, work, "fast", interval=1.0, port=webhook.port, pids=pids)
            time.sleep(2.0)  # the first ticks load what ticks load
            cpu_start, wall_start = cpu_seconds(fast), time.monotonic()
            time.sleep(args.warm_ticks)
            fast_cpu = (cpu_seconds(fast) - cpu_start) / (time.monotonic() - wall_start)
            rss, peak = rss_bytes(fast), peak_rss_bytes(fast)
            processes.stop_daemon(fast)

            slow = run_daemon(processes, work, "slow", interval=15.0, port=webhook.port, pids=pids)
            time.sleep(2.0)  # past the first tick, which runs at start
            cpu_start, wall_start = cpu_seconds(slow), time.monotonic()
            time.sleep(args.minutes * 60)
            slow_cpu = (cpu_seconds(slow) - cpu_start) / (time.monotonic() - wall_start)
            slow_rss = rss_bytes(slow)
            processes.stop_daemon(slow)
    finally:
        processes.close()
        webhook.close()

    print(
        f"daemon RSS, apprise loaded, {args.targets} targets, after {args.warm_ticks} ticks: "
        f"{rss / MB:.1f} MB ({rss / MiB:.1f} MiB; peak {peak / MB:.1f} MB) "
        f"(target < {RSS_TARGET_MB:.0f} MB) ratio {RSS_TARGET_MB * MB / rss:.2f}"
    )
    percent = slow_cpu * 100
    print(
        f"daemon CPU at 15s interval, {args.targets} targets, over {args.minutes:g} min: "
        f"{percent:.3f}% of one core (target < {CPU_TARGET_PERCENT:.0f}%) "
        f"ratio {CPU_TARGET_PERCENT / max(percent, 1e-9):.1f}; RSS then {slow_rss / MB:.1f} MB"
    )
    scaled = fast_cpu * 100 / 15.0
    print(
        f"  cross-check: {fast_cpu * 100:.2f}% of one core at 1s interval "
        f"= {fast_cpu * 1000:.1f} ms CPU per tick -> {scaled:.3f}% at 15s"
    )


if __name__ == "__main__":
    main()
