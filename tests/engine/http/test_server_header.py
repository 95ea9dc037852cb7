"""The HTTP `Server` header names the installed version, as `memalert --version` does."""

from __future__ import annotations

import http.client
from importlib.metadata import version

import pytest
from http_fakes import START, FakeSource, populated_snapshot

from memalert.engine.http.server import serve

pytestmark = pytest.mark.integration


def test_server_header_carries_the_installed_version() -> None:
    handle = serve(FakeSource(populated_snapshot(START + 60)), port=0, env={})
    try:
        conn = http.client.HTTPConnection(handle.host, handle.port, timeout=30.0)
        try:
            conn.request("GET", "/health")
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
    finally:
        handle.close()
    assert response.getheader("Server") == f"memalert/{version('memalert')}"
