"""`memalert record`: sample the targets of a rule file into observations (docs/observations.md).

Every `interval` of the rule set, the tracker reads every target, exactly as
`memalert run` would, and one JSON line per target (and per component or
site, were a source to report them) is appended and flushed, so whatever was
recorded before a crash or Ctrl-C can be replayed with `memalert dry-run`.
Only raw tracker metrics are written: replay runs them through the same
detector as live (docs/observations.md; the format is written by
`memalert.engine.replay.observations`, beside its reader).

A progress line is drawn on stderr when it is a terminal; SIGINT and SIGTERM
end the recording cleanly after the tick in progress.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from memalert.engine.core.errors import EXIT_OK, MemalertError
from memalert.engine.core.limits import RECORD_DURATION
from memalert.engine.core.secrets import mask
from memalert.engine.core.units import format_duration, parse_duration
from memalert.engine.live.parts import default_targets, draws_progress
from memalert.engine.replay.observations import write_observations
from memalert.engine.rules.load import load_rules

if TYPE_CHECKING:
    from memalert.engine.core.model import TargetSpec
    from memalert.engine.sources.tracker import MemoryTracker


class RecordError(MemalertError):
    """`memalert record` cannot start: a bad --duration, an --out it cannot write."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordProgress:
    """Where a recording stands after a tick (and at its end)."""

    ticks: int
    observations: int
    started: float
    now: float
    down: Mapping[str, str]  # target -> why it could not be read at the last tick


def record(
    targets: Sequence[TargetSpec],
    out: IO[str],
    *,
    interval: float,
    duration: float | None,
    tracker: MemoryTracker,
    clock: Callable[[], float] = time.time,
    wait: Callable[[float], bool],
    on_tick: Callable[[RecordProgress], None] = lambda progress: None,
) -> RecordProgress:
    """Sample `targets` every `interval` s for `duration` s (None: until stopped).

    `wait(seconds)` sleeps and returns True when the recording must stop (an
    Event's `wait`); tests pass one that advances a FakeClock. Readings are
    paced on the clock, so they do not drift; a slot missed because a reading
    took too long is skipped, not made up.
    """
    started = clock()
    ticks = observations = 0
    progress = RecordProgress(ticks=0, observations=0, started=started, now=started, down={})
    due = started
    while duration is None or due - started <= duration + 1e-9:
        # wait(0) when behind still asks whether to stop: a slow tracker cannot outrun Ctrl-C.
        if wait(max(0.0, due - clock())):
            break
        now = clock()
        observations += write_observations(out, tracker.sample_targets(targets, now))
        out.flush()  # a recording cut short is still a valid file
        ticks += 1
        progress = RecordProgress(
            ticks=ticks,
            observations=observations,
            started=started,
            now=now,
            down=tracker.last_errors,
        )
        on_tick(progress)
        due = started + (math.floor((clock() - started) / interval) + 1) * interval
    return progress


class _Terminal:
    """Progress on stderr: a redrawn line on a terminal; target up/down news anywhere."""

    def __init__(
        self,
        stream: IO[str],
        *,
        summary: str,
        duration: float | None,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self._stream = stream
        self._live = draws_progress(stream, env)
        self._summary = summary
        self._duration = duration
        self._down: Mapping[str, str] = {}

    def _say(self, line: str) -> None:
        # \x1b[K clears what is left of a longer progress line.
        prefix = "\r\x1b[K" if self._live else ""
        self._stream.write(f"{prefix}{line}\n")

    def on_tick(self, progress: RecordProgress) -> None:
        for name in sorted(set(progress.down) - set(self._down)):
            self._say(f"target {name!r} is down: {mask(progress.down[name])}")
        for name in sorted(set(self._down) - set(progress.down)):
            self._say(f"target {name!r} is back")
        self._down = progress.down
        if self._live:
            elapsed = format_duration(progress.now - progress.started)
            of = f" of {format_duration(self._duration)}" if self._duration is not None else ""
            self._stream.write(
                f"\r\x1b[K{self._summary}: {progress.observations} observations, "
                f"{elapsed}{of} (Ctrl-C stops)"
            )
        self._stream.flush()

    def finish(self, progress: RecordProgress, out_name: str) -> None:
        self._say(
            f"recorded {progress.observations} observations in {progress.ticks} readings "
            f"to {out_name}"
        )
        self._stream.flush()


@contextlib.contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set `stop` instead of raising, while in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _output(out: str) -> Iterator[IO[str]]:
    if out == "-":
        yield sys.stdout
        return
    try:
        handle = Path(out).open("w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise RecordError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    with handle:
        yield handle


def run_record(
    rules: Sequence[str],
    *,
    out: str,
    duration: str | None = None,
    env: Mapping[str, str],
    stderr: IO[str] | None = None,
) -> int:
    """`memalert record`: returns the exit code; raises MemalertError on bad input."""
    from memalert.engine.sources.tracker import MemoryTracker  # noqa: PLC0415 - psutil loads only to record

    seconds: float | None = None
    if duration is not None:
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise RecordError(f"--duration: {exc}") from None
        problem = RECORD_DURATION.problem(seconds)
        if problem is not None:
            raise RecordError(f"--duration: {duration!r} {problem}")
    ruleset = load_rules(rules, env=env)
    targets = ruleset.targets or default_targets()
    progress_stream = stderr if stderr is not None else sys.stderr
    # Short, so the redrawn line never wraps (a wrapped line cannot be redrawn).
    terminal = _Terminal(
        progress_stream,
        summary=f"recording {len(targets)} target(s) every {format_duration(ruleset.interval)}",
        duration=seconds,
    )
    stop = threading.Event()
    with _output(out) as handle, _stopped_by_signals(stop):
        result = record(
            targets,
            handle,
            interval=ruleset.interval,
            duration=seconds,
            tracker=MemoryTracker(),
            wait=stop.wait,
            on_tick=terminal.on_tick,
        )
    terminal.finish(result, out)
    return EXIT_OK
