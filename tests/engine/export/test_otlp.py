"""OTLP export into a real OTLP/HTTP receiver on 127.0.0.1 that decodes the protobuf payload."""

from __future__ import annotations

import gzip
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from daemon_e2e_kit import Daemon
from http_fakes import SLACK_SECRET, START, FakeSource, populated_snapshot
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from memalert.engine.core.metrics import METRICS
from memalert.engine.export.otlp import OtlpConfig, start_otlp_export
from memalert.engine.live.snapshot import EngineSnapshot

pytestmark = pytest.mark.integration

NOW = START + 60
MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[3]
WAIT = 30.0


class Receiver:
    """An OTLP/HTTP metrics endpoint: every decoded request lands in `requests`."""

    def __init__(self) -> None:
        self.requests: queue.Queue[tuple[str, str, ExportMetricsServiceRequest]] = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                decoded = ExportMetricsServiceRequest()
                decoded.ParseFromString(body)
                receiver.requests.put((self.path, self.headers["Content-Type"], decoded))
                answer = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/metrics"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.close()


def attributes(pairs: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in pairs if isinstance(kv, KeyValue)}


def points(request: ExportMetricsServiceRequest) -> dict[str, list[tuple[dict[str, str], float]]]:
    """metric name -> [(attributes, value)] over the whole request."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for resource_metrics in request.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                data = metric.gauge if metric.HasField("gauge") else metric.sum
                found.setdefault(metric.name, []).extend(
                    (attributes(p.attributes), p.as_double) for p in data.data_points
                )
    return found


def test_every_metric_has_its_own_opentelemetry_name() -> None:
    names = [m.otlp_name for m in METRICS.values()]
    assert len(names) == len(set(names))


def test_export_reaches_a_real_receiver_with_names_values_and_attributes(
    receiver: Receiver,
) -> None:
    source = FakeSource(populated_snapshot(NOW))
    config = OtlpConfig(endpoint=receiver.url, interval=3600, host_name="box-1")
    export = start_otlp_export(source, config)
    try:
        assert export.flush()
        path, content_type, request = receiver.requests.get(timeout=WAIT)
    finally:
        export.close()
    assert (path, content_type) == ("/v1/metrics", "application/x-protobuf")
    (resource_metrics,) = request.resource_metrics
    resource = attributes(resource_metrics.resource.attributes)
    assert resource["service.name"] == "memalert"
    assert resource["host.name"] == "box-1"
    found = points(request)
    assert ({"target": "api"}, 120.0 * MiB) in found["memory.rss_bytes"]
    assert found["memory.leak.size_bytes"] == [({"target": "api"}, 30.0 * MiB)]
    assert found["memory.component.size_bytes"] == [({"component": "cache", "target": "api"}, 52e6)]
    assert sorted(found["memory.up"], key=lambda p: p[0]["target"]) == [
        ({"target": "api"}, 1.0),
        ({"target": "batch"}, 0.0),
    ]
    assert found["memalert.outbox.backlog"] == [({}, 2.0)]
    assert ({"rule": "memory-leak", "severity": "critical", "state": "firing"}, 1.0) in found[
        "memalert.alerts"
    ]
    metrics = {
        m.name: m for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    ticks = metrics["memalert.ticks"]
    assert ticks.sum.is_monotonic
    assert ticks.sum.data_points[0].as_double == 5.0
    assert metrics["memory.rss_bytes"].unit == "By"
    assert metrics["memory.rss_bytes"].description == "Resident set size of the target."
    # Labels are masked exactly as on /metrics.
    assert SLACK_SECRET.encode() not in request.SerializeToString()


def test_each_export_reads_the_latest_snapshot(receiver: Receiver) -> None:
    source = FakeSource(populated_snapshot(NOW))
    export = start_otlp_export(source, OtlpConfig(endpoint=receiver.url, interval=3600))
    try:
        assert export.flush()
        first = points(receiver.requests.get(timeout=WAIT)[2])
        source.publish(EngineSnapshot(started_at=START, interval=15.0))
        assert export.flush()
        second = points(receiver.requests.get(timeout=WAIT)[2])
    finally:
        export.close()
    assert "memory.rss_bytes" in first
    assert "memory.rss_bytes" not in second
    assert second["memalert.ticks"] == [({}, 0.0)]


def test_a_missing_extra_is_a_clear_error_and_the_core_still_imports() -> None:
    script = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"  # what an install without the extra sees
        "import memalert.engine.http.server, memalert.engine.export.otlp\n"
        "from memalert.engine.export.otlp import MissingExtraError, start_otlp_export\n"
        "try:\n"
        "    start_otlp_export(None)\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'memalert[otlp]'" in result.stdout


def test_memalert_run_exports_over_otlp(tmp_path: Path, receiver: Receiver) -> None:
    """`memalert run --otlp URL` as a user runs it: a real daemon, a real receiver."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\ninterval: 1s\ntargets:\n  - {name: me, self: true}\n"
        "rules:\n  - name: me-rss\n    metric: rss_bytes\n    above: {warning: 1MiB}\n"
    )
    daemon = Daemon(rules, tmp_path / "state.db", dict(os.environ), tmp_path / "daemon.log")
    daemon.extra = ("--otlp", receiver.url)
    try:
        daemon.start()
        names: set[str] = set()
        deadline = time.monotonic() + WAIT
        while "memory.rss_bytes" not in names and time.monotonic() < deadline:
            try:
                _, _, request = receiver.requests.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            names |= set(points(request))
        assert "memory.rss_bytes" in names
        assert daemon.stop() == 0, daemon.text()
    finally:
        daemon.kill()
