"""`memalert exec`'s leak verdict on real short programs that leak and that do not.

Each program really runs (CPython, and Node.js when `node` is on PATH) for 10-20 s
under `memalert exec --report DIR`, and the verdict is read from summary.json.
Targets: no bounded program judged leaking; every leaking program found.

    python bench/exec_quality.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PROGRAMS: dict[str, tuple[bool, str, str]] = {
    # Each program: whether it leaks, its interpreter, its source.
    "py-list-per-iteration": (
        True,
        "python",
        """
import time
kept = []
for i in range(200):
    kept.append(b"k" * 300_000)
    garbage = [bytes(2000) for _ in range(500)]
    time.sleep(0.05)
""",
    ),
    "py-slow-leak-under-gc": (
        True,
        "python",
        """
import time
kept, churn = [], []
for i in range(300):
    kept.append(b"s" * 60_000)
    churn = [bytearray(4096) for _ in range(3000)] if i % 7 else []
    time.sleep(0.05)
""",
    ),
    "py-batch-leak": (
        True,
        "python",
        """
import time
kept = []
for batch in range(12):
    work = [b"w" * 1_000_000 for _ in range(40)]
    kept.append(b"k" * 3_000_000)
    del work
    time.sleep(1.0)
""",
    ),
    "node-closure-leak": (
        True,
        "node",
        """
const keep = [];
let n = 0;
const t = setInterval(() => {
  const buf = Buffer.alloc(64 * 1024, n % 251);
  keep.push(() => buf.length);
  if (++n > 300) clearInterval(t);
}, 40);
""",
    ),
    "py-cache-warm-up": (
        False,
        "python",
        """
import functools, time
@functools.lru_cache(maxsize=300)
def page(key):
    return b"p" * 100_000
for i in range(300):
    for key in range(i * 10, i * 10 + 10):
        page(key % 600)
    time.sleep(0.04)
""",
    ),
    "py-gc-heavy": (
        False,
        "python",
        """
import time
for i in range(400):
    objects = [{"k": str(j), "v": [j] * 10} for j in range(20_000)]
    del objects
    time.sleep(0.02)
""",
    ),
    "py-test-suite-like": (
        False,
        "python",
        """
import json, time, decimal, email, http.client, xml.dom.minidom, sqlite3
fixtures = [b"f" * 5_000_000]
for test in range(250):
    data = json.dumps([{"n": i} for i in range(3000)])
    json.loads(data)
    time.sleep(0.04)
""",
    ),
    "py-buffer-pool": (
        False,
        "python",
        """
import time, random
pool = []
for i in range(400):
    if len(pool) < 50:
        pool.append(bytearray(1_000_000))
    else:
        pool[random.randrange(50)] = bytearray(1_000_000)
    time.sleep(0.03)
""",
    ),
    "node-bounded-map": (
        False,
        "node",
        """
const m = new Map();
let n = 0;
const t = setInterval(() => {
  for (let i = 0; i < 200; i++) {
    m.set(n++, 'x'.repeat(512));
    if (m.size > 20000) m.delete(m.keys().next().value);
  }
  if (n > 120000) clearInterval(t);
}, 20);
""",
    ),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Run:
    name: str
    leaks: bool
    judged_leaking: bool
    exit_code: int
    peak: float
    reason: str


def run(name: str, work: Path) -> Run | None:
    leaks, interpreter, source = PROGRAMS[name]
    binary = sys.executable if interpreter == "python" else shutil.which("node")
    if binary is None:
        print(f"{name}: skipped, {interpreter} not on PATH")
        return None
    script = work / f"{name}.{'py' if interpreter == 'python' else 'js'}"
    script.write_text(source)
    report = work / f"report-{name}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "memalert.engine.cli",
            "exec",
            "--report",
            str(report),
            "--",
            binary,
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "CI": "true"},
    )
    facts = json.loads((report / "summary.json").read_text())
    return Run(
        name=name,
        leaks=leaks,
        judged_leaking=facts["verdict"]["leaking"],
        exit_code=done.returncode,
        peak=facts["peak_rss_bytes"],
        reason=facts["verdict"]["reason"],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name in PROGRAMS:
                result = run(name, Path(tmp))
                if result is None:
                    continue
                runs.append(result)
                verdict = "leak" if result.judged_leaking else "no leak"
                print(
                    f"{name:24} leaks={result.leaks!s:5} judged {verdict:8} exit "
                    f"{result.exit_code}  peak {result.peak / 2**20:6.1f} MiB  ({result.reason})"
                )
    false_positives = sum(1 for r in runs if not r.leaks and r.judged_leaking)
    bounded = sum(1 for r in runs if not r.leaks)
    found = sum(1 for r in runs if r.leaks and r.judged_leaking)
    leaking = sum(1 for r in runs if r.leaks)
    print(f"false positives: {false_positives}/{bounded} bounded runs (target 0)")
    recall = found / leaking if leaking else 1.0
    print(f"leaks found: {found}/{leaking} (target all) ratio {recall:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
