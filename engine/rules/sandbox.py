"""The bounded Jinja2 sandbox summaries render in: each render has a budget of steps and size.

Jinja's sandbox keeps a template from reaching outside (no `__class__`, no
mutation) but not from looping or allocating without end: a `{% for %}` inside
a `{% for %}`, `center(10**9)`, `a ~ a` doubled through a chain of `{% set %}`.
A summary renders on the daemon's tick and in the replay, so every render here
(docs/rules.md, "Summary templates") gets:

- a step budget (MAX_STEPS): each loop iteration costs the size of its body in
  template nodes, each macro call its body's size, and each call, filter,
  attribute lookup and operator one step more; a render past the budget stops;
- a size bound on every value a template makes (text and sequences: MAX_VALUE;
  integers: MAX_INT_BITS), checked before the allocation wherever the operation
  can predict its size (repetition, concatenation, padding, printf widths,
  `join`, `replace`) and after it otherwise, and a budget (MAX_CHARS) on all the
  text its expressions write, captured blocks and macros included;
- an allow-list of filters, globals and methods; everything else is refused,
  by `memalert check` where it can be seen in the source.

`bounded_render` renders within a fresh budget and refuses a result longer
than MAX_OUTPUT.
"""

from __future__ import annotations

import contextvars
import inspect
import math
import re
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, Undefined, nodes, pass_context, pass_environment
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS, make_attrgetter
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace
from jinja2.visitor import NodeTransformer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from jinja2 import Template
    from jinja2.compiler import Frame
    from jinja2.runtime import Context

MAX_SOURCE = 4096  # characters of template source
MAX_STEPS = 100_000
MAX_VALUE = 10_000  # characters of one text, items of one list
MAX_INT_BITS = 10_000
MAX_CHARS = 100_000  # characters written by all of a render's expressions
MAX_OUTPUT = 8192  # characters of the rendered result
MAX_WIDTH = 1000  # `center`, `indent`, printf widths and precisions
MAX_DIGITS = 20  # `number(digits)`

# Filters that stay within the bounds given bounded input, or are guarded below.
_ALLOWED_FILTERS = frozenset(
    {
        "abs", "capitalize", "center", "count", "d", "default", "dictsort", "filesizeformat",
        "first", "float", "format", "indent", "int", "items", "join", "last", "length", "list",
        "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round",
        "select", "selectattr", "sort", "string", "sum", "title", "trim", "truncate", "unique",
        "upper", "urlencode", "wordcount",
    }
)  # fmt: skip
REFUSED_FILTERS = frozenset(FILTERS) - _ALLOWED_FILTERS
"""Jinja's filters a summary may not use: each can make output without bound (or is HTML)."""

SAFE_METHODS = frozenset(
    {
        # str
        "capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha",
        "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "isupper", "lower",
        "lstrip", "partition", "removeprefix", "removesuffix", "rfind", "rpartition",
        "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
        "title", "upper",
        # dict, list, tuple
        "get", "index", "items", "keys", "values",
        # loop, cycler
        "changed", "cycle", "next", "reset",
    }
)  # fmt: skip
"""Methods a summary may call; the rest (`center`, `ljust`, `format`, `join`, ...) are refused."""
_METHOD_OWNERS = (str, dict, list, tuple, Cycler, LoopContext)
REFUSED_TAGS = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends, nodes.Block)

# Internal filters the budgeting transform inserts; not names a template can write.
_ITERATE, _CHARGE, _CONCAT = ":iterate", ":charge", ":concat"
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.)")


@dataclass
class _Budget:
    steps: int = MAX_STEPS
    chars: int = MAX_CHARS


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "memalert_template_budget", default=None
)


def _charge(steps: int = 1, chars: int = 0) -> None:
    budget = _BUDGET.get()
    if budget is None:
        return  # compile-time constant folding: bounded by the source itself
    budget.steps -= steps
    budget.chars -= chars
    if budget.steps < 0:
        raise SecurityError(f"the template takes more than {MAX_STEPS} steps")
    if budget.chars < 0:
        raise SecurityError(f"the template writes more than {MAX_CHARS} characters")


def _bounded(value: Any) -> Any:
    """`value` if it is within the size bounds; a SecurityError otherwise."""
    if isinstance(value, str | list | tuple | dict | set | frozenset) and len(value) > MAX_VALUE:
        raise SecurityError(f"a value of more than {MAX_VALUE} characters or items")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError("a number too large to compute")
    return value


def _too_long(size: int) -> None:
    if size > MAX_VALUE:
        raise SecurityError(f"a value of more than {MAX_VALUE} characters or items")


def printf_problem(spec: str) -> str | None:
    """Why a printf-style format string could make text without bound, or None."""
    for match in _PRINTF.finditer(spec):
        for number in match.group(1, 2):
            if number == "*":
                return "a '*' width in a format string"
            if number and int(number) > MAX_WIDTH:
                return f"a format width or precision over {MAX_WIDTH}"
    return None


def _printf(spec: str, values: Iterable[Any]) -> None:
    problem = printf_problem(spec)
    if problem is not None:
        raise SecurityError(problem)
    widest = max((len(str(v)) for v in values), default=0)
    _too_long(len(spec) + spec.count("%") * (widest + MAX_WIDTH))


def _int_argument(value: object, low: int, high: int, what: str) -> None:
    if isinstance(value, int) and not low <= value <= high:
        raise SecurityError(f"{what} {value} is out of range ({low} to {high})")


# -- filters ------------------------------------------------------------------------


def _guard(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Jinja's filter `name`, charging one step, its arguments checked, its result bounded."""
    check = _ARGUMENT_CHECKS.get(name)
    signature = inspect.signature(func) if check is not None else None

    def apply(*args: Any, **kwargs: Any) -> Any:
        _charge()
        if check is not None and signature is not None:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            check(bound.arguments)
        return _bounded(func(*args, **kwargs))

    apply.__dict__.update(getattr(func, "__dict__", {}))  # Jinja's pass_context & co. marks
    apply.__name__ = apply.__qualname__ = name
    return apply


def _check_center(arguments: Mapping[str, Any]) -> None:
    _int_argument(arguments["width"], 0, MAX_WIDTH, "center width")


def _check_indent(arguments: Mapping[str, Any]) -> None:
    width = arguments["width"]
    _int_argument(width, 0, MAX_WIDTH, "indent width")
    step = len(width) if isinstance(width, str) else int(width)
    text = str(arguments["s"])
    _too_long(len(text) + (text.count("\n") + 1) * step)


def _check_format(arguments: Mapping[str, Any]) -> None:
    _printf(str(arguments["value"]), (*arguments["args"], *arguments["kwargs"].values()))


def _check_number(arguments: Mapping[str, Any]) -> None:
    _int_argument(arguments["digits"], 0, MAX_DIGITS, "number digits")


def _check_sum(arguments: Mapping[str, Any]) -> None:
    if not isinstance(arguments["start"], int | float):
        raise SecurityError("sum starts from a number")


_ARGUMENT_CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "center": _check_center,
    "indent": _check_indent,
    "format": _check_format,
    "number": _check_number,
    "sum": _check_sum,
}


@pass_environment
def _join(environment: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    _charge()
    items = list(islice(value, MAX_VALUE + 1))
    _too_long(len(items))
    if attribute is not None:
        items = list(map(make_attrgetter(environment, attribute), items))
    texts = [str(item) for item in items]
    separator = str(d)
    _too_long(sum(map(len, texts)) + len(separator) * max(len(texts) - 1, 0))
    return separator.join(texts)


def _replace(s: object, old: object, new: object, count: int | None = None) -> str:
    _charge()
    text, old_text, new_text = str(s), str(old), str(new)
    found = len(text) + 1 if not old_text else text.count(old_text)
    if count is not None and count >= 0:
        found = min(found, count)
    _too_long(len(text) + found * max(len(new_text) - len(old_text), 0))
    return text.replace(old_text, new_text, -1 if count is None else count)


def _range(*args: int) -> range:
    _charge()
    numbers = range(*args)
    if len(numbers) > MAX_VALUE:
        raise SecurityError(f"a range of more than {MAX_VALUE} numbers")
    return numbers


# pass_context: Jinja never calls these at compile time to fold constants.
@pass_context
def _iterate(_context: Context, iterable: Iterable[Any], steps: int, chars: int) -> Iterator[Any]:
    for item in iterable:
        _charge(steps, chars)
        yield item


@pass_context
def _charge_filter(_context: Context, value: str, steps: int, chars: int) -> str:
    _charge(steps, chars)
    return value


@pass_context
def _concat(_context: Context, parts: list[Any]) -> str:
    _charge()
    texts: list[str] = []
    size = 0
    for part in parts:
        text = str(part)
        size += len(text)
        _too_long(size)
        texts.append(text)
    return "".join(texts)


def _finalize(value: object) -> str:
    # Every `{{ ... }}` passes here: inlined charging, as this is the hot path.
    text = value if type(value) is str else str(value)
    budget = _BUDGET.get()
    if budget is not None:
        budget.chars -= len(text)
        if budget.chars < 0:
            raise SecurityError(f"the template writes more than {MAX_CHARS} characters")
    return text


# -- the environment ------------------------------------------------------------------


def _size(body: Iterable[nodes.Node]) -> tuple[int, int]:
    """Nodes in `body`, and the characters of its literal text: what one run of it costs."""
    count = chars = 0
    for top in body:
        for node in (top, *top.find_all(nodes.Node)):
            count += 1
            if isinstance(node, nodes.TemplateData):
                chars += len(node.data)
    return count, chars


def _internal(
    name: str, value: nodes.Expr, cost: tuple[int, int] | None, lineno: int
) -> nodes.Filter:
    args: list[nodes.Expr] = [] if cost is None else [nodes.Const(n, lineno=lineno) for n in cost]
    return nodes.Filter(value, name, args, [], None, None, lineno=lineno)


class _Budgeting(NodeTransformer):
    """Rewrites a template so loops, macro bodies and `~` charge the render's budget."""

    def visit_For(self, node: nodes.For) -> nodes.For:  # noqa: N802 - Jinja's visitor names
        self.generic_visit(node)
        if node.recursive:
            raise SecurityError("recursive loops are not available in summaries")
        steps, chars = _size(node.body)
        iterable: Any = node.iter
        node.iter = _internal(_ITERATE, iterable, (steps + 1, chars), node.lineno)
        return node

    def visit_Macro(self, node: nodes.Macro) -> Any:  # noqa: N802 - Jinja's visitor names
        return self._charged(node)

    def visit_CallBlock(self, node: nodes.CallBlock) -> Any:  # noqa: N802 - Jinja's visitor names
        return self._charged(node)

    def _charged(self, node: Any) -> Any:
        self.generic_visit(node)
        charge = _internal(
            _CHARGE, nodes.Const("", lineno=node.lineno), _size(node.body), node.lineno
        )
        node.body.insert(0, nodes.Output([charge], lineno=node.lineno))
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:  # noqa: N802 - Jinja's visitor names
        self.generic_visit(node)
        return _internal(_CONCAT, nodes.List(node.nodes, lineno=node.lineno), None, node.lineno)


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:  # noqa: N802
        _Budgeting().visit(node)
        super().visit_Template(node, frame)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the budget and the allow-lists above (make one with `make_environment`)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def call_binop(self, context: Context, operator_name: str, left: Any, right: Any) -> Any:
        _charge()
        if operator_name == "**" and _power_bits(left, right) > MAX_INT_BITS:
            raise SecurityError("a power too large to compute")
        if operator_name == "*":
            for count, other in ((left, right), (right, left)):
                if isinstance(count, int) and isinstance(other, str | list | tuple):
                    _too_long(count * len(other))
        if operator_name == "+" and isinstance(left, str | list | tuple):
            _too_long(len(left) + len(right) if isinstance(right, str | list | tuple) else 0)
        if operator_name == "%" and isinstance(left, str):
            _printf(left, right.values() if isinstance(right, dict) else _as_tuple(right))
        return _bounded(super().call_binop(context, operator_name, left, right))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _charge()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _charge()
        return super().getitem(obj, argument)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _charge()
        if not (isinstance(obj, Undefined) or _callable_in_summary(obj)):
            raise SecurityError(f"calling {_name_of(obj)} is not available in summaries")
        return _bounded(super().call(context, obj, *args, **kwargs))


def _as_tuple(value: object) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)


def _power_bits(base: object, exponent: object) -> float:
    """About how many bits `base ** exponent` takes (0 when it cannot grow large)."""
    numbers = (int, float)
    if not isinstance(base, numbers) or not isinstance(exponent, numbers) or abs(base) <= 1:
        return 0.0
    return float(exponent) * math.log2(abs(base))


_GLOBALS: dict[str, Any] = {
    "range": _range,
    "dict": dict,
    "cycler": Cycler,
    "joiner": Joiner,
    "namespace": Namespace,
}
_CALLABLE_GLOBALS = frozenset(id(value) for value in _GLOBALS.values())


def _callable_in_summary(obj: object) -> bool:
    if isinstance(obj, Macro | Joiner) or id(obj) in _CALLABLE_GLOBALS:
        return True
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    return isinstance(owner, _METHOD_OWNERS) and name in SAFE_METHODS


def _name_of(obj: object) -> str:
    name = getattr(obj, "__name__", None)
    return f".{name}()" if isinstance(name, str) else type(obj).__name__


def make_environment(filters: Mapping[str, Callable[..., Any]]) -> BoundedEnvironment:
    """The environment with Jinja's allowed filters guarded, plus `filters` (memalert's own)."""
    env = BoundedEnvironment(autoescape=False, undefined=StrictUndefined, finalize=_finalize)
    env.globals.clear()
    env.globals.update(_GLOBALS)
    env.filters = {name: _guard(name, env.filters[name]) for name in _ALLOWED_FILTERS}
    env.filters.update(join=_join, replace=_replace)
    env.filters.update({name: _guard(name, func) for name, func in filters.items()})
    env.filters.update({_ITERATE: _iterate, _CHARGE: _charge_filter, _CONCAT: _concat})
    return env


def bounded_render(template: Template, context: Mapping[str, object]) -> str:
    """Render within a fresh budget; raise SecurityError past it or past MAX_OUTPUT.

    The budget bounds the text a render makes (MAX_CHARS, plus literal text
    charged by loops and macros), so the result is whole before its length is checked.
    """
    token = _BUDGET.set(_Budget())
    try:
        text = template.render(context)
    finally:
        _BUDGET.reset(token)
    if len(text) > MAX_OUTPUT:
        raise SecurityError(f"the result is longer than {MAX_OUTPUT} characters")
    return text
