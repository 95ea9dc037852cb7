"""Where samples come from: /proc, cgroups v1/v2, PSI, the host, and the `MemoryTracker`
that turns target specs into samples.

The I/O edge for sampling; imports `core` only.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
