"""Alertmanager's grouping over time, per route (pure: the time is passed in).

A route with `group_by`, `group_wait`, `group_interval` or `repeat_interval`
(or any route, and the unmatched alerts, when the top level sets grouping)
collects its alerts into groups: one per route and values of the `group_by`
labels. A group remembers each alert's latest event, firing or resolved, and
is sent as a whole, as Alertmanager's aggregation groups are:

- a new group waits `group_wait`, then is flushed; after that it is flushed
  every `group_interval`;
- a flush sends the group's firing alerts and those resolved since the last
  notification, when that differs from what was last sent (a new firing alert
  or severity, a resolution), when every alert has resolved, or when
  `repeat_interval` has passed since the last notification (Alertmanager's
  notification log, its "dedup" stage);
- silenced and inhibited alerts are left out of a flush, and a flush with
  nothing left sends nothing; a route muted by its time intervals sends
  nothing and keeps the group as it is, so what happened is sent once the mute
  ends (Alertmanager drops the resolved alerts then: docs/prometheus-differences.md);
- after a flush, resolved alerts leave the group, and an empty group is gone.

Timers fire at the first evaluation at or after they are due: evaluation is
the only clock memalert has (docs/prometheus-differences.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from memalert.engine.alerting.routing import (
    ROOT_ROUTE,
    AlertKey,
    Notification,
    grouped_routes,
    matchable,
    muted,
)
from memalert.engine.core.model import (
    CONSOLE_NOTIFIER,
    GROUP_BY_ALL,
    AlertDeescalated,
    AlertEscalated,
    AlertEvent,
    AlertPending,
    AlertRepeated,
    AlertResolved,
    Grouping,
    Labels,
    RuleSet,
    Severity,
    Silence,
    matches_all,
)

GroupKey = tuple[str, Labels]
"""A group: its route (`route_key`) and the values of the route's `group_by` labels."""

Sent = frozenset[tuple[AlertKey, Severity]]
# The silences that may mute a group's alerts and, per alert, the severity it
# was matched with and whether they mute it: the rule and labels are the alert's
# key, so its severity is all that a new event can change in what silences see.
Verdicts = tuple[tuple[Silence, ...], Mapping[AlertKey, tuple[Severity, bool]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Seen:
    """What a flush found firing and not muted in a group that had no resolved alert.

    While the group's alerts are the same mapping (any change makes a new one,
    and `replace` keeps this field, so identity is checked) and the silence
    verdicts and inhibited alerts are the same, the next flush reuses it and its
    `Sent` set instead of going through the alerts: hashing 20 (alert, severity)
    pairs per group was most of a flush of 500 groups.
    """

    alerts: Mapping[AlertKey, AlertEvent]
    verdicts: Mapping[AlertKey, tuple[Severity, bool]] | None
    inhibited: frozenset[AlertKey]
    firing: tuple[AlertEvent, ...]
    keys: Sent


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """One aggregation group between ticks; a changed group is a new object."""

    # Each alert's latest event, in the order the alerts joined the group.
    alerts: Mapping[AlertKey, AlertEvent]
    # When the group's timer fires next (group_wait, then group_interval).
    due: float
    # The notification log: when the group was last sent, and what it said.
    notified_at: float | None = None
    sent_firing: Sent = frozenset()
    sent_resolved: frozenset[AlertKey] = frozenset()
    # An explicit re-notification (a leak diagnosis' follow-up) waits to be sent.
    renotify: bool = False
    # A cache, neither compared nor stored: the silences that could mute the
    # group at the last flush and their verdicts (`Verdicts`). Matching
    # silences was most of a flush of 500 groups.
    silenced: Verdicts | None = field(default=None, compare=False, repr=False)
    # A cache like `silenced`: the last flush's `Seen`, if still usable.
    seen: Seen | None = field(default=None, compare=False, repr=False)


Groups = Mapping[GroupKey, Group]


def route_key(ruleset: RuleSet, index: int) -> str:
    """A route's name in group keys: its place, matchers and notifiers.

    A group whose route changed or moved at a reload is not carried over
    (its route no longer exists), as Alertmanager keys groups by route.
    """
    if index == ROOT_ROUTE:
        return "{}"
    route = ruleset.routes[index]
    matchers = ",".join(f"{m.label}={m.pattern!r}" for m in route.matchers)
    return f"{index}:{{{matchers}}}->{','.join(route.notify)}"


def route_grouping(ruleset: RuleSet, index: int) -> Grouping:
    grouping = ruleset.grouping if index == ROOT_ROUTE else ruleset.routes[index].grouping
    if grouping is None:
        raise ValueError(f"route {index} has no grouping")
    return grouping


def group_labels(grouping: Grouping, event: AlertEvent) -> Labels:
    """The values of the route's `group_by` labels for one alert (missing ones left out)."""
    labels = matchable(event)
    if grouping.by == (GROUP_BY_ALL,):
        return Labels(labels)
    return Labels({name: labels[name] for name in grouping.by if name in labels})


def uses_grouping(ruleset: RuleSet) -> bool:
    return ruleset.grouping is not None or any(r.grouping is not None for r in ruleset.routes)


def step(
    ruleset: RuleSet,
    groups: Groups,
    events: Iterable[AlertEvent],
    *,
    now: float,
    inhibited: frozenset[AlertKey] = frozenset(),
    silences: Sequence[Silence] = (),
) -> tuple[Groups, list[Notification]]:
    """Fold one tick's events into the groups and flush the groups that are due.

    `silences` are those in force at `now`; `inhibited` the alerts inhibit
    rules mute now. Returns the next groups and the groups' notifications.
    """
    if not groups and not uses_grouping(ruleset):
        return groups, []
    keys = {route_key(ruleset, i): i for i in _grouping_routes(ruleset)}
    # Groups of routes that no longer exist (or lost their grouping) are dropped.
    updated: dict[GroupKey, Group] = {k: g for k, g in groups.items() if k[0] in keys}
    rule_notify = {rule.name: rule.notify for rule in ruleset.rules}
    for event in events:
        if isinstance(event, AlertPending):
            continue
        for index in grouped_routes(ruleset, event, rule_notify.get(event.rule)):
            _add(updated, ruleset, index, event, now)
    notifications: list[Notification] = []
    held = tuple(silences)
    for key, group in list(updated.items()):
        if group.due > now:
            continue
        index = keys[key[0]]
        flushed, sent = _flush(ruleset, index, key, group, now, inhibited=inhibited, silences=held)
        if flushed is None:
            del updated[key]
        else:
            updated[key] = flushed
        if sent:
            notify = (CONSOLE_NOTIFIER,) if index == ROOT_ROUTE else ruleset.routes[index].notify
            notifications.extend(
                Notification(notifier=name, at=now, events=sent, group=key[1]) for name in notify
            )
    return updated, notifications


def _grouping_routes(ruleset: RuleSet) -> list[int]:
    found = [i for i, route in enumerate(ruleset.routes) if route.grouping is not None]
    return [ROOT_ROUTE, *found] if ruleset.grouping is not None else found


def _add(
    groups: dict[GroupKey, Group], ruleset: RuleSet, index: int, event: AlertEvent, now: float
) -> None:
    grouping = route_grouping(ruleset, index)
    name = route_key(ruleset, index)
    key = (name, group_labels(grouping, event))
    alert = (event.rule, event.labels)
    if isinstance(event, AlertEscalated | AlertDeescalated):
        # A severity among the group labels moves the alert to another group.
        for other_key, other in list(groups.items()):
            if other_key[0] == name and other_key != key and alert in other.alerts:
                groups[other_key] = replace(
                    other, alerts={k: e for k, e in other.alerts.items() if k != alert}
                )
    group = groups.get(key)
    if group is None:
        if isinstance(event, AlertResolved):
            return  # an alert this group never had: nothing to say about it
        groups[key] = Group(alerts={alert: event}, due=now + grouping.wait)
        return
    # An explicit repeat (one with a reason) asks to be heard, not only remembered.
    renotify = group.renotify or (isinstance(event, AlertRepeated) and bool(event.reason))
    alerts = {**group.alerts, alert: event}
    groups[key] = _rearmed(group, alerts, group.due, group.silenced, renotify=renotify)


def _flush(
    ruleset: RuleSet,
    index: int,
    key: GroupKey,
    group: Group,
    now: float,
    *,
    inhibited: frozenset[AlertKey],
    silences: tuple[Silence, ...],
) -> tuple[Group | None, tuple[AlertEvent, ...]]:
    """The group after its timer fired (None: gone) and what it sends now."""
    grouping = route_grouping(ruleset, index)
    due = now + grouping.interval
    if index != ROOT_ROUTE and muted(ruleset, ruleset.routes[index], now):
        return _rearmed(group, group.alerts, due, group.silenced, seen=group.seen), ()
    # All 500 groups of a large route can be due at once: one pass, no copies
    # unless an alert resolved (bench/notify_groups.py).
    silenced = _silenced_alerts(group, _may_mute(key[1], silences))
    verdicts = silenced[1] if silenced is not None else None
    # Set operations reuse the hashes a dict and a set keep, where `alert in
    # inhibited` for each alert would hash its labels again.
    inhibited_here = frozenset(group.alerts) & inhibited if inhibited else inhibited
    seen = group.seen
    if (
        seen is None
        or seen.alerts is not group.alerts
        or seen.verdicts is not verdicts
        or seen.inhibited != inhibited_here
    ):
        seen = None
        firing, firing_set, resolved, any_resolved = _sorted_out(group, verdicts, inhibited_here)
        if firing_set == group.sent_firing:
            # Sets of equal but distinct tuples compare labels by a Python __eq__
            # per alert; the very same set compares by identity at later flushes.
            firing_set = group.sent_firing
    else:  # a group seen without resolved alerts still has none
        firing, firing_set, resolved, any_resolved = seen.firing, seen.keys, (), False
    resolved_set = frozenset((e.rule, e.labels) for e in resolved)
    repeat = grouping.repeat if grouping.repeat is not None else ruleset.repeat_interval
    send = bool(firing or resolved) and _needs_update(group, firing_set, resolved_set, now, repeat)
    kept = (
        {k: e for k, e in group.alerts.items() if not isinstance(e, AlertResolved)}
        if any_resolved
        else group.alerts
    )
    sent = firing + resolved if send else ()
    if not kept:
        return None, sent
    if seen is None and not any_resolved:
        seen = Seen(
            alerts=kept, verdicts=verdicts, inhibited=inhibited_here, firing=firing, keys=firing_set
        )
    if not send:
        return _rearmed(group, kept, due, silenced, seen=seen), ()
    after = Group(
        alerts=kept,
        due=due,
        notified_at=now,
        sent_firing=firing_set,
        sent_resolved=resolved_set,
        silenced=silenced,
        seen=seen,
    )
    return after, sent


def _sorted_out(
    group: Group,
    verdicts: Mapping[AlertKey, tuple[Severity, bool]] | None,
    inhibited: frozenset[AlertKey],
) -> tuple[tuple[AlertEvent, ...], Sent, tuple[AlertEvent, ...], bool]:
    """The group's firing alerts not muted (and their `Sent` set), the resolved ones
    to send, and whether any alert resolved: one pass, for 10,000 alerts at once."""
    firing: list[AlertEvent] = []
    firing_keys: list[tuple[AlertKey, Severity]] = []
    resolved: list[AlertEvent] = []
    any_resolved = False
    heard: set[AlertKey] | None = None
    for alert, event in group.alerts.items():
        gone = isinstance(event, AlertResolved)
        if gone:
            any_resolved = True
        if (verdicts is not None and verdicts[alert][1]) or (inhibited and alert in inhibited):
            continue
        if not gone:
            firing.append(event)
            firing_keys.append((alert, event.severity))
            continue
        if heard is None:
            heard = {sent for sent, _ in group.sent_firing}
        if alert in heard:  # nobody heard it fire, so nobody needs to hear it resolve
            resolved.append(event)
    return tuple(firing), frozenset(firing_keys), tuple(resolved), any_resolved


def _rearmed(
    group: Group,
    alerts: Mapping[AlertKey, AlertEvent],
    due: float,
    silenced: Verdicts | None,
    *,
    renotify: bool | None = None,
    seen: Seen | None = None,
) -> Group:
    """The group with new alerts or timer and the same notification log (faster than `replace`)."""
    return Group(
        alerts=alerts,
        due=due,
        notified_at=group.notified_at,
        sent_firing=group.sent_firing,
        sent_resolved=group.sent_resolved,
        renotify=group.renotify if renotify is None else renotify,
        silenced=silenced,
        seen=seen,
    )


def _may_mute(labels: Labels, silences: tuple[Silence, ...]) -> tuple[Silence, ...]:
    """The silences that may mute some alert of the group with these labels.

    Every alert of a group has the group's value of each of the group's labels
    (they were taken from its events), so a silence with a matcher on one of
    them that the group's labels fail mutes none of them: with 500 groups by
    target and a silence on one target, 499 groups need no matching at all.
    Labels the group lacks decide nothing: its alerts may have them.
    """
    return tuple(
        s for s in silences if all(m.matches(labels) for m in s.matchers if m.label in labels)
    )


def _silenced_alerts(group: Group, silences: tuple[Silence, ...]) -> Verdicts | None:
    """Whether `silences` mute each alert of the group (None: none can), reusing valid verdicts."""
    if not silences:
        return None
    cached = group.silenced
    known = cached[1] if cached is not None and cached[0] == silences else {}
    alerts = group.alerts.items()
    if all((v := known.get(alert)) is not None and v[0] == e.severity for alert, e in alerts):
        return silences, known
    verdicts = {}
    for alert, event in alerts:
        verdict = known.get(alert)
        if verdict is None or verdict[0] != event.severity:
            labels = matchable(event)
            verdict = (event.severity, any(matches_all(s.matchers, labels) for s in silences))
        verdicts[alert] = verdict
    return silences, verdicts


def _needs_update(
    group: Group, firing: Sent, resolved: frozenset[AlertKey], now: float, repeat: float
) -> bool:
    """Alertmanager's notification log check, with `renotify` for explicit repeats."""
    if group.notified_at is None:
        return bool(firing)
    if not firing <= group.sent_firing:
        return True
    if not firing:
        return bool(group.sent_firing)
    if not resolved <= group.sent_resolved or group.renotify:
        return True
    return now - group.notified_at >= repeat
