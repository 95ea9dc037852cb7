"""The console notifier: the default destination, readable lines, secrets masked."""

from __future__ import annotations

import io

from notifier_kit import fired, note, resolved

from memalert.engine.core.model import CONSOLE_NOTIFIER, NotifierConfig
from memalert.notifiers.base import Redactor, Transport
from memalert.notifiers.console import ConsoleNotifier
from memalert.notifiers.registry import build_notifier, build_notifiers


def test_writes_a_title_line_and_indented_alert_lines() -> None:
    out = io.StringIO()
    result = ConsoleNotifier(stream=out).send(note(fired(), resolved(target="db")))

    assert result.ok
    assert result.urls[0].url == "console://stdout"
    lines = out.getvalue().splitlines()
    assert lines[0] == "2025-11-24T16:00:00Z [memalert] 2 alerts: 1 firing (1 critical), 1 resolved"
    assert lines[1].startswith("    [FIRING:critical] memory-leak {target=api} 150.0 MiB")
    assert any("firing for 5m" in line for line in lines)
    assert any(line.startswith("    [RESOLVED:warning] memory-leak {target=db}") for line in lines)


def test_masks_environment_values_in_what_it_writes() -> None:
    out = io.StringIO()
    notifier = ConsoleNotifier(stream=out, redact=Redactor.of(["hunter2-token"]))
    notifier.send(note(fired(summary="token hunter2-token leaked")))
    assert "hunter2-token" not in out.getvalue()
    assert "token *** leaked" in out.getvalue()


def test_a_closed_stream_is_a_retryable_failure_not_an_exception() -> None:
    out = io.StringIO()
    out.close()
    result = ConsoleNotifier(stream=out).send(note(fired()))
    assert not result.ok
    assert result.retryable


def test_console_urls_and_the_default_console_notifier() -> None:
    out = io.StringIO()
    transport = Transport(stream=out)
    stderr = build_notifier(
        NotifierConfig(name="loud", urls=("console://stderr",)), env={}, transport=transport
    )
    built = build_notifiers(
        {"loud": NotifierConfig(name="loud", urls=("console://",))}, env={}, transport=transport
    )

    assert isinstance(stderr, ConsoleNotifier)
    assert set(built) == {"loud", CONSOLE_NOTIFIER}
    assert built[CONSOLE_NOTIFIER].send(note(fired())).ok
    assert "[memalert] FIRING critical" in out.getvalue()


def test_a_send_that_leaves_out_its_url_writes_nothing() -> None:
    out = io.StringIO()
    notifier = ConsoleNotifier(stream=out)
    skipped = notifier.send(note(fired()), only=frozenset())
    assert (skipped.ok, skipped.urls, out.getvalue()) == (True, (), "")
    (written,) = notifier.send(note(fired()), only=frozenset({0})).urls
    assert (written.ok, written.index) == (True, 0)
    assert notifier.destinations.urls == ("console://stdout",)
