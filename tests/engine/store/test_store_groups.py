"""Notification groups in the state file (v5): a v4 file upgrades, group timers survive restarts.

The v4 file is made as memalert v4 made it: the schema by the first four steps
of the migrations, its rows by the statements still in use.
"""

from __future__ import annotations

from pathlib import Path

from store_kit import T0, fired, note, raw, scalar

from memalert.engine.alerting.evaluate import EvalState, InstanceState
from memalert.engine.alerting.pipeline import Pipeline
from memalert.engine.core.model import Labels, Sample, Severity
from memalert.engine.rules.load import load_rules
from memalert.engine.store import instances as store_instances
from memalert.engine.store import outbox as store_outbox
from memalert.engine.store.codec import decode_notification, encode_notification
from memalert.engine.store.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from memalert.engine.store.state import StateStore

RULES = """\
version: 1
rules:
  - name: high-rss
    metric: rss_bytes
    above: {warning: 100MiB}
notifiers:
  pager: {urls: ["json://127.0.0.1:9/pager"]}
routes:
  - notify: [pager]
    group_by: [rule]
    group_wait: 30s
    group_interval: 1m
    repeat_interval: 10m
"""
HIGH = 150 * 2**20


def _samples(now: float, *targets: str) -> list[Sample]:
    return [Sample("rss_bytes", Labels(target=t), HIGH, now) for t in targets]


def make_v4_file(path: Path) -> None:
    """A v4 state file with a firing instance and a queued notification."""
    with raw(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        assert migrate(conn, MIGRATIONS[:4]) == 4
        conn.execute("BEGIN")
        instance = InstanceState(
            active_since=(T0 - 60, None), firing=Severity.WARNING, firing_since=T0 - 60
        )
        store_instances.upsert(
            conn, [(("high-rss", Labels(target="api")), instance)], EvalState(), {}, T0
        )
        store_outbox.enqueue(conn, [note("pager", fired(target="api"))], T0)
        conn.execute("COMMIT")
    assert scalar(path, "PRAGMA user_version") == 4


def test_a_v4_file_upgrades_keeps_its_state_and_then_keeps_groups(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    make_v4_file(path)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    ruleset = load_rules([rules], env={})
    with StateStore(path) as store:
        assert scalar(path, "PRAGMA user_version") == SCHEMA_VERSION == 5
        state = store.load_state()
        assert list(state.instances) == [("high-rss", Labels(target="api"))]
        assert state.groups == {}
        assert store.outbox_counts().backlog == 1
        # Grouping starts from the upgraded state: the alert that was firing
        # (never notified) is repeated by its rule and joins the new group.
        pipeline = Pipeline(ruleset, state=state)
        result = pipeline.step(T0, _samples(T0, "api", "db"))
        store.commit_tick(pipeline.state, result.notifications, now=T0)
    with StateStore(path) as store:
        groups = store.load_state().groups
    assert [labels for _, labels in groups] == [Labels(rule="high-rss")]
    (group,) = groups.values()
    assert group.due == T0 + 30
    assert [key[1]["target"] for key in group.alerts] == ["api", "db"]


def _run(path: Path, ruleset_path: Path, times: list[float]) -> list[tuple[float, list[str]]]:
    """Ticks at `times` with one store opened (a daemon run); what each tick sent."""
    ruleset = load_rules([ruleset_path], env={})
    sent = []
    with StateStore(path) as store:
        pipeline = Pipeline(ruleset, state=store.load_state())
        for now in times:
            result = pipeline.step(now, _samples(now, "api", "db"))
            store.commit_tick(pipeline.state, result.notifications, now=now)
            sent += [
                (now, sorted(e.labels["target"] for e in n.events)) for n in result.notifications
            ]
    return sent


def test_group_timers_and_what_was_sent_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    # First run: the group is created at T0 and the daemon stops before group_wait ends.
    assert _run(path, rules, [T0, T0 + 15]) == []
    # Second run: the group is sent when it was due, 30 s after its first alert.
    assert _run(path, rules, [T0 + 30]) == [(T0 + 30, ["api", "db"])]
    # Third run: nothing new at the flushes (its log survived); the repeat after 10 min.
    later = [T0 + 30 + 60 * i for i in range(1, 11)]
    assert _run(path, rules, later) == [(T0 + 630, ["api", "db"])]


def test_a_group_notification_keeps_its_group_through_the_outbox() -> None:
    grouped = note("pager", fired(target="api"))
    assert decode_notification(encode_notification(grouped)).group is None
    with_group = type(grouped)(
        notifier="pager", at=T0, events=grouped.events, group=Labels(rule="rss-high")
    )
    assert decode_notification(encode_notification(with_group)) == with_group
