"""/metrics: an `EngineSnapshot` as Prometheus (or OpenMetrics) text.

`metric_families(snapshot)` is the one place that decides what is exported:
the target and component metrics of docs/rules.md#metrics as `memalert_<metric>`, the
alert counts, and the engine's own health counters. The Prometheus collector
here and the OTLP exporter (`memalert.engine.export.otlp`) both read it, so the two never
drift apart. Nothing is registered globally: each render collects from a
collector built over one snapshot.

prometheus-client negotiates the format, formats the numbers, and collects
for in-process registries (`EngineCollector`); the text itself is written by
`metrics_text`, because prometheus-client's writers escape and sort every
label of every sample on every render: 36 ms (classic) and 58 ms (OpenMetrics)
at 1,000 targets, against a 20 ms budget. Ours formats each label set once
(cached with its masking) and tests hold its output byte-identical to
prometheus-client's writers in both formats.

Label values come from configuration and from the watched systems, so every
one passes through `memalert.engine.core.secrets.mask` before it leaves the process.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, cast

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from memalert.engine.core.model import Labels
from memalert.engine.core.secrets import mask
from memalert.engine.live.snapshot import EngineSnapshot

PREFIX = "memalert_"
Kind = Literal["gauge", "counter", "summary"]

# HELP text of each metric of docs/rules.md#metrics (exported as memalert_<name>); a metric
# that is not listed here is not exported, and a test checks every vocabulary
# metric is.
TARGET_HELP: Mapping[str, str] = {
    "rss_bytes": "Resident set size of the target.",
    "vms_bytes": "Virtual memory size of the target.",
    "uss_bytes": "Unique set size of the target: memory no other process shares.",
    "swap_bytes": "Memory of the target swapped out.",
    "limit_bytes": "Memory limit of the target: its cgroup's memory.max, else physical RAM.",
    "pressure": "Memory used by the target as a fraction of its limit (0 to 1).",
    "psi_some_avg10": "Percent of the last 10 s some tasks of the target stalled on memory.",
    "psi_full_avg10": "Percent of the last 10 s all tasks of the target stalled on memory.",
    "up": "1 if the target was found and read at the last tick, else 0.",
    "leak_bytes": "Memory attributed to a sustained upward trend (0 when none).",
    "leak_growth_bytes_per_hour": "Growth rate of the detected leak, in bytes per hour.",
    "leak_confidence": "Confidence of the leak detector (0 to 1; 0.5 or more is a leak).",
    "time_to_limit_seconds": "Time until the target reaches its limit at the current leak rate.",
    "component_bytes": "Bytes a component allocated and has not freed.",
    "component_allocations": "Allocations a component made and has not freed.",
    "site_growth_bytes": "Growth of memory allocated at one allocation site.",
}

# Recent tick durations are a bounded window, not a running total, so the
# summary carries quantiles only (OpenMetrics makes _count and _sum optional).
TICK_QUANTILES = (0.5, 0.9, 0.99)

# prometheus-client's own number formatting (Go's), which its package leaves untyped.
_go_float = cast("Callable[[float], str]", floatToGoString)

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_LABEL_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True, kw_only=True, slots=True)
class Family:
    """One exported metric: `key` names it (memalert_<key>; OTLP maps it to its own name)."""

    key: str
    kind: Kind
    help: str
    points: tuple[tuple[ExportedLabels, float], ...]

    @property
    def unit(self) -> str:
        """The OpenMetrics unit, which must be the name's suffix."""
        for unit in ("bytes", "seconds"):
            if self.key.endswith("_" + unit):
                return unit
        return ""


def label_name(name: str) -> str:
    """A valid Prometheus label name (names starting with `__` are reserved)."""
    if _LABEL_NAME.match(name) and not name.startswith("__"):
        return name
    cleaned = _LABEL_BAD_CHARS.sub("_", name).lstrip("_")
    return "label_" + cleaned if not cleaned or cleaned[0].isdigit() else cleaned


LabelItems = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ExportedLabels:
    """One exported label set: valid names, masked values, sorted by name."""

    items: LabelItems
    mapping: Mapping[str, str]
    # `{name="value",...}` as the text format writes it ("" for no labels).
    text: str


def _escape_label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def export(pairs: Iterable[tuple[str, str]]) -> ExportedLabels:
    """Label pairs whose names are valid and values masked already, ready to export."""
    mapping = dict(pairs)
    items = tuple(sorted(mapping.items()))
    text = ",".join(f'{name}="{_escape_label_value(value)}"' for name, value in items)
    return ExportedLabels(items, MappingProxyType(mapping), "{" + text + "}" if text else "")


# Label sets repeat from tick to tick (the same targets, components, sites), and
# masking runs a dozen regexes per value: remember the answer across renders.
@functools.lru_cache(maxsize=65536)
def exported_labels(labels: Labels) -> ExportedLabels:
    """`labels` with valid names and secrets masked."""
    # Sorted first: of two raw names that clean to one, the larger value stays, every time.
    return export(sorted((label_name(k), mask(v)) for k, v in labels.items()))


def _sample_families(snapshot: EngineSnapshot) -> list[Family]:
    by_metric: dict[str, dict[LabelItems, tuple[ExportedLabels, float]]] = {}
    for sample in snapshot.samples:
        if sample.metric not in TARGET_HELP:
            continue
        # Keyed by the cleaned labels: two raw label sets that clean to the same
        # one would be a duplicate series, which Prometheus rejects whole.
        labels = exported_labels(sample.labels)
        by_metric.setdefault(sample.metric, {})[labels.items] = (labels, sample.value)
    return [
        Family(
            key=metric,
            kind="gauge",
            help=TARGET_HELP[metric],
            points=tuple(by_metric[metric].values()),
        )
        for metric in TARGET_HELP
        if metric in by_metric
    ]


# The engine's own families: key -> (kind, HELP).
ENGINE_HELP: Mapping[str, tuple[Kind, str]] = {
    "alerts": ("gauge", "Active alert instances by rule, severity and state (pending or firing)."),
    "ticks": ("counter", "Evaluation ticks run since the engine started."),
    "missed_ticks": ("counter", "Ticks skipped because the previous one was still running."),
    "tick_errors": ("counter", "Ticks that ended in an error."),
    "tick_duration_seconds": ("summary", "Duration of recent evaluation ticks."),
    "notifications": (
        "counter",
        "Notifications by notifier and result (delivered, failed or dead).",
    ),
    "outbox_backlog": ("gauge", "Notifications waiting in the outbox to be delivered."),
    "dead_letters": ("gauge", "Notifications that failed for good and were set aside."),
    "last_tick_timestamp_seconds": ("gauge", "Unix time of the last evaluation tick."),
}


def family_specs() -> dict[str, tuple[Kind, str]]:
    """(kind, HELP) of every family `metric_families` may return: OTLP's instruments."""
    specs: dict[str, tuple[Kind, str]] = {k: ("gauge", h) for k, h in TARGET_HELP.items()}
    specs.update(ENGINE_HELP)
    return specs


def _engine_family(key: str, points: Iterable[tuple[Mapping[str, str], float]]) -> Family:
    kind, help_text = ENGINE_HELP[key]
    exported = tuple((export(labels.items()), value) for labels, value in points)
    return Family(key=key, kind=kind, help=help_text, points=exported)


def _quantile(ordered: list[float], q: float) -> float:
    # Nearest rank: a duration that some tick really took.
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _engine_families(snapshot: EngineSnapshot) -> list[Family]:
    alerts: dict[tuple[str, str, str], int] = {}
    for alert in snapshot.alerts:
        key = (mask(alert.rule), alert.severity.label, alert.state)
        alerts[key] = alerts.get(key, 0) + 1
    ordered = sorted(snapshot.tick_durations)
    families = [
        _engine_family(
            "alerts",
            (
                ({"rule": rule, "severity": severity, "state": state}, float(n))
                for (rule, severity, state), n in sorted(alerts.items())
            ),
        ),
        _engine_family("ticks", [({}, float(snapshot.ticks_total))]),
        _engine_family("missed_ticks", [({}, float(snapshot.missed_ticks_total))]),
        _engine_family("tick_errors", [({}, float(snapshot.tick_errors_total))]),
        _engine_family(
            "tick_duration_seconds",
            (({"quantile": str(q)}, _quantile(ordered, q)) for q in TICK_QUANTILES if ordered),
        ),
        _engine_family(
            "notifications",
            (
                ({"notifier": mask(notifier), "result": result}, float(n))
                for (notifier, result), n in sorted(snapshot.notifications_total.items())
            ),
        ),
        _engine_family("outbox_backlog", [({}, float(snapshot.outbox_backlog))]),
        _engine_family("dead_letters", [({}, float(snapshot.dead_letters))]),
    ]
    if snapshot.last_tick_at is not None:
        families.append(
            _engine_family("last_tick_timestamp_seconds", [({}, snapshot.last_tick_at)])
        )
    return families


def metric_families(snapshot: EngineSnapshot) -> list[Family]:
    """Everything /metrics and OTLP export, in a stable order."""
    return [*_sample_families(snapshot), *_engine_families(snapshot)]


def _sample_name(family: Family) -> str:
    # A counter's samples end in _total (and so does its family, in the classic format).
    name = PREFIX + family.key
    return name + "_total" if family.kind == "counter" else name


def _to_metric(family: Family) -> Metric:
    metric = Metric(PREFIX + family.key, family.help, family.kind, family.unit)
    sample_name = _sample_name(family)
    for labels, value in family.points:
        # prometheus-client only reads the labels, so the cached mapping goes as it is.
        metric.add_sample(sample_name, cast("dict[str, str]", labels.mapping), value)
    return metric


class EngineCollector:
    """A prometheus-client Collector of the engine's metrics, read from `latest()` at each collect.

    For in-process users who serve their own registry:
    `registry.register(EngineCollector(engine.latest))`.
    """

    def __init__(self, latest: Callable[[], EngineSnapshot]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[Metric]:
        for family in metric_families(self._latest()):
            yield _to_metric(family)


def metrics_text(families: Iterable[Family], *, openmetrics: bool) -> bytes:
    """`families` in the classic text format (0.0.4) or OpenMetrics 1.0.0, as prometheus-client
    writes them; every name in them is a valid legacy name, so no escaping scheme changes them.
    """
    out: list[str] = []
    for family in families:
        sample_name = _sample_name(family)
        help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
        if openmetrics:
            name = PREFIX + family.key
            help_text = help_text.replace('"', r"\"")
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} {family.kind}\n")
            if family.unit:
                out.append(f"# UNIT {name} {family.unit}\n")
        else:
            out.append(f"# HELP {sample_name} {help_text}\n# TYPE {sample_name} {family.kind}\n")
        out.extend(
            [f"{sample_name}{labels.text} {_go_float(value)}\n" for labels, value in family.points]
        )
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out).encode()


def render_metrics(snapshot: EngineSnapshot, accept: str | None = None) -> tuple[bytes, str]:
    """(body, content type): OpenMetrics when `accept` asks for it, else Prometheus text."""
    # prometheus-client's negotiation: every Accept gets the format prometheus-client would pick.
    _, content_type = choose_encoder(accept or "")
    openmetrics = content_type.startswith("application/openmetrics-text")
    return metrics_text(metric_families(snapshot), openmetrics=openmetrics), content_type
