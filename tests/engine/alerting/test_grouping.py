"""Grouping over time per route (alerting.grouping): Alertmanager's aggregation groups.

Events are made by hand and time is passed in: each test is a sequence of ticks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from memalert.engine.alerting import grouping
from memalert.engine.alerting.grouping import Groups
from memalert.engine.alerting.routing import Notification
from memalert.engine.core.model import (
    AlertEscalated,
    AlertEvent,
    AlertFired,
    AlertRepeated,
    AlertResolved,
    Grouping,
    Labels,
    Matcher,
    Route,
    RuleSet,
    Severity,
    Silence,
)
from memalert.engine.core.timeintervals import TimeWindow
from memalert.engine.rules.load import check_paths, load_rules

GROUPED = Grouping(by=("target",), wait=30.0, interval=300.0, repeat=3600.0)


def _ruleset(grouping: Grouping | None = GROUPED, **changes: object) -> RuleSet:
    route = Route(matchers=(), notify=("pager",), grouping=grouping)
    return replace(RuleSet(rules=(), routes=(route,)), **changes)  # type: ignore[arg-type]


def _event(
    kind: type[AlertEvent],
    at: float,
    host: str,
    *,
    target: str = "api",
    severity: Severity = Severity.WARNING,
    reason: str = "",
) -> AlertEvent:
    return kind(
        at=at,
        rule="leak",
        metric="rss_bytes",
        severity=severity,
        labels=Labels({"target": target, "host": host}),
        value=1.0,
        reason=reason,
    )


class Ticks:
    """Runs `grouping.step` tick after tick, keeping the groups."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.groups: Groups = {}

    def at(
        self,
        now: float,
        events: Sequence[AlertEvent] = (),
        *,
        inhibited: frozenset[tuple[str, Labels]] = frozenset(),
        silences: Sequence[Silence] = (),
    ) -> list[Notification]:
        self.groups, sent = grouping.step(
            self.ruleset, self.groups, events, now=now, inhibited=inhibited, silences=silences
        )
        return sent


def _alerts(note: Notification) -> list[tuple[str, str]]:
    return [(e.labels["host"], e.event) for e in note.events]


def test_a_new_group_waits_group_wait_and_collects_the_alerts_of_that_wait() -> None:
    ticks = Ticks(_ruleset())
    assert ticks.at(0, [_event(AlertFired, 0, "a")]) == []
    assert ticks.at(15, [_event(AlertFired, 15, "b")]) == []
    (note,) = ticks.at(30)
    assert note.notifier == "pager"
    assert note.at == 30
    assert note.group == Labels({"target": "api"})
    assert _alerts(note) == [("a", "firing"), ("b", "firing")]


def test_group_interval_gates_later_changes_and_the_notification_lists_the_whole_group() -> None:
    ticks = Ticks(_ruleset())
    ticks.at(0, [_event(AlertFired, 0, "a")])
    assert len(ticks.at(30)) == 1
    assert ticks.at(45, [_event(AlertFired, 45, "b")]) == []
    assert ticks.at(315) == []  # not due yet: 30 + 300
    (note,) = ticks.at(330)
    assert _alerts(note) == [("a", "firing"), ("b", "firing")]


def test_an_unchanged_group_is_sent_again_after_repeat_interval_at_a_flush() -> None:
    ticks = Ticks(_ruleset())
    ticks.at(0, [_event(AlertFired, 0, "a")])
    sent = [t for t in range(30, 4000, 15) if ticks.at(t)]
    # Flushes every 300 s from 30; the first at or after 30 + 3600 repeats.
    assert sent == [30, 3630]


def test_a_resolution_is_sent_at_the_next_flush_once_and_an_empty_group_is_gone() -> None:
    ticks = Ticks(_ruleset())
    ticks.at(0, [_event(AlertFired, 0, "a"), _event(AlertFired, 0, "b")])
    ticks.at(30)
    ticks.at(100, [_event(AlertResolved, 100, "a")])
    (note,) = ticks.at(330)
    assert _alerts(note) == [("b", "firing"), ("a", "resolved")]
    ticks.at(400, [_event(AlertResolved, 400, "b")])
    (last,) = ticks.at(630)
    assert _alerts(last) == [("b", "resolved")]
    assert ticks.groups == {}


def test_an_alert_that_fires_and_resolves_within_group_wait_is_never_sent() -> None:
    ticks = Ticks(_ruleset())
    ticks.at(0, [_event(AlertFired, 0, "a")])
    ticks.at(15, [_event(AlertResolved, 15, "a")])
    assert ticks.at(30) == []
    assert ticks.groups == {}


def test_a_flapping_alert_is_one_firing_alert_to_the_group() -> None:
    ticks = Ticks(_ruleset())
    ticks.at(0, [_event(AlertFired, 0, "a")])
    ticks.at(30)
    ticks.at(60, [_event(AlertResolved, 60, "a")])
    ticks.at(90, [_event(AlertFired, 90, "a")])
    assert ticks.at(330) == []  # same alert firing as was sent: nothing new


def test_a_severity_change_is_news_for_the_group() -> None:
    ticks = Ticks(_ruleset())
    ticks.at(0, [_event(AlertFired, 0, "a")])
    ticks.at(30)
    ticks.at(60, [_event(AlertEscalated, 60, "a", severity=Severity.CRITICAL)])
    (note,) = ticks.at(330)
    assert [e.severity for e in note.events] == [Severity.CRITICAL]


def test_severity_among_the_group_labels_moves_an_escalated_alert_to_its_new_group() -> None:
    ticks = Ticks(_ruleset(Grouping(by=("severity",), wait=0.0, interval=60.0)))
    ticks.at(0, [_event(AlertFired, 0, "a")])
    (note,) = ticks.at(60, [_event(AlertEscalated, 60, "a", severity=Severity.CRITICAL)])
    assert note.group == Labels({"severity": "critical"})
    assert [labels for _, labels in ticks.groups] == [Labels({"severity": "critical"})]


def test_an_alert_moved_out_by_its_severity_is_not_in_the_old_groups_repeats() -> None:
    grouped = Grouping(by=("severity",), wait=0.0, interval=60.0, repeat=120.0)
    ticks = Ticks(_ruleset(grouped))
    ticks.at(0, [_event(AlertFired, 0, "a"), _event(AlertFired, 0, "b")])
    ticks.at(60)  # flushed without news: what it found is kept for the next flush
    ticks.at(90, [_event(AlertEscalated, 90, "a", severity=Severity.CRITICAL)])
    warning = [n for n in ticks.at(120) + ticks.at(180) if n.group == Labels(severity="warning")]
    assert [_alerts(n) for n in warning] == [[("b", "firing")]]


def test_group_by_splits_groups_and_dots_group_by_every_label() -> None:
    ticks = Ticks(_ruleset(Grouping(by=("target",), wait=0.0)))
    sent = ticks.at(0, [_event(AlertFired, 0, "a"), _event(AlertFired, 0, "b", target="db")])
    assert [n.group for n in sent] == [Labels({"target": "api"}), Labels({"target": "db"})]
    every = Ticks(_ruleset(Grouping(by=("...",), wait=0.0)))
    (one, two) = every.at(0, [_event(AlertFired, 0, "a"), _event(AlertFired, 0, "b")])
    assert one.group == Labels(
        {"host": "a", "target": "api", "rule": "leak", "severity": "warning"}
    )
    assert len(two.events) == 1
    nothing = Ticks(_ruleset(Grouping(by=("no_such_label",), wait=0.0)))
    (all_in_one,) = nothing.at(0, [_event(AlertFired, 0, "a"), _event(AlertFired, 0, "b")])
    assert all_in_one.group == Labels()


def test_silenced_and_inhibited_alerts_are_left_out_and_an_empty_flush_sends_nothing() -> None:
    ticks = Ticks(_ruleset())
    ticks.at(0, [_event(AlertFired, 0, "a"), _event(AlertFired, 0, "b")])
    silence = Silence(matchers=(Matcher.compile("host", "a"),), starts=0, ends=1e9)
    (note,) = ticks.at(30, silences=[silence])
    assert _alerts(note) == [("b", "firing")]
    b = ("leak", Labels({"target": "api", "host": "b"}))
    assert ticks.at(330, silences=[silence], inhibited=frozenset({b})) == []
    # The silence over, `a` is new to the group's notification log.
    (later,) = ticks.at(630)
    assert _alerts(later) == [("a", "firing"), ("b", "firing")]


def test_a_muted_route_keeps_its_group_and_sends_what_happened_when_the_mute_ends() -> None:
    always = TimeWindow()
    ruleset = _ruleset(time_intervals={"always": (always,)})
    muted = replace(ruleset, routes=(replace(ruleset.routes[0], mute_time_intervals=("always",)),))
    ticks = Ticks(muted)
    ticks.at(0, [_event(AlertFired, 0, "a")])
    assert ticks.at(30) == []
    ticks.ruleset = ruleset  # the window is over
    assert ticks.at(300) == []  # the group's timer: 30 + 300
    (note,) = ticks.at(330)
    assert _alerts(note) == [("a", "firing")]


def test_an_explicit_re_notification_is_sent_at_the_next_flush() -> None:
    ticks = Ticks(_ruleset())
    ticks.at(0, [_event(AlertFired, 0, "a")])
    ticks.at(30)
    ticks.at(60, [_event(AlertRepeated, 60, "a")])  # a plain repeat: remembered only
    assert ticks.at(330) == []
    ticks.at(400, [_event(AlertRepeated, 400, "a", reason="top allocation sites")])
    (note,) = ticks.at(630)
    assert note.events[0].reason == "top allocation sites"


def test_routes_without_grouping_and_rules_own_notify_are_not_grouped() -> None:
    ticks = Ticks(_ruleset(None))
    assert ticks.at(0, [_event(AlertFired, 0, "a")]) == []
    assert ticks.groups == {}


def test_the_top_level_grouping_takes_alerts_no_route_matches_to_the_console() -> None:
    ruleset = RuleSet(rules=(), grouping=Grouping(wait=0.0))
    ticks = Ticks(ruleset)
    (note,) = ticks.at(0, [_event(AlertFired, 0, "a")])
    assert note.notifier == "console"


def test_a_group_whose_route_changed_at_a_reload_is_dropped() -> None:
    ticks = Ticks(_ruleset())
    ticks.at(0, [_event(AlertFired, 0, "a")])
    ticks.ruleset = _ruleset(replace(GROUPED, wait=1.0), routes=())
    assert ticks.at(15) == []
    assert ticks.groups == {}


FILE = """\
version: 1
group_wait: 10s
rules:
  - name: leak
    metric: rss_bytes
    above: {{warning: 50MiB}}
routes:
  - match: {{severity: warning}}
    notify: [console]
    {route}
  - notify: [console]
"""


def test_rule_files_set_grouping_per_route_over_the_top_level_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(FILE.format(route="group_by: [rule, no_such_label]\n    repeat_interval: 1h"))
    ruleset = load_rules([path], env={})
    assert ruleset.grouping == Grouping(wait=10.0)
    first, second = ruleset.routes
    assert first.grouping == Grouping(by=("rule", "no_such_label"), wait=10.0, repeat=3600.0)
    assert second.grouping == Grouping(wait=10.0)


def test_a_file_without_grouping_keys_keeps_routes_without_grouping(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(FILE.replace("group_wait: 10s\n", "").format(route=""))
    ruleset = load_rules([path], env={})
    assert ruleset.grouping is None
    assert [r.grouping for r in ruleset.routes] == [None, None]


def test_zero_and_negative_timers_are_refused_at_their_key(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    for route, key in (
        ("group_interval: 0s", "group_interval"),
        ("repeat_interval: 0", "repeat_interval"),
        ("group_wait: -1m", "group_wait"),
        ("group_by: ['...', rule]", "group_by"),
    ):
        path.write_text(FILE.format(route=route))
        (error,) = [str(d) for d in check_paths([path])]
        assert error.startswith(f"{path}:10:"), error
        assert f"'{key}' of route #1" in error


def test_an_alerts_new_event_is_matched_against_the_silences_again() -> None:
    ticks = Ticks(_ruleset())
    critical = Silence(matchers=(Matcher.compile("severity", "critical"),), starts=0, ends=1e9)
    ticks.at(0, [_event(AlertFired, 0, "a")], silences=[critical])
    assert len(ticks.at(30, silences=[critical])) == 1  # warning: not silenced
    ticks.at(60, [_event(AlertEscalated, 60, "a", severity=Severity.CRITICAL)], silences=[critical])
    assert ticks.at(330, silences=[critical]) == []  # critical now: silenced
