"""The daemon's RSS on a console-only configuration: the built-in rules and rules/memory.yaml.

Three `memalert run` daemons (subprocesses), one after the other:

- `memalert run`: no rule file, the built-in rules (engine/rules/defaults.yaml),
  whose alerts go to the console notifier only; they run at their own 15 s
  interval, so the daemon is read after `--default-ticks` of them.
- `memalert run --listen`: the README's first command (the same rules plus the
  HTTP endpoints and the dashboard's history), read the same way.
- `memalert run rules/memory.yaml`: the shipped rule file, console only, at an
  `--interval` of 1 s (a copy of the file with only `interval:` changed) so the
  first ticks, which load what ticks load, are over within seconds; read after
  `--ticks` ticks.

No apprise URL is named anywhere, so apprise should never be imported.
$MEMALERT_PIDFILE names a `sleep` process, so the `app` target is watched too.
Each daemon's VmRSS and its peak (VmHWM) are read from /proc. Target (issue 13):
at most 35 MB on a console-only configuration.

    python bench/daemon_rss.py [--ticks 5] [--default-ticks 2]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon_kit import REPO, MiB, Processes, free_port, rss_bytes
from footprint import peak_rss_bytes

RSS_TARGET_MB = 35.0
MB = 1e6
RULES = REPO / "rules" / "memory.yaml"
DEFAULT_INTERVAL = 15.0  # the built-in rules' interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ticks", type=int, default=5, help="1 s ticks of rules/memory.yaml")
    parser.add_argument(
        "--default-ticks", type=int, default=2, help="15 s ticks of the built-in rules"
    )
    args = parser.parse_args()
    wait = args.default_ticks * DEFAULT_INTERVAL + 1.0
    after = f"after {args.default_ticks} ticks"
    _report("`memalert run` (built-in rules)", after, *_measure(None, (), wait))
    port = free_port()
    listen = ("--listen", f"127.0.0.1:{port}")
    _report("`memalert run --listen` (README)", after, *_measure(None, listen, wait))
    with tempfile.TemporaryDirectory(prefix="memalert-daemon-rss-rules-") as tmp:
        rules = Path(tmp) / "memory.yaml"
        text, count = re.subn(r"(?m)^interval: .*$", "interval: 1s", RULES.read_text())
        if count != 1:
            raise SystemExit(f"{RULES}: no top-level `interval:` line to change")
        rules.write_text(text)
        # Bounded: the ticks run at 1 s whatever happens; one more second for the last.
        measured = _measure(rules, (), args.ticks + 1.0)
    _report("`memalert run rules/memory.yaml`", f"after {args.ticks} ticks", *measured)


def _measure(rules: Path | None, options: tuple[str, ...], wait: float) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a daemon on `rules` (None: the built-in rules) after `wait` s."""
    processes = Processes()
    try:
        with tempfile.TemporaryDirectory(prefix="memalert-daemon-rss-") as tmp:
            work = Path(tmp)
            (pid,) = processes.sleepers(1)
            pidfile = work / "app.pid"
            pidfile.write_text(f"{pid}\n")
            env = {"MEMALERT_PIDFILE": str(pidfile)}
            daemon = processes.daemon(
                rules, work / "state.db", work / "daemon.log", env, options=options
            )
            time.sleep(wait)
            rss, peak = rss_bytes(daemon), peak_rss_bytes(daemon)
            processes.stop_daemon(daemon)
    finally:
        processes.close()
    return rss, peak


def _report(what: str, after: str, rss: int, peak: int) -> None:
    print(
        f"daemon RSS, {what}, {after}: "
        f"{rss / MB:.1f} MB ({rss / MiB:.1f} MiB; peak {peak / MB:.1f} MB) "
        f"(target <= {RSS_TARGET_MB:.0f} MB) ratio {RSS_TARGET_MB * MB / rss:.2f}"
    )


if __name__ == "__main__":
    main()
