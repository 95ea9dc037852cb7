"""Replays and rule tests: observation files (read and write), `dry-run`, `memalert test`
and its series notation.

Imports the pure core (`alerting`, `rules`, `trend`, `core`).

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
