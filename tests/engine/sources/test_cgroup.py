"""cgroup targets on fake v1 and v2 trees (tests/fixtures/cgroup_v*), and on this host's own.

The fake /proc tree (tests/fixtures/proc) gives 16 GiB of physical RAM and the host PSI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from memchildren import MiB, allocating_children

from memalert.engine.core.model import TargetSpec
from memalert.engine.sources.cgroup import UNLIMITED_SENTINEL
from memalert.engine.sources.psi import Pressure, parse_pressure
from memalert.engine.sources.tracker import MemoryTracker
from memalert.engine.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PROC = FIXTURES / "proc"
CGROUP_V1 = FIXTURES / "cgroup_v1"
CGROUP_V2 = FIXTURES / "cgroup_v2"
GiB = 1 << 30
PHYSICAL = 16 * GiB
HOST_PSI = {"psi_some_avg10": 2.5, "psi_full_avg10": 0.75}


def sampled(
    cgroup_root: Path, spec: TargetSpec, proc_root: Path = PROC
) -> tuple[dict[str, float], Mapping[str, str]]:
    """One target's {metric: value} and the tracker's `last_errors`."""
    tracker = MemoryTracker(4242, proc_root=proc_root, cgroup_root=cgroup_root, clock=FakeClock())
    samples = tracker.sample_targets([spec], 1_764_000_000.0)
    metrics = {s.metric: s.value for s in samples}
    assert len(metrics) == len(samples)
    return metrics, tracker.last_errors


def sample_one(cgroup_root: Path, spec: TargetSpec, proc_root: Path = PROC) -> dict[str, float]:
    metrics, errors = sampled(cgroup_root, spec, proc_root)
    assert metrics["up"] == 1.0, errors
    return metrics


def down_reason(cgroup_root: Path, spec: TargetSpec) -> str:
    metrics, errors = sampled(cgroup_root, spec)
    assert metrics == {"up": 0.0}
    return errors[spec.name]


def cgroup(path: str) -> TargetSpec:
    return TargetSpec(name="cg", kind="cgroup", cgroup=path)


def copy_tree(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / source.name
    shutil.copytree(source, target)
    return target


# -- cgroup v2 ---------------------------------------------------------------------


def test_v2_working_set_limit_from_ancestor_swap_and_psi() -> None:
    usage = 314572800 - 52428800  # memory.current - inactive_file
    assert sample_one(CGROUP_V2, cgroup("/kubepods/pod1")) == {
        "rss_bytes": usage,
        "swap_bytes": 1048576,
        "limit_bytes": GiB,  # pod1 says "max"; kubepods above it caps at 1 GiB
        "pressure": usage / GiB,
        "psi_some_avg10": 1.5,
        "psi_full_avg10": 0.25,
        "up": 1.0,
    }


def test_v2_own_limit_and_no_swap_file() -> None:
    metrics = sample_one(CGROUP_V2, cgroup("capped"))
    assert metrics["limit_bytes"] == 512 * MiB
    assert metrics["pressure"] == 0.5
    assert metrics["psi_some_avg10"] == 12.0
    assert "swap_bytes" not in metrics  # no memory.swap.current: unknown, not zero


def test_v2_without_memory_stat_counts_all_usage() -> None:
    assert sample_one(CGROUP_V2, cgroup("kubepods"))["rss_bytes"] == 419430400


def test_v2_limit_above_physical_ram_is_physical_ram() -> None:
    metrics = sample_one(CGROUP_V2, cgroup("roomy"))
    assert metrics["limit_bytes"] == PHYSICAL
    assert metrics["pressure"] == GiB / PHYSICAL


@pytest.mark.parametrize(
    "path", ["/kubepods/pod1", "kubepods/pod1", "/kubepods/pod1/", str(CGROUP_V2 / "kubepods/pod1")]
)
def test_v2_path_spellings(path: str) -> None:
    assert sample_one(CGROUP_V2, cgroup(path))["rss_bytes"] == 314572800 - 52428800


def test_v2_garbage_is_down_with_the_file_named() -> None:
    reason = down_reason(CGROUP_V2, cgroup("garbage"))
    assert "garbage/memory.current: expected an integer, got 'not a number'" in reason


def test_v2_garbage_limit_is_down(tmp_path: Path) -> None:
    root = copy_tree(CGROUP_V2, tmp_path)
    (root / "capped" / "memory.max").write_text("lots\n")
    reason = down_reason(root, cgroup("capped"))
    assert "capped/memory.max: expected an integer, got 'lots'" in reason


def test_v2_root_has_no_memory_current() -> None:
    assert "system: true" in down_reason(CGROUP_V2, cgroup("/"))


def test_missing_cgroup_names_both_places_looked() -> None:
    reason = down_reason(CGROUP_V2, cgroup("/nope"))
    assert "cgroup_v2/nope" in reason
    assert "cgroup_v2/memory/nope" in reason


# -- cgroup v1 ---------------------------------------------------------------------


def test_v1_usage_minus_inactive_file_and_unlimited_sentinel() -> None:
    usage = 209715200 - 10485760  # usage_in_bytes - total_inactive_file
    assert sample_one(CGROUP_V1, cgroup("/app")) == {
        "rss_bytes": usage,
        "swap_bytes": 2097152,
        # memory.limit_in_bytes holds the sentinel: no limit, so physical RAM
        "limit_bytes": PHYSICAL,
        "pressure": usage / PHYSICAL,
        "up": 1.0,  # and no PSI: v1 has no pressure files
    }


def test_v1_own_limit() -> None:
    metrics = sample_one(CGROUP_V1, cgroup("/limited"))
    assert metrics["rss_bytes"] == 104857600 - 4194304
    assert metrics["limit_bytes"] == 256 * MiB


def test_v1_limit_inherited_through_hierarchical_memory_limit() -> None:
    metrics = sample_one(CGROUP_V1, cgroup("/limited/inner"))
    assert metrics["rss_bytes"] == 52428800
    assert metrics["limit_bytes"] == 256 * MiB


def test_v1_root_and_absolute_path() -> None:
    root = sample_one(CGROUP_V1, cgroup("/"))
    assert root["rss_bytes"] == 2 * GiB - 512 * MiB
    assert root["limit_bytes"] == PHYSICAL
    absolute = sample_one(CGROUP_V1, cgroup(str(CGROUP_V1 / "memory" / "app")))
    assert absolute["rss_bytes"] == 209715200 - 10485760


@pytest.mark.parametrize(
    "limit",
    [
        9223372036854771712,  # PAGE_COUNTER_MAX with 4 KiB pages
        9223372036854710272,  # ... with 64 KiB pages
        UNLIMITED_SENTINEL,
    ],
)
def test_v1_unlimited_sentinels(limit: int, tmp_path: Path) -> None:
    root = copy_tree(CGROUP_V1, tmp_path)
    (root / "memory" / "limited" / "memory.limit_in_bytes").write_text(f"{limit}\n")
    (root / "memory" / "limited" / "memory.stat").write_text("total_inactive_file 0\n")
    assert sample_one(root, cgroup("limited"))["limit_bytes"] == PHYSICAL
    # Without meminfo there is no physical RAM to fall back on: no limit at all,
    # rather than an exabyte one that would make `pressure` always 0.
    proc = copy_tree(PROC, tmp_path)
    (proc / "meminfo").unlink()
    assert "limit_bytes" not in sample_one(root, cgroup("limited"), proc_root=proc)


def test_v1_largest_real_limit_is_kept(tmp_path: Path) -> None:
    root = copy_tree(CGROUP_V1, tmp_path)
    (root / "memory" / "limited" / "memory.limit_in_bytes").write_text(f"{8 * GiB}\n")
    (root / "memory" / "limited" / "memory.stat").write_text("total_inactive_file 0\n")
    assert sample_one(root, cgroup("limited"))["limit_bytes"] == 8 * GiB


def test_v1_without_memory_stat_counts_all_usage(tmp_path: Path) -> None:
    root = copy_tree(CGROUP_V1, tmp_path)
    (root / "memory" / "app" / "memory.stat").unlink()
    assert sample_one(root, cgroup("app"))["rss_bytes"] == 209715200


def test_v1_unreadable_usage_is_down(tmp_path: Path) -> None:
    root = copy_tree(CGROUP_V1, tmp_path)
    (root / "memory" / "app" / "memory.usage_in_bytes").write_text("")
    reason = down_reason(root, cgroup("app"))
    assert "memory.usage_in_bytes: expected an integer, got ''" in reason


def test_limit_stays_out_when_nothing_gives_one(tmp_path: Path) -> None:
    proc = copy_tree(PROC, tmp_path)
    (proc / "meminfo").unlink()
    metrics = sample_one(CGROUP_V1, cgroup("app"), proc_root=proc)
    assert "limit_bytes" not in metrics
    assert "pressure" not in metrics


# -- the cgroup a process lives in ---------------------------------------------------


def test_process_in_v1_cgroup_takes_its_limit_and_host_psi(tmp_path: Path) -> None:
    root = copy_tree(CGROUP_V1, tmp_path)
    (root / "memory" / "app" / "memory.limit_in_bytes").write_text(f"{128 * MiB}\n")
    metrics = sample_one(root, TargetSpec(name="cg", kind="pid", pid=5000))
    assert metrics["limit_bytes"] == 128 * MiB
    assert metrics["pressure"] == 20 * MiB / (128 * MiB)
    assert metrics["psi_some_avg10"] == HOST_PSI["psi_some_avg10"]


def test_process_outside_any_limit_gets_physical_ram() -> None:
    # 5000 names /app, which the v2 fixture does not have (and its root has no limit).
    metrics = sample_one(CGROUP_V2, TargetSpec(name="cg", kind="pid", pid=5000))
    assert metrics["limit_bytes"] == PHYSICAL
    assert {k: metrics[k] for k in HOST_PSI} == HOST_PSI


def test_process_in_container_whose_cgroup_is_mounted_as_root(tmp_path: Path) -> None:
    # Inside a container the mount shows the container's own group at the root while
    # /proc/PID/cgroup still names the host-side path.
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "memory.current").write_text("1000\n")
    (root / "memory.max").write_text(f"{300 * MiB}\n")
    (root / "memory.pressure").write_text("some avg10=7.00 avg60=0 avg300=0 total=1\n")
    metrics = sample_one(root, TargetSpec(name="cg", kind="pid", pid=4242))
    assert metrics["limit_bytes"] == 300 * MiB
    assert metrics["psi_some_avg10"] == 7.0
    assert "psi_full_avg10" not in metrics


# -- PSI parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "some avg10=1.25 avg60=0 avg300=0 total=5\nfull avg10=0.50 avg60=0 avg300=0 total=1\n",
            Pressure(some_avg10=1.25, full_avg10=0.5),
        ),
        (
            "some avg10=3.00 avg60=0.00 avg300=0.00 total=0\n",
            Pressure(some_avg10=3.0, full_avg10=None),
        ),
        ("some avg10=abc avg60=0 total=0\n", None),
        ("", None),
        ("garbage\n", None),
    ],
)
def test_parse_pressure(text: str, expected: Pressure | None) -> None:
    assert parse_pressure(text) == expected


# -- this host's own cgroup hierarchy --------------------------------------------------


@contextlib.contextmanager
def scratch_cgroup(limit: int) -> Iterator[tuple[str, Path]]:
    """A real memory cgroup with `limit` under /sys/fs/cgroup: (target path, cgroup.procs)."""
    root = Path("/sys/fs/cgroup")
    name = f"memalert-test-{os.getpid()}"
    subtree = root / "cgroup.subtree_control"
    if (root / "memory" / "memory.limit_in_bytes").is_file():
        directory, limit_file = root / "memory" / name, "memory.limit_in_bytes"
    elif subtree.is_file() and "memory" in subtree.read_text().split():
        directory, limit_file = root / name, "memory.max"
    else:
        pytest.skip("no memory controller mounted under /sys/fs/cgroup")
    try:
        directory.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup here: {exc}")
    try:
        (directory / limit_file).write_text(str(limit))
        yield f"/{name}", directory / "cgroup.procs"
    finally:
        directory.rmdir()


@pytest.mark.integration
def test_real_cgroup_with_a_real_child() -> None:
    with (
        scratch_cgroup(256 * MiB) as (path, procs),
        allocating_children(100, cgroup_procs=str(procs)) as (child,),
    ):
        tracker = MemoryTracker()
        samples = tracker.sample_targets(
            [cgroup(path), TargetSpec(name="child", kind="pid", pid=child.pid)], 0.0
        )
    table: dict[str, dict[str, float]] = {}
    for sample in samples:
        table.setdefault(sample.target, {})[sample.metric] = sample.value
    group, process = table["cg"], table["child"]
    assert group["up"] == 1.0, tracker.last_errors
    assert group["limit_bytes"] == 256 * MiB
    assert 100 * MiB <= group["rss_bytes"] <= 200 * MiB
    assert group["pressure"] == group["rss_bytes"] / (256 * MiB)
    # The process inherits its cgroup's limit.
    assert process["limit_bytes"] == 256 * MiB
