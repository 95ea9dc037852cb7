"""Process matchers against command lines any local user can set: the work stays bounded.

`check` refuses patterns that backtrack without bound (FILE:LINE:COL), the tracker
refuses them as well, cuts the text matched and gives each target a budget.
Waits are bounded by sampling in a child process (a regex holds the GIL).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from memalert.engine.core.errors import RuleFileError
from memalert.engine.core.model import TargetSpec
from memalert.engine.rules.load import load_rules
from memalert.engine.sources.base import TargetUnavailableError
from memalert.engine.sources.targets import (
    MATCH_BUDGET_SECONDS,
    PatternCache,
    TickView,
    sample_target,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
BOUND_SECONDS = 10.0
HOSTILE_PID = 4400


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """The fixture tree plus a process whose argv is 200,000 characters of "ab"."""
    root = tmp_path / "proc"
    shutil.copytree(FIXTURES / "proc", root)
    hostile = root / str(HOSTILE_PID)
    shutil.copytree(root / "4243", hostile)
    (hostile / "stat").write_text(f"{HOSTILE_PID} (sh) S 1 1 1 0 -1 4194560 0 0 0 0\n")
    (hostile / "cmdline").write_text("sh\0" + "ab" * 100_000 + "\0")
    return root


# In a child process: a regex holds the GIL, so a thread could not bound it.
_SAMPLE = """
import json, sys
from pathlib import Path
from memalert.engine.core.model import TargetSpec
from memalert.engine.sources.tracker import MemoryTracker
from memalert.engine.testing import FakeClock
proc, cgroup, pattern = sys.argv[1:]
tracker = MemoryTracker(4242, proc_root=Path(proc), cgroup_root=Path(cgroup), clock=FakeClock())
spec = TargetSpec(name="t", kind="process", cmdline_pattern=pattern)
samples = tracker.sample_targets([spec], 1_764_000_000.0)
print(json.dumps([{s.metric: s.value for s in samples}, tracker.last_errors.get("t", "")]))
"""


def sample_bounded(proc: Path, spec: TargetSpec) -> tuple[dict[str, float], str]:
    assert spec.cmdline_pattern is not None
    args = [str(proc), str(FIXTURES / "cgroup_v2"), spec.cmdline_pattern]
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SAMPLE, *args],
            capture_output=True,
            text=True,
            timeout=BOUND_SECONDS,
            check=True,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("matching did not finish")
    metrics, reason = json.loads(done.stdout)
    return metrics, reason


def cmdline_target(pattern: str) -> TargetSpec:
    return TargetSpec(name="t", kind="process", cmdline_pattern=pattern)


def test_two_repeats_against_a_huge_argv_finish(proc: Path) -> None:
    # Allowed (two repeats); over the whole argv it would backtrack for hours.
    metrics, reason = sample_bounded(proc, cmdline_target("a.*b.*c"))
    assert (metrics, reason) == ({"up": 0.0}, "no process matches cmdline 'a.*b.*c'")


def test_a_match_at_the_start_of_a_long_argv_still_counts(proc: Path) -> None:
    metrics, reason = sample_bounded(proc, cmdline_target("^sh abab"))
    assert (metrics["up"], reason) == (1.0, "")


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("(a+)+c", id="nested"),
        pytest.param(r"(\w+\s?)*$", id="nested-optional"),
        pytest.param("(a?){30}a{30}", id="optional-repeated"),
        pytest.param("(a|ab)*c", id="ambiguous-alternation"),
        pytest.param("a.*b.*a.*c", id="three-repeats"),
    ],
)
def test_patterns_that_backtrack_without_bound_are_down_not_run(proc: Path, pattern: str) -> None:
    metrics, reason = sample_bounded(proc, cmdline_target(pattern))
    assert metrics == {"up": 0.0}
    assert reason.startswith(f"process cmdline regex {pattern!r} refused: ")


RULES = """\
version: 1
targets:
  - name: worker
    process:
      cmdline: {pattern}
"""


@pytest.mark.parametrize(
    ("pattern", "col"),
    [("'(a+)+c'", 16), ("'.*x.*y.*z'", 16), ('"(foo|fo)+"', 16)],
)
def test_check_refuses_them_naming_the_place(tmp_path: Path, pattern: str, col: int) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULES.format(pattern=pattern))
    with pytest.raises(RuleFileError) as caught:
        load_rules([path], env={})
    (problem,) = caught.value.diagnostics
    assert (problem.file, problem.line, problem.col) == (str(path), 5, col)
    assert "could stall every tick" in problem.message


@pytest.mark.parametrize(
    "pattern",
    ["uvicorn.*", r"python .*manage\.py.*runserver", "(foo|bar)+", "(?>a+)+c", "(a+)++c"],
)
def test_check_accepts_bounded_patterns(tmp_path: Path, pattern: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULES.format(pattern=f"'{pattern}'"))
    (target,) = load_rules([path], env={}).targets
    assert target.cmdline_pattern == pattern


class SteppingClock:
    """Each reading is a second after the last: as if every match were slow."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def views(proc: Path) -> Iterator[TickView]:
    yield TickView(
        proc_root=proc,
        cgroup_root=FIXTURES / "cgroup_v2",
        self_pid=4242,
        patterns=PatternCache(),
        clock=SteppingClock(),
    )


def test_a_target_that_exceeds_its_matching_budget_is_down(proc: Path) -> None:
    (view,) = views(proc)
    with pytest.raises(TargetUnavailableError) as caught:
        sample_target(cmdline_target("nothing-matches"), view)
    assert caught.value.reason.startswith(f"matching took over {MATCH_BUDGET_SECONDS:g}s")
