"""OTLP export: the /metrics families, pushed periodically under OpenTelemetry names.

Optional: it needs the `memalert[otlp]` extra (opentelemetry-sdk and the
OTLP/HTTP exporter), imported only when an export starts, so the core runs
without it and says how to install it when asked for OTLP.

The values are those of `memalert.engine.export.exposition.metric_families`, the same function
/metrics renders, so the two exports never disagree; only the names differ
(`memalert_rss_bytes` -> `memory.rss_bytes`, each metric's `otlp_name` and
`otlp_unit` in `memalert.engine.core.metrics`). Each instrument is observable:
at every export the SDK calls back for the engine's latest snapshot.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from memalert.engine.core.errors import SetupError
from memalert.engine.core.metrics import METRICS
from memalert.engine.export.exposition import Family, metric_families
from memalert.engine.live.snapshot import EngineSnapshot, SnapshotSource

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import MeterProvider

EXTRA_HINT = "pip install 'memalert[otlp]'"


class MissingExtraError(SetupError, ImportError):
    """OTLP export was asked for but the optional extra is not installed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class OtlpConfig:
    """`endpoint` and `headers` left out take OTEL_EXPORTER_OTLP_[METRICS_]ENDPOINT / _HEADERS."""

    endpoint: str | None = None
    interval: float = 15.0
    service_name: str = "memalert"
    host_name: str = field(default_factory=socket.gethostname)
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0


class _LatestFamilies:
    """One `metric_families` per snapshot, shared by all the instruments' callbacks."""

    def __init__(self, source: SnapshotSource) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._snapshot: EngineSnapshot | None = None
        self._families: dict[str, Family] = {}

    def get(self, key: str) -> Family | None:
        snapshot = self._source.latest()
        with self._lock:
            if snapshot is not self._snapshot:
                self._families = {f.key: f for f in metric_families(snapshot)}
                self._snapshot = snapshot
            return self._families.get(key)


class OtlpExport:
    """A running periodic export; `flush()` exports now, `close()` exports once more and stops."""

    def __init__(self, provider: MeterProvider) -> None:
        self._provider = provider

    def flush(self, timeout: float = 10.0) -> bool:
        return bool(self._provider.force_flush(timeout_millis=timeout * 1000))

    def close(self, timeout: float = 10.0) -> None:
        self._provider.shutdown(timeout_millis=timeout * 1000)

    def __enter__(self) -> OtlpExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_otlp_export(source: SnapshotSource, config: OtlpConfig | None = None) -> OtlpExport:
    """Export `source`'s metrics every `config.interval` s; raises MissingExtraError without it."""
    config = config or OtlpConfig()
    # Imported here, not at the top: the extra is optional (PLC0415).
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter,
        )
        from opentelemetry.metrics import Observation  # noqa: PLC0415
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    except ImportError as exc:
        raise MissingExtraError(
            f"OTLP export needs the optional extra: {EXTRA_HINT} (cannot import {exc.name})"
        ) from None

    families = _LatestFamilies(source)

    def observe(key: str) -> Callable[[CallbackOptions], Iterator[Observation]]:
        def callback(options: CallbackOptions) -> Iterator[Observation]:
            family = families.get(key)
            for labels, value in family.points if family is not None else ():
                yield Observation(float(value), dict(labels.mapping))

        return callback

    exporter = OTLPMetricExporter(
        endpoint=config.endpoint,
        # None, not {}: OTEL_EXPORTER_OTLP_HEADERS (often the collector's auth) then applies.
        headers=dict(config.headers) or None,
        timeout=config.timeout,
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=config.interval * 1000)
    resource = Resource.create({"service.name": config.service_name, "host.name": config.host_name})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("memalert")
    create = {
        "gauge": meter.create_observable_gauge,
        "counter": meter.create_observable_counter,
        # A window of recent ticks, not a running total: its quantiles are gauges.
        "summary": meter.create_observable_gauge,
    }
    for metric in METRICS.values():
        create[metric.kind](
            metric.otlp_name,
            callbacks=[observe(metric.name)],
            unit=metric.otlp_unit,
            description=metric.help,
        )
    return OtlpExport(provider)
