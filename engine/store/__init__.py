"""The SQLite state file: schema and migrations, codec, instances, outbox, silences,
delivery progress and the daemon lock.

Imports the pure core and `memalert.notifiers.base`.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
