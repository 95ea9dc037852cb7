"""Rule files: YAML source with positions, schema check, semantic checks and compilation
into `memalert.engine.core.model` values; summary templates.

Pure; imports `core` (and `trend` for detector settings).

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
