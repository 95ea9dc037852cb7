"""Shared parts of the state store and delivery tests: events, notifiers, raw SQL access."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from random import Random
from typing import TYPE_CHECKING, Any

from memalert.engine.alerting.routing import Notification
from memalert.engine.core.model import AlertEvent, AlertFired, AlertResolved, Labels, Severity
from memalert.engine.delivery.attempt import RetryPolicy
from memalert.engine.delivery.worker import DeliveryWorker
from memalert.notifiers.base import DeliveryResult, Destinations, UrlResult, fingerprint_urls

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from memalert.engine.store.state import StateStore
    from memalert.engine.testing import FakeClock
    from memalert.notifiers.base import Notifier

T0 = 1_764_000_000.0


def fired(
    *, at: float = T0, rule: str = "rss-high", target: str = "api", value: float = 2e9
) -> AlertEvent:
    return AlertFired(
        at=at,
        rule=rule,
        metric="rss_bytes",
        severity=Severity.CRITICAL,
        labels=Labels(target=target),
        value=value,
        threshold=1e9,
        summary=f"{target} uses {value:.0f} bytes",
        active_since=at - 60,
        firing_since=at,
    )


def resolved(*, at: float = T0, rule: str = "rss-high", target: str = "api") -> AlertEvent:
    return AlertResolved(
        at=at,
        rule=rule,
        metric="rss_bytes",
        severity=Severity.CRITICAL,
        labels=Labels(target=target),
        value=1e8,
        threshold=1e9,
        firing_since=at - 300,
        reason="",
    )


def note(notifier: str, *events: AlertEvent, at: float = T0) -> Notification:
    return Notification(notifier=notifier, at=at, events=events or (fired(at=at),))


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A second, plain connection to the state file: to look, or to sabotage."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        yield conn
    finally:
        conn.close()


def scalar(path: Path, sql: str, *params: Any) -> Any:
    with raw(path) as conn:
        return conn.execute(sql, params).fetchone()[0]


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in memalert catches it."""


class ScriptedNotifier:
    """Answers each send with the next scripted outcome, then "ok" forever.

    Outcomes: "ok", "retry" (a 500), "reject" (a 400), "crash" (the process
    dies right after the server accepted the message), or an exception to raise.
    """

    def __init__(self, name: str, script: Sequence[str | Exception] = ()) -> None:
        self._name = name
        self._script = list(script)
        self._lock = threading.Lock()
        self.attempts: list[Notification] = []
        self.sent = threading.Semaphore(0)  # released once per send, for threaded tests

    @property
    def name(self) -> str:
        return self._name

    @property
    def destinations(self) -> Destinations:
        url = f"test://{self._name}"
        return Destinations(urls=(url,), fingerprint=fingerprint_urls([url]))

    def send(
        self, notification: Notification, *, only: frozenset[int] | None = None
    ) -> DeliveryResult:
        del only  # its one URL: a pending item always still owes it
        with self._lock:
            self.attempts.append(notification)
            outcome = self._script.pop(0) if self._script else "ok"
        self.sent.release()
        if isinstance(outcome, Exception):
            raise outcome
        if outcome == "crash":
            raise SimulatedCrash
        url = f"test://{self._name}"
        if outcome == "ok":
            return DeliveryResult.from_urls(self._name, (UrlResult(url=url, ok=True),))
        retryable = outcome == "retry"
        detail = "HTTP 500" if retryable else "HTTP 400 bad request"
        return DeliveryResult.from_urls(
            self._name, (UrlResult(url=url, ok=False, detail=detail, retryable=retryable),)
        )


def worker_for(
    store: StateStore,
    clock: FakeClock,
    notifiers: Mapping[str, Notifier],
    *,
    base_backoff: float = 1.0,
    max_backoff: float = 300.0,
) -> DeliveryWorker:
    """A worker on fake time: its waits advance `clock`, its jitter is seeded."""
    return DeliveryWorker(
        store,
        notifiers,
        clock=clock,
        random=Random(7),
        sleep=clock.advance,
        retry=RetryPolicy(base_backoff=base_backoff, max_backoff=max_backoff),
    )
