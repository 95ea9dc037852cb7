"""`file:///path.jsonl`: one JSON object per notification, appended to a 0600 file."""

from __future__ import annotations

import errno
import json
import os
from typing import TYPE_CHECKING

from memalert.notifiers.base import (
    DeliveryResult,
    Redactor,
    SingleUrlNotifier,
    UrlResult,
    fingerprint_urls,
)
from memalert.notifiers.render import notification_record

if TYPE_CHECKING:
    from pathlib import Path

    from memalert.engine.alerting.routing import Notification

# Errors a later attempt cannot fix without someone changing the configuration.
_PERMANENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EROFS})


class JsonLinesFileNotifier(SingleUrlNotifier):
    """Appends notifications as JSON Lines; the file is created owner-only (0600).

    Each send opens, appends and closes, so log rotation (rename, then a new
    file) needs no signal. `fsync` trades a disk flush per notification for
    not losing the last lines on power loss.
    """

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        fsync: bool = False,
        redact: Redactor | None = None,
        fingerprint: str | None = None,
    ) -> None:
        """`fingerprint`: of the configured URL list this file is part of (the registry
        passes it); by default, of the file's URL."""
        self._redact = redact or Redactor()
        super().__init__(
            name,
            url=self._redact(path.as_uri()),
            fingerprint=fingerprint or fingerprint_urls([path.as_uri()]),
        )
        self._path = path
        self._fsync = fsync

    @property
    def path(self) -> Path:
        return self._path

    def _deliver(self, notification: Notification) -> DeliveryResult:
        line = self._redact(json.dumps(notification_record(notification), ensure_ascii=False))
        url = self.url
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as out:
                out.write(line + "\n")
                if self._fsync:
                    out.flush()
                    os.fsync(out.fileno())
        except OSError as exc:
            failed = UrlResult(
                url=url,
                ok=False,
                detail=self._redact(f"cannot append to {self._path}: {exc.strerror or exc}"),
                retryable=exc.errno not in _PERMANENT_ERRNOS,
            )
            return DeliveryResult.from_urls(self._name, (failed,))
        written = UrlResult(url=url, ok=True, detail=f"{len(notification.events)} alerts appended")
        return DeliveryResult.from_urls(self._name, (written,))
