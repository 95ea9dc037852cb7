"""Connection limits of the HTTP server: a deadline per request and a bounded set of connections.

A socket timeout alone bounds each `recv`, not a request: a client that sends
one header byte every few seconds never trips it. `DeadlineReader` gives every
`recv` only what is left of the request's deadline instead.

A plain cap on connections lets a few hundred such clients hold every slot, so
`/health` and `/metrics` are refused while they trickle. `ConnectionTable` frees
a slot instead: when the table is full, a new connection evicts the one that has
waited longest for its request to arrive. A scraper sends its request at once
and is served in milliseconds, so the evicted one is a client that is idle
(keep-alive between requests) or stalling; a connection whose request is being
answered is never evicted.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionLimits:
    """`request_seconds`: from the wait for a request to its last body byte, at most;
    also the longest a response may take to send. `max_connections`: open at once."""

    request_seconds: float = 10.0
    max_connections: int = 256


class DeadlineReader(io.RawIOBase):
    """A socket's reading side whose every `recv` ends by the current deadline.

    `start()` sets the deadline `seconds` from now; past it, reads raise
    TimeoutError, which http.server answers by dropping the connection.
    """

    def __init__(
        self,
        sock: socket.socket,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._sock = sock
        self._seconds = seconds
        self._clock = clock
        self._deadline = clock() + seconds

    def start(self) -> None:
        self._deadline = self._clock() + self._seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        left = self._deadline - self._clock()
        if left <= 0:
            raise TimeoutError("the request took longer than its deadline")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class ConnectionTable:
    """At most `limit` connections; those waiting for a request may be evicted for new ones."""

    # How long a new connection waits for an evicted one's thread to give its slot back.
    EVICTION_WAIT_SECONDS = 1.0

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._slots = threading.BoundedSemaphore(limit)
        self._clock = clock
        self._lock = threading.Lock()
        # Connections waiting for (or reading) a request -> since when.
        self._waiting: dict[socket.socket, float] = {}

    def admit(self) -> bool:
        """Take a slot for a new connection, evicting the longest-waiting one if need be."""
        if self._slots.acquire(blocking=False):
            return True
        with self._lock:
            oldest = min(self._waiting, key=self._waiting.__getitem__, default=None)
            if oldest is not None:
                del self._waiting[oldest]
        if oldest is None:
            return False  # every connection is being answered: a true overload
        # Its thread wakes from recv with end-of-file, ends and releases its slot.
        with contextlib.suppress(OSError):
            oldest.shutdown(socket.SHUT_RDWR)
        return self._slots.acquire(timeout=self.EVICTION_WAIT_SECONDS)

    def release(self, sock: socket.socket) -> None:
        with self._lock:
            self._waiting.pop(sock, None)
        self._slots.release()

    def waiting(self, sock: socket.socket) -> None:
        """`sock` waits for its next request: evictable from now on."""
        with self._lock:
            self._waiting[sock] = self._clock()

    def answering(self, sock: socket.socket) -> bool:
        """`sock`'s request has arrived whole; False if it was evicted meanwhile."""
        with self._lock:
            return self._waiting.pop(sock, None) is not None
