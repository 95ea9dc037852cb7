"""Shared parts of the notifier tests: alert events, and real servers on 127.0.0.1.

The servers are real (http.server, aiosmtpd) and record what they receive. A
request is recorded before it is answered, so once apprise's synchronous
`notify()` returns, the record is there: no waiting needed for HTTP and SMTP.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from memalert.engine.alerting.routing import Notification
from memalert.engine.core.model import AlertEvent, AlertFired, AlertResolved, Labels, Severity

if TYPE_CHECKING:
    from collections.abc import Mapping

MiB = 2**20
T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z


def fired(
    *,
    rule: str = "memory-leak",
    severity: Severity = Severity.CRITICAL,
    value: float = 150 * MiB,
    threshold: float = 100 * MiB,
    target: str = "api",
    summary: str = "api leaks 150 MiB",
    **labels: str,
) -> AlertEvent:
    return AlertFired(
        at=T0,
        rule=rule,
        metric="leak_bytes",
        severity=severity,
        labels=Labels({"target": target, **labels}),
        value=value,
        threshold=threshold,
        summary=summary,
        active_since=T0 - 360,
        firing_since=T0 - 300,
    )


def resolved(*, rule: str = "memory-leak", target: str = "api", **labels: str) -> AlertEvent:
    return AlertResolved(
        at=T0,
        rule=rule,
        metric="leak_bytes",
        severity=Severity.WARNING,
        labels=Labels({"target": target, **labels}),
        value=10 * MiB,
        threshold=50 * MiB,
        summary=f"{target} no longer leaks",
        active_since=T0 - 5400,
        firing_since=T0 - 5400,
    )


def note(*events: AlertEvent, notifier: str = "oncall") -> Notification:
    return Notification(notifier=notifier, at=T0, events=tuple(events))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, kw_only=True, slots=True)
class Received:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    at: float = 0.0  # time.monotonic() on arrival


class WebhookServer:
    """An HTTP server answering every request with `status` (200 unless told)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[Received] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                server.requests.append(
                    Received(
                        method="POST",
                        path=self.path,
                        headers=dict(self.headers),
                        body=body,
                        at=time.monotonic(),
                    )
                )
                self.send_response(server.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                del format, args  # keep test output quiet

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


@dataclass(frozen=True, kw_only=True, slots=True)
class Mail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


class SmtpServer:
    """aiosmtpd on 127.0.0.1 with AUTH over plain SMTP (no TLS), one account."""

    def __init__(self, *, user: str, password: str) -> None:
        self.port = free_port()
        self.mails: list[Mail] = []
        self.logins: list[str] = []
        server = self

        class Handler:
            async def handle_DATA(self, srv: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
                del srv, session
                server.mails.append(
                    Mail(
                        mail_from=envelope.mail_from,
                        rcpt_tos=tuple(envelope.rcpt_tos),
                        content=envelope.original_content,
                    )
                )
                return "250 OK"

        def authenticate(
            srv: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            del srv, session, envelope, mechanism
            ok = (
                isinstance(data, LoginPassword)
                and data.login == user.encode()
                and data.password == password.encode()
            )
            if ok:
                server.logins.append(user)
            return AuthResult(success=ok)

        self._controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticate,
            auth_require_tls=False,
            ready_timeout=10,
        )

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
