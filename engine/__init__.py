"""memalert's engine: tracker, leak detectors, analyzer and the rule evaluator.

The public names are imported lazily so that `memalert check` and friends do
not pay for psutil and the samplers at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.alert_engine import AlertEngine
    from engine.analyzer import AllocationAnalyzer
    from engine.leaks import LeakDetector
    from engine.tracker import MemoryTracker

__all__ = ["AlertEngine", "AllocationAnalyzer", "LeakDetector", "MemoryTracker"]

_HOMES = {
    "AlertEngine": "engine.alert_engine",
    "AllocationAnalyzer": "engine.analyzer",
    "LeakDetector": "engine.leaks",
    "MemoryTracker": "engine.tracker",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
