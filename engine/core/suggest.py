"""Did-you-mean hints for unknown names in rule files, observations and templates.

Only error messages need them, so `difflib` is imported by the first one: the
daemon on valid rules never loads it (docs/operations.md, the daemon's RSS).
"""

from __future__ import annotations

from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like `word`, if one is close enough to be a likely typo."""
    import difflib  # noqa: PLC0415 - on an error path only; see the module docstring

    close = difflib.get_close_matches(word, list(choices), n=1)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'x'?` to append to an error message, or nothing."""
    near = closest(word, choices)
    return f"; did you mean {near!r}?" if near is not None else ""
