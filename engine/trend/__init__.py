"""The trend leak detector: pure per-target state folded one sample at a time.

Pure; imports `core` only.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
