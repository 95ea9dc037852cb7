"""Discovered targets in the live engine: a restart keeps the target, a gone one is forgotten."""

from __future__ import annotations

from pathlib import Path

from engine_world import World

from memalert.engine.live.alert_engine import AlertEngine
from memalert.engine.sources.procfs import PAGE_SIZE

MiB = 2**20
RULES = """\
version: 1
interval: 15s
targets:
  - name: processes
    discover: processes
    min_rss: 10MiB
    forget_after: 10m
rules:
  - name: big
    metric: rss_bytes
    above: {warning: 1GiB}
    notify: [hook]
notifiers:
  hook: {urls: ["json://127.0.0.1:9/unused"]}
"""


def process(world: World, pid: int, rss_mib: int, start: int) -> Path:
    directory = world.proc / str(pid)
    directory.mkdir(exist_ok=True)
    rss = rss_mib * MiB
    fields = ["S", "1", *["0"] * 17, str(start), str(rss * 2), str(rss // PAGE_SIZE)]
    (directory / "stat").write_text(f"{pid} (python3) {' '.join(fields)}\n")
    (directory / "cmdline").write_bytes(b"python3\0batch.py\0")
    (directory / "cgroup").write_text("0::/\n")
    return directory


def leak_targets(engine: AlertEngine) -> set[str]:
    return {leak.target for leak in engine.latest().leaks}


def test_restart_keeps_the_target_and_gone_ones_leave_the_detector(tmp_path: Path) -> None:
    world = World(tmp_path, RULES)
    engine = world.engine()
    try:
        first = process(world, 500, 200, start=10)
        world.step(engine, 3)
        assert leak_targets(engine) == {"python3:batch.py"}
        first.rename(world.proc / "gone-500")
        world.step(engine, 2)
        process(world, 600, 50, start=99)  # the same command line: a restart
        world.step(engine, 2)
        infos = [s for s in engine.latest().samples if s.metric == "target_info"]
        assert [(s.target, s.labels["pid"]) for s in infos] == [("python3:batch.py", "600")]
        (world.proc / "600").rename(world.proc / "gone-600")
        world.step(engine, 41)  # more than forget_after (10 min) gone
        assert leak_targets(engine) == set()
    finally:
        engine.close()


def test_the_dashboard_history_is_kept_only_when_asked_for(tmp_path: Path) -> None:
    # `memalert run` asks for it only with --listen, where the dashboard reads it.
    world = World(tmp_path, RULES)
    process(world, 500, 200, start=10)
    for history, expected in ((True, {"python3:batch.py"}), (False, set())):
        engine = world.engine(history=history)
        try:
            world.step(engine, 2)
            assert set(engine.latest().memory) == expected
        finally:
            engine.close()
