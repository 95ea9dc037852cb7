"""`memalert export promtool-tests`: `memalert test` files as `promtool test rules` files.

Each test file becomes two files: the exported Prometheus rules of its rule
files (memalert.engine.export.prometheus_rules) and a promtool test over them, so
the same expectations are checked by Prometheus' own evaluator:

- Input series are the agents' `memalert_<metric>` series, in bytes. A target
  whose `up` is 0 has its other series end with a staleness marker there, as
  Prometheus writes one when an agent stops exporting them.
- memalert firing at severity S for an instance is Prometheus firing every
  level up to S of that instance (docs/prometheus-differences.md).
- promtool sees firing alerts only: a pending assertion becomes the absence of
  the firing alert, with a comment saying so.
- promtool compares annotations exactly, and a summary is memalert's own
  rendering: the rules these tests run are the export without annotations
  (the expressions, `for`, `keep_firing_for` and labels under test are the
  same), and expected summaries become comments.
- A test whose rule reads a leak-detector metric (`leak_bytes`, ...) that its
  input does not give cannot be run by Prometheus, which has no detector: it
  is left out, with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memalert.engine.core.errors import Diagnostic, MemalertError
from memalert.engine.core.model import Labels, Position, Rule, Sample
from memalert.engine.export.exposition import PREFIX, label_name
from memalert.engine.export.prometheus_rules import prometheus_duration, prometheus_rules
from memalert.engine.export.yamltext import dump_yaml
from memalert.engine.replay.ruletest import AlertCheck, RuleTestCase, RuleTestFile
from memalert.engine.rules.yamlsource import load_yaml
from memalert.engine.trend.detector import DETECTOR_METRICS


@dataclass(slots=True)
class PromtoolTests:
    """The promtool test file (its text) and the rule file it runs."""

    rules: dict[str, Any]
    tests_text: str
    losses: list[Diagnostic] = field(default_factory=list)


def _number(value: float) -> str:
    if math.isnan(value):
        return "stale"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _selector(metric: str, labels: Labels) -> str:
    inner = ",".join(
        f'{label_name(k)}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels.items_key
    )
    return f"{PREFIX}{metric}{{{inner}}}"


def input_series(samples: Sequence[Sample], interval: float) -> list[dict[str, str]]:
    """promtool input series (one value per `interval`, `_` for none) from a test's samples."""
    steps: dict[tuple[str, Labels], dict[int, float]] = {}
    down: dict[str, set[int]] = {}
    for sample in samples:
        step = round(sample.ts / interval)
        steps.setdefault((sample.metric, sample.labels), {})[step] = sample.value
        if sample.metric == "up" and sample.value == 0:
            down.setdefault(sample.target, set()).add(step)
    series = []
    for (metric, labels), values in steps.items():
        if metric != "up":
            for step in down.get(labels.get("target", ""), ()):
                values.setdefault(step, math.nan)  # the agent stops exporting it: stale
        last = max(values)
        text = " ".join(_number(values[i]) if i in values else "_" for i in range(last + 1))
        series.append({"series": _selector(metric, labels), "values": text})
    return series


def _expected(rule: Rule, check: AlertCheck) -> tuple[list[dict[str, Any]], list[str], str | None]:
    """(promtool exp_alerts, comments, why it cannot be converted or None)."""
    alerts: list[dict[str, Any]] = []
    comments: list[str] = []
    for expected in check.expected:
        if expected.severity is None:
            return [], [], "an expected alert names no severity"
        if expected.state == "pending":
            comments.append(
                f"memalert expects {expected.describe()}: promtool sees firing alerts only, so "
                "this is the absence of that level firing"
            )
            continue
        levels = [s for s in sorted(rule.thresholds) if s <= expected.severity]
        # A lower level with a longer `for` may still be pending in Prometheus while
        # memalert fires the higher one: the test does not say which.
        if any(rule.pending_for(s) > rule.pending_for(expected.severity) for s in levels):
            return [], [], "a lower level waits a longer `for` than the level expected"
        alerts.extend(
            {"exp_labels": {**expected.labels, "severity": level.label}} for level in levels
        )
        if expected.summary is not None:
            comments.append(
                f"memalert's summary is not compared (Prometheus renders its own): "
                f"{expected.summary!r}"
            )
    if check.include_pending and not any(e.state == "pending" for e in check.expected):
        comments.append("include_pending: promtool compares firing alerts only")
    return alerts, comments, None


def _case_loss(test_file: RuleTestFile, index: int, case: RuleTestCase, message: str) -> Diagnostic:
    try:
        position = load_yaml(test_file.path).position(("tests", index))
    except MemalertError:  # read moments ago; a file changed since is named without a line
        position = Position(file=test_file.path)
    return Diagnostic(
        file=position.file,
        line=position.line,
        col=position.col,
        message=f"warning: test {case.name!r} is left out: {message}",
    )


def promtool_tests(test_file: RuleTestFile, rule_file_name: str) -> PromtoolTests:
    exported = prometheus_rules(test_file.ruleset)
    for group in exported.document["groups"]:
        for alert in group["rules"]:
            alert.pop("annotations", None)
    rules = {rule.name: rule for rule in test_file.ruleset.rules}
    out = PromtoolTests(rules=exported.document, tests_text="")
    tests: list[dict[str, Any]] = []
    comments: list[list[str]] = []
    for index, case in enumerate(test_file.cases):
        metrics = {s.metric for s in case.samples}
        needs = {rules[c.rule].metric for c in case.checks if c.rule in rules}
        missing = sorted(m for m in needs - metrics if m in DETECTOR_METRICS)
        if missing:
            out.losses.append(
                _case_loss(
                    test_file,
                    index,
                    case,
                    f"its rules read {', '.join(missing)}, which memalert's leak detector "
                    "computes from the input and Prometheus cannot",
                )
            )
            continue
        checks = []
        case_comments = []
        interval = _interval(case, test_file.evaluation_interval)
        for check in case.checks:
            rule = rules.get(check.rule)
            if rule is None:
                continue
            alerts, notes, problem = _expected(rule, check)
            if problem is not None:
                out.losses.append(_case_loss(test_file, index, case, problem))
                break
            checks.append(
                {
                    "eval_time": prometheus_duration(check.eval_time) if check.eval_time else "0s",
                    "alertname": check.rule,
                    "exp_alerts": alerts,
                }
            )
            case_comments.append(notes)
        else:
            tests.append(
                {
                    "name": case.name,
                    "interval": prometheus_duration(interval),
                    "input_series": input_series(case.samples, interval),
                    "alert_rule_test": checks,
                }
            )
            comments.extend(case_comments)
    document = {
        "rule_files": [rule_file_name],
        "evaluation_interval": prometheus_duration(test_file.evaluation_interval),
        "tests": tests,
    }
    out.tests_text = _with_comments(document, comments)
    return out


def _interval(case: RuleTestCase, default: float) -> float:
    """A step every sample sits on: the test's `interval`, or a multiple of it that
    promtool reads the same (every sample of a case is at step * interval)."""
    millis = 0
    for sample in case.samples:
        millis = math.gcd(millis, round(sample.ts * 1000))
    return millis / 1000 if millis else default


def _with_comments(document: dict[str, Any], comments: list[list[str]]) -> str:
    lines = dump_yaml(document).splitlines()
    out: list[str] = []
    checks = iter(comments)
    for line in lines:
        if line.lstrip().startswith("- eval_time:"):
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(f"{indent}# {note}" for note in next(checks, []))
        out.append(line)
    return "\n".join(out) + "\n"


def write_promtool_tests(test_file: RuleTestFile, directory: Path) -> tuple[Path, list[Diagnostic]]:
    """Write `<stem>.rules.yml` and `<stem>.promtool.yml` into `directory`; the test file."""
    stem = Path(test_file.path).stem
    rules_name = f"{stem}.rules.yml"
    converted = promtool_tests(test_file, rules_name)
    directory.mkdir(parents=True, exist_ok=True)
    header = f"# Written by `memalert export promtool-tests` from {test_file.path}.\n"
    (directory / rules_name).write_text(dump_yaml(converted.rules, header), encoding="utf-8")
    tests_path = directory / f"{stem}.promtool.yml"
    tests_path.write_text(header + converted.tests_text, encoding="utf-8")
    return tests_path, converted.losses
