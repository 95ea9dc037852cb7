"""`memalert test` against `promtool test rules` on the same 1,000 series x 1,000 steps.

Both tools get equivalent rules (memalert: one two-level rule with a templated
summary; Prometheus: one alerting rule per level with a templated annotation)
and the same expectations, computed by memalert's evaluator in-process and
checked at 11 evaluation times, so both must exit 0: neither side can stop
early on a failure. Each command is timed wall-clock twice; the minimum counts.

    python bench/vs_promtool.py [--series N] [--steps N] [--profile]

Target (issue 2): memalert at most one third of promtool's time (ratio <= 0.33).
`--profile` also runs `memalert test` in-process under cProfile and prints the
hot spots.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from promtool_files import run_memalert, run_promtool, write_files  # noqa: E402
from promtool_scenarios import EVALUATION_INTERVAL, Run, Scenario, Series, memalert_firing  # noqa: E402

TARGET_RATIO = 0.33
WARNING_MIB, CRITICAL_MIB = 100, 200


def bench_scenario(series_count: int, steps: int, seed: int = 2) -> Scenario:
    """Random walks in MiB across both thresholds; constant stretches use `axn`."""
    rng = random.Random(seed)
    series = []
    for index in range(series_count):
        value = rng.randrange(0, 300, 10)
        values = []
        for _ in range(steps):
            values.append(value)
            value = min(320, max(0, value + rng.choice((-20, -10, 0, 0, 10, 20))))
        series.append(Series(target=f"t{index:04d}", runs=_runs(values)))
    last = (steps - 1) * EVALUATION_INTERVAL
    checks = {*range(0, last + 1, 100 * EVALUATION_INTERVAL), last}
    return Scenario(
        name="bench",
        levels={"warning": WARNING_MIB, "critical": CRITICAL_MIB},
        series=tuple(series),
        eval_times=tuple(sorted(checks)),
        unit="MiB",
        for_s=30,
        summaries=True,
    )


def _runs(values: list[int]) -> tuple[Run, ...]:
    runs: list[Run] = []
    for value in values:
        if runs and runs[-1].start == value:
            runs[-1] = Run("value", count=runs[-1].count + 1, start=value)
        else:
            runs.append(Run("value", start=value))
    return tuple(runs)


def best_of_two(command: Callable[[], subprocess.CompletedProcess[str]]) -> float:
    times = []
    for _ in range(2):
        started = time.perf_counter()
        result = command()
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            output = (result.stdout or "") + (result.stderr or "")
            raise SystemExit(f"{result.args[:3]} exited {result.returncode}:\n{output[-4000:]}")
    return min(times)


def profile_memalert(test_file: Path) -> str:
    from memalert.engine.replay.ruletest import run_test_files  # noqa: PLC0415 - only when profiling

    profiler = cProfile.Profile()
    lines: list[str] = []
    profiler.runcall(run_test_files, [test_file], lines.append, lines.append)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(25)
    return f"memalert test said: {lines[-1] if lines else '?'}\n{out.getvalue()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile `memalert test`")
    args = parser.parse_args()
    if shutil.which("promtool") is None:
        print("promtool is not installed (Debian package `prometheus`)")
        return 2

    scenario = bench_scenario(args.series, args.steps)
    started = time.perf_counter()
    expectations = memalert_firing(scenario)
    expected_seconds = time.perf_counter() - started
    firing = sum(len(alerts) for alerts in expectations.values())
    with tempfile.TemporaryDirectory(prefix="vs_promtool-") as directory:
        files = write_files(scenario, expectations, Path(directory))
        promtool = best_of_two(lambda: run_promtool([files.promtool_test]))
        memalert = best_of_two(lambda: run_memalert([files.memalert_test]))
        profile = profile_memalert(files.memalert_test) if args.profile else ""

    ratio = memalert / promtool
    verdict = "ok" if ratio <= TARGET_RATIO else "SLOWER THAN TARGET"
    print(
        f"{args.series} series x {args.steps} steps, {len(expectations)} checked eval times, "
        f"{firing} firing alerts expected; expectations computed in-process in "
        f"{expected_seconds:.2f} s"
    )
    print(f"promtool test rules: {promtool:.2f} s")
    print(f"memalert test:       {memalert:.2f} s")
    print(f"ratio memalert/promtool {ratio:.2f} (target <= {TARGET_RATIO}) {verdict}")
    if profile:
        print(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
