"""Detect cheaply, diagnose on suspicion: the engine's side of tracemalloc attribution.

When a leak alert fires (or escalates) for the engine's own process (a `self`
target, or the target its attached LeakDetector reports under), the engine
traces allocations for one interval in a background thread
(`memalert.engine.allocations.attribution`). The thread leaves the growing sites here; the next
tick takes them, publishes them as `site_growth_bytes` samples and, if the
alert still fires and is not silenced, sends a follow-up notification naming
the top sites. The follow-up is an `AlertRepeated`: a re-notification of the
same alert, not a state change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memalert.engine.alerting.evaluate import EvalState, renotify
from memalert.engine.core.model import AlertEscalated, AlertEvent, AlertFired, RuleSet, Silence
from memalert.engine.live.snapshot import TargetLeak
from memalert.engine.trend.state import TrendResult

if TYPE_CHECKING:
    from memalert.engine.allocations.attribution import SiteGrowth
    from memalert.engine.allocations.leaks import LeakAnalysis

# The metrics whose alerts mean "this process leaks"; pressure or RSS alone does not.
LEAK_METRICS = frozenset({"leak_bytes", "leak_growth_bytes_per_hour", "leak_confidence"})
# How many sites a notification names: enough to act on, short enough to read.
TOP_SITES_SHOWN = 5
FOLLOW_UP_REASON = "allocation sites diagnosed"

log = logging.getLogger("memalert.engine")


@dataclass(frozen=True, kw_only=True, slots=True)
class FinishedDiagnosis:
    trigger: AlertEvent
    sites: tuple[SiteGrowth, ...]

    @property
    def top_sites(self) -> tuple[tuple[str, float], ...]:
        return tuple((g.site, float(g.size_diff_bytes)) for g in self.sites[:TOP_SITES_SHOWN])

    def follow_up(
        self, ruleset: RuleSet, state: EvalState, now: float, silences: Sequence[Silence]
    ) -> AlertEvent | None:
        """The notification naming the sites, or None (no sites, resolved, or silenced).

        Made like any repeat of the alert, from its state now: the value,
        summary and growth the trigger had may be stale by a whole interval.
        """
        if not self.sites:
            return None
        return renotify(
            ruleset,
            state,
            now,
            rule=self.trigger.rule,
            labels=self.trigger.labels,
            reason=FOLLOW_UP_REASON,
            top_sites=self.top_sites,
            silences=silences,
        )


class LeakDiagnosis:
    """Starts a diagnosis and hands its result from its thread to the next tick (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: FinishedDiagnosis | None = None
        self._latest: tuple[tuple[str, float], ...] = ()
        self._thread: threading.Thread | None = None

    def start(
        self,
        events: Iterable[AlertEvent],
        self_targets: frozenset[str],
        *,
        seconds: float,
        sleep: Callable[[float], object],
    ) -> None:
        """Trace allocations for `seconds` if one of `events` calls for it and none runs."""
        trigger = self.trigger(events, self_targets)
        if trigger is None:
            return

        # tracemalloc and the analysis load with the first diagnosis, not with the daemon.
        from memalert.engine.allocations.attribution import diagnose_in_background  # noqa: PLC0415

        def on_result(sites: list[SiteGrowth]) -> None:
            self.finish(trigger, sites)

        thread = diagnose_in_background(seconds, on_result=on_result, sleep=sleep)
        if thread is not None:
            self._thread = thread
            log.info(
                "leak alert %s on %s: tracing allocation sites for %gs",
                trigger.rule,
                trigger.labels.get("target"),
                seconds,
            )

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running diagnosis to hand over; True when none is running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    @staticmethod
    def trigger(events: Iterable[AlertEvent], self_targets: frozenset[str]) -> AlertEvent | None:
        """The first event of a tick that calls for a diagnosis, if any."""
        for event in events:
            if (
                isinstance(event, AlertFired | AlertEscalated)
                and not event.silenced
                and event.metric in LEAK_METRICS
                and event.labels.get("target") in self_targets
            ):
                return event
        return None

    def finish(self, trigger: AlertEvent, sites: Sequence[SiteGrowth]) -> None:
        done = FinishedDiagnosis(trigger=trigger, sites=tuple(sites))
        with self._lock:
            self._done = done
            self._latest = done.top_sites

    def take(self) -> FinishedDiagnosis | None:
        with self._lock:
            done, self._done = self._done, None
            return done

    def hand_back(self, done: FinishedDiagnosis | None) -> None:
        """Return what `take` gave to a tick that failed, unless a newer result came."""
        with self._lock:
            if self._done is None:
                self._done = done

    def latest_sites(self) -> tuple[tuple[str, float], ...]:
        with self._lock:
            return self._latest


def target_leaks(
    results: Mapping[str, TrendResult],
    analysis: LeakAnalysis | None,
    *,
    self_target: str,
    top_sites: tuple[tuple[str, float], ...],
) -> tuple[TargetLeak, ...]:
    """The trend detector's view of every target, then the component leaks of this process."""
    leaks = [
        TargetLeak(
            target=target,
            component=None,
            leak_bytes=result.leak_bytes,
            growth_bytes_per_hour=result.growth_bytes_per_hour,
            confidence=result.confidence,
            time_to_limit_seconds=result.time_to_limit_seconds,
            top_sites=top_sites if target == self_target else (),
        )
        for target, result in sorted(results.items())
    ]
    if analysis is not None:
        for leak in analysis.potential_leaks:
            patterns = tuple(
                p.kind.value for p in analysis.suspicious_patterns if p.component == leak.component
            )
            leaks.append(
                TargetLeak(
                    target=self_target,
                    component=leak.component,
                    leak_bytes=float(leak.total_size_bytes),
                    growth_bytes_per_hour=leak.growth_rate_bytes_per_hour,
                    # The component detector's verdict is yes or no, not a likelihood.
                    confidence=1.0,
                    time_to_limit_seconds=None,
                    patterns=patterns,
                )
            )
    return tuple(leaks)
