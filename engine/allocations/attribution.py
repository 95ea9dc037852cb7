"""Where a Python process's memory goes: tracemalloc, on demand only.

Detect cheaply, diagnose on suspicion. Tracing every allocation slows
allocation-heavy code several times (bench/tracemalloc_overhead.py measures it),
so tracemalloc stays off until a leak alert fires for the engine's own process, or
someone asks. Then `diagnose` takes two snapshots `interval` apart and reports the
allocation sites whose live memory grew most: `file:line` with a short traceback,
published as `site_growth_bytes` samples (docs/rules.md#metrics) so the follow-up notification
says where the memory goes.

Only allocations made while tracing are seen: growth between the snapshots is
exactly what a leak adds during the interval, which is what we want to attribute.
tracemalloc is process-wide, so one diagnosis runs at a time.
"""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from memalert.engine.core.model import Labels, Sample
from memalert.engine.core.units import parse_duration

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

SITE_GROWTH_METRIC = "site_growth_bytes"
# Site plus four callers: enough to say where memory goes. Every frame kept costs
# (bench/tracemalloc_overhead.py: pure allocation 20 calls deep ran ~14x slower
# traced with 1 frame, ~30x with 5, ~55x with 10).
DEFAULT_FRAMES = 5
_MAX_FRAMES = 65535  # the deepest traceback tracemalloc.start() accepts

# Allocations by the snapshots themselves and by imports during the interval are
# not the application's: leave them out.
_NOISE = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)

_one_at_a_time = threading.Lock()


@dataclass(frozen=True, kw_only=True, slots=True)
class SiteGrowth:
    """Live memory an allocation site gained between two snapshots.

    `site` is the innermost frame, `file:line`; `traceback` is the call path of the
    biggest contributor, most recent call first (so `traceback[0] == site`).
    """

    site: str
    size_diff_bytes: int
    count_diff: int
    traceback: tuple[str, ...]


def diagnose(
    interval: float | timedelta,
    *,
    top: int = 10,
    frames: int = DEFAULT_FRAMES,
    sleep: Callable[[float], object] = time.sleep,
) -> list[SiteGrowth]:
    """The `top` sites whose live memory grew most over `interval`, largest first.

    Starts tracemalloc with `frames` frames per traceback if it is off, and stops it
    again afterwards; if it was already on, it stays on, with its own frame depth.
    Blocks while another diagnosis runs.
    """
    seconds = _checked(interval, top, frames)
    with _one_at_a_time:
        return _diagnose(seconds, top, frames, sleep)


def diagnose_in_background(
    interval: float | timedelta,
    *,
    on_result: Callable[[list[SiteGrowth]], object],
    on_error: Callable[[Exception], object] | None = None,
    top: int = 10,
    frames: int = DEFAULT_FRAMES,
    sleep: Callable[[float], object] = time.sleep,
) -> threading.Thread | None:
    """Run `diagnose` in a daemon thread and hand its result to `on_result` there.

    Returns the thread, or None without starting one when a diagnosis is already
    running: a leak alert that fires again meanwhile must not queue up more. A
    failure goes to `on_error` (or the log); the callbacks run in that thread.
    """
    seconds = _checked(interval, top, frames)
    if not _one_at_a_time.acquire(blocking=False):
        return None

    def run() -> None:
        try:
            result = _diagnose(seconds, top, frames, sleep)
        except Exception as exc:  # noqa: BLE001 - no caller to raise to: on_error or the log
            _report(on_error, exc)
            return
        finally:
            # Released before the callback, so the callback may start the next one.
            _one_at_a_time.release()
        try:
            on_result(result)
        except Exception:
            log.exception("the diagnosis callback failed")

    thread = threading.Thread(target=run, name="memalert-diagnosis", daemon=True)
    try:
        thread.start()
    except BaseException:
        _one_at_a_time.release()
        raise
    return thread


def site_growth(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, *, top: int = 10
) -> list[SiteGrowth]:
    """Compare two snapshots: the `top` growing sites, largest first (pure).

    Traces are compared per full traceback, then summed per innermost frame, so a
    site reached through several call paths counts once, with all its growth.
    """
    diffs = after.filter_traces(_NOISE).compare_to(before.filter_traces(_NOISE), "traceback")
    sizes: dict[str, int] = {}
    counts: dict[str, int] = {}
    biggest: dict[str, tuple[int, tuple[str, ...]]] = {}
    for diff in diffs:
        if not len(diff.traceback):
            continue
        path = tuple(f"{f.filename}:{f.lineno}" for f in reversed(diff.traceback))
        site = path[0]
        sizes[site] = sizes.get(site, 0) + diff.size_diff
        counts[site] = counts.get(site, 0) + diff.count_diff
        if site not in biggest or diff.size_diff > biggest[site][0]:
            biggest[site] = (diff.size_diff, path)
    growing = sorted((site for site in sizes if sizes[site] > 0), key=lambda s: -sizes[s])
    return [
        SiteGrowth(
            site=site,
            size_diff_bytes=sizes[site],
            count_diff=counts[site],
            traceback=biggest[site][1],
        )
        for site in growing[:top]
    ]


def site_growth_samples(growth: Iterable[SiteGrowth], *, target: str, ts: float) -> list[Sample]:
    """`site_growth_bytes` samples, labelled with the target and the site."""
    return [
        Sample(
            metric=SITE_GROWTH_METRIC,
            labels=Labels(target=target, site=g.site),
            value=float(g.size_diff_bytes),
            ts=ts,
        )
        for g in growth
    ]


def _diagnose(
    seconds: float, top: int, frames: int, sleep: Callable[[float], object]
) -> list[SiteGrowth]:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start(frames)
    try:
        before = tracemalloc.take_snapshot()
        sleep(seconds)
        after = tracemalloc.take_snapshot()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return site_growth(before, after, top=top)


def _checked(interval: float | timedelta, top: int, frames: int) -> float:
    if isinstance(interval, timedelta):
        interval = interval.total_seconds()
    seconds = parse_duration(interval)
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top!r}")
    if not 1 <= frames <= _MAX_FRAMES:
        raise ValueError(f"frames must be 1..{_MAX_FRAMES}, got {frames!r}")
    return seconds


def _report(on_error: Callable[[Exception], object] | None, exc: Exception) -> None:
    if on_error is None:
        log.error("tracemalloc diagnosis failed", exc_info=exc)
        return
    try:
        on_error(exc)
    except Exception:
        log.exception("the diagnosis error callback failed")
