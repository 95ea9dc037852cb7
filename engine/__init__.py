"""memalert's engine: tracker, leak detectors, analyzer and the rule evaluator.

The public names are imported lazily so that `memalert check` and friends do
not pay for psutil and the samplers at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memalert.engine.allocations.analyzer import AllocationAnalyzer
    from memalert.engine.allocations.leaks import LeakDetector
    from memalert.engine.live.alert_engine import AlertEngine
    from memalert.engine.sources.tracker import MemoryTracker

__all__ = ["AlertEngine", "AllocationAnalyzer", "LeakDetector", "MemoryTracker"]

_HOMES = {
    "AlertEngine": "memalert.engine.live.alert_engine",
    "AllocationAnalyzer": "memalert.engine.allocations.analyzer",
    "LeakDetector": "memalert.engine.allocations.leaks",
    "MemoryTracker": "memalert.engine.sources.tracker",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
