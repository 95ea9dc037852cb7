"""Compiling one rule file: the checker state its items share, and what it compiles to.

The schema has checked the shape; `memalert.engine.rules.items` checks what the
shape cannot say, item by item, reporting through a `FileCompiler`, and
`memalert.engine.rules.load.compile_file` walks a file's items (so this module
imports neither). Each check guards its own types, so a file with schema errors
still gets every other problem reported, and only entirely valid items are
compiled into `memalert.engine.core.model` values.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from memalert.engine.core.errors import Diagnostic
from memalert.engine.core.limits import (
    SECONDS_THRESHOLD,
    SIZE,
    SIZE_PER_HOUR,
    Range,
)
from memalert.engine.core.metrics import SAMPLE_METRICS, Unit
from memalert.engine.core.model import (
    DetectorSettings,
    Grouping,
    InhibitRule,
    Matcher,
    NotifierConfig,
    Position,
    Route,
    Rule,
    Silence,
    TargetSpec,
)
from memalert.engine.core.secrets import masked_excerpt, referenced_vars, secret_spans
from memalert.engine.core.timeintervals import TimeWindow
from memalert.engine.core.units import UnitError, parse_duration, parse_size
from memalert.engine.rules.schemacheck import describe

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from memalert.engine.rules.yamlsource import Document, JsonPath


@dataclass(kw_only=True)
class CompiledFile:
    """One file's compiled items, the names it declares and the names it refers to."""

    file: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    targets: list[TargetSpec] = field(default_factory=list)
    notifiers: list[NotifierConfig] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)
    inhibit_rules: list[InhibitRule] = field(default_factory=list)
    interval: float | None = None
    repeat_interval: float | None = None
    grouping: Grouping | None = None  # the top level's group_by, group_wait, group_interval
    detector: DetectorSettings | None = None
    declared: list[tuple[str, str, Position]] = field(default_factory=list)  # kind, name
    notifier_refs: list[tuple[str, Position]] = field(default_factory=list)
    rule_refs: list[tuple[str, Position]] = field(default_factory=list)  # route `rule:` globs
    # Labels that route, inhibit and silence matchers need present: name, what, where.
    label_refs: list[tuple[str, str, Position]] = field(default_factory=list)
    time_intervals: dict[str, tuple[TimeWindow, ...]] = field(default_factory=dict)
    interval_refs: list[tuple[str, Position]] = field(default_factory=list)  # routes' intervals
    # Each `${VAR}` the environment fills in: name, where, what happens when unset.
    variables: list[tuple[str, Position, str]] = field(default_factory=list)


class FileCompiler:
    """Collects one file's diagnostics and compiled items; `env` is None for `check`."""

    def __init__(
        self,
        doc: Document,
        invalid_items: frozenset[JsonPath],
        env: Mapping[str, str] | None,
        *,
        trusted: bool = False,
    ) -> None:
        self.doc = doc
        self.env = env
        # The built-in rules as shipped (memalert.engine.rules.load): their schema
        # and templates are checked by tests, not at each start.
        self.trusted = trusted
        self.out = CompiledFile(file=doc.file)
        self._invalid_items = invalid_items
        self._item: JsonPath = ()
        self._failed_at = 0  # diagnostics count when the current item started
        self._line_starts: list[int] | None = None

    # -- reporting -------------------------------------------------------------

    def error(self, path: JsonPath, message: str, *, key: bool = False) -> None:
        pos = self.doc.position(path, key=key)
        self.out.diagnostics.append(
            Diagnostic(file=pos.file, line=pos.line, col=pos.col, message=message)
        )

    def variables(self, path: JsonPath, text: str, unset: str) -> None:
        """Note each `${VAR}` in the string at `path`; `unset`: what `run` does without it."""
        value = self.doc.position(path)
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.doc.text)]
        starts = self._line_starts
        offset = starts[min(value.line, len(starts)) - 1] + value.col - 1
        for name in referenced_vars(text):
            found = self.doc.text.find(f"${{{name}}}", offset)
            at = value
            if found >= 0:  # else an escape in a quoted scalar hides it: the value's start
                line = bisect.bisect_right(starts, found)
                at = Position(file=value.file, line=line, col=found - starts[line - 1] + 1)
            self.out.variables.append((name, at, unset))

    def start_item(self, path: JsonPath) -> None:
        self._item = path
        self._failed_at = len(self.out.diagnostics)

    def item_ok(self) -> bool:
        """True when neither the schema nor these checks found a problem in the item."""
        fresh = len(self.out.diagnostics) == self._failed_at
        return fresh and self._item not in self._invalid_items

    def what(self, path: JsonPath) -> str:
        return describe(self.doc.data, path)

    # -- values ------------------------------------------------------------------

    def duration(self, path: JsonPath, value: object, limits: Range) -> float | None:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            return None  # the schema reported the type
        return self._within(path, self._parsed(path, parse_duration, value), limits)

    def threshold(self, path: JsonPath, value: object, metric: str) -> float | None:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            return None
        info = SAMPLE_METRICS.get(metric)
        unit = info.unit if info is not None else Unit.BYTES
        if unit in (Unit.BYTES, Unit.BYTES_PER_HOUR):
            limits = SIZE if unit is Unit.BYTES else SIZE_PER_HOUR
            return self._within(path, self._parsed(path, parse_size, value), limits)
        if unit is Unit.SECONDS:
            seconds = self._parsed(path, parse_duration, value)
            return self._within(path, seconds, SECONDS_THRESHOLD)
        return self._plain_number(path, value, metric, unit)

    def _parsed(
        self, path: JsonPath, parse: Callable[[object], float], value: object
    ) -> float | None:
        try:
            return parse(value)  # refuses non-finite and overflowing values itself
        except UnitError as exc:
            self.error(path, f"{self.what(path)}: {exc}")
            return None

    def _within(self, path: JsonPath, number: float | None, limits: Range) -> float | None:
        problem = None if number is None else limits.problem(number)
        if problem is not None:
            self.error(path, f"{self.what(path)} {problem} (docs/rules.md, Ranges)")
            return None
        return number

    def _plain_number(self, path: JsonPath, value: object, metric: str, unit: Unit) -> float | None:
        bounds = {Unit.RATIO: (0.0, 1.0), Unit.PERCENT: (0.0, 100.0)}.get(unit)
        example = {Unit.RATIO: "0.8 for 80%", Unit.PERCENT: "25 for 25%"}.get(unit, "100")
        if not isinstance(value, int | float) or not _finite(value):
            self.error(
                path,
                f"{self.what(path)}: {metric} is a plain number ({unit.value}); "
                f"write e.g. {example}, not {_clipped(value)}",
            )
            return None
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            self.error(
                path,
                f"{self.what(path)}: {metric} is a {unit.value}; "
                f"{_clipped(value)} is out of range (write e.g. {example})",
            )
            return None
        return float(value)

    def matchers(self, path: JsonPath, value: object) -> tuple[Matcher, ...]:
        if not isinstance(value, dict):
            return ()
        found: list[Matcher] = []
        for label, pattern in value.items():
            if not isinstance(pattern, str):
                continue
            if pattern in ("", "!"):
                self.error(
                    (*path, label),
                    f"{self.what((*path, label))}: an empty pattern "
                    "can never match; use '*' for any value",
                )
                continue
            found.append(Matcher.compile(label, pattern))
        return tuple(found)

    def names(
        self, path: JsonPath, value: object, refs: list[tuple[str, Position]] | None = None
    ) -> tuple[str, ...]:
        """A list of names (notifiers unless `refs` says), each kept for the cross-file check."""
        if not isinstance(value, list):
            return ()
        kept = self.out.notifier_refs if refs is None else refs
        for i, name in enumerate(value):
            if isinstance(name, str):
                kept.append((name, self.doc.position((*path, i))))
        return tuple(n for n in value if isinstance(n, str))

    def declare(self, kind: str, name: object, path: JsonPath, *, key: bool = False) -> None:
        if isinstance(name, str):
            self.out.declared.append((kind, name, self.doc.position(path, key=key)))


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _clipped(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_literal_secrets(c: FileCompiler) -> None:
    """Scan the text, not the data: a token in a comment is committed just the same."""
    text = c.doc.text
    spans = secret_spans(text)
    if not spans:
        return
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    reported_until = -1
    for span in spans:
        if span.start < reported_until:
            continue  # one secret matched by two patterns (slack://xoxb-...) is one problem
        reported_until = span.end
        line = bisect.bisect_right(line_starts, span.secret_start)
        col = span.secret_start - line_starts[line - 1] + 1
        shown = masked_excerpt(text, spans, span.start, span.end)
        c.out.diagnostics.append(
            Diagnostic(
                file=c.doc.file,
                line=line,
                col=col,
                message=f"literal secret: {span.kind} ({shown}); keep it in an environment "
                "variable and write ${VAR} here instead",
            )
        )
