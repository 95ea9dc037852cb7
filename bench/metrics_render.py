"""/metrics for 1,000 targets: rendering time of the classic text format per tick, and per scrape.

Target (issue 5): rendering /metrics for 1,000 targets under 20 ms. Each target
carries what a live tick gives it: 7 tracker metrics and 3 detector metrics,
plus 50 firing alerts, so 10,000 series. Three figures, each the median of
several runs, printed beside the target as a ratio (above 1 meets it), then
prometheus-client's own writer on the same snapshots for reference:

- first render: label masking not yet cached (the first tick after start);
- per-tick render: a new snapshot of the same targets (every tick after that);
- per-scrape: a repeated scrape of the same snapshot through HttpApp, which
  reuses the body rendered for that snapshot.

    python bench/metrics_render.py [--targets 1000] [--runs 15]
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

from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from memalert.engine.alerting.views import AlertView
from memalert.engine.core.model import Labels, Sample, Severity, Silence
from memalert.engine.export.exposition import EngineCollector, exported_labels, render_metrics
from memalert.engine.http.app import HttpApp, Request
from memalert.engine.live.snapshot import EngineSnapshot

if TYPE_CHECKING:
    from collections.abc import Callable

TARGET_MS = 20.0
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
MiB = 1 << 20
METRICS = (
    "rss_bytes",
    "vms_bytes",
    "uss_bytes",
    "swap_bytes",
    "limit_bytes",
    "pressure",
    "up",
    "leak_bytes",
    "leak_growth_bytes_per_hour",
    "leak_confidence",
)


class StaticSource:
    def __init__(self, snapshot: EngineSnapshot) -> None:
        self.snapshot = snapshot

    def latest(self) -> EngineSnapshot:
        return self.snapshot

    def add_silence(self, silence: Silence) -> str:
        raise NotImplementedError

    def expire_silence(self, silence_id: str) -> bool:
        raise NotImplementedError


def snapshot_of(targets: int, tick: int) -> EngineSnapshot:
    now = 1_764_000_000.0 + 15 * tick
    samples: list[Sample] = []
    for n in range(targets):
        # New Labels objects every tick, as the engine builds them.
        labels = Labels(target=f"service-{n:04d}")
        rss = (100 + n % 400) * MiB + tick * 4096
        samples.extend(
            Sample(metric, labels, float(rss + i), now) for i, metric in enumerate(METRICS)
        )
    alerts = tuple(
        AlertView(
            rule="memory-leak",
            labels=Labels(target=f"service-{n:04d}"),
            state="firing",
            severity=Severity.WARNING,
            active_since=now - 600,
            value=1e8,
            summary="leaking",
        )
        for n in range(min(50, targets))
    )
    return EngineSnapshot(
        started_at=1_764_000_000.0,
        interval=15.0,
        last_tick_at=now,
        ticks_total=tick,
        tick_durations=(0.05,) * 20,
        samples=tuple(samples),
        alerts=alerts,
    )


def median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def report(name: str, ms: float) -> None:
    print(f"{name}: {ms:.2f} ms (target {TARGET_MS:.0f} ms) ratio {TARGET_MS / ms:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    snapshots = [snapshot_of(args.targets, tick) for tick in range(args.runs + 1)]
    body, _ = render_metrics(snapshots[0])
    series = sum(1 for line in body.splitlines() if not line.startswith(b"#"))
    print(f"{args.targets} targets, {series} series, {len(body) / 1024:.0f} KiB of text")

    def first() -> None:
        exported_labels.cache_clear()
        render_metrics(snapshots[0])

    report("first render (label masking not cached)", median_ms(first, args.runs))
    ticks = iter(snapshots[1:])
    report(
        "per-tick render (a new snapshot)",
        median_ms(lambda: render_metrics(next(ticks)), args.runs),
    )
    app = HttpApp(StaticSource(snapshots[0]))
    scrape = Request(method="GET", target="/metrics", headers={})
    app.handle(scrape)
    report("per-scrape (same snapshot, HttpApp)", median_ms(lambda: app.handle(scrape), args.runs))
    ticks = iter(snapshots[1:])
    report(
        "per-tick render, OpenMetrics (what Prometheus asks for by default)",
        median_ms(lambda: render_metrics(next(ticks), OPENMETRICS), args.runs),
    )
    # For reference, not a target: prometheus-client's own writers, which ours stand in for.
    for name, writer in (("classic", generate_latest), ("OpenMetrics", openmetrics_latest)):
        collector = EngineCollector(iter(snapshots[1:]).__next__)
        ms = median_ms(functools.partial(writer, collector), args.runs)
        report(f"reference: prometheus-client's {name} writer per tick", ms)


if __name__ == "__main__":
    main()
