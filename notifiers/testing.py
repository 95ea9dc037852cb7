"""A real notifier that records what it is sent: for tests, dry-run and delivery-worker checks."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from memalert.notifiers.base import DeliveryResult, SingleUrlNotifier, UrlResult, fingerprint_urls

if TYPE_CHECKING:
    from memalert.engine.alerting.routing import Notification
    from memalert.engine.core.model import AlertEvent


class RecordingNotifier(SingleUrlNotifier):
    """Keeps every notification it is asked to send; optionally fails the first `failures`.

    `attempts` holds every call, `sent` only those reported delivered, so a
    retrying caller can be checked for both "nothing lost" and "nothing twice".
    Failures are reported as retryable, like a webhook answering 500. A send
    with `only` leaving out its one URL records nothing.
    """

    def __init__(self, name: str = "recording", *, failures: int = 0) -> None:
        url = f"recording://{name}"
        super().__init__(name, url=url, fingerprint=fingerprint_urls([url]))
        self._failures_left = failures
        self._lock = threading.Lock()
        self.attempts: list[Notification] = []
        self.sent: list[Notification] = []

    def _deliver(self, notification: Notification) -> DeliveryResult:
        with self._lock:
            self.attempts.append(notification)
            if self._failures_left > 0:
                self._failures_left -= 1
                result = UrlResult(
                    url=self.url, ok=False, detail="simulated failure", retryable=True
                )
            else:
                self.sent.append(notification)
                result = UrlResult(url=self.url, ok=True, detail="recorded")
        return DeliveryResult.from_urls(self._name, (result,))

    @property
    def events(self) -> list[AlertEvent]:
        """Every alert event delivered, in order, across all notifications."""
        with self._lock:
            return [event for note in self.sent for event in note.events]
