"""The four files of a scenario, and running `promtool test rules` / `memalert test`.

A scenario renders as

- a Prometheus rule file with one alerting rule per level (`r_warning`,
  `r_critical`) and a promtool test file, and
- a memalert rule file with the single two-level rule `r` and a memalert test
  file,

both test files carrying the same expectations, checked at every evaluation
time: memalert firing at severity S for an instance means Prometheus fires
every level <= S of that instance and none above.

`python tests/promtool_files.py SEED DIR` writes one random scenario's files
for a human to replay with both tools.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from promtool_scenarios import (
    EVALUATION_INTERVAL,
    LEVELS,
    MEMALERT_RULE,
    MEMALERT_SUMMARY,
    Expectations,
    Scenario,
    Series,
    memalert_firing,
    memalert_series,
    random_scenario,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_SUMMARY = "{{ $labels.target }} at {{ $value | humanize1024 }}"


# -- rendering ---------------------------------------------------------------------------


def duration(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds and seconds % 60 == 0 else f"{seconds}s"


def humanize1024(value: float) -> str:
    """Prometheus's `humanize1024` template function (Go's `%.4g` equals Python's)."""
    if abs(value) <= 1 or math.isnan(value) or math.isinf(value):
        return f"{value:.4g}"
    prefix = ""
    for candidate in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(value) < 1024:
            break
        prefix = candidate
        value /= 1024
    return f"{value:.4g}{prefix}"


def _selector(series: Series) -> str:
    labels = {**series.labels, "target": series.target}
    inner = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return f"{series.metric}{{{inner}}}"


def _threshold_bytes(scenario: Scenario, level: str) -> str:
    return repr(int(scenario.levels[level] * scenario.factor))


def prometheus_rules(scenario: Scenario) -> dict[str, Any]:
    rules = []
    for level in LEVELS:
        if level not in scenario.levels:
            continue
        rule: dict[str, Any] = {
            "alert": f"{MEMALERT_RULE}_{level}",
            "expr": f"rss_bytes > {_threshold_bytes(scenario, level)}",
            "for": duration(scenario.for_s),
            "keep_firing_for": duration(scenario.keep_s),
            "labels": {**scenario.rule_labels, "severity": level},
        }
        if scenario.summaries:
            rule["annotations"] = {"summary": PROMETHEUS_SUMMARY}
        rules.append(rule)
    return {"groups": [{"name": scenario.name, "rules": rules}]}


def memalert_rules(scenario: Scenario) -> dict[str, Any]:
    unit = scenario.unit
    rule: dict[str, Any] = {
        "name": MEMALERT_RULE,
        "metric": "rss_bytes",
        "above": {
            level: f"{value}{unit}" if unit else value for level, value in scenario.levels.items()
        },
        "for": duration(scenario.for_s),
        "keep_firing_for": duration(scenario.keep_s),
    }
    if scenario.rule_labels:
        rule["labels"] = dict(scenario.rule_labels)
    if scenario.summaries:
        rule["summary"] = MEMALERT_SUMMARY
    return {"version": 1, "interval": duration(EVALUATION_INTERVAL), "rules": [rule]}


def promtool_test(scenario: Scenario, expectations: Expectations, rule_file: str) -> dict[str, Any]:
    if scenario.summaries and scenario.keep_s:
        # Prometheus keeps the annotation of the last evaluation that matched; memalert
        # renders the current value. Not comparable, so not generated.
        raise ValueError(f"{scenario.name}: summaries need keep_firing_for 0")
    checks = []
    for at in sorted(expectations):
        for level in LEVELS:
            if level not in scenario.levels:
                continue
            exp_alerts = []
            for alert in expectations[at]:
                if LEVELS.index(level) > LEVELS.index(alert.severity):
                    continue
                expected: dict[str, Any] = {"exp_labels": {**alert.labels, "severity": level}}
                if scenario.summaries:
                    summary = f"{alert.labels['target']} at {humanize1024(alert.value)}"
                    expected["exp_annotations"] = {"summary": summary}
                exp_alerts.append(expected)
            checks.append(
                {
                    "eval_time": duration(at),
                    "alertname": f"{MEMALERT_RULE}_{level}",
                    "exp_alerts": exp_alerts,
                }
            )
    unit_factor = scenario.factor
    input_series = [
        {"series": _selector(s), "values": _scaled(s, unit_factor)} for s in scenario.series
    ]
    return {
        "rule_files": [rule_file],
        "evaluation_interval": duration(EVALUATION_INTERVAL),
        "tests": [
            {
                "name": _title(scenario),
                "interval": duration(scenario.interval_s),
                "input_series": input_series,
                "alert_rule_test": checks,
            }
        ],
    }


def _scaled(series: Series, factor: float) -> str:
    """promtool has no size units: the same runs, in bytes."""
    scale = int(factor)
    runs = (replace(r, start=r.start * scale, step=r.step * scale) for r in series.runs)
    return " ".join(run.token("") for run in runs)


def memalert_test(scenario: Scenario, expectations: Expectations, rule_file: str) -> dict[str, Any]:
    checks = []
    for at in sorted(expectations):
        exp_alerts: list[dict[str, Any]] = []
        for alert in expectations[at]:
            expected: dict[str, Any] = {"severity": alert.severity, "labels": dict(alert.labels)}
            if scenario.summaries:
                expected["summary"] = alert.summary
            exp_alerts.append(expected)
        checks.append({"eval_time": duration(at), "rule": MEMALERT_RULE, "exp_alerts": exp_alerts})
    input_series = []
    for series in memalert_series(scenario):
        entry: dict[str, Any] = {"target": series.target, "metric": series.metric}
        if series.labels:
            entry["labels"] = dict(series.labels)
        entry["values"] = series.text(scenario.unit if series.metric == "rss_bytes" else "")
        input_series.append(entry)
    return {
        "rule_files": [rule_file],
        "evaluation_interval": duration(EVALUATION_INTERVAL),
        "tests": [
            {
                "name": _title(scenario),
                "interval": duration(scenario.interval_s),
                "input_series": input_series,
                "alert_rule_test": checks,
            }
        ],
    }


def _title(scenario: Scenario) -> str:
    seed = "" if scenario.seed is None else f" (seed {scenario.seed})"
    return f"{scenario.name}{seed}"


@dataclass(frozen=True, kw_only=True, slots=True)
class ScenarioFiles:
    scenario: Scenario
    promtool_test: Path
    memalert_test: Path


def write_files(scenario: Scenario, expectations: Expectations, directory: Path) -> ScenarioFiles:
    """Write the four files of one scenario into `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    documents = {
        "prometheus.rules.yml": prometheus_rules(scenario),
        "memalert.rules.yaml": memalert_rules(scenario),
        "promtool.test.yml": promtool_test(scenario, expectations, "prometheus.rules.yml"),
        "memalert.test.yaml": memalert_test(scenario, expectations, "memalert.rules.yaml"),
    }
    for name, document in documents.items():
        text = yaml.dump(
            document, Dumper=_DUMPER, sort_keys=False, width=1_000_000, default_flow_style=None
        )
        (directory / name).write_text(text, encoding="utf-8")
    return ScenarioFiles(
        scenario=scenario,
        promtool_test=directory / "promtool.test.yml",
        memalert_test=directory / "memalert.test.yaml",
    )


_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


# -- running both tools ------------------------------------------------------------------


def run_promtool(paths: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", "test", "rules", *map(str, paths)],
        # One stream, so each file's FAILED report follows its "Unit Testing:" line.
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        timeout=600,
    )


def run_memalert(paths: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memalert.engine.cli", "test", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def promtool_failures(output: str) -> dict[str, str]:
    """promtool's report split per test file: {path: report} for the files that failed."""
    failures: dict[str, str] = {}
    current, lines = "", list[str]()
    for line in [*output.splitlines(), "Unit Testing: "]:
        if line.startswith("Unit Testing:"):
            if current and any("FAILED" in text for text in lines):
                failures[current] = "\n".join(lines)
            current, lines = line.removeprefix("Unit Testing:").strip(), []
        else:
            lines.append(line)
    return failures


def memalert_failures(output: str) -> dict[str, str]:
    """`memalert test`'s report split per test file: {path: report} for the files that failed."""
    failed: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        match = re.match(r"FAIL (.+?): test ", line)
        if match:
            current = failed.setdefault(match[1], [])
        elif not line.startswith(" "):
            current = None
        if current is not None:
            current.append(line)
    return {path: "\n".join(lines) for path, lines in failed.items()}


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: python tests/promtool_files.py SEED DIR", file=sys.stderr)
        return 2
    scenario = random_scenario(int(argv[0]))
    files = write_files(scenario, memalert_firing(scenario), Path(argv[1]))
    print(f"promtool test rules {files.promtool_test}\nmemalert test {files.memalert_test}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
