"""Recurring time windows (Alertmanager's `time_intervals`), as pure values.

A window is a conjunction: every field it gives must hold, a field it leaves
out holds always. A named interval is a list of windows and holds when any of
them does. Times of day are [start, end) in minutes of the window's own time
zone, so "09:00-17:00 Europe/Berlin" follows Berlin's daylight-saving changes.
Days of the month may count from the month's end (-1 is its last day).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
MINUTES_PER_DAY = 24 * 60

Span = tuple[int, int]  # inclusive [first, last]; for times, [start, end) in minutes


@dataclass(frozen=True, kw_only=True, slots=True)
class TimeWindow:
    """One entry of a named interval; None means the field was not given."""

    times: tuple[Span, ...] | None = None
    weekdays: tuple[Span, ...] | None = None  # 0 = Monday
    days_of_month: tuple[Span, ...] | None = None  # 1..31 or -31..-1
    months: tuple[Span, ...] | None = None  # 1..12
    years: tuple[Span, ...] | None = None
    location: str = "UTC"

    def contains(self, instant: float) -> bool:
        local = datetime.fromtimestamp(instant, tz=_zone(self.location))
        minute = local.hour * 60 + local.minute
        return (
            _any(self.times, lambda s: s[0] <= minute < s[1])
            and _any(self.weekdays, lambda s: s[0] <= local.weekday() <= s[1])
            and _any(self.days_of_month, lambda s: _day_in(s, local))
            and _any(self.months, lambda s: s[0] <= local.month <= s[1])
            and _any(self.years, lambda s: s[0] <= local.year <= s[1])
        )


def in_intervals(
    names: tuple[str, ...], intervals: Mapping[str, tuple[TimeWindow, ...]], instant: float
) -> bool:
    """Whether `instant` falls in any window of the named intervals (unknown names: no)."""
    return any(w.contains(instant) for name in names for w in intervals.get(name, ()))


def _any(spans: tuple[Span, ...] | None, holds: Callable[[Span], bool]) -> bool:
    return spans is None or any(holds(span) for span in spans)


def _day_in(span: Span, local: datetime) -> bool:
    last = calendar.monthrange(local.year, local.month)[1]
    first, final = (d if d > 0 else last + 1 + d for d in span)
    return max(first, 1) <= local.day <= min(final, last)


def _zone(location: str) -> tzinfo:
    if location == "UTC":
        return UTC
    if location == "Local":
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else UTC
    return ZoneInfo(location)
