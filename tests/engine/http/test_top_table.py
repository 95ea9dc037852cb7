"""`memalert top`'s table from the HTTP API's documents: sorting, formatting, what is missing."""

from __future__ import annotations

from typing import Any

import pytest
from http_fakes import START, populated_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from memalert.engine.core.units import format_bytes
from memalert.engine.http.top_table import (
    MAX_TARGET_WIDTH,
    SORTS,
    TopDataError,
    build_table,
    format_confidence,
    format_rate,
    format_time_to_limit,
    render,
    shorten,
)
from memalert.engine.http.views import alerts_view, leaks_view, snapshot_view

MiB = 1024 * 1024
NOW = START + 60


def target(name: str, **figures: Any) -> dict[str, Any]:
    return {"target": name, "up": True, "rss_bytes": 100 * MiB, **figures}


def documents(
    *targets: dict[str, Any],
    leaks: list[dict[str, Any]] | None = None,
    alerts: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    return (
        {"timestamp_unix": NOW, "targets": list(targets)},
        {"leaks": leaks or []},
        {"alerts": alerts or []},
    )


def alert(name: str, state: str, severity: str, rule: str = "r") -> dict[str, Any]:
    labels = {"target": name}
    return {"rule": rule, "labels": labels, "state": state, "severity": severity}


def names(*docs: Any, sort: str = "confidence") -> list[str]:
    return [row.target for row in build_table(*docs, sort=sort).rows]


def lines(*docs: Any, **options: Any) -> list[str]:
    table = build_table(*docs)
    return [line.text for line in render(table, source="127.0.0.1:9464", sort="x", **options)]


def test_the_daemons_own_documents_make_one_row_per_target() -> None:
    snapshot = populated_snapshot(NOW)
    table = build_table(snapshot_view(snapshot), leaks_view(snapshot), alerts_view(snapshot))
    by_name = {row.target: row for row in table.rows}
    assert set(by_name) == {"api", "batch", "hook"}
    api = by_name["api"]
    assert (api.growth_bytes_per_hour, api.confidence, api.time_to_limit_seconds) == (
        12e6,
        0.9,
        7200.0,
    )
    # Its critical component alert outranks its own pending warning.
    assert api.alert is not None
    assert (api.alert.state, api.alert.severity, api.alert.rule) == (
        "firing",
        "critical",
        "memory-leak",
    )
    assert api.alert.others == 1
    assert by_name["batch"].up is False
    assert (table.firing, table.pending) == (1, 1)
    assert table.rows[0].target == "api"  # the most confident leak first


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("confidence", ["sure", "fast", "big", "quiet"]),
        ("growth", ["fast", "sure", "big", "quiet"]),
        ("rss", ["big", "fast", "sure", "quiet"]),
        ("time-to-limit", ["fast", "sure", "big", "quiet"]),
    ],
)
def test_each_sort_puts_the_most_urgent_first(sort: str, expected: list[str]) -> None:
    docs = documents(
        target("quiet", leak_confidence=0.0, leak_growth_bytes_per_hour=0.0),
        target("big", rss_bytes=900 * MiB, leak_confidence=0.1, leak_growth_bytes_per_hour=1e3),
        target(
            "fast",
            leak_confidence=0.5,
            leak_growth_bytes_per_hour=9e9,
            rss_bytes=200 * MiB,
            time_to_limit_seconds=60.0,
        ),
        target(
            "sure",
            leak_confidence=0.99,
            leak_growth_bytes_per_hour=1e6,
            time_to_limit_seconds=86400.0,
        ),
    )
    assert names(*docs, sort=sort) == expected


def test_ties_are_broken_by_name_and_an_unknown_sort_is_refused() -> None:
    docs = documents(target("b"), target("a"), target("c"))
    assert names(*docs) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="sort must be one of"):
        build_table(*docs, sort="memory")
    assert "confidence" in SORTS


def test_leaks_figures_win_over_the_snapshots_samples() -> None:
    docs = documents(
        target("api", leak_confidence=0.2, leak_growth_bytes_per_hour=5.0),
        leaks=[
            {"target": "api", "component": None, "confidence": 0.8, "time_to_limit_seconds": 90},
            # A component's leak is not the target's.
            {"target": "api", "component": "cache", "confidence": 1.0},
        ],
    )
    (row,) = build_table(*docs).rows
    assert (row.confidence, row.growth_bytes_per_hour, row.time_to_limit_seconds) == (0.8, 5.0, 90)


def test_formatting_of_bytes_rates_confidence_and_time_to_limit() -> None:
    assert format_rate(None) == "-"
    assert format_rate(0.0) == "0 B/h"
    assert format_rate(1.5 * MiB) == "+1.5 MiB/h"
    assert format_rate(-2 * MiB) == "-2.0 MiB/h"
    assert format_confidence(None) == "-"
    assert format_confidence(0.834) == "83%"
    assert format_time_to_limit(None) == "-"
    assert format_time_to_limit(0.0) == "now"
    assert format_time_to_limit(5400.0) == "1h30m"
    docs = documents(
        target(
            "api",
            limit_bytes=2048 * MiB,
            leak_growth_bytes_per_hour=3 * MiB,
            leak_confidence=0.5,
            time_to_limit_seconds=7200.0,
        ),
        alerts=[alert("api", "firing", "critical", "memory-leak")],
    )
    title, header, row = lines(*docs, now=NOW + 3)
    assert title.startswith("memalert top  127.0.0.1:9464  1 target  alerts: 1 firing, 0 pending")
    assert title.endswith("(3s ago)")
    assert header.split() == [
        *("TARGET", "RSS", "LIMIT", "GROWTH/H", "CONF", "TO", "LIMIT", "ALERT"),
    ]
    assert row.split() == [
        *("api", "100.0", "MiB", "2.0", "GiB", "+3.0", "MiB/h", "50%", "2h"),
        *("FIRING", "critical", "memory-leak"),
    ]
    # The numbers are right-aligned under their headers.
    assert row.index("MiB/h") + len("MiB/h") == header.index("GROWTH/H") + len("GROWTH/H")


def test_missing_and_mistyped_fields_show_as_dashes() -> None:
    docs = documents(
        {"target": "bare"},
        {"target": "odd", "up": "yes", "rss_bytes": "big", "leak_confidence": True},
        {"target": "down", "up": False, "rss_bytes": None},
        {"rss_bytes": 5},  # no name: not a target
        "not an object",  # type: ignore[arg-type]
    )
    table = build_table(*docs)
    assert [row.target for row in table.rows] == ["bare", "down", "odd"]
    by_name = {row.target: row for row in table.rows}
    assert by_name["odd"].rss_bytes is None
    assert by_name["odd"].confidence is None
    assert by_name["odd"].up is None
    text = {line.split()[0]: line.split()[1:] for line in lines(*docs, now=NOW)[2:]}
    assert text["bare"] == ["-"] * 6
    assert text["down"] == ["down", "-", "-", "-", "-", "-"]


@pytest.mark.parametrize(
    ("index", "document"),
    [
        (0, []),
        (0, {"targets": "api"}),
        (1, {"potential_leak_count": 0}),
        (2, None),
    ],
)
def test_a_document_of_the_wrong_shape_is_an_error_naming_its_path(
    index: int, document: Any
) -> None:
    docs: list[Any] = list(documents(target("api")))
    docs[index] = document
    path = ("/snapshot", "/leaks", "/alerts")[index]
    with pytest.raises(TopDataError, match=f"GET {path}: expected a JSON object"):
        build_table(*docs)


def test_long_names_are_shortened_in_the_middle_and_control_characters_replaced() -> None:
    command = "python3 -m uvicorn app.main:application --workers 4 --port 8001 --log-level debug"
    short = shorten(command, 30)
    assert len(short) == 30
    assert short.startswith("python3 -m uvi")
    assert short.endswith("g-level debug")
    assert "..." in short
    assert shorten("a\nb\tc", 10) == "a?b?c"
    assert shorten("abcdef", 2) == "ab"
    (_, _, row) = lines(*documents(target(command * 2)), now=NOW)
    name, gap = row[:MAX_TARGET_WIDTH], row[MAX_TARGET_WIDTH : MAX_TARGET_WIDTH + 2]
    assert (name.endswith("debug"), gap) == (True, "  ")
    assert "..." in name


def test_a_terminal_shows_the_top_rows_that_fit_cut_to_its_width() -> None:
    many = [
        target(f"worker-{n:04}", leak_confidence=n / 1000, leak_growth_bytes_per_hour=n * 1e3)
        for n in range(1000)
    ]
    docs = documents(
        *many,
        alerts=[
            alert("worker-0999", "pending", "warning"),
            alert("worker-0998", "firing", "warning"),
        ],
    )
    table = build_table(*docs)
    shown = render(table, source="s", sort="confidence", now=NOW, width=80, height=24)
    assert len(shown) == 24
    assert all(len(line.text) <= 80 for line in shown)
    assert "1000 targets, 22 shown" in shown[0].text
    rows = [line.text.split()[0] for line in shown[2:]]
    assert rows == [f"worker-{n:04}" for n in range(999, 977, -1)]
    assert shown[2].emphasis == ""  # pending: only firing rows stand out
    assert shown[3].emphasis == "firing"
    assert (shown[0].emphasis, shown[1].emphasis) == ("title", "header")


def test_a_narrow_terminal_keeps_the_numbers_and_shortens_the_names() -> None:
    name = "java -jar /opt/service/lib/server-all-deps.jar --spring.profiles.active=prod"
    docs = documents(target(name, leak_confidence=0.5))
    shown = render(build_table(*docs), source="s", sort="confidence", now=NOW, width=80)
    row = shown[2].text
    assert len(row) <= 80
    assert "100.0 MiB" in row
    assert "50%" in row
    assert row.startswith("java -ja")


def test_no_targets_and_no_tick_yet() -> None:
    docs: Any = ({"timestamp_unix": None, "targets": []}, {"leaks": []}, {"alerts": []})
    title, header = lines(*docs, now=NOW)
    assert "0 targets" in title
    assert "no tick yet" in title
    assert header.startswith("TARGET")


def test_bytes_use_the_projects_units() -> None:
    (_, _, row) = lines(*documents(target("a", rss_bytes=1.5 * 1024**3)), now=NOW)
    assert format_bytes(1.5 * 1024**3) in row


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
ENTRY = st.fixed_dictionaries(
    {"target": JSON | st.text(max_size=120)},
    optional=dict.fromkeys(
        (
            "up",
            "rss_bytes",
            "limit_bytes",
            "leak_confidence",
            "leak_growth_bytes_per_hour",
            "time_to_limit_seconds",
            "component",
            "confidence",
            "growth_bytes_per_hour",
            "labels",
            "state",
            "severity",
            "rule",
        ),
        JSON,
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    snapshot=JSON | st.fixed_dictionaries({"targets": st.lists(ENTRY | JSON, max_size=6)}),
    leaks=JSON | st.fixed_dictionaries({"leaks": st.lists(ENTRY | JSON, max_size=6)}),
    alerts=JSON | st.fixed_dictionaries({"alerts": st.lists(ENTRY | JSON, max_size=6)}),
    sort=st.sampled_from(SORTS),
    width=st.integers(1, 200),
    height=st.integers(0, 40),
)
def test_any_json_is_a_table_or_a_shape_error_and_the_lines_fit(
    *, snapshot: Any, leaks: Any, alerts: Any, sort: str, width: int, height: int
) -> None:
    try:
        table = build_table(snapshot, leaks, alerts, sort=sort)
    except TopDataError:
        return
    shown = render(table, source="s", sort=sort, now=NOW, width=width, height=height)
    assert len(shown) <= height
    assert all(len(line.text) <= width and "\n" not in line.text for line in shown)
    plain = render(table, source="s", sort=sort, now=NOW)
    assert len(plain) == 2 + len(table.rows)
