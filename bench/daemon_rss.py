"""The daemon's RSS on a console-only configuration: `memalert run rules/memory.yaml`.

`memalert run` (a subprocess) runs the shipped rules/memory.yaml, whose alerts
go to the built-in console notifier only, so no apprise URL is named and apprise
should never be imported. The rules run at a `--interval` of 1 s (a copy of the
file with only `interval:` changed) so the first ticks, which load what ticks
load, are over within seconds; $MEMALERT_PIDFILE names a `sleep` process, so the
`app` target is watched too. After `--ticks` ticks the daemon's VmRSS and its
peak (VmHWM) are read from /proc. Target (issue 13): at most 35 MB.

    python bench/daemon_rss.py [--ticks 5]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon_kit import REPO, MiB, Processes, rss_bytes
from footprint import peak_rss_bytes

RSS_TARGET_MB = 35.0
MB = 1e6
RULES = REPO / "rules" / "memory.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ticks", type=int, default=5, help="1 s ticks before reading RSS")
    args = parser.parse_args()
    processes = Processes()
    try:
        with tempfile.TemporaryDirectory(prefix="memalert-daemon-rss-") as tmp:
            work = Path(tmp)
            rules = work / "memory.yaml"
            text, count = re.subn(r"(?m)^interval: .*$", "interval: 1s", RULES.read_text())
            if count != 1:
                raise SystemExit(f"{RULES}: no top-level `interval:` line to change")
            rules.write_text(text)
            (pid,) = processes.sleepers(1)
            pidfile = work / "app.pid"
            pidfile.write_text(f"{pid}\n")
            env = {"MEMALERT_PIDFILE": str(pidfile)}
            daemon = processes.daemon(rules, work / "state.db", work / "daemon.log", env)
            # Bounded: the ticks run at 1 s whatever happens; one more second for the last.
            time.sleep(args.ticks + 1.0)
            rss, peak = rss_bytes(daemon), peak_rss_bytes(daemon)
            processes.stop_daemon(daemon)
    finally:
        processes.close()
    print(
        f"daemon RSS, console only (rules/memory.yaml), after {args.ticks} ticks: "
        f"{rss / MB:.1f} MB ({rss / MiB:.1f} MiB; peak {peak / MB:.1f} MB) "
        f"(target <= {RSS_TARGET_MB:.0f} MB) ratio {RSS_TARGET_MB * MB / rss:.2f}"
    )


if __name__ == "__main__":
    main()
