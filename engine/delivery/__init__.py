"""Draining the outbox: one lane per notifier, retries, per-URL progress, dead letters.

Imports `store`, the notifiers and the pure core.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
