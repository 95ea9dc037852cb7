"""apprise delivery against real servers on 127.0.0.1: JSON webhook, SMTP (aiosmtpd), Slack.

Nothing inside apprise is patched: the plugins build real HTTP requests and
real SMTP sessions. The one redirection is Slack's, explained in its test.
"""

from __future__ import annotations

import email
import email.message
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from notifier_kit import SmtpServer, WebhookServer, fired, free_port, note, resolved

from memalert.engine.core.model import NotifierConfig, Severity
from memalert.notifiers.apprise_notifier import AppriseNotifier, instantiate_plugin
from memalert.notifiers.base import NotifierError, Transport
from memalert.notifiers.registry import build_notifier
from memalert.notifiers.render import TONE_COLOURS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from apprise import AppriseAsset

pytestmark = pytest.mark.integration

SECRET = "s3cret-Pa55word-xyz"


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(user="alerts", password=SECRET) as server:
        yield server


def test_json_webhook_receives_title_and_every_alert(webhook: WebhookServer) -> None:
    config = NotifierConfig(name="hook", urls=(f"json://127.0.0.1:{webhook.port}/alerts",))
    notifier = build_notifier(config, env={})

    result = notifier.send(note(fired(), resolved(target="db")))

    assert result.ok
    assert not result.retryable
    assert result.error == ""
    (url_result,) = result.urls
    assert url_result.ok
    assert url_result.url == f"json://127.0.0.1:{webhook.port}/alerts"
    (request,) = webhook.requests
    assert request.path == "/alerts"
    payload = json.loads(request.body)
    assert payload["title"] == "[memalert] 2 alerts: 1 firing (1 critical), 1 resolved"
    assert "[FIRING:critical] memory-leak {target=api} 150.0 MiB" in payload["message"]
    assert "after firing 1h30m" in payload["message"]
    assert payload["type"] == "failure"  # apprise's notify type for critical


def test_email_arrives_with_subject_severity_value_and_both_parts(smtp: SmtpServer) -> None:
    url = (
        f"mailto://alerts:${{SMTP_PASSWORD}}@127.0.0.1:{smtp.port}"
        "?from=memalert@example.com&to=oncall@example.com"
    )
    notifier = build_notifier(
        NotifierConfig(name="mail", urls=(url,)), env={"SMTP_PASSWORD": SECRET}
    )

    result = notifier.send(note(fired()))

    assert result.ok, result
    assert smtp.logins == ["alerts"]  # the password from the environment was used
    (mail,) = smtp.mails
    assert mail.rcpt_tos == ("oncall@example.com",)
    message = email.message_from_bytes(mail.content)
    assert message["Subject"] == "[memalert] FIRING critical: memory-leak on api"
    assert message.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): _text(part) for part in message.walk()}
    assert "critical" in parts["text/plain"]
    assert "150.0 MiB" in parts["text/plain"]
    assert "<b>[FIRING:critical] memory-leak on api</b>" in parts["text/html"]
    assert "Value: 150.0 MiB" in parts["text/html"]
    assert "Threshold: 100.0 MiB" in parts["text/html"]
    assert SECRET not in repr(result)


def _text(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else ""


def test_query_values_of_a_url_from_the_environment_never_reach_the_debug_log(
    webhook: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3 logs each request's path and query string at DEBUG: `-token=` goes there."""
    query_secret, header_secret = "qsSECRETvalue42", "hdrSECRETvalue43"
    url = f"json://127.0.0.1:{webhook.port}/in?-token={query_secret}&+X-Api-Key={header_secret}"
    config = NotifierConfig(name="hook", urls=("${HOOK_URL}",))
    notifier = build_notifier(config, env={"HOOK_URL": url})

    with caplog.at_level(logging.DEBUG):
        result = notifier.send(note(fired()))

    assert result.ok, result
    assert webhook.requests[0].path == f"/in?token={query_secret}"
    assert "POST /in?token=" in caplog.text  # urllib3's line is there ...
    assert query_secret not in caplog.text  # ... masked
    assert header_secret not in caplog.text
    assert query_secret not in repr(result)


def _slack_to(server: WebhookServer) -> Transport:
    def instantiate(url: str, asset: AppriseAsset) -> Any:
        plugin = instantiate_plugin(url, asset)
        # apprise's Slack plugin posts to the fixed host in its `webhook_url`
        # attribute (https://hooks.slack.com/services); there is no URL option
        # for it, so this test points that attribute of this one instance at
        # the local server. Everything else (payload, colour, title) is apprise's.
        plugin.webhook_url = f"http://127.0.0.1:{server.port}/services"
        return plugin

    return Transport(instantiate=instantiate)


def test_slack_payload_has_colour_by_severity_title_and_text(
    webhook: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The Slack plugin's webhook URL is redirected to a local server (see `_slack_to`)."""
    config = NotifierConfig(name="chat", urls=("${SLACK_WEBHOOK_URL}",))
    env = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefSECRETtoken123"
    }
    notifier = build_notifier(config, env=env, transport=_slack_to(webhook))

    with caplog.at_level(logging.DEBUG):
        sent = [
            notifier.send(note(fired(severity=Severity.CRITICAL))),
            notifier.send(note(fired(severity=Severity.WARNING, target="db_main"))),
            notifier.send(note(resolved())),
        ]

    assert all(r.ok for r in sent), sent
    assert all("abcdefSECRETtoken123" not in repr(r) for r in sent)
    assert "Slack POST URL" in caplog.text  # apprise logs the URL it posts to ...
    assert "abcdefSECRETtoken123" not in caplog.text  # ... masked, as does urllib3
    payloads = [json.loads(r.body) for r in webhook.requests]
    assert [r.path for r in webhook.requests] == [
        "/services/T0AAAAAAA/B0BBBBBBB/abcdefSECRETtoken123"
    ] * 3
    colours = [p["attachments"][0]["color"] for p in payloads]
    assert colours == [TONE_COLOURS["critical"], TONE_COLOURS["warning"], TONE_COLOURS["resolved"]]
    first = payloads[0]["attachments"][0]
    assert first["title"] == "[memalert] FIRING critical: memory-leak on api"
    assert "150.0 MiB" in first["text"]
    assert payloads[1]["attachments"][0]["text"].count("db_main") >= 1
    assert payloads[0]["mrkdwn"] is True


def test_server_error_is_a_retryable_failure_and_logs_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with WebhookServer(status=500) as failing:
        url = f"json://user:${{HOOK_TOKEN}}@127.0.0.1:{failing.port}/x"
        notifier = build_notifier(
            NotifierConfig(name="hook", urls=(url,)), env={"HOOK_TOKEN": SECRET}
        )
        with caplog.at_level(logging.DEBUG):
            result = notifier.send(note(fired()))
        assert len(failing.requests) == 1

    assert not result.ok
    assert result.retryable
    assert "500" in result.error
    (url_result,) = result.urls
    assert not url_result.ok
    assert url_result.retryable
    assert SECRET not in repr(result)
    assert SECRET not in caplog.text


def test_connection_refused_is_a_retryable_failure() -> None:
    port = free_port()  # nothing listens there any more
    notifier = build_notifier(
        NotifierConfig(name="hook", urls=(f"json://127.0.0.1:{port}/x",)), env={}
    )

    result = notifier.send(note(fired()))

    assert not result.ok
    assert result.retryable
    assert "failure" in result.error.lower()


def test_partial_success_is_reported_per_url(webhook: WebhookServer) -> None:
    dead = free_port()
    urls = (f"json://127.0.0.1:{webhook.port}/ok", f"json://127.0.0.1:{dead}/down")
    notifier = build_notifier(NotifierConfig(name="both", urls=urls), env={})

    result = notifier.send(note(fired()))

    assert not result.ok
    assert result.partial
    assert [u.ok for u in result.urls] == [True, False]
    assert str(dead) in result.error
    assert f"{webhook.port}/ok" not in result.error


def test_a_send_goes_only_to_the_urls_asked_for(webhook: WebhookServer) -> None:
    with WebhookServer() as other:
        urls = (f"json://127.0.0.1:{webhook.port}/a", f"json://127.0.0.1:{other.port}/b")
        notifier = build_notifier(NotifierConfig(name="both", urls=urls), env={})

        result = notifier.send(note(fired()), only=frozenset({1}))
        everywhere = notifier.send(note(fired()))

        assert (len(webhook.requests), len(other.requests)) == (1, 2)
    (second,) = result.urls
    assert (second.url, second.index, second.ok) == (urls[1], 1, True)
    assert [u.index for u in everywhere.urls] == [0, 1]
    assert notifier.destinations.urls == urls


def test_unknown_scheme_is_a_configuration_error() -> None:
    config = NotifierConfig(name="odd", urls=("nosuchservice://host/path",))
    with pytest.raises(NotifierError, match="no apprise service matches") as caught:
        build_notifier(config, env={})
    assert "'odd'" in str(caught.value)
    assert caught.value.exit_code == 1


def test_a_plugin_rejecting_its_parameters_is_a_configuration_error() -> None:
    url = f"mailto://alerts:{SECRET}@127.0.0.1:25?from=not-an-address"
    with pytest.raises(NotifierError) as caught:
        AppriseNotifier("mail", [url])
    assert "From" in str(caught.value)


def test_every_bad_url_is_reported_at_once() -> None:
    config = NotifierConfig(name="many", urls=("nosuch://a", "json://127.0.0.1/ok", "alsonot://b"))
    with pytest.raises(NotifierError) as caught:
        build_notifier(config, env={})
    assert len(caught.value.diagnostics) == 2


def test_missing_variable_names_the_variable() -> None:
    config = NotifierConfig(name="chat", urls=("${SLACK_WEBHOOK_URL}",))
    with pytest.raises(NotifierError, match="SLACK_WEBHOOK_URL"):
        build_notifier(config, env={})


def test_throttle_is_off_and_timeouts_are_set() -> None:
    transport = Transport(connect_timeout=2.5, read_timeout=7.0)
    notifier = AppriseNotifier(
        "t",
        ["mailto://a:b@127.0.0.1:2525?from=x@example.com", "json://127.0.0.1/x?rto=3"],
        transport=transport,
    )
    mail, hook = (e.plugin for e in notifier._endpoints)
    assert mail.request_rate_per_sec == 0
    assert (mail.socket_connect_timeout, mail.socket_read_timeout) == (2.5, 7.0)
    assert (hook.socket_connect_timeout, hook.socket_read_timeout) == (2.5, 3.0)


_LOADED_PLUGINS = """
import sys
from memalert.engine.core.model import NotifierConfig
from memalert.notifiers.registry import build_notifier
urls = (
    "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7",
    "mailtos://alerts:pw@smtp.example.com?to=oncall@example.com",
    "jsons://hooks.example.com/memalert",
    "alertmanager://hooks.example.com/api/alerts",
)
build_notifier(NotifierConfig(name="n", urls=urls), env={})
print(" ".join(sorted(m for m in sys.modules if m.startswith("apprise.plugins."))))
"""


def test_documented_schemes_do_not_load_every_apprise_plugin() -> None:
    root = Path(__file__).resolve().parents[2]
    completed = subprocess.run(
        [sys.executable, "-c", _LOADED_PLUGINS],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = set(completed.stdout.split())
    expected = {"apprise.plugins.slack", "apprise.plugins.email", "apprise.plugins.custom_json"}
    assert expected <= loaded
    assert "apprise.plugins.discord" not in loaded
    assert len(loaded) < 20  # apprise's own lookup imports over 200


def test_other_apprise_schemes_still_work_through_apprises_lookup() -> None:
    notifier = AppriseNotifier("push", ["ntfy://memalert-alerts"])
    assert notifier.urls == ("ntfys://memalert-alerts",)
