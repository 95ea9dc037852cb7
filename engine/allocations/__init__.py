"""In-process allocation records: the component `LeakDetector`, the `AllocationAnalyzer`
and tracemalloc attribution.

Imports `core` only; limits are handed in, not read here.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
