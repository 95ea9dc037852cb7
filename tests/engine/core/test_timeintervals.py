"""Recurring windows hold exactly where Alertmanager's time_intervals say they do."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memalert.engine.core.timeintervals import TimeWindow, in_intervals


def at(text: str, zone: str = "UTC") -> float:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC if zone == "UTC" else ZoneInfo(zone)).timestamp()


WORKING_HOURS = TimeWindow(times=((9 * 60, 17 * 60),), weekdays=((0, 4),))


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        ("2026-12-02T09:00", True),  # a Wednesday, the start is inclusive
        ("2026-12-02T16:59", True),
        ("2026-12-02T17:00", False),  # the end is exclusive
        ("2026-12-02T08:59", False),
        ("2026-12-05T12:00", False),  # a Saturday
    ],
)
def test_times_are_start_inclusive_end_exclusive_on_the_given_weekdays(
    moment: str, inside: bool
) -> None:
    assert WORKING_HOURS.contains(at(moment)) is inside


def test_a_window_follows_its_time_zone_across_daylight_saving() -> None:
    berlin = TimeWindow(times=((9 * 60, 10 * 60),), location="Europe/Berlin")
    # 09:30 in Berlin is 08:30 UTC in winter and 07:30 UTC in summer.
    assert berlin.contains(at("2026-01-15T08:30"))
    assert berlin.contains(at("2026-07-15T07:30"))
    assert not berlin.contains(at("2026-07-15T08:30"))


def test_negative_days_count_from_the_end_of_each_month() -> None:
    last_two = TimeWindow(days_of_month=((-2, -1),))
    assert last_two.contains(at("2026-02-27T12:00"))  # February 2026 has 28 days
    assert not last_two.contains(at("2026-02-26T12:00"))
    assert last_two.contains(at("2026-03-30T12:00"))
    first_to_last = TimeWindow(days_of_month=((1, -1),))
    assert first_to_last.contains(at("2026-03-31T12:00"))


def test_days_past_a_short_months_end_never_hold() -> None:
    assert not TimeWindow(days_of_month=((31, 31),)).contains(at("2026-04-30T12:00"))


def test_every_given_field_must_hold_and_an_absent_one_always_does() -> None:
    december_2026 = TimeWindow(months=((12, 12),), years=((2026, 2026),))
    assert december_2026.contains(at("2026-12-24T00:00"))
    assert not december_2026.contains(at("2027-12-24T00:00"))
    assert not december_2026.contains(at("2026-11-24T00:00"))
    assert TimeWindow().contains(at("1999-01-01T00:00"))


def test_a_named_interval_holds_when_any_of_its_windows_does() -> None:
    intervals = {
        "off-hours": (
            TimeWindow(times=((0, 9 * 60),)),
            TimeWindow(times=((17 * 60, 24 * 60),)),
        )
    }
    assert in_intervals(("off-hours",), intervals, at("2026-12-02T23:59"))
    assert in_intervals(("off-hours",), intervals, at("2026-12-02T03:00"))
    assert not in_intervals(("off-hours",), intervals, at("2026-12-02T12:00"))
    assert not in_intervals(("unknown",), intervals, at("2026-12-02T03:00"))


@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_a_window_and_its_complement_split_every_instant(instant: int) -> None:
    day = TimeWindow(times=((8 * 60, 20 * 60),), location="America/New_York")
    night = (
        TimeWindow(times=((0, 8 * 60),), location="America/New_York"),
        TimeWindow(times=((20 * 60, 24 * 60),), location="America/New_York"),
    )
    assert day.contains(instant) != any(w.contains(instant) for w in night)
