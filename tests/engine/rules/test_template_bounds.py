"""Summary templates are bounded: each hostile one is refused by `check` or renders within bounds.

Before the budgeted sandbox, each of these either never finished (nested loops,
recursion through macros) or allocated gigabytes (`center(10**9)`, a `~` chain
doubled through `{% set %}`); here each must come back as a `[template error ...]`
message or a short text, with a bounded peak of memory.
"""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memalert.engine.rules.sandbox import MAX_OUTPUT
from memalert.engine.rules.templates import render, template_errors

CONTEXT: dict[str, object] = {
    "rule": "r",
    "severity": "warning",
    "target": "t",
    "metric": "rss_bytes",
    "value": 1.0,
    "labels": {"team": "core"},
}
FALLBACK = " r warning t value=1 B"
PEAK_BYTES = 64 * 2**20

HOSTILE = {
    "nested-loops": "{% for a in range(9999) %}{% for b in range(9999) %}{% endfor %}{% endfor %}",
    "nested-loops-output": (
        "{% for a in range(9999) %}{% for b in range(9999) %}x{% endfor %}{% endfor %}"
    ),
    "loops-over-text": (
        "{% set s = 'x' * 9999 %}{% for a in s %}{% for b in s %}{% for c in s %}"
        "{% endfor %}{% endfor %}{% endfor %}"
    ),
    "loops-skipping": (
        "{% set s = 'x' * 9999 %}{% for a in s if a == 'q' %}{% for b in s if b == 'q' %}"
        "{% endfor %}{% endfor %}"
    ),
    "huge-range": "{% for a in range(10 ** 8) %}{% endfor %}",
    "center-literal": "{{ 'x' | center(1000000000) }}",
    "center-computed": "{{ 'x' | center(10 ** 9) }}",
    "indent": "{{ 'x\ny' | indent(10 ** 9) }}",
    "format-width": "{{ '%1000000000d' | format(1) }}",
    "format-star": "{{ '%*d' | format(10 ** 9, 1) }}",
    "printf-operator": "{{ '%0999999999d' % 1 }}",
    "number-digits": "{{ value | number(10 ** 9) }}",
    "join": "{{ range(9999) | join('x' * 9999) }}",
    "replace": "{{ 'ab' | replace('', 'x' * 9000) }}",
    "concat-doubling": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s | length }}"
    ),
    "plus-doubling": "{% set a = 'x' * 9000 %}{% set b = a + a %}{% set c = b + b %}{{ c }}",
    "int-squaring": (
        "{% set a = 2 ** 9000 %}{% set b = a * a %}{% set c = b * b %}{% set d = c * c %}{{ d }}"
    ),
    "macro-fork": "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "macro-loop": (
        "{% macro f() %}{% for i in range(9999) %}{{ i }}{% endfor %}{% endmacro %}"
        "{% for j in range(9999) %}{% set x = f() %}{% endfor %}"
    ),
    "captured-block": (
        "{% set s %}{% for i in range(9999) %}{{ 'y' * 9000 }}{% endfor %}{% endset %}{{ s }}"
    ),
    "literal-in-loop": "{% for i in range(9999) %}" + "z" * 3000 + "{% endfor %}",
    "method-center": "{{ 'x'.center(1000000000) }}",
    "method-format": "{{ '{:>1000000000}'.format(1) }}",
    "batch": "{{ [1] | batch(1000000000, 'x') | list }}",
    "recursive-loop": "{% for x in [[1]] recursive %}{{ loop(x) }}{% endfor %}",
    "sum-of-lists": "{{ [[1] * 9999] * 9999 | sum(start=[]) }}",
    "long-output": "{% for i in range(999) %}{{ 'y' * 99 }}{% endfor %}",
    "include": "{% include 'other' %}",
    "error-quoting-the-value": "{{ ('ab' * 4000) | bytes }}",
    "deep-parentheses": "{{ " + "(" * 1500 + "1" + ")" * 1500 + " }}",
    "deep-tags": "{% if 1 %}" * 300 + "{% endif %}" * 300,
}


def _render_measured(source: str) -> tuple[str, int]:
    tracemalloc.start()
    try:
        text = render(source, CONTEXT)
        return text, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_templates_are_refused_or_stop_within_bounds(source: str) -> None:
    text, peak = _render_measured(source)
    assert text.startswith("[template error in summary: ")
    assert text.endswith(FALLBACK)
    assert len(text) < 300
    assert peak < PEAK_BYTES


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        pytest.param(HOSTILE["center-literal"], "center width 1000000000 is out of range"),
        pytest.param(HOSTILE["format-width"], "a format width or precision over 1000"),
        pytest.param(HOSTILE["format-star"], "a '*' width in a format string"),
        pytest.param(HOSTILE["printf-operator"], "a format width or precision over 1000"),
        pytest.param("{{ value | number(99) }}", "number digits 99 is out of range"),
        pytest.param("{% for i in range(100000) %}{% endfor %}", "a range of more than 10000"),
        pytest.param(HOSTILE["method-center"], "calling .center() is not available"),
        pytest.param(HOSTILE["batch"], "template filter 'batch' is not available"),
        pytest.param("{{ 'x' | wordwrap(1) }}", "template filter 'wordwrap' is not available"),
        pytest.param(HOSTILE["recursive-loop"], "recursive loops are not available"),
        pytest.param(HOSTILE["include"], "{% include %} is not available"),
        pytest.param("x" * 5000, "a template longer than 4096 characters"),
        pytest.param(HOSTILE["deep-parentheses"], "a template nested too deeply"),
    ],
)
def test_check_refuses_what_the_source_shows(source: str, problem: str) -> None:
    assert any(problem in error for error in template_errors(source))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("{{ 'x' | center(5) }}|", "  x  |", id="center"),
        pytest.param("{{ '%5.1f' | format(value) }}", "  1.0", id="format"),
        pytest.param("{{ '%s-%s' % (target, rule) }}", "t-r", id="printf"),
        pytest.param("{{ labels.items() | list | length }}", "1", id="method"),
        pytest.param("{{ [target, rule] | join(', ') }}", "t, r", id="join"),
        pytest.param("{{ target | replace('t', 'tt') }}", "tt", id="replace"),
        pytest.param("{{ target ~ '/' ~ rule }}", "t/r", id="concat"),
        pytest.param(
            "{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}", "aba", id="cycle"
        ),
        pytest.param("{{ ('y' * 8000) | length }}", "8000", id="long-but-within"),
    ],
)
def test_ordinary_templates_still_render(source: str, expected: str) -> None:
    assert template_errors(source) == []
    assert render(source, CONTEXT) == expected


def test_the_result_is_capped() -> None:
    text = render("{{ 'y' * 9000 }}", CONTEXT)
    problem = f"the result is longer than {MAX_OUTPUT} characters"
    assert text == f"[template error in summary: {problem}]{FALLBACK}"


# -- fuzz ---------------------------------------------------------------------------------

_numbers = st.sampled_from(["3", "999", "9999", "10 ** 9", "-5", "value", "2 ** 9000"])
_texts = st.sampled_from(["target", "'x' * 9999", "'%0999d'", "rule ~ rule", "labels"])
_filters = st.sampled_from(
    ["center", "indent", "number", "join", "replace('', 'ab')", "format", "list", "length"]
)


@st.composite
def _expressions(draw: st.DrawFn) -> str:
    base = draw(st.one_of(_numbers, _texts))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["filter", "binop", "concat"]))
        if kind == "filter":
            name = draw(_filters)
            argument = f"({draw(_numbers)})" if "(" not in name and draw(st.booleans()) else ""
            base = f"({base}) | {name}{argument}"
        else:
            operator = "~" if kind == "concat" else draw(st.sampled_from(["*", "+", "%", "**"]))
            base = f"({base}) {operator} ({draw(st.one_of(_numbers, _texts))})"
    return base


@st.composite
def _templates(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["output", "loop", "set", "macro", "text"]))
        if kind == "loop" and depth < 3:
            body = draw(_templates(depth + 1))
            parts.append(f"{{% for i{depth} in range({draw(_numbers)}) %}}{body}{{% endfor %}}")
        elif kind == "set":
            parts.append(f"{{% set v = {draw(_expressions())} %}}{{{{ v }}}}")
        elif kind == "macro" and depth < 2:
            parts.append(
                f"{{% macro m() %}}{draw(_templates(depth + 1))}{{{{ m() }}}}{{% endmacro %}}"
                "{{ m() }}"
            )
        elif kind == "text":
            parts.append("z" * draw(st.sampled_from([1, 100, 3000])))
        else:
            parts.append(f"{{{{ {draw(_expressions())} }}}}")
    return "".join(parts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_templates())
def test_generated_templates_never_raise_and_stay_bounded(source: str) -> None:
    assert isinstance(template_errors(source), list)
    text, peak = _render_measured(source)
    assert len(text) <= MAX_OUTPUT
    assert peak < PEAK_BYTES
