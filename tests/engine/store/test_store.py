"""The state file: location, permissions, migrations, refusals, and alert state across restarts.

Every test uses a real SQLite file under tmp_path and "restarts" by closing the
store and opening a new StateStore on the same file.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from typing import TYPE_CHECKING

import pytest
from builders import C, W, make_rule, sample
from store_kit import T0, fired, note, raw, scalar

from memalert.engine.alerting.evaluate import EvalState, InstanceState, evaluate
from memalert.engine.alerting.routing import group_notifications
from memalert.engine.core.model import AlertEvent, Labels, RuleSet
from memalert.engine.store.schema import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    default_state_path,
    migrate,
)
from memalert.engine.store.state import StateStore, StateStoreError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def no_umask() -> Iterator[None]:
    """Umask 0: files get exactly the mode they are created with, nothing hides a lax one."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- where the file lives, and who may read it ---------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"XDG_STATE_HOME": "/srv/state", "HOME": "/home/u"}, "/srv/state/memalert/state.db"),
        ({"HOME": "/home/u"}, "/home/u/.local/state/memalert/state.db"),
        # The XDG spec: a relative path is invalid and ignored.
        ({"XDG_STATE_HOME": "rel", "HOME": "/home/u"}, "/home/u/.local/state/memalert/state.db"),
    ],
)
def test_default_path_follows_xdg(env: dict[str, str], expected: str) -> None:
    assert str(default_state_path(env)) == expected


def test_store_is_created_private_under_the_xdg_state_dir(tmp_path: Path, no_umask: None) -> None:
    with StateStore(env={"XDG_STATE_HOME": str(tmp_path), "HOME": "/nonexistent"}) as store:
        path = tmp_path / "memalert" / "state.db"
        assert store.path == path
        store.commit_tick(EvalState(), [note("ops")], now=T0)  # makes SQLite write its WAL
        assert mode_of(path.parent) == 0o700
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            assert mode_of(path.parent / name) == 0o600, name


def test_an_existing_file_readable_by_others_is_made_private(
    tmp_path: Path, no_umask: None
) -> None:
    path = tmp_path / "state.db"
    path.touch(mode=0o644)
    StateStore(path).close()
    assert mode_of(path) == 0o600


def test_missing_file_is_an_error_when_creation_is_not_allowed(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="does not exist"):
        StateStore(tmp_path / "typo.db", create=False)
    assert not (tmp_path / "typo.db").exists()


def test_a_state_file_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(StateStoreError, match=r"not-a-dir/state.db: cannot create"):
        StateStore(blocker / "state.db")


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    store.close()
    with pytest.raises(StateStoreError, match="closed"):
        store.load_state()


# -- schema versions --------------------------------------------------------------------


def test_an_empty_file_is_migrated_from_version_0(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.touch()
    assert scalar(path, "PRAGMA user_version") == 0
    StateStore(path).close()
    assert scalar(path, "PRAGMA user_version") == SCHEMA_VERSION
    assert scalar(path, "PRAGMA application_id") == APPLICATION_ID
    assert scalar(path, "PRAGMA journal_mode") == "wal"


def test_migrations_apply_in_order_and_keep_data(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with StateStore(path) as store:
        store.add_silence(matchers={"target": "api"}, starts=T0, ends=T0 + 60, now=T0)
    later = (
        *MIGRATIONS,
        Migration(
            version=SCHEMA_VERSION + 1,
            description="ticket",
            statements=("ALTER TABLE silences ADD COLUMN ticket TEXT",),
        ),
        Migration(
            version=SCHEMA_VERSION + 2,
            description="default ticket",
            statements=("UPDATE silences SET ticket = 'OPS-1'",),
        ),
    )
    with raw(path) as conn:
        assert migrate(conn, later) == SCHEMA_VERSION + 2
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 2
        assert conn.execute("SELECT ticket FROM silences").fetchall() == [("OPS-1",)]


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    StateStore(path).close()
    broken = (
        *MIGRATIONS,
        Migration(
            version=SCHEMA_VERSION + 1,
            description="half done",
            statements=("CREATE TABLE extra (x)", "INSERT INTO missing VALUES (1)"),
        ),
    )
    with raw(path) as conn:
        with pytest.raises(Exception, match="missing"):
            migrate(conn, broken)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "extra" not in tables


def test_misnumbered_migrations_are_a_programming_error(tmp_path: Path) -> None:
    with raw(tmp_path / "s.db") as conn, pytest.raises(ValueError, match="numbered"):
        migrate(conn, (Migration(version=2, description="x", statements=()),))


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with StateStore(path) as store:
        store.commit_tick(EvalState(), [note("ops")], now=T0)
    with raw(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(StateStoreError, match="newer than this memalert knows") as caught:
        StateStore(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    assert scalar(path, "SELECT count(*) FROM outbox") == 1


# -- files that are not ours or are damaged: refuse, never overwrite -----------------------


def test_a_file_that_is_not_a_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_text("alerts: this is a YAML file, not a database\n" * 50)
    before = path.read_bytes()
    with pytest.raises(StateStoreError, match="not a usable memalert state file") as caught:
        StateStore(path)
    assert str(path) in str(caught.value)
    assert "untouched" in str(caught.value)
    assert path.read_bytes() == before


def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with raw(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    before = path.read_bytes()
    with pytest.raises(StateStoreError, match="another application"):
        StateStore(path)
    assert path.read_bytes() == before


def test_a_damaged_state_file_is_refused_and_its_bytes_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with StateStore(path) as store:
        many = {
            ("r", Labels(target=f"t{i}", pad="x" * 100)): InstanceState(firing=W, firing_since=T0)
            for i in range(500)
        }
        store.commit_tick(EvalState(instances=many), [], now=T0)
    page = scalar(path, "PRAGMA page_size")
    data = bytearray(path.read_bytes())
    assert len(data) > 8 * page
    data[3 * page : 6 * page] = b"\xde\xad\xbe\xef" * (3 * page // 4)  # pages 4..6
    path.write_bytes(bytes(data))
    with pytest.raises(StateStoreError, match=r"damaged|malformed|not a usable") as caught:
        StateStore(path)
    assert "untouched" in str(caught.value)
    assert path.read_bytes() == bytes(data)


def test_an_unreadable_row_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with StateStore(path) as store:
        key = ("rss-high", Labels(target="api"))
        store.commit_tick(EvalState(instances={key: InstanceState(firing=W)}), [], now=T0)
    with raw(path) as conn:
        conn.execute("UPDATE alert_instances SET labels = '{broken'")
    with StateStore(path) as store, pytest.raises(StateStoreError, match="'rss-high'"):
        store.load_state()


# -- alert state across restarts -------------------------------------------------------------

STATES = {
    ("leak", Labels(target="api", component="cache")): InstanceState(
        active_since=(T0 - 120, T0 - 30),
        firing=W,
        firing_since=T0 - 60,
        last_notified=T0 - 60,
    ),
    ("leak", Labels(target="api", component="sessions")): InstanceState(
        active_since=(T0 - 10, None)
    ),
    ("rss-high", Labels(target="wörker ✓", host="a=b,c")): InstanceState(
        active_since=(None, None),
        firing=C,
        firing_since=T0 - 7200,
        hold_since=(T0 - 5, T0 - 20),
        last_notified=T0 - 3600,
    ),
}


def test_instances_survive_a_restart_exactly(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with StateStore(path) as store:
        store.commit_tick(EvalState(instances=STATES), [], now=T0)
    with StateStore(path) as reopened:
        loaded = reopened.load_state()
    assert loaded.instances == STATES
    assert loaded.series == {}


def every_field_set() -> InstanceState:
    """An InstanceState whose every field differs from its default, found by type."""
    values: dict[str, object] = {}
    for number, field in enumerate(dataclasses.fields(InstanceState), start=1):
        kind = str(field.type)
        if kind.startswith("tuple"):
            values[field.name] = (T0 - number, T0 - 100 * number)
        elif kind.startswith("Severity"):
            values[field.name] = C
        elif kind.startswith("float"):
            values[field.name] = T0 - number
        else:
            pytest.fail(f"teach this test (and the store) about {field.name}: {kind}")
    return InstanceState(**values)  # type: ignore[arg-type]


def test_every_instance_field_survives_a_restart(tmp_path: Path) -> None:
    """Fails when the evaluator adds a field the state file does not keep."""
    state = EvalState(instances={("r", Labels(target="api")): every_field_set()})
    with StateStore(tmp_path / "s.db") as store:
        store.commit_tick(state, [], now=T0)
    with StateStore(tmp_path / "s.db") as reopened:
        assert reopened.load_state().instances == state.instances


def test_status_shows_the_stored_alerts_with_their_last_value(tmp_path: Path) -> None:
    key = ("rss-high", Labels(target="api"))
    state = EvalState(
        instances={key: InstanceState(firing=C, firing_since=T0)},
        series={("rss_bytes", key[1]): sample(3e9, T0)},
    )
    with StateStore(tmp_path / "s.db") as store:
        store.commit_tick(state, [], now=T0, rule_metrics={"rss-high": "rss_bytes"})
        (alert,) = store.status(T0).alerts
    assert (alert.rule, alert.labels, alert.status, alert.last_value) == (
        "rss-high",
        key[1],
        "firing",
        3e9,
    )
    assert alert.state == state.instances[key]
    assert len(alert.fingerprint) == 16
    assert alert.updated_at == T0


class Daemon:
    """evaluate -> route -> commit_tick, with a restart being a new StateStore on the file."""

    def __init__(self, path: Path, ruleset: RuleSet) -> None:
        self.path = path
        self.ruleset = ruleset
        self.store = StateStore(path)
        self.state = self.store.load_state()

    def tick(self, now: float, value: float) -> list[tuple[str, str]]:
        samples = [sample(value, now)]
        self.state, events = evaluate(self.ruleset, samples, self.state, now)
        notifications = group_notifications(self.ruleset, events)
        self.store.commit_tick(self.state, notifications, now=now)
        return [(e.event, e.severity.label) for e in events]

    def restart(self) -> None:
        self.store.close()
        self.__init__(self.path, self.ruleset)  # type: ignore[misc]


def test_for_progress_survives_a_restart(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "s.db", RuleSet(rules=(make_rule(above={W: 10}, for_s=60),)))
    assert daemon.tick(0, 15) == [("pending", "warning")]
    daemon.restart()
    # Without the stored active_since, pending would start again here and fire at 90.
    assert daemon.tick(30, 15) == []
    assert daemon.tick(60, 15) == [("firing", "warning")]


def test_keep_firing_for_survives_a_restart(tmp_path: Path) -> None:
    rule = make_rule(above={W: 10}, keep_s=60)
    daemon = Daemon(tmp_path / "s.db", RuleSet(rules=(rule,)))
    assert daemon.tick(0, 15) == [("firing", "warning")]
    assert daemon.tick(15, 5) == []  # the dip starts the keep_firing_for clock
    daemon.restart()
    assert daemon.tick(60, 5) == []
    assert daemon.tick(75, 5) == [("resolved", "warning")]


def test_no_renotification_before_repeat_interval_after_a_restart(tmp_path: Path) -> None:
    ruleset = RuleSet(rules=(make_rule(above={W: 10}),), repeat_interval=3600)
    daemon = Daemon(tmp_path / "s.db", ruleset)
    assert daemon.tick(0, 15) == [("firing", "warning")]
    daemon.restart()
    assert daemon.tick(15, 15) == []
    assert daemon.tick(3585, 15) == []
    assert daemon.tick(3600, 15) == [("repeated", "warning")]
    assert scalar(daemon.path, "SELECT count(*) FROM outbox") == 2
    daemon.store.close()


# -- one transaction per tick -------------------------------------------------------------------


def counts(path: Path) -> tuple[int, int]:
    return (
        scalar(path, "SELECT count(*) FROM alert_instances"),
        scalar(path, "SELECT count(*) FROM outbox"),
    )


def test_a_failed_outbox_insert_rolls_back_the_state_change(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = StateStore(path)
    with raw(path) as conn:
        conn.execute(
            "CREATE TRIGGER sabotage BEFORE INSERT ON outbox"
            " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
    state = EvalState(instances=STATES)
    with pytest.raises(StateStoreError, match="saving the tick failed: disk on fire"):
        store.commit_tick(state, [note("ops")], now=T0)
    assert counts(path) == (0, 0)

    with raw(path) as conn:
        conn.execute("DROP TRIGGER sabotage")
    # The failed commit did not count as committed: the whole difference is written now.
    stats = store.commit_tick(state, [note("ops")], now=T0)
    assert (stats.written, stats.enqueued) == (len(STATES), 1)
    assert counts(path) == (len(STATES), 1)
    store.close()


def test_an_unencodable_notification_rolls_back_the_state_change(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    broken: AlertEvent = fired()
    object.__setattr__(broken, "value", "lots")  # what a buggy caller might pass
    with StateStore(path) as store:
        with pytest.raises(StateStoreError, match=r"notification for 'ops'.*value"):
            store.commit_tick(
                EvalState(instances=STATES), [note("ops", fired()), note("ops", broken)], now=T0
            )
        assert counts(path) == (0, 0)


# -- writing only what changed ---------------------------------------------------------------


def install_write_counter(path: Path) -> None:
    with raw(path) as conn:
        conn.executescript("""
            CREATE TABLE row_writes (n INTEGER);
            INSERT INTO row_writes VALUES (0);
            CREATE TRIGGER count_insert AFTER INSERT ON alert_instances
                BEGIN UPDATE row_writes SET n = n + 1; END;
            CREATE TRIGGER count_update AFTER UPDATE ON alert_instances
                BEGIN UPDATE row_writes SET n = n + 1; END;
            CREATE TRIGGER count_delete AFTER DELETE ON alert_instances
                BEGIN UPDATE row_writes SET n = n + 1; END;
        """)


def row_writes(path: Path) -> int:
    return int(scalar(path, "SELECT n FROM row_writes"))


def test_ten_thousand_instances_write_only_changed_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = StateStore(path)
    install_write_counter(path)
    instances = {
        ("rss-high", Labels(target=f"t{i}")): InstanceState(
            active_since=(T0, None), firing=W, firing_since=T0, last_notified=T0
        )
        for i in range(10_000)
    }
    first = store.commit_tick(EvalState(instances=instances), [], now=T0)
    assert (first.written, first.deleted) == (10_000, 0)
    assert row_writes(path) == 10_000

    keys = list(instances)
    for key in keys[:100]:  # 1% changes: escalated
        instances[key] = InstanceState(
            active_since=(T0, T0 + 15), firing=C, firing_since=T0, last_notified=T0 + 15
        )
    for key in keys[100:110]:  # resolved
        del instances[key]
    instances[("rss-high", Labels(target="new"))] = InstanceState(active_since=(T0 + 15, None))
    second = store.commit_tick(EvalState(instances=instances), [], now=T0 + 15)
    assert (second.written, second.deleted) == (101, 10)
    assert row_writes(path) == 10_000 + 111

    # Equal but not identical objects (a reloaded state) are not rewritten either.
    third = store.commit_tick(EvalState(instances=dict(instances)), [], now=T0 + 30)
    assert (third.written, third.deleted) == (0, 0)
    assert row_writes(path) == 10_000 + 111
    store.close()

    with StateStore(path) as reopened:
        assert reopened.load_state().instances == instances


def test_a_commit_before_any_load_still_deletes_dropped_instances(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with StateStore(path) as store:
        store.commit_tick(EvalState(instances=STATES), [], now=T0)
    with StateStore(path) as fresh:  # no load_state(): the diff base comes from the file
        stats = fresh.commit_tick(EvalState(), [], now=T0 + 1)
    assert stats.deleted == len(STATES)
    assert counts(path) == (0, 0)
