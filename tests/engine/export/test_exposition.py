"""/metrics rendering: names, HELP, types and values, checked with prometheus-client's parsers."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from typing import cast

import pytest
from http_fakes import SLACK_SECRET, START, populated_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample as PromSample

from memalert.engine.alerting.views import AlertView
from memalert.engine.core.metrics import METRICS, SAMPLE_METRICS
from memalert.engine.core.model import Labels, Sample, Severity
from memalert.engine.export.exposition import (
    EngineCollector,
    label_name,
    metric_families,
    metrics_text,
    render_metrics,
)
from memalert.engine.live.snapshot import EngineSnapshot

NOW = START + 60
MiB = 1 << 20
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
# Issue 5, item 1: the names /metrics must carry.
REQUIRED = (
    "memalert_rss_bytes",
    "memalert_vms_bytes",
    "memalert_pressure",
    "memalert_limit_bytes",
    "memalert_leak_bytes",
    "memalert_leak_growth_bytes_per_hour",
    "memalert_up",
    "memalert_component_bytes",
    "memalert_alerts",
    "memalert_ticks",
    "memalert_tick_duration_seconds",
    "memalert_notifications",
    "memalert_outbox_backlog",
)


def parsed(snapshot: EngineSnapshot) -> dict[str, list[PromSample]]:
    body, _ = render_metrics(snapshot)
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def values(samples: list[PromSample], *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels.get(k, "") for k in keys): s.value for s in samples}


def test_every_required_family_is_present_with_help_and_type() -> None:
    body, _ = render_metrics(populated_snapshot(NOW))
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name in REQUIRED:
        assert name in families, name
        assert families[name].documentation.endswith("."), name
    assert families["memalert_ticks"].type == "counter"
    assert families["memalert_notifications"].type == "counter"
    assert families["memalert_tick_duration_seconds"].type == "summary"
    assert families["memalert_rss_bytes"].type == "gauge"


def test_names_follow_prometheus_conventions() -> None:
    body, _ = render_metrics(populated_snapshot(NOW))
    for family in text_string_to_metric_families(body.decode()):
        assert re.fullmatch(r"memalert_[a-z0-9_]+", family.name), family.name
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name == family.name + "_total"
            assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", k) for k in sample.labels)


def test_every_metric_of_the_table_is_exported_with_its_help() -> None:
    one_each = tuple(Sample(m, Labels(target="api"), 1.0, NOW) for m in SAMPLE_METRICS)
    body, _ = render_metrics(replace(populated_snapshot(NOW), samples=one_each))
    helps = {f.name: f.documentation for f in text_string_to_metric_families(body.decode())}
    assert helps == {f"memalert_{m.name}": m.help for m in METRICS.values()}


def test_values_and_labels_come_from_the_snapshot() -> None:
    families = parsed(populated_snapshot(NOW))
    assert values(families["memalert_rss_bytes"], "target") == {
        ("api",): 120 * MiB,
        ("hook",): 1e6,
    }
    assert values(families["memalert_up"], "target") == {("api",): 1.0, ("batch",): 0.0}
    assert values(families["memalert_leak_growth_bytes_per_hour"], "target") == {("api",): 12 * MiB}
    assert values(families["memalert_component_bytes"], "target", "component") == {
        ("api", "cache"): 52e6
    }
    assert values(families["memalert_alerts"], "rule", "severity", "state") == {
        ("high-rss", "warning", "pending"): 1.0,
        ("memory-leak", "critical", "firing"): 1.0,
    }
    assert values(families["memalert_notifications"], "notifier", "result") == {
        ("oncall", "delivered"): 3.0,
        ("oncall", "failed"): 1.0,
    }
    assert values(families["memalert_ticks"]) == {(): 5.0}
    assert values(families["memalert_outbox_backlog"]) == {(): 2.0}
    assert values(families["memalert_last_tick_timestamp_seconds"]) == {(): NOW}


def test_tick_duration_quantiles_are_durations_ticks_took() -> None:
    durations = tuple(float(n) for n in range(1, 101))
    snapshot = replace(populated_snapshot(NOW), tick_durations=durations)
    summary = parsed(snapshot)["memalert_tick_duration_seconds"]
    assert values(summary, "quantile") == {("0.5",): 50.0, ("0.9",): 90.0, ("0.99",): 99.0}


def test_label_values_are_masked() -> None:
    body, _ = render_metrics(populated_snapshot(NOW))
    assert SLACK_SECRET.encode() not in body
    assert b'url="https://hooks.slack.com/services/***"' in body


def test_openmetrics_output_parses_with_units() -> None:
    body, content_type = render_metrics(populated_snapshot(NOW), OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    # prometheus-client's OpenMetrics parser has no annotations.
    parsed_families = openmetrics_families(body.decode())  # type: ignore[no-untyped-call]
    families = {f.name: f for f in parsed_families}
    assert families["memalert_rss_bytes"].unit == "bytes"
    assert families["memalert_ticks"].type == "counter"
    assert families["memalert_pressure"].unit == ""


def test_an_empty_engine_still_renders_its_own_counters() -> None:
    families = parsed(EngineSnapshot(started_at=START, interval=15.0))
    assert values(families["memalert_ticks"]) == {(): 0.0}
    assert "memalert_rss_bytes" not in families
    assert "memalert_last_tick_timestamp_seconds" not in families


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("target", "target"),
        ("pod.name", "pod_name"),
        ("9lives", "label_9lives"),
        ("__name__", "name__"),
        ("ünï", "n_"),
        ("", "label_"),
    ],
)
def test_label_names_are_made_valid(raw: str, clean: str) -> None:
    assert label_name(raw) == clean


def test_label_sets_that_clean_to_the_same_series_are_exported_once() -> None:
    samples = (
        Sample("rss_bytes", Labels({"target": "a", "pod.name": "x"}), 1.0, NOW),
        Sample("rss_bytes", Labels({"target": "a", "pod_name": "x"}), 2.0, NOW),
    )
    snapshot = EngineSnapshot(started_at=START, interval=15.0, samples=samples)
    assert len(parsed(snapshot)["memalert_rss_bytes"]) == 1


def test_the_collector_needs_no_registry() -> None:
    names = [m.name for m in EngineCollector(lambda: populated_snapshot(NOW)).collect()]
    assert "memalert_rss_bytes" in names
    assert len(names) == len(set(names))


def test_an_in_process_registry_reads_the_latest_snapshot_at_each_scrape() -> None:
    snapshots = iter([populated_snapshot(NOW), replace(populated_snapshot(NOW), ticks_total=6)])
    current = next(snapshots)
    registry = CollectorRegistry()
    registry.register(EngineCollector(lambda: current))
    assert b"memalert_ticks_total 5.0" in generate_latest(registry)
    current = next(snapshots)
    assert b"memalert_ticks_total 6.0" in generate_latest(registry)


@pytest.mark.promtool
def test_promtool_finds_no_problem() -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`); CI runs this test")
    body, _ = render_metrics(populated_snapshot(NOW))
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=body,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


# The classic text format is written by our own writer (see memalert.engine.export.exposition);
# prometheus-client's generate_latest is the reference it must match byte for byte.
CLASSIC_ACCEPTS = (
    None,
    "",
    "text/plain",
    "text/plain; version=0.0.4",
    "text/plain; version=1.0.0; escaping=allow-utf-8",
    "text/plain; version=1.0.0; escaping=dots",
    "*/*",
)


OPENMETRICS_ACCEPTS = (
    OPENMETRICS,
    "application/openmetrics-text",
    # What Prometheus 2.x sends by default.
    (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
        "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    ),
)


# prometheus-client leaves its OpenMetrics writer unannotated.
openmetrics_latest = cast(
    "Callable[[EngineCollector], bytes]", openmetrics_exposition.generate_latest
)


def reference(snapshot: EngineSnapshot, *, openmetrics: bool) -> bytes:
    """What prometheus-client's own writer makes of `snapshot`."""
    collector = EngineCollector(lambda: snapshot)
    return openmetrics_latest(collector) if openmetrics else generate_latest(collector)


@pytest.mark.parametrize("accept", CLASSIC_ACCEPTS)
def test_classic_text_is_byte_identical_to_prometheus_client(accept: str | None) -> None:
    snapshot = populated_snapshot(NOW)
    body, content_type = render_metrics(snapshot, accept)
    assert content_type.startswith("text/plain")
    assert body == reference(snapshot, openmetrics=False)


@pytest.mark.parametrize("accept", OPENMETRICS_ACCEPTS)
def test_openmetrics_is_byte_identical_to_prometheus_client(accept: str) -> None:
    snapshot = populated_snapshot(NOW)
    body, content_type = render_metrics(snapshot, accept)
    assert content_type.startswith("application/openmetrics-text")
    assert body == reference(snapshot, openmetrics=True)


# Label text as hostile as the watched systems can make it: quotes, backslashes,
# newlines, non-ASCII, names that need cleaning, names that clean to one another.
LABEL_TEXT = st.text(
    st.characters(codec="utf-8") | st.sampled_from('"\\\n{},=.'),
    max_size=12,
)
VALUES = st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 1 << 62).map(float)
SAMPLES = st.lists(
    st.builds(
        Sample,
        st.sampled_from(sorted(SAMPLE_METRICS)),
        st.dictionaries(LABEL_TEXT, LABEL_TEXT, max_size=3).map(Labels),
        VALUES,
        st.just(NOW),
    ),
    max_size=30,
)
ALERTS = st.lists(
    st.builds(
        AlertView,
        rule=LABEL_TEXT,
        labels=st.just(Labels(target="api")),
        state=st.sampled_from(["pending", "firing"]),
        severity=st.sampled_from(list(Severity)),
        active_since=st.just(NOW),
        value=VALUES,
        summary=st.just(""),
    ),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(
    samples=SAMPLES,
    alerts=ALERTS,
    durations=st.lists(st.floats(0, 1e3), max_size=5),
    notifications=st.dictionaries(
        st.tuples(LABEL_TEXT, st.sampled_from(["delivered", "failed", "dead"])),
        st.integers(0, 1 << 40),
        max_size=3,
    ),
)
def test_any_snapshot_renders_as_prometheus_client_would(
    samples: list[Sample],
    alerts: list[AlertView],
    durations: list[float],
    notifications: dict[tuple[str, str], int],
) -> None:
    snapshot = EngineSnapshot(
        started_at=START,
        interval=15.0,
        last_tick_at=NOW,
        samples=tuple(samples),
        alerts=tuple(alerts),
        tick_durations=tuple(durations),
        notifications_total=notifications,
    )
    families = metric_families(snapshot)
    for openmetrics in (False, True):
        expected = reference(snapshot, openmetrics=openmetrics)
        assert metrics_text(families, openmetrics=openmetrics) == expected
    # And what it writes reads back: the parser is the other half of the contract.
    assert list(text_string_to_metric_families(expected.decode()))
