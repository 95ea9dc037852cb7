"""`memalert dry-run`: replay recorded observations through the rules, send nothing.

Evaluation runs on the rule set's `interval` grid starting at the first
observation, each tick seeing the samples recorded since the previous one:
the same cadence, detector and evaluator as `memalert run`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from memalert.engine.alerting.messages import describe_labels, event_line, notification_title
from memalert.engine.alerting.pipeline import Pipeline, TickResult
from memalert.engine.alerting.routing import is_notifying, notifiers_for
from memalert.engine.core.model import AlertEvent, RuleSet, Sample, Severity
from memalert.engine.core.secrets import mask
from memalert.engine.core.units import rfc3339
from memalert.engine.rules.templates import format_value

TRANSITIONS = frozenset({"pending", "firing", "escalated", "deescalated", "resolved"})


def replay(ruleset: RuleSet, samples: Sequence[Sample]) -> Iterator[TickResult]:
    """Yield one TickResult per evaluation from the first to the last observation."""
    if not samples:
        return
    pipeline = Pipeline(ruleset)
    ordered = sorted(samples, key=lambda s: s.ts)
    first, last = ordered[0].ts, ordered[-1].ts
    index = 0
    tick = 0
    while True:
        # Multiplied, not summed: adding e.g. 0.1 s thousands of times drifts off the grid.
        now = first + tick * ruleset.interval
        batch_start = index
        while index < len(ordered) and ordered[index].ts <= now:
            index += 1
        yield pipeline.step(now, ordered[batch_start:index])
        if now >= last:
            return
        tick += 1


@dataclass(frozen=True, kw_only=True, slots=True)
class DryRunSummary:
    transitions: int
    notifications: int
    worst_fired: Severity | None


def run_dry_run(
    ruleset: RuleSet, samples: Sequence[Sample], *, output_format: str, write: Callable[[str], None]
) -> DryRunSummary:
    """Replay and print; returns counts so the CLI can pick its exit code."""
    transitions = notifications = 0
    worst: Severity | None = None
    rule_notify = {rule.name: rule.notify for rule in ruleset.rules}
    for tick in replay(ruleset, samples):
        for event in tick.events:
            if event.event not in TRANSITIONS:
                continue
            transitions += 1
            if event.event in {"firing", "escalated"}:
                worst = event.severity if worst is None else max(worst, event.severity)
            targets = (
                notifiers_for(ruleset, event, rule_notify.get(event.rule))
                if is_notifying(event)
                else ()
            )
            write(mask(_transition(event, targets, output_format)))
        if output_format == "text":
            for note in tick.notifications:
                notifications += 1
                write(mask(f"    -> {note.notifier}: {notification_title(note.events)}"))
                for event in note.events:
                    write(mask(f"         {event_line(event)}"))
        else:
            notifications += len(tick.notifications)
    if output_format == "text":
        worst_text = worst.label if worst else "none"
        write(
            f"{transitions} transitions, {notifications} notifications would be sent; "
            f"highest severity fired: {worst_text}"
        )
    return DryRunSummary(transitions=transitions, notifications=notifications, worst_fired=worst)


def _transition(event: AlertEvent, notify: tuple[str, ...], output_format: str) -> str:
    if output_format == "json":
        return json.dumps(
            {
                "at": rfc3339(event.at),
                "event": event.event,
                "rule": event.rule,
                "severity": event.severity.label,
                "labels": event.labels.as_dict(),
                "value": event.value,
                "notify": list(notify),
                "message": event.summary,
            },
            sort_keys=False,
        )
    value = "no data" if event.value is None else format_value(event.metric, event.value)
    line = (
        f"{rfc3339(event.at)}  {event.event:<11} {event.severity.label:<8} {event.rule} "
        f"{describe_labels(event.labels)} value={value}"
    )
    if event.reason:
        line += f" ({event.reason})"
    if event.silenced:
        line += " [silenced]"
    return line
