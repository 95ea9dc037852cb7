"""MemoryTracker: snapshots against independent readings, stats over time, target sampling.

Fixed figures come from the fake /proc tree in tests/fixtures/proc; real figures from
this process and from child processes that hold a known amount of touched memory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from memchildren import MiB, allocating_children, stop

from memalert.engine.core.metrics import Producer, produced_by
from memalert.engine.core.model import Sample, TargetSpec
from memalert.engine.sources.base import TargetUnavailableError
from memalert.engine.sources.tracker import MemorySnapshot, MemoryTracker
from memalert.engine.testing import FakeClock

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures"
PROC = FIXTURES / "proc"
CGROUP_V2 = FIXTURES / "cgroup_v2"
KiB = 1024
GiB = 1 << 30
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def fake_tracker(pid: int = 4242, proc_root: Path = PROC) -> MemoryTracker:
    return MemoryTracker(pid, proc_root=proc_root, cgroup_root=CGROUP_V2, clock=FakeClock())


def by_target(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """{target: {metric: value}}, asserting that no metric is emitted twice per target."""
    table: dict[str, dict[str, float]] = {}
    for sample in samples:
        metrics = table.setdefault(sample.target, {})
        assert sample.metric not in metrics, f"{sample.metric} twice for {sample.target}"
        metrics[sample.metric] = sample.value
    return table


def sample(tracker: MemoryTracker, *specs: TargetSpec) -> dict[str, dict[str, float]]:
    return by_target(tracker.sample_targets(specs, 1_764_000_000.0))


def statm_rss() -> int:
    """RSS as /proc/self/statm gives it: in pages, read independently of the tracker."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_SIZE


# -- snapshot and breakdown ----------------------------------------------------


def test_snapshot_of_fake_process_reads_kb_as_kib() -> None:
    snap = fake_tracker().snapshot()
    assert snap == MemorySnapshot(
        timestamp=1_764_000_000.0,
        pid=4242,
        rss_bytes=102400 * KiB,
        virtual_bytes=409600 * KiB,
        heap_bytes=81920 * KiB,
        resident_bytes=81920 * KiB,
        swap_bytes=1024 * KiB,
    )


def test_resident_bytes_counts_shared_memory_but_not_file_pages(tmp_path: Path) -> None:
    (tmp_path / "9").mkdir()
    (tmp_path / "9" / "status").write_text(
        "VmSize:\t 9000 kB\nVmRSS:\t 7000 kB\nRssAnon:\t 4000 kB\n"
        "RssFile:\t 2000 kB\nRssShmem:\t 1000 kB\n"
    )
    snap = fake_tracker(9, proc_root=tmp_path).snapshot()
    assert (snap.rss_bytes, snap.heap_bytes, snap.resident_bytes) == (
        7000 * KiB,
        4000 * KiB,
        5000 * KiB,
    )


def test_snapshot_on_kernels_without_rss_anon_uses_vm_data(tmp_path: Path) -> None:
    (tmp_path / "9").mkdir()
    (tmp_path / "9" / "status").write_text(
        "VmSize:\t 9000 kB\nVmRSS:\t 7000 kB\nVmData:\t 6000 kB\n"
    )
    assert fake_tracker(9, proc_root=tmp_path).snapshot().heap_bytes == 6000 * KiB


def test_snapshot_of_own_process_matches_statm() -> None:
    before = statm_rss()
    snap = MemoryTracker().snapshot()
    after = statm_rss()
    assert snap.pid == os.getpid()
    # A few MiB of slack for what the interpreter allocates between the readings.
    assert min(before, after) - 4 * MiB <= snap.rss_bytes <= max(before, after) + 4 * MiB
    assert 0 < snap.heap_bytes <= snap.rss_bytes <= snap.virtual_bytes
    assert 0 < snap.resident_bytes <= snap.rss_bytes


@pytest.mark.integration
def test_child_holding_200_mib_shows_200_mib_more() -> None:
    with allocating_children(0, 200) as (idle, holder):
        idle_snap = MemoryTracker(idle.pid).snapshot()
        holder_snap = MemoryTracker(holder.pid).snapshot()
        psutil_rss = psutil.Process(holder.pid).memory_info().rss
    grown = holder_snap.rss_bytes - idle_snap.rss_bytes
    assert 195 * MiB <= grown <= 215 * MiB
    assert abs(holder_snap.rss_bytes - psutil_rss) <= MiB
    assert holder_snap.heap_bytes - idle_snap.heap_bytes >= 195 * MiB
    assert holder_snap.resident_bytes - idle_snap.resident_bytes >= 195 * MiB


def test_snapshot_of_vanished_process_names_it() -> None:
    with pytest.raises(TargetUnavailableError, match="process 999999 not found"):
        fake_tracker(999999).snapshot()


@pytest.mark.parametrize("pid", [0, -5, True, 1.5])
def test_tracker_rejects_pids_that_are_not_process_ids(pid: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        MemoryTracker(pid)  # type: ignore[arg-type]


def test_breakdown_of_fake_process() -> None:
    parts = fake_tracker().breakdown()
    assert parts["rss_total"] == 102400 * KiB
    assert parts["virtual_total"] == 409600 * KiB
    assert parts["heap"] == 81920 * KiB
    assert parts["file"] == 20480 * KiB
    assert parts["swap"] == 1024 * KiB
    assert parts["uss"] == (1024 + 80896) * KiB
    assert parts["pss"] == 88888 * KiB
    assert parts["shared"] == 2048 * KiB


def test_breakdown_leaves_out_what_is_unreadable() -> None:
    parts = fake_tracker(4244).breakdown()
    assert parts["rss_total"] == 10240 * KiB
    assert "uss" not in parts
    assert "pss" not in parts


def test_breakdown_of_own_process_is_consistent() -> None:
    parts = MemoryTracker().breakdown()
    assert parts["rss_total"] > 0
    assert parts["virtual_total"] >= parts["rss_total"]
    assert parts["heap"] + parts["file"] + parts["shmem"] == pytest.approx(
        parts["rss_total"], abs=4 * MiB
    )


# -- stats over time -----------------------------------------------------------


def write_status(proc_root: Path, pid: int, rss_kib: int) -> None:
    (proc_root / str(pid) / "status").write_text(
        f"Name:\tapp\nVmSize:\t{rss_kib * 4} kB\nVmRSS:\t{rss_kib} kB\nRssAnon:\t{rss_kib} kB\n"
    )


def test_stats_takes_duration_over_interval_readings(tmp_path: Path) -> None:
    (tmp_path / "77").mkdir()
    readings_kib = iter([300, 500, 100, 400, 200, 600, 300, 200, 100, 300])
    write_status(tmp_path, 77, next(readings_kib))
    clock = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        # The process "changes" while the tracker sleeps: each wake-up reads a new RSS.
        slept.append(seconds)
        clock.advance(seconds)
        write_status(tmp_path, 77, next(readings_kib))

    tracker = MemoryTracker(77, proc_root=tmp_path, clock=clock, sleep=sleep)
    stats = tracker.stats(1.0, 0.1)
    assert stats.samples == 10
    assert stats.peak_rss == 600 * KiB
    assert stats.min_rss == 100 * KiB
    assert stats.average_rss == pytest.approx(300 * KiB)
    assert slept == pytest.approx([0.1] * 9)
    assert stats.ended - stats.started == pytest.approx(0.9)


def test_stats_of_own_process_samples_for_real() -> None:
    clock = FakeClock()
    tracker = MemoryTracker(clock=clock, sleep=clock.advance)
    stats = tracker.stats(timedelta(minutes=1), timedelta(seconds=5))
    assert stats.samples == 12
    assert stats.peak_rss >= stats.average_rss >= stats.min_rss > 0


def test_stats_pacing_subtracts_time_spent_reading(tmp_path: Path) -> None:
    (tmp_path / "77").mkdir()
    write_status(tmp_path, 77, 100)
    clock = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds + 0.25)  # every wake-up comes late

    MemoryTracker(77, proc_root=tmp_path, clock=clock, sleep=sleep).stats(3.0, 1.0)
    assert slept == pytest.approx([1.0, 0.75])


@pytest.mark.parametrize(
    ("duration", "interval", "message"),
    [
        (1.0, 0.0, "0 < interval <= duration"),
        (1.0, 2.0, "0 < interval <= duration"),
        (-1.0, 0.5, "stats duration"),
        (1.0, float("nan"), "stats interval"),
    ],
)
def test_stats_rejects_impossible_spans(duration: float, interval: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fake_tracker().stats(duration, interval)


# -- sample_targets on the fake tree ---------------------------------------------


def test_self_target_gives_every_tracker_metric() -> None:
    metrics = sample(fake_tracker(), TargetSpec(name="api", kind="self"))["api"]
    assert metrics == {
        "rss_bytes": 102400 * KiB,
        "vms_bytes": 409600 * KiB,
        "uss_bytes": (1024 + 80896) * KiB,
        "swap_bytes": 1024 * KiB,
        # 4242 is in kubepods/pod1 (memory.max "max") under kubepods (1 GiB).
        "limit_bytes": GiB,
        "pressure": 102400 * KiB / GiB,
        "psi_some_avg10": 1.5,
        "psi_full_avg10": 0.25,
        "up": 1.0,
    }
    # target_info is only for discovered targets (test_discovery.py).
    assert set(metrics) == set(produced_by(Producer.TRACKER)) - {"target_info"}


def test_every_sample_carries_the_target_label_and_tick_time() -> None:
    samples = fake_tracker().sample_targets([TargetSpec(name="api", kind="self")], 123.0)
    assert {s.ts for s in samples} == {123.0}
    assert {tuple(s.labels.items()) for s in samples} == {(("target", "api"),)}


def test_pid_target_with_children_sums_the_tree() -> None:
    metrics = sample(fake_tracker(), TargetSpec(name="api", kind="pid", pid=4242, children=True))
    api = metrics["api"]
    # 4242 + 4243 + 4244 + the zombie 4300, which holds nothing.
    assert api["rss_bytes"] == (102400 + 51200 + 10240) * KiB
    assert api["vms_bytes"] == (409600 + 204800 + 20480) * KiB
    assert api["swap_bytes"] == 1024 * KiB
    # 4244's smaps_rollup is unreadable: a partial USS sum would mislead.
    assert "uss_bytes" not in api
    assert api["up"] == 1.0


def test_uss_is_summed_when_every_process_is_readable() -> None:
    spec = TargetSpec(name="web", kind="process", name_pattern="uvicorn.*")
    web = sample(fake_tracker(), spec)["web"]
    assert web["rss_bytes"] == (102400 + 51200) * KiB
    assert web["uss_bytes"] == (1024 + 80896 + 40960) * KiB


@pytest.mark.parametrize(
    ("spec", "rss_kib"),
    [
        pytest.param(
            TargetSpec(name="t", kind="process", name_pattern="uvicorn"), 102400, id="exact-name"
        ),
        pytest.param(
            TargetSpec(name="t", kind="process", name_pattern="uvicorn.*"), 153600, id="name-regex"
        ),
        pytest.param(
            TargetSpec(name="t", kind="process", cmdline_pattern=r"uvicorn .*api"),
            102400,
            id="cmdline",
        ),
        pytest.param(
            TargetSpec(
                name="t", kind="process", cmdline_pattern="uvicorn", name_pattern="uvicorn-worker"
            ),
            51200,
            id="name-and-cmdline",
        ),
        # comm is "postgres-export" (15 bytes, truncated): argv[0] gives the full name.
        pytest.param(
            TargetSpec(name="t", kind="process", name_pattern="postgres-exporter-v2"),
            20480,
            id="long-name",
        ),
        pytest.param(
            TargetSpec(name="t", kind="process", name_pattern=r"sh\) \(x"), 10240, id="paren-comm"
        ),
        pytest.param(
            TargetSpec(name="t", kind="process", name_pattern="uvicorn", children=True),
            102400 + 51200 + 10240,
            id="name-with-children",
        ),
    ],
)
def test_process_matching(spec: TargetSpec, rss_kib: int) -> None:
    assert sample(fake_tracker(), spec)["t"]["rss_bytes"] == rss_kib * KiB


def test_matches_below_another_match_are_counted_once() -> None:
    spec = TargetSpec(name="t", kind="process", name_pattern="uvicorn.*", children=True)
    assert sample(fake_tracker(), spec)["t"]["rss_bytes"] == (102400 + 51200 + 10240) * KiB


def test_pidfile_target(tmp_path: Path) -> None:
    pidfile = tmp_path / "api.pid"
    pidfile.write_text("4243\n")
    metrics = sample(fake_tracker(), TargetSpec(name="w", kind="pidfile", pidfile=str(pidfile)))
    assert metrics["w"]["rss_bytes"] == 51200 * KiB


def test_system_target_reads_meminfo_and_host_psi() -> None:
    host = sample(fake_tracker(), TargetSpec(name="host", kind="system"))["host"]
    assert host == {
        "rss_bytes": (16777216 - 12582912) * KiB,
        "vms_bytes": 20971520 * KiB,
        "swap_bytes": (4194304 - 3145728) * KiB,
        "limit_bytes": 16 * GiB,
        "pressure": pytest.approx(0.25),
        "psi_some_avg10": 2.5,
        "psi_full_avg10": 0.75,
        "up": 1.0,
    }


def test_system_target_without_memavailable_estimates_it(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text(
        "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n"
    )
    host = sample(fake_tracker(proc_root=tmp_path), TargetSpec(name="h", kind="system"))["h"]
    assert host["rss_bytes"] == 600 * KiB
    assert host["pressure"] == pytest.approx(0.6)
    assert "psi_some_avg10" not in host  # no pressure file: unknown, not zero


# -- targets that cannot be read ---------------------------------------------------


def write_pidfile(tmp_path: Path, content: str) -> str:
    path = tmp_path / "x.pid"
    path.write_text(content)
    return str(path)


SpecMaker = Callable[[Path], TargetSpec]


def pid_spec(pid: int) -> SpecMaker:
    return lambda _: TargetSpec(name="t", kind="pid", pid=pid)


def pidfile_spec(content: str | None) -> SpecMaker:
    def make(tmp_path: Path) -> TargetSpec:
        path = tmp_path / "x.pid"
        if content is not None:
            path.write_text(content)
        return TargetSpec(name="t", kind="pidfile", pidfile=str(path))

    return make


def process_spec(name: str | None = None, cmdline: str | None = None) -> SpecMaker:
    return lambda _: TargetSpec(
        name="t", kind="process", name_pattern=name, cmdline_pattern=cmdline
    )


@pytest.mark.parametrize(
    ("make_spec", "reason"),
    [
        pytest.param(pid_spec(999999), "^process 999999 not found$", id="pid-gone"),
        pytest.param(pid_spec(-3), "pid -3 is not a process id", id="pid-negative"),
        pytest.param(pidfile_spec("hello\n"), "does not hold a process id", id="pidfile-garbage"),
        pytest.param(pidfile_spec(""), "does not hold a process id", id="pidfile-empty"),
        pytest.param(pidfile_spec("-1"), "does not hold a process id", id="pidfile-negative"),
        pytest.param(
            pidfile_spec("999999"),
            r"process 999999 not found \(pid from pidfile .*x.pid\)",
            id="pidfile-stale",
        ),
        pytest.param(pidfile_spec(None), r"^pidfile: .*x.pid not found$", id="pidfile-missing"),
        pytest.param(process_spec(name="nginx"), "no process matches name 'nginx'", id="no-match"),
        pytest.param(
            process_spec(name="uvicorn", cmdline="nginx"),
            "no process matches name 'uvicorn' and cmdline 'nginx'",
            id="no-match-both",
        ),
        pytest.param(
            process_spec(cmdline="(unclosed"),
            r"invalid process cmdline regex '\(unclosed'",
            id="bad-regex",
        ),
        pytest.param(process_spec(), "needs a name or cmdline pattern", id="no-pattern"),
        pytest.param(
            lambda _: TargetSpec(name="t", kind="docker"),
            "unknown target kind 'docker'",
            id="bad-kind",
        ),
    ],
)
def test_unreadable_targets_are_down_with_a_reason(
    make_spec: SpecMaker, reason: str, tmp_path: Path
) -> None:
    tracker = fake_tracker()
    metrics = sample(tracker, make_spec(tmp_path), TargetSpec(name="ok", kind="self"))
    assert metrics["t"] == {"up": 0.0}
    assert metrics["ok"]["up"] == 1.0
    assert set(tracker.last_errors) == {"t"}
    assert re.search(reason, tracker.last_errors["t"]), tracker.last_errors["t"]


def test_last_errors_describe_the_latest_tick_only() -> None:
    tracker = fake_tracker()
    sample(tracker, TargetSpec(name="t", kind="pid", pid=999999))
    assert "t" in tracker.last_errors
    sample(tracker, TargetSpec(name="t", kind="pid", pid=4242))
    assert tracker.last_errors == {}


def copy_of_fixture_proc(tmp_path: Path) -> Path:
    proc = tmp_path / "proc"
    shutil.copytree(PROC, proc)
    return proc


def test_unexpected_read_failure_is_a_reason_not_an_exception(tmp_path: Path) -> None:
    proc = copy_of_fixture_proc(tmp_path)
    (proc / "4243" / "status").unlink()
    (proc / "4243" / "status").mkdir()  # read() fails with EISDIR
    tracker = fake_tracker(proc_root=proc)
    metrics = sample(tracker, TargetSpec(name="t", kind="pid", pid=4243))
    assert metrics["t"] == {"up": 0.0}
    assert "cannot read" in tracker.last_errors["t"]
    assert "4243/status" in tracker.last_errors["t"]


def test_a_bug_in_a_sampler_costs_one_target_not_the_tick() -> None:
    tracker = fake_tracker()
    broken = TargetSpec(name="t", kind="pid", pid="4242")  # type: ignore[arg-type]
    metrics = sample(tracker, broken, TargetSpec(name="ok", kind="self"))
    assert metrics["t"] == {"up": 0.0}
    assert metrics["ok"]["up"] == 1.0
    assert tracker.last_errors["t"].startswith("unexpected TypeError: ")


def test_garbage_in_a_kernel_file_is_a_reason(tmp_path: Path) -> None:
    proc = copy_of_fixture_proc(tmp_path)
    (proc / "4243" / "status").write_text("\x00\x01garbage\n")
    (proc / "meminfo").write_text("nonsense\n")
    tracker = fake_tracker(proc_root=proc)
    metrics = sample(
        tracker,
        TargetSpec(name="t", kind="pid", pid=4243),
        TargetSpec(name="host", kind="system"),
    )
    assert metrics["t"] == {"up": 0.0}
    assert metrics["host"] == {"up": 0.0}
    assert "no 'key value' lines" in tracker.last_errors["t"]
    assert "meminfo" in tracker.last_errors["host"]


def test_a_process_that_exits_mid_tick_leaves_the_sum(tmp_path: Path) -> None:
    proc = copy_of_fixture_proc(tmp_path)
    # Listed (its stat is there) but gone by the time its status is read.
    (proc / "4243" / "status").unlink()
    spec = TargetSpec(name="web", kind="process", name_pattern="uvicorn.*")
    web = sample(fake_tracker(proc_root=proc), spec)["web"]
    assert web["up"] == 1.0
    assert web["rss_bytes"] == 102400 * KiB


# Run as an unprivileged user: root reads files whatever their mode. A child drops
# to `nobody` (after its imports) when the tests run as root.
_UNPRIVILEGED_SAMPLER = """
import json, os, sys
from memalert.engine.core.model import TargetSpec
from memalert.engine.sources.tracker import MemoryTracker
if os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)
fake = MemoryTracker(4242, proc_root=sys.argv[1])
real = MemoryTracker()
result = {}
for tracker, spec in [
    (fake, TargetSpec(name="denied", kind="pid", pid=4243)),
    (real, TargetSpec(name="init", kind="pid", pid=1)),
]:
    samples = tracker.sample_targets([spec], 0.0)
    result[spec.name] = {
        "metrics": {s.metric: s.value for s in samples},
        "errors": dict(tracker.last_errors),
    }
print(json.dumps(result))
"""


@pytest.mark.integration
def test_permission_denied_is_a_reason_and_uss_needs_ptrace_access() -> None:
    shared = Path(tempfile.mkdtemp(prefix="memalert-proc-"))
    try:
        shared.chmod(0o755)  # the unprivileged child must reach the copy
        proc = copy_of_fixture_proc(shared)
        (proc / "4243" / "status").chmod(0)
        child = subprocess.run(
            [sys.executable, "-c", _UNPRIVILEGED_SAMPLER, str(proc)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        shutil.rmtree(shared)
    result = json.loads(child.stdout)
    assert result["denied"]["metrics"] == {"up": 0.0}
    assert result["denied"]["errors"] == {"denied": f"permission denied reading {proc}/4243/status"}
    # /proc/1/status is world-readable, /proc/1/smaps_rollup is not: up, without USS.
    init = result["init"]["metrics"]
    assert init["up"] == 1.0
    assert init["rss_bytes"] > 0
    assert "uss_bytes" not in init


# -- sample_targets on real processes --------------------------------------------


@pytest.mark.integration
def test_process_target_sums_real_children_by_cmdline() -> None:
    tag = f"memalert-sum-{os.getpid()}"
    with allocating_children(40, 40, 40, tag=tag) as children:
        expected = sum(psutil.Process(c.pid).memory_info().rss for c in children)
        spec = TargetSpec(name="kids", kind="process", cmdline_pattern=re.escape(tag))
        kids = sample(MemoryTracker(), spec)["kids"]
    assert kids["up"] == 1.0
    assert kids["rss_bytes"] == pytest.approx(expected, abs=2 * MiB)
    assert kids["rss_bytes"] >= 120 * MiB
    assert kids["uss_bytes"] >= 120 * MiB  # root may read smaps_rollup
    assert kids["rss_bytes"] / kids["limit_bytes"] == pytest.approx(kids["pressure"])


@pytest.mark.integration
def test_children_true_adds_the_real_subtree() -> None:
    tracker = MemoryTracker()
    alone = sample(tracker, TargetSpec(name="me", kind="self"))["me"]["rss_bytes"]
    with allocating_children(60, 60):
        with_tree = sample(tracker, TargetSpec(name="me", kind="self", children=True))
    assert with_tree["me"]["rss_bytes"] - alone >= 120 * MiB


@pytest.mark.integration
def test_real_process_that_exits_goes_down_then_stays_down() -> None:
    tracker = MemoryTracker()
    with allocating_children(1) as (child,):
        spec = TargetSpec(name="child", kind="pid", pid=child.pid)
        assert sample(tracker, spec)["child"]["up"] == 1.0
        stop(child)
        assert sample(tracker, spec)["child"] == {"up": 0.0}
    assert tracker.last_errors == {"child": f"process {child.pid} not found"}


def test_real_host_matches_psutil() -> None:
    host = sample(MemoryTracker(), TargetSpec(name="host", kind="system"))["host"]
    memory = psutil.virtual_memory()
    assert host["limit_bytes"] == memory.total
    assert host["rss_bytes"] == pytest.approx(memory.total - memory.available, abs=64 * MiB)
    assert 0.0 <= host["pressure"] <= 1.0
