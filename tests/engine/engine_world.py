"""An AlertEngine's outside world for tests: a fake /proc, a FakeClock, a rule file, a state file.

`World.step` advances the clock one interval, ticks, and runs one delivery
pass, so tests read like the timeline they check and nothing sleeps.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from memalert.engine.allocations.leaks import LeakDetector
from memalert.engine.core.model import AlertEvent
from memalert.engine.live.alert_engine import AlertEngine
from memalert.engine.sources.tracker import MemoryTracker
from memalert.engine.testing import FakeClock
from memalert.notifiers.testing import RecordingNotifier

PID = 4242
INTERVAL = 15.0
MiB = 2**20
FIXTURE_PROC = Path(__file__).resolve().parents[1] / "fixtures" / "proc"

RULES = """\
version: 1
interval: 15s
repeat_interval: 1h
targets:
  - name: api
    pid: 4242
rules:
  - name: api-rss
    metric: rss_bytes
    above: {warning: 100MiB, critical: 200MiB}
    for: 30s
    notify: [hook]
notifiers:
  hook: {urls: ["json://127.0.0.1:9/unused"]}
"""


class World:
    """The outside world of one engine: /proc, clock, rule file, state file, notifiers."""

    def __init__(self, tmp_path: Path, rules: str = RULES) -> None:
        self.tmp = tmp_path
        self.proc = tmp_path / "proc"
        (self.proc / str(PID)).mkdir(parents=True)
        shutil.copy(FIXTURE_PROC / "meminfo", self.proc / "meminfo")
        self.clock = FakeClock()
        self.rules = tmp_path / "rules.yaml"
        self.rules.write_text(rules)
        self.state = tmp_path / "state.db"
        self.hook = RecordingNotifier("hook")
        self.set_rss(50)

    def set_rss(self, mib: float) -> None:
        kib = int(mib * 1024)
        (self.proc / str(PID) / "status").write_text(
            f"Name:\tapi\nVmSize:\t{kib * 4} kB\nVmRSS:\t{kib} kB\nRssAnon:\t{kib} kB\n"
        )

    def engine(
        self,
        *,
        notifiers: Mapping[str, RecordingNotifier] | None = None,
        env: Mapping[str, str] | None = None,
        detector: LeakDetector | None = None,
        sleep: object = None,
        history: bool = True,
    ) -> AlertEngine:
        return AlertEngine.from_files(
            [self.rules],
            state_path=self.state,
            env=env if env is not None else {},
            clock=self.clock,
            tracker=MemoryTracker(PID, proc_root=self.proc, cgroup_root=self.tmp / "cgroup"),
            notifiers=notifiers if notifiers is not None else {"hook": self.hook},
            detector=detector,
            sleep=sleep if callable(sleep) else self.clock.advance,
            history=history,
        )

    def step(self, engine: AlertEngine, ticks: int = 1) -> list[AlertEvent]:
        """Advance one interval per tick, tick and deliver; the events of those ticks."""
        events: list[AlertEvent] = []
        for _ in range(ticks):
            now = self.clock.advance(INTERVAL)
            events += engine.tick(now).events
            engine.delivery.run_once(now)
        return events
