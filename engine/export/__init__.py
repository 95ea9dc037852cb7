"""Exports of the engine's snapshot: Prometheus exposition and OTLP.

Imports `live` (the snapshot) and below.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
