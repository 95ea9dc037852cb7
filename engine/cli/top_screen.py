"""`memalert top` on a terminal: curses redraws the table until `q`, Ctrl-C or SIGTERM.

Whichever ends it, `curses.wrapper` restores the terminal (the screen it
found, its tty settings). Loaded only when stdout is a terminal, so the daemon
and the other commands never load curses.
"""

from __future__ import annotations

import contextlib
import curses
import os
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from memalert.engine.core.errors import EXIT_OK, MemalertError
from memalert.engine.core.units import format_duration
from memalert.engine.http.top_table import SORTS, build_table, render

Documents = tuple[Any, Any, Any]


class TerminalError(MemalertError):
    """curses cannot drive this terminal (an unknown TERM)."""


class _StopError(Exception):
    """SIGTERM: unwinds through curses.wrapper, which restores the terminal."""


def show(
    documents: Documents,
    read: Callable[[], Documents],
    *,
    source: str,
    sort: str,
    interval: float,
) -> int:
    """Draw `documents`, then `read()` new ones every `interval` seconds; exit 0 when quit."""

    def stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        raise _StopError

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        curses.wrapper(_Screen(documents, read, source=source, sort=sort, interval=interval).run)
    except curses.error as exc:
        raise TerminalError(
            f"cannot draw on this terminal (TERM={os.environ.get('TERM', '')!r}): {exc}; "
            "pipe the output (`memalert top | cat`) for plain text"
        ) from None
    except (KeyboardInterrupt, _StopError):
        pass  # curses.wrapper has restored the terminal
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


class _Screen:
    """The view on a terminal: keys `q` (quit) and `s` (next sort order)."""

    def __init__(
        self,
        documents: Documents,
        read: Callable[[], Documents],
        *,
        source: str,
        sort: str,
        interval: float,
    ) -> None:
        self.documents, self.read = documents, read
        self.source, self.sort, self.interval = source, sort, interval
        self.error: str | None = None  # the last read's, shown until a read succeeds

    def run(self, screen: curses.window) -> None:
        with contextlib.suppress(curses.error):  # a terminal that cannot hide it shows it
            curses.curs_set(0)
        next_read = time.monotonic() + self.interval
        while True:
            self._draw(screen)
            screen.timeout(max(0, round((next_read - time.monotonic()) * 1000)))
            key = screen.getch()
            if key in (ord("q"), ord("Q")):
                return
            if key == ord("s"):
                self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
            if time.monotonic() >= next_read:
                self._read()
                next_read = time.monotonic() + self.interval

    def _read(self) -> None:
        try:
            self.documents = self.read()
            self.error = None
        except MemalertError as exc:  # keep the last table; the daemon may be restarting
            self.error = "; ".join(d.message for d in exc.diagnostics)

    def _draw(self, screen: curses.window) -> None:
        height, width = screen.getmaxyx()
        table = build_table(*self.documents, sort=self.sort)
        lines = render(
            table,
            source=self.source,
            sort=self.sort,
            now=time.time(),
            width=width,
            height=max(0, height - 1),
        )
        attributes = {
            "title": curses.A_BOLD,
            "header": curses.A_REVERSE,
            "firing": curses.A_BOLD,
        }
        status = (
            f"q quit  s sort  every {format_duration(self.interval)}"
            if self.error is None
            # What to do first: a long error is cut at the terminal's width.
            else f"retrying every {format_duration(self.interval)} (q quits): {self.error}"
        )
        screen.erase()
        for y, line in enumerate(lines):
            self._put(screen, y, line.text, attributes.get(line.emphasis, curses.A_NORMAL))
        if height > 0:
            self._put(screen, height - 1, status, curses.A_NORMAL)
        screen.refresh()

    def _put(self, screen: curses.window, y: int, text: str, attribute: int) -> None:
        # curses refuses to write the bottom-right cell, after writing the rest.
        with contextlib.suppress(curses.error):
            screen.addnstr(y, 0, text, screen.getmaxyx()[1], attribute)
