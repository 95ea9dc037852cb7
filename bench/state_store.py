"""State store and delivery speed on a real SQLite file (WAL, synchronous=FULL).

Budgets (ours; Prometheus keeps this state in memory, so there is no seed figure):
a tick's commit must be a small share of the 15 s interval and of the 20 ms
evaluation budget, and the outbox must drain faster than any notifier sends.
- commit_tick with 10,000 instances, 1% changing + 1 notification: <= 20 ms
- commit_tick with nothing changed: <= 10 ms (the diff walks 10,000 entries)
- opening a 10,000-instance state file (integrity check + load): <= 200 ms
- delivery with an instant notifier: >= 200 notifications/s (one fsync each)
Run: python bench/state_store.py [--ticks N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memalert.engine.alerting.evaluate import EvalState, InstanceState
from memalert.engine.alerting.routing import Notification
from memalert.engine.core.model import AlertFired, Labels, Severity
from memalert.engine.delivery.worker import DeliveryWorker
from memalert.engine.store.state import StateStore
from memalert.notifiers.testing import RecordingNotifier

INSTANCES = 10_000
T0 = 1_764_000_000.0


def ratio_line(name: str, value: float, target: float, unit: str, *, higher: bool) -> str:
    ratio = value / target if higher else target / value
    return f"{name}: {value:.2f} {unit} (target {target:g} {unit}) ratio {ratio:.2f}"


def notification(now: float, n: int) -> Notification:
    event = AlertFired(
        at=now,
        rule="rss-high",
        metric="rss_bytes",
        severity=Severity.WARNING,
        labels=Labels(target=f"t{n}"),
        value=2e9,
        threshold=1e9,
        summary="t uses 2 GB",
    )
    return Notification(notifier="ops", at=now, events=(event,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=None, help="where the state file goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "state.db"
        run(path, args.ticks)


def run(path: Path, ticks: int) -> None:
    rng = random.Random(7)
    keys = [("rss-high", Labels(target=f"t{i}", component=f"c{i % 50}")) for i in range(INSTANCES)]
    instances = {
        key: InstanceState(active_since=(T0, None), firing=Severity.WARNING, firing_since=T0)
        for key in keys
    }
    store = StateStore(path)
    start = time.perf_counter()
    store.commit_tick(EvalState(instances=dict(instances)), [], now=T0)
    first_ms = (time.perf_counter() - start) * 1000

    changing: list[float] = []
    changing_cpu: list[float] = []
    steady: list[float] = []
    for tick in range(1, ticks + 1):
        now = T0 + 15 * tick
        for key in rng.sample(keys, INSTANCES // 100):
            instances[key] = InstanceState(
                active_since=(T0, now), firing=Severity.WARNING, firing_since=T0, last_notified=now
            )
        state = EvalState(instances=dict(instances))
        start, cpu = time.perf_counter(), time.process_time()
        store.commit_tick(state, [notification(now, tick)], now=now)
        changing.append((time.perf_counter() - start) * 1000)
        changing_cpu.append((time.process_time() - cpu) * 1000)
        start = time.perf_counter()
        store.commit_tick(state, [], now=now)
        steady.append((time.perf_counter() - start) * 1000)
    store.close()

    start = time.perf_counter()
    reopened = StateStore(path)
    loaded = reopened.load_state()
    open_ms = (time.perf_counter() - start) * 1000
    assert len(loaded.instances) == INSTANCES

    backlog = 500
    for n in range(backlog):
        reopened.commit_tick(loaded, [notification(T0, n)], now=T0)
    later = T0 + 15 * (ticks + 1)  # every queued item is due
    worker = DeliveryWorker(reopened, {"ops": RecordingNotifier("ops")}, clock=lambda: later)
    start = time.perf_counter()
    delivered = worker.run_once(later)
    per_second = delivered / (time.perf_counter() - start)
    reopened.close()

    size_kb = path.stat().st_size / 1024
    print(
        f"state file: {size_kb:.0f} KiB for {INSTANCES} instances;"
        f" first full commit {first_ms:.0f} ms"
    )
    median = statistics.median(changing)
    print(ratio_line("commit_tick, 1% changed (median)", median, 20.0, "ms", higher=False))
    p95 = sorted(changing)[int(0.95 * len(changing))]
    cpu = statistics.median(changing_cpu)
    print(f"  p95 {p95:.2f} ms, max {max(changing):.2f} ms; CPU {cpu:.2f} ms, the rest is fsync")
    print(
        ratio_line(
            "commit_tick, nothing changed (median)",
            statistics.median(steady),
            10.0,
            "ms",
            higher=False,
        )
    )
    print(ratio_line("open + integrity check + load_state", open_ms, 200.0, "ms", higher=False))
    print(
        ratio_line("delivery, instant notifier", per_second, 200.0, "notifications/s", higher=True)
    )


if __name__ == "__main__":
    main()
