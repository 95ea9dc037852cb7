"""One rule's state machine over its alert instances, for one evaluation.

    inactive -> pending -> firing -> escalated / deescalated -> resolved

Each severity level keeps its own "active since" time and its own `for` (one
duration for all, or `for: {warning: 10m, critical: 2m}`), so escalation needs
the critical condition to hold for critical's `for` on its own, exactly like two
Prometheus rules would. Leaving a level (de-escalation or resolution) waits
`keep_firing_for`; `recover` thresholds give hysteresis: a level once reached
is held while the value stays beyond its recover threshold. A missing value
makes the condition false, so a firing alert holds for `keep_firing_for` and
then resolves with the reason "no data": never a flap, never a silent reset.

Events carry their summary as a renderer, rendered when first read (see
`memalert.engine.core.model.defer_summary`): a burst tick does not pay for text nobody reads.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass

from memalert.engine.alerting.messages import related_values, summary_renderer, target_infos
from memalert.engine.alerting.staleness import SeriesKey
from memalert.engine.core.model import (
    AlertDeescalated,
    AlertEscalated,
    AlertEvent,
    AlertFired,
    AlertPending,
    AlertRepeated,
    AlertResolved,
    Labels,
    Rule,
    Sample,
    Severity,
    Silence,
    defer_summary,
    matches_all,
)

_Times = tuple[float | None, float | None]


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


INACTIVE = InstanceState()
"""An instance with nothing to remember: what a newly met condition starts from."""


# One comparison per condition keyword (the compiler checked the name): is the
# value beyond the threshold?
CONDITIONS = {"above": operator.gt, "below": operator.lt}


_NO_INFO = Labels()


class Tick:
    """What every rule sees at one evaluation, and the events they report."""

    __slots__ = ("_info", "_related", "events", "now", "repeat_interval", "series", "silences")

    def __init__(
        self,
        *,
        now: float,
        repeat_interval: float,
        silences: list[Silence],
        series: Mapping[SeriesKey, Sample],
    ) -> None:
        self.now = now
        self.repeat_interval = repeat_interval
        self.silences = silences
        self.series = series
        self.events: list[AlertEvent] = []
        self._related: dict[Labels, dict[str, float]] = {}
        self._info: dict[str, Labels] | None = None

    def related(self, labels: Labels) -> dict[str, float]:
        """`related_values` of a series, looked up once per tick however many rules fire."""
        related = self._related.get(labels)
        if related is None:
            related = self._related[labels] = related_values(self.series, labels)
        return related

    def info(self, labels: Labels) -> Mapping[str, str]:
        """The `target_info` labels of the series' target; indexed once, on the first event."""
        if self._info is None:
            self._info = target_infos(self.series)
        return self._info.get(labels.get("target", ""), _NO_INFO)


class RuleStep:
    """One rule's transition function for one tick (precomputes the per-rule parts)."""

    __slots__ = (
        "beyond",
        "keep_s",
        "levels",
        "lowest",
        "now",
        "plan",
        "renderer",
        "rule",
        "tick",
        "waits",
    )

    def __init__(self, rule: Rule, tick: Tick) -> None:
        self.rule = rule
        self.tick = tick
        self.now = tick.now
        self.beyond = CONDITIONS[rule.direction]
        self.keep_s = rule.keep_firing_for_seconds
        self.levels = sorted(rule.thresholds)
        # Per level: the threshold that makes it active, the one that keeps it
        # firing (hysteresis: a firing level is left only beyond `recover`), and
        # its own `for`, as if each level were its own Prometheus rule.
        self.plan = [
            (
                level,
                level - 1,
                rule.thresholds[level],
                rule.recover.get(level, rule.thresholds[level]),
                rule.pending_for(level),
            )
            for level in self.levels
        ]
        # Each level's `for`, indexed by the level (0: not firing), read per instance.
        self.waits = (0.0, *(rule.pending_for(level) for level in Severity))
        # The compiler orders thresholds, so the least severe level is met first.
        self.lowest = rule.thresholds[self.levels[0]]
        self.renderer = summary_renderer(rule)

    def evaluates(self, labels: Labels) -> bool:
        """Whether this tick has a value of the rule's metric for `labels` that it selects."""
        where = self.rule.where
        return (self.rule.metric, labels) in self.tick.series and (
            not where or matches_all(where, labels)
        )

    def advance(
        self, old: InstanceState, labels: Labels, value: float | None
    ) -> InstanceState | None:
        """The instance's next state (None: nothing left to remember); reports transitions."""
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
        beyond = self.beyond
        firing_rank = 0 if current is None else current
        firing_wait = self.waits[firing_rank]
        for level, index, trigger, held, wait in self.plan:
            since = previous[index]
            # A level below the firing one fires too (it was met first), unless it
            # waits a longer `for` that has not passed yet: `for: {warning: 10m,
            # critical: 2m}` (docs/rules.md says where this departs from Prometheus).
            firing_here = level <= firing_rank and (
                level == firing_rank
                or wait <= firing_wait
                or old_hold[index] is not None
                or (since is not None and now - since >= wait)
            )
            if value is not None and beyond(value, held if firing_here else trigger):
                if since is None:
                    since = now
                    newly_active = True
                active[index] = since
                if firing_here or now - since >= wait:
                    target = level
            elif firing_here:
                stopped = old_hold[index]
                if stopped is None:
                    stopped = now
                if now - stopped < self.keep_s:
                    hold[index] = stopped
                    target = level
        new_active = (active[0], active[1])

        if current is None:
            if target is not None:
                return self._notify(
                    AlertFired,
                    labels,
                    value,
                    active=new_active,
                    hold=(None, None),
                    severity=target,
                    firing_since=now,
                    last_notified=None,
                )
            if new_active == (None, None):
                return None  # a pending alert whose condition went away is dropped
            if newly_active:
                self._announce_pending(old, labels, value, new_active)
            if new_active == previous:
                return old
            return InstanceState(
                active_since=new_active,
                firing=current,
                firing_since=old.firing_since,
                hold_since=old_hold,
                last_notified=old.last_notified,
            )

        firing_since = old.firing_since
        if target is None:
            self._emit(
                AlertResolved,
                labels,
                value,
                active=new_active,
                severity=current,
                firing_since=firing_since,
                reason="" if value is not None else "no data",
                # Nobody heard it fire, so nobody needs to hear it resolve.
                heard=old.last_notified is not None,
            )
            if new_active == (None, None):
                return None
            # A lower level still pending its own longer `for` goes on waiting.
            return InstanceState(active_since=new_active)
        new_hold = (hold[0], hold[1])
        if target != current:
            kind = AlertEscalated if target > current else AlertDeescalated
            return self._notify(
                kind,
                labels,
                value,
                active=new_active,
                hold=new_hold,
                severity=target,
                firing_since=firing_since,
                last_notified=old.last_notified,
            )
        if newly_active:
            self._announce_pending(old, labels, value, new_active)
        last = old.last_notified
        if (last is None or now - last >= self.tick.repeat_interval) and not self._silenced(
            labels, current
        ):
            return self._notify(
                AlertRepeated,
                labels,
                value,
                active=new_active,
                hold=new_hold,
                severity=current,
                firing_since=firing_since,
                last_notified=last,
            )
        if new_active == previous and new_hold == old_hold:
            return old  # the steady state of a firing alert allocates nothing
        return InstanceState(
            active_since=new_active,
            firing=current,
            firing_since=firing_since,
            hold_since=new_hold,
            last_notified=last,
        )

    def repeat(
        self,
        instance: InstanceState,
        labels: Labels,
        *,
        reason: str,
        top_sites: tuple[tuple[str, float], ...] = (),
    ) -> AlertEvent:
        """Re-notify a firing instance now, outside `repeat_interval` (a diagnosis follow-up)."""
        severity = instance.firing
        if severity is None:
            raise ValueError("only a firing alert is re-notified")
        self._emit(
            AlertRepeated,
            labels,
            None,
            active=instance.active_since,
            severity=severity,
            firing_since=instance.firing_since,
            reason=reason,
            top_sites=top_sites,
        )
        return self.tick.events[-1]

    def _announce_pending(
        self, old: InstanceState, labels: Labels, value: float | None, active: _Times
    ) -> None:
        """Report a level that has just become pending (above any firing level)."""
        now = self.now
        for level in reversed(self.levels):
            since = active[level - 1]
            if (
                since == now
                and old.active_since[level - 1] is None
                and (old.firing is None or level > old.firing)
                and now - since < self.waits[level]
            ):
                self._emit(
                    AlertPending, labels, value, active=active, severity=level, firing_since=None
                )
                return

    def _notify(
        self,
        kind: type[AlertEvent],
        labels: Labels,
        value: float | None,
        *,
        active: _Times,
        hold: _Times,
        severity: Severity,
        firing_since: float | None,
        last_notified: float | None,
    ) -> InstanceState:
        """Report a firing level; the next state remembers the notification unless silenced."""
        silenced = self._emit(
            kind, labels, value, active=active, severity=severity, firing_since=firing_since
        )
        return InstanceState(
            active_since=active,
            firing=severity,
            firing_since=firing_since,
            hold_since=hold,
            last_notified=last_notified if silenced else self.now,
        )

    def _emit(
        self,
        kind: type[AlertEvent],
        labels: Labels,
        value: float | None,
        *,
        active: _Times,
        severity: Severity,
        firing_since: float | None,
        reason: str = "",
        heard: bool = True,
        top_sites: tuple[tuple[str, float], ...] = (),
    ) -> bool:
        """Append the event; return whether it is silenced."""
        rule = self.rule
        tick = self.tick
        silenced = not heard or self._silenced(labels, severity)
        if value is None:
            last = tick.series.get((rule.metric, labels))
            value = None if last is None else last.value
        event = kind(
            at=self.now,
            rule=rule.name,
            metric=rule.metric,
            severity=severity,
            labels=labels.merged(rule.labels) if rule.labels else labels,
            value=value,
            threshold=rule.thresholds.get(severity),
            active_since=active[severity - 1],
            firing_since=firing_since,
            reason=reason,
            silenced=silenced,
            related=tick.related(labels),
            top_sites=top_sites,
            info=tick.info(labels),
        )
        defer_summary(event, self.renderer)
        tick.events.append(event)
        return silenced

    def _silenced(self, labels: Labels, severity: Severity) -> bool:
        silences = self.tick.silences
        if not silences:
            return False
        rule = self.rule
        alert_labels = labels.merged(rule.labels) if rule.labels else labels
        matchable = {**alert_labels, "severity": severity.label, "rule": rule.name}
        return any(matches_all(s.matchers, matchable) for s in silences)
