"""`discover: processes` and `discover: cgroups` on fake /proc and /sys/fs/cgroup trees."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from memalert.engine.core.errors import RuleFileError
from memalert.engine.core.model import Labels, Sample, TargetSpec
from memalert.engine.rules.load import load_rules
from memalert.engine.sources.procfs import PAGE_SIZE
from memalert.engine.sources.tracker import MemoryTracker

MiB = 1 << 20
GiB = 1 << 30
PROCESSES = TargetSpec(
    name="processes",
    kind="discover",
    discover="processes",
    min_rss_bytes=50 * MiB,
    max_targets=3,
    forget_after_seconds=600.0,
)
CGROUPS = TargetSpec(
    name="services",
    kind="discover",
    discover="cgroups",
    min_rss_bytes=10 * MiB,
    max_targets=10,
    forget_after_seconds=600.0,
)


class FakeHost:
    """A /proc and a cgroup v2 tree that a test fills with processes and groups."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc = root / "proc"
        self.cgroup = root / "cgroup"
        self.proc.mkdir()
        self.cgroup.mkdir()
        (self.cgroup / "cgroup.controllers").write_text("memory\n")
        (self.proc / "meminfo").write_text(f"MemTotal: {16 * GiB // 1024} kB\nMemAvailable: 0 kB\n")

    def process(
        self,
        pid: int,
        cmdline: list[str] | bytes,
        rss: int,
        *,
        start: int = 1000,
        state: str = "S",
        cgroup: str = "0::/\n",
    ) -> Path:
        directory = self.proc / str(pid)
        directory.mkdir(exist_ok=True)
        comm = "proc"
        fields = [state, "1", *["0"] * 17, str(start), str(rss * 4), str(rss // PAGE_SIZE)]
        (directory / "stat").write_text(f"{pid} ({comm}) {' '.join(fields)}\n")
        raw = (
            cmdline if isinstance(cmdline, bytes) else b"".join(a.encode() + b"\0" for a in cmdline)
        )
        (directory / "cmdline").write_bytes(raw)
        (directory / "cgroup").write_text(cgroup)
        return directory

    def group(self, path: str, usage: int, limit: str = "max") -> Path:
        directory = self.cgroup / path
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "memory.current").write_text(f"{usage}\n")
        (directory / "memory.max").write_text(f"{limit}\n")
        return directory

    def tracker(self) -> MemoryTracker:
        return MemoryTracker(1, proc_root=self.proc, cgroup_root=self.cgroup, host_root=self.root)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def by_target(samples: list[Sample], metric: str) -> dict[str, Sample]:
    return {s.target: s for s in samples if s.metric == metric}


def test_each_process_above_the_floor_is_a_target_largest_first(host: FakeHost) -> None:
    host.process(10, ["/usr/bin/python3", "/srv/worker.py"], 300 * MiB)
    host.process(11, ["/usr/sbin/nginx", "-g", "daemon off;"], 80 * MiB)
    host.process(12, ["java", "-jar", "/opt/shop.jar"], 900 * MiB)
    host.process(13, ["redis-server", "*:6379"], 60 * MiB)
    host.process(14, ["tiny"], 10 * MiB)  # below the floor
    samples = host.tracker().sample_targets([PROCESSES], 100.0)
    rss = by_target(samples, "rss_bytes")
    # max_targets 3: the smallest above the floor is left out.
    assert sorted(rss) == ["java:shop.jar", "nginx", "python3:worker.py"]
    assert rss["java:shop.jar"].value == 900 * MiB
    assert rss["java:shop.jar"].labels == Labels(target="java:shop.jar")
    assert by_target(samples, "limit_bytes")["nginx"].value == 16 * GiB
    info = by_target(samples, "target_info")["python3:worker.py"].labels
    assert info["pid"] == "10"
    assert info["cmdline"] == "/usr/bin/python3 /srv/worker.py"
    assert info["discovered"] == "processes"
    assert info["user"]
    assert {s.value for s in samples if s.metric == "up"} == {1.0}


def test_a_process_restarted_keeps_its_name_and_is_not_reported_down(host: FakeHost) -> None:
    tracker = host.tracker()
    directory = host.process(10, ["python3", "leaky.py"], 400 * MiB)
    tracker.sample_targets([PROCESSES], 0.0)
    directory.rename(host.proc / "gone")  # exited
    between = tracker.sample_targets([PROCESSES], 15.0)
    assert between == []  # a gap, not `up` 0: a restart is not a vanished target
    host.process(20, ["python3", "leaky.py"], 100 * MiB, start=5000)
    samples = tracker.sample_targets([PROCESSES], 30.0)
    assert by_target(samples, "rss_bytes")["python3:leaky.py"].value == 100 * MiB
    assert by_target(samples, "target_info")["python3:leaky.py"].labels["pid"] == "20"
    assert tracker.forgotten == ()


def test_a_reused_pid_is_another_process(host: FakeHost) -> None:
    tracker = host.tracker()
    host.process(10, ["python3", "a.py"], 100 * MiB, start=1)
    tracker.sample_targets([PROCESSES], 0.0)
    host.process(10, ["python3", "b.py"], 100 * MiB, start=2)
    samples = tracker.sample_targets([PROCESSES], 15.0)
    assert list(by_target(samples, "rss_bytes")) == ["python3:b.py"]


def test_gone_processes_are_forgotten_after_forget_after(host: FakeHost) -> None:
    tracker = host.tracker()
    directory = host.process(10, ["python3", "batch.py"], 100 * MiB)
    tracker.sample_targets([PROCESSES], 0.0)
    directory.rename(host.proc / "gone")
    tracker.sample_targets([PROCESSES], 600.0)
    kept = tracker.forgotten
    tracker.sample_targets([PROCESSES], 601.0)
    assert (kept, tracker.forgotten) == ((), ("python3:batch.py",))


def test_a_watched_process_stays_watched_just_below_the_floor(host: FakeHost) -> None:
    tracker = host.tracker()
    host.process(10, ["python3", "gc.py"], 60 * MiB)
    host.process(11, ["python3", "new.py"], 40 * MiB)
    tracker.sample_targets([PROCESSES], 0.0)
    host.process(10, ["python3", "gc.py"], 40 * MiB)
    samples = tracker.sample_targets([PROCESSES], 15.0)
    assert list(by_target(samples, "rss_bytes")) == ["python3:gc.py"]


def test_bad_processes_are_skipped_with_a_debug_reason(
    host: FakeHost, caplog: pytest.LogCaptureFixture
) -> None:
    host.process(10, ["python3", "ok.py"], 100 * MiB)
    host.process(11, ["python3", "dead.py"], 100 * MiB, state="Z")
    host.process(12, b"/opt/\xff\xfe/evil\nname\0--flag\0", 100 * MiB)
    no_cmdline = host.process(13, ["python3", "vanishing.py"], 100 * MiB)
    (no_cmdline / "cmdline").unlink()  # exited between the scan and the read
    (host.proc / "14").mkdir()  # no stat at all
    (host.proc / "15").mkdir()
    (host.proc / "15" / "stat").write_text("garbage")
    with caplog.at_level(logging.DEBUG, logger="memalert.engine.sources.discovery"):
        samples = host.tracker().sample_targets([PROCESSES], 0.0)
    assert sorted(by_target(samples, "rss_bytes")) == ["evil_name", "python3:ok.py"]
    info = by_target(samples, "target_info")["evil_name"].labels
    assert info["cmdline"] == "/opt/\ufffd\ufffd/evil?name --flag"
    assert "process 11 skipped: a zombie" in caplog.text
    assert "process 13 skipped" in caplog.text


def test_an_unreadable_cmdline_skips_the_process(
    host: FakeHost, caplog: pytest.LogCaptureFixture
) -> None:
    directory = host.process(10, ["python3", "odd.py"], 100 * MiB)
    (directory / "cmdline").unlink()
    (directory / "cmdline").mkdir()  # read() fails with EISDIR, as root's EACCES would
    with caplog.at_level(logging.DEBUG, logger="memalert.engine.sources.discovery"):
        assert host.tracker().sample_targets([PROCESSES], 0.0) == []
    assert "process 10 skipped: cannot read" in caplog.text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_is_skipped(host: FakeHost) -> None:
    directory = host.process(10, ["python3", "secret.py"], 100 * MiB)
    (directory / "cmdline").chmod(0)
    assert host.tracker().sample_targets([PROCESSES], 0.0) == []


def test_services_containers_and_pods_are_found_on_cgroup_v2(host: FakeHost) -> None:
    host.group("system.slice/nginx.service", 64 * MiB)
    host.group("system.slice/tiny.service", 1 * MiB)
    host.group("system.slice/docker-" + "ab" * 32 + ".scope", 200 * MiB, limit=str(512 * MiB))
    pod = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + "1" * 8 + "_" + "2" * 4
    host.group(pod + "_3333_4444_555555555555.slice", 300 * MiB)
    host.group(pod + "_3333_4444_555555555555.slice/cri-containerd-" + "c" * 64 + ".scope", 1 * GiB)
    host.group("user.slice/user-1000.slice/user@1000.service/app.slice/x.scope", 90 * MiB)
    host.group("tmp", 90 * MiB)
    samples = host.tracker().sample_targets([CGROUPS], 0.0)
    rss = by_target(samples, "rss_bytes")
    # The pod is watched as a whole, not its containers; a slice is never a target,
    # and a unit without memory accounting (user@1000.service here) is not either.
    assert sorted(rss) == [
        "docker:abababababab",
        "nginx.service",
        "pod:11111111-2222-3333-4444-555555555555",
    ]
    assert by_target(samples, "limit_bytes")["docker:abababababab"].value == 512 * MiB
    info = by_target(samples, "target_info")["nginx.service"].labels
    assert info["cgroup"] == "/system.slice/nginx.service"


def test_cgroup_v1_memory_hierarchy(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    memory = host.cgroup / "memory"
    for path in ("", "docker/" + "d" * 64, "system.slice/cron.service"):
        directory = memory / path
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "memory.usage_in_bytes").write_text(f"{100 * MiB}\n")
        (directory / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    samples = host.tracker().sample_targets([CGROUPS], 0.0)
    assert sorted(by_target(samples, "rss_bytes")) == ["cron.service", "docker:dddddddddddd"]


def test_garbled_cgroup_files_skip_that_group(
    host: FakeHost, caplog: pytest.LogCaptureFixture
) -> None:
    host.group("system.slice/good.service", 64 * MiB)
    bad = host.group("system.slice/bad.service", 64 * MiB)
    (bad / "memory.current").write_text("not a number\n")
    with caplog.at_level(logging.DEBUG, logger="memalert.engine.sources.discovery"):
        samples = host.tracker().sample_targets([CGROUPS], 0.0)
    assert list(by_target(samples, "rss_bytes")) == ["good.service"]
    assert "bad.service/memory.current: expected an integer" in caplog.text


def test_an_unlistable_proc_makes_the_discover_target_down(tmp_path: Path) -> None:
    tracker = MemoryTracker(1, proc_root=tmp_path / "nothing", cgroup_root=tmp_path)
    samples = tracker.sample_targets([PROCESSES], 0.0)
    assert [(s.metric, s.target, s.value) for s in samples] == [("up", "processes", 0.0)]
    assert "cannot list" in tracker.last_errors["processes"]


def test_check_reports_discover_settings_where_they_do_not_apply(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\ntargets:\n"
        "  - {name: app, pid: 1, max_targets: 5}\n"
        "  - {name: all, discover: processes, detector: {sensitivity: low}}\n"
        "  - {name: cg, discover: cgroups, forget_after: 0s}\n"
    )
    with pytest.raises(RuleFileError) as raised:
        load_rules([rules], env={})
    detector = "a `discover` target uses its file's `detector:` section"
    ranges = "must be more than 0s and at most 365d (docs/rules.md, Ranges)"
    assert [str(d) for d in raised.value.diagnostics] == [
        f"{rules}:3:25: 'max_targets' of target 'app' applies only to a `discover` target",
        f"{rules}:4:38: 'detector' of target 'all': {detector}",
        f"{rules}:5:49: 'forget_after' of target 'cg' {ranges}",
    ]


def test_containers_and_pods_are_named_where_docker_and_the_kubelet_say(host: FakeHost) -> None:
    first, second, nameless = "a1" * 32, "b2" * 32, "c3" * 32
    for container, config in ((first, '{"Name": "/web"}'), (nameless, "not json")):
        directory = host.root / "var/lib/docker/containers" / container
        directory.mkdir(parents=True)
        (directory / "config.v2.json").write_text(config)
    uid = "7c1e2f3a-1b2c-4d5e-8f90-123456789abc"
    (host.root / "var/log/pods" / f"shop_cart-0_{uid}").mkdir(parents=True)
    host.group(f"system.slice/docker-{first}.scope", 100 * MiB)
    host.group(f"system.slice/docker-{nameless}.scope", 100 * MiB)
    pod = f"kubepods.slice/kubepods-pod{uid.replace('-', '_')}.slice"
    host.group(pod, 200 * MiB)
    tracker = host.tracker()
    names = sorted(by_target(tracker.sample_targets([CGROUPS], 0.0), "rss_bytes"))
    assert names == ["docker:c3c3c3c3c3c3", "docker:web", "pod:shop/cart-0"]
    # `docker compose up` recreates `web`: a new id, the same name, the same target.
    (host.cgroup / f"system.slice/docker-{first}.scope").rename(host.root / "old")
    directory = host.root / "var/lib/docker/containers" / second
    directory.mkdir(parents=True)
    (directory / "config.v2.json").write_text('{"Name": "/web"}')
    host.group(f"system.slice/docker-{second}.scope", 100 * MiB)
    samples = tracker.sample_targets([CGROUPS], 15.0)
    info = by_target(samples, "target_info")["docker:web"].labels
    assert info["cgroup"] == f"/system.slice/docker-{second}.scope"


def test_a_restart_between_two_ticks_takes_the_name_back_at_once(host: FakeHost) -> None:
    tracker = host.tracker()
    old = host.process(10, ["python3", "api.py"], 100 * MiB, start=1)
    tracker.sample_targets([PROCESSES], 0.0)
    old.rename(host.proc / "gone")
    host.process(11, ["python3", "api.py"], 100 * MiB, start=2)
    samples = tracker.sample_targets([PROCESSES], 15.0)
    assert by_target(samples, "target_info")["python3:api.py"].labels["pid"] == "11"
