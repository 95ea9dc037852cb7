"""Small builders for compiled rules and samples, so tests state only what matters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from memalert.engine.alerting.evaluate import EvalState, evaluate
from memalert.engine.core.model import (
    AlertEvent,
    Labels,
    Matcher,
    Rule,
    RuleSet,
    Sample,
    Severity,
    Silence,
)

W = Severity.WARNING
C = Severity.CRITICAL


def make_rule(
    *,
    name: str = "r",
    metric: str = "rss_bytes",
    above: Mapping[Severity, float] | None = None,
    below: Mapping[Severity, float] | None = None,
    recover: Mapping[Severity, float] | None = None,
    for_s: float = 0.0,
    for_levels: Mapping[Severity, float] | None = None,
    keep_s: float = 0.0,
    where: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    summary: str | None = None,
    notify: tuple[str, ...] | None = None,
) -> Rule:
    direction = "below" if below is not None else "above"
    thresholds = below if below is not None else (above or {W: 10.0, C: 20.0})
    return Rule(
        name=name,
        metric=metric,
        direction=direction,
        thresholds=dict(thresholds),
        recover=dict(recover or {}),
        where=tuple(Matcher.compile(k, v) for k, v in (where or {}).items()),
        for_seconds=for_s,
        for_levels=dict(for_levels or {}),
        keep_firing_for_seconds=keep_s,
        labels=dict(labels or {}),
        summary=summary,
        notify=notify,
    )


def sample(value: float, ts: float, *, metric: str = "rss_bytes", **labels: str) -> Sample:
    return Sample(metric, Labels({"target": "api", **labels}), value, ts)


def run_series(
    rule: Rule,
    values: Sequence[float | None],
    *,
    step: float = 15.0,
    repeat_interval: float = 1e9,
    silences: Sequence[Silence] = (),
) -> list[tuple[float, str, str]]:
    """Feed one series tick by tick; return (time, event, severity) for every event."""
    ruleset = RuleSet(rules=(rule,), repeat_interval=repeat_interval)
    state = EvalState()
    seen: list[AlertEvent] = []
    for tick, value in enumerate(values):
        now = tick * step
        samples = [] if value is None else [sample(value, now, metric=rule.metric)]
        state, events = evaluate(ruleset, samples, state, now, silences=silences)
        seen.extend(events)
    return [(e.at, e.event, e.severity.label) for e in seen]
