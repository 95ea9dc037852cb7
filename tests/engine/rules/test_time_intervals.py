"""`time_intervals:` in rule files and routes muted or activated by them.

Bad windows are refused at FILE:LINE:COL naming the key; a muted route still
matches (later routes are not tried) but notifies nobody, as in Alertmanager.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memalert.engine.alerting.routing import group_notifications
from memalert.engine.cli.main import main
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


REPLAYED = """\
version: 1
repeat_interval: 3m
rules:
  - name: leak
    metric: leak_bytes
    above: {{warning: 50MiB}}
notifiers:
  hook: {{urls: ["json://127.0.0.1:9/alerts"]}}
routes:
  - notify: [hook]
    {route_timing}
silences:
  {silence}
time_intervals:
  - name: four-to-eight  # past 16:00 UTC, when the replay's alert fires
    time_intervals:
      - times: [{{start_time: "16:04", end_time: "16:08"}}]
"""
NO_SILENCE = "[]"


def _sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *, route_timing: str, silence: str
) -> list[tuple[str, str]]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(REPLAYED.format(route_timing=route_timing, silence=silence))
    observations = tmp_path / "obs.jsonl"
    # 2025-11-24T16:00:00Z on, one sample every 15 s for 10 minutes, always leaking.
    observations.write_text(
        "".join(
            json.dumps(
                {"ts": 1_764_000_000 + 15 * i, "target": "api", "metrics": {"leak_bytes": 6e7}}
            )
            + "\n"
            for i in range(41)
        )
    )
    command = ["dry-run", str(rules), "--observations", str(observations), "--format", "json"]
    assert main(command) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [(r["at"][11:16], r["event"]) for r in records if r["notify"] == ["hook"]]


def test_dry_run_leaves_out_what_a_mute_window_holds_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = _sent(
        tmp_path, capsys, route_timing="mute_time_intervals: [four-to-eight]", silence=NO_SILENCE
    )
    # Every 3 minutes, but the 16:06 repeat falls in the window.
    assert sent == [("16:00", "firing"), ("16:03", "repeated"), ("16:09", "repeated")]


def test_a_recurring_silence_holds_only_inside_its_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    silence = "- {match: {target: api}, time_intervals: [four-to-eight], comment: nightly}"
    sent = _sent(tmp_path, capsys, route_timing="", silence=silence)
    # The 16:06 repeat is silenced; the window's end re-notifies at once, as
    # the end of any silence does.
    assert sent == [("16:00", "firing"), ("16:03", "repeated"), ("16:08", "repeated")]


def test_a_silence_needs_dates_or_time_intervals(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        REPLAYED.format(route_timing="", silence="- {match: {target: api}, comment: forgotten}")
    )
    errors = [str(d) for d in check_paths([path])]
    assert errors, "a silence with neither dates nor windows must be refused"
    assert all(e.startswith(f"{path}:13:") for e in errors), errors
    assert any("'starts'" in e for e in errors), errors
