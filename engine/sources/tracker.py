"""MemoryTracker: memory of one process on demand, and of every configured target per tick.

Two faces over the same readers (`memalert.engine.sources`):
- the Python API of docs/targets.md for one process: `snapshot()`, `breakdown()`,
  `stats(duration, interval)`;
- the engine's tick: `sample_targets(targets, now)` turns the targets of a rule
  file (docs/targets.md) into the tracker metrics of docs/rules.md#metrics, one `up` per target.
  A target that cannot be read gives `up` 0 and a reason in `last_errors`, never
  an exception, so one vanished process cannot stop the others being watched.

Linux only: everything comes from /proc and /sys/fs/cgroup, whose roots are
constructor arguments so tests read fake trees. See docs/targets.md.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from memalert.engine.core.metrics import INFO_METRIC
from memalert.engine.core.model import Labels, Sample
from memalert.engine.core.units import parse_duration
from memalert.engine.sources.base import TargetUnavailableError
from memalert.engine.sources.discovery import discover
from memalert.engine.sources.naming import Holder, NameBook
from memalert.engine.sources.procfs import (
    read_process_memory,
    read_smaps_rollup,
    read_status,
    uss_from_rollup,
)
from memalert.engine.sources.targets import PatternCache, TickView, sample_target

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from memalert.engine.core.model import TargetSpec

log = logging.getLogger(__name__)

# A discover target remembers at most this many names per watched target (and at
# least BOOK_MIN): gone ones beyond that are forgotten oldest first.
BOOK_PER_TARGET = 4
BOOK_MIN = 64

# `breakdown()` keys taken from /proc/PID/status, as bytes.
_STATUS_BREAKDOWN = {
    "rss_total": "VmRSS",
    "virtual_total": "VmSize",
    "peak_rss": "VmHWM",
    "peak_virtual": "VmPeak",
    "heap": "RssAnon",
    "file": "RssFile",
    "shmem": "RssShmem",
    "swap": "VmSwap",
    "data": "VmData",
    "stack": "VmStk",
    "text": "VmExe",
    "libraries": "VmLib",
    "page_tables": "VmPTE",
}
# ... and from smaps_rollup, where the kernel lets us read it.
_ROLLUP_BREAKDOWN = {
    "pss": ("Pss",),
    "shared": ("Shared_Clean", "Shared_Dirty", "Shared_Hugetlb"),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class MemorySnapshot:
    """One reading of one process, sizes in bytes.

    All of it comes from one read of /proc/PID/status, so a snapshot costs some
    15 µs. `heap_bytes` is anonymous resident memory (RssAnon): the malloc heap,
    pymalloc's and glibc's mmap'd arenas, stacks; the `[heap]` mapping alone misses
    the mmap'd parts, where most of a Python heap lives (kernels before 4.5 lack
    RssAnon: VmData instead). `resident_bytes` is resident memory that no file backs
    (RssAnon + RssShmem): RSS without the file pages the kernel may drop and re-read,
    so what must stay in RAM or go to swap. USS needs the kernel to walk the page
    tables (smaps_rollup, slower the bigger the process): see `breakdown()`.
    """

    timestamp: float
    pid: int
    rss_bytes: int
    virtual_bytes: int
    heap_bytes: int
    resident_bytes: int
    swap_bytes: int


@dataclass(frozen=True, kw_only=True, slots=True)
class MemoryStats:
    """RSS over `samples` readings taken one interval apart from `started` to `ended`."""

    peak_rss: int
    average_rss: float
    min_rss: int
    samples: int
    started: float
    ended: float


class MemoryTracker:
    """Reads process, cgroup and host memory.

    Thread-safe: every call works on state of its own, and `last_errors` is replaced
    whole at the end of each `sample_targets`.

    `pid` is the process `snapshot()`, `breakdown()`, `stats()` and `self` targets
    mean; None is the calling process. `clock` stamps snapshots, and `sleep` paces
    `stats()`; tests pass a FakeClock and a sleep that advances it.
    """

    def __init__(
        self,
        pid: int | None = None,
        *,
        proc_root: str | os.PathLike[str] = "/proc",
        cgroup_root: str | os.PathLike[str] = "/sys/fs/cgroup",
        host_root: str | os.PathLike[str] = "/",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0):
            raise ValueError(f"pid must be a positive integer, got {pid!r}")
        self._pid = os.getpid() if pid is None else pid
        self._proc_root = Path(proc_root).absolute()
        self._cgroup_root = Path(cgroup_root).absolute()
        # Where container runtimes and the kubelet keep names (docs/targets.md).
        self._host_root = Path(host_root).absolute()
        self._clock = clock
        self._sleep = sleep
        self._patterns = PatternCache()
        self._last_errors: dict[str, str] = {}
        self._books: dict[str, NameBook] = {}
        self._labels: dict[str, tuple[Holder | None, Labels, Labels]] = {}
        self._forgotten: tuple[str, ...] = ()

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def last_errors(self) -> Mapping[str, str]:
        """Why each target that was down at the last `sample_targets` call was down."""
        return dict(self._last_errors)

    # -- one process -----------------------------------------------------------

    def snapshot(self) -> MemorySnapshot:
        """Raises `TargetUnavailableError` if the process is gone or unreadable."""
        memory = read_process_memory(self._proc_root, self._pid, with_uss=False)
        return MemorySnapshot(
            timestamp=self._clock(),
            pid=self._pid,
            rss_bytes=memory.rss_bytes,
            virtual_bytes=memory.vms_bytes,
            heap_bytes=memory.anon_bytes,
            resident_bytes=memory.anon_bytes + memory.shmem_bytes,
            swap_bytes=memory.swap_bytes,
        )

    def breakdown(self) -> dict[str, int]:
        """Where the memory is, in bytes: `rss_total`, `virtual_total`, `heap`, `file`,
        `shmem`, `swap`, `data`, `stack`, ... and `uss`, `pss`, `shared` where readable.

        A key is left out when this kernel does not report it.
        """
        status = read_status(self._proc_root, self._pid, _STATUS_BREAKDOWN.values())
        parts = {key: status[field] for key, field in _STATUS_BREAKDOWN.items() if field in status}
        parts.setdefault("rss_total", 0)
        parts.setdefault("virtual_total", 0)
        rollup = read_smaps_rollup(self._proc_root, self._pid, keys=None)
        uss = uss_from_rollup(rollup)
        if rollup is not None and uss is not None:
            parts["uss"] = uss
            for key, fields in _ROLLUP_BREAKDOWN.items():
                if fields[0] in rollup:
                    parts[key] = sum(rollup.get(field, 0) for field in fields)
        return parts

    def stats(self, duration: float | timedelta, interval: float | timedelta) -> MemoryStats:
        """Sample RSS every `interval` for `duration`: duration / interval readings.

        The readings are paced against the clock, not by sleeping a fixed interval,
        so the time spent reading does not stretch the span.
        """
        span, step = _seconds(duration, "duration"), _seconds(interval, "interval")
        if step <= 0 or span < step:
            raise ValueError(
                f"stats needs 0 < interval <= duration, got duration {span}s, interval {step}s"
            )
        # The epsilon keeps 1.0 / 0.1 (9.999...) at the 10 readings anyone expects.
        count = math.floor(span / step + 1e-9)
        started = self._clock()
        # Running aggregates, not a list: a long span at a short interval stays small.
        peak, low, total = 0, math.inf, 0
        for index in range(count):
            if index:
                due = started + index * step
                self._sleep(min(step, max(0.0, due - self._clock())))
            rss = read_status(self._proc_root, self._pid, ("VmRSS",)).get("VmRSS", 0)
            peak, low, total = max(peak, rss), min(low, rss), total + rss
        return MemoryStats(
            peak_rss=peak,
            average_rss=total / count,
            min_rss=int(low),
            samples=count,
            started=started,
            ended=self._clock(),
        )

    # -- the engine's tick -----------------------------------------------------

    def sample_targets(self, targets: Sequence[TargetSpec], now: float) -> list[Sample]:
        """The tracker metrics (docs/rules.md#metrics) of every target, at `now`, labelled `target`.

        Every target yields `up` (1 read, 0 not); a down target yields nothing else
        and its reason goes to `last_errors`.
        """
        view = TickView(
            proc_root=self._proc_root,
            cgroup_root=self._cgroup_root,
            self_pid=self._pid,
            patterns=self._patterns,
            host_root=self._host_root,
        )
        samples: list[Sample] = []
        errors: dict[str, str] = {}
        forgotten: list[str] = []
        for spec in targets:
            if spec.kind == "discover":
                samples += self._discovered(spec, view, now, errors)
                dropped = self._book(spec).end_tick(now, spec.forget_after_seconds)
                for name in dropped:
                    self._labels.pop(name, None)
                forgotten += dropped
                continue
            labels = Labels(target=spec.name)
            try:
                metrics = sample_target(spec, view)
            except TargetUnavailableError as exc:
                errors[spec.name] = exc.reason
                metrics = {}
            except Exception as exc:
                # A bug or a kernel format never seen must cost one target, not the tick.
                log.warning("sampling target %r failed", spec.name, exc_info=True)
                errors[spec.name] = f"unexpected {type(exc).__name__}: {exc}"
                metrics = {}
            samples.extend(
                Sample(metric=metric, labels=labels, value=float(value), ts=now)
                for metric, value in metrics.items()
            )
            up = 0.0 if spec.name in errors else 1.0
            samples.append(Sample(metric="up", labels=labels, value=up, ts=now))
        self._last_errors = errors
        self._forgotten = tuple(forgotten)
        return samples

    @property
    def forgotten(self) -> tuple[str, ...]:
        """Discovered targets dropped at the last `sample_targets`: gone for `forget_after`."""
        return self._forgotten

    def _book(self, spec: TargetSpec) -> NameBook:
        book = self._books.get(spec.name)
        if book is None:
            book = self._books[spec.name] = NameBook(
                capacity=max(BOOK_PER_TARGET * spec.max_targets, BOOK_MIN)
            )
        return book

    def _discovered(
        self, spec: TargetSpec, view: TickView, now: float, errors: dict[str, str]
    ) -> list[Sample]:
        """One target per process or cgroup found; `target_info` carries pid, user, cmdline."""
        try:
            found = discover(spec, view, self._book(spec), now)
        except TargetUnavailableError as exc:
            errors[spec.name] = exc.reason
            return [Sample(metric="up", labels=Labels(target=spec.name), value=0.0, ts=now)]
        samples: list[Sample] = []
        append = samples.append  # bound once: seven appends per process per tick
        cache = self._labels
        for item in found:
            entry = item.entry
            # Built once per holder: a thousand targets' labels every tick cost more than reading.
            cached = cache.get(entry.name)
            if cached is None or cached[0] != entry.holder:
                if cached is not None:
                    # A staleness marker ends the previous holder's target_info now,
                    # rather than after the lookback, so /metrics names one pid.
                    append(Sample(INFO_METRIC, cached[2], math.nan, now))
                labels = Labels(target=entry.name)
                cached = cache[entry.name] = (entry.holder, labels, Labels(entry.info, **labels))
            _, labels, info = cached
            for metric, value in item.metrics.items():
                append(Sample(metric, labels, float(value), now))
            append(Sample("up", labels, 1.0, now))
            append(Sample(INFO_METRIC, info, 1.0, now))
        return samples


def _seconds(value: float | timedelta, what: str) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"stats {what}: {exc}") from None
