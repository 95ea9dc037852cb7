"""`memalert test`: promtool-style rule unit tests, with pending state assertable.

Semantics follow `promtool test rules`: input series start at time 0 and step
by the test's `interval`; rules are evaluated every `evaluation_interval` from
0; an `alert_rule_test` at `eval_time` is checked against the last evaluation
at or before it. `exp_alerts` lists firing alerts; pending ones are compared
too when an expected alert says `state: pending` or the check sets
`include_pending: true`. Labels must match exactly (sample labels plus the
rule's labels); `severity` and `summary` are compared when given.
`notification_test` checks what is sent (memalert.engine.replay.notifytest).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from memalert.engine.alerting.messages import describe_labels
from memalert.engine.alerting.pipeline import Pipeline
from memalert.engine.alerting.views import AlertView, active_alerts
from memalert.engine.core.errors import (
    EXIT_FAILED,
    EXIT_OK,
    Diagnostic,
    InputError,
    RuleFileError,
)
from memalert.engine.core.model import Labels, RuleSet, Sample, Severity
from memalert.engine.core.suggest import did_you_mean
from memalert.engine.core.units import UnitError, format_duration, parse_duration
from memalert.engine.replay.budget import MAX_EVALUATIONS, describe_count, grid_points
from memalert.engine.replay.notifytest import (
    ExpectedNotification,
    NotificationCheck,
    NotificationFailure,
    parse_expected,
    same_items,
)
from memalert.engine.replay.series import MAX_VALUES, SeriesError, expand_values
from memalert.engine.rules.load import load_rules
from memalert.engine.rules.yamlsource import Document, load_yaml

_SCHEMA = json.loads(
    resources.files("memalert.engine.rules")
    .joinpath("schema/ruletests.schema.json")
    .read_text("utf-8")
)
_VALIDATOR = Draft202012Validator(_SCHEMA)


@dataclass(frozen=True, kw_only=True, slots=True)
class ExpectedAlert:
    state: str
    severity: Severity | None
    labels: Labels
    summary: str | None

    def matches(self, got: AlertView) -> bool:
        return (
            got.state == self.state
            and (self.severity is None or got.severity is self.severity)
            and got.labels == self.labels
            and (self.summary is None or got.summary == self.summary)
        )

    def describe(self) -> str:
        severity = self.severity.label if self.severity else "any-severity"
        text = f"{self.state} {severity} {describe_labels(self.labels)}"
        return text + (f" summary={self.summary!r}" if self.summary is not None else "")


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertCheck:
    eval_time: float
    rule: str
    include_pending: bool
    expected: tuple[ExpectedAlert, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class RuleTestCase:
    name: str
    samples: tuple[Sample, ...]
    checks: tuple[AlertCheck, ...]
    notification_checks: tuple[NotificationCheck, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class RuleTestFile:
    path: str
    ruleset: RuleSet
    evaluation_interval: float
    cases: tuple[RuleTestCase, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Failure:
    file: str
    test: str
    check: AlertCheck
    got: tuple[AlertView, ...]

    def __str__(self) -> str:
        header = (
            f"FAIL {self.file}: test {self.test!r}, rule {self.check.rule} "
            f"at eval_time {format_duration(self.check.eval_time)}:"
        )
        lines = [
            header,
            "  expected:",
            *(f"    {e.describe()}" for e in self.check.expected),
            "  got:",
            *(
                f"    {g.state} {g.severity.label} {describe_labels(g.labels)} "
                f"summary={g.summary!r}"
                for g in self.got
            ),
        ]
        if not self.check.expected:
            lines.insert(2, "    (no alerts)")
        if not self.got:
            lines.append("    (no alerts)")
        return "\n".join(lines)


def load_test_file(path: str | Path, *, max_evaluations: float = MAX_EVALUATIONS) -> RuleTestFile:
    """Read and validate a test file and the rule files it names; InputError if bad.

    Its tests together may run at most `max_evaluations` evaluations and hold
    at most `MAX_VALUES` input values; both are checked here, before any runs.
    """
    try:
        document = load_yaml(path)
    except RuleFileError as exc:  # the shared YAML reader's error: here the file is a test file
        raise InputError(exc.diagnostics) from None
    problems = [
        problem
        for error in _VALIDATOR.iter_errors(document.data)
        for problem in _schema_problems(document, error)
    ]
    if problems:
        raise InputError(problems)
    data: dict[str, Any] = document.data
    base = Path(path).parent
    ruleset = load_rules([base / name for name in data["rule_files"]], env=None)
    evaluation_interval = _duration(
        document, ["evaluation_interval"], ruleset.interval, positive=True
    )
    budget = _Budget(
        max_evaluations=max_evaluations, evaluations=max_evaluations, values=MAX_VALUES
    )
    cases = tuple(
        _case(document, index, test, evaluation_interval, budget)
        for index, test in enumerate(data["tests"])
    )
    return RuleTestFile(
        path=str(path), ruleset=ruleset, evaluation_interval=evaluation_interval, cases=cases
    )


def _schema_problems(document: Document, error: ValidationError) -> list[Diagnostic]:
    """jsonschema's finding at its YAML position; unknown keys named with a suggestion."""
    where = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = (
            sorted(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
        )
        return [
            Diagnostic(
                file=document.file,
                line=(pos := document.position([*where, key], key=True)).line,
                col=pos.col,
                message=f"unknown key {key!r}{did_you_mean(key, allowed)}",
            )
            for key in error.instance
            if key not in allowed
        ]
    label = "/".join(str(p) for p in where) or "the test file"
    return [_diagnostic(document, where, f"{label}: {error.message}")]


def _diagnostic(document: Document, where: Sequence[str | int], message: str) -> Diagnostic:
    position = document.position(where)
    return Diagnostic(file=document.file, line=position.line, col=position.col, message=message)


def _duration(
    document: Document, where: list[str | int], default: float, *, positive: bool = False
) -> float:
    node: Any = document.data
    for key in where:
        in_dict = isinstance(node, dict) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and key < len(node)
        if in_dict or in_list:
            node = node[key]
        else:
            return default
    try:
        seconds = parse_duration(node)
    except UnitError as exc:
        raise InputError([_diagnostic(document, where, str(exc))]) from None
    if positive and seconds <= 0:
        raise InputError([_diagnostic(document, where, "an interval must be longer than 0s")])
    return seconds


@dataclass(kw_only=True, slots=True)
class _Budget:
    """What the tests of one file may still use: evaluations run, input values held."""

    max_evaluations: float
    evaluations: float
    values: int


def _case(
    document: Document,
    index: int,
    test: dict[str, Any],
    evaluation_interval: float,
    budget: _Budget,
) -> RuleTestCase:
    where: list[str | int] = ["tests", index]
    # As in promtool, samples step by the evaluation interval unless told otherwise.
    interval = _duration(document, [*where, "interval"], evaluation_interval, positive=True)
    samples: list[Sample] = []
    for s_index, series in enumerate(test["input_series"]):
        labels = Labels({**series.get("labels", {}), "target": series["target"]})
        try:
            values = expand_values(str(series["values"]), limit=budget.values)
        except SeriesError as exc:
            message = str(exc)
            if budget.values < MAX_VALUES:
                message += f" (the limit for all input series of a file, {MAX_VALUES:,} values)"
            raise InputError(
                [_diagnostic(document, [*where, "input_series", s_index, "values"], message)]
            ) from None
        budget.values -= len(values)
        samples.extend(
            Sample(series["metric"], labels, value, step * interval)
            for step, value in enumerate(values)
            if value is not None
        )
    checks = []
    latest: tuple[float, list[str | int]] = (0.0, where)
    for c_index, check in enumerate(test.get("alert_rule_test", [])):
        check_where: list[str | int] = [*where, "alert_rule_test", c_index]
        expected = tuple(
            ExpectedAlert(
                state=exp.get("state", "firing"),
                severity=Severity.parse(exp["severity"]) if "severity" in exp else None,
                labels=Labels(exp.get("labels", {})),
                summary=exp.get("summary"),
            )
            for exp in check.get("exp_alerts", [])
        )
        eval_time = _duration(document, [*check_where, "eval_time"], 0.0)
        if eval_time > latest[0]:
            latest = (eval_time, [*check_where, "eval_time"])
        checks.append(
            AlertCheck(
                eval_time=eval_time,
                rule=check["rule"],
                include_pending=check.get("include_pending", False)
                or any(e.state == "pending" for e in expected),
                expected=expected,
            )
        )
    notification_checks = []
    for n_index, check in enumerate(test.get("notification_test", [])):
        at: list[str | int] = [*where, "notification_test", n_index, "eval_time"]
        eval_time = _duration(document, at, 0.0)
        if eval_time > latest[0]:
            latest = (eval_time, at)
        notification_checks.append(
            NotificationCheck(eval_time=eval_time, expected=parse_expected(check))
        )
    _spend_evaluations(document, latest, evaluation_interval, budget)
    samples.sort(key=lambda s: s.ts)
    return RuleTestCase(
        name=test.get("name", f"test #{index + 1}"),
        samples=tuple(samples),
        checks=tuple(sorted(checks, key=lambda c: c.eval_time)),
        notification_checks=tuple(sorted(notification_checks, key=lambda c: c.eval_time)),
    )


def _spend_evaluations(
    document: Document,
    latest: tuple[float, list[str | int]],
    evaluation_interval: float,
    budget: _Budget,
) -> None:
    """Count the evaluations `run_case` will run up to the latest check; refuse too many."""
    eval_time, where = latest
    needed = grid_points(eval_time, evaluation_interval, through_end=False)
    if needed > budget.evaluations:
        left = (
            ""
            if budget.evaluations == budget.max_evaluations
            else f" (the tests before it left {describe_count(budget.evaluations)})"
        )
        message = (
            f"eval_time {format_duration(eval_time)} at an evaluation_interval of "
            f"{format_duration(evaluation_interval)} takes {describe_count(needed)} "
            f"evaluations, more than the limit of {describe_count(budget.max_evaluations)} "
            f"for a test file{left}; check earlier, evaluate less often, or raise the "
            "limit with --max-evaluations"
        )
        raise InputError([_diagnostic(document, where, message)])
    budget.evaluations -= needed


def run_case(test_file: RuleTestFile, case: RuleTestCase) -> list[Failure | NotificationFailure]:
    """Evaluate one test case from time 0 and compare every check; [] means it passed."""
    pipeline = Pipeline(test_file.ruleset)
    step = test_file.evaluation_interval
    times = [c.eval_time for c in case.checks] + [c.eval_time for c in case.notification_checks]
    last = max(times, default=0.0)
    failures: list[Failure | NotificationFailure] = []
    sample_index = check_index = notification_index = 0
    tick = 0
    while tick * step <= last:
        now = tick * step
        start = sample_index
        while sample_index < len(case.samples) and case.samples[sample_index].ts <= now:
            sample_index += 1
        result = pipeline.step(now, case.samples[start:sample_index])
        while check_index < len(case.checks) and case.checks[check_index].eval_time < now + step:
            check = case.checks[check_index]
            check_index += 1
            got = tuple(
                view
                for view in active_alerts(test_file.ruleset, pipeline.state, now)
                if view.rule == check.rule and (view.state == "firing" or check.include_pending)
            )
            if not same_items(check.expected, got, ExpectedAlert.matches):
                failures.append(Failure(file=test_file.path, test=case.name, check=check, got=got))
        checks = case.notification_checks
        while (
            notification_index < len(checks) and checks[notification_index].eval_time < now + step
        ):
            notes = checks[notification_index]
            notification_index += 1
            sent = result.notifications
            if not same_items(notes.expected, sent, ExpectedNotification.matches):
                failures.append(
                    NotificationFailure(file=test_file.path, test=case.name, check=notes, got=sent)
                )
        tick += 1
    return failures


def expand_test_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files named, and the *.yaml / *.yml files under directories named, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"}))
        else:
            found.append(path)
    return found


def run_test_files(
    paths: Sequence[str | Path],
    write: Callable[[str], None],
    write_error: Callable[[str], None],
    *,
    max_evaluations: float = MAX_EVALUATIONS,
) -> int:
    """Run every test; results and the summary to `write`, bad input to `write_error`.

    The exit code: 0 all passed, 1 a test failed (or a rule file is invalid), 2 a test
    file could not be read: the highest of the errors' codes (memalert.engine.core.errors).
    """
    passed = failed = 0
    bad_input: list[Diagnostic] = []
    exit_code = EXIT_OK
    for path in expand_test_paths(paths):
        try:
            test_file = load_test_file(path, max_evaluations=max_evaluations)
        except (InputError, RuleFileError) as exc:
            bad_input.extend(exc.diagnostics)
            exit_code = max(exit_code, exc.exit_code)
            continue
        for case in test_file.cases:
            failures = run_case(test_file, case)
            if failures:
                failed += 1
                for failure in failures:
                    write(str(failure))
            else:
                passed += 1
    for diagnostic in bad_input:
        write_error(str(diagnostic))
    write(f"{passed} passed, {failed} failed")
    return max(exit_code, EXIT_FAILED if failed else EXIT_OK)
