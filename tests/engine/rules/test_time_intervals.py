"""`time_intervals:` in rule files and routes muted or activated by them.

Bad windows are refused at FILE:LINE:COL naming the key; a muted route still
matches (later routes are not tried) but notifies nobody, as in Alertmanager.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from memalert.engine.alerting.routing import group_notifications
from memalert.engine.core.model import AlertFired, Labels, RuleSet, Severity
from memalert.engine.rules.load import check_paths, load_rules

RULES = """\
version: 1
rules:
  - name: leak
    metric: rss_bytes
    above: {{warning: 50MiB}}
notifiers:
  pager: {{urls: ["json://127.0.0.1:9/pager"]}}
  chat: {{urls: ["json://127.0.0.1:9/chat"]}}
routes:
  - match: {{severity: warning}}
    notify: [pager]
    {route_timing}
  - match: {{severity: warning}}
    notify: [chat]
time_intervals:
  - name: nights
    time_intervals:
      - times:
          - start_time: "{start}"
            end_time: "{end}"
        weekdays: ["{weekdays}"]
        days_of_month: [{days}]
        months: ["{months}"]
        years: [{years}]
        location: {location}
"""
GOOD = {
    "route_timing": "mute_time_intervals: [nights]",
    "start": "00:00",
    "end": "06:00",
    "weekdays": "monday:friday",
    "days": "'1:-1'",
    "months": "january:december",
    "years": "'2026:2030'",
    "location": "Europe/Berlin",
}
# Line of each field above, for the positions of the errors.
LINES = {
    "route_timing": 12,
    "start": 19,
    "end": 20,
    "weekdays": 21,
    "days": 22,
    "months": 23,
    "years": 24,
    "location": 25,
}


def _write(tmp_path: Path, **fields: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.format(**{**GOOD, **fields}))
    return path


def test_the_example_checks(tmp_path: Path) -> None:
    assert check_paths([_write(tmp_path)]) == []


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("start", "25:00", "not a time of day"),
        ("end", "24:01", "not a time of day"),
        ("end", "9am", "not a time of day"),
        ("end", "00:00", "ends before it starts"),
        ("weekdays", "saturday:monday", "backwards"),
        ("weekdays", "funday", "not one of monday"),
        ("weekdays", "monday:tuesday:friday", "not a range"),
        ("days", "0", "not a day of the month"),
        ("days", "32", "not a day of the month"),
        ("days", "'-1:1'", "backwards"),
        ("days", "'5:2'", "backwards"),
        ("months", "13", "not one of january"),
        ("months", "december:january", "backwards"),
        ("years", "0", "not a year"),
        ("years", "'2030:2026'", "backwards"),
        ("location", "Mars/Olympus_Mons", "unknown time zone"),
        ("location", "'../../etc/passwd'", "unknown time zone"),
        ("route_timing", "mute_time_intervals: [nigths]", "unknown time interval 'nigths'"),
        ("route_timing", "active_time_intervals: [days]", "unknown time interval 'days'"),
    ],
)
def test_a_bad_window_is_refused_at_its_key(
    tmp_path: Path, field: str, value: str, says: str
) -> None:
    path = _write(tmp_path, **{field: value})
    errors = [str(d) for d in check_paths([path])]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}:{LINES[field]}:"), errors
    assert says in errors[0]


def _fired(at: float) -> AlertFired:
    return AlertFired(
        at=at,
        rule="leak",
        metric="rss_bytes",
        severity=Severity.WARNING,
        labels=Labels({"target": "api"}),
        value=60 * 2**20,
        threshold=50 * 2**20,
    )


def _notified(ruleset: RuleSet, moment: str) -> list[str]:
    at = datetime.fromisoformat(moment).replace(tzinfo=UTC).timestamp()
    return [n.notifier for n in group_notifications(ruleset, [_fired(at)])]


def test_a_muted_route_notifies_nobody_in_its_window_and_stops_the_search(tmp_path: Path) -> None:
    ruleset = load_rules([_write(tmp_path)], env={})
    # 02:00 in Berlin on a Wednesday (01:00 UTC in winter): muted, and the route
    # matched, so neither the next route nor the console fallback gets it.
    assert _notified(ruleset, "2026-12-02T01:00") == []
    assert _notified(ruleset, "2026-12-02T12:00") == ["pager"]
    # A Saturday night is outside the window's weekdays.
    assert _notified(ruleset, "2026-12-05T01:00") == ["pager"]


def test_a_muted_route_that_continues_lets_later_routes_notify(tmp_path: Path) -> None:
    timing = "mute_time_intervals: [nights]\n    continue: true"
    ruleset = load_rules([_write(tmp_path, route_timing=timing)], env={})
    assert _notified(ruleset, "2026-12-02T01:00") == ["chat"]
    assert _notified(ruleset, "2026-12-02T12:00") == ["pager", "chat"]


def test_an_active_route_notifies_only_inside_its_window(tmp_path: Path) -> None:
    ruleset = load_rules([_write(tmp_path, route_timing="active_time_intervals: [nights]")], env={})
    assert _notified(ruleset, "2026-12-02T01:00") == ["pager"]
    assert _notified(ruleset, "2026-12-02T12:00") == []


def test_intervals_declared_in_another_file_can_be_named(tmp_path: Path) -> None:
    text = RULES.format(**GOOD)
    routes, intervals = text.split("\ntime_intervals:\n", 1)
    (tmp_path / "a.yaml").write_text(routes + "\n")
    (tmp_path / "b.yaml").write_text("version: 1\ntime_intervals:\n" + intervals)
    assert check_paths([tmp_path]) == []
    assert set(load_rules([tmp_path], env={}).time_intervals) == {"nights"}
