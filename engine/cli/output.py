"""How every command reports an error: its diagnostics, one line each, on stderr."""

from __future__ import annotations

import sys

from memalert.engine.core.errors import Diagnostic, MemalertError


def print_error(line: str) -> None:
    print(line, file=sys.stderr)


def report_error(exc: MemalertError) -> None:
    """`FILE:LINE:COL: message` for a problem in a file, `error: message` for any other."""
    for diagnostic in exc.diagnostics or [Diagnostic.at(None, type(exc).__name__)]:
        print_error(str(diagnostic) if diagnostic.file else f"error: {diagnostic.message}")
