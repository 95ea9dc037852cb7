"""`memalert check` on 1,000+ generated malformed rule files: Diagnostics, never a crash.

Documents are built to be plausible (a valid file with a few mutations: wrong
types, unknown keys, bad units, swapped thresholds, huge numbers, odd text),
plus random text and bytes, deep nesting, alias bombs and mangled YAML text.
Whatever `check_paths` says, `load_rules` must agree with it.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memalert.engine.core.errors import Diagnostic, RuleFileError
from memalert.engine.rules.load import check_paths, load_rules

if TYPE_CHECKING:
    from pathlib import Path

BASE: dict[str, Any] = {
    "version": 1,
    "interval": "15s",
    "targets": [
        {"name": "api", "process": {"cmdline": "uvicorn .*api"}, "children": True},
        {"name": "host", "system": True},
        {"name": "app", "pidfile": "${APP_PIDFILE}"},
    ],
    "rules": [
        {
            "name": "memory-leak",
            "metric": "leak_bytes",
            "where": {"component": "*"},
            "above": {"warning": "50MiB", "critical": "100MiB"},
            "for": "1m",
            "keep_firing_for": "2m",
            "recover": {"warning": "40MiB", "critical": "90MiB"},
            "labels": {"team": "core"},
            "summary": "{{ target }} leaks {{ value | bytes }} ({{ growth | bytes }}/h)",
            "notify": ["oncall"],
        },
        {
            "name": "pressure",
            "metric": "pressure",
            "above": {"warning": 0.5, "critical": 0.8},
        },
        {
            "name": "ttl",
            "metric": "time_to_limit_seconds",
            "below": {"warning": "1d", "critical": "2h"},
        },
    ],
    "notifiers": {"oncall": {"urls": ["${SLACK_WEBHOOK_URL}", "console://"]}},
    "routes": [
        {
            "match": {"severity": "critical"},
            "notify": ["oncall"],
            "continue": True,
            "group_by": ["target", "rule"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "1h",
        }
    ],
    "repeat_interval": "4h",
    "silences": [
        {
            "match": {"target": "batch"},
            "starts": "2026-12-01T00:00:00Z",
            "ends": "2026-12-01T02:00:00Z",
        }
    ],
}
BASE_TEXT = yaml.safe_dump(BASE, sort_keys=False)

KEYS = sorted(
    {"name", "metric", "above", "below", "warning", "critical", "for", "recover", "where"}
    | {"labels", "summary", "notify", "urls", "match", "starts", "ends", "pid", "version"}
)
ODD_TEXT = [
    *("50MiB", "1e400MiB", "-5m", "0s", "5x", "1.5.5GB", "80%", ".inf", "${X}", "${", "!", "*"),
    *("", "{{ x", "{{ value | nope }}", "xoxb-1234567890-abc", "(", "a{99999999999}", "(" * 999),
    *("https://hooks.slack.com/services/T0123/B0123/abcdefghijkl", "2026-13-45T99:00:00Z"),
    *("rss_bytes", "leak_bytes", "up", "warning", "critical", "oncall", "console", "mem*"),
]
ODD_NUMBERS = [10**400, -(10**400), 2**63, -1, 0, 0.0, -0.0, 1e308, float("inf"), float("nan")]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(ODD_TEXT),
    st.sampled_from(ODD_NUMBERS),
)
# Where units, thresholds, times and patterns are read.
HOT_PATHS = [
    ("interval",),
    ("repeat_interval",),
    ("targets", 0, "process", "cmdline"),
    ("targets", 2, "pidfile"),
    *[("rules", 0, key) for key in ("for", "keep_firing_for", "summary", "metric", "notify")],
    *[
        ("rules", 0, section, level)
        for section in ("above", "recover")
        for level in ("warning", "critical")
    ],
    ("rules", 0, "where", "component"),
    ("rules", 1, "above", "warning"),
    ("rules", 2, "below", "critical"),
    ("silences", 0, "starts"),
    ("routes", 0, "match", "severity"),
    *[("routes", 0, key) for key in ("group_by", "group_wait", "group_interval")],
    ("routes", 0, "group_by", 0),
]
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), inner, max_size=4),
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    """The valid BASE with one to five mutations, dumped as YAML."""
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        path = draw(st.sampled_from(_paths(doc)[1:]))
        parent = _parent(doc, path)
        action = draw(st.sampled_from(["replace", "replace", "delete", "add-key", "swap", "copy"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "add-key" and isinstance(parent[path[-1]], dict):
            key = draw(st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=12)))
            parent[path[-1]][key + draw(st.sampled_from(["", "s", "_"]))] = draw(VALUES)
        elif action == "swap" and isinstance(parent[path[-1]], dict):
            values = list(parent[path[-1]].values())
            parent[path[-1]] = dict(zip(parent[path[-1]], reversed(values), strict=True))
        elif action == "copy" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
    return yaml.safe_dump(doc, sort_keys=draw(st.booleans())).encode()


@st.composite
def odd_values_in_hot_places(draw: st.DrawFn) -> bytes:
    """The valid BASE with odd scalars where units, thresholds and patterns are read."""
    doc = copy.deepcopy(BASE)
    odd = st.one_of(st.sampled_from(ODD_NUMBERS), st.sampled_from(ODD_TEXT), SCALARS)
    for path in draw(st.lists(st.sampled_from(HOT_PATHS), min_size=1, max_size=4)):
        _parent(doc, path)[path[-1]] = draw(odd)
    return yaml.safe_dump(doc, sort_keys=False).encode()


@st.composite
def mangled_text(draw: st.DrawFn) -> bytes:
    """BASE_TEXT with characters inserted, deleted or replaced at random places."""
    text = BASE_TEXT
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        cut = draw(st.integers(min_value=0, max_value=8))
        insert = draw(st.text(alphabet=":-[]{}&*!|>'\"#%@`\t\n ,?~\\x0", max_size=4))
        text = text[:at] + insert + text[at + cut :]
    return text.encode()


@st.composite
def hostile_yaml(draw: st.DrawFn) -> bytes:
    """Deep nesting, alias bombs, recursive aliases, tags, several documents."""
    depth = draw(st.integers(min_value=1, max_value=3000))
    width = draw(st.integers(min_value=2, max_value=12))
    levels = draw(st.integers(min_value=1, max_value=9))
    bomb = ["version: 1", "a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    bomb += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    choices = [
        "[" * depth + "]" * depth,
        "version: 1\nrules: " + "{a: " * depth + "1" + "}" * depth,
        "- " * depth + "x",
        "\n".join(bomb),
        "version: 1\nrules: &r [*r]",
        "version: 1\nrules:\n  - &x {name: a, metric: up, below: {warning: 1}}\n  - *x",
        "version: !!python/object:os.system 1",
        "version: 1\n---\nversion: 1",
        "version: 1\nversion: 1",
        "version: 1\nrules:\n  <<: *missing",
    ]
    return draw(st.sampled_from(choices)).encode()


FILES = st.one_of(
    mutated_documents(),
    mutated_documents(),
    odd_values_in_hot_places(),
    odd_values_in_hot_places(),
    mangled_text(),
    hostile_yaml(),
    st.text(max_size=200).map(str.encode),
    st.binary(max_size=200),
)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(
    max_examples=1100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(content=FILES)
def test_check_reports_diagnostics_and_never_crashes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(content)
    diagnostics = check_paths([path])
    assert isinstance(diagnostics, list)
    for diagnostic in diagnostics:
        assert isinstance(diagnostic, Diagnostic)
        assert diagnostic.file == str(path)
        assert diagnostic.line >= 1
        assert diagnostic.col >= 1
        assert diagnostic.message.strip()
        assert "Traceback" not in diagnostic.message
    if diagnostics:
        with pytest.raises(RuleFileError) as caught:
            load_rules([path], env=None)
        assert list(caught.value.diagnostics) == diagnostics
    else:
        assert load_rules([path], env=None).files == (str(path),)


def test_the_base_document_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "base.yaml"
    path.write_text(BASE_TEXT)
    assert check_paths([path]) == []
