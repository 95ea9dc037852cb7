"""`memalert exec`: run one command, watch its process tree, judge its memory (docs/ci.md).

The command runs with memalert's standard streams (its output passes through
untouched). Every `interval` the tracker reads the whole tree (children included)
and the rules are evaluated on those samples, exactly as `memalert run` evaluates
them. Budgets and thresholds fire live; the leak verdict is the short-run method of
`memalert.engine.trend.short_run`, which needs the whole run to tell a warm-up from a
leak: while the command runs it only reports a *suspected* confidence (below 0.5,
`leak_bytes` 0), and the rules see the final verdict in one last evaluation after
the command has exited.

Signals memalert receives (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) are
passed to the command; memalert keeps watching until it exits, so a report is
written for a run that was stopped too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from memalert.engine.alerting.pipeline import Pipeline
from memalert.engine.core.errors import MemalertError
from memalert.engine.core.model import (
    AlertEscalated,
    AlertEvent,
    AlertFired,
    Labels,
    Sample,
    Severity,
    TargetSpec,
)
from memalert.engine.live.python_trace import GrowingSite, read_sites, tracing_env
from memalert.engine.trend.short_run import ShortRunHistory, ShortRunVerdict, judge

if TYPE_CHECKING:
    from memalert.engine.core.model import RuleSet
    from memalert.engine.sources.tracker import MemoryTracker

FORWARDED_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
# Python allocations before this (imports, start-up) are the baseline's, not growth.
TRACE_WARMUP = 1.0
# Live ticks show the leak as at most suspected: see the module docstring.
_SUSPECTED_AT_MOST = 0.45


class CommandNotRunnableError(MemalertError):
    """No command was given after `--` (a usage error, exit 2)."""


class CommandNotFoundError(CommandNotRunnableError):
    """CMD is not on PATH or not there: 127, as a shell says."""

    exit_code = 127


class CommandNotExecutableError(CommandNotRunnableError):
    """CMD exists but cannot be executed: 126, as a shell says."""

    exit_code = 126


@dataclass(frozen=True, kw_only=True, slots=True)
class TreeSample:
    ts: float
    rss: float
    uss: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Progress:
    elapsed: float
    rss: float
    peak: float
    verdict: ShortRunVerdict


@dataclass(kw_only=True)
class ExecResult:
    command: tuple[str, ...]
    target: str
    started: float
    ended: float = 0.0
    returncode: int = 0  # as a shell reports it: 128 + N when killed by signal N
    signalled: int | None = None  # the signal memalert passed on, if any
    samples: list[TreeSample] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)
    verdict: ShortRunVerdict = field(default_factory=lambda: judge(ShortRunHistory()))
    sites: list[GrowingSite] = field(default_factory=list)  # with --trace-python

    @property
    def peak_rss(self) -> float:
        return max((s.rss for s in self.samples), default=0.0)

    def fired(self, at_least: Severity) -> list[AlertEvent]:
        firing = (AlertFired, AlertEscalated)
        return [e for e in self.events if isinstance(e, firing) and e.severity >= at_least]


def resolve_command(command: Sequence[str]) -> str:
    """The executable's path, or CommandNotRunnableError with the shell's 127 / 126."""
    if not command:
        raise CommandNotRunnableError("memalert exec: no command given after --")
    name = command[0]
    path = name if os.sep in name else shutil.which(name)
    if path is None or not Path(path).exists():
        raise CommandNotFoundError(f"memalert exec: {name}: command not found")
    if Path(path).is_dir() or not os.access(path, os.X_OK):
        raise CommandNotExecutableError(f"memalert exec: {name}: permission denied")
    return path


def run_command(
    command: Sequence[str],
    ruleset: RuleSet,
    *,
    tracker: MemoryTracker,
    interval: float,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    on_progress: Callable[[Progress], None] | None = None,
    on_event: Callable[[AlertEvent], None] | None = None,
    trace_dir: Path | None = None,
) -> ExecResult:
    """Run `command` to its end, sampling and evaluating every `interval` seconds.

    With `trace_dir`, Python processes of the tree trace their allocations there
    (`memalert.engine.live.python_trace`) and `result.sites` lists the growing ones.
    """
    executable = resolve_command(command)
    if trace_dir is not None:
        env = tracing_env(os.environ if env is None else env, trace_dir, warmup=TRACE_WARMUP)
    target = Path(command[0]).name
    pipeline = Pipeline(ruleset, detector=None)
    # Finer than the ticks, so that two ticks never share a bucket when one runs late.
    history = ShortRunHistory(width=interval / 2)
    result = ExecResult(command=tuple(command), target=target, started=clock())
    try:
        child = subprocess.Popen([executable, *command[1:]], env=None if env is None else {**env})
    except OSError as exc:  # a race with resolve_command, or an exec format error
        raise CommandNotExecutableError(f"memalert exec: {command[0]}: {exc.strerror}") from exc
    spec = TargetSpec(name=target, kind="pid", pid=child.pid, children=True)
    next_tick = result.started + interval
    with _forwarding_signals(child, result):
        while True:
            # Ticks keep to the interval's grid however long a reading takes; an exit
            # ends the wait at once.
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.0, next_tick - clock()))
            now = clock()
            next_tick = max(next_tick + interval, now + interval / 4)
            exited = child.returncode is not None
            samples = tracker.sample_targets([spec], now) if not exited else []
            tree = _tree_sample(samples, now)
            if tree is not None:
                result.samples.append(tree)
                history.add(tree.ts, tree.uss if tree.uss is not None else tree.rss)
            verdict = judge(history)
            if not exited:
                live = _detector_samples(target, now, verdict, final=False)
                _evaluate(pipeline, now, [*samples, *live], result, on_event)
                if on_progress is not None and tree is not None:
                    on_progress(
                        Progress(
                            elapsed=now - result.started,
                            rss=tree.rss,
                            peak=result.peak_rss,
                            verdict=verdict,
                        )
                    )
                continue
            break
    result.ended = clock()
    result.verdict = judge(history)
    if trace_dir is not None:
        result.sites = read_sites(trace_dir)
    code = child.returncode
    result.returncode = 128 - code if code < 0 else code
    last = result.samples[-1] if result.samples else None
    final = _detector_samples(target, result.ended, result.verdict, final=True)
    if last is not None:
        final.append(
            Sample(
                metric="rss_bytes", labels=Labels(target=target), value=last.rss, ts=result.ended
            )
        )
    _evaluate(pipeline, result.ended, final, result, on_event)
    return result


def _evaluate(
    pipeline: Pipeline,
    now: float,
    samples: list[Sample],
    result: ExecResult,
    on_event: Callable[[AlertEvent], None] | None,
) -> None:
    tick = pipeline.step(now, samples)
    for event in tick.events:
        result.events.append(event)
        if on_event is not None:
            on_event(event)


def _tree_sample(samples: Sequence[Sample], now: float) -> TreeSample | None:
    values = {s.metric: s.value for s in samples}
    if values.get("up") != 1.0 or "rss_bytes" not in values:
        return None
    return TreeSample(
        ts=now,
        rss=values["rss_bytes"],
        uss=values.get("uss_bytes"),
    )


def _detector_samples(
    target: str, now: float, verdict: ShortRunVerdict, *, final: bool
) -> list[Sample]:
    labels = Labels(target=target)
    confidence = verdict.confidence if final else min(_SUSPECTED_AT_MOST, verdict.confidence)
    values = {
        "leak_bytes": verdict.leak_bytes if final else 0.0,
        "leak_growth_bytes_per_hour": verdict.growth_bytes_per_hour if final else 0.0,
        "leak_confidence": confidence,
    }
    return [Sample(metric=m, labels=labels, value=v, ts=now) for m, v in values.items()]


@contextlib.contextmanager
def _forwarding_signals(child: subprocess.Popen[bytes], result: ExecResult) -> Iterator[None]:
    def forward(signum: int, _frame: object) -> None:
        result.signalled = signum
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # memalert itself is failing: do not leave CMD behind
            child.kill()
            child.wait()
