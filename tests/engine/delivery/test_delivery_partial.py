"""A notifier with several URLs that partly fails: retries go only to the URLs still owed.

Real state files, and real servers on 127.0.0.1 (http.server, aiosmtpd) behind
real apprise notifiers built from rule-file configs; the worker's clock is a
FakeClock, so retries come due without sleeping.
"""

from __future__ import annotations

import io
import json
import logging
from typing import TYPE_CHECKING

import pytest
from notifier_kit import SmtpServer, WebhookServer
from store_kit import T0, ScriptedNotifier, SimulatedCrash, fired, note, raw, worker_for

from memalert.engine.alerting.evaluate import EvalState
from memalert.engine.core.model import NotifierConfig
from memalert.engine.delivery.worker import DeliveryWorker
from memalert.engine.store.state import StateStore
from memalert.engine.testing import FakeClock
from memalert.notifiers.base import Transport
from memalert.notifiers.registry import CompositeNotifier, build_notifiers
from memalert.notifiers.testing import RecordingNotifier

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


DAY = 24 * 3600.0
SMTP_PASSWORD = "s3cret-Pa55word-xyz"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(path: Path) -> Iterator[StateStore]:
    with StateStore(path) as opened:
        yield opened


def retry_when_due(worker: DeliveryWorker, store: StateStore, clock: FakeClock) -> int:
    """Move the clock to the next retry and make it; how many items were delivered."""
    due = store.next_attempt_at()
    assert due is not None, "nothing is waiting for a retry"
    clock.set(max(due, clock()))
    return worker.run_once(clock())


def webhook_url(server: WebhookServer, path: str) -> str:
    return f"json://127.0.0.1:{server.port}/{path}"


def logged_urls(path: Path) -> list[list[tuple[str, bool]]]:
    """Each notification log row's per-URL outcomes, oldest first."""
    with raw(path) as conn:
        rows = conn.execute("SELECT urls FROM notification_log ORDER BY id").fetchall()
    return [[(u["url"], u["ok"]) for u in json.loads(r[0])] for r in rows]


def outbox_rows(path: Path) -> list[tuple[str, int]]:
    with raw(path) as conn:
        return [tuple(r) for r in conn.execute("SELECT status, attempts FROM outbox ORDER BY id")]


@pytest.mark.integration
def test_a_retry_goes_only_to_the_url_that_failed(
    store: StateStore, clock: FakeClock, path: Path
) -> None:
    with WebhookServer() as good, WebhookServer(status=500) as bad:
        urls = (webhook_url(good, "good"), webhook_url(bad, "bad"))
        notifiers = build_notifiers({"oncall": NotifierConfig(name="oncall", urls=urls)}, env={})
        worker = worker_for(store, clock, notifiers)
        store.commit_tick(EvalState(), [note("oncall")], now=clock())

        assert worker.run_once(clock()) == 0
        assert retry_when_due(worker, store, clock) == 0
        assert retry_when_due(worker, store, clock) == 0
        bad.status = 200  # the server recovers
        assert retry_when_due(worker, store, clock) == 1

    assert len(good.requests) == 1  # accepted on the first try, never sent again
    assert len(bad.requests) == 4  # three 500s, then the 200
    assert json.loads(bad.requests[-1].body) == json.loads(good.requests[0].body)
    assert store.next_attempt_at() is None
    assert outbox_rows(path) == [("delivered", 4)]
    assert logged_urls(path) == [[(urls[0], True), (urls[1], True)]]


@pytest.mark.integration
def test_mail_server_down_then_up_gets_the_message_once_and_the_webhook_no_duplicate(
    store: StateStore, clock: FakeClock
) -> None:
    # Built, not started: its port refuses connections until `with mail:`.
    mail = SmtpServer(user="alerts", password=SMTP_PASSWORD)
    with WebhookServer() as hook:
        mailto = (
            f"mailto://alerts:${{SMTP_PASSWORD}}@127.0.0.1:{mail.port}"
            "?from=memalert@example.com&to=oncall@example.com"
        )
        urls = (webhook_url(hook, "chat"), mailto)
        notifiers = build_notifiers(
            {"oncall": NotifierConfig(name="oncall", urls=urls)},
            env={"SMTP_PASSWORD": SMTP_PASSWORD},
        )
        worker = worker_for(store, clock, notifiers)
        store.commit_tick(EvalState(), [note("oncall")], now=clock())

        assert worker.run_once(clock()) == 0
        assert retry_when_due(worker, store, clock) == 0
        (waiting,) = store.claim_due(clock() + DAY)
        assert "mailto://" in waiting.last_error
        assert SMTP_PASSWORD not in waiting.last_error
        with mail:
            assert retry_when_due(worker, store, clock) == 1

    assert len(hook.requests) == 1
    (received,) = mail.mails
    assert received.rcpt_tos == ("oncall@example.com",)


def test_a_dead_letter_names_the_urls_that_never_got_it(
    store: StateStore, clock: FakeClock, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chat = RecordingNotifier("chat")
    mail = ScriptedNotifier("mail", ["retry"] * 10_000)
    worker = worker_for(
        store, clock, {"oncall": CompositeNotifier("oncall", [chat, mail])}, max_backoff=3600.0
    )
    store.commit_tick(EvalState(), [note("oncall")], now=clock())
    passes = 0
    while store.next_attempt_at() is not None:
        retry_when_due(worker, store, clock)
        passes += 1
        assert passes < 200

    (dead,) = store.status(clock()).dead_letters
    assert dead.reason.startswith("not delivered within 1d")
    assert dead.reason.endswith("; delivered to recording://chat but never to test://mail")
    assert len(chat.sent) == 1
    assert len(mail.attempts) == dead.attempts == passes
    assert logged_urls(path) == [[("recording://chat", True), ("test://mail", False)]]
    assert "never to test://mail" in caplog.text


def test_an_item_dying_without_a_try_still_names_the_urls_it_reached(
    store: StateStore, clock: FakeClock, path: Path
) -> None:
    chat, mail = RecordingNotifier("chat"), ScriptedNotifier("mail", ["retry"])
    worker = worker_for(store, clock, {"oncall": CompositeNotifier("oncall", [chat, mail])})
    store.commit_tick(EvalState(), [note("oncall")], now=clock())
    assert worker.run_once(clock()) == 0
    clock.advance(DAY + 1)  # the daemon was down for a day
    assert worker.run_once(clock()) == 0

    assert len(mail.attempts) == 1
    (dead,) = store.status(clock()).dead_letters
    assert dead.reason == (
        "not delivered within 1d (1 attempts; last error: test://mail: HTTP 500)"
        "; delivered to recording://chat but never to test://mail"
    )
    assert logged_urls(path) == [[("recording://chat", True), ("test://mail", False)]]


def test_a_rejection_kills_the_item_only_once_no_owed_url_can_take_it(
    store: StateStore, clock: FakeClock
) -> None:
    chat = RecordingNotifier("chat")
    hook = ScriptedNotifier("hook", ["retry"])
    form = ScriptedNotifier("form", ["reject", "reject"])
    notifier = CompositeNotifier("oncall", [chat, hook, form])
    worker = worker_for(store, clock, {"oncall": notifier})
    store.commit_tick(EvalState(), [note("oncall")], now=clock())

    assert worker.run_once(clock()) == 0  # hook may still take it: retried
    assert retry_when_due(worker, store, clock) == 0  # hook took it, form rejected it again

    (dead,) = store.status(clock()).dead_letters
    assert dead.reason == (
        "rejected: test://form: HTTP 400 bad request"
        "; delivered to recording://chat, test://hook but never to test://form"
    )
    assert (len(chat.attempts), len(hook.attempts), len(form.attempts)) == (1, 2, 2)


@pytest.mark.integration
def test_a_reload_with_the_same_urls_keeps_what_was_reached(
    store: StateStore, clock: FakeClock, path: Path
) -> None:
    out = io.StringIO()
    with WebhookServer() as good, WebhookServer(status=503) as bad:
        # console:// is sent first, then the apprise URLs: indexes 0, 1, 2.
        config = NotifierConfig(
            name="oncall", urls=(webhook_url(good, "good"), "console://", webhook_url(bad, "bad"))
        )
        transport = Transport(stream=out)
        worker = worker_for(
            store, clock, build_notifiers({"oncall": config}, env={}, transport=transport)
        )
        store.commit_tick(EvalState(), [note("oncall")], now=clock())
        assert worker.run_once(clock()) == 0
        # SIGHUP: the notifiers are rebuilt from an unchanged rule file.
        worker.replace_notifiers(build_notifiers({"oncall": config}, env={}, transport=transport))
        bad.status = 200
        assert retry_when_due(worker, store, clock) == 1

    console_messages = out.getvalue().count("[memalert] FIRING")
    assert (len(good.requests), console_messages, len(bad.requests)) == (1, 1, 2)
    assert [url for url, _ in logged_urls(path)[0]] == [
        "console://stdout",
        webhook_url(good, "good"),
        webhook_url(bad, "bad"),
    ]


@pytest.mark.integration
def test_a_reload_that_changes_the_urls_sends_to_every_url_again(
    store: StateStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with WebhookServer() as good, WebhookServer(status=500) as bad, WebhookServer() as moved:
        before = NotifierConfig(name="oncall", urls=(webhook_url(good, "a"), webhook_url(bad, "b")))
        worker = worker_for(store, clock, build_notifiers({"oncall": before}, env={}))
        store.commit_tick(EvalState(), [note("oncall")], now=clock())
        assert worker.run_once(clock()) == 0
        # The first URL is replaced: index 0, which had the message, now names another URL.
        after = NotifierConfig(name="oncall", urls=(webhook_url(moved, "a"), webhook_url(bad, "b")))
        worker.replace_notifiers(build_notifiers({"oncall": after}, env={}))
        bad.status = 200
        with caplog.at_level(logging.INFO, logger="memalert.delivery"):
            assert retry_when_due(worker, store, clock) == 1

    # The new URL gets the message; so does the unchanged one that had it (at-least-once).
    assert (len(good.requests), len(moved.requests), len(bad.requests)) == (1, 1, 2)
    assert "sending it to every URL again" in caplog.text


def test_a_crash_before_recording_repeats_only_the_url_in_flight(
    path: Path, clock: FakeClock
) -> None:
    store = StateStore(path)
    chat = RecordingNotifier("chat")
    mail = ScriptedNotifier("mail", ["retry", "crash"])
    worker = worker_for(store, clock, {"oncall": CompositeNotifier("oncall", [chat, mail])})
    store.commit_tick(EvalState(), [note("oncall", fired())], now=clock())
    assert worker.run_once(clock()) == 0  # chat took it; mail failed, which was recorded
    with pytest.raises(SimulatedCrash):
        retry_when_due(worker, store, clock)  # the mail server took it, then the process died
    store.close()

    mail_again = ScriptedNotifier("mail")
    after_restart = CompositeNotifier("oncall", [chat, mail_again])
    with StateStore(path) as reopened:
        assert retry_when_due(
            worker_for(reopened, clock, {"oncall": after_restart}), reopened, clock
        )
    assert len(chat.attempts) == 1
    # The mail server had it before the crash and gets it again: at-least-once.
    assert (len(mail.attempts), len(mail_again.attempts)) == (2, 1)
    assert outbox_rows(path) == [("delivered", 2)]
