"""A rule's `summary` (Jinja2) as an annotation in Prometheus' template language (Go's).

Only what means the same in both is translated: the alert's labels
(`target`, `component`, `site`, the rule's own labels, `labels.x`), `value`
(`$value`), `rule` (`$labels.alertname`), and constants known when the rule is
exported: `severity`, `metric` and `threshold` (rendered here, with memalert's own
filters, so they read exactly as memalert writes them). `value`'s filters map to
Prometheus' closest functions (`bytes` -> `humanize1024`, `percent` ->
`humanizePercentage`, `duration` -> `humanizeDuration`): the same quantity,
Prometheus' rounding. `{% if %}` over those, with `and`/`or`/`not`, `is defined`
and comparisons, is translated too.

Everything else (`growth`, `firing_for`, `state`, loops, other filters) has no
Prometheus equivalent in an annotation: that piece is left out and named in
`losses`, so the export still writes what it can and says what it dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from jinja2 import TemplateSyntaxError, nodes

from memalert.engine.rules.templates import apply_filter, parse_template

# memalert template variables that are the alert's labels in Prometheus.
_LABEL_VARIABLES = frozenset({"target", "component", "site"})
# Variables with no Prometheus counterpart in an annotation, and why.
# Template variables that are another series of the same target (as in
# memalert.engine.alerting.messages.related_values): an annotation of their own
# queries it, for `memalert relay` to render the rule's summary with.
RELATED_VARIABLES: Mapping[str, str] = {
    "growth": "leak_growth_bytes_per_hour",
    "confidence": "leak_confidence",
    "time_to_limit": "time_to_limit_seconds",
    "limit": "limit_bytes",
}
_UNEXPRESSIBLE = {
    "state": "Prometheus renders annotations only while the alert is active",
    "firing_for": "Prometheus has no alert age in templates",
    **{
        name: f"it is another series' value (memalert_{metric}); the `{name}` annotation "
        "carries it to memalert relay, which renders the whole summary"
        for name, metric in RELATED_VARIABLES.items()
    },
}
# memalert filter -> Prometheus template function, applied to a run-time number.
_VALUE_FILTERS: Mapping[str, str] = {
    "bytes": "humanize1024",
    "percent": "humanizePercentage",
    "duration": "humanizeDuration",
    "int": 'printf "%.0f"',
    "upper": "toUpper",
    "lower": "toLower",
    "title": "title",
}
# `bytes` shows `150Mi`: the unit memalert writes after the number.
_FILTER_SUFFIX: Mapping[str, str] = {"bytes": "B"}
_COMPARISONS = {"eq": "eq", "ne": "ne", "lt": "lt", "lteq": "le", "gt": "gt", "gteq": "ge"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class _LostError(Exception):
    """A construct with no Prometheus counterpart; the message says which and why."""


@dataclass(frozen=True, slots=True)
class _Literal:
    """Known at export time: rendered now."""

    value: object


@dataclass(frozen=True, slots=True)
class _Pipeline:
    """Known when Prometheus renders: a Go template pipeline, and text written after it."""

    go: str
    suffix: str = ""


_Value = _Literal | _Pipeline


@dataclass(frozen=True, kw_only=True, slots=True)
class Context:
    """What one exported alert (one rule, one level) knows at export time."""

    rule_labels: Mapping[str, str]
    metric: str
    severity: str
    threshold: float


@dataclass(slots=True)
class Translation:
    text: str
    losses: list[str] = field(default_factory=list)


def translate(source: str, context: Context) -> Translation:
    """`source` as a Prometheus template; what could not be translated is listed in `losses`."""
    try:
        tree = parse_template(source)
    except TemplateSyntaxError as exc:  # `memalert check` refuses these; say so anyway
        return Translation(text="", losses=[f"the summary does not parse: {exc.message}"])
    translator = _Translator(context)
    text = translator.statements(tree.body)
    return Translation(text=text, losses=translator.losses)


def related_variables(source: str) -> list[str]:
    """The related variables (`growth`, ...) a summary reads, in RELATED_VARIABLES' order."""
    try:
        tree = parse_template(source)
    except TemplateSyntaxError:
        return []
    used = {node.name for node in tree.find_all(nodes.Name) if node.ctx == "load"}
    return [name for name in RELATED_VARIABLES if name in used]


def related_annotation(name: str) -> str:
    """The value of the same target's related series, or nothing when it has none."""
    selector = f"memalert_{RELATED_VARIABLES[name]}{{instance=%q,target=%q}}"
    return (
        f"{{{{ with printf {_go_string(selector)} $labels.instance $labels.target | query }}}}"
        "{{ . | first | value }}{{ end }}"
    )


def _go_string(text: str) -> str:
    # A JSON string is a valid Go string literal for these characters.
    return json.dumps(text)


def _literal_text(text: str) -> str:
    """Literal text in a Go template: `{{` would open an action."""
    return text.replace("{{", '{{ "{{" }}')


def _go_constant(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        # Go's templates do not compare int with float: every number is a float.
        return repr(float(value))
    if isinstance(value, str):
        return _go_string(value)
    raise _LostError(f"the constant {value!r} has no Prometheus form")


class _Translator:
    def __init__(self, context: Context) -> None:
        self._context = context
        self.losses: list[str] = []

    def statements(self, body: Sequence[nodes.Node]) -> str:
        out: list[str] = []
        for node in body:
            try:
                out.append(self._statement(node))
            except _LostError as lost:
                self.losses.append(str(lost))
        return "".join(out)

    def _statement(self, node: nodes.Node) -> str:
        if isinstance(node, nodes.Output):
            return self.statements(node.nodes)
        if isinstance(node, nodes.TemplateData):
            return _literal_text(node.data)
        if isinstance(node, nodes.If):
            return self._if(node)
        if isinstance(node, nodes.Expr):
            return self._output(self._value(node))
        raise _LostError(f"`{{% {type(node).__name__.lower()} %}}` has no Prometheus equivalent")

    def _output(self, value: _Value) -> str:
        if isinstance(value, _Literal):
            return _literal_text(_shown(value.value))
        return f"{{{{ {value.go} }}}}{value.suffix}"

    def _if(self, node: nodes.If) -> str:
        condition = self._condition(node.test)
        body = self.statements(node.body)
        branches = [(condition, body)]
        branches += [(self._condition(e.test), self.statements(e.body)) for e in node.elif_]
        otherwise = self.statements(node.else_) if node.else_ else ""
        # Branches known now fold away: `component is defined` is always true.
        out: list[str] = []
        for test, text in branches:
            if isinstance(test, _Literal):
                if test.value:
                    return "".join(out) + text + ("{{ end }}" if out else "")
                continue
            out.append(("{{ if " if not out else "{{ else if ") + test.go + " }}" + text)
        if not out:
            return otherwise
        if otherwise:
            out.append("{{ else }}" + otherwise)
        return "".join(out) + "{{ end }}"

    def _condition(self, node: nodes.Node) -> _Value:
        if isinstance(node, nodes.Test):
            if node.name == "defined":
                self._value(node.node)  # loses what has no counterpart
                return _Literal(value=True)
            if node.name in ("none", "undefined"):
                self._value(node.node)
                return _Literal(value=False)
            raise _LostError(f"the test `is {node.name}` has no Prometheus equivalent")
        if isinstance(node, nodes.Not):
            inner = self._condition(node.node)
            if isinstance(inner, _Literal):
                return _Literal(value=not inner.value)
            return _Pipeline(go=f"not ({inner.go})")
        if isinstance(node, nodes.And | nodes.Or):
            return self._logical(node)
        if isinstance(node, nodes.Compare) and len(node.ops) == 1:
            return self._compare(node)
        return self._value(node)

    def _logical(self, node: nodes.And | nodes.Or) -> _Value:
        left, right = self._condition(node.left), self._condition(node.right)
        is_and = isinstance(node, nodes.And)
        for known, other in ((left, right), (right, left)):
            if isinstance(known, _Literal):
                # `true and x` is x, `false and x` is false; `or` the other way round.
                return other if bool(known.value) == is_and else known
        assert isinstance(left, _Pipeline)
        assert isinstance(right, _Pipeline)
        return _Pipeline(go=f"{'and' if is_and else 'or'} ({left.go}) ({right.go})")

    def _compare(self, node: nodes.Compare) -> _Value:
        operand = node.ops[0]
        if operand.op not in _COMPARISONS:
            raise _LostError(f"the comparison `{operand.op}` has no Prometheus equivalent")
        left, right = self._value(node.expr), self._value(operand.expr)
        if isinstance(left, _Literal) and isinstance(right, _Literal):
            return _Literal(value=_compare_now(operand.op, left.value, right.value))
        return _Pipeline(go=f"{_COMPARISONS[operand.op]} {_go(left)} {_go(right)}")

    def _value(self, node: nodes.Node) -> _Value:
        if isinstance(node, nodes.Const):
            return _Literal(value=node.value)
        if isinstance(node, nodes.Name):
            return self._name(node.name)
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            return self._label_lookup(node)
        if isinstance(node, nodes.Filter):
            return self._filter(node)
        if isinstance(node, nodes.Concat):
            parts = [self._value(n) for n in node.nodes]
            if all(isinstance(p, _Literal) for p in parts):
                return _Literal(value="".join(_shown(p.value) for p in parts))  # type: ignore[union-attr]
            pieces = " ".join(_go(p) for p in parts)
            return _Pipeline(go=f"print {pieces}")
        raise _LostError(f"the expression `{type(node).__name__}` has no Prometheus equivalent")

    def _name(self, name: str) -> _Value:
        context = self._context
        if name in _LABEL_VARIABLES or name in context.rule_labels:
            return _Pipeline(go=_label(name))
        if name == "rule":
            return _Pipeline(go="$labels.alertname")
        if name == "value":
            return _Pipeline(go="$value")
        if name == "severity":
            return _Literal(value=context.severity)
        if name == "metric":
            return _Literal(value=context.metric)
        if name == "threshold":
            return _Literal(value=context.threshold)
        if name in _UNEXPRESSIBLE:
            raise _LostError(f"`{name}` is left out: {_UNEXPRESSIBLE[name]}")
        raise _LostError(f"`{name}` has no Prometheus equivalent")

    def _label_lookup(self, node: nodes.Getattr | nodes.Getitem) -> _Value:
        key: object
        if isinstance(node, nodes.Getattr):
            key = node.attr
        else:
            key = node.arg.value if isinstance(node.arg, nodes.Const) else None
        if not (isinstance(node.node, nodes.Name) and node.node.name == "labels"):
            raise _LostError("only `labels.NAME` lookups have a Prometheus equivalent")
        if not isinstance(key, str):
            raise _LostError("`labels[...]` needs a constant label name")
        return _Pipeline(go=_label(key))

    def _filter(self, node: nodes.Filter) -> _Value:
        if node.node is None:
            raise _LostError(f"the filter block `{node.name}` has no Prometheus equivalent")
        value = self._value(node.node)
        args = [self._value(a) for a in node.args]
        if node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise _LostError(f"keyword arguments of the filter `{node.name}` are left out")
        if isinstance(value, _Literal) and all(isinstance(a, _Literal) for a in args):
            try:
                shown = apply_filter(node.name, value.value, *(a.value for a in args))  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - memalert renders it as an error too
                failed = f"the filter `{node.name}` fails on {value.value!r}: {exc}"
                raise _LostError(failed) from None
            return _Literal(value=shown)
        if isinstance(value, _Pipeline) and value.suffix:
            raise _LostError(f"the filter `{node.name}` after a unit has no Prometheus equivalent")
        assert isinstance(value, _Pipeline)
        if node.name == "number":
            return _Pipeline(go=f"{value.go} | printf {_number_format(args)}")
        function = _VALUE_FILTERS.get(node.name)
        if function is None or args:
            raise _LostError(f"the filter `{node.name}` has no Prometheus equivalent")
        return _Pipeline(go=f"{value.go} | {function}", suffix=_FILTER_SUFFIX.get(node.name, ""))


def _number_format(args: Sequence[_Value]) -> str:
    if not args:
        return _go_string("%g")
    digits = args[0]
    if isinstance(digits, _Literal) and isinstance(digits.value, int):
        return _go_string(f"%.{digits.value}f")
    raise _LostError("`number(...)` needs a constant number of digits")


def _label(name: str) -> str:
    return f"$labels.{name}" if _IDENTIFIER.match(name) else f"index $labels {_go_string(name)}"


def _go(value: _Value) -> str:
    if isinstance(value, _Literal):
        return _go_constant(value.value)
    if value.suffix:
        return f"print ({value.go}) {_go_string(value.suffix)}"
    return f"({value.go})"


def _shown(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_OPS: Mapping[str, Callable[[object, object], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,  # type: ignore[operator]
    "lteq": lambda a, b: a <= b,  # type: ignore[operator]
    "gt": lambda a, b: a > b,  # type: ignore[operator]
    "gteq": lambda a, b: a >= b,  # type: ignore[operator]
}


def _compare_now(op: str, left: object, right: object) -> bool:
    try:
        return _OPS[op](left, right)
    except TypeError:
        raise _LostError(f"cannot compare {left!r} with {right!r}") from None
