"""`memalert relay` over a real socket: body limits, and the process's start and stop."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from relay_kit import RULES, webhook

from memalert.engine.relay.app import RelayConfig
from memalert.engine.relay.service import Relay
from memalert.engine.rules.load import load_rules
from memalert.engine.store.state import StateStore
from memalert.notifiers.testing import RecordingNotifier

pytestmark = pytest.mark.integration


def _relay(tmp_path: Path, notifier: RecordingNotifier) -> Relay:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    ruleset = load_rules([path])
    config = RelayConfig(
        rules={r.name: r for r in ruleset.rules},
        notifiers=frozenset({"hook"}),
        token=None,
        dedup_window=60.0,
    )
    return Relay(config, StateStore(tmp_path / "relay.db", exclusive=True), {"hook": notifier})


def _post(url: str, body: bytes) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - our server
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_webhooks_over_http_are_delivered_and_oversized_ones_refused_unread(
    tmp_path: Path,
) -> None:
    notifier = RecordingNotifier("hook")
    relay = _relay(tmp_path, notifier)
    relay.start("127.0.0.1", 0, max_body=2048)
    try:
        assert relay.url is not None
        status, answer = _post(relay.url + "/alertmanager/hook", webhook())
        assert (status, answer["status"]) == (200, "accepted")
        status, answer = _post(relay.url + "/alertmanager/hook", b"x" * 4096)
        assert status == 413
        assert "exceeds 2048 bytes" in str(answer["error"])
    finally:
        assert relay.stop(flush_timeout=10)
    assert len(notifier.sent) == 1
