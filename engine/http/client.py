"""A GET of the daemon's JSON API that ends by a deadline, whatever the server does.

`memalert top` reads a daemon over the network. A socket timeout bounds each
read, not an answer: a server that sends a byte every few seconds would never
trip it. Every read here is given only what is left of one deadline instead
(`DeadlineReader`, the server's own guard against trickling clients), and the
body is refused beyond `MAX_BODY`.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import time
from typing import Any

from memalert.engine.core.errors import MemalertError
from memalert.engine.core.units import format_duration
from memalert.engine.http.connections import DeadlineReader

# A body larger than this is not one the daemon sends (1,000 targets are about 400 KB).
MAX_BODY = 64 * 1024 * 1024


class DaemonReadError(MemalertError):
    """The daemon could not be reached, did not answer in time, or answered something else."""


class _DeadlineSocket:
    """A connection's socket as http.client uses it, whose reads all end by one deadline."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock = sock
        self._reader = DeadlineReader(sock, seconds)

    def makefile(self, mode: str) -> io.BufferedReader:
        del mode  # http.client asks for "rb" only
        return io.BufferedReader(self._reader)

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close(self) -> None:
        # http.client closes its socket as soon as the headers say `Connection: close`,
        # before the body is read (its own makefile() keeps the socket open until then);
        # `get_json` closes the real socket once it has read the body.
        pass


class _Connection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, deadline: float) -> None:
        super().__init__(host, port, timeout=max(0.001, deadline - time.monotonic()))
        self._deadline = deadline
        self.raw: socket.socket | None = None

    def connect(self) -> None:
        super().connect()
        left = max(0.001, self._deadline - time.monotonic())
        self.raw = self.sock
        self.sock = _DeadlineSocket(self.sock, left)


def _detail(exc: Exception) -> str:
    # One line: a stranger's status line may hold anything.
    text = " ".join(str(exc).split())
    return "".join(c if c.isprintable() else "?" for c in text[:200]) or type(exc).__name__


def url_of(host: str, port: int, path: str = "") -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"


def get_json(host: str, port: int, path: str, *, deadline: float, timeout: float) -> Any:
    """The JSON body of `GET path`, read by `deadline` (time.monotonic); `timeout` is its length."""
    url = url_of(host, port, path)
    late = DaemonReadError(f"{url}: no answer within {format_duration(timeout)}")
    if deadline <= time.monotonic():
        raise late
    connection = _Connection(host, port, deadline)
    try:
        connection.request("GET", path, headers={"Accept": "application/json"})
        response = connection.getresponse()
        body = response.read(MAX_BODY + 1)
    except TimeoutError:
        raise late from None
    except OSError as exc:
        raise DaemonReadError(
            f"cannot read {url}: {_detail(exc)} (is `memalert run --listen` running there?)"
        ) from None
    except http.client.HTTPException as exc:
        raise DaemonReadError(
            f"{url}: not an answer of memalert's HTTP API ({type(exc).__name__}: {_detail(exc)})"
        ) from None
    finally:
        connection.close()
        if connection.raw is not None:
            connection.raw.close()
    if response.status != 200:
        raise DaemonReadError(f"{url}: HTTP {response.status} {response.reason}")
    if len(body) > MAX_BODY:
        raise DaemonReadError(f"{url}: the answer is larger than {MAX_BODY} bytes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise DaemonReadError(f"{url}: the answer is not JSON: {exc}") from None
