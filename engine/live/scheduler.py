"""The tick's timer: a thin wrapper over APScheduler 3's BackgroundScheduler.

One interval job calls `tick(clock())`:
- `coalesce=True`: after a stall (a suspended laptop, a stopped process) the
  missed runs collapse into one tick, never a burst of catch-up ticks;
- `max_instances=1`: a tick that overruns its interval makes the next one
  skip (reported as missed) instead of running two evaluations at once;
- an integer `misfire_grace_time` of one interval: a tick late by more than
  that is skipped and reported, and the schedule carries on.

Listeners log and count failed and missed ticks, so a tick that raises is
reported once and the next tick runs as planned. The clock is injected and
read when the job runs: every tick is evaluated at `clock()`, never at the
scheduler's idea of the planned time, so tests and replays agree on `now`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from memalert.engine.core.errors import MemalertError
from memalert.engine.core.secrets import mask

log = logging.getLogger("memalert.scheduler")

JOB_ID = "memalert-tick"
# A private executor alias gives the job a logger of its own (APScheduler names
# it after the alias), quieted here: the listeners below report each failed or
# skipped tick once, with secrets masked; APScheduler's line would repeat it raw.
EXECUTOR = "memalert"
logging.getLogger(f"apscheduler.executors.{EXECUTOR}").setLevel(logging.CRITICAL)


def misfire_grace_seconds(interval: float) -> int:
    """One interval, rounded up to whole seconds (APScheduler wants an int), at least 1."""
    return max(1, math.ceil(interval))


class TickScheduler:
    """Calls `tick(now)` every `interval` seconds in a background thread.

    `on_error(exc)` and `on_missed()` are called from the scheduler's threads
    after the failure or miss has been logged and counted.
    """

    def __init__(
        self,
        tick: Callable[[float], object],
        *,
        interval: float,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[BaseException], object] | None = None,
        on_missed: Callable[[], object] | None = None,
    ) -> None:
        _check_interval(interval)
        self._tick = tick
        self._interval = float(interval)
        self._clock = clock
        self._on_error = on_error
        self._on_missed = on_missed
        self._lock = threading.Lock()
        self._errors = 0
        self._missed = 0
        # One worker: the job never runs twice at once, so more threads would idle.
        self._scheduler = BackgroundScheduler(
            executors={EXECUTOR: ThreadPoolExecutor(max_workers=1)},
            timezone=UTC,
        )
        self._scheduler.add_listener(
            self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def errors_total(self) -> int:
        with self._lock:
            return self._errors

    @property
    def missed_total(self) -> int:
        with self._lock:
            return self._missed

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self, *, run_now: bool = True) -> None:
        """Schedule the job and start; the first tick runs at once unless `run_now` is false.

        APScheduler's interval trigger first fires one interval after the start;
        a daemon should look at its targets right away.
        """
        if self.running:
            raise RuntimeError("the tick scheduler is already running")
        first: dict[str, Any] = {"next_run_time": datetime.now(UTC)} if run_now else {}
        self._scheduler.add_job(
            self._run,
            trigger=self._trigger(self._interval),
            id=JOB_ID,
            name="memalert tick",
            executor=EXECUTOR,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=misfire_grace_seconds(self._interval),
            replace_existing=True,
            **first,
        )
        self._scheduler.start()

    def reschedule(self, interval: float) -> None:
        """Tick every `interval` seconds from now on (a reload changed the rule files)."""
        _check_interval(interval)
        if interval == self._interval:
            return
        self._interval = float(interval)
        if self._scheduler.get_job(JOB_ID) is None:
            return
        self._scheduler.modify_job(JOB_ID, misfire_grace_time=misfire_grace_seconds(interval))
        self._scheduler.reschedule_job(JOB_ID, trigger=self._trigger(interval))
        log.info("evaluating every %gs from now on", interval)

    def stop(self, *, wait: bool = True) -> None:
        """Stop ticking; with `wait`, return only after a tick in progress has finished."""
        if self.running:
            self._scheduler.shutdown(wait=wait)

    def _trigger(self, interval: float) -> IntervalTrigger:
        return IntervalTrigger(seconds=interval, timezone=UTC)

    def _run(self) -> None:
        self._tick(self._clock())

    def _on_event(self, event: Any) -> None:
        if event.code == EVENT_JOB_ERROR:
            self._failed(event.exception, event.traceback)
        else:
            self._skipped(event.code == EVENT_JOB_MAX_INSTANCES)

    def _failed(self, exc: BaseException, traceback: str | None) -> None:
        with self._lock:
            self._errors += 1
            count = self._errors
        text = mask(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, MemalertError) or not traceback:
            log.error("tick failed (%d so far); the next tick runs as planned: %s", count, text)
        else:
            # Not one of our reported errors: a bug, so its traceback is worth having.
            log.error(
                "tick failed (%d so far); the next tick runs as planned: %s\n%s",
                count,
                text,
                mask(traceback.rstrip()),
            )
        if self._on_error is not None:
            self._on_error(exc)

    def _skipped(self, overran: bool) -> None:
        with self._lock:
            self._missed += 1
            count = self._missed
        why = "the previous tick was still running" if overran else "it was too late to run"
        log.warning("a tick was skipped because %s (%d missed so far)", why, count)
        if self._on_missed is not None:
            self._on_missed()


def _check_interval(interval: float) -> None:
    if not (isinstance(interval, int | float) and math.isfinite(interval) and interval > 0):
        raise ValueError(f"the tick interval must be a positive number of seconds: {interval!r}")
