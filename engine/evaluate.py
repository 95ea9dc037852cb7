"""The pure evaluator: `evaluate(rules, samples, state, now) -> (state, events)`.

One state machine per alert instance (rule name + sample labels):

    inactive -> pending -> firing -> escalated / deescalated -> resolved

Each severity level keeps its own "active since" time, so escalation needs the
critical condition to hold for `for` on its own, exactly like two Prometheus
rules would. Leaving a level (de-escalation or resolution) waits
`keep_firing_for`; `recover` thresholds give hysteresis: a level once reached
is held while the value stays beyond its recover threshold.

Missing data follows Prometheus: a series whose sample is missing keeps its
last value for `LOOKBACK_SECONDS` (promtool's `_`, a skipped scrape); a target
reported `up` == 0 is stale at once (Prometheus's staleness marker). A series
with no value makes the condition false, so a firing alert holds for
`keep_firing_for` and then resolves with the reason "no data": never a flap,
never a silent reset.

Nothing here reads a clock, the environment or the network: live, dry-run and
`memalert test` call this same function.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from engine.messages import render_summary
from engine.model import (
    AlertDeescalated,
    AlertEscalated,
    AlertEvent,
    AlertFired,
    AlertPending,
    AlertRepeated,
    AlertResolved,
    Labels,
    Rule,
    RuleSet,
    Sample,
    Severity,
    Silence,
    matches_all,
)

# Prometheus's default query lookback: how long a sample stands for its series.
LOOKBACK_SECONDS = 300.0

SeriesKey = tuple[str, Labels]
InstanceKey = tuple[str, Labels]


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceState:
    """What one alert instance remembers between ticks (never the current value)."""

    # When each level's condition began to hold without a break: (warning, critical).
    active_since: tuple[float | None, float | None] = (None, None)
    firing: Severity | None = None
    firing_since: float | None = None
    # Per level, when a firing level stopped being met: its keep_firing_for clock.
    hold_since: tuple[float | None, float | None] = (None, None)
    last_notified: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalState:
    instances: Mapping[InstanceKey, InstanceState] = field(default_factory=dict)
    series: Mapping[SeriesKey, Sample] = field(default_factory=dict)


def _beyond_above(value: float, threshold: float) -> bool:
    return value > threshold


def _beyond_below(value: float, threshold: float) -> bool:
    return value < threshold


# One small function per condition keyword; the compiler checked the name.
CONDITIONS = {"above": _beyond_above, "below": _beyond_below}


def current_series(
    previous: Mapping[SeriesKey, Sample], samples: Iterable[Sample], now: float
) -> dict[SeriesKey, Sample]:
    """Merge this tick's samples over the remembered ones, dropping stale series."""
    fresh: dict[SeriesKey, Sample] = {}
    down: set[str] = set()
    for sample in samples:
        # NaN is Prometheus's staleness marker: the series ends here (promtool `stale`).
        fresh[(sample.metric, sample.labels)] = sample
        if sample.metric == "up" and sample.value == 0:
            down.add(sample.target)
    oldest = now - LOOKBACK_SECONDS
    merged = {
        key: sample
        for key, sample in previous.items()
        if sample.ts >= oldest and key not in fresh and sample.target not in down
    }
    for key, sample in fresh.items():
        if (sample.target in down and sample.metric != "up") or math.isnan(sample.value):
            continue
        merged[key] = sample
    return merged


def evaluate(
    rules: RuleSet,
    samples: Iterable[Sample],
    state: EvalState,
    now: float,
    *,
    silences: Sequence[Silence] = (),
) -> tuple[EvalState, list[AlertEvent]]:
    """Run every rule once at time `now`; return the next state and the transitions."""
    series = current_series(state.series, samples, now)
    by_metric: dict[str, list[Sample]] = {}
    for sample in series.values():
        by_metric.setdefault(sample.metric, []).append(sample)

    active_silences = [s for s in (*rules.silences, *silences) if s.active(now)]
    instances = dict(state.instances)
    events: list[AlertEvent] = []
    seen: set[InstanceKey] = set()
    steps = {
        rule.name: _RuleStep(
            rule,
            now=now,
            repeat_interval=rules.repeat_interval,
            silences=active_silences,
            series=series,
            events=events,
        )
        for rule in rules.rules
    }
    for rule in rules.rules:
        step = steps[rule.name]
        for sample in by_metric.get(rule.metric, ()):
            if rule.where and not matches_all(rule.where, sample.labels):
                continue
            key = (rule.name, sample.labels)
            old = instances.get(key)
            if old is None:
                if not step.any_level_met(sample.value):
                    continue  # the common case: nothing to remember, nothing to say
            else:
                seen.add(key)
            new = step.advance(old or _INACTIVE, sample.labels, sample.value)
            _store(instances, key, old, new)

    # Instances whose series is gone this tick: no value, so their condition is false.
    for key, old in state.instances.items():
        if key in seen:
            continue
        missing_step = steps.get(key[0])
        if missing_step is None:
            del instances[key]  # the rule was removed by a reload
            continue
        _store(instances, key, old, missing_step.advance(old, key[1], None))
    return EvalState(instances=instances, series=series), events


_INACTIVE = InstanceState()


def _store(
    instances: dict[InstanceKey, InstanceState],
    key: InstanceKey,
    old: InstanceState | None,
    new: InstanceState | None,
) -> None:
    if new is None:
        instances.pop(key, None)
    elif new is not old:
        instances[key] = new


class _Moment(NamedTuple):
    """One instance at this evaluation: what every event about it reports."""

    labels: Labels
    value: float | None
    active: tuple[float | None, float | None]


class _RuleStep:
    """One rule's transition function for one tick (precomputes the per-rule parts)."""

    __slots__ = (
        "beyond",
        "events",
        "for_s",
        "keep_s",
        "levels",
        "lowest",
        "now",
        "plan",
        "repeat",
        "rule",
        "series",
        "silences",
    )

    def __init__(
        self,
        rule: Rule,
        *,
        now: float,
        repeat_interval: float,
        silences: list[Silence],
        series: Mapping[SeriesKey, Sample],
        events: list[AlertEvent],
    ) -> None:
        self.rule = rule
        self.now = now
        self.repeat = repeat_interval
        self.silences = silences
        self.series = series
        self.events = events
        self.beyond = CONDITIONS[rule.direction]
        self.for_s = rule.for_seconds
        self.keep_s = rule.keep_firing_for_seconds
        self.levels = sorted(rule.thresholds)
        self.plan = [
            (level, level - 1, rule.thresholds[level], rule.recover.get(level))
            for level in self.levels
        ]
        # The compiler orders thresholds, so the least severe level is met first.
        self.lowest = rule.thresholds[self.levels[0]]

    def any_level_met(self, value: float) -> bool:
        return self.beyond(value, self.lowest)

    def advance(
        self, old: InstanceState, labels: Labels, value: float | None
    ) -> InstanceState | None:
        now = self.now
        current = old.firing
        previous = old.active_since
        old_hold = old.hold_since
        active: list[float | None] = [None, None]
        hold: list[float | None] = [None, None]
        # The highest level firing after this evaluation. Each level behaves like
        # its own Prometheus rule: it starts firing after `for` and stops
        # `keep_firing_for` after its condition was last met.
        target: Severity | None = None
        newly_active = False
        for level, index, trigger, recover in self.plan:
            firing_here = current is not None and level <= current
            # Hysteresis: a firing level is left only beyond its `recover` threshold.
            threshold = recover if recover is not None and firing_here else trigger
            met = value is not None and self.beyond(value, threshold)
            since = previous[index]
            if met:
                if since is None:
                    since = now
                    newly_active = True
                active[index] = since
            if firing_here:
                if met:
                    target = level
                else:
                    stopped = old_hold[index]
                    if stopped is None:
                        stopped = now
                    if now - stopped < self.keep_s:
                        hold[index] = stopped
                        target = level
            elif met and since is not None and now - since >= self.for_s:
                target = level
        new_active = (active[0], active[1])
        new_hold = (hold[0], hold[1])
        moment = _Moment(labels, value, new_active)

        if current is None:
            if target is not None:
                return self._notify(
                    AlertFired,
                    moment,
                    target,
                    now,
                    InstanceState(active_since=new_active, firing=target, firing_since=now),
                )
            if new_active == (None, None):
                return None  # a pending alert whose condition went away is dropped
            if newly_active:
                self._announce_pending(old, moment)
            return old if new_active == previous else replace(old, active_since=new_active)

        if target is None:
            reason = "" if value is not None else "no data"
            self._emit(
                AlertResolved,
                moment,
                current,
                old.firing_since,
                reason=reason,
                notify_state=old,
            )
            return None
        if new_active == previous and new_hold == old_hold and target == current:
            base = old  # the steady state of a firing alert allocates nothing
        else:
            base = InstanceState(
                active_since=new_active,
                firing=target,
                firing_since=old.firing_since,
                hold_since=new_hold,
                last_notified=old.last_notified,
            )
        if target > current:
            return self._notify(AlertEscalated, moment, target, old.firing_since, base)
        if target < current:
            return self._notify(AlertDeescalated, moment, target, old.firing_since, base)
        if newly_active:
            self._announce_pending(old, moment)
        due = old.last_notified is None or now - old.last_notified >= self.repeat
        if due and not self._silenced(labels, current):
            return self._notify(AlertRepeated, moment, current, old.firing_since, base)
        return base

    def _announce_pending(self, old: InstanceState, moment: _Moment) -> None:
        """Report a level that has just become pending (above any firing level)."""
        for level in reversed(self.levels):
            since = moment.active[level - 1]
            if (
                since == self.now
                and old.active_since[level - 1] is None
                and (old.firing is None or level > old.firing)
                and self.now - since < self.for_s
            ):
                self._emit(AlertPending, moment, level, None)
                return

    def _notify(
        self,
        kind: type[AlertEvent],
        moment: _Moment,
        severity: Severity,
        firing_since: float | None,
        new: InstanceState,
    ) -> InstanceState:
        silenced = self._emit(kind, moment, severity, firing_since)
        return new if silenced else replace(new, last_notified=self.now)

    def _emit(
        self,
        kind: type[AlertEvent],
        moment: _Moment,
        severity: Severity,
        firing_since: float | None,
        *,
        reason: str = "",
        notify_state: InstanceState | None = None,
    ) -> bool:
        rule = self.rule
        labels, value, active = moment
        related = related_values(self.series, labels)
        alert_labels = labels.merged(rule.labels) if rule.labels else labels
        silenced = self._silenced(labels, severity)
        if (
            kind is AlertResolved
            and notify_state is not None
            and notify_state.last_notified is None
        ):
            silenced = True  # nobody heard it fire, so nobody needs to hear it resolve
        threshold = rule.thresholds.get(severity)
        context_value = value if value is not None else self._last_value(labels)
        since = active[severity - 1]
        event = kind(
            at=self.now,
            rule=rule.name,
            metric=rule.metric,
            severity=severity,
            labels=alert_labels,
            value=context_value,
            threshold=threshold,
            active_since=since,
            firing_since=firing_since,
            reason=reason,
            silenced=silenced,
            related=related,
            summary=render_summary(
                rule,
                severity=severity,
                state=kind.event,
                labels=alert_labels,
                value=context_value,
                threshold=threshold,
                related=related,
                firing_for=None if firing_since is None else self.now - firing_since,
            ),
        )
        self.events.append(event)
        return silenced

    def _silenced(self, labels: Labels, severity: Severity) -> bool:
        if not self.silences:
            return False
        rule = self.rule
        alert_labels = labels.merged(rule.labels) if rule.labels else labels
        matchable = {**alert_labels, "severity": severity.label, "rule": rule.name}
        return any(matches_all(s.matchers, matchable) for s in self.silences)

    def _last_value(self, labels: Labels) -> float | None:
        sample = self.series.get((self.rule.metric, labels))
        return None if sample is None else sample.value


_RELATED_METRICS = (
    "leak_growth_bytes_per_hour",
    "leak_confidence",
    "time_to_limit_seconds",
    "limit_bytes",
)


def related_values(series: Mapping[SeriesKey, Sample], labels: Labels) -> dict[str, float]:
    """Detector and tracker values of the same series (or its target), for templates."""
    related: dict[str, float] = {}
    target_only = Labels(target=labels.get("target", ""))
    for metric in _RELATED_METRICS:
        sample = series.get((metric, labels)) or series.get((metric, target_only))
        if sample is not None:
            related[metric] = sample.value
    return related
