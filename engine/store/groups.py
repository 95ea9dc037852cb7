"""The routes' notification groups in the state file (schema v5), as statements.

`StateStore.commit_tick` writes the groups that changed in the tick's
transaction, so a group's timer and notification log are on disk with the
alert state and the notifications its flush enqueued: after a restart the group
flushes when it was due, and does not send again what it already sent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from memalert.engine.alerting.grouping import Group, GroupKey, Groups
from memalert.engine.store.codec import (
    PayloadError,
    decode_group,
    decode_labels,
    encode_group,
    encode_labels,
)
from memalert.engine.store.schema import StateStoreError


def read_all(conn: sqlite3.Connection, path: Path) -> dict[GroupKey, Group]:
    """Every stored group; a row that cannot be decoded is an error naming `path`."""
    found: dict[GroupKey, Group] = {}
    rows = conn.execute(
        "SELECT route, labels, due, notified_at, payload FROM notification_groups"
        " ORDER BY route, labels"
    )
    for route, labels, due, notified_at, payload in rows.fetchall():
        try:
            key = (route, decode_labels(labels))
            found[key] = decode_group(payload, due=due, notified_at=notified_at)
        except PayloadError as exc:
            raise StateStoreError(
                f"state file {path}: notification group {route!r} {labels}: {exc}"
            ) from exc
    return found


def changes(committed: Groups, groups: Groups) -> tuple[list[GroupKey], list[GroupKey]]:
    """The keys of groups written since `committed` (changed or new) and of those gone.

    A group that did not change is the same object (alerting.grouping), so this is cheap.
    """
    changed = [key for key, group in groups.items() if committed.get(key) is not group]
    removed = [key for key in committed if key not in groups]
    return changed, removed


def write(
    conn: sqlite3.Connection,
    groups: Groups,
    changed: Iterable[GroupKey],
    removed: Iterable[GroupKey],
) -> None:
    conn.executemany(
        "INSERT INTO notification_groups (route, labels, due, notified_at, payload)"
        " VALUES (?,?,?,?,?) ON CONFLICT (route, labels) DO UPDATE SET due = excluded.due,"
        " notified_at = excluded.notified_at, payload = excluded.payload",
        (
            (
                key[0],
                encode_labels(key[1]),
                groups[key].due,
                groups[key].notified_at,
                encode_group(groups[key]),
            )
            for key in changed
        ),
    )
    conn.executemany(
        "DELETE FROM notification_groups WHERE route = ? AND labels = ?",
        ((route, encode_labels(labels)) for route, labels in removed),
    )
