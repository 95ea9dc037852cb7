"""Which firing alerts are inhibited at one tick, by the rule files' `inhibit_rules` (pure).

Alertmanager's semantics: a target alert is inhibited while a firing source
alert matches the rule's source matchers, the target matches its target
matchers, and both have the same value for every `equal` label (a label
missing on both counts as equal). An alert matching both sides is not muted by
itself, nor by another alert that also matches both sides: Alertmanager leaves
out such two-sided sources for a target that matches the source side too, so
two critical alerts of one host never mute each other.

Alerts are matched on their labels plus `severity` and `rule`, as routes and
silences are.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

from memalert.engine.alerting.evaluate import EvalState
from memalert.engine.alerting.routing import AlertKey
from memalert.engine.core.model import InhibitRule, RuleSet, matches_all

Key = TypeVar("Key", bound=Hashable)


def inhibited_alerts(ruleset: RuleSet, state: EvalState) -> frozenset[AlertKey]:
    """The firing alerts of `state` that the ruleset's inhibit rules mute now."""
    if not ruleset.inhibit_rules:
        return frozenset()
    by_name = {rule.name: rule for rule in ruleset.rules}
    firing: dict[AlertKey, dict[str, str]] = {}
    for (name, labels), instance in state.instances.items():
        rule = by_name.get(name)
        if rule is None or instance.firing is None:
            continue
        alert_labels = labels.merged(rule.labels) if rule.labels else labels
        firing[(name, alert_labels)] = {
            **alert_labels,
            "severity": instance.firing.label,
            "rule": name,
        }
    return inhibited(ruleset.inhibit_rules, firing)


def inhibited(
    rules: Iterable[InhibitRule], firing: Mapping[Key, Mapping[str, str]]
) -> frozenset[Key]:
    """The keys of `firing` (alert -> matchable labels) that some firing source inhibits."""
    muted: set[Key] = set()
    for rule in rules:
        sources = [
            (key, labels) for key, labels in firing.items() if matches_all(rule.source, labels)
        ]
        if not sources:
            continue
        # Per `equal` values, the sources there: does one that is not two-sided exist?
        by_equal: dict[tuple[str, ...], bool] = {}
        for _, labels in sources:
            values = tuple(labels.get(name, "") for name in rule.equal)
            one_sided = not matches_all(rule.target, labels)
            by_equal[values] = by_equal.get(values, False) or one_sided
        for key, labels in firing.items():
            if key in muted or not matches_all(rule.target, labels):
                continue
            found = by_equal.get(tuple(labels.get(name, "") for name in rule.equal))
            # A target that matches the source side too is muted by one-sided sources only.
            if found is not None and (found or not matches_all(rule.source, labels)):
                muted.add(key)
    return frozenset(muted)
