"""The `memalert` command line (DESIGN §6). Errors print as FILE:LINE:COL, never tracebacks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from memalert.engine.cli.commands import add_daemon_commands
from memalert.engine.core.errors import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Diagnostic,
    MemalertError,
    RuleFileError,
)
from memalert.engine.core.model import Severity
from memalert.engine.replay.dryrun import run_dry_run
from memalert.engine.replay.observations import read_observations
from memalert.engine.replay.ruletest import run_test_files
from memalert.engine.rules.load import check_paths, load_rules


def _print(line: str) -> None:
    print(line, flush=False)


def _print_error(line: str) -> None:
    print(line, file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    diagnostics = check_paths(args.rules)
    for diagnostic in diagnostics:
        _print_error(str(diagnostic))
    if diagnostics:
        _print_error(f"{len(diagnostics)} error(s)")
        return RuleFileError.exit_code
    _print(f"ok: {', '.join(args.rules)}")
    return EXIT_OK


def cmd_dry_run(args: argparse.Namespace) -> int:
    ruleset = load_rules(args.rules)
    samples = read_observations(args.observations)
    summary = run_dry_run(ruleset, samples, output_format=args.format, write=_print)
    fired = summary.worst_fired
    if args.fail_on and fired is not None and fired >= Severity.parse(args.fail_on):
        return EXIT_FAILED
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    return run_test_files(args.testfiles, _print, _print_error)


def cmd_record(args: argparse.Namespace) -> int:
    from memalert.engine.live.record import run_record  # noqa: PLC0415 - the tracker loads only to record

    return run_record(args.rules, out=args.out, duration=args.duration)


def _report(exc: MemalertError) -> None:
    for diagnostic in exc.diagnostics or [Diagnostic.at(None, type(exc).__name__)]:
        _print_error(str(diagnostic) if diagnostic.file else f"error: {diagnostic.message}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memalert",
        description="Memory leak detection and alerting from declarative YAML rules.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate rule files (exit 1 if invalid)")
    check.add_argument("rules", nargs="+", metavar="RULES", help="rule files or directories")
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
    dry.set_defaults(handler=cmd_dry_run)

    test = commands.add_parser("test", help="run promtool-style rule unit tests")
    test.add_argument("testfiles", nargs="+", metavar="TESTFILE", help="test files or directories")
    test.set_defaults(handler=cmd_test)

    record = commands.add_parser("record", help="sample the rules' targets into observations")
    record.add_argument("--rules", nargs="+", required=True, metavar="RULES", help="rule files")
    record.add_argument("--out", required=True, metavar="FILE", help="JSON Lines ('-': stdout)")
    record.add_argument("--duration", metavar="D", help="stop after D (e.g. 10m); default: Ctrl-C")
    record.set_defaults(handler=cmd_record)

    add_daemon_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except MemalertError as exc:  # the exit code is the error class's (memalert.engine.core.errors)
        _report(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK  # e.g. `memalert dry-run ... | head`
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        _print_error(f"memalert: internal error: {type(exc).__name__}: {exc}")
        _print_error("this is a bug; please report it with the command you ran")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
