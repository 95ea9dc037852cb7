"""A real in-memory SnapshotSource and a populated snapshot, for the HTTP and OTLP tests."""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace

from memalert.engine.alerting.views import AlertView
from memalert.engine.allocations.leaks import LeakAnalysis, LeakInfo, PatternKind, SuspiciousPattern
from memalert.engine.core.model import Labels, Sample, Severity, Silence
from memalert.engine.live.snapshot import EngineSnapshot, TargetLeak

START = 1_764_000_000.0
TOKEN = "test-token-0123456789"
SLACK_SECRET = "T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"
SLACK_URL = f"https://hooks.slack.com/services/{SLACK_SECRET}"
MiB = 1 << 20


def target_samples(target: str, ts: float, *, rss: float = 120 * MiB) -> list[Sample]:
    labels = Labels(target=target)
    values = {
        "rss_bytes": rss,
        "vms_bytes": 4 * rss,
        "limit_bytes": 2_000 * MiB,
        "pressure": rss / (2_000 * MiB),
        "up": 1.0,
        "leak_bytes": 30 * MiB,
        "leak_growth_bytes_per_hour": 12 * MiB,
        "leak_confidence": 0.9,
    }
    return [Sample(metric, labels, value, ts) for metric, value in values.items()]


def populated_snapshot(now: float = START + 60) -> EngineSnapshot:
    """Two targets (one down), a component, an allocation site, alerts, leaks, a secret."""
    cache = Labels(target="api", component="cache")
    site = Labels(target="api", site="app.py:42")
    samples = [
        *target_samples("api", now),
        Sample("up", Labels(target="batch"), 0.0, now),
        Sample("component_bytes", cache, 52e6, now),
        Sample("component_allocations", cache, 200.0, now),
        Sample("site_growth_bytes", site, 8e6, now),
        # A label that carries a secret by mistake must come out masked.
        Sample("rss_bytes", Labels(target="hook", url=SLACK_URL), 1e6, now),
    ]
    alerts = (
        AlertView(
            rule="memory-leak",
            labels=Labels(target="api", component="cache"),
            state="firing",
            severity=Severity.CRITICAL,
            active_since=now - 30,
            value=52e6,
            summary=f"api leaks 52 MB; see {SLACK_URL}",
        ),
        AlertView(
            rule="high-rss",
            labels=Labels(target="api"),
            state="pending",
            severity=Severity.WARNING,
            active_since=now - 5,
            value=120 * MiB,
            summary="api uses 120 MiB",
        ),
    )
    leaks = (
        TargetLeak(
            target="api",
            component=None,
            leak_bytes=30 * MiB,
            growth_bytes_per_hour=12e6,
            confidence=0.9,
            time_to_limit_seconds=7200.0,
            patterns=("steady growth",),
            top_sites=(("app.py:42", 8e6),),
        ),
        # The engine lists the in-process detector's component leaks here too.
        TargetLeak(
            target="api",
            component="cache",
            leak_bytes=52e6,
            growth_bytes_per_hour=3e6,
            confidence=1.0,
            time_to_limit_seconds=None,
            patterns=("frequent_large_allocations",),
        ),
        TargetLeak(
            target="batch",
            component=None,
            leak_bytes=0.0,
            growth_bytes_per_hour=0.0,
            confidence=0.1,
            time_to_limit_seconds=None,
        ),
    )
    component_leaks = LeakAnalysis(
        potential_leaks=(
            LeakInfo(
                component="cache",
                allocation_count=200,
                total_size_bytes=52_000_000,
                average_size_bytes=260_000.0,
                growth_rate_bytes_per_hour=3e6,
                first_seen=now - 3600,
                last_seen=now,
            ),
        ),
        growth_rate_mb_per_hour=3.0,
        largest_allocations=(),
        suspicious_patterns=(
            SuspiciousPattern(
                component="cache",
                kind=PatternKind.FREQUENT_LARGE_ALLOCATIONS,
                count=7,
                detail="7 allocations of 1 MiB or more",
            ),
        ),
    )
    return EngineSnapshot(
        started_at=START,
        interval=15.0,
        last_tick_at=now,
        ticks_total=5,
        tick_durations=(0.01, 0.02, 0.03),
        samples=tuple(samples),
        alerts=alerts,
        leaks=leaks,
        component_leaks=component_leaks,
        notifications_total={("oncall", "delivered"): 3, ("oncall", "failed"): 1},
        outbox_backlog=2,
        dead_letters=0,
    )


class FakeSource:
    """Holds one snapshot and a dict of silences; thread-safe like the real engine."""

    def __init__(self, snapshot: EngineSnapshot) -> None:
        self._lock = threading.Lock()
        self._base = snapshot
        self._silences: dict[str, Silence] = {}
        self._ids = itertools.count(1)
        self._latest = snapshot
        self.fail_next_add: Exception | None = None

    def publish(self, snapshot: EngineSnapshot) -> None:
        with self._lock:
            self._base = snapshot
            self._rebuild()

    def _rebuild(self) -> None:
        self._latest = replace(self._base, silences=tuple(self._silences.values()))

    def latest(self) -> EngineSnapshot:
        return self._latest

    def add_silence(self, silence: Silence) -> str:
        with self._lock:
            if self.fail_next_add is not None:
                error, self.fail_next_add = self.fail_next_add, None
                raise error
            silence_id = f"s{next(self._ids)}"
            self._silences[silence_id] = replace(silence, id=silence_id)
            self._rebuild()
            return silence_id

    def expire_silence(self, silence_id: str) -> bool:
        with self._lock:
            found = self._silences.pop(silence_id, None)
            self._rebuild()
            return found is not None
