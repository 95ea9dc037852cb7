"""Inhibition: Alertmanager's source/target/equal semantics, as a pure function."""

from __future__ import annotations

from builders import C, W, make_rule, sample

from memalert.engine.alerting.inhibition import inhibited
from memalert.engine.alerting.pipeline import Pipeline
from memalert.engine.alerting.views import active_alerts
from memalert.engine.core.model import InhibitRule, Matcher, RuleSet


def rule(source: dict[str, str], target: dict[str, str], *equal: str) -> InhibitRule:
    return InhibitRule(
        source=tuple(Matcher.compile(k, v) for k, v in source.items()),
        target=tuple(Matcher.compile(k, v) for k, v in target.items()),
        equal=equal,
    )


CRITICAL_MUTES_WARNING = rule({"severity": "critical"}, {"severity": "warning"}, "target")


def test_a_firing_source_mutes_targets_with_equal_labels_only() -> None:
    firing = {
        "api-critical": {"severity": "critical", "target": "api", "rule": "pressure"},
        "api-warning": {"severity": "warning", "target": "api", "rule": "leak"},
        "db-warning": {"severity": "warning", "target": "db", "rule": "leak"},
    }
    assert inhibited([CRITICAL_MUTES_WARNING], firing) == {"api-warning"}


def test_without_a_source_nothing_is_muted() -> None:
    firing = {"w": {"severity": "warning", "target": "api"}}
    assert inhibited([CRITICAL_MUTES_WARNING], firing) == frozenset()


def test_a_label_missing_on_both_sides_counts_as_equal() -> None:
    firing = {
        "c": {"severity": "critical"},
        "w": {"severity": "warning"},
        "w-api": {"severity": "warning", "target": "api"},
    }
    assert inhibited([CRITICAL_MUTES_WARNING], firing) == {"w"}


def test_no_equal_labels_mutes_every_target() -> None:
    down = rule({"rule": "target-down"}, {"rule": "leak"})
    firing = {
        "down": {"rule": "target-down", "target": "api"},
        "leak-api": {"rule": "leak", "target": "api"},
        "leak-db": {"rule": "leak", "target": "db"},
    }
    assert inhibited([down], firing) == {"leak-api", "leak-db"}


def test_an_alert_matching_both_sides_does_not_mute_itself_or_its_like() -> None:
    both = rule({"team": "core"}, {"team": "core"}, "target")
    firing = {
        "a": {"team": "core", "target": "api", "rule": "x"},
        "b": {"team": "core", "target": "api", "rule": "y"},
    }
    assert inhibited([both], firing) == frozenset()
    # A one-sided source still mutes a two-sided target.
    partly = rule({"team": "core"}, {"rule": "y"}, "target")
    assert inhibited([partly], firing) == {"b"}


def test_globs_and_negation_are_the_routes_matchers() -> None:
    glob = rule({"rule": "host-*"}, {"severity": "!critical"}, "target")
    firing = {
        "host": {"rule": "host-memory-pressure", "severity": "critical", "target": "h1"},
        "w": {"rule": "leak", "severity": "warning", "target": "h1"},
        "c": {"rule": "leak", "severity": "critical", "target": "h1"},
    }
    assert inhibited([glob], firing) == {"w"}


def test_inhibited_alerts_are_evaluated_and_shown_but_not_notified() -> None:
    ruleset = RuleSet(
        rules=(
            make_rule(name="pressure", above={C: 100}),
            make_rule(name="leak", above={W: 10}),
        ),
        inhibit_rules=(CRITICAL_MUTES_WARNING,),
    )
    pipeline = Pipeline(ruleset)
    tick = pipeline.step(0.0, [sample(150, 0.0), sample(20, 0.0, target="db")])
    # api: pressure critical fires and mutes leak's warning; db has no critical.
    notified = {(e.rule, e.labels["target"]) for n in tick.notifications for e in n.events}
    assert notified == {("pressure", "api"), ("leak", "db")}
    shown = active_alerts(ruleset, pipeline.state, 0.0)
    views = {(v.rule, v.labels["target"]): v.inhibited for v in shown}
    assert views == {
        ("pressure", "api"): False,
        ("leak", "api"): True,
        ("leak", "db"): False,
    }
    # The source resolving is notified; the target is no longer shown inhibited.
    later = pipeline.step(15.0, [sample(15, 15.0), sample(20, 15.0, target="db")])
    events = [(e.rule, e.event) for n in later.notifications for e in n.events]
    assert events == [("pressure", "resolved")]
    assert not any(v.inhibited for v in active_alerts(ruleset, pipeline.state, 15.0))
