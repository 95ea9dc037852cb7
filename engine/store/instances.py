"""Alert instances in the state file, as statements on an open connection.

`memalert.engine.store.state.StateStore` decides which instances changed since its last
commit and runs these inside the tick's transaction; the row layout and its
decoding read in one place here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from memalert.engine.alerting.evaluate import EvalState, InstanceKey, InstanceState
from memalert.engine.core.model import Severity
from memalert.engine.core.model import fingerprint as instance_fingerprint
from memalert.engine.store.codec import PayloadError, decode_labels, encode_labels
from memalert.engine.store.records import StoredAlert
from memalert.engine.store.schema import StateStoreError

# Pairs of InstanceState (active_since, hold_since) are stored per level:
# warning_*, critical_*. test_store checks every InstanceState field survives.
_SELECT = (
    "SELECT rule, labels, fingerprint, warning_since, critical_since, firing, firing_since,"
    " warning_hold_since, critical_hold_since, last_notified, last_value, updated_at, metric"
    " FROM alert_instances ORDER BY rule, labels"
)
_UPSERT = (
    "INSERT INTO alert_instances (rule, labels, fingerprint, warning_since, critical_since,"
    " firing, firing_since, warning_hold_since, critical_hold_since, last_notified,"
    " last_value, updated_at, metric) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (rule, labels) DO UPDATE SET warning_since = excluded.warning_since,"
    " critical_since = excluded.critical_since, firing = excluded.firing,"
    " firing_since = excluded.firing_since, warning_hold_since = excluded.warning_hold_since,"
    " critical_hold_since = excluded.critical_hold_since,"
    " last_notified = excluded.last_notified, last_value = excluded.last_value,"
    " updated_at = excluded.updated_at, metric = excluded.metric"
)


def read_all(conn: sqlite3.Connection, path: Path) -> list[StoredAlert]:
    """Every stored instance; a row that cannot be decoded is an error naming `path`."""
    return [_stored_alert(row, path) for row in conn.execute(_SELECT).fetchall()]


def changes(
    committed: Mapping[InstanceKey, InstanceState], instances: Mapping[InstanceKey, InstanceState]
) -> tuple[list[tuple[InstanceKey, InstanceState]], list[InstanceKey]]:
    """The instances changed or new since `committed`, and the keys of those gone."""
    changed: list[tuple[InstanceKey, InstanceState]] = []
    kept = 0
    for key, inst in instances.items():
        old = committed.get(key)
        if old is not None:
            kept += 1
            # The evaluator hands back the same object for an unchanged instance.
            if old is inst or old == inst:
                continue
        changed.append((key, inst))
    # Every committed key still present: skip a second pass over 10,000 keys.
    removed = [] if kept == len(committed) else [k for k in committed if k not in instances]
    return changed, removed


def upsert(
    conn: sqlite3.Connection,
    changed: Iterable[tuple[InstanceKey, InstanceState]],
    state: EvalState,
    rule_metrics: Mapping[str, str],
    now: float,
) -> None:
    """Write `changed`; each row carries its rule metric's current value from `state.series`."""
    conn.executemany(_UPSERT, (_row(k, i, state, rule_metrics, now) for k, i in changed))


def delete(conn: sqlite3.Connection, removed: Iterable[InstanceKey]) -> None:
    conn.executemany(
        "DELETE FROM alert_instances WHERE rule = ? AND labels = ?",
        ((rule, encode_labels(labels)) for rule, labels in removed),
    )


def read_inhibited(conn: sqlite3.Connection, path: Path) -> frozenset[InstanceKey]:
    """The alerts inhibit rules muted after the last committed tick."""
    found: set[InstanceKey] = set()
    for rule, labels_json in conn.execute("SELECT rule, labels FROM inhibited_alerts"):
        try:
            found.add((rule, decode_labels(labels_json)))
        except PayloadError as exc:
            raise StateStoreError(
                f"state file {path}: inhibited alert {rule!r} {labels_json}: {exc}"
            ) from exc
    return frozenset(found)


def write_inhibited(conn: sqlite3.Connection, inhibited: Iterable[InstanceKey]) -> None:
    """Replace the inhibited set (small: only firing alerts a source mutes)."""
    conn.execute("DELETE FROM inhibited_alerts")
    conn.executemany(
        "INSERT INTO inhibited_alerts (rule, labels) VALUES (?, ?)",
        ((rule, encode_labels(labels)) for rule, labels in inhibited),
    )


def _stored_alert(row: tuple[Any, ...], path: Path) -> StoredAlert:
    rule, labels_json = row[0], row[1]
    try:
        labels = decode_labels(labels_json)
        firing = None if row[5] is None else Severity.parse(row[5])
    except (PayloadError, KeyError) as exc:
        raise StateStoreError(
            f"state file {path}: alert instance {rule!r} {labels_json}: {exc}"
        ) from exc
    return StoredAlert(
        rule=rule,
        labels=labels,
        fingerprint=row[2],
        state=InstanceState(
            active_since=(row[3], row[4]),
            firing=firing,
            firing_since=row[6],
            hold_since=(row[7], row[8]),
            last_notified=row[9],
        ),
        last_value=row[10],
        updated_at=row[11],
        metric=row[12],
    )


def _row(
    key: InstanceKey,
    inst: InstanceState,
    state: EvalState,
    rule_metrics: Mapping[str, str],
    now: float,
) -> tuple[Any, ...]:
    rule, labels = key
    metric = rule_metrics.get(rule)
    sample = None if metric is None else state.series.get((metric, labels))
    return (
        rule,
        encode_labels(labels),
        instance_fingerprint(rule, labels),
        inst.active_since[0],
        inst.active_since[1],
        None if inst.firing is None else inst.firing.label,
        inst.firing_since,
        inst.hold_since[0],
        inst.hold_since[1],
        inst.last_notified,
        None if sample is None else sample.value,
        now,
        metric or "",
    )
