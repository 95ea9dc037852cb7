"""`memalert check` speed on a 1,000-rule file.

Target (issue 2): under 1 s. Every rule is different (metric, thresholds with
units, `where`, `recover`, labels, its own summary template, notify), so no
cache makes the figure look better than a real file would.
The CLI figure is printed as wall and CPU time: on a shared, loaded machine the
wall time includes waiting for a core. Ratios are target / figure (above 1 meets it).
Run: python bench/check_speed.py [--rules N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memalert.engine.rules.load import check_paths

TARGET_S = 1.0
_METRICS = (  # metric, size unit, `where`
    ("leak_bytes", "MiB", '{component: "cache-N*"}'),
    ("rss_bytes", "MB", "{target: 'api-*'}"),
    ("component_bytes", "KiB", '{component: "pool-N"}'),
)
_SUMMARY = "[N] {{ target }} {{ value | bytes }} ({{ growth | bytes }}/h) team {{ team }} #N"


def rule_file(rules_n: int) -> str:
    lines = [
        "version: 1",
        "interval: 15s",
        "notifiers:",
        '  oncall: {urls: ["${SLACK_WEBHOOK_URL}"]}',
        '  mail: {urls: ["mailtos://${SMTP_USER}:${SMTP_PASSWORD}@example.com"]}',
        "routes:",
        "  - {match: {severity: critical}, notify: [oncall]}",
        "rules:",
    ]
    for i in range(rules_n):
        metric, unit, where = _METRICS[i % len(_METRICS)]
        low = 50 + i
        lines += [
            f"  - name: rule-{i}",
            f"    metric: {metric}",
            f"    where: {where.replace('N', str(i))}",
            f"    above: {{warning: {low}{unit}, critical: {2 * low}{unit}}}",
            f"    recover: {{warning: {low - 10}{unit}}}",
            f"    for: {i % 5 + 1}m",
            "    keep_firing_for: 2m",
            f"    labels: {{team: team{i % 7}, tier: t{i % 3}}}",
            f'    summary: "{_SUMMARY.replace("N", str(i))}"',
            f"    notify: [{'oncall' if i % 2 else 'mail'}]",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.yaml"
        path.write_text(rule_file(args.rules), encoding="utf-8")
        timings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            problems = check_paths([path])
            timings.append(time.perf_counter() - start)
        if problems:
            sys.exit(f"the generated file should be valid; first problem: {problems[0]}")
        # The first run is what one `memalert check` pays; later runs in the same
        # process reuse cached templates and the compiled schema.
        cold, warm = timings[0], statistics.median(timings[1:] or timings)
        size_kib = path.stat().st_size / 1024
        print(f"file: {args.rules} rules, {size_kib:.0f} KiB")
        print(
            f"check_paths first run: {cold:.3f} s  (target < {TARGET_S:.1f} s)  "
            f"ratio {TARGET_S / cold:.2f}"
        )
        print(f"check_paths warm median: {warm:.3f} s")
        command = _cli_command()
        start = time.perf_counter()
        cpu_before = os.times()
        done = subprocess.run([*command, "check", str(path)], capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        cpu_after = os.times()
        cpu = (cpu_after.children_user - cpu_before.children_user) + (
            cpu_after.children_system - cpu_before.children_system
        )
        verdict = "ok" if done.returncode == 0 else f"exit {done.returncode}"
        print(
            f"memalert check (whole CLI, {verdict}): {elapsed:.3f} s wall, {cpu:.3f} s CPU  "
            f"(target < {TARGET_S:.1f} s)  ratio {TARGET_S / elapsed:.2f}"
        )


def _cli_command() -> list[str]:
    installed = shutil.which("memalert")
    return [installed] if installed else [sys.executable, "-m", "memalert.engine.cli"]


if __name__ == "__main__":
    main()
