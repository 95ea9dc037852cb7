"""Route events to notifiers and group one tick's notifications per notifier (pure).

A rule's own `notify` wins; otherwise routes are tried in order, the first
match wins unless it says `continue: true` (Alertmanager's semantics); with no
match, the built-in console notifier gets the alert so nothing is ever dropped.
A route muted by its time intervals still matches (later routes are not tried)
but notifies nobody then, as in Alertmanager: a mute window is a decision.

A route with grouping over time (`group_by`, `group_wait`, ...) sends nothing
here: `memalert.engine.alerting.grouping` keeps its groups and says when they
are sent. The same goes for unmatched alerts when the top level sets grouping.
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

AlertKey = tuple[str, Labels]
"""An alert as notifications and views name it: rule name, alert labels (with the rule's)."""

ROOT_ROUTE = -1
"""The index standing for the top level (Alertmanager's root route) in `grouped_routes`."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Notification:
    """Everything one notifier is sent at once: one message, many alerts.

    `group` is the group's labels (its `group_by` values) when a route with
    grouping sent it; None for the events of one tick sent as they happen.
    """

    notifier: str
    at: float
    events: tuple[AlertEvent, ...]
    group: Labels | None = None


def matchable(event: AlertEvent) -> dict[str, str]:
    """The labels routes, silences and `group_by` see: the alert's, `severity` and `rule`."""
    labels = event.labels.as_dict()  # a copy of a dict: faster than unpacking a Mapping
    labels["severity"] = event.severity.label
    labels["rule"] = event.rule
    return labels


def matched_routes(ruleset: RuleSet, event: AlertEvent) -> list[int] | None:
    """Indices of the routes `event` matches, in order; None when it matches none."""
    labels = matchable(event)
    matched: list[int] = []
    for index, route in enumerate(ruleset.routes):
        if matches_all(route.matchers, labels):
            matched.append(index)
            if not route.continue_matching:
                break
    return matched or None


def notifiers_for(
    ruleset: RuleSet, event: AlertEvent, rule_notify: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    """Where one event goes at its time, now; `rule_notify` is its rule's own `notify`, if any.

    Routes with grouping are left out: their groups send later (`grouped_routes`).
    """
    if rule_notify is not None:
        return rule_notify
    matched = matched_routes(ruleset, event)
    if matched is None:
        return () if ruleset.grouping is not None else (CONSOLE_NOTIFIER,)
    chosen: list[str] = []
    for index in matched:
        route = ruleset.routes[index]
        if route.grouping is None and not muted(ruleset, route, event.at):
            chosen.extend(n for n in route.notify if n not in chosen)
    return tuple(chosen)


def grouped_routes(
    ruleset: RuleSet, event: AlertEvent, rule_notify: tuple[str, ...] | None = None
) -> list[int]:
    """Indices of the routes with grouping that `event` goes to (ROOT_ROUTE: the top level)."""
    if rule_notify is not None:
        return []
    matched = matched_routes(ruleset, event)
    if matched is None:
        return [ROOT_ROUTE] if ruleset.grouping is not None else []
    return [i for i in matched if ruleset.routes[i].grouping is not None]


def muted(ruleset: RuleSet, route: Route, at: float) -> bool:
    """Whether the route's time intervals mute it at `at`."""
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
    inhibited: Collection[AlertKey] = (),
) -> list[Notification]:
    """One Notification per notifier for the events of one tick sent now, in event order.

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
