"""`memalert relay` over a real socket: body limits, and the process's start and stop."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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
ROOT = Path(__file__).resolve().parents[3]


def _relay(tmp_path: Path, notifier: RecordingNotifier) -> Relay:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    ruleset = load_rules([path], env=None)
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


def _relay_process(tmp_path: Path, rules: Path, listen: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [
            *(sys.executable, "-m", "memalert.engine.cli", "relay", str(rules)),
            *("--listen", listen, "--state", str(tmp_path / "relay.db")),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_invalid_rule_files_stop_the_relay_with_their_positions(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text("version: 1\nrules:\n  - name: x\n    metric: nope\n    above: {warning: 1}\n")
    result = _relay_process(tmp_path, rules, "127.0.0.1:0")
    assert result.returncode == 1
    assert f"{rules}:4:13: unknown metric 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_stops_the_relay_with_exit_2(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _relay_process(tmp_path, rules, f"127.0.0.1:{taken.getsockname()[1]}")
    assert result.returncode == 2
    assert "cannot listen on" in result.stderr
    assert "Traceback" not in result.stderr
