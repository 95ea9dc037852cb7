"""The delivery worker's threads: a lane per notifier, so a hanging notifier holds up only itself.

Real threads, a real state file, and for the headline case real HTTP servers
on 127.0.0.1 behind real apprise notifiers. Every wait is bounded; nothing
asserts on elapsed time, only on what happened before what.
"""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from daemon_e2e_kit import events_in, wait_for
from store_kit import ScriptedNotifier, fired, note, raw

from memalert.engine.alerting.evaluate import EvalState
from memalert.engine.core.model import NotifierConfig
from memalert.engine.delivery.attempt import RetryPolicy
from memalert.engine.delivery.worker import DeliveryWorker
from memalert.engine.store.state import StateStore
from memalert.notifiers.base import DeliveryResult, Destinations, Transport, UrlResult
from memalert.notifiers.registry import build_notifiers

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from memalert.engine.alerting.routing import Notification

BOUND = 60.0
# A held request is answered after this at the latest; longer than BOUND, so a
# worker that waited for it would fail the test's wait rather than pass late.
HELD_AT_MOST = 2 * BOUND
# Apprise must not give up on a held request before the server answers it.
TRANSPORT = Transport(read_timeout=HELD_AT_MOST + BOUND, service_timeout=HELD_AT_MOST + BOUND)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(path: Path) -> Iterator[StateStore]:
    with StateStore(path) as opened:
        yield opened


def enqueue(store: StateStore, *notifications: Notification) -> None:
    store.commit_tick(EvalState(), list(notifications), now=time.time())


def outbox(path: Path) -> list[tuple[str, str, int]]:
    with raw(path) as conn:
        rows = conn.execute("SELECT notifier, status, attempts FROM outbox ORDER BY id")
        return [tuple(r) for r in rows]


def statuses(path: Path, notifier: str) -> list[str]:
    return [status for name, status, _ in outbox(path) if name == notifier]


class Timeline:
    """What the webhooks saw, in the order they saw it: (webhook, "received"|"answered", rule)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[str, str, str]] = []

    def add(self, entry: tuple[str, str, str]) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self, webhook: str | None = None) -> list[tuple[str, str, str]]:
        with self._lock:
            return [e for e in self._entries if webhook is None or e[0] == webhook]


class Webhook:
    """A JSON webhook on 127.0.0.1; with `held`, each request waits for `release` first."""

    def __init__(self, name: str, timeline: Timeline, *, held: bool = False) -> None:
        self.name = name
        self.release = threading.Event()
        if not held:
            self.release.set()
        webhook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                rules = [rule for _, _, rule in events_in(json.loads(body))]
                for rule in rules:
                    timeline.add((webhook.name, "received", rule))
                webhook.release.wait(HELD_AT_MOST)
                for rule in rules:
                    timeline.add((webhook.name, "answered", rule))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                del format, args

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,))

    def config(self) -> NotifierConfig:
        port = self._httpd.server_address[1]
        return NotifierConfig(name=self.name, urls=(f"json://127.0.0.1:{port}/hook",))

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=BOUND)


@pytest.mark.integration
def test_a_hanging_webhook_holds_up_its_own_messages_only(store: StateStore, path: Path) -> None:
    timeline = Timeline()
    with Webhook("slow", timeline, held=True) as slow, Webhook("fast", timeline) as fast:
        notifiers = build_notifiers(
            {w.name: w.config() for w in (slow, fast)}, env={}, transport=TRANSPORT
        )
        worker = DeliveryWorker(store, notifiers)
        worker.start()
        try:
            # "slow" first: one thread in creation order would be stuck on it.
            enqueue(store, note("slow", fired(rule="first")), note("fast", fired(rule="first")))
            wait_for("slow to hold the first", lambda: bool(timeline.entries("slow")))
            wait_for("fast's first recorded", lambda: statuses(path, "fast") == ["delivered"])
            enqueue(store, note("slow", fired(rule="second")), note("fast", fired(rule="second")))
            wait_for("fast's second recorded", lambda: statuses(path, "fast") == ["delivered"] * 2)
            # All this while, slow's first request was held, and its second waited behind it.
            assert timeline.entries("slow") == [("slow", "received", "first")]
            assert statuses(path, "slow") == ["pending", "pending"]
            slow.release.set()
            wait_for("slow's messages recorded", lambda: store.next_attempt_at() is None)
        finally:
            slow.release.set()
            assert worker.stop(timeout=BOUND)
    assert timeline.entries("fast") == [
        ("fast", "received", "first"),
        ("fast", "answered", "first"),
        ("fast", "received", "second"),
        ("fast", "answered", "second"),
    ]
    assert timeline.entries("slow") == [
        ("slow", "received", "first"),
        ("slow", "answered", "first"),
        ("slow", "received", "second"),
        ("slow", "answered", "second"),
    ]
    # Once each: nothing was retried or sent twice.
    assert outbox(path) == [(name, "delivered", 1) for name in ("slow", "fast") * 2]


class HeldNotifier:
    """Blocks in `send` until `release` (bounded), then reports success; counts its sends."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.entered = threading.Event()
        self.release = threading.Event()
        self.attempts = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def destinations(self) -> Destinations:
        return Destinations(urls=("test://held",), fingerprint="held")

    def send(
        self, notification: Notification, *, only: frozenset[int] | None = None
    ) -> DeliveryResult:
        del only  # its one URL: a pending item always still owes it
        self.attempts += 1
        self.entered.set()
        self.release.wait(HELD_AT_MOST)
        return DeliveryResult.from_urls(self._name, (UrlResult(url="test://held", ok=True),))


@pytest.fixture
def held() -> Iterator[HeldNotifier]:
    notifier = HeldNotifier("held")
    try:
        yield notifier
    finally:
        notifier.release.set()


def test_flush_while_running_lets_each_lane_finish_on_its_own(
    store: StateStore, held: HeldNotifier
) -> None:
    ops = ScriptedNotifier("ops", ["retry"])
    worker = DeliveryWorker(
        store,
        {"held": held, "ops": ops},
        retry=RetryPolicy(base_backoff=0.01, max_backoff=0.01),
    )
    worker.start()
    try:
        enqueue(store, note("held"), note("ops"))
        assert held.entered.wait(BOUND)
        flushed: list[bool] = []
        flusher = threading.Thread(target=lambda: flushed.append(worker.flush(time.time() + BOUND)))
        flusher.start()
        # ops fails, waits for its retry and is delivered, while held's send still hangs.
        assert ops.sent.acquire(timeout=BOUND)
        assert ops.sent.acquire(timeout=BOUND)
        wait_for("ops recorded", lambda: store.next_attempt_at("ops") is None)
        assert flushed == []  # held's item is still pending
        held.release.set()
        flusher.join(BOUND)
        assert flushed == [True]
    finally:
        held.release.set()
        assert worker.stop(timeout=BOUND)
    assert store.status(time.time()).backlog == 0


def test_run_once_leaves_a_notifier_its_lane_is_sending_to(
    store: StateStore, held: HeldNotifier
) -> None:
    worker = DeliveryWorker(store, {"held": held})
    worker.start()
    try:
        enqueue(store, note("held"))
        assert held.entered.wait(BOUND)
        assert worker.run_once() == 0  # not a second send of the item in flight
        held.release.set()
        wait_for("the item recorded", lambda: store.next_attempt_at() is None)
    finally:
        held.release.set()
        assert worker.stop(timeout=BOUND)
    assert held.attempts == 1


def test_stop_leaves_a_hanging_send_behind_with_its_item_pending(
    store: StateStore, held: HeldNotifier, path: Path
) -> None:
    worker = DeliveryWorker(store, {"held": held})
    worker.start()
    enqueue(store, note("held"))
    assert held.entered.wait(BOUND)
    assert worker.stop(timeout=0) is False
    assert outbox(path) == [("held", "pending", 0)]  # sent, not confirmed: sent again next run
    with pytest.raises(RuntimeError, match="already running"):
        worker.start()
    held.release.set()
    assert worker.stop(timeout=BOUND) is True


def lanes() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("memalert-delivery-")}


def test_a_lane_ends_when_its_notifier_has_nothing_pending_and_comes_back(
    store: StateStore,
) -> None:
    ops = ScriptedNotifier("ops")
    # An hour between looks: only a commit's wake-up can start a lane promptly.
    worker = DeliveryWorker(store, {"ops": ops}, idle_wait=3600.0)
    worker.start()
    try:
        for _ in range(3):
            enqueue(store, note("ops"))
            assert ops.sent.acquire(timeout=BOUND)
            wait_for("the lane to end", lambda: not lanes())
    finally:
        assert worker.stop(timeout=BOUND)
    assert store.status(time.time()).backlog == 0


def test_the_threads_deliver_on_commit_and_stop_promptly(store: StateStore) -> None:
    ops = ScriptedNotifier("ops")
    worker = DeliveryWorker(store, {"ops": ops}, idle_wait=3600.0)
    worker.start()
    try:
        enqueue(store, note("ops"))
        assert ops.sent.acquire(timeout=BOUND)
    finally:
        assert worker.stop(timeout=BOUND) is True
    worker.start()  # a stopped worker can start again, but only once
    with pytest.raises(RuntimeError, match="already running"):
        worker.start()
    assert worker.stop(timeout=BOUND)


class ErrorLatch(logging.Handler):
    """Sets `seen` when the worker logs that a pass failed (from its own thread)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "delivery pass failed" in record.getMessage():
            self.seen.set()


def test_a_lane_survives_a_failed_pass_and_loses_nothing(store: StateStore, path: Path) -> None:
    ops = ScriptedNotifier("ops")
    worker = DeliveryWorker(store, {"ops": ops}, idle_wait=3600.0)
    latch = ErrorLatch()
    logging.getLogger("memalert.delivery").addHandler(latch)
    with raw(path) as conn:
        conn.execute(
            "CREATE TRIGGER sabotage BEFORE UPDATE ON outbox"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    try:
        worker.start()
        enqueue(store, note("ops"))
        assert ops.sent.acquire(timeout=BOUND)  # sent, but recording it fails
        assert latch.seen.wait(timeout=BOUND)
        with raw(path) as conn:
            conn.execute("DROP TRIGGER sabotage")
        worker.wake()
        assert ops.sent.acquire(timeout=BOUND)  # sent again: at-least-once
    finally:
        assert worker.stop(timeout=BOUND)
        logging.getLogger("memalert.delivery").removeHandler(latch)
    assert outbox(path) == [("ops", "delivered", 1)]
