"""The outbox and the notification log, as statements on an open connection.

`memalert.engine.store.state.StateStore` runs each of these inside its own transaction and
lock; they are kept apart so the queueing rules (head-of-line per notifier,
what a finished item leaves in the log, which URLs an item has reached) read
in one place.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memalert.engine.store.codec import (
    PayloadError,
    decode_notification,
    encode_alert_list,
    encode_notification,
    encode_url_results,
)
from memalert.engine.store.progress import UrlProgress
from memalert.engine.store.records import DeadLetter, OutboxCounts, OutboxItem
from memalert.notifiers.base import DeliveryResult, UrlResult

if TYPE_CHECKING:
    from memalert.engine.alerting.routing import Notification

# Head-of-line per notifier: a row is due only if no older pending row of the
# same notifier waits for a later retry, so "resolved" never overtakes "firing".
# :notifier NULL claims for every notifier, else for that one only.
_CLAIM_DUE = """
    WITH blocked AS (
        SELECT notifier, min(id) AS first_id FROM outbox
        WHERE status = 'pending' AND next_attempt_at > :now GROUP BY notifier
    )
    SELECT id, notifier, created_at, payload, attempts, next_attempt_at, last_error
    FROM outbox AS o LEFT JOIN blocked AS b USING (notifier)
    WHERE o.status = 'pending' AND o.next_attempt_at <= :now
      AND (:notifier IS NULL OR o.notifier = :notifier)
      AND (b.first_id IS NULL OR o.id < b.first_id)
    ORDER BY o.id LIMIT :limit
"""
# SQLite returns the bare column of the row holding min(id): each notifier's head.
_HEAD_ATTEMPTS = """
    SELECT notifier, min(id) AS head_id, next_attempt_at FROM outbox
    WHERE status = 'pending' GROUP BY notifier ORDER BY notifier
"""


def enqueue(conn: sqlite3.Connection, notifications: Sequence[Notification], now: float) -> None:
    for notification in notifications:
        # Encoded inside the caller's transaction: a payload that cannot be
        # written takes the tick's state change down with it.
        conn.execute(
            "INSERT INTO outbox (notifier, created_at, payload, next_attempt_at)"
            " VALUES (?, ?, ?, ?)",
            (notification.notifier, now, encode_notification(notification), now),
        )


def named_rows(
    conn: sqlite3.Connection, sql: str, parameters: Sequence[object] | dict[str, object] = ()
) -> list[sqlite3.Row]:
    """The rows of `sql`, read by column name: a column added or moved cannot shift a field."""
    cursor = conn.execute(sql, parameters)
    cursor.row_factory = sqlite3.Row
    return cursor.fetchall()


def enqueue_once(
    conn: sqlite3.Connection, key: str, notification: Notification, now: float, window: float
) -> bool:
    """Enqueue unless `key` was enqueued less than `window` seconds ago; True if enqueued."""
    row = conn.execute("SELECT received_at FROM received_webhooks WHERE key = ?", (key,)).fetchone()
    if row is not None and now - float(row[0]) < window:
        return False
    conn.execute(
        "INSERT OR REPLACE INTO received_webhooks (key, notifier, received_at) VALUES (?, ?, ?)",
        (key, notification.notifier, now),
    )
    enqueue(conn, [notification], now)
    return True


def claim_due(
    conn: sqlite3.Connection, now: float, limit: int, notifier: str | None = None
) -> list[OutboxItem]:
    rows = named_rows(conn, _CLAIM_DUE, {"now": now, "limit": limit, "notifier": notifier})
    return [
        OutboxItem(
            id=row["id"],
            notifier=row["notifier"],
            created_at=row["created_at"],
            payload=row["payload"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            last_error=row["last_error"],
        )
        for row in rows
    ]


def head_attempts(conn: sqlite3.Connection) -> dict[str, float]:
    """When each notifier's head (its oldest pending item) is due; what follows waits for it."""
    return {
        row["notifier"]: float(row["next_attempt_at"]) for row in named_rows(conn, _HEAD_ATTEMPTS)
    }


def mark_delivered(
    conn: sqlite3.Connection, item_id: int, result: DeliveryResult, now: float
) -> bool:
    cursor = conn.execute(
        "UPDATE outbox SET status = 'delivered', delivered_at = ?, last_error = '',"
        " attempts = attempts + 1 WHERE id = ? AND status = 'pending'",
        (now, item_id),
    )
    if cursor.rowcount:
        _log_outcome(conn, item_id, now=now, outcome="delivered", result=result, detail="")
    return cursor.rowcount == 1


def mark_retry(
    conn: sqlite3.Connection,
    item_id: int,
    error: str,
    next_attempt_at: float,
    *,
    progress: UrlProgress | None,
) -> bool:
    """Count the attempt and set the next; `progress` None forgets which URLs were reached."""
    fingerprint, results = _progress_columns(progress)
    cursor = conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
        " url_fingerprint = ?, url_results = ? WHERE id = ? AND status = 'pending'",
        (error, next_attempt_at, fingerprint, results, item_id),
    )
    return cursor.rowcount == 1


def mark_dead(
    conn: sqlite3.Connection,
    item_id: int,
    reason: str,
    now: float,
    *,
    result: DeliveryResult | None,
    progress: UrlProgress | None,
) -> bool:
    """Give up; `result` None: no attempt was made now. `progress` None keeps what is
    stored, so the dead letter (and a re-send by hand) still knows which URLs it reached."""
    attempted = 0 if result is None else 1
    fingerprint, results = (None, None) if progress is None else _progress_columns(progress)
    cursor = conn.execute(
        "UPDATE outbox SET status = 'dead', dead_at = ?, last_error = ?, attempts = attempts + ?,"
        " url_fingerprint = coalesce(?, url_fingerprint), url_results = coalesce(?, url_results)"
        " WHERE id = ? AND status = 'pending'",
        (now, reason, attempted, fingerprint, results, item_id),
    )
    if cursor.rowcount:
        _log_outcome(conn, item_id, now=now, outcome="dead", result=result, detail=reason)
    return cursor.rowcount == 1


def url_progress(conn: sqlite3.Connection, item_id: int) -> UrlProgress | None:
    """Which URLs the item has reached, as last recorded; None when not known.

    A value that cannot be read counts as not known: the next try goes to every
    URL, a duplicate at worst, where failing would hold up the notifier's queue.
    """
    found = named_rows(
        conn, "SELECT notifier, url_fingerprint, url_results FROM outbox WHERE id = ?", (item_id,)
    )
    if not found or not found[0]["url_fingerprint"]:
        return None
    row = found[0]
    notifier, fingerprint, stored = row["notifier"], row["url_fingerprint"], row["url_results"]
    try:
        urls = tuple(
            # An owed URL is tried again, so it counts as retryable until a try says otherwise.
            UrlResult(url=u["url"], ok=u["ok"], detail=u["detail"], retryable=not u["ok"], index=i)
            for i, u in enumerate(json.loads(stored))
        )
    except (ValueError, TypeError, KeyError):
        return None
    if not urls or not all(isinstance(u.ok, bool) and isinstance(u.url, str) for u in urls):
        return None
    return UrlProgress(fingerprint=fingerprint, outcome=DeliveryResult.from_urls(notifier, urls))


def _progress_columns(progress: UrlProgress | None) -> tuple[str, str]:
    if progress is None:
        return "", "[]"
    # The notification log's form of per-URL results, one per URL in index order.
    return progress.fingerprint, encode_url_results(progress.outcome)


def prune(conn: sqlite3.Connection, before: float) -> int:
    outbox = conn.execute(
        "DELETE FROM outbox WHERE (status = 'delivered' AND delivered_at < :t)"
        " OR (status = 'dead' AND dead_at < :t)",
        {"t": before},
    ).rowcount
    logged = conn.execute("DELETE FROM notification_log WHERE at < ?", (before,)).rowcount
    received = conn.execute(
        "DELETE FROM received_webhooks WHERE received_at < ?", (before,)
    ).rowcount
    return outbox + logged + received


def counts(conn: sqlite3.Connection) -> OutboxCounts:
    backlog, oldest = conn.execute(
        "SELECT count(*), min(created_at) FROM outbox WHERE status = 'pending'"
    ).fetchone()
    dead = conn.execute("SELECT count(*) FROM outbox WHERE status = 'dead'").fetchone()[0]
    return OutboxCounts(backlog=int(backlog), oldest_pending_at=oldest, dead_total=int(dead))


def dead_letters(conn: sqlite3.Connection, limit: int) -> tuple[DeadLetter, ...]:
    """The newest `limit` dead letters, newest first."""
    rows = named_rows(
        conn,
        "SELECT id, notifier, created_at, dead_at, attempts, last_error, payload FROM outbox"
        " WHERE status = 'dead' ORDER BY dead_at DESC, id DESC LIMIT ?",
        (limit,),
    )
    return tuple(
        DeadLetter(
            id=r["id"],
            notifier=r["notifier"],
            created_at=r["created_at"],
            dead_at=r["dead_at"],
            attempts=r["attempts"],
            reason=r["last_error"],
            payload=r["payload"],
        )
        for r in rows
    )


def _log_outcome(
    conn: sqlite3.Connection,
    item_id: int,
    *,
    now: float,
    outcome: str,
    result: DeliveryResult | None,
    detail: str,
) -> None:
    """Say what was sent where and how each URL answered; it outlives the outbox row.

    Without a `result` (an item given up on without a try), each URL's outcome
    as last recorded: which URLs an item partly delivered had reached.
    """
    (row,) = named_rows(
        conn, "SELECT notifier, attempts, payload, url_results FROM outbox WHERE id = ?", (item_id,)
    )
    notifier, attempts = row["notifier"], row["attempts"]
    try:
        alerts = encode_alert_list(decode_notification(row["payload"]))
    except PayloadError:
        alerts = "[]"  # unreadable: the dead letter keeps the raw payload
    urls = row["url_results"] if result is None else encode_url_results(result)
    conn.execute(
        "INSERT INTO notification_log"
        " (outbox_id, notifier, at, outcome, attempts, alerts, urls, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (item_id, notifier, now, outcome, attempts, alerts, urls, detail),
    )
