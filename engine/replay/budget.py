"""How many evaluations a replay or a rule test may run, counted before the first one.

An evaluation with nothing new to see costs 10-20 µs, one that runs the trend
detector over a sample far more; an observation file whose timestamps span
decades, a test checked at an `eval_time` of a million weeks or a 1 ms
`evaluation_interval` over a day asks for tens of millions or more, hours of
work that look like a hang. `dry-run` and `test` count what a run needs from
its input alone and refuse a run over `MAX_EVALUATIONS` (raised or lowered
with `--max-evaluations`), naming the input that asks for it.
"""

from __future__ import annotations

import math

from memalert.engine.core.errors import MemalertError

# A day at a 0.1 s interval, 11 days at 1 s, 173 days at the default 15 s:
# about 20 s of empty evaluations on a shared 2-core machine (docs/observations.md).
MAX_EVALUATIONS = 1_000_000


class EvaluationBudgetError(MemalertError):
    """A replay that would run more evaluations than allowed (exit code 2, nothing run)."""


def grid_points(span: float, interval: float, *, through_end: bool) -> float:
    """Evaluations at 0, interval, 2 x interval, ... within `span` (inf when past a float).

    `through_end` counts the first point at or after `span` (a replay runs
    until it has seen the last observation); otherwise the last point at or
    before it (a rule test's last evaluation at or before its last check).
    """
    if span <= 0:
        return 1.0
    if interval <= 0:  # refused where the interval is read; never a ZeroDivisionError here
        return math.inf
    ratio = span / interval
    if not math.isfinite(ratio):
        return math.inf
    return float((math.ceil(ratio) if through_end else math.floor(ratio)) + 1)


def describe_count(count: float) -> str:
    """`12,000,000`: a count as a person reads it in an error."""
    return f"{count:,.0f}" if math.isfinite(count) else "uncountably many"
