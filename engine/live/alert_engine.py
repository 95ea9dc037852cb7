"""AlertEngine: the live tick (sample -> detect -> evaluate -> route -> enqueue) and its threads.

`tick(now)` is synchronous and public: tests drive it with a FakeClock, the
scheduler calls it every `interval`. It never sends anything: the tick's state
change and the notifications it caused are committed to the state store in
one transaction, and the delivery worker (its own threads) drains the outbox,
so a slow or dead notifier never delays an evaluation.

If the commit fails (disk full, database locked), the evaluator's state is put
back as it was before the tick: the next tick sees the same transitions again
and enqueues them then, so a failed commit delays a notification, never drops it.

After every tick the engine publishes an `EngineSnapshot` by swapping one
reference (`memalert.engine.live.figures`, which also counts the engine's own work);
readers on other threads (HTTP, status) never see a tick half done.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from memalert.engine.alerting.pipeline import Pipeline, TickResult
from memalert.engine.alerting.views import active_alerts
from memalert.engine.core.errors import Diagnostic, RuleFileError
from memalert.engine.core.secrets import mask
from memalert.engine.delivery.worker import DeliveryWorker
from memalert.engine.live.figures import EngineFigures
from memalert.engine.live.history import MemoryHistory
from memalert.engine.live.leak_followup import LeakDiagnosis, target_leaks
from memalert.engine.live.parts import (
    default_targets,
    notifier_diagnostics,
    scaled_clock,
    self_target_name,
)
from memalert.engine.live.scheduler import TickScheduler
from memalert.engine.live.snapshot import EngineSnapshot
from memalert.engine.rules.load import load_rules
from memalert.engine.sources.limits import process_memory_limit
from memalert.engine.sources.tracker import MemoryTracker
from memalert.engine.store.state import StateStore, StateStoreError
from memalert.engine.trend.detector import TrendDetector
from memalert.notifiers.base import NotifierError
from memalert.notifiers.registry import build_notifiers

if TYPE_CHECKING:
    from memalert.engine.allocations.analyzer import AllocationAnalyzer
    from memalert.engine.allocations.leaks import LeakDetector
    from memalert.engine.core.model import RuleSet, Silence
    from memalert.notifiers.base import Notifier

log = logging.getLogger("memalert.engine")

DEFAULT_STOP_TIMEOUT = 10.0
# A diagnosis traces allocations for one interval, at most this long.
MAX_DIAGNOSIS_SECONDS = 60.0


class AlertEngine:
    """The running rules: one evaluation per `tick`, delivery in the background (thread-safe)."""

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        paths: Sequence[str | Path],
        store: StateStore,
        notifiers: Mapping[str, Notifier],
        reload_notifiers: bool = True,
        tracker: MemoryTracker | None = None,
        detector: LeakDetector | None = None,
        analyzer: AllocationAnalyzer | None = None,
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
        time_scale: float = 1.0,
        history: bool = True,
    ) -> None:
        if time_scale != 1.0:
            clock = scaled_clock(clock, time_scale)
        self._time_scale = time_scale
        self._paths = tuple(paths)
        self._store = store
        self._reload_notifiers = reload_notifiers
        self._tracker = tracker if tracker is not None else MemoryTracker()
        self._detector = detector
        if detector is not None:
            detector.default_budget(process_memory_limit)
        self._analyzer = analyzer
        self._env = env
        self._clock = clock
        self._sleep = sleep
        self._tick_lock = threading.Lock()  # one tick (or reload) at a time
        self._figures = EngineFigures(started_at=clock(), interval=ruleset.interval)
        self._trend = TrendDetector()  # configured from the rules by `_use`
        # Only the dashboard reads it (`latest().memory`): ~48 KB a target after 3 h.
        self._history = MemoryHistory() if history else None
        self._pipeline = Pipeline(ruleset, detector=self._trend, state=store.load_state())
        self._use(ruleset)
        counting = self._figures.counting(notifiers)
        self._worker = DeliveryWorker(store, counting, clock=clock, sleep=sleep)
        self._scheduler: TickScheduler | None = None
        self._diagnosis = LeakDiagnosis()
        self._down: frozenset[str] = frozenset()

    @classmethod
    def from_files(
        cls,
        paths: Sequence[str | Path],
        *,
        detector: LeakDetector | None = None,
        analyzer: AllocationAnalyzer | None = None,
        state_path: str | Path | None = None,
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        tracker: MemoryTracker | None = None,
        notifiers: Mapping[str, Notifier] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        time_scale: float = 1.0,
        history: bool = True,
    ) -> AlertEngine:
        """Load and check the rule files, build their notifiers, open the state store.

        Raises RuleFileError (every problem, as `memalert check` lists them),
        NotifierError, or StateStoreError (StateFileBusyError while another
        engine holds the state file: this one holds it until closed).
        `state_path` None is the same default as `memalert run` (under
        $XDG_STATE_HOME). Given `notifiers` (tests, embedding applications)
        replace the rule files' ones, also on reload. `time_scale` above 1 runs the
        engine's clock that many times faster (MEMALERT_TIME_SCALE, docs/operations.md).
        `history` False keeps no recent memory for the dashboard (`latest().memory`
        stays empty), as `memalert run` without `--listen` does.
        """
        ruleset = load_rules(paths, env=env)
        built = notifiers if notifiers is not None else build_notifiers(ruleset.notifiers, env=env)
        store = StateStore(state_path, env=env, exclusive=True)
        try:
            return cls(
                ruleset,
                paths=paths,
                store=store,
                notifiers=built,
                reload_notifiers=notifiers is None,
                tracker=tracker,
                detector=detector,
                analyzer=analyzer,
                env=env,
                clock=clock,
                sleep=sleep,
                time_scale=time_scale,
                history=history,
            )
        except BaseException:
            store.close()
            raise

    # -- what readers see ----------------------------------------------------------

    @property
    def ruleset(self) -> RuleSet:
        return self._pipeline.ruleset

    @property
    def paths(self) -> tuple[str | Path, ...]:
        """The rule files and directories `reload` reads."""
        return self._paths

    @property
    def store(self) -> StateStore:
        return self._store

    @property
    def delivery(self) -> DeliveryWorker:
        return self._worker

    @property
    def analyzer(self) -> AllocationAnalyzer | None:
        """The attached allocation analyzer, for readers (/leaks); the tick does not use it."""
        return self._analyzer

    def latest(self) -> EngineSnapshot:
        return self._figures.latest()

    def add_silence(self, silence: Silence) -> str:
        now = self._clock()
        silence_id = self._store.add_silence(
            matchers={m.label: m.pattern for m in silence.matchers},
            starts=silence.starts,
            ends=silence.ends,
            now=now,
            comment=silence.comment,
            author=silence.author,
        )
        self._republish_silences(now)
        return silence_id

    def expire_silence(self, silence_id: str) -> bool:
        now = self._clock()
        expired = self._store.expire_silence(silence_id, now)
        self._republish_silences(now)
        return expired

    # -- the tick --------------------------------------------------------------------

    def tick(self, now: float | None = None) -> TickResult:
        """Evaluate once at `now` (default: the clock) and enqueue what must be sent."""
        now = self._clock() if now is None else now
        started = time.perf_counter()
        with self._tick_lock:
            try:
                result = self._evaluate(now)
            except Exception as exc:
                self._figures.tick_failed(mask(f"{type(exc).__name__}: {exc}"))
                raise
            self._figures.tick_done(time.perf_counter() - started)
            self._publish(now)
        return result

    def _evaluate(self, now: float) -> TickResult:
        pipeline = self._pipeline
        ruleset = pipeline.ruleset
        samples = self._tracker.sample_targets(self._targets, now)
        # The evaluator's series of these go stale by themselves (LOOKBACK_SECONDS).
        self._trend.forget(self._tracker.forgotten)
        if self._history is not None:
            self._history.add(samples, now, ruleset.interval)
        self._report_down_targets()
        if self._detector is not None:
            samples += self._detector.samples(self._self_target, now)
        finished = self._diagnosis.take()
        if finished is not None:
            from memalert.engine.allocations.attribution import site_growth_samples  # noqa: PLC0415 - loaded by the diagnosis

            samples += site_growth_samples(finished.sites, target=self._self_target, ts=now)
        silences = self._store.active_silences(now)
        before = pipeline.state
        result = pipeline.step(now, samples, silences=silences)
        if finished is not None:
            follow_up = finished.follow_up(ruleset, pipeline.state, now, silences)
            if follow_up is not None:
                result = pipeline.adding(result, (follow_up,))
        try:
            self._store.commit_tick(
                pipeline.state,
                result.notifications,
                now=now,
                rule_metrics=self._rule_metrics,
                inhibited=result.inhibited,
            )
        except Exception:
            pipeline.state = before  # re-evaluated next tick: delayed, never dropped
            self._diagnosis.hand_back(finished)
            raise
        seconds = min(max(ruleset.interval, 1.0), MAX_DIAGNOSIS_SECONDS)
        self._diagnosis.start(result.events, self._self_targets, seconds=seconds, sleep=self._sleep)
        return result

    def _report_down_targets(self) -> None:
        errors = self._tracker.last_errors
        down = frozenset(errors)
        for name in sorted(down - self._down):
            log.warning("target %r is down: %s", name, mask(errors[name]))
        for name in sorted(self._down - down):
            log.info("target %r is back", name)
        self._down = down

    def wait_for_diagnosis(self, timeout: float | None = None) -> bool:
        """Wait until a running allocation-site diagnosis has handed over its result.

        Its follow-up notification goes out with the next tick; True when none is running.
        """
        return self._diagnosis.wait(timeout)

    def _publish(self, now: float) -> None:
        ruleset = self._pipeline.ruleset
        state = self._pipeline.state
        component_leaks = None if self._detector is None else self._detector.analyze_leaks()
        try:
            counts = self._store.outbox_counts()
            backlog, dead = counts.backlog, counts.dead_total
        except StateStoreError as exc:  # the snapshot keeps the last figures it had
            log.warning("cannot read the outbox backlog: %s", mask(str(exc)))
            last = self._figures.latest()
            backlog, dead = last.outbox_backlog, last.dead_letters
        leaks = target_leaks(
            self._trend.results(),
            component_leaks,
            self_target=self._self_target,
            top_sites=self._diagnosis.latest_sites(),
        )
        self._figures.publish(
            interval=ruleset.interval,
            last_tick_at=now,
            samples=tuple(state.series.values()),
            alerts=tuple(active_alerts(ruleset, state, now)),
            leaks=leaks,
            component_leaks=component_leaks,
            silences=self._silences_in_force(now),
            outbox_backlog=backlog,
            dead_letters=dead,
            memory=self._history.recent() if self._history is not None else {},
            floors=self._trend.floor_history(),
        )

    def _silences_in_force(self, now: float) -> tuple[Silence, ...]:
        from_files = (s for s in self._pipeline.ruleset.silences if s.active(now))
        return (*from_files, *self._store.active_silences(now))

    def _republish_silences(self, now: float) -> None:
        self._figures.amend(silences=self._silences_in_force(now))

    # -- reload ------------------------------------------------------------------------

    def reload(self) -> list[Diagnostic]:
        """Load the rule files again; on any error keep the rules in use and return the errors.

        Every error is also logged, one line each, exactly as `memalert check`
        prints it. Alert state is kept; instances of removed rules are dropped
        at the next tick. Pending notifications stay queued.
        """
        try:
            ruleset = load_rules(self._paths, env=self._env)
            notifiers = (
                build_notifiers(ruleset.notifiers, env=self._env)
                if self._reload_notifiers
                else None
            )
        except RuleFileError as exc:
            return self._reload_failed(list(exc.diagnostics))
        except NotifierError as exc:
            return self._reload_failed(notifier_diagnostics(exc, ruleset))
        if self._scheduler is not None:
            # First: of the changes, only this can refuse a value, and then nothing has changed.
            self._scheduler.reschedule(ruleset.interval / self._time_scale)
        with self._tick_lock:
            self._pipeline.ruleset = ruleset
            self._use(ruleset)
        if notifiers is not None:
            self._worker.replace_notifiers(self._figures.counting(notifiers))
        log.info(
            "reloaded %d rule(s), %d target(s) from %s",
            len(ruleset.rules),
            len(self._targets),
            ", ".join(ruleset.files),
        )
        return []

    def _reload_failed(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        for diagnostic in diagnostics:
            log.error("%s", mask(str(diagnostic)))
        log.error("reload failed with %d error(s); keeping the rules in use", len(diagnostics))
        return diagnostics

    def _use(self, ruleset: RuleSet) -> None:
        self._trend.configure_for(ruleset)
        self._targets = ruleset.targets or default_targets()
        self._self_target = self_target_name(ruleset.targets)
        self._self_targets = frozenset(t.name for t in ruleset.targets if t.kind == "self") | (
            {self._self_target} if self._detector is not None else set()
        )
        self._rule_metrics = {rule.name: rule.metric for rule in ruleset.rules}

    # -- threads -------------------------------------------------------------------------

    def start(self) -> None:
        """Tick every `interval` and deliver, both in background threads; returns at once."""
        if self._scheduler is not None:
            raise RuntimeError("the engine is already running")
        self._worker.start()
        self._scheduler = TickScheduler(
            self._scheduled_tick,
            interval=self._pipeline.ruleset.interval / self._time_scale,
            clock=self._clock,
            on_missed=self._figures.tick_missed,
        )
        self._scheduler.start()

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT, *, flush: bool = True) -> bool:
        """Stop ticking, try to deliver what is queued for up to `timeout` s, close the store.

        Returns True when nothing was left undelivered; what is left stays in
        the outbox and is sent by the next run on the same state file.
        """
        deadline = self._clock() + timeout
        if self._scheduler is not None:
            self._scheduler.stop(wait=True)
        try:
            # Flushed by the running delivery threads, so a notifier hanging
            # until its timeout does not use up the other notifiers' time.
            flushed = self._worker.flush(deadline) if flush else False
            self._worker.stop(max(deadline - self._clock(), 0.0))
            return flushed or self._store.next_attempt_at() is None
        finally:
            self.close()

    def close(self) -> None:
        """Release the state file (after `stop`, or for an engine only ever ticked by hand)."""
        self._store.close()

    def __enter__(self) -> AlertEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._scheduler is not None:
            self.stop()
        else:
            self.close()

    def _scheduled_tick(self, now: float) -> None:
        self.tick(now)
