"""The `memalert` command line (README.md#commands): errors as FILE:LINE:COL, never tracebacks."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from memalert.engine.cli.commands import add_daemon_commands
from memalert.engine.cli.exec_command import add_exec_command
from memalert.engine.cli.export_commands import add_export_commands
from memalert.engine.cli.output import print_error, report_error
from memalert.engine.cli.relay_command import add_relay_command
from memalert.engine.cli.top_command import add_top_command
from memalert.engine.core.errors import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    MemalertError,
)
from memalert.engine.core.model import Severity
from memalert.engine.core.release import VERSION
from memalert.engine.replay.budget import MAX_EVALUATIONS
from memalert.engine.rules.load import check_rules, load_rules


def _print(line: str) -> None:
    print(line, flush=False)


def cmd_check(args: argparse.Namespace) -> int:
    report = check_rules(args.rules, env=os.environ)
    errors = [str(d) for d in report.errors]
    unset = [str(d) for d in report.unset]
    if args.strict_env:
        errors = sorted([*errors, *unset])
    else:
        # file:line:col: warning: ..., as compilers print theirs
        errors += [f"{d.file}:{d.line}:{d.col}: warning: {d.message}" for d in report.unset]
    # Matchers that match no alert are worth a look, never a failure (Alertmanager allows them).
    errors += [f"{d.file}:{d.line}:{d.col}: warning: {d.message}" for d in report.warnings]
    for line in errors:
        print_error(line)
    failed = len(report.errors) + (len(unset) if args.strict_env else 0)
    if failed:
        print_error(f"{failed} error(s)")
        return 1
    if unset:
        print_error(f"{len(unset)} warning(s): set them, or run `check --strict-env` to fail")
    if report.warnings:
        print_error(f"{len(report.warnings)} warning(s) about matchers")
    _print(f"ok: {', '.join(args.rules)}")
    return EXIT_OK


def cmd_dry_run(args: argparse.Namespace) -> int:
    # The replay loads only to replay: the daemon, started through this module, never does.
    from memalert.engine.replay.dryrun import run_dry_run  # noqa: PLC0415
    from memalert.engine.replay.observations import read_observations  # noqa: PLC0415

    ruleset = load_rules(args.rules, env=os.environ)
    samples = read_observations(args.observations)
    summary = run_dry_run(
        ruleset,
        samples,
        output_format=args.format,
        write=_print,
        max_evaluations=args.max_evaluations,
        source=args.observations,
    )
    fired = summary.worst_fired
    if args.fail_on and fired is not None and fired >= Severity.parse(args.fail_on):
        return EXIT_FAILED
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    from memalert.engine.replay.ruletest import run_test_files  # noqa: PLC0415 - jsonschema loads only to test

    return run_test_files(args.testfiles, _print, print_error, max_evaluations=args.max_evaluations)


def cmd_record(args: argparse.Namespace) -> int:
    from memalert.engine.live.record import run_record  # noqa: PLC0415 - the tracker loads only to record
    from memalert.engine.rules.load import DEFAULT_RULES  # noqa: PLC0415 - with the recorder

    rules = args.rules or [DEFAULT_RULES]
    return run_record(rules, out=args.out, duration=args.duration, env=os.environ)


def _evaluation_count(text: str) -> int:
    # ASCII digits only: int() also reads other scripts' digits and `1_000`.
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {count}")
    return count


def _add_max_evaluations(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--max-evaluations",
        type=_evaluation_count,
        default=MAX_EVALUATIONS,
        metavar="N",
        help=f"refuse a run of more than N evaluations (default {MAX_EVALUATIONS:,})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memalert",
        description="Memory leak detection and alerting from declarative YAML rules.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate rule files (exit 1 if invalid)")
    check.add_argument("rules", nargs="+", metavar="RULES", help="rule files or directories")
    check.add_argument(
        "--strict-env",
        action="store_true",
        help="fail when a ${VAR} the rules refer to is not set (default: a warning)",
    )
    check.set_defaults(handler=cmd_check)

    dry = commands.add_parser("dry-run", help="replay observations through rules; send nothing")
    dry.add_argument("rules", nargs="+", metavar="RULES", help="rule files or directories")
    dry.add_argument("--observations", required=True, metavar="FILE", help="JSON Lines file")
    dry.add_argument("--format", choices=("text", "json"), default="text")
    dry.add_argument(
        "--fail-on",
        choices=("warning", "critical"),
        help="exit 1 if an alert at or above this severity fired",
    )
    _add_max_evaluations(dry)
    dry.set_defaults(handler=cmd_dry_run)

    test = commands.add_parser("test", help="run promtool-style rule unit tests")
    test.add_argument("testfiles", nargs="+", metavar="TESTFILE", help="test files or directories")
    _add_max_evaluations(test)
    test.set_defaults(handler=cmd_test)

    record = commands.add_parser("record", help="sample the rules' targets into observations")
    record.add_argument(
        "--rules", nargs="+", metavar="RULES", help="rule files (default: the built-in rules)"
    )
    record.add_argument("--out", required=True, metavar="FILE", help="JSON Lines ('-': stdout)")
    record.add_argument("--duration", metavar="D", help="stop after D (e.g. 10m); default: Ctrl-C")
    record.set_defaults(handler=cmd_record)

    add_daemon_commands(commands)
    add_exec_command(commands)
    add_export_commands(commands)
    add_relay_command(commands)
    add_top_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except MemalertError as exc:  # the exit code is the error class's (memalert.engine.core.errors)
        report_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK  # e.g. `memalert dry-run ... | head`
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        print_error(f"memalert: internal error: {type(exc).__name__}: {exc}")
        print_error("this is a bug; please report it with the command you ran")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
