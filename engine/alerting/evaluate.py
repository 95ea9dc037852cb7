"""The pure evaluator: `evaluate(rules, samples, state, now) -> (state, events)`.

Every rule runs once per evaluation over the series that stand at `now`
(`memalert.engine.alerting.staleness`); each alert instance (rule name + sample labels) moves
through its rule's state machine (`memalert.engine.alerting.transitions`). Instances whose series
is gone are evaluated with no value, so they resolve rather than linger.

Nothing here reads a clock, the environment or the network: live, dry-run and
`memalert test` call this same function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from memalert.engine.alerting.grouping import Groups
from memalert.engine.alerting.staleness import LOOKBACK_SECONDS, SeriesKey, current_series
from memalert.engine.alerting.transitions import INACTIVE, InstanceState, RuleStep, Tick
from memalert.engine.core.model import AlertEvent, Labels, RuleSet, Sample, Silence, matches_all

# `InstanceState` and `LOOKBACK_SECONDS` belong to the state machine and to the
# lookback rules; code that stores or replays evaluations finds them here too.
__all__ = [
    "LOOKBACK_SECONDS",
    "EvalState",
    "InstanceKey",
    "InstanceState",
    "evaluate",
]

InstanceKey = tuple[str, Labels]


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalState:
    instances: Mapping[InstanceKey, InstanceState] = field(default_factory=dict)
    series: Mapping[SeriesKey, Sample] = field(default_factory=dict)
    # The routes' aggregation groups (alerting.grouping): kept, restored, committed
    # with the instances, so a restart keeps the groups' timers.
    groups: Groups = field(default_factory=dict)


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
        group = by_metric.get(sample.metric)
        if group is None:
            by_metric[sample.metric] = [sample]
        else:
            group.append(sample)

    tick = _tick(rules, series, now, silences)
    steps = {rule.name: RuleStep(rule, tick) for rule in rules.rules}
    instances = dict(state.instances)
    # Counted rather than collected: when every remembered instance had a value
    # (the usual tick), the pass over the missing ones below is skipped.
    evaluated = 0
    for step in steps.values():
        # Bound once per rule: the inner loop runs for every rule x series.
        name, where, beyond, lowest, advance = (
            step.rule.name,
            step.rule.where,
            step.beyond,
            step.lowest,
            step.advance,
        )
        for sample in by_metric.get(step.rule.metric, ()):
            labels = sample.labels
            if where and not matches_all(where, labels):
                continue
            key = (name, labels)
            old = instances.get(key)
            if old is None:
                if not beyond(sample.value, lowest):
                    continue  # the common case: nothing to remember, nothing to say
                old = INACTIVE
            else:
                evaluated += 1
            new = advance(old, labels, sample.value)
            if new is None:
                instances.pop(key, None)
            elif new is not old:
                instances[key] = new

    if evaluated < len(state.instances):
        # Instances whose series is gone this tick: no value, so their condition is false.
        for key, old in state.instances.items():
            missing_step = steps.get(key[0])
            if missing_step is None:
                del instances[key]  # the rule was removed by a reload
            elif not missing_step.evaluates(key[1]):
                new = missing_step.advance(old, key[1], None)
                if new is None:
                    del instances[key]
                elif new is not old:
                    instances[key] = new
    return EvalState(instances=instances, series=series, groups=state.groups), tick.events


def _tick(
    rules: RuleSet, series: Mapping[SeriesKey, Sample], now: float, silences: Sequence[Silence]
) -> Tick:
    return Tick(
        now=now,
        repeat_interval=rules.repeat_interval,
        silences=silences_in_force(rules, silences, now),
        series=series,
    )


def silences_in_force(rules: RuleSet, silences: Sequence[Silence], now: float) -> list[Silence]:
    """The rule files' silences and the given ones (the store's) that are active at `now`."""
    return [s for s in (*rules.silences, *silences) if s.active(now)]


def renotify(
    rules: RuleSet,
    state: EvalState,
    now: float,
    *,
    rule: str,
    labels: Labels,
    reason: str,
    top_sites: tuple[tuple[str, float], ...] = (),
    silences: Sequence[Silence] = (),
) -> AlertEvent | None:
    """A re-notification (`AlertRepeated`) of the alert `labels` of `rule` firing in `state`.

    Made as the state machine makes its own repeats: the current value,
    threshold, related values and summary, at `now`. None when that alert no
    longer fires, its rule is gone, or it is silenced. `labels` are the alert's
    (the series' plus the rule's own), as an earlier event of it carries them.
    """
    found = next((r for r in rules.rules if r.name == rule), None)
    if found is None:
        return None
    step = RuleStep(found, _tick(rules, state.series, now, silences))
    for (name, series_labels), instance in state.instances.items():
        alert_labels = series_labels.merged(found.labels) if found.labels else series_labels
        if name == rule and alert_labels == labels and instance.firing is not None:
            event = step.repeat(instance, series_labels, reason=reason, top_sites=top_sites)
            return None if event.silenced else event
    return None
