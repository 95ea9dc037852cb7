"""Structural validation of a rule file against `engine/schema/rules.schema.json`.

jsonschema reports every error with the JSON path of the offending node; each
is turned into a Diagnostic at that node's YAML position, with a message
written for the person editing the file ("unknown key 'thresold' in rule
'x'; did you mean 'threshold'?") instead of the validator's wording.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from memalert.engine.core.errors import Diagnostic
from memalert.engine.core.suggest import did_you_mean

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

    from memalert.engine.rules.yamlsource import Document, JsonPath

_SECTIONS = {
    "rules": "rule",
    "targets": "target",
    "routes": "route",
    "silences": "silence",
    "time_intervals": "time interval",
    "inhibit_rules": "inhibit rule",
}
_SELECTORS = ("process", "pid", "pidfile", "self", "system", "cgroup")
_TYPE_NAMES = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "object": "a mapping (key: value)",
    "array": "a list",
    "boolean": "true or false",
    "null": "empty",
}
_NAME_RULE = "may use only letters, digits and _ . : - and must start with a letter or digit"
_LABEL_RULE = "must be letters, digits and _, not starting with a digit"


@functools.cache
def rules_schema() -> dict[str, Any]:
    """The JSON Schema for version-1 rule files, shipped inside the package."""
    text = (
        resources.files("memalert.engine.rules")
        .joinpath("schema/rules.schema.json")
        .read_text("utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> Draft202012Validator:
    # Local `$ref`s inlined: resolving ~15 references per rule was a third of
    # `check`'s time on a 1,000-rule file. The schema has no recursive refs.
    from jsonschema import Draft202012Validator  # noqa: PLC0415 - only a rule file to check needs it

    schema = rules_schema()
    return Draft202012Validator(_inline_refs(schema, schema["$defs"]))


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline_refs(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    inlined = {k: _inline_refs(v, defs) for k, v in node.items() if k not in ("$ref", "$defs")}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        # Keywords beside a $ref (`minItems`) add to the referenced schema.
        return {**_inline_refs(defs[ref.removeprefix("#/$defs/")], defs), **inlined}
    return inlined


def schema_diagnostics(doc: Document) -> tuple[list[Diagnostic], list[JsonPath]]:
    """Every structural problem in `doc` in human words, and the paths where they are."""
    found: list[Diagnostic] = []
    paths: list[JsonPath] = []
    for error in _validator().iter_errors(doc.data):
        path = tuple(error.absolute_path)
        paths.append(path)
        for key_path, message in _explain(error, doc.data, path):
            is_key = key_path is not None
            pos = doc.position(key_path if key_path is not None else path, key=is_key)
            found.append(Diagnostic(file=doc.file, line=pos.line, col=pos.col, message=message))
    return found, paths


Explanation = list[tuple["tuple[str | int, ...] | None", str]]


@dataclass(frozen=True, kw_only=True, slots=True)
class _Failure:
    """The parts of a jsonschema error that the explainers read, with plain types."""

    path: tuple[str | int, ...]
    subject: str
    keyword: str
    expected: Any  # the keyword's value in the schema
    schema: dict[str, Any]
    instance: Any
    message: str


def _explain(error: ValidationError, data: Any, path: tuple[str | int, ...]) -> Explanation:
    """(path of a mapping key to point at, or None for the node itself; message) pairs."""
    failure = _Failure(
        path=path,
        subject=describe(data, path),
        keyword=str(error.validator),
        expected=error.validator_value,
        schema=error.schema if isinstance(error.schema, dict) else {},
        instance=error.instance,
        message=error.message,
    )
    if "propertyNames" in error.schema_path:
        rule = _NAME_RULE if path == ("notifiers",) else _LABEL_RULE
        message = f"invalid name {failure.instance!r} in {failure.subject}: names {rule}"
        return [((*path, str(failure.instance)), message)]
    explain = _EXPLAINERS.get(failure.keyword)
    if explain is None:
        return [(None, f"{failure.subject}: {failure.message}")]
    return explain(failure)


def _additional(f: _Failure) -> Explanation:
    allowed = sorted(f.schema.get("properties", {}))
    owner = f.subject if f.path else "the rule file"
    return [
        ((*f.path, key), f"unknown key {key!r} in {owner}{did_you_mean(key, allowed)}")
        for key in f.instance
        if key not in allowed
    ]


def _required(f: _Failure) -> Explanation:
    missing = [k for k in f.expected if k not in f.instance]
    missing = [k for k in missing if f.message.startswith(repr(k))] or missing[:1]
    hint = " (add `version: 1` at the top)" if missing == ["version"] and not f.path else ""
    owner = f.subject if f.path else "the rule file"
    return [(None, f"{owner} is missing the required key {missing[0]!r}{hint}")]


def _type(f: _Failure) -> Explanation:
    names = [f.expected] if isinstance(f.expected, str) else list(f.expected)
    wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
    wanted = f.schema.get("description", wanted)
    got = _shown(f.instance)
    if not f.path:
        return [(None, f"a rule file must be a mapping starting with `version: 1`, not {got}")]
    hint = ""
    if names == ["string"] and isinstance(f.instance, bool | int | float):
        hint = "; put it in quotes to make it text"
    return [(None, f"{f.subject} must be {wanted}, not {got}{hint}")]


def _const(f: _Failure) -> Explanation:
    if f.path == ("version",):
        return [(None, f"unsupported version {f.instance!r}: this memalert reads `version: 1`")]
    return [(None, f"{f.subject} must be {json.dumps(f.expected)} (or left out)")]


def _one_of(f: _Failure) -> Explanation:
    is_rule = f.path[:1] == ("rules",)
    options = ("above", "below") if is_rule else _SELECTORS
    given = [k for k in options if isinstance(f.instance, dict) and k in f.instance]
    choices = " or ".join(options) if is_rule else ", ".join(options)
    if not given:
        return [(None, f"{f.subject} needs one of {choices}")]
    message = f"{f.subject} has both {given[0]} and {given[1]}; use one of {choices}"
    return [((*f.path, given[1]), message)]


def _any_of(f: _Failure) -> Explanation:
    if f.path and f.path[-1] == "pid":
        wanted = "a process id (a whole number from 1) or a ${VAR} reference"
        return [(None, f"{f.subject} must be {wanted}, not {_shown(f.instance)}")]
    return [(None, f"{f.subject}: {f.message}")]


def _min_properties(f: _Failure) -> Explanation:
    if f.path and f.path[-1] in ("above", "below", "recover", "for"):
        return [(None, f"{f.subject} needs at least one of warning, critical")]
    if f.path and f.path[-1] == "process":
        return [(None, f"{f.subject} needs name or cmdline")]
    return [(None, f"{f.subject} must name at least one label")]


def _empty(f: _Failure) -> Explanation:
    return [(None, f"{f.subject} must not be empty")]


def _pattern(f: _Failure) -> Explanation:
    if f.expected == rules_schema()["$defs"]["name"]["pattern"]:
        kind = _SECTIONS.get(str(f.path[0]), "notifier") if f.path else ""
        return [(None, f"invalid {kind} name {f.instance!r}: names {_NAME_RULE}")]
    return [(None, f"{f.subject} {f.instance!r} {_LABEL_RULE}")]


def _minimum(f: _Failure) -> Explanation:
    return [(None, f"{f.subject} must be at least {f.expected}, not {f.instance!r}")]


_EXPLAINERS: dict[str, Callable[[_Failure], Explanation]] = {
    "additionalProperties": _additional,
    "required": _required,
    "type": _type,
    "const": _const,
    "oneOf": _one_of,
    "anyOf": _any_of,
    "minProperties": _min_properties,
    "minItems": _empty,
    "minLength": _empty,
    "pattern": _pattern,
    "minimum": _minimum,
}


def describe(data: Any, path: Sequence[str | int]) -> str:
    """Name a node for people: `rule 'leak'`, `'above' of rule 'leak'`, `'interval'`."""
    owner = ""
    rest: Sequence[str | int] = path
    if len(path) >= 2 and path[0] in _SECTIONS and isinstance(path[1], int):
        kind = _SECTIONS[str(path[0])]
        item = _lookup(data, path[:2])
        name = item.get("name") if isinstance(item, dict) else None
        owner = f"{kind} {name!r}" if isinstance(name, str) and name else f"{kind} #{path[1] + 1}"
        rest = path[2:]
    elif len(path) >= 2 and path[0] == "notifiers":
        owner = f"notifier {path[1]!r}"
        rest = path[2:]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest).lstrip(".")
    if owner and field:
        return f"'{field}' of {owner}"
    return owner or (f"'{field}'" if field else "the rule file")


def _lookup(data: Any, path: Sequence[str | int]) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _shown(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    kind = {int: "number", float: "number", str: "text", list: "a list", dict: "a mapping"}
    text = repr(value) if isinstance(value, int | float | str) else ""
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind.get(type(value), type(value).__name__)} {text}".strip()
