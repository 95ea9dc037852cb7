"""TickScheduler: APScheduler 3 really running, short intervals, no fixed sleeps.

Every wait is on an event the tick or a listener sets, bounded by WAIT; nothing
asserts how long anything took.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from memalert.engine.core.errors import MemalertError
from memalert.engine.live.scheduler import TickScheduler, misfire_grace_seconds
from memalert.engine.testing import FakeClock

WAIT = 30.0
FAST = 0.05


@pytest.fixture
def stoppers() -> Iterator[list[TickScheduler]]:
    started: list[TickScheduler] = []
    yield started
    for scheduler in started:
        scheduler.stop(wait=True)


def test_the_first_tick_runs_at_once_at_the_injected_clock(stoppers: list[TickScheduler]) -> None:
    clock = FakeClock(1_000.0)
    seen: list[float] = []
    ticked = threading.Event()

    def tick(now: float) -> None:
        seen.append(now)
        ticked.set()

    scheduler = TickScheduler(tick, interval=3600, clock=clock)
    stoppers.append(scheduler)
    scheduler.start()
    assert ticked.wait(WAIT)
    assert seen == [1_000.0]


def test_a_tick_that_raises_is_reported_and_the_next_tick_runs(
    stoppers: list[TickScheduler], caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[float] = []
    failures: list[BaseException] = []
    second = threading.Event()

    def tick(now: float) -> None:
        calls.append(now)
        if len(calls) == 1:
            raise MemalertError("state file x: saving the tick failed: disk full")
        second.set()

    scheduler = TickScheduler(tick, interval=FAST, on_error=failures.append)
    stoppers.append(scheduler)
    with caplog.at_level(logging.ERROR, logger="memalert.scheduler"):
        scheduler.start()
        assert second.wait(WAIT)
        scheduler.stop()
    assert scheduler.errors_total == 1
    assert [str(e) for e in failures] == ["state file x: saving the tick failed: disk full"]
    assert "tick failed (1 so far)" in caplog.text
    assert "disk full" in caplog.text


def test_a_bug_in_a_tick_is_logged_with_its_traceback_secrets_masked(
    stoppers: list[TickScheduler], caplog: pytest.LogCaptureFixture
) -> None:
    reported = threading.Event()

    def tick(now: float) -> None:
        del now
        raise KeyError("https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX")

    scheduler = TickScheduler(tick, interval=3600, on_error=lambda exc: reported.set())
    stoppers.append(scheduler)
    with caplog.at_level(logging.ERROR, logger="memalert.scheduler"):
        scheduler.start()
        assert reported.wait(WAIT)
        scheduler.stop()
    assert "Traceback" not in caplog.text  # the formatted frames, not Python's banner
    assert "in tick" in caplog.text
    assert "XXXXSECRETXXXX" not in caplog.text
    assert "hooks.slack.com/services/***" in caplog.text


def test_a_tick_that_overruns_its_interval_makes_the_next_one_skip(
    stoppers: list[TickScheduler],
) -> None:
    missed = threading.Event()
    calls: list[float] = []

    def tick(now: float) -> None:
        calls.append(now)
        # Hold the only instance until the scheduler has skipped a run for it.
        assert missed.wait(WAIT)

    scheduler = TickScheduler(tick, interval=FAST, on_missed=missed.set)
    stoppers.append(scheduler)
    scheduler.start()
    assert missed.wait(WAIT)
    scheduler.stop()
    assert scheduler.missed_total >= 1
    assert scheduler.errors_total == 0


def test_reschedule_changes_the_interval_of_a_running_scheduler(
    stoppers: list[TickScheduler],
) -> None:
    ticks = threading.Semaphore(0)
    scheduler = TickScheduler(lambda now: ticks.release(), interval=3600)
    stoppers.append(scheduler)
    scheduler.start(run_now=False)
    scheduler.reschedule(FAST)
    assert ticks.acquire(timeout=WAIT)
    assert ticks.acquire(timeout=WAIT)
    assert scheduler.interval == FAST


def test_stop_waits_for_the_tick_in_progress(stoppers: list[TickScheduler]) -> None:
    entered = threading.Event()
    finished: list[bool] = []

    def tick(now: float) -> None:
        del now
        entered.set()
        # Give stop() the chance to return early: it must not.
        threading.Event().wait(0.2)
        finished.append(True)

    scheduler = TickScheduler(tick, interval=3600)
    stoppers.append(scheduler)
    scheduler.start()
    assert entered.wait(WAIT)
    scheduler.stop(wait=True)
    assert finished == [True]
    assert not scheduler.running


@pytest.mark.parametrize(
    ("interval", "grace"), [(0.05, 1), (1, 1), (15, 15), (15.2, 16), (3600, 3600)]
)
def test_misfire_grace_is_one_interval_in_whole_seconds(interval: float, grace: int) -> None:
    assert misfire_grace_seconds(interval) == grace
    assert isinstance(misfire_grace_seconds(interval), int)


@pytest.mark.parametrize("interval", [0, -1, float("nan"), float("inf")])
def test_an_interval_must_be_a_positive_number_of_seconds(interval: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        TickScheduler(lambda now: None, interval=interval)
