"""AlertEngine ticked by hand: a fake /proc, a FakeClock, recording notifiers, a real state file.

Each test drives `tick(now)` and `delivery.run_once(now)` itself, so nothing
sleeps and nothing depends on the machine's speed; the SQLite store is real.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from engine_world import INTERVAL, PID, RULES, MiB, World

from memalert.engine.alerting.evaluate import EvalState
from memalert.engine.alerting.routing import AlertKey, Notification
from memalert.engine.allocations.leaks import LeakDetector
from memalert.engine.core.errors import Diagnostic
from memalert.engine.core.model import Matcher, Silence
from memalert.engine.live.alert_engine import AlertEngine
from memalert.engine.rules.load import load_rules
from memalert.engine.sources.tracker import MemoryTracker
from memalert.engine.store.state import CommitStats, StateStore, StateStoreError
from memalert.notifiers.testing import RecordingNotifier


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture
def engine(world: World) -> Iterator[AlertEngine]:
    with world.engine() as running:
        yield running


def delivered(notifier: RecordingNotifier) -> list[tuple[str, str]]:
    return [(e.event, e.severity.label) for e in notifier.events]


def test_warning_then_critical_then_resolved_reach_the_notifier_in_order(
    world: World, engine: AlertEngine
) -> None:
    world.step(engine)
    world.set_rss(150)
    events = world.step(engine, 3)  # pending, held for 15 s, fired at 30 s
    assert [e.event for e in events] == ["pending", "firing"]
    world.set_rss(250)
    world.step(engine, 3)
    world.set_rss(50)
    world.step(engine)

    assert delivered(world.hook) == [
        ("firing", "warning"),
        ("escalated", "critical"),
        ("resolved", "critical"),
    ]
    # One grouped message per notifier and tick, each written to the outbox first.
    assert all(len(n.events) == 1 for n in world.hook.sent)


def test_pending_time_survives_a_restart_on_the_same_state_file(world: World) -> None:
    world.set_rss(150)
    with world.engine() as first:
        world.step(first)  # pending since this tick
        pending_since = world.clock()
        world.step(first)
    with world.engine() as second:
        events = world.step(second)  # 30 s after the first pending tick: fires now
    assert [e.event for e in events] == ["firing"]
    assert events[0].active_since == pending_since
    assert delivered(world.hook) == [("firing", "warning")]


def test_a_restart_does_not_notify_a_firing_alert_again_before_repeat_interval(
    world: World,
) -> None:
    world.set_rss(150)
    with world.engine() as first:
        world.step(first, 4)
    assert delivered(world.hook) == [("firing", "warning")]
    with world.engine() as second:
        assert world.step(second, 10) == []
        world.step(second, 230)  # past the hour since the first notification
    assert delivered(world.hook) == [("firing", "warning"), ("repeated", "warning")]


def test_a_failing_notifier_delays_delivery_but_not_evaluation(world: World) -> None:
    flaky = RecordingNotifier("hook", failures=3)
    world.set_rss(150)
    with world.engine(notifiers={"hook": flaky}) as engine:
        world.step(engine, 3)
        world.set_rss(50)
        world.step(engine)
        assert engine.latest().outbox_backlog >= 1
        for _ in range(40):  # retries back off with jitter: give them room
            world.step(engine)
        assert engine.latest().outbox_backlog == 0
    assert delivered(flaky) == [("firing", "warning"), ("resolved", "warning")]
    assert len(flaky.attempts) == 5
    assert engine.latest().notifications_total == {("hook", "failed"): 3, ("hook", "delivered"): 2}


class FailingCommits(StateStore):
    """A real store whose next `failures` commits fail as a full disk would."""

    failures = 0

    def commit_tick(
        self,
        state: EvalState,
        notifications: Sequence[Notification],
        *,
        now: float,
        rule_metrics: Mapping[str, str] | None = None,
        inhibited: frozenset[AlertKey] = frozenset(),
    ) -> CommitStats:
        if self.failures:
            self.failures -= 1
            raise StateStoreError(f"state file {self.path}: saving the tick failed: disk full")
        return super().commit_tick(
            state, notifications, now=now, rule_metrics=rule_metrics, inhibited=inhibited
        )


def test_a_failed_commit_is_reported_and_its_notification_goes_out_with_the_next_tick(
    world: World,
) -> None:
    store = FailingCommits(world.state)
    engine = AlertEngine(
        load_rules([world.rules], env={}),
        paths=[world.rules],
        store=store,
        notifiers={"hook": world.hook},
        tracker=MemoryTracker(PID, proc_root=world.proc, cgroup_root=world.tmp / "cgroup"),
        clock=world.clock,
        sleep=world.clock.advance,
    )
    world.set_rss(250)
    world.step(engine, 2)
    store.failures = 1
    with pytest.raises(StateStoreError, match="disk full"):
        world.step(engine)  # this tick would have fired
    snapshot = engine.latest()
    assert snapshot.tick_errors_total == 1
    assert snapshot.last_tick_error is not None
    assert "disk full" in snapshot.last_tick_error
    assert world.hook.events == []

    events = world.step(engine)
    engine.close()
    assert [e.event for e in events] == ["firing"]
    assert delivered(world.hook) == [("firing", "critical")]
    assert engine.latest().last_tick_error is None


def test_snapshot_shows_the_last_tick(world: World, engine: AlertEngine) -> None:
    world.set_rss(150)
    world.step(engine, 2)
    now = world.clock.advance(INTERVAL)
    engine.tick(now)  # fires; delivery not run yet

    snapshot = engine.latest()
    assert snapshot.last_tick_at == now
    assert snapshot.ticks_total == 3
    assert len(snapshot.tick_durations) == 3
    assert snapshot.interval == INTERVAL
    assert [(a.rule, a.state, a.severity.label) for a in snapshot.alerts] == [
        ("api-rss", "firing", "warning")
    ]
    by_metric = {s.metric: s.value for s in snapshot.samples if s.target == "api"}
    assert by_metric["rss_bytes"] == 150 * MiB
    assert by_metric["up"] == 1.0
    assert "leak_bytes" in by_metric  # the trend detector ran
    assert [leak.target for leak in snapshot.leaks] == ["api"]
    assert snapshot.outbox_backlog == 1

    engine.delivery.run_once(now)
    engine.tick(world.clock.advance(INTERVAL))
    assert engine.latest().outbox_backlog == 0
    assert engine.latest().notifications_total == {("hook", "delivered"): 1}


def test_a_silence_suppresses_notifications_not_evaluation(
    world: World, engine: AlertEngine
) -> None:
    now = world.clock()
    silence = Silence(
        matchers=(Matcher.compile("target", "api"),), starts=now, ends=now + 3600, comment="deploy"
    )
    silence_id = engine.add_silence(silence)
    assert [s.id for s in engine.latest().silences] == [silence_id]
    world.set_rss(150)
    world.step(engine, 4)
    assert [a.state for a in engine.latest().alerts] == ["firing"]
    assert world.hook.events == []

    assert engine.expire_silence(silence_id)
    assert engine.latest().silences == ()
    assert not engine.expire_silence(silence_id)


def test_reload_keeps_the_last_good_rules_and_reports_errors_where_they_are(
    world: World, engine: AlertEngine, caplog: pytest.LogCaptureFixture
) -> None:
    world.rules.write_text(RULES.replace("metric: rss_bytes", "metric: rss_bytess"))
    with caplog.at_level(logging.ERROR, logger="memalert.engine"):
        errors = engine.reload()
    assert errors
    assert all(isinstance(d, Diagnostic) and d.file == str(world.rules) for d in errors)
    assert any("rss_bytess" in d.message for d in errors)
    assert str(errors[0]) in caplog.text  # logged as `memalert check` prints it

    world.set_rss(150)
    world.step(engine, 3)
    assert delivered(world.hook) == [("firing", "warning")]  # the old rules still run

    world.rules.write_text(RULES.replace("warning: 100MiB", "warning: 160MiB"))
    assert engine.reload() == []
    world.step(engine)
    assert delivered(world.hook)[-1] == ("resolved", "warning")  # 150 MiB is below 160 MiB now


def test_reload_reports_a_notifier_that_cannot_be_built(tmp_path: Path) -> None:
    rules = RULES.replace('"json://127.0.0.1:9/unused"', '"file://${ALERT_LOG}"')
    world = World(tmp_path, rules)
    log_file = tmp_path / "alerts.jsonl"
    env = {"ALERT_LOG": str(log_file)}
    world.set_rss(150)
    with AlertEngine.from_files(
        [world.rules],
        state_path=world.state,
        env=env,
        clock=world.clock,
        tracker=MemoryTracker(PID, proc_root=world.proc, cgroup_root=tmp_path / "cg"),
    ) as engine:
        world.rules.write_text(rules.replace("${ALERT_LOG}", "${NOT_SET}"))
        (error,) = engine.reload()
        assert "NOT_SET" in error.message
        assert (error.file, error.line) == (str(world.rules), 14)
        world.step(engine, 3)  # the file notifier built at start still delivers
    (line,) = log_file.read_text().splitlines()
    assert json.loads(line)["events"][0]["event"] == "firing"


def test_without_targets_the_host_is_watched(tmp_path: Path) -> None:
    rules = RULES.replace("targets:\n  - name: api\n    pid: 4242\n", "")
    world = World(tmp_path, rules)
    with world.engine() as engine:
        world.step(engine)
        targets = {s.target for s in engine.latest().samples}
    assert targets == {"host"}


def test_a_target_whose_variable_is_unset_is_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = RULES.replace(
        "targets:\n", "targets:\n  - name: app\n    pidfile: ${MEMALERT_PIDFILE}\n"
    )
    world = World(tmp_path, rules)
    with caplog.at_level(logging.WARNING), world.engine(env={}) as engine:
        world.step(engine)
        targets = {s.target for s in engine.latest().samples}
    assert targets == {"api"}
    assert "MEMALERT_PIDFILE" in caplog.text


LEAK_RULES = """\
version: 1
interval: 15s
targets:
  - name: self
    self: true
rules:
  - name: component-leak
    metric: leak_bytes
    where: {component: "*"}
    above: {warning: 1MiB}
    notify: [hook]
notifiers:
  hook: {urls: ["json://127.0.0.1:9/unused"]}
"""


def test_a_leak_alert_on_this_process_is_followed_by_its_allocation_sites(
    tmp_path: Path,
) -> None:
    world = World(tmp_path, LEAK_RULES)
    detector = LeakDetector(clock=world.clock)
    grown: list[bytearray] = []

    def leaky_pause(seconds: float) -> None:
        # Stands in for the interval the diagnosis traces: this site grows during it.
        del seconds
        grown.extend(bytearray(64 * 1024) for _ in range(64))

    with AlertEngine.from_files(
        [world.rules],
        state_path=world.state,
        env={},
        clock=world.clock,
        notifiers={"hook": world.hook},
        detector=detector,
        sleep=leaky_pause,
    ) as engine:
        for step in range(8):
            detector.record_allocation("cache", "put", 1 * MiB, timestamp=world.clock() + step)
        world.clock.advance(8)
        world.step(engine)
        assert engine.wait_for_diagnosis(timeout=60)
        world.step(engine)
        snapshot = engine.latest()

    fired, follow_up = world.hook.events
    assert (fired.event, fired.labels.as_dict()) == (
        "firing",
        {"target": "self", "component": "cache"},
    )
    assert follow_up.event == "repeated"
    assert follow_up.reason == "allocation sites diagnosed"
    sites = [site for site, _ in follow_up.top_sites]
    assert any(site.startswith(__file__) for site in sites), sites
    assert any(s.metric == "site_growth_bytes" for s in snapshot.samples)
    (component,) = [leak for leak in snapshot.leaks if leak.component == "cache"]
    assert component.leak_bytes == 8 * MiB
    assert snapshot.component_leaks is not None


@pytest.mark.integration
def test_start_runs_ticks_and_delivery_in_the_background_and_stop_ends_them(
    tmp_path: Path,
) -> None:
    # Real clock and threads: the in-process use of README.md#python-api.
    world = World(tmp_path, RULES.replace("interval: 15s", "interval: 1s").replace("30s", "0s"))
    world.set_rss(150)
    engine = AlertEngine.from_files(
        [world.rules],
        state_path=world.state,
        env={},
        tracker=MemoryTracker(PID, proc_root=world.proc, cgroup_root=tmp_path / "cgroup"),
        notifiers={"hook": world.hook},
    )
    engine.start()
    try:
        deadline = time.monotonic() + 60
        # The tick's snapshot is published just after its commit wakes the delivery,
        # so the message can arrive before the tick is counted: wait for both.
        while (not world.hook.events or engine.latest().ticks_total < 1) and (
            time.monotonic() < deadline
        ):
            threading.Event().wait(0.02)
        assert delivered(world.hook) == [("firing", "warning")]
        assert engine.latest().ticks_total >= 1
    finally:
        assert engine.stop(timeout=10)
    names = {thread.name for thread in threading.enumerate()}
    # The dispatcher "memalert-delivery" and a lane per notifier, "memalert-delivery-hook".
    assert not {name for name in names if name.startswith(("memalert-delivery", "APScheduler"))}
    with pytest.raises(StateStoreError, match="closed"):
        engine.store.status(time.time())


def test_a_thousand_alerts_firing_in_one_tick_reach_a_notifier_as_one_message(
    tmp_path: Path,
) -> None:
    pids = range(10_000, 11_000)
    targets = "".join(f"  - name: p{pid}\n    pid: {pid}\n" for pid in pids)
    world = World(tmp_path, RULES.replace("  - name: api\n    pid: 4242\n", targets))
    for pid in pids:
        (world.proc / str(pid)).mkdir()
        (world.proc / str(pid) / "status").write_text("VmSize:\t400000 kB\nVmRSS:\t150000 kB\n")
    with world.engine() as engine:
        world.step(engine, 3)
    (message,) = world.hook.sent
    assert len(message.events) == 1000
    assert {e.event for e in message.events} == {"firing"}


INHIBITING_RULES = RULES.replace(
    "notifiers:",
    """\
  - name: api-rss-high
    metric: rss_bytes
    above: {critical: 200MiB}
    notify: [hook]
inhibit_rules:
  - source_matchers: {rule: api-rss-high}
    target_matchers: {rule: api-rss}
    equal: [target]
notifiers:""",
)


def test_the_alerts_an_inhibit_rule_mutes_are_marked_in_the_state_file(tmp_path: Path) -> None:
    world = World(tmp_path, INHIBITING_RULES)
    with world.engine() as engine:
        world.set_rss(250)
        world.step(engine, 3)  # api-rss-high fires at once, api-rss after its 30 s
        with StateStore(world.state) as store:
            muted = {a.rule: a.inhibited for a in store.status(world.clock()).alerts}
        world.set_rss(150)  # the source resolves; api-rss fires on (warning)
        world.step(engine)
        with StateStore(world.state) as store:
            after = {a.rule: a.inhibited for a in store.status(world.clock()).alerts}
    assert muted == {"api-rss": True, "api-rss-high": False}
    assert after == {"api-rss": False}
    # Muted while the source fired; heard again once it resolved.
    sent = [(e.rule, e.event) for e in world.hook.events]
    assert sent[0] == ("api-rss-high", "firing")
    assert sorted(sent[1:]) == [("api-rss", "deescalated"), ("api-rss-high", "resolved")]
