"""How much backtracking a process-matcher regex may do, decided from the pattern alone.

Python's `re` backtracks: `(a+)+x` against forty `a`s takes longer than a
tick, and `a.*b.*c` against 4,000 characters takes seconds. A `cmdline`
pattern runs against every process's arguments, which any local user sets, so
the pattern's shape has to bound the work. docs/targets.md explains the rules:

- refused: a repeat inside a repeat (`(a+)+`, `(\\w+\\s?)*`, `(a?){20}`) and an
  alternation inside a repeat whose branches can start alike (`(a|ab)*`): their
  work grows exponentially with the input;
- refused: three or more repeats that can each take a variable number of
  characters (`.*a.*b.*c`): their work grows as a power of the input;
- the input is cut to `MATCH_CHARS` characters, or `MATCH_CHARS_TWO_REPEATS`
  for a pattern with two such repeats.

Possessive repeats (`a*+`) and atomic groups (`(?>...)`) never backtrack and
count for nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

# The parser `re.compile` itself uses; not public API, so any surprise in its
# output makes the check give up (the input bounds still hold).
_parser: Any = importlib.import_module("re._parser")

MATCH_CHARS = 4096
MATCH_CHARS_TWO_REPEATS = 1024
_MAX_VARIABLE_REPEATS = 2
_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT"})


class _Shape:
    def __init__(self) -> None:
        self.variable_repeats = 0
        self.problem: str | None = None


def backtracking_problem(pattern: str) -> str | None:
    """Why `pattern` could backtrack without bound, or None; None also for invalid patterns."""
    try:
        tree = _parser.parse(pattern)
        shape = _Shape()
        _walk(list(tree), shape, inside_repeat=False)
    except Exception:  # noqa: BLE001 - invalid patterns are re.compile's to report
        return None
    if shape.problem is not None:
        return shape.problem
    if shape.variable_repeats > _MAX_VARIABLE_REPEATS:
        return (
            f"it has {shape.variable_repeats} repeats of variable length (at most "
            f"{_MAX_VARIABLE_REPEATS}), so matching a long command line could take minutes"
        )
    return None


def match_chars(pattern: str) -> int:
    """How many characters of a command line or name `pattern` is matched against."""
    try:
        shape = _Shape()
        _walk(list(_parser.parse(pattern)), shape, inside_repeat=False)
    except Exception:  # noqa: BLE001 - the smaller bound where the shape is unknown
        return MATCH_CHARS_TWO_REPEATS
    return MATCH_CHARS if shape.variable_repeats <= 1 else MATCH_CHARS_TWO_REPEATS


def _walk(items: list[tuple[Any, Any]], shape: _Shape, *, inside_repeat: bool) -> None:
    for op, arg in items:
        name = str(op)
        if name in _REPEATS:
            low, high, body = arg
            repeats = high > 1
            if inside_repeat and high != low:
                shape.problem = shape.problem or (
                    "a repeat inside a repeat, such as (a+)+, can take exponential time"
                )
            if high != low and high > 1:
                shape.variable_repeats += 1
            _walk(list(body), shape, inside_repeat=inside_repeat or repeats)
        elif name == "BRANCH":
            branches = [list(b) for b in arg[1]]
            if inside_repeat and not _distinct_starts(branches):
                shape.problem = shape.problem or (
                    "an alternation inside a repeat whose branches can start alike, "
                    "such as (a|ab)*, can take exponential time"
                )
            for branch in branches:
                _walk(branch, shape, inside_repeat=inside_repeat)
        elif name == "SUBPATTERN":
            _walk(list(arg[3]), shape, inside_repeat=inside_repeat)
        elif name in {"ASSERT", "ASSERT_NOT"}:
            _walk(list(arg[1]), shape, inside_repeat=inside_repeat)
        elif name == "GROUPREF_EXISTS":
            for branch in arg[1:]:
                if branch is not None:
                    _walk(list(branch), shape, inside_repeat=inside_repeat)
        # POSSESSIVE_REPEAT and ATOMIC_GROUP never backtrack into: nothing to count.


def _distinct_starts(branches: list[list[tuple[Any, Any]]]) -> bool:
    """True when every branch starts with its own literal character: only one can match."""
    firsts = []
    for branch in branches:
        if not branch or str(branch[0][0]) != "LITERAL":
            return False
        firsts.append(branch[0][1])
    return len(set(firsts)) == len(firsts)
