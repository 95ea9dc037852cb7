"""`memalert export alertmanager`: routes, inhibition, receivers and silences for Alertmanager."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from scale_out_kit import Processes, get, missing_binaries

from memalert.engine.cli.main import main
from memalert.engine.export.alertmanager_config import alertmanager_config, amtool_silences
from memalert.engine.rules.load import load_rules

ROOT = Path(__file__).resolve().parents[3]
RULES = """\
version: 1
repeat_interval: 2h
notifiers:
  hook: {urls: ["json://127.0.0.1:1/x"]}
  chat: {urls: ["json://127.0.0.1:2/y"]}
routes:
  - match: {target: "batch-*", severity: critical}
    notify: [hook, chat]
    continue: true
  - match: {rule: "!leak*"}
    notify: [chat]
    mute_time_intervals: [nights]
    active_time_intervals: [workdays]
time_intervals:
  - name: nights
    time_intervals:
      - times: [{start_time: "22:00", end_time: "24:00"}, {start_time: "00:00", end_time: "07:00"}]
        location: Europe/Berlin
  - name: workdays
    time_intervals:
      - weekdays: ["monday:friday"]
        days_of_month: ["1:-1", 15]
        months: ["january:march", "12"]
        years: ["2026"]
silences:
  - match: {target: "db?"}
    starts: 2026-12-01T00:00:00Z
    ends: 2026-12-02T00:00:00Z
    comment: "maintenance"
    author: ops
  - match: {target: "batch"}
    time_intervals: [nights]
inhibit_rules:
  - source_matchers: {rule: leak, severity: critical}
    target_matchers: {target: "db?"}
    equal: [rule, component]
rules:
  - name: own
    metric: rss_bytes
    above: {warning: 1MiB}
    notify: [hook, chat]
  - name: leak
    metric: leak_bytes
    above: {warning: 1MiB, critical: 2MiB}
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return path


def _config(rules: Path) -> dict[str, Any]:
    return alertmanager_config(load_rules([rules], env=None), relay_url="http://relay:9465/")


def test_routes_keep_memalerts_order_first_match_and_continue(rules: Path) -> None:
    route = _config(rules)["route"]
    assert route["receiver"] == "console"  # what matches no route, as in memalert
    assert route["repeat_interval"] == "2h"
    assert [
        (r["receiver"], r.get("matchers"), r.get("continue", False)) for r in route["routes"]
    ] == [
        # the rule's own `notify` wins: one route per notifier, the last one stops
        ("hook", ['alertname="own"'], True),
        ("chat", ['alertname="own"'], False),
        ("hook", ['target=~"^(?:batch-.*)$"', 'severity="critical"'], True),
        ("chat", ['target=~"^(?:batch-.*)$"', 'severity="critical"'], True),
        # memalert's `rule` is Alertmanager's `alertname`
        ("chat", ['alertname!~"^(?:leak.*)$"'], False),
    ]


def test_time_intervals_and_route_windows_are_exported_as_they_mean(
    rules: Path, tmp_path: Path
) -> None:
    config = _config(rules)
    muted = [r for r in config["route"]["routes"] if "mute_time_intervals" in r]
    assert [
        (r["receiver"], r["mute_time_intervals"], r["active_time_intervals"]) for r in muted
    ] == [("chat", ["nights"], ["workdays"])]
    # Read back as a rule file, the exported windows are the same windows.
    again = tmp_path / "again.yaml"
    again.write_text(
        yaml.safe_dump({"version": 1, "time_intervals": config["time_intervals"]}),
        encoding="utf-8",
    )
    original = load_rules([rules], env=None).time_intervals
    assert load_rules([again], env=None).time_intervals == original
    assert set(original) == {"nights", "workdays"}


def test_a_critical_inhibits_the_warning_of_the_same_instance(rules: Path) -> None:
    inhibit, _ = _config(rules)["inhibit_rules"]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert inhibit["equal"][0] == "alertname"
    assert {"instance", "target", "component"} <= set(inhibit["equal"])
    assert "severity" not in inhibit["equal"]


def test_one_webhook_receiver_per_notifier_points_at_the_relay(rules: Path) -> None:
    receivers = {r["name"]: r["webhook_configs"] for r in _config(rules)["receivers"]}
    assert set(receivers) == {"console", "hook", "chat"}
    assert receivers["hook"] == [
        {"url": "http://relay:9465/alertmanager/hook", "send_resolved": True}
    ]


def test_the_bearer_token_is_read_from_a_file_never_written_into_the_config(rules: Path) -> None:
    config = alertmanager_config(
        load_rules([rules], env=None), token_file="/etc/memalert/relay.token"
    )
    webhook = config["receivers"][0]["webhook_configs"][0]
    assert webhook["http_config"] == {
        "authorization": {"type": "Bearer", "credentials_file": "/etc/memalert/relay.token"}
    }


def test_silences_become_amtool_commands(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (command,) = amtool_silences(load_rules([rules], env=None), "http://am:9093")
    assert shlex.split(command) == [
        "amtool",
        "silence",
        "add",
        "--alertmanager.url=http://am:9093",
        "--start=2026-12-01T00:00:00Z",
        "--end=2026-12-02T00:00:00Z",
        "--comment=maintenance",
        "--author=ops",
        'target=~"^(?:db.)$"',
    ]
    assert main(["export", "alertmanager", str(rules), "--alertmanager-url", "http://am:9093"]) == 0
    out = capsys.readouterr().out
    assert f"#   {command}\n" in out
    # The recurring silence has no amtool command, and the header says why.
    assert out.count("amtool silence add") == 1
    assert "# Not exported: silence " in out
    assert "recurs in nights" in out
    assert yaml.safe_load(out)["route"]["receiver"] == "console"


@pytest.mark.alertmanager
@pytest.mark.parametrize(
    "extra",
    [[], *([p] for p in sorted((ROOT / "rules" / "examples").glob("*.yaml")))],
    ids=lambda e: e[0].name if e else "memory.yaml",
)
def test_amtool_accepts_the_export(
    extra: list[Path], rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("amtool") is None:
        pytest.skip("amtool is not installed (Debian package `prometheus-alertmanager`)")
    token = tmp_path / "token"
    token.write_text("secret\n", encoding="utf-8")
    out_file = tmp_path / "alertmanager.yml"
    sources = [str(ROOT / "rules" / "memory.yaml"), *map(str, extra)]
    if not extra:
        sources.append(str(rules))
    code = main(
        ["export", "alertmanager", *sources, "-o", str(out_file), "--token-file", str(token)]
    )
    capsys.readouterr()
    assert code == 0
    result = subprocess.run(
        ["amtool", "check-config", str(out_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
@pytest.mark.alertmanager
def test_the_printed_amtool_commands_make_the_silences_in_alertmanager(tmp_path: Path) -> None:
    if missing_binaries():
        pytest.skip(f"not installed: {', '.join(missing_binaries())}")
    now = datetime.now(UTC)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nsilences:\n  - match: {target: 'batch-*', rule: leak}\n"
        f"    starts: {(now - timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
        f"    ends: {(now + timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
        "    comment: nightly batch\n    author: ops\n"
        "rules:\n  - name: leak\n    metric: leak_bytes\n    above: {warning: 1MiB}\n",
        encoding="utf-8",
    )
    config = tmp_path / "alertmanager.yml"
    assert main(["export", "alertmanager", str(rules), "-o", str(config)]) == 0
    processes = Processes(tmp_path)
    try:
        _, port = processes.alertmanager(config)
        (command,) = amtool_silences(load_rules([rules], env=None), f"http://127.0.0.1:{port}")
        result = subprocess.run(
            shlex.split(command), capture_output=True, text=True, check=False, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
        (silence,) = get(f"http://127.0.0.1:{port}/api/v2/silences")
    finally:
        processes.close()
    assert silence["status"]["state"] == "active"
    assert (silence["comment"], silence["createdBy"]) == ("nightly batch", "ops")
    assert sorted((m["name"], m["value"], m["isRegex"]) for m in silence["matchers"]) == [
        ("alertname", "leak", False),
        ("target", "^(?:batch-.*)$", True),
    ]


def test_the_rule_files_inhibit_rules_follow_with_the_routes_matchers(rules: Path) -> None:
    _, own = _config(rules)["inhibit_rules"]
    assert own == {
        "source_matchers": ['alertname="leak"', 'severity="critical"'],
        "target_matchers": ['target=~"^(?:db.)$"'],
        "equal": ["alertname", "component"],
    }


GROUPED = """\
version: 1
group_wait: 20s
notifiers:
  hook: {urls: ["json://127.0.0.1:1/x"]}
routes:
  - match: {severity: critical}
    notify: [hook]
    group_by: [rule, target]
    group_interval: 2m
    repeat_interval: 1h
rules:
  - name: leak
    metric: leak_bytes
    above: {warning: 1MiB, critical: 2MiB}
"""


def test_routes_with_grouping_keep_it_and_the_top_level_sets_the_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grouped = tmp_path / "grouped.yaml"
    grouped.write_text(GROUPED, encoding="utf-8")
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        "version: 1\nroutes:\n  - {match: {target: db}, notify: [console]}\n", encoding="utf-8"
    )
    route = alertmanager_config(load_rules([grouped, plain], env=None))["route"]
    timers = ("group_by", "group_wait", "group_interval", "repeat_interval")
    assert [route[k] for k in timers] == [[], "20s", "5m", "4h"]
    first, second = route["routes"]
    assert [first[k] for k in timers] == [["alertname", "target"], "20s", "2m", "1h"]
    # A route without grouping, beside a root that groups: per instance, as in memalert.
    assert [second[k] for k in timers] == [["..."], "10s", "1m", "4h"]
    if shutil.which("amtool") is None:
        return
    out_file = tmp_path / "alertmanager.yml"
    assert main(["export", "alertmanager", str(grouped), str(plain), "-o", str(out_file)]) == 0
    capsys.readouterr()
    result = subprocess.run(
        ["amtool", "check-config", str(out_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
