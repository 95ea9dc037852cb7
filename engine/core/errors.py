"""The error hierarchy: each error carries where it happened and the CLI exit code.

Errors about a file carry `Diagnostic`s so `memalert check` can print every one
as `FILE:LINE:COL: message`, the format compilers and editors understand.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True, order=True)
class Diagnostic:
    """One problem at one place in one file (line and column are 1-based)."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class MemalertError(Exception):
    """Base class; `exit_code` is what the CLI exits with when this reaches it."""

    exit_code = 2


class RuleFileError(MemalertError, ValueError):
    """One or more rule files are invalid; `diagnostics` lists every problem found."""

    exit_code = 1

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class InputError(MemalertError, ValueError):
    """Bad input other than a rule file (observations, test files): exit code 2."""

    exit_code = 2

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))
