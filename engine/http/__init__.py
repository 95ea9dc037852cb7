"""The HTTP API: views, the WSGI-free app and the threaded server.

Imports `export`, `live` and below.

See docs/architecture.md for the layers and what each may import.
"""

from __future__ import annotations
