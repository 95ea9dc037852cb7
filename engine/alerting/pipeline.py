"""One tick after sampling: detect -> evaluate -> route -> group, shared by run, dry-run and test.

The only thing that differs between live, replayed and unit-tested rules is
where the samples come from; this class is the part they share, so a rule that
passes `memalert test` behaves the same at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from memalert.engine.alerting import grouping
from memalert.engine.alerting.evaluate import EvalState, evaluate, silences_in_force
from memalert.engine.alerting.grouping import Groups
from memalert.engine.alerting.inhibition import inhibited_alerts
from memalert.engine.alerting.messages import RELATED_VARIABLES
from memalert.engine.alerting.routing import AlertKey, Notification, group_notifications
from memalert.engine.core.metrics import DETECTOR_METRICS
from memalert.engine.core.model import AlertEvent, RuleSet, Sample, Silence
from memalert.engine.trend.detector import TrendDetector

# A target whose input already carries a metric the trend detector produces (a
# recorded detector output) is taken as given, not re-detected.
_DETECTED = frozenset(DETECTOR_METRICS)


@dataclass(frozen=True, kw_only=True, slots=True)
class TickResult:
    at: float
    samples: tuple[Sample, ...]
    events: tuple[AlertEvent, ...]
    # What is sent at this tick: the events of routes without grouping, and
    # the groups flushed now (alerting.grouping), after inhibition and muting.
    notifications: tuple[Notification, ...]
    # The firing alerts inhibit rules mute after this tick: not notified.
    inhibited: frozenset[AlertKey] = frozenset()
    # The groups before this tick and the silences in force, so follow-up
    # events of the same tick are grouped again from the same start (`Pipeline.adding`).
    groups_before: Groups = field(default_factory=dict, compare=False, repr=False)
    silences: tuple[Silence, ...] = field(default=(), compare=False, repr=False)


class Pipeline:
    """Holds the evaluation state and the detector between ticks (one thread at a time)."""

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        detector: TrendDetector | None = None,
        state: EvalState | None = None,
    ) -> None:
        self.ruleset = ruleset
        # Replays skip the trend detector when no rule can see its output: it is
        # most of a replay's cost, and its absence changes no alert. Live runs
        # pass a detector explicitly so /leaks always has an answer.
        if detector is None and rules_use_detector(ruleset):
            detector = TrendDetector.for_ruleset(ruleset)
        self.detector = detector
        self.state = state if state is not None else EvalState()

    def step(
        self, now: float, samples: Sequence[Sample], *, silences: Sequence[Silence] = ()
    ) -> TickResult:
        detected = (
            list(samples)
            if self.detector is None
            else with_detector_metrics(samples, self.detector)
        )
        groups_before = self.state.groups
        self.state, events = evaluate(self.ruleset, detected, self.state, now, silences=silences)
        inhibited = inhibited_alerts(self.ruleset, self.state)
        in_force = tuple(silences_in_force(self.ruleset, silences, now))
        return TickResult(
            at=now,
            samples=tuple(detected),
            events=tuple(events),
            notifications=self._notify(now, groups_before, events, inhibited, in_force),
            inhibited=inhibited,
            groups_before=groups_before,
            silences=in_force,
        )

    def adding(self, result: TickResult, events: Sequence[AlertEvent]) -> TickResult:
        """The tick `result` with `events` found after evaluation (the live engine's follow-ups).

        The notifications are made again from all of the tick's events, by the
        same routing and grouping as every tick, so what is enqueued is what dry-run shows.
        """
        if not events:
            return result
        every = (*result.events, *events)
        notifications = self._notify(
            result.at, result.groups_before, every, result.inhibited, result.silences
        )
        return replace(result, events=every, notifications=notifications)

    def _notify(
        self,
        now: float,
        groups: Groups,
        events: Sequence[AlertEvent],
        inhibited: frozenset[AlertKey],
        silences: tuple[Silence, ...],
    ) -> tuple[Notification, ...]:
        """This tick's notifications; the groups after it go into the state."""
        now_sent = group_notifications(self.ruleset, events, inhibited)
        groups, flushed = grouping.step(
            self.ruleset, groups, events, now=now, inhibited=inhibited, silences=silences
        )
        if groups is not self.state.groups:
            self.state = replace(self.state, groups=groups)
        return (*now_sent, *flushed)


# Template variables filled from detector metrics (messages.related_values).
_DETECTOR_VARIABLES = tuple(v for v, m in RELATED_VARIABLES.items() if m in _DETECTED)


def rules_use_detector(ruleset: RuleSet) -> bool:
    """Whether any rule reads a detector metric, directly or in its summary.

    The summary test is textual, so it errs on the side of running the detector.
    """
    return any(
        rule.metric in _DETECTED
        or any(name in (rule.summary or "") for name in _DETECTOR_VARIABLES)
        for rule in ruleset.rules
    )


def with_detector_metrics(samples: Sequence[Sample], detector: TrendDetector) -> list[Sample]:
    """Add the trend detector's metrics for targets whose input does not carry them."""
    given = {s.target for s in samples if s.metric in _DETECTED and "component" not in s.labels}
    raw = [s for s in samples if s.target not in given]
    return [*samples, *detector.observe(raw)] if raw else list(samples)
