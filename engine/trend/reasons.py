"""Words for the detector's verdict: what it says of a target, and why not (yet) a leak.

The gate names are those of `assess.judge_window` (docs/leak-detection.md,
"Windows and gates"); each phrase says what bounded memory the gate stands
for, so someone paged (or not paged) can tell what the detector is waiting for.
"""

from __future__ import annotations

from memalert.engine.core.units import format_bytes, rfc3339
from memalert.engine.trend.assess import SATURATION_VETO
from memalert.engine.trend.state import TrendResult

HELD_BACK_BY: dict[str, str] = {
    "life_age": "the life is younger than min_life and its growth did not begin at a "
    "change point (warm-ups and cache fills look like this)",
    "mostly_steady": "the steady rate explains too little of the life's growth "
    "(the tail of a heap or cache filling up)",
    "span": "the growth is shorter than min_span",
    "growth": "the floor grows slower than min_growth_per_hour",
    "significance": "the floor's rise is not yet clear of its own jitter",
    "not_saturating": "the growth bends down (a fill approaching its cap)",
    "not_levelling_off": "the later growth is much slower than the earlier (levelling off)",
    "under_way": "the growth has only just begun (an upswing, maybe a daily one)",
    "steady": "the growth speeds up smoothly (the start of an upswing)",
    "spread": "the growth is in a few steps that hold (reloads, deploys), not spread out",
    "not_a_step": "most of the growth is one step",
    "new_high": "the floor is regrowing to a level it held before a fall (a cycle)",
    "at_peak": "the floor is below its recent high (past a crest)",
    "day_over_day": "the floor is not above where it was a day ago (a daily cycle)",
    SATURATION_VETO: "a longer window bends down: the last hours of a fill look straight",
}


def describe(result: TrendResult) -> str:
    """One line: declared leak, growth held back (and by what), suspected, or quiet."""
    if result.leak_bytes > 0:
        since = "" if result.onset is None else f" since {rfc3339(result.onset)}"
        return (
            f"leak declared{since}: {format_bytes(result.leak_bytes)}, "
            f"{format_bytes(result.growth_bytes_per_hour)}/h, "
            f"confidence {result.confidence:.2f}"
        )
    if result.held_back_by:
        why = HELD_BACK_BY.get(result.held_back_by, result.held_back_by)
        return f"growing, not yet a leak (confidence {result.confidence:.2f}): {why}"
    if result.confidence > 0:
        return f"suspected: recent growth (confidence {result.confidence:.2f}), shape not judged"
    return "no sustained growth"
