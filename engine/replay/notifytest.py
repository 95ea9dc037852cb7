"""`notification_test` in `memalert test` files: what is sent at an evaluation.

A check at `eval_time` compares `exp_notifications` with the notifications sent
at the last evaluation at or before it (as `exp_alerts` compares alerts), after
routing, grouping over time, inhibition, silences and mute windows: the
`Notification`s the daemon would enqueue. Each expected notification names its
`notifier`, optionally its `group` (the values of its route's `group_by`
labels; `null` for one tick's events sent as they happen) and every alert in
it: `rule`, `labels` (exactly, the rule's own labels included), `state`
(`firing` or `resolved`) and optionally `severity`. Notifications and their
alerts are compared as sets: the order they are listed in does not matter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from memalert.engine.alerting.messages import describe_labels
from memalert.engine.alerting.routing import Notification
from memalert.engine.core.model import AlertEvent, AlertResolved, Labels, Severity
from memalert.engine.core.units import format_duration

T = TypeVar("T")
G = TypeVar("G")


@dataclass(frozen=True, kw_only=True, slots=True)
class ExpectedAlert:
    rule: str
    labels: Labels
    state: str
    severity: Severity | None

    def matches(self, got: AlertEvent) -> bool:
        return (
            got.rule == self.rule
            and got.labels == self.labels
            and _state(got) == self.state
            and (self.severity is None or got.severity is self.severity)
        )

    def describe(self) -> str:
        severity = f"{self.severity.label} " if self.severity else ""
        return f"{self.state} {severity}{self.rule} {describe_labels(self.labels)}"


@dataclass(frozen=True, kw_only=True, slots=True)
class ExpectedNotification:
    notifier: str
    # Compared only when the test gives a `group` (None: sent as they happen).
    group_given: bool
    group: Labels | None
    alerts: tuple[ExpectedAlert, ...]

    def matches(self, got: Notification) -> bool:
        return (
            got.notifier == self.notifier
            and (not self.group_given or got.group == self.group)
            and same_items(self.alerts, got.events, ExpectedAlert.matches)
        )

    def describe(self) -> str:
        group = _group(self.group) if self.group_given else ""
        alerts = ", ".join(a.describe() for a in self.alerts) or "(no alerts)"
        return f"{self.notifier}{group}: {alerts}"


def same_items(expected: Sequence[T], got: Sequence[G], matches: Callable[[T, G], bool]) -> bool:
    """Whether each expected item matches a different got item, and none is left over."""
    unmatched = list(got)
    for exp in expected:
        found = next((g for g in unmatched if matches(exp, g)), None)
        if found is None:
            return False
        unmatched.remove(found)
    return not unmatched


@dataclass(frozen=True, kw_only=True, slots=True)
class NotificationCheck:
    eval_time: float
    expected: tuple[ExpectedNotification, ...]


def parse_expected(check: dict[str, Any]) -> tuple[ExpectedNotification, ...]:
    """The `exp_notifications` of one check (the schema checked the structure)."""
    return tuple(
        ExpectedNotification(
            notifier=exp["notifier"],
            group_given="group" in exp,
            group=None if exp.get("group") is None else Labels(exp["group"]),
            alerts=tuple(
                ExpectedAlert(
                    rule=alert["rule"],
                    labels=Labels(alert.get("labels", {})),
                    state=alert.get("state", "firing"),
                    severity=Severity.parse(alert["severity"]) if "severity" in alert else None,
                )
                for alert in exp.get("alerts", [])
            ),
        )
        for exp in check.get("exp_notifications", [])
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class NotificationFailure:
    file: str
    test: str
    check: NotificationCheck
    got: tuple[Notification, ...]

    def __str__(self) -> str:
        lines = [
            (
                f"FAIL {self.file}: test {self.test!r}, notifications "
                f"at eval_time {format_duration(self.check.eval_time)}:"
            ),
            "  expected:",
            *(f"    {e.describe()}" for e in self.check.expected),
            "  got:",
            *(f"    {_got(n)}" for n in self.got),
        ]
        if not self.check.expected:
            lines.insert(2, "    (no notifications)")
        if not self.got:
            lines.append("    (no notifications)")
        return "\n".join(lines)


def _state(event: AlertEvent) -> str:
    return "resolved" if isinstance(event, AlertResolved) else "firing"


def _group(group: Labels | None) -> str:
    return " (no group)" if group is None else f" group {describe_labels(group)}"


def _got(note: Notification) -> str:
    alerts = ", ".join(
        f"{_state(e)} {e.severity.label} {e.rule} {describe_labels(e.labels)}" for e in note.events
    )
    return f"{note.notifier}{_group(note.group)}: {alerts}"
