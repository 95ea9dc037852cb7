"""Memory one watched discovered target costs the engine, once its history is full.

Issue 13 asks how many bytes a watched target costs. `--targets` discovered
processes (a fake /proc tree) go through the parts the live engine keeps per
target, each measured with tracemalloc (bytes still allocated, divided by the
number of targets):

- the tracker: the discovered names (`NameBook`) and their cached labels;
- the trend detector's state, fed one sample per bucket for its whole
  history (50 h at the defaults), its size once full;
- the evaluator's series (`EvalState.series`) under the built-in rules;
- the dashboard's ring of recent memory (`MemoryHistory`, 720 ticks).

Target: 64 KiB a target (100 watched targets, the built-in cap, in 6.4 MB).

    python bench/target_bytes.py [--targets 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memalert.engine.alerting.evaluate import EvalState, evaluate
from memalert.engine.live.history import RECENT_TICKS, MemoryHistory
from memalert.engine.rules.load import DEFAULT_RULES, load_rules
from memalert.engine.sources.procfs import PAGE_SIZE
from memalert.engine.sources.tracker import MemoryTracker
from memalert.engine.trend.detector import TrendDetector

TARGET_BYTES = 64 * 1024
MiB = 1 << 20


def fake_proc(root: Path, count: int) -> None:
    root.mkdir()
    (root / "meminfo").write_text("MemTotal: 16777216 kB\nMemAvailable: 8388608 kB\n")
    for pid in range(100, 100 + count):
        directory = root / str(pid)
        directory.mkdir()
        rss = (60 + pid % 50) * MiB
        fields = ["S", "1", *["0"] * 17, "1000", str(rss * 2), str(rss // PAGE_SIZE)]
        (directory / "stat").write_text(f"{pid} (worker) {' '.join(fields)}\n")
        (directory / "cmdline").write_bytes(f"/usr/bin/python3\0/srv/worker{pid}.py\0".encode())
        (directory / "cgroup").write_text("0::/\n")


def allocated(build: Callable[[], object]) -> tuple[object, int]:
    """What `build` returns, and the bytes it left allocated."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return kept, after - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Few: filling 50 h of detector history under tracemalloc takes a while.
    parser.add_argument("--targets", type=int, default=5)
    args = parser.parse_args()
    n = args.targets
    ruleset = load_rules([DEFAULT_RULES], env={})
    spec = next(t for t in ruleset.targets if t.discover == "processes")
    spec = type(spec)(**{**{f: getattr(spec, f) for f in spec.__slots__}, "max_targets": n})
    with tempfile.TemporaryDirectory() as scratch:
        proc = Path(scratch) / "proc"
        fake_proc(proc, n)
        tracker = MemoryTracker(1, proc_root=proc, cgroup_root=Path(scratch))
        samples = tracker.sample_targets([spec], 0.0)  # imports and caches out of the way
        tracker = MemoryTracker(1, proc_root=proc, cgroup_root=Path(scratch))
        _, tracker_bytes = allocated(lambda: tracker.sample_targets([spec], 0.0) and tracker)

    detector = TrendDetector.for_ruleset(ruleset)
    params = detector.params
    buckets = params.history_buckets + 2

    def fill_detector() -> TrendDetector:
        for bucket in range(buckets):
            ts = bucket * params.bucket_seconds
            detector.observe([s.__class__(s.metric, s.labels, s.value, ts) for s in samples])
        return detector

    _, detector_bytes = allocated(fill_detector)
    now = buckets * params.bucket_seconds

    def one_tick() -> EvalState:
        # The tick's samples count: the evaluator's state keeps them until the next one.
        ticked = [s.__class__(s.metric, s.labels, s.value, now) for s in samples]
        return evaluate(ruleset, ticked + detector.observe(ticked), EvalState(), now)[0]

    state, series_bytes = allocated(one_tick)
    history = MemoryHistory()

    def fill_history() -> MemoryHistory:
        for tick in range(RECENT_TICKS):
            ts = tick * ruleset.interval
            history.add([s.__class__(s.metric, s.labels, s.value, ts) for s in samples], ts, 15.0)
        return history

    _, history_bytes = allocated(fill_history)
    del state
    parts = {
        "tracker (names, labels)": tracker_bytes,
        "trend detector (full history)": detector_bytes,
        "evaluator series": series_bytes,
        "dashboard ring (720 ticks)": history_bytes,
    }
    total = sum(parts.values()) / n
    for what, size in parts.items():
        print(f"  {what}: {size / n:,.0f} bytes a target")
    print(
        f"one watched target, {n} discovered processes: {total:,.0f} bytes "
        f"(target {TARGET_BYTES:,} bytes) ratio {TARGET_BYTES / total:.2f}"
    )


if __name__ == "__main__":
    main()
