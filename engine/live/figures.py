"""The running engine's figures about itself, and the snapshot it publishes with them.

Ticks, failed and skipped ticks, recent tick durations and notifications sent
are counted from several threads (the scheduler's, the delivery lanes', a
reload); `EngineFigures` keeps them under one lock and swaps the published
`EngineSnapshot` whole, so readers on other threads (HTTP, OTLP) never see a
count from one tick beside the alerts of another.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from memalert.engine.live.parts import CountingNotifier
from memalert.engine.live.snapshot import EngineSnapshot

if TYPE_CHECKING:
    from memalert.notifiers.base import Notifier

# Tick durations kept for the snapshot's histogram / percentiles.
DURATIONS_KEPT = 120


class EngineFigures:
    """Counters of the engine's own work and the latest snapshot (thread-safe)."""

    def __init__(self, *, started_at: float, interval: float) -> None:
        self._lock = threading.Lock()
        self._ticks = self._errors = self._missed = 0
        self._durations: deque[float] = deque(maxlen=DURATIONS_KEPT)
        self._sent: Counter[tuple[str, str]] = Counter()
        self._snapshot = EngineSnapshot(started_at=started_at, interval=interval)

    def latest(self) -> EngineSnapshot:
        return self._snapshot

    def tick_done(self, seconds: float) -> None:
        """Count a tick that took `seconds`; `publish` shows it."""
        with self._lock:
            self._ticks += 1
            self._durations.append(seconds)

    def tick_failed(self, error: str) -> None:
        """Count a failed tick and show `error` (masked by the caller) at once."""
        with self._lock:
            self._errors += 1
            self._snapshot = replace(
                self._snapshot, last_tick_error=error, tick_errors_total=self._errors
            )

    def tick_missed(self) -> None:
        with self._lock:
            self._missed += 1
            self._snapshot = replace(self._snapshot, missed_ticks_total=self._missed)

    def counting(self, notifiers: Mapping[str, Notifier]) -> dict[str, Notifier]:
        """`notifiers`, each counting its sends' outcomes into the snapshot."""
        count: Callable[[str, str], None] = self._count_sent
        return {name: CountingNotifier(notifier, count) for name, notifier in notifiers.items()}

    def _count_sent(self, notifier: str, outcome: str) -> None:
        with self._lock:
            self._sent[(notifier, outcome)] += 1

    def publish(self, **fields: Any) -> None:
        """Replace the snapshot with one of `fields` (EngineSnapshot's) and the counts so far.

        A field not given takes its default: a good tick clears `last_tick_error`.
        """
        with self._lock:
            self._snapshot = EngineSnapshot(
                started_at=self._snapshot.started_at,
                ticks_total=self._ticks,
                missed_ticks_total=self._missed,
                tick_errors_total=self._errors,
                tick_durations=tuple(self._durations),
                notifications_total=dict(self._sent),
                **fields,
            )

    def amend(self, **changes: Any) -> None:
        """Change some fields of the latest snapshot (silences added between ticks)."""
        with self._lock:
            self._snapshot = replace(self._snapshot, **changes)
