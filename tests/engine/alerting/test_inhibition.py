"""Inhibition: Alertmanager's source/target/equal semantics, as a pure function."""

from __future__ import annotations

from memalert.engine.alerting.inhibition import inhibited
from memalert.engine.core.model import InhibitRule, Matcher


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
