"""The running engine: `AlertEngine`, the APScheduler tick, figures, snapshots, the leak
follow-up and `memalert record`.

Imports everything below it; never `http`, `export` or `cli`.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
