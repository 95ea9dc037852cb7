"""`memalert export prometheus`: the rules Prometheus evaluates over the agents' metrics."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from memalert.engine.cli.main import main
from memalert.engine.core.model import Matcher, Severity
from memalert.engine.export.go_template import Context, translate
from memalert.engine.export.prometheus_rules import (
    glob_regex,
    label_matcher,
    level_expression,
    prometheus_duration,
    prometheus_rules,
)
from memalert.engine.rules.load import load_rules

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = [ROOT / "rules" / "memory.yaml", *sorted((ROOT / "rules" / "examples").glob("*.yaml"))]
CONTEXT = Context(
    rule_labels={"team": "core"}, metric="leak_bytes", severity="warning", threshold=52428800.0
)


def export(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["export", "prometheus", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nrules:\n" + text, encoding="utf-8")
    return path


# -- expressions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "regex"),
    [
        ("api", None),
        ("batch-*", "^(?:batch-.*)$"),
        ("a.b?", r"^(?:a\.b.)$"),
        ("[!x]y", "^(?:[^x]y)$"),
        ("x(1)*", r"^(?:x\(1\).*)$"),
    ],
)
def test_globs_become_anchored_regular_expressions(glob: str, regex: str | None) -> None:
    assert glob_regex(glob) == regex


def test_where_becomes_label_matchers() -> None:
    assert label_matcher(Matcher.compile("target", "api")) == 'target="api"'
    assert label_matcher(Matcher.compile("target", "!api")) == 'target!="api"'
    assert label_matcher(Matcher.compile("target", "batch-*")) == 'target=~"^(?:batch-.*)$"'
    assert label_matcher(Matcher.compile("target", "!batch-*")) == 'target!~"^(?:batch-.*)$"'


def test_recover_keeps_a_firing_level_through_its_own_alerts_series() -> None:
    ruleset = load_rules([ROOT / "rules" / "memory.yaml"], env=None)
    rule = next(r for r in ruleset.rules if r.name == "memory-pressure")
    assert level_expression(rule, Severity.WARNING) == (
        "memalert_pressure > 0.5\nor\n(memalert_pressure > 0.45 and"
        ' ignoring(alertname, alertstate, severity) ALERTS{alertname="memory-pressure",'
        ' severity="warning", alertstate="firing"})'
    )


def test_durations_in_prometheus_syntax() -> None:
    assert [prometheus_duration(s) for s in (15, 60, 90, 7200, 1.5, 86400)] == [
        "15s",
        "1m",
        "90s",
        "2h",
        "1500ms",
        "1d",
    ]


def test_each_level_is_an_alert_with_its_severity_for_and_keep_firing_for(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        "  - name: big\n    metric: rss_bytes\n    above: {warning: 1MiB, critical: 2MiB}\n"
        "    for: 30s\n    keep_firing_for: 2m\n    labels: {team: core}\n"
        "    where: {target: 'api-*'}\n",
    )
    export_ = prometheus_rules(load_rules([path], env=None))
    (group,) = export_.document["groups"]
    assert group["interval"] == "15s"
    warning, critical = group["rules"]
    assert warning["alert"] == critical["alert"] == "big"
    assert warning["expr"] == 'memalert_rss_bytes{target=~"^(?:api-.*)$"} > 1048576'
    assert (warning["for"], warning["keep_firing_for"]) == ("30s", "2m")
    assert warning["labels"] == {"team": "core", "severity": "warning"}
    assert critical["labels"]["severity"] == "critical"
    assert critical["annotations"]["threshold"] == "2097152"
    assert export_.losses == []


# -- summaries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (
            "{{ target }} at {{ value | bytes }}",
            "{{ $labels.target }} at {{ $value | humanize1024 }}B",
        ),
        ("{{ value | percent }}", "{{ $value | humanizePercentage }}"),
        ("in {{ value | duration }}", "in {{ $value | humanizeDuration }}"),
        ("above {{ threshold | bytes }} ({{ severity }})", "above 50.0 MiB (warning)"),
        (
            "{{ rule }}/{{ team }}/{{ labels.pod }}",
            "{{ $labels.alertname }}/{{ $labels.team }}/{{ $labels.pod }}",
        ),
        (
            "{% if component is defined and component %}({{ component }}){% endif %}",
            "{{ if $labels.component }}({{ $labels.component }}){{ end }}",
        ),
        (
            "{% if value > 1 %}big{% else %}small{% endif %}",
            "{{ if gt ($value) 1.0 }}big{{ else }}small{{ end }}",
        ),
        ("{{ value | number(1) ~ '%' }}", '{{ print ($value | printf "%.1f") "%" }}'),
        ("literal {{ '{{' }}", 'literal {{ "{{" }}'),
    ],
)
def test_summaries_translate_to_prometheus_templates(summary: str, expected: str) -> None:
    translation = translate(summary, CONTEXT)
    assert (translation.text, translation.losses) == (expected, [])


@pytest.mark.parametrize("variable", ["growth", "firing_for", "state", "time_to_limit"])
def test_what_prometheus_cannot_render_is_left_out_and_named(variable: str) -> None:
    translation = translate(f"a {{{{ {variable} }}}} b", CONTEXT)
    assert translation.text == "a  b"
    assert len(translation.losses) == 1
    assert variable in translation.losses[0]


def test_a_loss_is_a_warning_at_file_line_col_and_the_rest_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_rules(
        tmp_path,
        "  - name: leak\n    metric: leak_bytes\n    above: {warning: 1MiB}\n"
        "    summary: '{{ target }} grows {{ growth | bytes }}/h'\n",
    )
    out_file = tmp_path / "out.yml"
    code, _, err = export(capsys, str(path), "-o", str(out_file))
    assert code == 0
    assert f"{path}:6:14: warning: rule 'leak' summary: `growth` is left out" in err
    assert "Traceback" not in err
    (alert,) = yaml.safe_load(out_file.read_text())["groups"][0]["rules"]
    assert alert["annotations"]["summary"] == "{{ $labels.target }} grows /h"

    code, _, err = export(capsys, str(path), "-o", str(out_file), "--strict")
    assert code == 1
    assert "warning: rule 'leak'" in err
    assert out_file.exists()


def test_a_rule_file_that_exports_exactly_exits_0_even_when_strict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = export(capsys, str(ROOT / "rules" / "memory.yaml"), "--strict")
    assert code == 1  # memory-leak's summary shows the leak's growth
    code, out, err = export(capsys, *(str(p) for p in SHIPPED[1:]), "--strict")
    assert (code, err) == (0, "")
    assert yaml.safe_load(out)["groups"]


def test_invalid_rule_files_are_refused_with_their_diagnostics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_rules(tmp_path, "  - name: x\n    metric: nope\n    above: {warning: 1}\n")
    code, out, err = export(capsys, str(path))
    assert code == 1  # an invalid rule file, as for every command
    assert out == ""
    assert f"{path}:4:13: unknown metric 'nope'" in err


# -- against Prometheus -------------------------------------------------------------------


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`); CI runs this test")
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, check=False, timeout=120
    )


@pytest.mark.promtool
@pytest.mark.parametrize("rules", SHIPPED, ids=lambda p: p.name)
def test_promtool_accepts_the_export_of_every_shipped_rule_file(
    rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "rules.yml"
    code, _, _ = export(
        capsys, str(ROOT / "rules" / "memory.yaml"), str(rules), "-o", str(out_file)
    )
    assert code == 0
    result = _promtool("check", "rules", str(out_file))
    assert result.returncode == 0, result.stdout + result.stderr


def _promtool_test(
    tmp_path: Path, rules: Path, tests: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    out_file = tmp_path / "exported.yml"
    assert main(["export", "prometheus", str(rules), "-o", str(out_file)]) == 0
    test_file = tmp_path / "test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": ["exported.yml"], "evaluation_interval": "15s", "tests": tests}
        ),
        encoding="utf-8",
    )
    return _promtool("test", "rules", str(test_file))


@pytest.mark.promtool
def test_prometheus_holds_a_level_until_the_value_falls_below_recover(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """rules/memory.yaml's memory-pressure: warning above 0.5, held down to 0.45, keep 1m."""
    firing = [
        {
            "exp_labels": {"severity": "warning", "target": "host"},
            "exp_annotations": {
                "summary": "host uses 55% of its memory limit (warning above 50.0%)",
                "value": "0.55",
                "threshold": "0.5",
            },
        }
    ]
    held = [
        {
            "exp_labels": {"severity": "warning", "target": "host"},
            "exp_annotations": {
                "summary": "host uses 47% of its memory limit (warning above 50.0%)",
                "value": "0.47",
                "threshold": "0.5",
            },
        }
    ]
    checks = [
        {"eval_time": "2m", "alertname": "memory-pressure", "exp_alerts": firing},
        # 0.47 is below 0.5 but above recover 0.45: still firing (annotations of the last match).
        {"eval_time": "4m", "alertname": "memory-pressure", "exp_alerts": held},
        # Without `recover`, 0.47 (from 3m15s) would have resolved it at 4m15s (keep 1m).
        {"eval_time": "5m15s", "alertname": "memory-pressure", "exp_alerts": held},
        # 0.40 (below recover) from 5m30s, kept for 1m: still firing at 6m15s, resolved at 6m30s.
        {"eval_time": "6m15s", "alertname": "memory-pressure", "exp_alerts": held},
        {"eval_time": "6m30s", "alertname": "memory-pressure", "exp_alerts": []},
    ]
    result = _promtool_test(
        tmp_path,
        ROOT / "rules" / "memory.yaml",
        [
            {
                "interval": "15s",
                "input_series": [
                    {
                        "series": 'memalert_pressure{target="host"}',
                        "values": "0.3x3 0.55x8 0.47x8 0.40x8",
                    }
                ],
                "alert_rule_test": checks,
            }
        ],
    )
    capsys.readouterr()
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_the_related_values_a_summary_reads_are_annotations_for_the_relay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """rules/memory.yaml's leak summary shows the growth: Prometheus queries it per target."""
    firing = {
        "exp_labels": {"severity": "warning", "target": "api"},
        "exp_annotations": {
            "summary": "api leaks 60MiB (warning above 50.0 MiB)",
            "value": "6.291456e+07",  # Go's %v of 62914560
            "threshold": "52428800",
            "growth": "1000",
        },
    }
    result = _promtool_test(
        tmp_path,
        ROOT / "rules" / "memory.yaml",
        [
            {
                "interval": "15s",
                "input_series": [
                    {"series": 'memalert_leak_bytes{target="api"}', "values": "62914560x10"},
                    {
                        "series": 'memalert_leak_growth_bytes_per_hour{target="api"}',
                        "values": "1000x10",
                    },
                    # another target's growth is not this alert's
                    {
                        "series": 'memalert_leak_growth_bytes_per_hour{target="db"}',
                        "values": "5x10",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "2m", "alertname": "memory-leak", "exp_alerts": [firing]}
                ],
            }
        ],
    )
    capsys.readouterr()
    assert result.returncode == 0, result.stdout + result.stderr


PER_LEVEL_FOR = (
    "  - name: high-rss\n    metric: rss_bytes\n    above: {warning: 100MiB, critical: 200MiB}\n"
    "    for: {warning: 1m, critical: 15s}\n"
)


def test_for_per_level_is_each_alerts_own_for(tmp_path: Path) -> None:
    warning, critical = prometheus_rules(
        load_rules([write_rules(tmp_path, PER_LEVEL_FOR)], env=None)
    ).document["groups"][0]["rules"]
    assert (warning["for"], critical["for"]) == ("1m", "15s")
    only_critical = PER_LEVEL_FOR.replace("warning: 1m, ", "")
    warning, critical = prometheus_rules(
        load_rules([write_rules(tmp_path, only_critical)], env=None)
    ).document["groups"][0]["rules"]
    assert "for" not in warning  # a level left out of the mapping has no `for`
    assert critical["for"] == "15s"


@pytest.mark.promtool
def test_prometheus_fires_per_level_for_as_memalert_does(tmp_path: Path) -> None:
    """The series of tests/engine/replay/test_ruletest.py's per-level `for` case.

    Critical (15s) fires first and resolves at 45s; warning, pending since 0s,
    fires at 1m on its own `for`: the same times memalert's test asserts.
    """
    rules = write_rules(tmp_path, PER_LEVEL_FOR)
    out_file = tmp_path / "exported.yml"
    assert main(["export", "prometheus", str(rules), "-o", str(out_file)]) == 0
    exported = yaml.safe_load(out_file.read_text(encoding="utf-8"))
    for alert in exported["groups"][0]["rules"]:
        del alert["annotations"]  # promtool compares them exactly; the timing is under test
    out_file.write_text(yaml.safe_dump(exported), encoding="utf-8")

    def firing(*levels: str) -> list[dict[str, Any]]:
        return [{"exp_labels": {"severity": level, "target": "api"}} for level in levels]

    checks = [
        {"eval_time": "0s", "alertname": "high-rss", "exp_alerts": []},
        {"eval_time": "15s", "alertname": "high-rss", "exp_alerts": firing("critical")},
        {"eval_time": "30s", "alertname": "high-rss", "exp_alerts": firing("critical")},
        {"eval_time": "45s", "alertname": "high-rss", "exp_alerts": []},
        {"eval_time": "1m", "alertname": "high-rss", "exp_alerts": firing("warning")},
    ]
    test_file = tmp_path / "test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": ["exported.yml"],
                "evaluation_interval": "15s",
                "tests": [
                    {
                        "interval": "15s",
                        "input_series": [
                            {
                                "series": 'memalert_rss_bytes{target="api"}',
                                "values": f"{250 * 2**20}x2 {150 * 2**20}x6",
                            }
                        ],
                        "alert_rule_test": checks,
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
