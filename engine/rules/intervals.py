"""Compile a rule file's `time_intervals:` entries (Alertmanager's format).

Every refusal names the key at FILE:LINE:COL: a time outside 00:00-24:00 or
ending before it starts, a backwards range ("saturday:monday"), a day of the
month outside 1..31 / -31..-1, an unknown month, weekday or time zone.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from memalert.engine.core.timeintervals import (
    MINUTES_PER_DAY,
    MONTHS,
    WEEKDAYS,
    Span,
    TimeWindow,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from memalert.engine.rules.compile import FileCompiler
    from memalert.engine.rules.yamlsource import JsonPath

_TIME = re.compile(r"([01]\d|2[0-4]):([0-5]\d)")
_MAX_YEAR = 9999  # the range every stored time keeps to (docs/rules.md, Ranges)


def compile_time_interval(c: FileCompiler, path: JsonPath, item: dict[str, Any]) -> None:
    name = item.get("name")
    c.declare("time interval", name, (*path, "name"))
    entries = item.get("time_intervals")
    windows = [
        _window(c, (*path, "time_intervals", i), entry)
        for i, entry in enumerate(entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
    ]
    if c.item_ok() and isinstance(name, str):
        c.out.time_intervals[name] = tuple(w for w in windows if w is not None)


def _window(c: FileCompiler, path: JsonPath, entry: dict[str, Any]) -> TimeWindow | None:
    location = entry.get("location", "UTC")
    if isinstance(location, str) and not _known_zone(location):
        c.error((*path, "location"), f"{c.what((*path, 'location'))}: unknown time zone")
    times = entry.get("times")
    return TimeWindow(
        times=None
        if times is None
        else tuple(
            span
            for i, t in enumerate(times if isinstance(times, list) else [])
            if isinstance(t, dict) and (span := _times(c, (*path, "times", i), t)) is not None
        ),
        weekdays=_spans(c, path, entry, "weekdays", _named(WEEKDAYS, first=0, numbered=False)),
        days_of_month=_spans(c, path, entry, "days_of_month", _day_of_month),
        months=_spans(c, path, entry, "months", _named(MONTHS, first=1, numbered=True)),
        years=_spans(c, path, entry, "years", _year),
        location=location if isinstance(location, str) else "UTC",
    )


def _times(c: FileCompiler, path: JsonPath, item: dict[str, Any]) -> Span | None:
    start, end = (_minute(c, (*path, key), item.get(key)) for key in ("start_time", "end_time"))
    if start is None or end is None:
        return None
    if end <= start:
        c.error((*path, "end_time"), f"{c.what((*path, 'end_time'))}: ends before it starts")
        return None
    return (start, end)


def _minute(c: FileCompiler, path: JsonPath, value: object) -> int | None:
    if not isinstance(value, str):
        return None  # the schema reported it
    found = _TIME.fullmatch(value)
    minute = int(found[1]) * 60 + int(found[2]) if found else -1
    if not 0 <= minute <= MINUTES_PER_DAY:
        c.error(path, f"{c.what(path)}: {value!r} is not a time of day HH:MM from 00:00 to 24:00")
        return None
    return minute


def _spans(  # each end parsed by `parse` into a number, or into an error message
    c: FileCompiler,
    path: JsonPath,
    entry: dict[str, Any],
    key: str,
    parse: Callable[[str], int | str],
) -> tuple[Span, ...] | None:
    values = entry.get(key)
    if not isinstance(values, list):
        return None
    spans: list[Span] = []
    for i, value in enumerate(values):
        at = (*path, key, i)
        ends = str(value).strip().lower().split(":")
        parsed = [parse(end) for end in ends] if len(ends) <= 2 else ["is not a range a:b"]
        problems = [p for p in parsed if isinstance(p, str)]
        if problems:
            c.error(at, f"{c.what(at)}: {value!r} {problems[0]}")
            continue
        first, last = int(parsed[0]), int(parsed[-1])
        if _backwards(key, first, last):
            c.error(at, f"{c.what(at)}: {value!r} runs backwards; write the earlier end first")
            continue
        spans.append((first, last))
    return tuple(spans)


def _backwards(key: str, first: int, last: int) -> bool:
    if key == "days_of_month" and (first < 0) != (last < 0):
        return first < 0  # 1:-1 (first to last day) is fine; -1:1 is not
    return last < first


def _named(names: tuple[str, ...], *, first: int, numbered: bool) -> Callable[[str], int | str]:
    """A name's number from `first`; with `numbered`, the number itself is accepted too."""

    def parse(text: str) -> int | str:
        if text in names:
            return names.index(text) + first
        count = len(names)
        if numbered and text.isascii() and text.isdigit() and first <= int(text) < first + count:
            return int(text)
        numbers = f" or {first}-{first + count - 1}" if numbered else ""
        return f"is not one of {', '.join(names)}{numbers}"

    return parse


def _day_of_month(text: str) -> int | str:
    day = _integer(text)
    if day is None or day == 0 or not -31 <= day <= 31:
        return "is not a day of the month (1 to 31, or -31 to -1 counting from the end)"
    return day


def _year(text: str) -> int | str:
    year = _integer(text)
    if year is None or not 1 <= year <= _MAX_YEAR:
        return f"is not a year from 1 to {_MAX_YEAR}"
    return year


def _integer(text: str) -> int | None:
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 4:
        return None
    return int(text)


def _known_zone(location: str) -> bool:
    if location in ("UTC", "Local"):
        return True
    try:
        ZoneInfo(location)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
        return False
    return True
