"""`memalert relay`: Alertmanager's webhooks delivered through memalert's notifiers.

Imports `http` (the server) and below. See docs/scale-out.md.
"""

from __future__ import annotations
