"""Exports: the engine's snapshot (Prometheus exposition, OTLP), and the rule files as
Prometheus rules, an Alertmanager configuration and promtool tests (docs/scale-out.md).

Imports `live` (the snapshot) and below.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
