"""`memalert relay RULES... --listen HOST:PORT`: the process (docs/scale-out.md).

SIGTERM / SIGINT: stop taking webhooks, deliver what is queued for at most
`--flush-timeout`, exit 0; the rest stays in the state file for the next start.
Signals are taken with `sigwait` by the main thread, as `memalert run` does.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal

from memalert.engine.cli.commands import positive_duration

log = logging.getLogger("memalert.relay")


def _listen(text: str) -> tuple[str, int]:
    from memalert.engine.http.server import parse_listen  # noqa: PLC0415 - only the relay needs it

    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_relay(args: argparse.Namespace) -> int:
    # Imported here: apprise and the HTTP server load only for the relay.
    from memalert.engine.cli.daemon import STOP_SIGNALS, configure_logging, refuse  # noqa: PLC0415
    from memalert.engine.core.errors import MemalertError, SetupError  # noqa: PLC0415
    from memalert.engine.relay.app import TOKEN_ENV  # noqa: PLC0415
    from memalert.engine.relay.service import Relay  # noqa: PLC0415

    configure_logging(args.log_level)
    try:
        relay = Relay.from_files(
            args.rules, state_path=args.state, env=os.environ, dedup_window=args.dedup_window
        )
    except MemalertError as exc:  # rule files, notifiers, the state file
        return refuse(exc)
    host, port = args.listen
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        try:
            relay.start(host, port, max_body=args.max_body)
        except OSError as exc:
            log.error("not started: cannot listen on %s:%d: %s", host, port, exc)
            relay.stop(0)
            return SetupError.exit_code
        if not os.environ.get(TOKEN_ENV):
            log.warning("%s is not set: the webhook endpoints take any request", TOKEN_ENV)
        log.info("memalert relay running: state %s (pid %d)", relay.store.path, os.getpid())
        received = signal.sigwait(STOP_SIGNALS)
        log.info("%s: stopping", signal.Signals(received).name)
        flushed = relay.stop(args.flush_timeout)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    if flushed:
        log.info("stopped; every notification was delivered")
    else:
        log.warning("stopped with notifications still queued; the next start sends them")
    return 0


def add_relay_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    relay = commands.add_parser(
        "relay", help="deliver Alertmanager's webhooks through memalert's notifiers"
    )
    relay.add_argument("rules", nargs="+", metavar="RULES", help="rule files or directories")
    relay.add_argument(
        "--listen",
        required=True,
        type=_listen,
        metavar="HOST:PORT",
        help="where Alertmanager posts (e.g. 127.0.0.1:9465)",
    )
    relay.add_argument(
        "--state",
        metavar="PATH",
        help="the relay's state database (default: $XDG_STATE_HOME/memalert/relay.db)",
    )
    relay.add_argument(
        "--dedup-window",
        type=positive_duration,
        metavar="D",
        help="the same webhook again within D is delivered once (default: repeat_interval / 2)",
    )
    relay.add_argument(
        "--max-body",
        type=int,
        default=4 * 1024 * 1024,
        metavar="BYTES",
        help="refuse larger webhooks with 413 (default 4 MiB)",
    )
    relay.add_argument(
        "--flush-timeout",
        type=positive_duration,
        default=10.0,
        metavar="D",
        help="on SIGTERM, keep delivering queued notifications this long (default 10s)",
    )
    relay.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    relay.set_defaults(handler=cmd_relay)
