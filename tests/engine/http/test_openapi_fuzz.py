"""docs/openapi.yaml against the live server: schemathesis generates requests from it.

For every operation, valid and invalid inputs (paths with random ids, headers,
bodies) go over real HTTP to a server on 127.0.0.1; each response must not be
a server error and must match what the document says (status code, content
type, headers, body schema). Every case is sent twice, without and with the
right bearer token, so the writes are exercised past authentication too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from http_fakes import START, TOKEN, FakeSource, populated_snapshot
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from memalert.engine.http.app import RateLimit
from memalert.engine.http.server import ServerHandle, serve
from memalert.engine.testing import FakeClock

pytestmark = pytest.mark.integration

OPENAPI = Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml"
schema = schemathesis.openapi.from_path(OPENAPI)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    handle = serve(
        FakeSource(populated_snapshot(START + 60)),
        port=0,
        env={"MEMALERT_API_TOKEN": TOKEN},
        # A ticking engine: /health's documented 503 is for a stalled one.
        clock=FakeClock(START + 60),
        # Generous, so most generated writes get past the limit to validation.
        write_limit=RateLimit(burst=1000, per_second=1000.0),
    )
    try:
        yield handle
    finally:
        handle.close()


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_matches_its_openapi_description(
    case: schemathesis.Case[Any], server: ServerHandle
) -> None:
    case.call_and_validate(base_url=server.url, checks=CHECKS)
    authorized = {"Authorization": f"Bearer {TOKEN}"}
    case.call_and_validate(base_url=server.url, headers=authorized, checks=CHECKS)
