"""Soak: `memalert run` watches itself for a long run; its own RSS must stay flat.

The daemon (interval 1 s) watches its own process (a `self` target, with the
leak rule on the trend detector's `leak_bytes`), a few idle processes, and a
child whose memory goes up and down every `--flap` seconds, so alerts fire and
resolve and the whole path (evaluate, outbox, delivery to a webhook on
127.0.0.1) runs all along. The bench reads the daemon's VmRSS every 5 s and
fits a least-squares line after a warm-up; flat means the slope is within the
noise of the allocator (a few hundred KiB over the run).

    python bench/soak.py [--minutes 30] [--interval 1] [--flap 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon_kit import MiB, Processes, Webhook, rss_bytes

SAMPLE_EVERY = 5.0
WARM_UP = 60.0  # imports, first ticks, SQLite page cache

RULES = """\
version: 1
interval: {interval}s
repeat_interval: 1h
targets:
  - name: daemon
    self: true
  - name: holder
    pid: {holder}
{sleepers}
rules:
  - name: daemon-leak
    metric: leak_bytes
    where: {{target: daemon}}
    above: {{warning: 5MiB, critical: 20MiB}}
    notify: [hook]
  - name: holder-rss
    metric: rss_bytes
    where: {{target: holder}}
    above: {{warning: {warning}}}
    notify: [hook]
notifiers:
  hook: {{urls: ["json://127.0.0.1:{port}/alerts"]}}
"""


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600.0 if var else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=1.0, help="tick interval, seconds")
    parser.add_argument("--flap", type=float, default=30.0, help="seconds between memory steps")
    parser.add_argument("--sleepers", type=int, default=10, help="idle processes watched too")
    args = parser.parse_args()
    processes = Processes()
    webhook = Webhook()
    points: list[tuple[float, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="memalert-soak-") as tmp:
            work = Path(tmp)
            holder = processes.holder()
            sleepers = "".join(
                f"  - name: idle{i}\n    pid: {pid}\n"
                for i, pid in enumerate(processes.sleepers(args.sleepers))
            )
            rules = work / "rules.yaml"
            rules.write_text(
                RULES.format(
                    interval=args.interval,
                    holder=holder.pid,
                    sleepers=sleepers.rstrip("\n"),
                    warning=rss_bytes(holder.pid) + 20 * MiB,
                    port=webhook.port,
                )
            )
            log = work / "daemon.log"
            daemon = processes.daemon(rules, work / "state.db", log, {})
            started = time.monotonic()
            end = started + args.minutes * 60
            next_flap, high = started + args.flap, False
            while (now := time.monotonic()) < end:
                if now >= next_flap:
                    high = not high
                    holder.hold(40 if high else 0)
                    next_flap += args.flap
                points.append((now - started, float(rss_bytes(daemon))))
                time.sleep(min(SAMPLE_EVERY, max(0.0, end - time.monotonic())))
            exit_code = processes.stop_daemon(daemon)
            errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
    finally:
        processes.close()
        webhook.close()

    steady = [(t, v) for t, v in points if t >= min(WARM_UP, args.minutes * 60 / 4)]
    slope = slope_per_hour(steady)
    first, last = steady[0][1], steady[-1][1]
    alerts = [b for _, b in webhook.received]
    leak_alerts = sum("daemon-leak" in str(b.get("message", "")) for b in alerts)
    print(
        f"soak {args.minutes:g} min at {args.interval:g}s interval, {len(points)} RSS readings: "
        f"slope {slope / MiB:+.2f} MiB/h after warm-up; RSS {first / MiB:.1f} -> "
        f"{last / MiB:.1f} MiB (min {min(v for _, v in steady) / MiB:.1f}, "
        f"max {max(v for _, v in steady) / MiB:.1f})"
    )
    print(
        f"  {len(alerts)} notifications delivered during the run, {leak_alerts} of them about "
        f"the daemon's own leak rule; {len(errors)} ERROR log lines; exit code {exit_code}"
    )
    for line in errors[:5]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
