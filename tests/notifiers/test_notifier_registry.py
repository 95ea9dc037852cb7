"""The scheme table: memalert's own schemes, apprise for the rest, mixed URLs, errors."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import pytest
from notifier_kit import WebhookServer, fired, note

from memalert.engine.core.model import NotifierConfig, Position
from memalert.notifiers.base import DeliveryResult, NotifierError, Redactor, Transport, UrlResult
from memalert.notifiers.registry import CompositeNotifier, build_notifier, build_notifiers
from memalert.notifiers.testing import RecordingNotifier

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.mark.integration
def test_mixed_urls_build_one_notifier_that_sends_to_all(
    tmp_path: Path, webhook: WebhookServer
) -> None:
    out = io.StringIO()
    path = tmp_path / "a.jsonl"
    urls = ("console://", path.as_uri(), f"json://127.0.0.1:{webhook.port}/x")
    notifier = build_notifier(
        NotifierConfig(name="all", urls=urls), env={}, transport=Transport(stream=out)
    )

    result = notifier.send(note(fired()))

    assert isinstance(notifier, CompositeNotifier)
    assert result.ok
    assert [u.url.split(":")[0] for u in result.urls] == ["console", "file", "json"]
    assert "FIRING" in out.getvalue()
    assert json.loads(path.read_text())["events"][0]["rule"] == "memory-leak"
    assert len(webhook.requests) == 1


@pytest.mark.integration
def test_a_mixed_notifier_names_its_urls_by_index_in_sending_order(
    tmp_path: Path, webhook: WebhookServer
) -> None:
    out = io.StringIO()
    path = tmp_path / "a.jsonl"
    hook = f"json://127.0.0.1:{webhook.port}/x"
    notifier = build_notifier(
        NotifierConfig(name="all", urls=(hook, "console://", path.as_uri())),
        env={},
        transport=Transport(stream=out),
    )
    # memalert's own URLs first, then apprise's: console 0, file 1, webhook 2.
    assert notifier.destinations.urls == ("console://stdout", path.as_uri(), hook)

    to_webhook = notifier.send(note(fired()), only=frozenset({2}))
    to_file = notifier.send(note(fired()), only=frozenset({1}))

    assert [(u.url, u.index) for u in to_webhook.urls] == [(hook, 2)]
    assert [(u.url, u.index) for u in to_file.urls] == [(path.as_uri(), 1)]
    assert (len(webhook.requests), path.read_text().count("\n"), out.getvalue()) == (1, 1, "")


def test_the_url_list_fingerprint_follows_the_rule_file_not_the_secrets() -> None:
    def fingerprint(urls: tuple[str, ...], env: dict[str, str]) -> str:
        notifier = build_notifier(NotifierConfig(name="n", urls=urls), env=env)
        return notifier.destinations.fingerprint

    env = {"TOKEN": "t0k3n-one", "OTHER": "t0k3n-one"}
    urls = ("json://127.0.0.1/${TOKEN}", "console://")
    assert fingerprint(urls, env) == fingerprint(urls, env)
    # A digest of what the rule file says, not of the values it expands to.
    assert fingerprint(urls, env) == fingerprint(urls, {"TOKEN": "t0k3n-two"})
    assert fingerprint(urls, env) != fingerprint(("json://127.0.0.1/${OTHER}", "console://"), env)
    assert fingerprint(urls, env) != fingerprint(urls[::-1], env)
    assert fingerprint(urls, env) != fingerprint((*urls, "console://stderr"), env)


def test_relative_file_url_is_a_configuration_error_with_its_position() -> None:
    config = NotifierConfig(
        name="log", urls=("file://alerts.jsonl",), position=Position(file="r.yaml", line=7, col=5)
    )
    with pytest.raises(NotifierError, match=r"^r\.yaml:7:5: notifier 'log': .*absolute path"):
        build_notifier(config, env={})


def test_unknown_console_stream_is_rejected() -> None:
    with pytest.raises(NotifierError, match="stdout, stderr"):
        build_notifier(NotifierConfig(name="c", urls=("console://printer",)), env={})


def test_no_urls_is_rejected() -> None:
    with pytest.raises(NotifierError, match="has no urls"):
        build_notifier(NotifierConfig(name="empty", urls=()), env={})


def test_every_notifier_problem_is_reported_together() -> None:
    configs = {
        "a": NotifierConfig(name="a", urls=("${MISSING_A}",)),
        "b": NotifierConfig(name="b", urls=("nosuch://x",)),
    }
    with pytest.raises(NotifierError) as caught:
        build_notifiers(configs, env={})
    problems = caught.value.diagnostics
    assert len(problems) == 2
    assert "MISSING_A" in problems[0].message
    assert "'b'" in problems[1].message


def test_environment_values_are_masked_in_results(tmp_path: Path) -> None:
    secret_dir = tmp_path / "private-dir-name"
    secret_dir.mkdir()
    config = NotifierConfig(name="log", urls=("file://${LOG_DIR}/a.jsonl",))
    result = build_notifier(config, env={"LOG_DIR": str(secret_dir)}).send(note(fired()))
    assert result.ok
    assert "private-dir-name" not in repr(result)


def test_redactor_masks_raw_and_percent_encoded_values_but_not_tiny_ones() -> None:
    redact = Redactor.of(["p@ss/word", "ab"])
    assert redact("x p@ss/word y p%40ss%2Fword z") == "x *** y *** z"
    assert redact("tab") == "tab"


def test_redactor_masks_the_private_fields_of_a_url_from_the_environment() -> None:
    """Telegram puts the bot token from the URL's host into its API's path: /bot<token>/."""
    redact = Redactor.of(["tgram://123456789:AAHdqTcvCH1vGWJxfSeof/-1001234?to=ops@example.com"])
    line = "POST /bot123456789:AAHdqTcvCH1vGWJxfSeof/sendMessage to=ops%40example.com"
    assert redact(line) == "POST /bot***/sendMessage to=***"


def test_delivery_result_merges_url_outcomes() -> None:
    ok = UrlResult(url="a", ok=True)
    bad = UrlResult(url="b", ok=False, detail="HTTP 500", retryable=True)
    result = DeliveryResult.from_urls("n", (ok, bad))
    assert (result.ok, result.partial, result.retryable) == (False, True, True)
    assert result.error == "b: HTTP 500"
    assert DeliveryResult.from_urls("n", (ok,)).ok


def test_recording_notifier_records_nothing_when_its_url_is_left_out() -> None:
    notifier = RecordingNotifier("rec")
    assert notifier.send(note(fired()), only=frozenset()).urls == ()
    assert notifier.attempts == []
    assert notifier.send(note(fired()), only=frozenset({0})).ok
    assert len(notifier.sent) == 1


def test_recording_notifier_fails_first_then_records() -> None:
    notifier = RecordingNotifier("rec", failures=1)
    first = notifier.send(note(fired()))
    second = notifier.send(note(fired()))
    assert (first.ok, first.retryable, second.ok) == (False, True, True)
    assert len(notifier.attempts) == 2
    assert len(notifier.sent) == 1
    assert notifier.events[0].rule == "memory-leak"
