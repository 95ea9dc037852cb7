"""`memalert dry-run`: replay recorded observations through the rules, send nothing.

Evaluation runs on the rule set's `interval` grid starting at the first
observation, each tick seeing the samples recorded since the previous one:
the same cadence, detector and evaluator as `memalert run`. What would be sent
is the tick's `notifications`, grouped by the same routing code whose output
the live engine enqueues (`memalert.engine.alerting.pipeline`): every one of
them is printed at its own time, repeats and the re-notification of an alert
that fired during a silence included.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from memalert.engine.alerting.messages import describe_labels, event_line, notification_title
from memalert.engine.alerting.pipeline import Pipeline, TickResult
from memalert.engine.alerting.routing import Notification
from memalert.engine.core.model import (
    AlertEvent,
    AlertRepeated,
    AlertResolved,
    Labels,
    RuleSet,
    Sample,
    Severity,
)
from memalert.engine.core.secrets import mask
from memalert.engine.core.units import format_duration, rfc3339
from memalert.engine.replay.budget import (
    MAX_EVALUATIONS,
    EvaluationBudgetError,
    describe_count,
    grid_points,
)
from memalert.engine.rules.values import format_value
from memalert.engine.trend.reasons import describe


def replay(
    ruleset: RuleSet,
    samples: Sequence[Sample],
    *,
    max_evaluations: float = MAX_EVALUATIONS,
    source: str = "the observations",
    pipeline: Pipeline | None = None,
) -> Iterator[TickResult]:
    """One TickResult per evaluation from the first to the last observation.

    Raises EvaluationBudgetError, before evaluating anything, when that takes
    more than `max_evaluations` evaluations; `source` names the input in it.
    `pipeline`: the one to step (its detector is read afterwards), else a new one.
    """
    ordered = sorted(samples, key=lambda s: s.ts)
    if ordered:
        span = ordered[-1].ts - ordered[0].ts
        needed = grid_points(span, ruleset.interval, through_end=True)
        if needed > max_evaluations:
            raise EvaluationBudgetError(
                f"{source}: the observations span {format_duration(span)}, "
                f"{describe_count(needed)} evaluations every {format_duration(ruleset.interval)} "
                f"(the rules' interval), more than the limit of {describe_count(max_evaluations)}; "
                "replay a shorter stretch, or raise the limit with --max-evaluations"
            )
    return _ticks(pipeline or Pipeline(ruleset), ruleset.interval, ordered)


def _ticks(pipeline: Pipeline, interval: float, ordered: list[Sample]) -> Iterator[TickResult]:
    if not ordered:
        return
    first, last = ordered[0].ts, ordered[-1].ts
    index = 0
    tick = 0
    while True:
        # Multiplied, not summed: adding e.g. 0.1 s thousands of times drifts off the grid.
        now = first + tick * interval
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
    ruleset: RuleSet,
    samples: Sequence[Sample],
    *,
    output_format: str,
    write: Callable[[str], None],
    max_evaluations: float = MAX_EVALUATIONS,
    source: str = "the observations",
) -> DryRunSummary:
    """Replay and print; returns counts so the CLI can pick its exit code.

    Every event is printed (JSON: one object each, `notify` naming the
    notifiers it is sent to at once); text output follows each tick's events with the
    messages it sends, each line stamped with its time. A group's notification
    (a route with grouping over time) is one JSON object of its own, with its alerts.
    """
    transitions = notifications = 0
    worst: Severity | None = None
    pipeline = Pipeline(ruleset)
    ticks = replay(
        ruleset, samples, max_evaluations=max_evaluations, source=source, pipeline=pipeline
    )
    for tick in ticks:
        recipients = _recipients(tick)
        for event in tick.events:
            if not isinstance(event, AlertRepeated):
                transitions += 1
            if event.event in {"firing", "escalated"}:
                worst = event.severity if worst is None else max(worst, event.severity)
            notify = recipients.get(id(event), ())
            write(mask(_event(event, notify, output_format)))
        notifications += len(tick.notifications)
        for note in tick.notifications:
            if output_format == "text":
                write(mask(_notification_text(note)))
            elif note.group is not None:
                write(mask(_group_json(note, note.group)))
    if output_format == "text":
        # What the trend detector thinks of each target at the end, and why a
        # growing target is not (yet) a leak (only when a rule reads the detector).
        results = {} if pipeline.detector is None else pipeline.detector.results()
        for target, result in sorted(results.items()):
            write(mask(f"detector: {target}: {describe(result)}"))
        worst_text = worst.label if worst else "none"
        write(
            f"{transitions} transitions, {notifications} notifications would be sent; "
            f"highest severity fired: {worst_text}"
        )
    return DryRunSummary(transitions=transitions, notifications=notifications, worst_fired=worst)


def _notification_text(note: Notification) -> str:
    group = "" if note.group is None else f" {describe_labels(note.group)}"
    lines = [f"{rfc3339(note.at)}  -> {note.notifier}{group}: {notification_title(note.events)}"]
    lines.extend(f"         {event_line(event)}" for event in note.events)
    return "\n".join(lines)


def _group_json(note: Notification, group: Labels) -> str:
    """A group's notification: its alerts may come from earlier ticks (alerting.grouping)."""
    return json.dumps(
        {
            "at": rfc3339(note.at),
            "notification": note.notifier,
            "group": group.as_dict(),
            "alerts": [
                {
                    "rule": e.rule,
                    "severity": e.severity.label,
                    "labels": e.labels.as_dict(),
                    "state": "resolved" if isinstance(e, AlertResolved) else "firing",
                    "event": e.event,
                    "event_at": rfc3339(e.at),
                    "message": e.summary,
                }
                for e in note.events
            ],
        }
    )


def _recipients(tick: TickResult) -> dict[int, tuple[str, ...]]:
    """Which notifiers each event of the tick goes to at once, read off the tick's notifications.

    A group's notifications are printed on their own (`_group_json`), not here.
    """
    found: dict[int, list[str]] = {}
    for note in tick.notifications:
        if note.group is not None:
            continue
        for event in note.events:
            found.setdefault(id(event), []).append(note.notifier)
    return {key: tuple(names) for key, names in found.items()}


def _event(event: AlertEvent, notify: tuple[str, ...], output_format: str) -> str:
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
                "reason": event.reason,
                "silenced": event.silenced,
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
