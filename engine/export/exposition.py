"""/metrics: an `EngineSnapshot` as Prometheus (or OpenMetrics) text.

`metric_families(snapshot)` is the one place that decides what is exported:
every metric of the table in `memalert.engine.core.metrics` as `memalert_<name>`
(the target and component samples, the alert counts, and the engine's own
health counters), with the table's HELP and UNIT; samples of any other metric
are left out. The Prometheus collector here and the OTLP exporter
(`memalert.engine.export.otlp`) both read it, so the two never drift apart.
Nothing is registered globally: each render collects from a collector built
over one snapshot.

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
from typing import cast

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from memalert.engine.core.metrics import METRICS, SAMPLE_METRICS, Kind
from memalert.engine.core.model import Labels
from memalert.engine.core.secrets import mask
from memalert.engine.live.snapshot import EngineSnapshot

PREFIX = "memalert_"

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
        """The OpenMetrics unit (which must be the name's suffix)."""
        return METRICS[self.key].openmetrics_unit


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


_NO_LABELS = export(())


# Label sets repeat from tick to tick (the same targets, components, sites), and
# masking runs a dozen regexes per value: remember the answer across renders.
@functools.lru_cache(maxsize=65536)
def exported_labels(labels: Labels) -> ExportedLabels:
    """`labels` with valid names and secrets masked."""
    # Sorted first: of two raw names that clean to one, the larger value stays, every time.
    return export(sorted((label_name(k), mask(v)) for k, v in labels.items()))


def _sample_families(snapshot: EngineSnapshot) -> list[Family]:
    by_metric: dict[str, dict[str, tuple[ExportedLabels, float]]] = {m: {} for m in SAMPLE_METRICS}
    # A target's samples share one Labels object and mostly come one after the
    # other: the identity test, then a lookup by that object (identity first),
    # spare the masking cache's equality test on every sample.
    seen: dict[Labels, ExportedLabels] = {}
    raw: Labels | None = None
    labels = _NO_LABELS
    for sample in snapshot.samples:
        points = by_metric.get(sample.metric)
        if points is None:  # not an exported metric
            continue
        if sample.labels is not raw:
            raw = sample.labels
            found = seen.get(raw)
            if found is None:
                found = seen[raw] = exported_labels(raw)
            labels = found
        # Keyed by the cleaned labels (their text, one string per label set, its
        # hash kept): two raw label sets that clean to the same one would be a
        # duplicate series, which Prometheus rejects whole.
        points[labels.text] = (labels, sample.value)
    return [
        Family(
            key=metric,
            kind="gauge",
            help=SAMPLE_METRICS[metric].help,
            points=tuple(points.values()),
        )
        for metric, points in by_metric.items()
        if points
    ]


def _engine_family(key: str, points: Iterable[tuple[Mapping[str, str], float]]) -> Family:
    metric = METRICS[key]
    exported = tuple((export(labels.items()), value) for labels, value in points)
    return Family(key=key, kind=metric.kind, help=metric.help, points=exported)


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


# The text after the mantissa, by the position of the dot in Python's repr.
_EXPONENTS = tuple(f"e+{dot - 1:02d}" for dot in range(20))


def _sample_lines(sample_name: str, points: Iterable[tuple[ExportedLabels, float]]) -> list[str]:
    """One line per point, each value as `_go_float` writes it.

    The finite floats (110,000 at 1,000 targets) are written here without a call
    per value, which was a third of the render's time: Python's repr already has
    the shortest digits, and values of seven or more integral digits are written
    d.ddd...e+XX (trailing zeros dropped), as Go does, where repr has no exponent yet.
    """
    lines: list[str] = []
    append = lines.append
    for labels, value in points:
        text = repr(value)
        dot = text.find(".")
        if dot > 6 and value > 0 and type(value) is float:
            mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
            append(f"{sample_name}{labels.text} {mantissa}{_EXPONENTS[dot]}\n")
        elif dot < 0 or type(value) is not float:  # inf, nan, an exponent already: its own rules
            append(f"{sample_name}{labels.text} {_go_float(value)}\n")
        else:
            append(f"{sample_name}{labels.text} {text}\n")
    return lines


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
        out.extend(_sample_lines(sample_name, family.points))
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out).encode()


def render_metrics(snapshot: EngineSnapshot, accept: str | None = None) -> tuple[bytes, str]:
    """(body, content type): OpenMetrics when `accept` asks for it, else Prometheus text."""
    # prometheus-client's negotiation: every Accept gets the format prometheus-client would pick.
    _, content_type = choose_encoder(accept or "")
    openmetrics = content_type.startswith("application/openmetrics-text")
    return metrics_text(metric_families(snapshot), openmetrics=openmetrics), content_type
