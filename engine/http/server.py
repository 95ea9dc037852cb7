"""The socket side of the HTTP API: moves bytes between the network and `HttpApp`.

Only transport concerns live here; what to answer is `memalert.engine.http.app`'s job.
Safe by default: binds 127.0.0.1, refuses bodies over `MAX_BODY_BYTES` before
reading them, gives every request a deadline (however slowly it trickles in),
caps concurrent connections without letting stalled ones lock anyone out
(`memalert.engine.http.connections`), and answers even http.server's own
refusals (a malformed request line, oversized headers, a Content-Length that is
not ASCII digits) with a JSON error instead of its HTML page or a traceback.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from memalert.engine.core.release import VERSION
from memalert.engine.core.units import parse_decimal
from memalert.engine.http.app import (
    MAX_BODY_BYTES,
    HttpApp,
    RateLimit,
    Request,
    Response,
    error_response,
)
from memalert.engine.http.connections import ConnectionLimits, ConnectionTable, DeadlineReader
from memalert.engine.live.snapshot import SnapshotSource

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464
# The longest `close()` waits for the serving thread.
SOCKET_TIMEOUT_SECONDS = 10.0
# How often the accept loop checks for `close()`: the longest `close()` waits.
SHUTDOWN_POLL_SECONDS = 0.1


class App(Protocol):
    """What a server serves: `HttpApp`, or `memalert relay`'s app."""

    def handle(self, request: Request) -> Response: ...


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (loopback) or `[::1]:PORT` -> (host, port); ValueError if bad."""
    host, sep, port_text = text.rpartition(":")
    port = parse_decimal(port_text)
    if not sep or port is None or port > 65535:
        raise ValueError(f"--listen expects HOST:PORT (e.g. 127.0.0.1:9464), got {text!r}")
    host = host.removeprefix("[").removesuffix("]") or DEFAULT_HOST
    return host, port


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a scraper reuses its connection
    server: _Server
    _reader: DeadlineReader

    def setup(self) -> None:
        super().setup()
        # The buffered reader over a DeadlineReader replaces the plain one, closed
        # at once so that it holds no reference keeping the socket open.
        self.rfile.close()
        self._reader = DeadlineReader(self.connection, self.server.limits.request_seconds)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        # The deadline runs from the wait for the request: an idle keep-alive
        # connection is closed after it as well.
        self._reader.start()
        self.server.connections.waiting(self.connection)
        super().handle_one_request()

    def version_string(self) -> str:
        return f"memalert/{VERSION}"  # the Server header: ours, without Python's

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server answers a method without a do_<METHOD> with 501; every
        # method goes to the app instead, which answers 405 with an Allow header.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        if "transfer-encoding" in self.headers:
            self.send_error(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not chunks")
            return
        length = parse_decimal(self.headers.get("content-length", "0").strip())
        if length is None:
            self.send_error(HTTPStatus.BAD_REQUEST, "Content-Length is not a number")
            return
        if length > self.server.max_body:
            # Not read: the connection closes instead, so its rest is never parsed.
            limit = self.server.max_body
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body exceeds {limit} bytes")
            return
        request = Request(
            method=self.command,
            target=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        if not self.server.connections.answering(self.connection):
            self.close_connection = True  # evicted while its request trickled in
            return
        try:
            response = self.server.app.handle(request)
        except Exception:
            log.exception("HTTP %s %s failed", self.command, self.path[:200])
            response = error_response(500, "internal error; see the memalert log")
        self._send(response)

    def _send(self, response: Response, *, close: bool = False) -> None:
        # Reads left the socket with what remained of the deadline: a whole one to answer.
        self.connection.settimeout(self.server.limits.request_seconds)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in response.headers:
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals, as JSON; the connection closes after them."""
        status = HTTPStatus(code)
        # A request line it could not read leaves the version at HTTP/0.9, whose
        # responses have no status line: say why in HTTP/1.0 instead.
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        self._send(error_response(status.value, message or status.phrase), close=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The kernel's queue of connections not yet accepted: socketserver's 5 drops
    # (and the client retries a second later) when many scrapers connect at once.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        app: App,
        family: socket.AddressFamily,
        limits: ConnectionLimits,
        max_body: int = MAX_BODY_BYTES,
    ):
        self.address_family = family
        self.app = app
        self.limits = limits
        self.max_body = max_body
        self.connections = ConnectionTable(limits.max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.connections.admit():
            # Refused before a thread exists for it: overload cannot pile threads up.
            refusal = error_response(503, "too many connections")
            with contextlib.suppress(OSError):  # the client may be gone already
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(refusal.body), refusal.body)
                )
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, not socketserver's traceback on stderr: mostly a client that went away."""
        error = sys.exc_info()[1]
        log.warning("HTTP connection from %s ended: %r", client_address[0], error)
        log.debug("HTTP connection error", exc_info=error)


class ServerHandle:
    """A running server: `port` is the bound port (useful after asking for port 0)."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host: str = str(server.server_address[0])
        self.port: int = int(server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop accepting, wait for the serving loop to end, release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=SOCKET_TIMEOUT_SECONDS)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(
    source: SnapshotSource,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    write_limit: RateLimit | None = None,
    limits: ConnectionLimits | None = None,
) -> ServerHandle:
    """Serve the API over `source` on a background thread; port 0 picks a free port.

    `env` supplies MEMALERT_API_TOKEN (default: os.environ); without it the
    API is read-only. Raises OSError when the address cannot be bound.
    """
    app = HttpApp.from_env(
        source, os.environ if env is None else env, clock=clock, write_limit=write_limit
    )
    return serve_app(app, host, port, limits=limits)


def serve_app(
    app: App,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    max_body: int = MAX_BODY_BYTES,
    limits: ConnectionLimits | None = None,
    what: str = "the HTTP API",
) -> ServerHandle:
    """Serve `app` on a background thread with this module's limits; port 0 picks a free
    port. Bodies over `max_body` bytes are refused unread (413). Raises OSError when the
    address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = _Server((host, port), app, family, limits or ConnectionLimits(), max_body)
    thread = threading.Thread(
        target=server.serve_forever,
        args=(SHUTDOWN_POLL_SECONDS,),
        name="memalert-http",
        daemon=True,
    )
    thread.start()
    handle = ServerHandle(server, thread)
    if not _is_loopback(host):
        log.warning("%s listens on %s, beyond this machine", what, handle.url)
    log.info("serving %s on %s", what, handle.url)
    return handle
