"""CPU of one tracker tick over 1,000 process targets, made from this machine's own processes.

Target (issue 13): one tick over 1,000 processes (and 100 cgroups) under 50 ms
of CPU. Every process of this host with a command line (kernel threads left
out) becomes `pid` targets, repeated under new names until there are
`--processes` of them (a host here has a few dozen processes; each target reads
its process's files again, as a distinct process would). The tick's CPU time
(time.process_time, so other load on the machine does not count) is the median
of `--runs` ticks. Beside it, for reference: reading `statm` alone as often,
the least a tick could do per process. Measures processes only, not cgroups.

    python bench/tick_cost.py [--processes 1000] [--runs 15]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memalert.engine.core.model import TargetSpec
from memalert.engine.sources.base import TargetUnavailableError, read_text
from memalert.engine.sources.tracker import MemoryTracker

if TYPE_CHECKING:
    from collections.abc import Callable

TARGET_MS = 50.0


def user_pids() -> list[int]:
    """This host's processes that have a command line: kernel threads have none."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:  # gone, or not ours to read
                continue
    return pids


def median_cpu_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm up caches and imports
    times = []
    for _ in range(runs):
        started = time.process_time()
        action()
        times.append((time.process_time() - started) * 1000.0)
    return statistics.median(times)


def read_each(pids: list[int], name: str) -> None:
    for pid in pids:
        try:
            read_text(f"/proc/{pid}/{name}")  # the tracker's own reader
        except TargetUnavailableError:
            continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    tracker = MemoryTracker()
    # Processes that are gone by the first tick (a short-lived command) are left out.
    found = user_pids()
    tracker.sample_targets([TargetSpec(name=str(p), kind="pid", pid=p) for p in found], 0.0)
    real = [pid for pid in found if str(pid) not in tracker.last_errors]
    pids = [real[n % len(real)] for n in range(args.processes)]
    targets = [TargetSpec(name=f"t{n}-{pid}", kind="pid", pid=pid) for n, pid in enumerate(pids)]
    tracker.sample_targets(targets, 0.0)
    down = len(tracker.last_errors)
    tick_ms = median_cpu_ms(lambda: tracker.sample_targets(targets, 0.0), args.runs)
    print(
        f"one tick, {len(pids)} pid targets over this host's {len(real)} processes "
        f"({down} down at the first tick): {tick_ms:.1f} ms CPU "
        f"(target {TARGET_MS:.0f} ms) ratio {TARGET_MS / tick_ms:.2f}, "
        f"{tick_ms * 1000.0 / len(pids):.0f} us per process"
    )
    # For reference: what reading one file costs, as often as the tick reads it.
    for name in ("statm", "status", "smaps_rollup"):
        ms = median_cpu_ms(functools.partial(read_each, pids, name), args.runs)
        print(
            f"  reference: reading {name} alone as often: {ms:.1f} ms CPU, "
            f"{ms * 1000.0 / len(pids):.1f} us per process"
        )


if __name__ == "__main__":
    main()
