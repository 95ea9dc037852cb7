"""The vocabulary every stage shares: value types (`model`), units, the error base,
`${VAR}` secrets and masking, the metric table (`metrics`).

Imports nothing else of memalert.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
