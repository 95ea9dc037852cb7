"""Tracker speed: snapshots of the own process, and one tick over 500 real processes.

Targets (issue 3): 100 snapshots under 10 ms (the original took 500 ms); one tick
sampling 500 processes under 100 ms. The 500 processes are real `sleep` children,
started here and killed before exit. Each figure is the median of several runs,
printed beside its target as a ratio (above 1 meets the target).

    python bench/snapshots.py [--processes 500] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memalert.engine.core.model import TargetSpec
from memalert.engine.sources.tracker import MemoryTracker

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

SNAPSHOT_TARGET_MS = 10.0
SNAPSHOT_ORIGINAL_MS = 500.0
TICK_TARGET_MS = 100.0


def median_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm up caches and imports
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def bench_snapshots(runs: int) -> None:
    tracker = MemoryTracker()

    def hundred() -> None:
        for _ in range(100):
            tracker.snapshot()

    ms = median_ms(hundred, runs)
    print(
        f"100 snapshots of own process: {ms:.2f} ms (target {SNAPSHOT_TARGET_MS:.0f} ms, "
        f"original {SNAPSHOT_ORIGINAL_MS:.0f} ms) ratio {SNAPSHOT_TARGET_MS / ms:.2f}, "
        f"{SNAPSHOT_ORIGINAL_MS / ms:.0f}x faster than the original"
    )


def start_sleepers(count: int, tag: str) -> list[subprocess.Popen[bytes]]:
    sleepers: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count):
            sleepers.append(  # noqa: PERF401 - one at a time, so a failure kills those started
                subprocess.Popen(
                    ["sleep", tag], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
                )
            )
    except BaseException:
        stop_all(sleepers)
        raise
    return sleepers


def stop_all(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait(timeout=30)


def bench_tick(name: str, targets: Sequence[TargetSpec], runs: int, processes: int) -> None:
    tracker = MemoryTracker()
    samples = tracker.sample_targets(targets, 0.0)
    down = sorted(tracker.last_errors.items())
    if down:
        raise SystemExit(f"{name}: targets down: {down[:3]}")
    ms = median_ms(lambda: tracker.sample_targets(targets, 0.0), runs)
    print(
        f"one tick, {processes} processes as {name}: {ms:.1f} ms "
        f"(target {TICK_TARGET_MS:.0f} ms) ratio {TICK_TARGET_MS / ms:.2f} "
        f"[{len(samples)} samples]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=500)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    bench_snapshots(args.runs)

    # A sleep duration nobody else uses marks our children's cmdline.
    tag = f"86399.{os.getpid()}"
    sleepers = start_sleepers(args.processes, tag)
    try:
        bench_tick(
            f"{args.processes} pid targets",
            [TargetSpec(name=f"p{s.pid}", kind="pid", pid=s.pid) for s in sleepers],
            args.runs,
            args.processes,
        )
        bench_tick(
            "1 process target (cmdline regex)",
            [TargetSpec(name="sleepers", kind="process", cmdline_pattern=re.escape(tag))],
            args.runs,
            args.processes,
        )
        bench_tick(
            "1 self target with children",
            [TargetSpec(name="tree", kind="self", children=True)],
            args.runs,
            args.processes,
        )
    finally:
        stop_all(sleepers)


if __name__ == "__main__":
    main()
