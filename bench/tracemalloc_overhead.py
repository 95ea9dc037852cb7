"""What tracing costs: an allocation-heavy workload with tracemalloc off, then on.

This is why `memalert.engine.allocations.attribution` keeps tracemalloc off until a leak is
suspected: the issue expects tracing to slow allocation-heavy code several times. The workload
builds small dicts, strings and lists, as request handling and parsing do, 20
calls deep, as a handler under a web framework runs: tracing cost grows with the
frames kept per allocation. Each figure is the median of several interleaved runs;
the factor is on / off.

    python bench/tracemalloc_overhead.py [--runs 5] [--items 100000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memalert.engine.allocations.attribution import DEFAULT_FRAMES

STACK_DEPTH = 20


def workload(items: int) -> int:
    """Allocate and drop `items` small records, keeping a bounded window alive."""
    window: list[dict[str, object]] = []
    total = 0
    for i in range(items):
        record: dict[str, object] = {"id": i, "name": f"item-{i}", "tags": [i, i + 1, str(i)]}
        window.append(record)
        if len(window) >= 1000:
            total += len(window)
            window = []
    return total


def at_depth(depth: int, items: int) -> int:
    return workload(items) if depth == 0 else at_depth(depth - 1, items)


def timed(items: int, frames: int | None) -> float:
    """Seconds for one workload run, traced with `frames` frames (None: untraced)."""
    if frames is not None:
        tracemalloc.start(frames)
    try:
        started = time.perf_counter()
        at_depth(STACK_DEPTH, items)
        return time.perf_counter() - started
    finally:
        if frames is not None:
            tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()

    settings: list[int | None] = [None, *sorted({1, DEFAULT_FRAMES, 10})]
    times: dict[int | None, list[float]] = {frames: [] for frames in settings}
    workload(args.items // 10)  # warm up
    # Interleaved, so a burst of load on a shared machine hits every setting alike.
    for _ in range(args.runs):
        for frames in settings:
            times[frames].append(timed(args.items, frames))
    off = statistics.median(times[None])
    print(f"tracemalloc off: {args.items / off / 1e6:.2f}M records/s ({off * 1000:.0f} ms)")
    for frames in settings[1:]:
        on = statistics.median(times[frames])
        note = " (what diagnose() uses)" if frames == DEFAULT_FRAMES else ""
        print(
            f"tracemalloc on, {frames} frame(s): {args.items / on / 1e6:.2f}M records/s "
            f"({on * 1000:.0f} ms) slowdown {on / off:.1f}x{note}"
        )


if __name__ == "__main__":
    main()
