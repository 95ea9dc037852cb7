"""What people read: summaries deferred to their first read, and the lines built from them."""

from __future__ import annotations

import dataclasses

import pytest
from builders import W, make_rule, sample

from memalert.engine.alerting.evaluate import EvalState, evaluate
from memalert.engine.alerting.messages import event_line, render_summary, summary_renderer
from memalert.engine.core.model import (
    AlertEvent,
    AlertFired,
    AlertResolved,
    Labels,
    RuleSet,
    Sample,
    defer_summary,
)

RULE = make_rule(above={W: 100}, labels={"team": "core"}, summary="{{ target }} at {{ value }}")


def fired(**changes: object) -> AlertEvent:
    event = AlertFired(
        at=60.0,
        rule="r",
        metric="rss_bytes",
        severity=W,
        labels=Labels(target="api", team="core"),
        value=150.0,
        threshold=100.0,
        firing_since=60.0,
    )
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


def test_a_deferred_summary_is_rendered_once_when_first_read() -> None:
    event = fired()
    reads: list[AlertEvent] = []

    def render(seen: AlertEvent) -> str:
        reads.append(seen)
        return f"rendered for {seen.labels['target']}"

    defer_summary(event, render)
    assert reads == []
    assert event.summary == "rendered for api"
    assert event.summary == "rendered for api"
    assert reads == [event]


def test_a_deferred_summary_is_part_of_the_value() -> None:
    event = fired()
    defer_summary(event, summary_renderer(RULE))
    assert event == fired(summary="api at 150.0")
    assert "summary='api at 150.0'" in repr(event)
    # A copy keeps the text of the moment it was made for, as an eager render did.
    assert dataclasses.replace(event, value=1.0).summary == "api at 150.0"
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.summary = "changed"  # type: ignore[misc]


def test_the_renderer_gives_what_an_eager_render_gave() -> None:
    event = AlertResolved(
        at=120.0,
        rule="r",
        metric="rss_bytes",
        severity=W,
        labels=Labels(target="api", team="core"),
        value=None,
        threshold=100.0,
        related={"limit_bytes": 2048.0},
        firing_since=30.0,
    )
    rule = dataclasses.replace(
        RULE, summary="{{ state }} {{ value }} {{ limit }} {{ firing_for }} {{ labels.team }}"
    )
    eager = render_summary(
        rule,
        severity=W,
        state="resolved",
        labels=event.labels,
        value=None,
        threshold=100.0,
        related={"limit_bytes": 2048.0},
        firing_for=90.0,
    )
    assert summary_renderer(rule)(event) == eager == "resolved None 2048.0 90.0 core"


def test_event_lines_read_the_deferred_summary() -> None:
    event = fired()
    defer_summary(event, summary_renderer(RULE))
    assert event_line(event) == (
        "[FIRING:warning] r {target=api, team=core} 150 B (threshold 100 B): api at 150.0"
    )


def test_a_discovered_targets_pid_user_and_cmdline_reach_the_summary() -> None:
    rule = make_rule(
        above={W: 10.0}, summary="{{ target }} pid {{ pid }} of {{ user }}: {{ cmdline }}"
    )
    info = Labels(target="api", pid="4242", user="www", cmdline="python3 api.py --port 80")
    old = Sample("target_info", info.merged({"pid": "1"}), 1.0, 0.0)
    samples = [sample(50.0, 15.0), Sample("target_info", info, 1.0, 15.0), old]
    _, events = evaluate(RuleSet(rules=(rule,)), samples, EvalState(), 15.0)
    assert [e.summary for e in events] == ["api pid 4242 of www: python3 api.py --port 80"]
    assert events[0].labels == Labels(target="api")  # the pid is no part of the identity
