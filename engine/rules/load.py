"""Rule files: find them, load them, check every problem, merge them into one RuleSet.

`check_paths` reports every problem in every file as a Diagnostic
(FILE:LINE:COL: message) and never raises for bad input; `load_rules` returns
the compiled RuleSet or raises RuleFileError with the same diagnostics.

Several files merge: rules, targets, notifiers, routes (in file order) and
silences are concatenated; `interval` and `repeat_interval` are the smallest
given. Rule, target and notifier names must be unique across all files.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from memalert.engine.core.errors import Diagnostic, RuleFileError
from memalert.engine.core.limits import INTERVAL, REPEAT_INTERVAL
from memalert.engine.core.metrics import SAMPLE_METRICS
from memalert.engine.core.model import (
    CONSOLE_NOTIFIER,
    DEFAULT_INTERVAL,
    DEFAULT_REPEAT_INTERVAL,
    DetectorSettings,
    Position,
    RuleSet,
)
from memalert.engine.core.suggest import did_you_mean
from memalert.engine.rules.alerting_items import (
    compile_inhibit_rule,
    compile_notifier,
    compile_route,
    compile_silence,
)
from memalert.engine.rules.compile import CompiledFile, FileCompiler, check_literal_secrets
from memalert.engine.rules.detector import compile_detector
from memalert.engine.rules.intervals import compile_time_interval
from memalert.engine.rules.items import compile_rule, compile_target
from memalert.engine.rules.routegroups import compile_grouping
from memalert.engine.rules.schemacheck import schema_diagnostics
from memalert.engine.rules.yamlsource import load_yaml

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from memalert.engine.rules.yamlsource import Document, JsonPath

RULE_FILE_SUFFIXES = (".yaml", ".yml")
# The built-in rules (package data): `run` and `record` without rule files load them.
DEFAULT_RULES = Path(__file__).with_name("defaults.yaml")
# The digest of defaults.yaml as shipped (tests/engine/cli/test_defaults.py
# says the new one when the file changes).
DEFAULT_RULES_SHA256 = "a01c32891f302702b95cc49ea6d6091d20442ba5a748c89d08078bfe0011a085"
TEST_FILE_KEY = "rule_files"  # the top-level key of a `memalert test` file


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckReport:
    """What `memalert check` finds: `errors`, each `${VAR}` the environment lacks,
    and `warnings` (matchers on labels no rule's alerts carry)."""

    errors: list[Diagnostic]
    unset: list[Diagnostic]
    warnings: list[Diagnostic] = field(default_factory=list)


def check_paths(paths: Sequence[str | Path]) -> list[Diagnostic]:
    """Every problem in the rule files at `paths` (files or directories); [] when valid."""
    return check_rules(paths, env=None).errors


def check_rules(paths: Sequence[str | Path], *, env: Mapping[str, str] | None) -> CheckReport:
    """Every problem, and every `${VAR}` reference that `env` (None: not asked) does not set.

    Nothing is expanded: an unset variable is no error in the files themselves,
    but `run` on this host would refuse the notifier or leave the target out.
    """
    diagnostics, _, compiled = _load(paths, env=None)
    unset = sorted(
        {
            Diagnostic(
                file=at.file,
                line=at.line,
                col=at.col,
                message=f"environment variable {name} is not set: {consequence}",
            )
            for result in compiled
            for name, at, consequence in result.variables
            if env is not None and name not in env
        }
    )
    return CheckReport(errors=diagnostics, unset=unset, warnings=_unmatched_labels(compiled))


def _unmatched_labels(compiled: Sequence[CompiledFile]) -> list[Diagnostic]:
    """Matchers needing a label that no rule's alerts carry: they match no live alert.

    An alert carries its metric's labels (the metric table), its rule's
    `labels`, `severity` and `rule`. A warning, not an error: Alertmanager
    allows it, and recorded observations may carry other labels.
    """
    rules = [rule for result in compiled for rule in result.rules]
    if not rules:
        return []  # a file of routes alone: the rules are elsewhere
    carried = {"severity", "rule"}
    for rule in rules:
        info = SAMPLE_METRICS.get(rule.metric)
        carried |= set() if info is None else info.labels
        carried |= set(rule.labels)
    return sorted(
        _at(
            position,
            f"{what}: no rule's alerts carry label {label!r}, so it matches no alert "
            f"(they carry {', '.join(sorted(carried))}){did_you_mean(label, sorted(carried))}",
        )
        for result in compiled
        for label, what, position in result.label_refs
        if label not in carried
    )


def load_rules(paths: Sequence[str | Path], *, env: Mapping[str, str] | None) -> RuleSet:
    """Load, check and merge rule files; raise RuleFileError listing every problem.

    The one way rule files are loaded to be used. `env` is the environment of
    `run`, `record`, `dry-run` and `notify-test` (each passes `os.environ`, so
    what is recorded and replayed is what `run` watches): `${VAR}` in target
    selectors (pid, pidfile, cgroup) is expanded, and a target whose variable
    is unset is left out. None expands nothing (rule unit tests, which need no
    targets). Notifier URLs stay raw either way: they are expanded when the
    notifiers are built. No default: forgetting the environment was a bug once
    (`record` watched the literal `${MEMALERT_PIDFILE}`).
    """
    diagnostics, ruleset, _ = _load(paths, env=env)
    if ruleset is not None:
        return ruleset
    if not diagnostics:
        where = str(paths[0]) if paths else "."
        diagnostics = [Diagnostic(file=where, line=1, col=1, message="no rule files found")]
    raise RuleFileError(diagnostics)


def _load(
    paths: Sequence[str | Path], *, env: Mapping[str, str] | None
) -> tuple[list[Diagnostic], RuleSet | None, list[CompiledFile]]:
    diagnostics: list[Diagnostic] = []
    compiled: list[CompiledFile] = []
    for file, explicit in _rule_files(paths, diagnostics):
        try:
            doc = load_yaml(file)
        except RuleFileError as exc:
            diagnostics.extend(exc.diagnostics)
            continue
        if isinstance(doc.data, dict) and TEST_FILE_KEY in doc.data:
            # Rule unit tests live beside rule files; `memalert test` checks them.
            if explicit:
                diagnostics.append(
                    _at(
                        doc.position([TEST_FILE_KEY], key=True),
                        "this is a rule unit-test file (it has `rule_files`): "
                        "run it with `memalert test`",
                    )
                )
            continue
        trusted = _shipped_defaults(doc)
        schema_problems, schema_paths = ([], []) if trusted else schema_diagnostics(doc)
        result = compile_file(doc, schema_paths, env=env, trusted=trusted)
        diagnostics += schema_problems + result.diagnostics
        compiled.append(result)
    diagnostics += _cross_file_problems(compiled)
    unique = sorted(set(diagnostics))
    if unique or not compiled:
        return unique, None, compiled
    return [], _merge(compiled), compiled


def compile_file(
    doc: Document,
    schema_error_paths: Iterable[JsonPath] = (),
    *,
    env: Mapping[str, str] | None = None,
    trusted: bool = False,
) -> CompiledFile:
    """Check the meaning of one rule file and compile its valid items.

    `schema_error_paths` are where the schema found problems; items under them
    are checked but not compiled, since their types cannot be trusted. With
    `env`, `${VAR}` in target selectors is expanded (notifier URLs never are:
    the notifier layer expands them when it sends). `trusted`: the shipped
    built-in rules, whose templates are not checked again.
    """
    invalid = frozenset(tuple(p[:2]) for p in schema_error_paths)
    c = FileCompiler(doc, invalid, env, trusted=trusted)
    data = doc.data if isinstance(doc.data, dict) else {}
    if "interval" in data:
        c.out.interval = c.duration(("interval",), data["interval"], INTERVAL)
    if "repeat_interval" in data:
        c.out.repeat_interval = c.duration(
            ("repeat_interval",), data["repeat_interval"], REPEAT_INTERVAL
        )
    # Before the routes: the top level's grouping is their default.
    c.out.grouping = compile_grouping(c, (), data, None)
    if "detector" in data:
        c.out.detector = compile_detector(c, ("detector",), data["detector"])
    for section, compile_item in _SECTIONS.items():
        items = data.get(section)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    c.start_item((section, i))
                    compile_item(c, (section, i), item)
    notifiers = data.get("notifiers")
    if isinstance(notifiers, dict):
        for name, body in notifiers.items():
            c.start_item(("notifiers", name))
            compile_notifier(c, name, body)
    check_literal_secrets(c)
    return c.out


_SECTIONS = {
    "rules": compile_rule,
    "targets": compile_target,
    "routes": compile_route,
    "silences": compile_silence,
    "time_intervals": compile_time_interval,
    "inhibit_rules": compile_inhibit_rule,
}


def _shipped_defaults(doc: Document) -> bool:
    """Whether `doc` is the built-in rules file as shipped.

    That file is package data that tests/engine/cli/test_defaults.py validates
    against the schema and its templates (and compiles to the same rule set as a
    copy that is checked): skipping those checks keeps jsonschema and Jinja (~5
    and ~3 MB resident) out of a daemon started with no rule file, until its
    first alert renders. A copy edited in place no longer has the shipped
    digest and is checked like any rule file.
    """
    return (
        Path(doc.file).resolve() == DEFAULT_RULES.resolve()
        and hashlib.sha256(doc.text.encode()).hexdigest() == DEFAULT_RULES_SHA256
    )


def _rule_files(
    paths: Sequence[str | Path], diagnostics: list[Diagnostic]
) -> list[tuple[str, bool]]:
    """(file, given explicitly) for each path, directories expanded; each file once."""
    found: list[tuple[str, bool]] = []
    seen: set[str] = set()

    def add(file: str, *, explicit: bool) -> None:
        key = os.path.realpath(file)
        if key not in seen:
            seen.add(key)
            found.append((file, explicit))

    for given in paths:
        path = Path(given)
        if not path.is_dir():
            add(str(given), explicit=True)
            continue
        inside = _files_under(path)
        if not inside:
            message = "no rule files (*.yaml, *.yml) in this directory"
            diagnostics.append(Diagnostic(file=str(given), line=1, col=1, message=message))
        for file in inside:
            add(file, explicit=False)
    return found


def _files_under(directory: Path) -> list[str]:
    """Rule files below `directory`, sorted; hidden entries and symlinked dirs skipped."""
    files: list[str] = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files.extend(
            str(Path(root) / name)
            for name in names
            if name.endswith(RULE_FILE_SUFFIXES) and not name.startswith(".")
        )
    return sorted(files, key=lambda f: Path(f).parts)


def _at(position: Position, message: str) -> Diagnostic:
    return Diagnostic(file=position.file, line=position.line, col=position.col, message=message)


def _cross_file_problems(compiled: Sequence[CompiledFile]) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    first: dict[tuple[str, str], Position] = {}
    for result in compiled:
        for kind, name, position in result.declared:
            earlier = first.setdefault((kind, name), position)
            if earlier is not position:
                where = f"{earlier.file}:{earlier.line}:{earlier.col}"
                problems.append(
                    _at(position, f"duplicate {kind} name {name!r} (first defined at {where})")
                )
    problems.extend(_detector_disagreements(compiled))
    notifiers = {name for (kind, name) in first if kind == "notifier"} | {CONSOLE_NOTIFIER}
    rules = [name for (kind, name) in first if kind == "rule"]
    intervals = {name for (kind, name) in first if kind == "time interval"}
    for result in compiled:
        for name, position in result.notifier_refs:
            if name not in notifiers:
                hint = did_you_mean(name, notifiers) or "; declare it under `notifiers:`"
                problems.append(_at(position, f"unknown notifier {name!r}{hint}"))
        for name, position in result.interval_refs:
            if name not in intervals:
                hint = did_you_mean(name, intervals) or "; declare it under `time_intervals:`"
                problems.append(_at(position, f"unknown time interval {name!r}{hint}"))
        for pattern, position in result.rule_refs:
            if not any(fnmatch.fnmatchcase(rule, pattern) for rule in rules):
                hint = did_you_mean(pattern, rules)
                problems.append(_at(position, f"no rule is named {pattern!r}{hint}"))
    return problems


def _detector_disagreements(compiled: Sequence[CompiledFile]) -> list[Diagnostic]:
    """Files' `detector:` sections also cover undeclared targets, so they must agree."""
    sections = [r.detector for r in compiled if r.detector is not None]
    problems = []
    for later in sections[1:]:
        first = sections[0]
        if (later.sensitivity, later.overrides) != (first.sensitivity, first.overrides):
            assert first.position is not None
            assert later.position is not None
            where = f"{first.position.file}:{first.position.line}:{first.position.col}"
            problems.append(
                _at(
                    later.position,
                    f"detector: differs from the one at {where}; it also applies to targets no "
                    "file declares, so set it once (a target's own `detector:` may differ)",
                )
            )
    return problems


def _merge(compiled: Sequence[CompiledFile]) -> RuleSet:
    intervals = [r.interval for r in compiled if r.interval is not None]
    repeats = [r.repeat_interval for r in compiled if r.repeat_interval is not None]
    detectors = [r.detector for r in compiled if r.detector is not None]
    windows = {name: w for r in compiled for name, w in r.time_intervals.items()}
    return RuleSet(
        rules=tuple(rule for r in compiled for rule in r.rules),
        interval=min(intervals, default=DEFAULT_INTERVAL),
        # A target without a `detector:` of its own takes its file's section.
        targets=tuple(
            target
            if target.detector is not None or r.detector is None
            else replace(target, detector=r.detector)
            for r in compiled
            for target in r.targets
        ),
        notifiers={n.name: n for r in compiled for n in r.notifiers},
        routes=tuple(route for r in compiled for route in r.routes),
        repeat_interval=min(repeats, default=DEFAULT_REPEAT_INTERVAL),
        silences=tuple(
            replace(s, windows=tuple(w for name in s.time_intervals for w in windows.get(name, ())))
            for r in compiled
            for s in r.silences
        ),
        time_intervals=windows,
        inhibit_rules=tuple(inhibit for r in compiled for inhibit in r.inhibit_rules),
        # Alertmanager has one root route: the first file's top level that sets grouping.
        grouping=next((r.grouping for r in compiled if r.grouping is not None), None),
        detector=detectors[0] if detectors else DetectorSettings(),
        files=tuple(r.file for r in compiled),
    )
