"""The `memalert` command line: argument parsing, commands, the daemon's process wrapper.

Exit codes come from the error classes (memalert.engine.core.errors).

The top layer: nothing imports it.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
