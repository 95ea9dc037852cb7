"""The metric table: what every stage and doc that names a metric is held to."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from memalert.engine.alerting.messages import RELATED_VARIABLES
from memalert.engine.allocations.attribution import SITE_GROWTH_METRIC
from memalert.engine.allocations.leaks import LeakDetector
from memalert.engine.core.metrics import (
    DETECTOR_METRICS,
    METRICS,
    SAMPLE_METRICS,
    Producer,
    Unit,
    produced_by,
)
from memalert.engine.core.model import Labels, Sample
from memalert.engine.live.leak_followup import LEAK_METRICS
from memalert.engine.testing import FakeClock
from memalert.engine.trend.detector import SOURCE_METRICS, TrendDetector

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs"
SCHEMAS = REPO / "engine" / "rules" / "schema"
HOUR = 3600.0


def table_rows(doc: Path, header: str) -> list[list[str]]:
    """The body rows of the markdown table whose header row is `header`, cells stripped."""
    lines = doc.read_text().splitlines()
    start = lines.index(header) + 2  # past the header and its |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def names(cell: str) -> list[str]:
    return re.findall(r"`([a-z0-9_]+)`", cell)


def test_sample_metrics_are_all_but_the_engines() -> None:
    assert set(SAMPLE_METRICS) == set(METRICS) - set(produced_by(Producer.ENGINE))
    assert all(m.kind == "gauge" for m in SAMPLE_METRICS.values())


@pytest.mark.parametrize("name", list(METRICS))
def test_units_agree_with_each_other_and_the_name(name: str) -> None:
    m = METRICS[name]
    ucum = {
        Unit.BYTES: "By",
        Unit.BYTES_PER_HOUR: "By/h",
        Unit.RATIO: "1",
        Unit.PERCENT: "%",
        Unit.SECONDS: "s",
    }
    if m.unit is Unit.COUNT:
        assert m.otlp_unit == "1" or re.fullmatch(r"\{[a-z]+\}", m.otlp_unit)
    else:
        assert m.otlp_unit == ucum[m.unit]
    # OpenMetrics requires the UNIT to be the name's suffix.
    unit = m.openmetrics_unit
    assert not unit or m.name.endswith("_" + unit)
    assert unit or not m.name.endswith(("_bytes", "_seconds"))


def test_the_detector_produces_exactly_its_metrics() -> None:
    detector = TrendDetector()
    out: list[Sample] = []
    for i in range(600):  # ten hours: a young life waits six (docs/leak-detection.md)
        ts = i * 60.0
        rss = 100e6 + 50e6 * ts / HOUR
        out = detector.observe(
            [
                Sample("rss_bytes", Labels(target="api"), rss, ts),
                Sample("limit_bytes", Labels(target="api"), 1e12, ts),
            ]
        )
    assert {s.metric for s in out} == set(DETECTOR_METRICS)
    assert set(SOURCE_METRICS) <= set(produced_by(Producer.TRACKER))


def test_the_allocation_analyzers_metrics_come_from_the_table() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    detector.record_allocation("cache", "put", 1024)
    published = {s.metric for s in detector.samples("api", 0.0)} | {SITE_GROWTH_METRIC}
    assert published == set(produced_by(Producer.ALLOCATIONS))
    assert all(METRICS[m].labels >= {"target"} for m in published)


def test_every_list_of_metric_names_elsewhere_is_in_the_table() -> None:
    assert set(RELATED_VARIABLES.values()) <= set(SAMPLE_METRICS)
    assert set(LEAK_METRICS) <= set(DETECTOR_METRICS)


LABEL_ORDER = ["target", "component", "site", "pid", "user", "cmdline", "cgroup", "discovered"]


def test_docs_rules_metrics_table_matches() -> None:
    rows = table_rows(DOCS / "rules.md", "| metric | from | labels | meaning |")
    documented = {
        name: (frozenset(Producer(p.strip()) for p in source.split(",")), labels)
        for cell, source, labels, _ in rows
        for name in names(cell)
    }
    assert documented == {
        m.name: (
            m.producers,
            ", ".join(sorted(m.labels, key=LABEL_ORDER.index)),
        )
        for m in SAMPLE_METRICS.values()
    }


def test_docs_targets_table_lists_the_tracker_metrics() -> None:
    rows = table_rows(DOCS / "targets.md", "| metric | meaning |")
    assert [n for row in rows for n in names(row[0])] == list(produced_by(Producer.TRACKER))


def test_docs_http_table_lists_the_engine_metrics() -> None:
    rows = table_rows(DOCS / "http.md", "| metric | type | labels |")
    documented = {}
    for cell, kind, labels in rows:
        for name in names(cell):
            key = name.removeprefix("memalert_").removesuffix("_total")
            documented[key] = (kind.split(":")[0].split()[0], frozenset(names(labels)))
    assert documented == {
        name: (METRICS[name].kind, METRICS[name].labels) for name in produced_by(Producer.ENGINE)
    }


def _enums(node: object) -> Iterator[list[object]]:
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list):
            yield node["enum"]
        for value in node.values():
            yield from _enums(value)
    elif isinstance(node, list):
        for value in node:
            yield from _enums(value)


@pytest.mark.parametrize("schema", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.name)
def test_a_schema_that_enumerates_metrics_enumerates_the_table(schema: Path) -> None:
    # Today the schemas leave `metric` a string and rules.items checks it against
    # the table (with a did-you-mean); an enum added later must not drift from it.
    for enum in _enums(json.loads(schema.read_text())):
        if set(enum) & set(METRICS):
            assert sorted(map(str, enum)) == sorted(SAMPLE_METRICS)
