"""The pure alerting core: staleness, the alert state machine, `evaluate`, routing,
messages, views, and the tick pipeline that feeds the trend detector into evaluation.

Pure; imports `core`, `rules`, `trend`.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
