"""`memalert top`: a running daemon's targets, live (docs/operations.md, "Live view: memalert top").

It reads the daemon's HTTP API (`/snapshot`, `/leaks`, `/alerts`; docs/http.md)
and prints `memalert.engine.http.top_table`'s lines. On a terminal,
`top_screen` redraws them with curses; otherwise the table is printed once, or
every `--interval`, as plain text. Every HTTP exchange ends by a deadline
(`--timeout` for the three requests together), so a daemon that stalls cannot
hang the view; a daemon that cannot be read is one error line, exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from memalert.engine.cli.commands import DEFAULT_LISTEN, duration_within, positive_duration
from memalert.engine.core.errors import EXIT_OK
from memalert.engine.core.limits import INTERVAL
from memalert.engine.core.units import format_duration
from memalert.engine.http.top_table import SORTS, TopDataError, build_table, render

PATHS = ("/snapshot", "/leaks", "/alerts")
DEFAULT_TIMEOUT = 5.0
LIVE_INTERVAL = 2.0  # like top's few seconds; the daemon renders each body once per tick


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
    from memalert.engine.cli.top_screen import show  # noqa: PLC0415 - curses, for a terminal only

    return show(
        documents,
        lambda: read_daemon(args.connect, args.timeout),
        source=source,
        sort=args.sort,
        interval=LIVE_INTERVAL if args.interval is None else args.interval,
    )


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
