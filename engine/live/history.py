"""Recent memory of every watched target, for the dashboard (docs/http.md, "Dashboard").

A bounded ring of (time, bytes) per target, fed the tick's USS (else RSS) samples:
the last `RECENT_TICKS` ticks, for at most `MAX_TARGETS` targets (a target gone
longer than the ring's span is dropped), so its size never grows with time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from memalert.engine.core.model import Sample

RECENT_TICKS = 720  # three hours at the default 15 s
MAX_TARGETS = 1000
_SOURCES = ("uss_bytes", "rss_bytes")  # as the trend detector prefers them


class MemoryHistory:
    """Not thread-safe: the engine feeds it from its tick thread and publishes a copy."""

    def __init__(self, ticks: int = RECENT_TICKS, max_targets: int = MAX_TARGETS) -> None:
        self._ticks = ticks
        self._max_targets = max_targets
        self._rings: dict[str, deque[tuple[float, float]]] = {}

    def add(self, samples: Iterable[Sample], now: float, interval: float) -> None:
        chosen: dict[str, tuple[int, float, float]] = {}
        for sample in samples:
            if sample.metric not in _SOURCES or "component" in sample.labels:
                continue
            rank = _SOURCES.index(sample.metric)
            best = chosen.get(sample.target)
            if best is None or rank < best[0]:
                chosen[sample.target] = (rank, sample.ts, sample.value)
        for target, (_, ts, value) in chosen.items():
            ring = self._rings.get(target)
            if ring is None:
                if len(self._rings) >= self._max_targets:
                    continue
                ring = self._rings[target] = deque(maxlen=self._ticks)
            ring.append((ts, value))
        horizon = now - self._ticks * interval
        for target in [t for t, ring in self._rings.items() if not ring or ring[-1][0] < horizon]:
            del self._rings[target]

    def recent(self) -> Mapping[str, tuple[tuple[float, float], ...]]:
        return {target: tuple(ring) for target, ring in self._rings.items()}
