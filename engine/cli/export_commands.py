"""`memalert export prometheus|alertmanager`: the rule files for a Prometheus fleet.

docs/scale-out.md describes what each export writes and what it cannot
express. What is lost is printed as `FILE:LINE:COL: warning: ...` on stderr; the
file is still written, and `--strict` makes any loss exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from memalert.engine.cli.commands import positive_duration as _duration

if TYPE_CHECKING:
    from memalert.engine.core.errors import Diagnostic

EXIT_LOSSY = 1


def _write(text: str, out: str | None) -> None:
    if out is None or out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(out).write_text(text, encoding="utf-8")


def _finish(text: str, losses: list[Diagnostic], args: argparse.Namespace) -> int:
    _write(text, args.output)
    for loss in sorted(losses):
        print(str(loss), file=sys.stderr)
    if losses and args.strict:
        print(f"{len(losses)} loss(es) in the export (--strict)", file=sys.stderr)
        return EXIT_LOSSY
    return 0


def _header(kind: str, paths: list[str]) -> str:
    return (
        f"# {kind}, written by `memalert export` from {', '.join(paths)}.\n"
        "# Edit the memalert rule files and export again (docs/scale-out.md).\n"
    )


def cmd_export_prometheus(args: argparse.Namespace) -> int:
    from memalert.engine.export.prometheus_rules import prometheus_rules  # noqa: PLC0415
    from memalert.engine.export.yamltext import dump_yaml  # noqa: PLC0415
    from memalert.engine.rules.load import load_rules  # noqa: PLC0415

    export = prometheus_rules(load_rules(args.rules, env=None))
    text = dump_yaml(export.document, _header("Prometheus alerting rules", args.rules))
    return _finish(text, export.losses, args)


def cmd_export_alertmanager(args: argparse.Namespace) -> int:
    from memalert.engine.export.alertmanager_config import (  # noqa: PLC0415
        DEFAULT_RELAY_URL,
        Timing,
        alertmanager_config,
        amtool_silences,
        unexported_silences,
    )
    from memalert.engine.export.yamltext import dump_yaml  # noqa: PLC0415
    from memalert.engine.rules.load import load_rules  # noqa: PLC0415

    ruleset = load_rules(args.rules, env=None)
    config = alertmanager_config(
        ruleset,
        relay_url=args.relay_url or DEFAULT_RELAY_URL,
        token_file=args.token_file,
        timing=Timing(group_wait=args.group_wait, group_interval=args.group_interval),
    )
    header = _header("Alertmanager configuration", args.rules)
    silences = amtool_silences(ruleset, args.alertmanager_url)
    if silences:
        # Alertmanager keeps silences in its state, not its configuration: run these once.
        header += "#\n# The rule files' silences; run once against Alertmanager:\n"
        header += "".join(f"#   {command}\n" for command in silences)
    header += "".join(f"#\n# Not exported: {why}\n" for why in unexported_silences(ruleset))
    _write(dump_yaml(config, header), args.output)
    return 0


def cmd_export_promtool_tests(args: argparse.Namespace) -> int:
    from memalert.engine.export.promtool_tests import write_promtool_tests  # noqa: PLC0415
    from memalert.engine.replay.ruletest import expand_test_paths, load_test_file  # noqa: PLC0415

    losses: list[Diagnostic] = []
    directory = Path(args.output)
    for path in expand_test_paths(args.testfiles):
        written, lost = write_promtool_tests(load_test_file(path), directory)
        losses.extend(lost)
        print(f"promtool test rules {written}")
    for loss in sorted(losses):
        print(str(loss), file=sys.stderr)
    if losses and args.strict:
        print(f"{len(losses)} test(s) left out (--strict)", file=sys.stderr)
        return EXIT_LOSSY
    return 0


def _common(parser: argparse.ArgumentParser, *, strict: bool = True) -> None:
    parser.add_argument("rules", nargs="+", metavar="RULES", help="rule files or directories")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write here (default: standard output)"
    )
    if strict:
        parser.add_argument(
            "--strict", action="store_true", help="exit 1 if anything could not be exported"
        )


def add_export_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export", help="write Prometheus rules or an Alertmanager configuration"
    )
    kinds = export.add_subparsers(dest="kind", required=True, metavar="KIND")
    prometheus = kinds.add_parser(
        "prometheus", help="Prometheus alerting rules over the agents' memalert_* metrics"
    )
    _common(prometheus)
    prometheus.set_defaults(handler=cmd_export_prometheus)

    alertmanager = kinds.add_parser(
        "alertmanager", help="an Alertmanager configuration delivering through `memalert relay`"
    )
    _common(alertmanager, strict=False)
    alertmanager.add_argument(
        "--relay-url",
        metavar="URL",
        help="where `memalert relay` listens (default http://127.0.0.1:9465)",
    )
    alertmanager.add_argument(
        "--token-file",
        metavar="PATH",
        help="file holding the relay's bearer token (MEMALERT_RELAY_TOKEN), read by Alertmanager",
    )
    alertmanager.add_argument(
        "--alertmanager-url",
        default="http://127.0.0.1:9093",
        metavar="URL",
        help="Alertmanager's URL in the printed `amtool silence add` commands",
    )
    alertmanager.add_argument(
        "--group-wait", type=_duration, default=10.0, metavar="D", help="default 10s"
    )
    alertmanager.add_argument(
        "--group-interval", type=_duration, default=60.0, metavar="D", help="default 1m"
    )
    alertmanager.set_defaults(handler=cmd_export_alertmanager)

    tests = kinds.add_parser(
        "promtool-tests", help="`memalert test` files as `promtool test rules` files"
    )
    tests.add_argument("testfiles", nargs="+", metavar="TESTFILE", help="test files or directories")
    tests.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="write the files into DIR"
    )
    tests.add_argument(
        "--strict", action="store_true", help="exit 1 if a test could not be converted"
    )
    tests.set_defaults(handler=cmd_export_promtool_tests)
