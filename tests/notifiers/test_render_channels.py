"""Per-channel rendering: the same facts in text, Markdown (Slack) and HTML (email)."""

from __future__ import annotations

from notifier_kit import T0, MiB, fired, note, resolved

from memalert.engine.core.model import AlertFired, Labels, Severity
from memalert.notifiers.render import (
    TONE_COLOURS,
    notification_record,
    ordered,
    render_html,
    render_markdown,
    render_text,
    tone,
)


def test_text_has_title_value_threshold_and_how_long_it_fires() -> None:
    message = render_text(note(fired()))
    assert message.title == "[memalert] FIRING critical: memory-leak on api"
    assert "[FIRING:critical] memory-leak {target=api} 150.0 MiB" in message.body
    assert "(threshold 100.0 MiB)" in message.body
    assert "firing for 5m" in message.body
    assert "api leaks 150 MiB" in message.body


def test_resolved_message_says_how_long_it_fired() -> None:
    message = render_text(note(resolved()))
    assert message.title == "[memalert] RESOLVED warning: memory-leak on api"
    assert "after firing 1h30m" in message.body
    assert "threshold" not in message.body
    assert "Fired for 1h30m" in render_html(note(resolved())).body


def test_leak_growth_time_to_limit_and_top_sites() -> None:
    event = AlertFired(
        at=T0,
        rule="memory-leak",
        metric="leak_bytes",
        severity=Severity.WARNING,
        labels=Labels(target="api", component="cache"),
        value=60 * MiB,
        threshold=50 * MiB,
        firing_since=T0 - 60,
        related={"leak_growth_bytes_per_hour": 30 * MiB, "time_to_limit_seconds": 9000},
        top_sites=(("cache.py:42", 12 * MiB), ("db.py:7", 3 * MiB)),
    )
    for body in (render_text(note(event)).body, render_html(note(event)).body):
        assert "30.0 MiB/h" in body
        assert "2h30m" in body
        assert "cache.py:42 +12.0 MiB" in body
        assert "db.py:7 +3.0 MiB" in body


def test_tone_is_the_worst_firing_severity_else_resolved() -> None:
    assert tone(note(fired(severity=Severity.WARNING), resolved())) == "warning"
    assert tone(note(fired(severity=Severity.WARNING), fired(target="db"))) == "critical"
    assert tone(note(resolved(), resolved(target="db"))) == "resolved"


def test_worst_first_then_resolved() -> None:
    warning, critical, done = fired(severity=Severity.WARNING), fired(target="db"), resolved()
    assert ordered((done, warning, critical)) == [critical, warning, done]


def test_markdown_is_bounded_and_keeps_label_text_as_written() -> None:
    events = [fired(target=f"svc_{i}") for i in range(50)]
    body = render_markdown(note(*events), max_events=20).body
    assert body.count("[FIRING:critical]") == 20
    assert "... and 30 more alerts" in body
    assert "**[FIRING:critical] memory-leak {target=svc_0}" in body


def test_html_escapes_user_text_and_colours_by_severity() -> None:
    event = fired(summary="<script>alert(1)</script> & more")
    message = render_html(note(event))
    assert "<script>" not in message.body
    assert "&lt;script&gt;" in message.body
    assert TONE_COLOURS["critical"] in message.body
    assert "Threshold: 100.0 MiB" in message.body
    resolved_html = render_html(note(resolved())).body
    assert TONE_COLOURS["resolved"] in resolved_html
    assert TONE_COLOURS["critical"] not in resolved_html


def test_grouped_title_counts_firing_and_resolved() -> None:
    message = render_text(note(fired(), fired(target="db", severity=Severity.WARNING), resolved()))
    assert message.title == "[memalert] 3 alerts: 2 firing (1 critical), 1 resolved"
    assert message.body.index("target=api") < message.body.index("target=db")


def test_json_record_keeps_raw_numbers_and_times() -> None:
    record = notification_record(note(fired()))
    assert record["notifier"] == "oncall"
    assert record["status"] == "critical"
    (event,) = record["events"]
    assert event["value"] == 150 * MiB
    assert event["threshold"] == 100 * MiB
    assert event["labels"] == {"target": "api"}
    assert event["firing_since"] == "2025-11-24T15:55:00Z"
    assert event["event"] == "firing"


def test_an_alert_firing_this_tick_says_how_long_its_condition_held() -> None:
    just_fired = AlertFired(
        at=T0,
        rule="memory-leak",
        metric="leak_bytes",
        severity=Severity.WARNING,
        labels=Labels(target="api"),
        value=60 * MiB,
        threshold=50 * MiB,
        active_since=T0 - 60,
        firing_since=T0,
    )
    body = render_text(note(just_fired)).body
    assert "active for 1m (since 2025-11-24T15:59:00Z)" in body
    assert "firing for" not in body
