"""Test doubles shipped as real code: tests and dry-run use them, nobody monkeypatches."""

from __future__ import annotations

import threading


class FakeClock:
    """A clock that moves only when told; call it like `time.time`."""

    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds!r})")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = float(now)
