"""`memalert top`: a running daemon's targets, live (docs/operations.md, "Live view: memalert top").

It reads the daemon's HTTP API (`/snapshot`, `/leaks`, `/alerts`; docs/http.md)
and draws `memalert.engine.http.top_table`'s lines. On a terminal, curses
redraws them every `--interval` until `q`, Ctrl-C or SIGTERM, and restores the
terminal whichever ends it; otherwise the table is printed once, or every
`--interval`, as plain text. Every HTTP exchange ends by a deadline
(`--timeout` for the three requests together), so a daemon that stalls cannot
hang the view; a daemon that cannot be read is one error line, exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import curses
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

from memalert.engine.cli.commands import DEFAULT_LISTEN, duration_within, positive_duration
from memalert.engine.core.errors import EXIT_OK, MemalertError
from memalert.engine.core.limits import INTERVAL
from memalert.engine.core.units import format_duration
from memalert.engine.http.top_table import SORTS, TopDataError, build_table, render

PATHS = ("/snapshot", "/leaks", "/alerts")
DEFAULT_TIMEOUT = 5.0
LIVE_INTERVAL = 2.0  # like top's few seconds; the daemon renders each body once per tick


class TerminalError(MemalertError):
    """curses cannot drive this terminal (an unknown TERM)."""


class _StopError(Exception):
    """SIGTERM: unwinds through curses.wrapper, which restores the terminal."""


def _address(text: str) -> tuple[str, int]:
    from memalert.engine.http.server import parse_listen  # noqa: PLC0415 - the server loads the exporters

    try:
        return parse_listen(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expects HOST:PORT, the daemon's --listen address (e.g. {DEFAULT_LISTEN}), "
            f"got {text!r}"
        ) from None


def add_top_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    top = commands.add_parser(
        "top", help="a live view of a running daemon's targets (reads its HTTP API)"
    )
    top.add_argument(
        "--connect",
        type=_address,
        default=DEFAULT_LISTEN,  # argparse runs it through `type`
        metavar="HOST:PORT",
        help=f"the daemon's `run --listen` address (default {DEFAULT_LISTEN})",
    )
    top.add_argument(
        "--sort",
        choices=SORTS,
        default=SORTS[0],
        help="order of the targets, most urgent first (default: confidence)",
    )
    top.add_argument(
        "--interval",
        type=duration_within(INTERVAL),
        metavar="D",
        help=f"redraw every D (default {format_duration(LIVE_INTERVAL)}); when not on a "
        "terminal, print the table every D (default: once)",
    )
    top.add_argument(
        "--timeout",
        type=positive_duration,
        default=DEFAULT_TIMEOUT,
        metavar="D",
        help="wait at most D for the daemon's three answers together "
        f"(default {format_duration(DEFAULT_TIMEOUT)})",
    )
    top.set_defaults(handler=cmd_top)


# -- reading the daemon ------------------------------------------------------------------


def read_daemon(address: tuple[str, int], timeout: float) -> tuple[Any, Any, Any]:
    """The three documents, within `timeout` in all; DaemonReadError says what went wrong."""
    from memalert.engine.http.client import DaemonReadError, get_json  # noqa: PLC0415 - http.client loads ssl

    host, port = address
    deadline = time.monotonic() + timeout
    snapshot, leaks, alerts = (
        get_json(host, port, path, deadline=deadline, timeout=timeout) for path in PATHS
    )
    try:  # the shape, checked now so that a bad document fails here, not while drawing
        build_table(snapshot, leaks, alerts)
    except TopDataError as exc:
        raise DaemonReadError(f"{host}:{port}: {exc}") from None
    return snapshot, leaks, alerts


# -- plain text and the terminal ---------------------------------------------------------


def cmd_top(args: argparse.Namespace) -> int:
    host, port = args.connect
    source = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    documents = read_daemon(args.connect, args.timeout)  # fails before the screen is taken
    if not sys.stdout.isatty():
        return _plain(args, source, documents)
    return _live(args, source, documents)


def _plain(args: argparse.Namespace, source: str, documents: tuple[Any, Any, Any]) -> int:
    try:
        while True:
            table = build_table(*documents, sort=args.sort)
            for line in render(table, source=source, sort=args.sort, now=time.time()):
                print(line.text)
            sys.stdout.flush()
            if args.interval is None:
                return EXIT_OK
            time.sleep(args.interval)
            documents = read_daemon(args.connect, args.timeout)
            print()
    except KeyboardInterrupt:  # Ctrl-C ends a repeating table: the normal way to stop it
        return EXIT_OK


def _live(args: argparse.Namespace, source: str, documents: tuple[Any, Any, Any]) -> int:
    def stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        raise _StopError

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        curses.wrapper(_Screen(args, source, documents).run)
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
        self, args: argparse.Namespace, source: str, documents: tuple[Any, Any, Any]
    ) -> None:
        self.args, self.source, self.documents = args, source, documents
        self.sort: str = args.sort
        self.interval: float = LIVE_INTERVAL if args.interval is None else args.interval
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
            self.documents = read_daemon(self.args.connect, self.args.timeout)
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
