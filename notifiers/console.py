"""`console://`: the default notifier; human-readable lines on a stream (stdout unless told)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from memalert.engine.core.units import rfc3339
from memalert.notifiers.base import (
    DeliveryResult,
    Redactor,
    SingleUrlNotifier,
    UrlResult,
    fingerprint_urls,
)
from memalert.notifiers.render import render_text

if TYPE_CHECKING:
    from memalert.engine.alerting.routing import Notification

STREAMS = ("stdout", "stderr")


class ConsoleNotifier(SingleUrlNotifier):
    """Writes each notification as a title line and one indented line per alert fact."""

    def __init__(
        self,
        name: str = "console",
        *,
        stream: TextIO | None = None,
        stream_name: str = "stdout",
        redact: Redactor | None = None,
        fingerprint: str | None = None,
    ) -> None:
        """`fingerprint`: of the configured URL list this console is part of (the registry
        passes it); by default, of its own URL."""
        if stream_name not in STREAMS:
            raise ValueError(f"console stream must be one of {STREAMS}, got {stream_name!r}")
        url = f"console://{stream_name}"
        super().__init__(name, url=url, fingerprint=fingerprint or fingerprint_urls([url]))
        self._stream = stream
        self._stream_name = stream_name
        self._redact = redact or Redactor()

    def _deliver(self, notification: Notification) -> DeliveryResult:
        message = render_text(notification)
        body = "".join(f"    {line}\n" for line in message.body.splitlines())
        text = self._redact(f"{rfc3339(notification.at)} {message.title}\n{body}")
        # Resolved at send time so that a stdout replaced after start-up is used.
        stream = self._stream or getattr(sys, self._stream_name)
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed
            failed = UrlResult(
                url=self.url, ok=False, detail=self._redact(str(exc)), retryable=True
            )
            return DeliveryResult.from_urls(self._name, (failed,))
        written = UrlResult(
            url=self.url, ok=True, detail=f"{len(notification.events)} alerts written"
        )
        return DeliveryResult.from_urls(self._name, (written,))
