"""Shared set-up: puts tests/ and tests/engine/ on sys.path so the kits import by name.

pytest's rootdir insertion already adds tests/ (this file's folder); the engine tests
sit one folder per engine subpackage (docs/architecture.md), so the kits they share
(store_kit, memchildren, ...) live in tests/engine/ and are added here.
"""

from __future__ import annotations

import sys
from pathlib import Path

_KITS = str(Path(__file__).resolve().parent / "engine")
if _KITS not in sys.path:
    sys.path.insert(0, _KITS)
