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
import contextlib
import functools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memalert.engine.core.model import TargetSpec
from memalert.engine.rules.load import DEFAULT_RULES, load_rules
from memalert.engine.sources.base import TargetUnavailableError, read_text
from memalert.engine.sources.tracker import MemoryTracker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

TARGET_MS = 50.0
MiB = 1 << 20


def discover(kind: str) -> TargetSpec:
    return TargetSpec(
        name=kind,
        kind="discover",
        discover=kind,
        min_rss_bytes=0.0,
        max_targets=100_000,
        forget_after_seconds=3600.0,
    )


DISCOVERED = [discover("processes"), discover("cgroups")]


def fake_cgroups(root: Path, count: int) -> None:
    (root / "cgroup.controllers").write_text("memory\n")
    for n in range(count):
        unit = root / "system.slice" / f"svc{n}.service"
        unit.mkdir(parents=True)
        (unit / "memory.current").write_text(f"{(100 + n) * MiB}\n")
        (unit / "memory.max").write_text("max\n")
        (unit / "memory.stat").write_text("anon 1\ninactive_file 4096\nactive_file 0\n")
        (unit / "memory.pressure").write_text(
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        )


@contextlib.contextmanager
def sleepers(count: int) -> Iterator[None]:
    """`count` real processes that do nothing; all killed with their session at the end."""
    leader = subprocess.Popen(
        ["sh", "-c", f"for i in $(seq {count}); do sleep 600 & done; wait"],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(Path("/proc").iterdir())) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # every fork done
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(timeout=60)


def discovered_tick(
    label: str, tracker: MemoryTracker, targets: list[TargetSpec], runs: int
) -> None:
    first = time.process_time()
    samples = tracker.sample_targets(targets, 0.0)
    first_ms = (time.process_time() - first) * 1000.0
    infos = [s.labels for s in samples if s.metric == "target_info"]
    counts = {
        "processes": sum(1 for labels in infos if "pid" in labels),
        "cgroups": sum(1 for labels in infos if "cgroup" in labels),
    }
    tick_ms = median_cpu_ms(lambda: tracker.sample_targets(targets, 0.0), runs)
    print(
        f"one tick, discovered {counts['processes']} processes + {counts['cgroups']} cgroups"
        f" ({label}): {tick_ms:.1f} ms CPU (target {TARGET_MS:.0f} ms) ratio"
        f" {TARGET_MS / tick_ms:.2f}; the first tick, which names them: {first_ms:.1f} ms"
    )


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
    parser.add_argument("--cgroups", type=int, default=100)
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
    discovered_tick("this host as it is", MemoryTracker(), DISCOVERED, args.runs)
    with tempfile.TemporaryDirectory() as scratch, sleepers(args.processes):
        fake_cgroups(Path(scratch), args.cgroups)
        added = f"{args.processes} sleep processes added, fake cgroup tree"
        discovered_tick(added, MemoryTracker(cgroup_root=scratch), DISCOVERED, args.runs)
        # The built-in rules watch the 100 largest of 50 MiB or more: the rest is the scan.
        defaults = [t for t in load_rules([DEFAULT_RULES], env={}).targets if t.discover]
        tracker = MemoryTracker(cgroup_root=scratch)
        discovered_tick(
            f"{added}, the built-in rules' floors and caps", tracker, defaults, args.runs
        )


if __name__ == "__main__":
    main()
