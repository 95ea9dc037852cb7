"""Route events to notifiers and group one tick's notifications per notifier (pure).

A rule's own `notify` wins; otherwise routes are tried in order, the first
match wins unless it says `continue: true` (Alertmanager's semantics); with no
match, the built-in console notifier gets the alert so nothing is ever dropped.
A route muted by its time intervals still matches (later routes are not tried)
but notifies nobody then, as in Alertmanager: a mute window is a decision.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from memalert.engine.core.model import (
    CONSOLE_NOTIFIER,
    AlertEvent,
    AlertPending,
    Labels,
    Route,
    RuleSet,
    matches_all,
)
from memalert.engine.core.timeintervals import in_intervals


@dataclass(frozen=True, kw_only=True, slots=True)
class Notification:
    """Everything one notifier is sent for one tick: one message, many alerts."""

    notifier: str
    at: float
    events: tuple[AlertEvent, ...]


def notifiers_for(
    ruleset: RuleSet, event: AlertEvent, rule_notify: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    """Where one event goes at its time; `rule_notify` is its rule's own `notify`, if any."""
    if rule_notify is not None:
        return rule_notify
    matchable = {**event.labels, "severity": event.severity.label, "rule": event.rule}
    chosen: list[str] = []
    matched = False
    for route in ruleset.routes:
        if matches_all(route.matchers, matchable):
            matched = True
            if not _muted(ruleset, route, event.at):
                chosen.extend(n for n in route.notify if n not in chosen)
            if not route.continue_matching:
                break
    return tuple(chosen) if matched else (CONSOLE_NOTIFIER,)


def _muted(ruleset: RuleSet, route: Route, at: float) -> bool:
    intervals = ruleset.time_intervals
    if in_intervals(route.mute_time_intervals, intervals, at):
        return True
    active = route.active_time_intervals
    return bool(active) and not in_intervals(active, intervals, at)


def is_notifying(event: AlertEvent) -> bool:
    """Pending is a state people may inspect, not a reason to page anyone."""
    return not event.silenced and not isinstance(event, AlertPending)


def group_notifications(
    ruleset: RuleSet,
    events: Iterable[AlertEvent],
    inhibited: Collection[tuple[str, Labels]] = (),
) -> list[Notification]:
    """One Notification per notifier for the events of one tick, in event order.

    `inhibited` names the alerts (rule, labels) that inhibit rules mute this tick
    (memalert.engine.alerting.inhibition): their events are not sent.
    """
    rule_notify = {rule.name: rule.notify for rule in ruleset.rules}
    grouped: dict[str, list[AlertEvent]] = {}
    at = 0.0
    for event in events:
        if not is_notifying(event) or (inhibited and (event.rule, event.labels) in inhibited):
            continue
        at = max(at, event.at)
        for name in notifiers_for(ruleset, event, rule_notify.get(event.rule)):
            grouped.setdefault(name, []).append(event)
    return [Notification(notifier=name, at=at, events=tuple(evs)) for name, evs in grouped.items()]
