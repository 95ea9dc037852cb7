"""Message templates: one sandboxed Jinja2 environment, checked at load, never fatal at send.

What needs no Jinja (template variables, values in their unit, default
summaries) is in memalert.engine.rules.values, so a daemon whose rules need no
check loads Jinja only at its first render.

Summaries are written by the people who own the rule file, but they are still
rendered inside the daemon thousands of times per tick, so the environment is
sandboxed, immutable and bounded in time and size (memalert.engine.rules.sandbox),
and compiled templates are cached. `render` never raises: a notification with a
broken template still goes out, saying what failed and the essentials.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from jinja2 import Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.filters import FILTERS

from memalert.engine.core.suggest import did_you_mean
from memalert.engine.rules.sandbox import (
    MAX_DIGITS,
    MAX_SOURCE,
    MAX_VALUE,
    MAX_WIDTH,
    REFUSED_FILTERS,
    REFUSED_TAGS,
    SAFE_METHODS,
    bounded_render,
    make_environment,
    printf_problem,
)
from memalert.engine.rules.values import TEMPLATE_VARIABLES, VALUE_FILTERS, format_value

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


# Names Jinja defines inside loops, macros and call blocks.
_JINJA_IMPLICIT = frozenset({"loop", "caller", "varargs", "kwargs"})
_MAX_PROBLEM = 200
_TOO_LONG = f"a template longer than {MAX_SOURCE} characters ({{}})"
_TOO_DEEP = "a template nested too deeply"


_ENV = make_environment(VALUE_FILTERS)


def parse_template(source: str) -> nodes.Template:
    """The template's syntax tree, as memalert's environment reads it (TemplateSyntaxError)."""
    return _ENV.parse(source)


def apply_filter(name: str, value: object, *args: object) -> object:
    """One of memalert's template filters applied to `value` (KeyError: no such filter)."""
    return _ENV.filters[name](value, *args)


def template_errors(source: str, extra_vars: Iterable[str] = ()) -> list[str]:
    """Problems with a template, for `memalert check`: syntax, unknown variables and filters."""
    return list(_template_errors(source, frozenset(extra_vars)))


@functools.lru_cache(maxsize=1024)
def _template_errors(source: str, extra_vars: frozenset[str]) -> tuple[str, ...]:
    # Cached: rule files often repeat one summary over many rules.
    if len(source) > MAX_SOURCE:
        return (_TOO_LONG.format(len(source)),)
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        return (f"template syntax error on line {exc.lineno}: {exc.message}",)
    except RecursionError:  # Jinja's parser recurses once per nesting level
        return (_TOO_DEEP,)
    errors = _source_problems(tree)
    filters: set[str] = set()
    tests: set[str] = set()
    loaded: set[str] = set()
    declared = {*TEMPLATE_VARIABLES, *extra_vars, *_ENV.globals, *_JINJA_IMPLICIT}
    # One walk instead of jinja2.meta.find_undeclared_variables, which compiles
    # the template (most of `check`'s time on a 1,000-rule file). A name the
    # template assigns anywhere counts as declared everywhere: never a false alarm.
    for node in tree.find_all((nodes.Filter, nodes.Test, nodes.Name, nodes.Macro)):
        if isinstance(node, nodes.Filter):
            filters.add(node.name)
        elif isinstance(node, nodes.Test):
            tests.add(node.name)
        elif isinstance(node, nodes.Name):
            (loaded if node.ctx == "load" else declared).add(node.name)
        elif isinstance(node, nodes.Macro):
            declared.add(node.name)
    for kind, used, known in (("filter", filters, _ENV.filters), ("test", tests, _ENV.tests)):
        errors.extend(
            f"unknown template {kind} {name!r}{did_you_mean(name, known)}"
            for name in sorted(used - set(known) - REFUSED_FILTERS)
        )
    errors.extend(
        f"unknown template variable {name!r}{did_you_mean(name, declared)}"
        for name in sorted(loaded - declared)
    )
    return tuple(errors)


# -- what the bounds refuse that `check` can see in the source ------------------------

_INT_ARGUMENTS = {
    "center": ("width", MAX_WIDTH),
    "indent": ("width", MAX_WIDTH),
    "number": ("digits", MAX_DIGITS),
}


def _source_problems(tree: nodes.Template) -> list[str]:
    """What the bounds refuse that is visible before rendering: tags, filters, calls, constants."""
    problems: list[str] = []
    for node in tree.find_all((nodes.Filter, nodes.Call, nodes.For, nodes.Mod, *REFUSED_TAGS)):
        if isinstance(node, REFUSED_TAGS):
            tag = type(node).__name__.lower().replace("fromimport", "from")
            problems.append(f"line {node.lineno}: {{% {tag} %}} is not available in summaries")
        elif isinstance(node, nodes.For):
            if node.recursive:
                problems.append(
                    f"line {node.lineno}: recursive loops are not available in summaries"
                )
        elif isinstance(node, nodes.Filter):
            problems.extend(_filter_problems(node))
        elif isinstance(node, nodes.Call):
            problems.extend(_call_problems(node))
        elif isinstance(node, nodes.Mod) and _is_text(node.left):
            problem = printf_problem(str(node.left.as_const()))
            problems.extend([] if problem is None else [f"line {node.lineno}: {problem}"])
    return problems


def _filter_problems(node: nodes.Filter) -> list[str]:
    if node.name in REFUSED_FILTERS:
        why = "it can make text without bound"
        return [f"line {node.lineno}: template filter {node.name!r} is not available ({why})"]
    if node.name == "format" and isinstance(node.node, nodes.Const):
        problem = printf_problem(str(node.node.value))
        return [] if problem is None else [f"line {node.lineno}: {problem}"]
    if node.name not in _INT_ARGUMENTS:
        return []
    name, high = _INT_ARGUMENTS[node.name]
    given = [kw.value for kw in node.kwargs if kw.key == name] or node.args[:1]
    value = given[0].value if given and isinstance(given[0], nodes.Const) else None
    if isinstance(value, int) and not 0 <= value <= high:
        return [f"line {node.lineno}: {node.name} {name} {value} is out of range (0 to {high})"]
    return []


def _is_text(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Const) and isinstance(node.value, str)


def _call_problems(node: nodes.Call) -> list[str]:
    if isinstance(node.node, nodes.Getattr) and node.node.attr not in SAFE_METHODS:
        hint = " (use the filter)" if node.node.attr in FILTERS else ""
        return [f"line {node.lineno}: calling .{node.node.attr}() is not available{hint}"]
    if isinstance(node.node, nodes.Name) and node.node.name == "range":
        bounds = [arg.value for arg in node.args if isinstance(arg, nodes.Const)]
        if len(bounds) == len(node.args) and all(isinstance(b, int) for b in bounds):
            try:
                count = len(range(*bounds))
            except OverflowError:
                count = MAX_VALUE + 1
            except (TypeError, ValueError):
                return []
            if count > MAX_VALUE:
                return [f"line {node.lineno}: a range of more than {MAX_VALUE} numbers"]
    return []


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> Template | str:
    """The compiled template, or why it cannot compile (cached too: render is hot)."""
    if len(source) > MAX_SOURCE:  # not checked by `check`: a summary from the Python API
        return _TOO_LONG.format(len(source))
    try:
        template = _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    except TemplateError as exc:  # refused while compiling: a recursive loop
        return exc.message or type(exc).__name__
    except RecursionError:
        return _TOO_DEEP
    # Jinja layers a template's globals over the environment's in a ChainMap and
    # flattens it twice per render: more than half of a short summary's time.
    # The environment never changes after it is made, so one flat copy is the same.
    template.globals = dict(template.globals)
    return template


def render(source: str, context: Mapping[str, object], *, field: str = "summary") -> str:
    """Render a template; on any failure return the essentials prefixed by what failed."""
    template = _compiled(source)
    if isinstance(template, str):
        problem = template
    else:
        try:
            return bounded_render(template, context)
        except TemplateError as exc:
            problem = exc.message or type(exc).__name__
        # A template may fail in many more ways (a filter given text, a division
        # by zero); a broken template must never drop a notification.
        except Exception as exc:  # noqa: BLE001
            problem = f"{type(exc).__name__}: {exc}"
    if len(problem) > _MAX_PROBLEM:  # an exception may quote a whole (long) value
        problem = problem[: _MAX_PROBLEM - 3] + "..."
    return f"[template error in {field}: {problem}] {_essentials(context)}"


def _essentials(context: Mapping[str, object]) -> str:
    words = [str(context[k]) for k in ("rule", "severity", "target") if context.get(k)]
    words += [f"{k}={context[k]}" for k in ("component", "site") if context.get(k)]
    value = context.get("value")
    if isinstance(value, int | float):
        words.append(f"value={format_value(str(context.get('metric', '')), float(value))}")
    return " ".join(words)
