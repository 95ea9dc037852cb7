"""Upgrading state files users already have: a real v1 SQLite file opened by this memalert.

The v1 file is made the way memalert v1 made it: its schema by the v1 step of
the migrations themselves, its rows by the statements v1 ran (those still in
use are called; those v2 changed are quoted below as v1 had them).
"""

from __future__ import annotations

import json
from random import Random
from typing import TYPE_CHECKING, Any

from builders import C, W
from store_kit import T0, ScriptedNotifier, fired, note, raw, scalar

from memalert.engine.alerting.evaluate import EvalState, InstanceState
from memalert.engine.core.model import Labels
from memalert.engine.delivery.worker import DeliveryWorker
from memalert.engine.store import instances as store_instances
from memalert.engine.store import outbox as store_outbox
from memalert.engine.store import silences as store_silences
from memalert.engine.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, migrate
from memalert.engine.store.state import StateStore
from memalert.notifiers.registry import CompositeNotifier
from memalert.notifiers.testing import RecordingNotifier

if TYPE_CHECKING:
    from pathlib import Path

    from memalert.notifiers.base import Notifier

V1 = MIGRATIONS[:1]

# engine/store/outbox.py in v1: how an item was retried and finished, and logged.
V1_MARK_RETRY = (
    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
    " WHERE id = ? AND status = 'pending'"
)
V1_MARK_DELIVERED = (
    "UPDATE outbox SET status = 'delivered', delivered_at = ?, last_error = '',"
    " attempts = attempts + 1 WHERE id = ? AND status = 'pending'"
)
V1_MARK_DEAD = (
    "UPDATE outbox SET status = 'dead', dead_at = ?, last_error = ?,"
    " attempts = attempts + ? WHERE id = ? AND status = 'pending'"
)
V1_LOG = (
    "INSERT INTO notification_log"
    " (outbox_id, notifier, at, outcome, attempts, alerts, urls, detail)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

INSTANCES = {
    ("rss-high", Labels(target="api")): InstanceState(
        active_since=(T0 - 120, T0 - 30), firing=C, firing_since=T0 - 60, last_notified=T0 - 60
    ),
    ("leak", Labels(target="wörker", component="cache")): InstanceState(
        active_since=(T0 - 10, None), firing=W, hold_since=(T0 - 5, None)
    ),
}


V1_INSERT_INSTANCE = (
    "INSERT INTO alert_instances (rule, labels, fingerprint, warning_since, critical_since,"
    " firing, firing_since, warning_hold_since, critical_hold_since, last_notified,"
    " last_value, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)


def make_v1_file(path: Path) -> None:
    """A v1 state file: alerts, a silence, and outbox items in each state v1 left them.

    Item 1 was delivered, item 2 is pending after v1 retried it (its chat URL had
    accepted it, its mail URL had not: v1 kept no record of that), item 3 is dead.
    """
    with raw(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")  # as every state file is opened
        assert migrate(conn, V1) == 1
        conn.execute("BEGIN")
        # v1's columns: the `metric` column came with v3.
        conn.executemany(
            V1_INSERT_INSTANCE,
            [store_instances._row(k, i, EvalState(), {}, T0)[:12] for k, i in INSTANCES.items()],
        )
        store_silences.insert(
            conn,
            matchers={"target": "batch*"},
            starts=T0,
            ends=T0 + 30 * 24 * 3600,
            now=T0,
            comment="migration",
            author="ada",
        )
        store_outbox.enqueue(
            conn,
            [note("ops", fired(target="a")), note("oncall", fired(target="b")), note("gone")],
            T0,
        )
        conn.execute(V1_MARK_DELIVERED, (T0 + 1, 1))
        conn.execute(
            V1_LOG,
            (1, "ops", T0 + 1, "delivered", 1, "[]", '[{"url": "test://ops", "ok": true}]', ""),
        )
        conn.execute(V1_MARK_RETRY, ("recording://mail: simulated failure", T0 + 2, 2))
        conn.execute(V1_MARK_DEAD, (T0 + 1, "no notifier named 'gone' is configured", 0, 3))
        conn.execute(V1_LOG, (3, "gone", T0 + 1, "dead", 0, "[]", "[]", "no notifier ..."))
        conn.execute("COMMIT")
    assert scalar(path, "PRAGMA user_version") == 1


def every_row(path: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Each table's column names and rows, in rowid (or key) order."""
    with raw(path) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        tables = {}
        for name in names:
            cursor = conn.execute(f'SELECT * FROM "{name}" ORDER BY 1')  # noqa: S608 - our own names
            columns = [d[0] for d in cursor.description]
            tables[name] = (columns, [tuple(r) for r in cursor.fetchall()])
        return tables


def test_a_v1_file_is_upgraded_keeping_every_row_and_value(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    make_v1_file(path)
    v1 = every_row(path)
    assert len(v1["outbox"][1]) == 3

    StateStore(path).close()

    assert scalar(path, "PRAGMA user_version") == SCHEMA_VERSION
    assert scalar(path, "PRAGMA application_id") == APPLICATION_ID
    assert scalar(path, "PRAGMA integrity_check") == "ok"
    upgraded = every_row(path)
    # v4 adds the relay's table and v5 the notification groups, empty: nothing
    # of v1 moves into them.
    assert set(upgraded) == {*v1, "received_webhooks", "notification_groups", "inhibited_alerts"}
    assert upgraded["received_webhooks"] == (["key", "notifier", "received_at"], [])
    for table, (columns, rows) in v1.items():
        new_columns, new_rows = upgraded[table]
        assert new_columns[: len(columns)] == columns, table
        assert [row[: len(columns)] for row in new_rows] == rows, table
    outbox_columns, outbox_rows = upgraded["outbox"]
    # Progress is unknown for every v1 item: the next try of a pending one goes to all URLs.
    assert outbox_columns[len(v1["outbox"][0]) :] == ["url_fingerprint", "url_results"]
    assert [row[-2:] for row in outbox_rows] == [("", "[]")] * 3


def test_an_upgraded_file_works_on_as_before_and_with_per_url_retries(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    make_v1_file(path)
    chat, mail = RecordingNotifier("chat"), ScriptedNotifier("mail", ["retry"])
    notifiers: dict[str, Notifier] = {
        "ops": RecordingNotifier("ops"),
        "oncall": CompositeNotifier("oncall", [chat, mail]),
    }
    with StateStore(path) as store:
        assert store.load_state().instances == INSTANCES
        (silence,) = store.list_silences(T0 + 10)
        assert silence.silence.comment == "migration"
        (dead,) = store.status(T0 + 10).dead_letters
        assert dead.reason == "no notifier named 'gone' is configured"

        worker = DeliveryWorker(store, notifiers, clock=lambda: T0 + 2, random=Random(1))
        assert worker.run_once(T0 + 2) == 0
        # v1 did not record that chat had it: this try goes to every URL, as v1's did.
        assert (len(chat.attempts), len(mail.attempts)) == (1, 1)
        due = store.next_attempt_at()
        assert due is not None
        assert worker.run_once(due) == 1
        # From here on, what was reached is recorded: the retry went to mail only.
        assert (len(chat.attempts), len(mail.attempts)) == (1, 2)
        assert store.next_attempt_at() is None

    with raw(path) as conn:
        (urls,) = conn.execute("SELECT urls FROM notification_log WHERE outbox_id = 2").fetchone()
    assert [(u["url"], u["ok"]) for u in json.loads(urls)] == [
        ("recording://chat", True),
        ("test://mail", True),
    ]
