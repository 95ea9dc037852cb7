"""`memalert exec [options] -- CMD ARGS...`: a memory gate for one command (docs/ci.md).

Exit code: CMD's when it failed (128 + N when a signal N ended it), else 1 when an
alert at or above `--fail-on` fired, else 0. Problems found before CMD starts (a
flag that does not parse, a rule file error, a report directory that cannot be
written) exit 2; CMD not found 127, not executable 126, as a shell does.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from memalert.engine.cli.output import report_error
from memalert.engine.core.errors import MemalertError
from memalert.engine.core.model import AlertEvent, Severity
from memalert.engine.core.units import (
    UnitError,
    format_bytes,
    format_duration,
    parse_duration,
    parse_size,
)
from memalert.engine.rules.load import load_rules

if TYPE_CHECKING:
    from memalert.engine.core.model import RuleSet
    from memalert.engine.live.exec_run import ExecResult, Progress

DEFAULT_INTERVAL = 0.25
MIN_INTERVAL = 0.01
MAX_INTERVAL = 3600.0

# The leak verdict's rule: `leak_bytes` is above 0 only when the run leaks.
_LEAK_RULE = """\
  - name: memory-leak
    metric: leak_bytes
    above: {{critical: 0}}
    summary: "{{{{ target }}}} leaked {{{{ value | bytes }}}} over the run"
"""
_BUDGET_RULE = """\
  - name: memory-budget
    metric: rss_bytes
    above: {{warning: {warning}, critical: {critical}}}
    summary: >-
      {{{{ target }}}} used {{{{ value | bytes }}}}
      ({{{{ severity }}}} above {{{{ threshold | bytes }}}})
"""


class ExecUsageError(MemalertError):
    """A flag of `memalert exec` that does not parse, or a report directory it cannot write."""


def add_exec_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "exec",
        help="run a command, watch its memory, fail on a leak or a blown budget",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    run.add_argument("--rules", nargs="+", metavar="FILE", help="rule files (default: built-in)")
    run.add_argument("--budget", metavar="SIZE", help="peak RSS budget of the tree, e.g. 200MiB")
    run.add_argument("--fail-on", choices=("warning", "critical"), default="critical")
    run.add_argument("--report", metavar="DIR", type=Path, help="write summary.json, report.html")
    run.add_argument("--interval", default="0.25s", help="sampling interval (default 0.25s)")
    run.add_argument(
        "--trace-python",
        action="store_true",
        help="trace Python allocations in the command's tree: top growing sites in the report",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...")
    run.set_defaults(handler=cmd_exec)


def cmd_exec(args: argparse.Namespace) -> int:
    from memalert.engine.live.exec_run import (  # noqa: PLC0415 - psutil loads only to run
        CommandNotRunnableError,
        resolve_command,
        run_command,
    )
    from memalert.engine.live.parts import draws_progress  # noqa: PLC0415
    from memalert.engine.sources.tracker import MemoryTracker  # noqa: PLC0415

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    try:
        interval = _interval(args.interval)
        budget = None if args.budget is None else _size("--budget", args.budget)
        report_dir = _report_dir(args.report)
        ruleset = _ruleset(args.rules, budget)
        resolve_command(command)
    except CommandNotRunnableError as exc:
        print(exc.diagnostics[0].message, file=sys.stderr)
        return exc.exit_code
    except MemalertError as exc:
        report_error(exc)
        return 2
    progress = _ProgressLine() if draws_progress(sys.stderr, os.environ) else None
    with tempfile.TemporaryDirectory(prefix="memalert-trace-") as trace:
        result = run_command(
            command,
            ruleset,
            tracker=MemoryTracker(),
            interval=interval,
            on_progress=progress.draw if progress else None,
            on_event=_print_event,
            trace_dir=Path(trace) if args.trace_python else None,
        )
    if progress is not None:
        progress.clear()
    if report_dir is not None:
        from memalert.engine.export.report import write_report  # noqa: PLC0415 - plotly is big

        write_report(result, report_dir, budget=budget)
        print(f"memalert exec: report in {report_dir / 'report.html'}", file=sys.stderr)
    print(_closing_line(result), file=sys.stderr)
    if result.returncode != 0:
        return result.returncode
    return 1 if result.fired(Severity.parse(args.fail_on)) else 0


def _interval(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except UnitError as exc:
        raise ExecUsageError(f"--interval: {exc}") from exc
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise ExecUsageError(
            f"--interval must be within {format_duration(MIN_INTERVAL)}..1h, got {text!r}"
        )
    return seconds


def _size(flag: str, text: str) -> float:
    try:
        size = parse_size(text)
    except UnitError as exc:
        raise ExecUsageError(f"{flag}: {exc}") from exc
    if size <= 0:
        raise ExecUsageError(f"{flag} must be more than 0, got {text!r}")
    return size


def _report_dir(path: Path | None) -> Path | None:
    """Create DIR and prove it writable now: a job must not run for nothing."""
    if path is None:
        return None
    from memalert.engine.export.report import ensure_report_extra  # noqa: PLC0415

    ensure_report_extra()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".memalert-"):
            pass
    except OSError as exc:
        raise ExecUsageError(f"--report {path}: cannot write there: {exc.strerror}") from exc
    return path


def _ruleset(paths: list[str] | None, budget: float | None) -> RuleSet:
    """The given rule files, or the built-in budget and leak rules, in one rule set."""
    rules = "" if paths else _LEAK_RULE.format()
    if budget is not None:
        rules += _BUDGET_RULE.format(warning=0.8 * budget, critical=budget)
    with tempfile.TemporaryDirectory(prefix="memalert-exec-") as tmp:
        files = list(paths or [])
        if rules:
            generated = Path(tmp) / "memalert-exec-builtin.yaml"
            # No `interval:`: exec samples every --interval itself, finer than a daemon.
            generated.write_text(f"version: 1\nrules:\n{rules}")
            files.append(str(generated))
        return load_rules(files, env=os.environ)


class _ProgressLine:
    def draw(self, progress: Progress) -> None:
        verdict = progress.verdict
        trend = f"trend {verdict.reason}" if not verdict.leaking else "leaking"
        line = (
            f"memalert exec: {format_duration(progress.elapsed)}  rss {format_bytes(progress.rss)}"
            f"  peak {format_bytes(progress.peak)}  {trend}"
        )
        sys.stderr.write("\r\x1b[2K" + line[:160])
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r\x1b[2K")
        sys.stderr.flush()


def _print_event(event: AlertEvent) -> None:
    if event.event in ("firing", "escalated"):
        print(
            f"memalert exec: {event.severity.label} {event.rule}: {event.summary}", file=sys.stderr
        )


def _closing_line(result: ExecResult) -> str:
    verdict = result.verdict
    return (
        f"memalert exec: {result.target} exited {result.returncode} after "
        f"{format_duration(result.ended - result.started)}; peak rss "
        f"{format_bytes(result.peak_rss)}; leak: {'yes' if verdict.leaking else 'no'} "
        f"({verdict.reason})"
    )
