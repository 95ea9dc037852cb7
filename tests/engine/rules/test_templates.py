"""Summary templates: checked at load, sandboxed, and never fatal when rendered."""

from __future__ import annotations

import pytest

from memalert.engine.core.metrics import SAMPLE_METRICS
from memalert.engine.rules.templates import render, template_errors
from memalert.engine.rules.values import TEMPLATE_VARIABLES, default_summary, format_value

CONTEXT: dict[str, object] = {
    "rule": "memory-leak",
    "metric": "leak_bytes",
    "severity": "warning",
    "state": "firing",
    "value": 100_000_000.0,
    "threshold": 52_428_800.0,
    "target": "api",
    "component": "cache",
    "site": "",
    "labels": {"target": "api", "component": "cache", "team": "core"},
    "growth": 5_242_880.0,
    "confidence": 0.93,
    "time_to_limit": 5400.0,
    "limit": 2 * 2**30,
    "firing_for": 90.0,
    "team": "core",
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("{{ value | bytes }}", "95.4 MiB", id="bytes"),
        pytest.param("{{ growth | bytes }}/h", "5.0 MiB/h", id="bytes-rate"),
        pytest.param("{{ confidence | percent }}", "93.0%", id="percent"),
        pytest.param("{{ time_to_limit | duration }}", "1h30m", id="duration"),
        pytest.param("{{ labels.team }} {{ team }}", "core core", id="labels"),
        pytest.param(
            "{% for k, v in labels | dictsort %}{{ k }}={{ v }} {% endfor %}",
            "component=cache target=api team=core ",
            id="loop",
        ),
        pytest.param("{{ missing_value | bytes }}", "n/a", id="none-is-na"),
        pytest.param(
            "{{ firing_for | number }} {{ confidence | number(1) }}", "90 0.9", id="number"
        ),
        pytest.param(
            "{% set n = namespace(sum=0) %}{% for i in range(4) %}{% set n.sum = n.sum + i %}"
            "{% endfor %}{{ n.sum }}",
            "6",
            id="jinja-globals",
        ),
    ],
)
def test_filters_and_variables_render(source: str, expected: str) -> None:
    assert render(source, {**CONTEXT, "missing_value": None}) == expected


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        pytest.param("{{ nope }}", "'nope' is undefined", id="undefined"),
        pytest.param("{{ value ", "line 1: unexpected end of template", id="syntax"),
        pytest.param("{{ value | nofilter }}", "line 1: No filter named 'nofilter'.", id="filter"),
        pytest.param("{{ value / 0 }}", "ZeroDivisionError: float division by zero", id="zerodiv"),
        pytest.param("{{ target | bytes }}", "ValueError: could not convert", id="text-as-bytes"),
        pytest.param(
            "{{ labels.clear() }}", "access to attribute 'clear' of 'dict'", id="immutable"
        ),
        pytest.param(
            "{{ ''.__class__.__mro__ }}", "access to attribute '__class__'", id="sandboxed"
        ),
        pytest.param("{{ 'x' * 1000000 }}", "a value of more than 10000", id="huge-string"),
        pytest.param("{{ (2 ** 999) ** 999 }}", "a power too large to compute", id="huge-power"),
    ],
)
def test_render_never_raises_and_says_what_failed(source: str, problem: str) -> None:
    text = render(source, CONTEXT)
    assert text.startswith(f"[template error in summary: {problem}")
    assert text.endswith("] memory-leak warning api component=cache value=95.4 MiB")


def test_the_fallback_keeps_whatever_essentials_exist() -> None:
    assert render("{{ growth | bytes }}", {"rule": "r", "metric": "pressure", "value": 0.5}) == (
        "[template error in summary: 'growth' is undefined] r value=50.0%"
    )
    assert render("{{ x }}", {}, field="title") == "[template error in title: 'x' is undefined] "


def test_rendering_is_cached_and_repeatable() -> None:
    source = "{{ target }} {{ value | bytes }}"
    first = [render(source, {**CONTEXT, "value": float(i)}) for i in range(1000)]
    assert first[1023 % 1000] == "api 23 B"
    assert render(source, CONTEXT) == "api 95.4 MiB"


@pytest.mark.parametrize(
    ("source", "extra", "errors"),
    [
        pytest.param("{{ target }} leaks {{ value | bytes }}", (), [], id="ok"),
        pytest.param("{{ team }}", ("team",), [], id="rule-label"),
        pytest.param(
            "{{ team }}",
            (),
            ["unknown template variable 'team'"],
            id="label-not-declared",
        ),
        pytest.param(
            "{{ grwoth | bytes }}",
            (),
            ["unknown template variable 'grwoth'; did you mean 'growth'?"],
            id="typo",
        ),
        pytest.param(
            "{{ value | byte }} {% if component is defind %}{% endif %}",
            (),
            [
                "unknown template filter 'byte'; did you mean 'bytes'?",
                "unknown template test 'defind'; did you mean 'defined'?",
            ],
            id="filter-and-test",
        ),
        pytest.param(
            "{{ target ",
            (),
            [
                (
                    "template syntax error on line 1: unexpected end of template, expected "
                    "'end of print statement'."
                )
            ],
            id="syntax",
        ),
        pytest.param(
            "ok\n{% endif %}",
            (),
            ["template syntax error on line 2: Encountered unknown tag 'endif'."],
            id="stray-end-tag",
        ),
        pytest.param(
            "{% set t = target %}{% for x in range(3) %}{{ t }}{{ x }}{{ loop.index }}"
            "{% endfor %}{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1) }}",
            (),
            [],
            id="template-local-names",
        ),
    ],
)
def test_template_errors(source: str, extra: tuple[str, ...], errors: list[str]) -> None:
    assert template_errors(source, extra) == errors


def test_every_template_variable_is_accepted() -> None:
    source = " ".join(f"{{{{ {name} }}}}" for name in sorted(TEMPLATE_VARIABLES))
    assert template_errors(source) == []


@pytest.mark.parametrize(
    ("metric", "value", "shown"),
    [
        pytest.param("rss_bytes", 100_000_000, "95.4 MiB", id="bytes"),
        pytest.param("leak_growth_bytes_per_hour", 2**20, "1.0 MiB/h", id="rate"),
        pytest.param("pressure", 0.834, "83.4%", id="ratio"),
        pytest.param("leak_confidence", 0.5, "50.0%", id="confidence"),
        pytest.param("psi_some_avg10", 12.34, "12.3%", id="psi"),
        pytest.param("time_to_limit_seconds", 5400, "1h30m", id="seconds"),
        pytest.param("up", 1, "1", id="count"),
        pytest.param("component_allocations", 1500, "1500", id="allocations"),
        pytest.param("custom_bytes", 2048, "2.0 KiB", id="unknown-bytes"),
        pytest.param("custom_seconds", 90, "1m30s", id="unknown-seconds"),
        pytest.param("custom", 0.25, "0.25", id="unknown"),
    ],
)
def test_format_value(metric: str, value: float, shown: str) -> None:
    assert format_value(metric, value) == shown


@pytest.mark.parametrize("metric", sorted(SAMPLE_METRICS))
def test_default_summary_renders_for_every_metric(metric: str) -> None:
    assert template_errors(default_summary(metric)) == []
    full = render(default_summary(metric), {**CONTEXT, "metric": metric, "value": 0.5})
    assert not full.startswith("[template error")
    assert full.startswith(f"memory-leak warning firing: {metric} of api (component cache) is ")
    bare = render(
        default_summary(metric),
        {"rule": "r", "severity": "critical", "metric": metric, "target": "t", "value": 1.0},
    )
    assert bare == f"r critical: {metric} of t is {format_value(metric, 1.0)}"


def test_default_summary_shows_the_threshold_in_the_metric_unit() -> None:
    assert render(default_summary("leak_bytes"), CONTEXT) == (
        "memory-leak warning firing: leak_bytes of api (component cache) is 95.4 MiB "
        "(threshold 50.0 MiB)"
    )
