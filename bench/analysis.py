"""Analysis speed: `analyze_leaks()` and every analyzer report over 1,000 components
and 1,000,000 recorded allocations.

Target (issue 3): each under 10 ms (the original: 100 ms over 10,000 allocations).
The workload: 1,000 components picked at random, three operations each, a size mix
from 16 B to 2 MiB, every tenth allocation with one of five stack traces, and a
third of the components freeing what they allocate. Two figures per report:

- cold: the worst case, with the pending buffer full (FLUSH_EVERY - 1 records,
  allocations and frees, spread over all components), so the call first folds
  them in (`timeline(component)` folds that component's only);
- warm: nothing pending, only the analysis itself.

Each is the median over --runs calls (wall clock), printed beside the target as a
ratio (above 1 meets it), with the CPU time of the same calls in brackets: the
bench machine is shared, and CPU time is what the code itself costs.

    python bench/analysis.py [--components 1000] [--allocations 1000000] [--runs 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memalert.engine.allocations.analyzer import AllocationAnalyzer
from memalert.engine.allocations.leaks import LeakDetector
from memalert.engine.allocations.records import FLUSH_EVERY
from memalert.engine.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable


TARGET_MS = 10.0
ORIGINAL_MS = 100.0
SIZES = (16, 48, 64, 128, 256, 512, 900, 4096, 70_000, 2 * 2**20)
OPERATIONS = ("read", "parse", "cache")
TRACES = tuple(f"app.py:{line} in handler\nlib.py:{line * 7} in alloc" for line in range(5))


Log = LeakDetector | AllocationAnalyzer


class Workload:
    """An endless stream of recording calls; `record` continues where it stopped."""

    def __init__(self, components: int, seed: int = 1) -> None:
        rnd = random.Random(seed)
        self.names = [f"component-{i}" for i in range(components)]
        self.freeing = set(self.names[::3])
        self.picks = [rnd.randrange(components) for _ in range(65536)]
        self.sizes = [rnd.choice(SIZES) for _ in range(65536)]
        self.allocations = 0
        self.free_due: tuple[str, int] | None = None  # the free that follows an allocation

    def record(self, log: Log, calls: int) -> None:
        """Make `calls` recording calls: allocations, each followed by its free if freeing."""
        names, picks, sizes, freeing = self.names, self.picks, self.sizes, self.freeing
        for _ in range(calls):
            if self.free_due is not None:
                log.record_deallocation(*self.free_due)
                self.free_due = None
                continue
            i = self.allocations
            self.allocations += 1
            name = names[picks[i & 65535]]
            size = sizes[i & 65535]
            trace = TRACES[i // 10 % 5] if i % 10 == 0 else None
            log.record_allocation(
                name, OPERATIONS[i % 3], size, timestamp=1.0e9 + i * 0.001, stack_trace=trace
            )
            if name in freeing:
                self.free_due = (name, size)


def timed(call: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def report(name: str, cold: list[tuple[float, float]], warm: list[tuple[float, float]]) -> None:
    for label, runs in (("cold", cold), ("warm", warm)):
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(
            f"{name} ({label}): {wall:.2f} ms [cpu {cpu:.2f} ms] (target {TARGET_MS:.0f} ms) "
            f"ratio {TARGET_MS / wall:.2f} [cpu {TARGET_MS / cpu:.2f}]; "
            f"the original took {ORIGINAL_MS:.0f} ms for 10,000 allocations"
        )


def measure(
    log: Log, workload: Workload, call: Callable[[], object], runs: int
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    cold, warm = [], []
    for _ in range(runs):
        log.anomalies()  # fold everything, so exactly the next calls are pending
        workload.record(log, FLUSH_EVERY - 1)
        cold.append(timed(call))
        warm.append(timed(call))
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--components", type=int, default=1000)
    parser.add_argument("--allocations", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    analyzer = AllocationAnalyzer(clock=FakeClock())
    workloads: dict[Log, Workload] = {
        detector: Workload(args.components),
        analyzer: Workload(args.components),
    }
    for log, workload in workloads.items():
        started = time.perf_counter()
        while workload.allocations < args.allocations:
            workload.record(log, args.allocations - workload.allocations)
        log.anomalies()
        print(
            f"# recorded {args.allocations:,} allocations over {args.components:,} components "
            f"into {type(log).__name__} in {time.perf_counter() - started:.1f} s"
        )
    analysis = detector.analyze_leaks()
    print(
        f"# {len(analysis.potential_leaks)} potential leaks, "
        f"{len(analysis.suspicious_patterns)} suspicious patterns, "
        f"{len(analyzer.recommendations())} recommendations"
    )
    reports: list[tuple[str, Log, Callable[[], object]]] = [
        ("analyze_leaks", detector, detector.analyze_leaks),
        ("samples", detector, lambda: detector.samples("bench", 0.0)),
        ("memory_pressure", detector, detector.memory_pressure),
        ("top_allocators", analyzer, analyzer.top_allocators),
        ("top_operations", analyzer, analyzer.top_operations),
        ("size_distribution", analyzer, analyzer.size_distribution),
        ("recommendations", analyzer, analyzer.recommendations),
        ("fragmentation", analyzer, analyzer.fragmentation),
        ("efficiency_score", analyzer, analyzer.efficiency_score),
        ("timeline", analyzer, lambda: analyzer.timeline("component-7")),
    ]
    for name, log, call in reports:
        report(name, *measure(log, workloads[log], call, args.runs))


if __name__ == "__main__":
    main()
