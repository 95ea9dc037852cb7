"""Hostile rule files through the real CLI: how many, how many clean errors, the slowest.

The generator is tests/hostile_rules.py (the fuzz test's): unbounded templates,
huge, tiny and negative durations and sizes, far times, deep nesting, odd
types, backtracking regular expressions, odd pids. Each file goes through
`memalert check` in its own process and, when it passes, a short `memalert
dry-run`. A run is clean when it exits 0, 1 or 2, every stderr line is
`FILE:LINE:COL: message` (or `error: message`), and there is no traceback.
A run that takes more than --timeout seconds is killed and counted as a hang.
Wall times include waiting for a core on a loaded machine.
Run: python bench/hostile_fuzz.py [--inputs 1000] [--seed 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from hostile_rules import CLEAN_LINE, OBSERVATIONS, hostile_rule_file  # noqa: E402 - after sys.path

MEMALERT = [sys.executable, "-m", "memalert.engine.cli"]


@dataclass(frozen=True)
class Outcome:
    index: int
    check_code: int | None
    dry_run_code: int | None
    clean: bool
    seconds: float
    problem: str = ""


def _run(argv: list[str], timeout: float) -> tuple[int | None, str, float]:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [*MEMALERT, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, "", time.perf_counter() - started
    return done.returncode, done.stderr, time.perf_counter() - started


def _clean(code: int | None, err: str) -> str:
    """Why a run is not clean, or ""."""
    if code is None:
        return "hang"
    if code not in {0, 1, 2}:
        return f"exit {code}"
    if "Traceback" in err:
        return "traceback"
    bad = [line for line in err.splitlines() if not CLEAN_LINE.match(line)]
    return f"unclean line {bad[0][:120]!r}" if bad else ""


def one(index: int, seed: int, work: Path, timeout: float) -> Outcome:
    rng = random.Random(seed * 1_000_003 + index)
    rules = work / f"rules-{index}.yaml"
    rules.write_bytes(hostile_rule_file(rng.choice))
    code, err, seconds = _run(["check", str(rules)], timeout)
    problem = _clean(code, err)
    dry_code = None
    if not problem and code == 0:
        observations = work / "obs.jsonl"
        dry_code, err, more = _run(
            ["dry-run", str(rules), "--observations", str(observations)], timeout
        )
        seconds += more
        problem = _clean(dry_code, err)
    rules.unlink()
    return Outcome(index, code, dry_code, not problem, seconds, problem)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "obs.jsonl").write_text(OBSERVATIONS)
        with ThreadPoolExecutor(args.workers) as pool:
            outcomes = list(
                pool.map(lambda i: one(i, args.seed, work, args.timeout), range(args.inputs))
            )
    clean = [o for o in outcomes if o.clean]
    refused = [o for o in clean if o.check_code in {1, 2}]
    replayed = [o for o in clean if o.dry_run_code is not None]
    slowest = max(outcomes, key=lambda o: o.seconds)
    print(f"generated inputs:         {len(outcomes)} (seed {args.seed})")
    print(f"clean outcomes:           {len(clean)}")
    print(f"  refused by check (1/2): {len(refused)}")
    print(f"  passed check, replayed: {len(replayed)} (dry-run exit 0: "
          f"{sum(o.dry_run_code == 0 for o in replayed)})")  # fmt: skip
    print(f"not clean:                {len(outcomes) - len(clean)}")
    for o in outcomes:
        if not o.clean:
            print(f"  input {o.index}: {o.problem}")
    median = sorted(o.seconds for o in outcomes)[len(outcomes) // 2]
    print(f"slowest input:            #{slowest.index}, {slowest.seconds:.2f} s wall")
    print(f"median input:             {median:.2f} s wall (check, plus dry-run if it passed)")
    return 0 if len(clean) == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
