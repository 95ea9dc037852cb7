"""The error hierarchy and the exit-code policy: each error carries its `Diagnostic`s and its code.

Every error memalert raises for bad input is a `MemalertError`, and carries
`Diagnostic`s (file, line, column, message) rather than text to parse back, so
`memalert check`, the other commands and the daemon's log all print them as
`FILE:LINE:COL: message`, the format compilers and editors understand. The CLI
and the daemon take the exit code from the error's class and nowhere else:

- 0: done; for `check` the files are valid, for `test` every test passed;
- 1: a rule file or notifier is invalid (whichever command read it), or the
  command's answer is no: a failed test, an alert at `--fail-on`, a failed
  `notify-test` delivery, no such silence to expire;
- 2: other bad input or environment: observations, test files, options, the
  state file, an address in use, a missing extra;
- 70: a bug of ours, reported without a traceback; 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE
EXIT_INTERRUPTED = 130


class _Place(Protocol):
    @property
    def file(self) -> str: ...
    @property
    def line(self) -> int: ...
    @property
    def col(self) -> int: ...


@dataclass(frozen=True, kw_only=True, slots=True, order=True)
class Diagnostic:
    """One problem at one place in one file (line and column are 1-based).

    A problem that belongs to no file (a bad option, a state file that cannot
    be opened) has `file` "" and prints as its message alone.
    """

    file: str
    line: int
    col: int
    message: str

    @classmethod
    def at(cls, place: _Place | None, message: str) -> Diagnostic:
        """`message` at `place` (a `Position`, another Diagnostic), or nowhere when None."""
        if place is None:
            return cls(file="", line=0, col=0, message=message)
        return cls(file=place.file, line=place.line, col=place.col, message=message)

    def __str__(self) -> str:
        if not self.file:
            return self.message
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class MemalertError(Exception):
    """Base class: `diagnostics` say what went wrong and where; `exit_code` is the CLI's code.

    Made from one message (a problem of no file) or from Diagnostics.
    """

    exit_code: ClassVar[int] = EXIT_BAD_INPUT

    def __init__(self, problem: str | Iterable[Diagnostic] = "") -> None:
        found: tuple[Diagnostic, ...]
        if isinstance(problem, str):
            found = (Diagnostic.at(None, problem),) if problem else ()
        else:
            found = tuple(problem)
        self.diagnostics = found
        super().__init__("\n".join(str(d) for d in found))


class RuleFileError(MemalertError, ValueError):
    """One or more rule files are invalid; `diagnostics` lists every problem found, in order."""

    exit_code = EXIT_FAILED

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        super().__init__(sorted(diagnostics))


class InputError(MemalertError, ValueError):
    """Bad input other than a rule file (observations, test files), every problem in order."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        super().__init__(sorted(diagnostics))


class SetupError(MemalertError):
    """The machine refuses what was asked: an address in use, an extra not installed."""
