"""The daemon's commands: `run`, `notify-test`, `silence`, `status` (docs/operations.md).

`add_daemon_commands` adds their parsers to `memalert`'s; each handler returns
the exit code. `run` and `notify-test` import the engine and apprise only when
they run, so `memalert check` stays quick to start.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from memalert.engine.alerting.messages import describe_labels
from memalert.engine.alerting.routing import Notification
from memalert.engine.alerting.views import silence_view
from memalert.engine.core.errors import EXIT_FAILED, EXIT_OK
from memalert.engine.core.limits import (
    FLUSH_TIMEOUT,
    POSITIVE_DURATION,
    SILENCE_DURATION,
    TIME,
    Range,
)
from memalert.engine.core.model import CONSOLE_NOTIFIER, AlertFired, Labels, Severity
from memalert.engine.core.units import format_duration, parse_duration, parse_rfc3339, rfc3339
from memalert.engine.rules.values import format_value

if TYPE_CHECKING:
    from collections.abc import Callable

    from memalert.engine.store.records import SilenceRecord, StoredAlert, StoreStatus
    from memalert.engine.store.state import StateStore

NOTIFY_TEST_RULE = "notify-test"
DEFAULT_LISTEN = "127.0.0.1:9464"  # memalert.engine.http.server's default address


def _print(line: str = "") -> None:
    print(line)


def _print_error(line: str) -> None:
    print(line, file=sys.stderr)


# -- argument types ----------------------------------------------------------------


def _within(parse: Callable[[str], float], limits: Range, what: str) -> Callable[[str], float]:
    """An argparse type: `parse` the text, then refuse a value outside `limits`."""

    def checked(text: str) -> float:
        try:
            value = parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        problem = limits.problem(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{text!r}: the {what} {problem}")
        return value

    return checked


def duration_within(limits: Range) -> Callable[[str], float]:
    return _within(parse_duration, limits, "duration")


# A relay's windows and waits, an export's intervals.
positive_duration = duration_within(POSITIVE_DURATION)
_time = _within(parse_rfc3339, TIME, "time")


def _matcher(text: str) -> tuple[str, str]:
    label, sep, pattern = text.partition("=")
    if not sep or not label.strip() or not pattern:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not LABEL=GLOB (e.g. target=batch-*, severity=warning)"
        )
    return label.strip(), pattern


def _listen(text: str) -> tuple[str, int]:
    from memalert.engine.http.server import parse_listen  # noqa: PLC0415 - only `run --listen` needs it

    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _state_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        metavar="PATH",
        help="state database (default: $XDG_STATE_HOME/memalert/state.db)",
    )


def add_daemon_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="the daemon: evaluate rules, deliver notifications")
    run.add_argument(
        "rules",
        nargs="*",
        metavar="RULES",
        help="rule files or directories; none: the built-in rules (see --print-defaults)",
    )
    run.add_argument(
        "--print-defaults",
        action="store_true",
        help="print the built-in rules as a rule file to start from, and exit",
    )
    _state_argument(run)
    run.add_argument(
        "--flush-timeout",
        type=duration_within(FLUSH_TIMEOUT),
        default=10.0,
        metavar="D",
        help="on SIGTERM, keep delivering queued notifications this long (default 10s)",
    )
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    run.add_argument(
        "--listen",
        nargs="?",
        const=DEFAULT_LISTEN,
        type=_listen,
        metavar="HOST:PORT",
        help=f"serve the HTTP API (docs/http.md); alone: {DEFAULT_LISTEN}; default: no HTTP",
    )
    run.add_argument(
        "--otlp",
        nargs="?",
        const="",
        metavar="URL",
        help="export metrics over OTLP/HTTP (needs memalert[otlp]); alone: the endpoint from "
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT",
    )
    run.set_defaults(handler=cmd_run)

    test = commands.add_parser("notify-test", help="send one test message through a notifier")
    test.add_argument("notifier", metavar="NOTIFIER", help="a name under `notifiers:`")
    test.add_argument("rules", nargs="*", metavar="RULES", help="rule files declaring it")
    test.set_defaults(handler=cmd_notify_test)

    silence = commands.add_parser("silence", help="silences in the state database")
    actions = silence.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="silence matching alerts for a while")
    add.add_argument(
        "--match",
        action="append",
        required=True,
        type=_matcher,
        metavar="LABEL=GLOB",
        help="label matcher; repeat for several (all must match); labels include "
        "target, rule and severity",
    )
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument(
        "--duration", type=duration_within(SILENCE_DURATION), metavar="D", help="e.g. 2h"
    )
    until.add_argument("--until", type=_time, metavar="RFC3339", help="end time")
    add.add_argument("--starts", type=_time, metavar="RFC3339", help="start time (default: now)")
    add.add_argument("--comment", default="", help="why")
    add.add_argument("--author", default=None, help="who (default: the user name)")
    _state_argument(add)
    add.set_defaults(handler=cmd_silence_add)
    listing = actions.add_parser("list", help="silences in force and to come")
    listing.add_argument("--all", action="store_true", help="include ended and expired ones")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    _state_argument(listing)
    listing.set_defaults(handler=cmd_silence_list)
    expire = actions.add_parser("expire", help="end a silence now")
    expire.add_argument("id", metavar="ID")
    _state_argument(expire)
    expire.set_defaults(handler=cmd_silence_expire)

    status = commands.add_parser("status", help="alerts, silences, outbox backlog, dead letters")
    status.add_argument("--format", choices=("text", "json"), default="text")
    _state_argument(status)
    status.set_defaults(handler=cmd_status)


# -- run and notify-test ---------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from memalert.engine.cli.daemon import run_daemon  # noqa: PLC0415 - apprise and APScheduler load here
    from memalert.engine.rules.load import DEFAULT_RULES  # noqa: PLC0415 - the rules core loads here

    if args.print_defaults:
        _print(DEFAULT_RULES.read_text(encoding="utf-8").rstrip("\n"))
        return EXIT_OK
    return run_daemon(
        args.rules or [DEFAULT_RULES],
        state_path=args.state,
        flush_timeout=args.flush_timeout,
        log_level=args.log_level,
        listen=args.listen,
        otlp_endpoint=args.otlp,
    )


def notify_test_message(notifier: str, now: float) -> Notification:
    """What `notify-test` sends: one warning that says it is a test."""
    event = AlertFired(
        at=now,
        rule=NOTIFY_TEST_RULE,
        metric="up",
        severity=Severity.WARNING,
        labels=Labels(target="memalert", notifier=notifier),
        value=1.0,
        summary=f"test message from `memalert notify-test {notifier}`; no action needed",
    )
    return Notification(notifier=notifier, at=now, events=(event,))


def cmd_notify_test(args: argparse.Namespace) -> int:
    from memalert.engine.rules.load import load_rules  # noqa: PLC0415 - the rules core is not needed elsewhere here
    from memalert.notifiers.registry import build_notifiers  # noqa: PLC0415 - apprise loads in ~0.4 s

    name = args.notifier
    configs = load_rules(args.rules, env=os.environ).notifiers if args.rules else {}
    if name not in configs and name != CONSOLE_NOTIFIER:
        known = ", ".join(sorted({*configs, CONSOLE_NOTIFIER}))
        where = " in " + ", ".join(args.rules) if args.rules else " (give the rule files)"
        _print_error(f"error: no notifier named {name!r}{where}; configured: {known}")
        return EXIT_FAILED
    # Only the notifier under test is built: another's unset ${VAR} is not this test's failure.
    only = {name: configs[name]} if name in configs else {}
    notifier = build_notifiers(only, env=os.environ)[name]
    result = notifier.send(notify_test_message(name, time.time()))
    for url in result.urls:
        _print(f"{'ok' if url.ok else 'FAILED'}  {url.url}  {url.detail}".rstrip())
    if result.ok:
        _print(f"delivered through {name!r}")
        return EXIT_OK
    _print_error(f"error: notifier {name!r} failed{' (partly)' if result.partial else ''}")
    return EXIT_FAILED


# -- silences and status ---------------------------------------------------------------


def _open_store(args: argparse.Namespace, *, create: bool) -> StateStore:
    from memalert.engine.store.state import StateStore  # noqa: PLC0415 - sqlite3 only for these commands

    return StateStore(args.state, create=create)


def cmd_silence_add(args: argparse.Namespace) -> int:
    now = time.time()
    starts = now if args.starts is None else args.starts
    ends = args.until if args.until is not None else starts + args.duration
    author = args.author if args.author is not None else _user()
    with _open_store(args, create=True) as store:
        silence_id = store.add_silence(
            matchers=dict(args.match),
            starts=starts,
            ends=ends,
            now=now,
            comment=args.comment,
            author=author,
        )
    _print(silence_id)
    return EXIT_OK


def cmd_silence_list(args: argparse.Namespace) -> int:
    now = time.time()
    with _open_store(args, create=False) as store:
        records = store.list_silences(now, include_expired=args.all)
    if args.format == "json":
        _print(json.dumps([_silence_json(r, now) for r in records], indent=2))
        return EXIT_OK
    if not records:
        _print("no silences")
    for record in records:
        _print(_silence_line(record, now))
    return EXIT_OK


def cmd_silence_expire(args: argparse.Namespace) -> int:
    with _open_store(args, create=False) as store:
        expired = store.expire_silence(args.id, time.time())
    if not expired:
        _print_error(f"error: no silence {args.id!r} is in force")
        return EXIT_FAILED
    _print(f"expired {args.id}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    now = time.time()
    with _open_store(args, create=False) as store:
        status = store.status(now)
    if args.format == "json":
        _print(json.dumps(_status_json(status, now), indent=2))
    else:
        for line in _status_lines(status, now):
            _print(line)
    return EXIT_OK


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _severity(alert: StoredAlert) -> Severity:
    """The level an alert fires at, or the highest one pending."""
    if alert.state.firing is not None:
        return alert.state.firing
    pending = [level for level in Severity if alert.state.active_since[level - 1] is not None]
    return max(pending, default=Severity.WARNING)


def _since(alert: StoredAlert) -> float | None:
    state = alert.state
    if state.firing_since is not None:
        return state.firing_since
    return min((t for t in state.active_since if t is not None), default=None)


def _ago(now: float, then: float) -> str:
    return f"{rfc3339(then)} ({format_duration(now - then)} ago)"


def _status_lines(status: StoreStatus, now: float) -> list[str]:
    lines = [f"alerts: {len(status.alerts)}"]
    for alert in status.alerts:
        since = _since(alert)
        value = (
            ""
            if alert.last_value is None
            else f"  last value {format_value(alert.metric, alert.last_value)}"
        )
        lines.append(
            f"  {alert.status.upper():8} {_severity(alert).label:9}{alert.rule} "
            f"{describe_labels(alert.labels)}{'  inhibited' if alert.inhibited else ''}"
            f"{'' if since is None else '  since ' + _ago(now, since)}{value}"
        )
    lines.append(f"silences in force: {len(status.silences)}")
    lines += [f"  {_silence_line(record, now)}" for record in status.silences]
    oldest = status.oldest_pending_at
    lines.append(
        f"outbox: {status.backlog} pending"
        + ("" if oldest is None else f", oldest queued {_ago(now, oldest)}")
    )
    lines.append(f"dead letters: {status.dead_total}")
    lines += [
        f"  #{d.id} to {d.notifier}, dead {_ago(now, d.dead_at)} after {d.attempts} "
        f"attempt(s): {d.reason}"
        for d in status.dead_letters
    ]
    return lines


def _silence_line(record: SilenceRecord, now: float) -> str:
    s = record.silence
    matchers = "{" + ", ".join(f"{m.label}={m.pattern}" for m in s.matchers) + "}"
    who = f" by {s.author}" if s.author else ""
    why = f": {s.comment}" if s.comment else ""
    return (
        f"{s.id}  {record.status(now):8} {rfc3339(s.starts)} .. {rfc3339(s.ends)}  "
        f"{matchers}{who}{why}"
    )


def _silence_json(record: SilenceRecord, now: float) -> dict[str, Any]:
    """The HTTP API's view of a silence, and what only the state file knows about it."""
    return {
        **silence_view(record.silence, now),
        "status": record.status(now),
        "created_at": record.created_at,
    }


def _optional_time(ts: float | None) -> str | None:
    return None if ts is None else rfc3339(ts)


def _status_json(status: StoreStatus, now: float) -> dict[str, Any]:
    return {
        "alerts": [
            {
                "rule": a.rule,
                "labels": a.labels.as_dict(),
                "fingerprint": a.fingerprint,
                "state": a.status,
                "inhibited": a.inhibited,
                "severity": _severity(a).label,
                "active_since": {
                    level.label: _optional_time(a.state.active_since[level - 1])
                    for level in Severity
                },
                "firing_since": _optional_time(a.state.firing_since),
                "last_notified": _optional_time(a.state.last_notified),
                "last_value": a.last_value,
            }
            for a in status.alerts
        ],
        "silences": [_silence_json(record, now) for record in status.silences],
        "outbox": {
            "pending": status.backlog,
            "oldest_pending_at": _optional_time(status.oldest_pending_at),
        },
        "dead_letters": {
            "total": status.dead_total,
            "newest": [
                {
                    "id": d.id,
                    "notifier": d.notifier,
                    "created_at": rfc3339(d.created_at),
                    "dead_at": rfc3339(d.dead_at),
                    "attempts": d.attempts,
                    "reason": d.reason,
                }
                for d in status.dead_letters
            ],
        },
    }
