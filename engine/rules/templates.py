"""Message templates: one sandboxed Jinja2 environment, checked at load, never fatal at send.

Summaries are written by the people who own the rule file, but they are still
rendered inside the daemon thousands of times per tick, so the environment is
sandboxed and immutable, bounds the operators that can allocate without limit,
and caches compiled templates. `render` never raises: a notification with a
broken template still goes out, saying what failed and the essentials.
"""

from __future__ import annotations

import difflib
import functools
import math
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from memalert.engine.core.metrics import SAMPLE_METRICS, Unit
from memalert.engine.core.units import format_bytes, format_duration, format_percent

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from jinja2.runtime import Context

TEMPLATE_VARIABLES: frozenset[str] = frozenset(
    {
        "rule",
        "metric",
        "severity",
        "state",
        "value",
        "threshold",
        "target",
        "component",
        "site",
        "labels",  # dict: the sample's labels plus the rule's labels
        "growth",  # leak growth, bytes per hour
        "confidence",  # leak confidence, 0..1
        "time_to_limit",  # seconds
        "limit",  # bytes
        "firing_for",  # seconds
    }
)
"""What a summary may use, besides the keys of the rule's own `labels`."""

# Names Jinja defines inside loops, macros and call blocks.
_JINJA_IMPLICIT = frozenset({"loop", "caller", "varargs", "kwargs"})
_MAX_REPEAT = 10_000
_MAX_POWER_BITS = 10_000


def _none_as_na(format_number: Callable[[float], str]) -> Callable[[float | None], str]:
    """Filters show `n/a` for a value the engine does not have yet (growth before a trend)."""

    def apply(value: float | None) -> str:
        return "n/a" if value is None else format_number(float(value))

    return apply


def _power_bits(base: object, exponent: object) -> float:
    """About how many bits `base ** exponent` takes (0 when it cannot grow large)."""
    numbers = (int, float)
    if not isinstance(base, numbers) or not isinstance(exponent, numbers) or abs(base) <= 1:
        return 0.0
    return float(exponent) * math.log2(abs(base))


def _number(value: float | None, digits: int | None = None) -> str:
    """`1500` -> `1500`; with `digits`, that many decimals: `number(1)` -> `12.3`."""
    if value is None:
        return "n/a"
    return f"{float(value):g}" if digits is None else f"{float(value):.{digits}f}"


class _Environment(ImmutableSandboxedEnvironment):
    """Refuses `'x' * 10**9`-style expressions that would exhaust memory mid-tick."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**" and _power_bits(left, right) > _MAX_POWER_BITS:
            raise SecurityError("a power too large to compute")
        if operator_name == "*":
            for count, other in ((left, right), (right, left)):
                repeats = isinstance(count, int) and isinstance(other, str | list | tuple)
                if repeats and count * len(other) > _MAX_REPEAT:
                    raise SecurityError("repetition is too long")
        return super().call_binop(context, operator_name, left, right)


def _make_environment() -> _Environment:
    env = _Environment(autoescape=False, undefined=StrictUndefined)
    env.filters["bytes"] = _none_as_na(format_bytes)
    env.filters["percent"] = _none_as_na(format_percent)
    env.filters["duration"] = _none_as_na(format_duration)
    env.filters["number"] = _number
    return env


_ENV = _make_environment()


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
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        return (f"template syntax error on line {exc.lineno}: {exc.message}",)
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
    errors: list[str] = []
    for kind, used, known in (("filter", filters, _ENV.filters), ("test", tests, _ENV.tests)):
        errors.extend(
            f"unknown template {kind} {name!r}{_did_you_mean(name, known)}"
            for name in sorted(used - set(known))
        )
    errors.extend(
        f"unknown template variable {name!r}{_did_you_mean(name, declared)}"
        for name in sorted(loaded - declared)
    )
    return tuple(errors)


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> Template | str:
    """The compiled template, or why it cannot compile (cached too: render is hot)."""
    try:
        template = _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
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
            return template.render(context)
        except TemplateError as exc:
            problem = exc.message or type(exc).__name__
        # A template may fail in many more ways (a filter given text, a division
        # by zero); a broken template must never drop a notification.
        except Exception as exc:  # noqa: BLE001
            problem = f"{type(exc).__name__}: {exc}"
    return f"[template error in {field}: {problem}] {_essentials(context)}"


def _essentials(context: Mapping[str, object]) -> str:
    words = [str(context[k]) for k in ("rule", "severity", "target") if context.get(k)]
    words += [f"{k}={context[k]}" for k in ("component", "site") if context.get(k)]
    value = context.get("value")
    if isinstance(value, int | float):
        words.append(f"value={format_value(str(context.get('metric', '')), float(value))}")
    return " ".join(words)


def format_value(metric: str, value: float) -> str:
    """A metric's value as people read it: `95.4 MiB`, `83.0%`, `2h5m`, `12/h`, `3`."""
    unit = _unit_of(metric)
    if unit is Unit.BYTES:
        return format_bytes(value)
    if unit is Unit.BYTES_PER_HOUR:
        return f"{format_bytes(value)}/h"
    if unit is Unit.RATIO:
        return format_percent(value)
    if unit is Unit.PERCENT:
        return f"{_number(value, 1)}%"
    if unit is Unit.SECONDS:
        return format_duration(value)
    return _number(value)


def _unit_of(metric: str) -> Unit:
    info = SAMPLE_METRICS.get(metric)
    if info is not None:
        return info.unit
    if metric.endswith("_bytes"):
        return Unit.BYTES
    if metric.endswith("_seconds"):
        return Unit.SECONDS
    return Unit.COUNT


_VALUE_FILTERS = {
    Unit.BYTES: " | bytes",
    Unit.BYTES_PER_HOUR: " | bytes ~ '/h'",
    Unit.RATIO: " | percent",
    Unit.SECONDS: " | duration",
    Unit.PERCENT: " | number(1) ~ '%'",
    Unit.COUNT: " | number",
}


@functools.lru_cache(maxsize=64)
def default_summary(metric: str) -> str:
    """The summary template for a rule without one, with values in the metric's unit."""
    shown = _VALUE_FILTERS[_unit_of(metric)]
    return (
        "{{ rule }} {{ severity }}{% if state is defined %} {{ state }}{% endif %}: "
        "{{ metric }} of {{ target }}"
        "{% if component is defined and component %} (component {{ component }}){% endif %}"
        "{% if site is defined and site %} (site {{ site }}){% endif %}"
        f" is {{{{ value{shown} }}}}"
        "{% if threshold is defined and threshold is not none %}"
        f" (threshold {{{{ threshold{shown} }}}}){{% endif %}}"
    )
