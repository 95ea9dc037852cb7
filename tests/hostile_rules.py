"""Hostile rule files for the fuzz test and bench/hostile_fuzz.py: one generator, two drivers.

A valid file with one to four hostile changes: templates that loop, pad or
concatenate without bound; durations, sizes and times that are huge, tiny,
negative or not numbers; deep nesting; values of the wrong type; backtracking
regular expressions and odd pids. `pick(options)` chooses one option: Hypothesis'
`data.draw(sampled_from(...))` in the test, `random.Random.choice` in the bench.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

Pick = Callable[[Sequence[Any]], Any]

OBSERVATIONS = "".join(
    json.dumps({"ts": 1_700_000_000 + 15 * i, "target": "api", "metrics": {"rss_bytes": v}}) + "\n"
    for i, v in enumerate([40e6, 60e6, 80e6, 120e6, 160e6, 200e6, 90e6, 30e6] * 3)
)
"""A short replay (6 minutes) that crosses both thresholds of the base file."""

DURATIONS: tuple[object, ...] = (
    "100000000000000s", "0.0001ms", "1ms", "999ms", "0", 0, -5, "-5s", 1e308, 10**30,
    "9999999999w", "1e3s", "1h30m", ".inf", float("inf"), float("nan"), True, None, [], {},
    "∞", "15s" * 500, "1" * 5000 + "s",
)  # fmt: skip
SIZES: tuple[object, ...] = (
    "1e400", "8388609TiB", "8388608TiB", -1, 10**100, "50MiB", 0.5, "1e-300", ".nan",
    float("inf"), True, "∞MiB", "50 PiB", "9" * 400 + "MiB", [], {"a": 1},
)  # fmt: skip
TIMES: tuple[object, ...] = (
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00Z", "1969-01-01T00:00:00Z",
    "2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "not a time", 12345, None, "9" * 60,
)  # fmt: skip
TEMPLATES: tuple[str, ...] = (
    "{% for a in range(9999) %}{% for b in range(9999) %}{% endfor %}{% endfor %}",
    "{% for a in range(9999) %}{% for b in range(9999) %}x{% endfor %}{% endfor %}",
    "{{ 'x' | center(10 ** 9) }}",
    "{{ 'x' | center(1000000000) }}",
    "{{ '%1000000000d' | format(1) }}",
    "{{ '%*d' % (10 ** 9, 1) }}",
    "{{ value | number(10 ** 9) }}",
    "{{ range(9999) | join('x' * 9999) }}",
    (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s }}"
    ),
    "{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}",
    "{{ 'x'.ljust(10 ** 9) }}",
    "{{ lipsum(10 ** 6) }}",
    "{{ [1] | batch(10 ** 9, 'x') | list }}",
    "{% for x in [[1]] recursive %}{{ loop(x) }}{% endfor %}",
    "{{ ('ab' * 4000) | bytes }}",
    "{% for i in range(999) %}{{ 'y' * 999 }}{% endfor %}",
    "{{ " + "target ~ " * 300 + "'' }}",
    "{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}",
    "{% if 1 %}" * 300 + "{% endif %}" * 300,
    "{{ value | bytes }} of {{ target }}",
    "{{ " * 200,
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
)
PIDS: tuple[object, ...] = (10**30, -1, 0, "٣٤", "${NOPE}", "12abc", 2**63, 1.5, True)
REGEXES: tuple[str, ...] = ("(a+)+$", "a{99999999999}", "(" * 1000, "(?P<x>", "[z-a]")
ODD: tuple[object, ...] = (12, [], {}, None, True, "x" * 10000, [[[[1]]]], -0.0, "\udcff")


def _base() -> dict[str, Any]:
    return {
        "version": 1,
        "interval": "15s",
        "repeat_interval": "1h",
        "targets": [{"name": "api", "pid": 1}],
        "rules": [
            {
                "name": "rss",
                "metric": "rss_bytes",
                "above": {"warning": "50MiB", "critical": "150MiB"},
                "for": "15s",
                "keep_firing_for": "0s",
                "summary": "{{ target }} at {{ value | bytes }}",
            }
        ],
        "silences": [
            {
                "match": {"rule": "rss", "severity": "critical"},
                "starts": "2026-01-01T00:00:00Z",
                "ends": "2026-01-02T00:00:00Z",
            }
        ],
    }


def _nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return "{a: " * depth + "1" + "}" * depth


def _mutate(doc: dict[str, Any], pick: Pick) -> str | None:
    """Change `doc` in place; or return replacement YAML text for the `labels` value."""
    rule = doc["rules"][0]
    kind = pick(("template", "duration", "size", "time", "nesting", "odd", "pid", "regex"))
    if kind == "template":
        rule["summary"] = pick(TEMPLATES)
    elif kind == "duration":
        where = pick(("interval", "repeat_interval", "for", "keep_firing_for"))
        (doc if "interval" in where else rule)[where] = pick(DURATIONS)
    elif kind == "size":
        rule[pick(("above", "recover"))] = {pick(("warning", "critical")): pick(SIZES)}
    elif kind == "time":
        doc["silences"][0][pick(("starts", "ends"))] = pick(TIMES)
    elif kind == "nesting":
        return _nested(pick((50, 500, 5000)), pick(("list", "map")))
    elif kind == "odd":
        key = pick(("name", "metric", "summary", "for", "labels", "where", "notify", "above"))
        rule[key] = pick(ODD)
    elif kind == "pid":
        doc["targets"][0]["pid"] = pick(PIDS)
    else:
        doc["targets"][0] = {"name": "api", "process": {"cmdline": pick(REGEXES)}}
    return None


def hostile_rule_file(pick: Pick) -> bytes:
    """The bytes of one hostile rule file (a lone surrogate stays: not UTF-8 is hostile too)."""
    doc = _base()
    nesting = None
    for _ in range(pick((1, 1, 2, 4))):
        nesting = _mutate(doc, pick) or nesting
    # JSON is YAML: every value (NaN and infinities included) has one exact spelling.
    text = json.dumps(doc, ensure_ascii=False).replace("NaN", ".nan")
    text = text.replace("-Infinity", "-.inf").replace("Infinity", ".inf")
    if nesting is not None:
        text = text.replace('"rss", "metric"', f'"rss", "labels": {nesting}, "metric"', 1)
    return text.encode("utf-8", "surrogatepass")


# What a clean answer of `check` or `dry-run` looks like, line by line: diagnostics
# (errors and warnings) at FILE:LINE:COL, problems of no file, and the counts.
CLEAN_LINE = re.compile(r"(.+:\d+:\d+: .+|error: .+|\d+ error\(s\)|\d+ warning\(s\): .+)\Z")
