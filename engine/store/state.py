"""The SQLite state store: alert instances, silences, the outbox and the notification log.

One tick's state change and the notifications it caused are written in ONE
transaction (`commit_tick`), so after any crash either both are on disk or
neither is: a notification is never lost, and never enqueued for a state
change that did not happen. The delivery worker (`memalert.engine.delivery.worker`) drains
the outbox through `claim_due` and the `mark_*` methods.

Threading: one connection guarded by one lock. The scheduler thread commits
ticks and the delivery threads (one per notifier with pending items) claim and
mark; each call holds the lock only for its own statements (never while a
notifier sends), so none waits long.
Other processes (`memalert silence add`, `memalert status`) open their own
store on the same file; WAL lets them read while the daemon writes, and writes
wait up to `BUSY_TIMEOUT` for each other. One daemon per state file, enforced by
`exclusive=True` (memalert.engine.store.lock): the daemon keeps the last committed
instances in memory to write only changed rows, and owns the outbox.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from memalert.engine.alerting.evaluate import EvalState, InstanceKey, InstanceState
from memalert.engine.alerting.grouping import Groups
from memalert.engine.core.model import Silence
from memalert.engine.store import groups as store_groups
from memalert.engine.store import instances as store_instances
from memalert.engine.store import outbox, silences
from memalert.engine.store.codec import PayloadError
from memalert.engine.store.lock import StateFileBusyError, StateFileLock
from memalert.engine.store.records import (
    CommitStats,
    DeadLetter,
    OutboxCounts,
    OutboxItem,
    SilenceRecord,
    StoredAlert,
    StoreStatus,
)
from memalert.engine.store.schema import (
    StateStoreError,
    default_state_path,
    open_state_db,
    sqlite_failure,
)
from memalert.engine.store.silences import InvalidSilenceError

if TYPE_CHECKING:
    from memalert.engine.alerting.routing import Notification
    from memalert.engine.store.progress import UrlProgress
    from memalert.notifiers.base import DeliveryResult

__all__ = [
    "CommitStats",
    "DeadLetter",
    "InvalidSilenceError",
    "OutboxCounts",
    "OutboxItem",
    "SilenceRecord",
    "StateFileBusyError",
    "StateStore",
    "StateStoreError",
    "StoreStatus",
    "StoredAlert",
]


class StateStore:
    """The daemon's memory across restarts, in one SQLite file (see the module doc)."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        env: Mapping[str, str] = os.environ,
        create: bool = True,
        exclusive: bool = False,
    ) -> None:
        """`exclusive`: for the one process that evaluates and delivers (store.lock);
        raises StateFileBusyError while another one holds the file."""
        self.path = Path(path) if path is not None else default_state_path(env)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = open_state_db(self.path, create=create)
        self._owner: StateFileLock | None = None
        if exclusive:
            try:
                self._owner = StateFileLock(self.path)
            except BaseException:
                self.close()
                raise
        # The instances and groups as last committed: commit_tick writes only the difference.
        self._committed: dict[InstanceKey, InstanceState] | None = None
        self._committed_groups: Groups | None = None
        self._committed_inhibited: frozenset[InstanceKey] | None = None
        self._listeners: list[Callable[[], None]] = []

    # -- lifecycle --------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            # After the connection: the next daemon starts on a closed file.
            if self._owner is not None:
                self._owner.release()
                self._owner = None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` after every commit that enqueued notifications; returns unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    # -- alert instances --------------------------------------------------------

    def load_state(self) -> EvalState:
        """The instances and groups last committed; `series` is left empty (the lookback
        refills it)."""
        with self._lock:
            alerts = self._read_alerts()
            self._committed = {(a.rule, a.labels): a.state for a in alerts}
            self._committed_groups = self._read_groups()
            return EvalState(instances=dict(self._committed), groups=self._committed_groups)

    def commit_tick(
        self,
        state: EvalState,
        notifications: Sequence[Notification],
        *,
        now: float,
        rule_metrics: Mapping[str, str] | None = None,
        inhibited: frozenset[InstanceKey] = frozenset(),
    ) -> CommitStats:
        """Write the instances and groups that changed and enqueue `notifications`, atomically.

        `rule_metrics` (rule name -> metric) lets written rows carry the
        instance's current value from `state.series`; `inhibited` is the set of
        alerts inhibit rules mute now, for `status`. On failure nothing is
        written and the next commit writes the whole difference again.
        """
        with self._lock:
            instances = state.instances
            changed, removed = store_instances.changes(self._committed_instances(), instances)
            stats = CommitStats(
                written=len(changed), deleted=len(removed), enqueued=len(notifications)
            )
            if self._committed_groups is None:
                self._committed_groups = self._read_groups()
            groups_changed, groups_removed = store_groups.changes(
                self._committed_groups, state.groups
            )
            if self._committed_inhibited is None:
                with self._read("reading inhibited alerts") as conn:
                    self._committed_inhibited = store_instances.read_inhibited(conn, self.path)
            inhibition_changed = inhibited != self._committed_inhibited
            if not (
                changed
                or removed
                or notifications
                or groups_changed
                or groups_removed
                or inhibition_changed
            ):
                # The common quiet tick: no transaction. Keep the caller's objects
                # so the next diff is decided by identity, the cheap test.
                self._committed = dict(instances)
                return stats
            metrics = rule_metrics or {}
            with self._write("saving the tick") as conn:
                if changed:
                    store_instances.upsert(conn, changed, state, metrics, now)
                if removed:
                    store_instances.delete(conn, removed)
                outbox.enqueue(conn, notifications, now)
                store_groups.write(conn, state.groups, groups_changed, groups_removed)
                if inhibition_changed:
                    store_instances.write_inhibited(conn, inhibited)
            self._committed = dict(instances)
            self._committed_groups = state.groups
            self._committed_inhibited = inhibited
            listeners = list(self._listeners) if notifications else []
        for listener in listeners:
            listener()
        return stats

    def enqueue_once(
        self, key: str, notification: Notification, *, now: float, window: float
    ) -> bool:
        """Enqueue `notification` unless one with the same `key` was less than `window`
        seconds ago (`memalert relay`'s de-duplication); True if it was enqueued."""
        with self._lock:
            with self._write("saving a received webhook") as conn:
                enqueued = outbox.enqueue_once(conn, key, notification, now, window)
            listeners = list(self._listeners) if enqueued else []
        for listener in listeners:
            listener()
        return enqueued

    # -- silences ---------------------------------------------------------------

    def add_silence(
        self,
        *,
        matchers: Mapping[str, str],
        starts: float,
        ends: float,
        now: float,
        comment: str = "",
        author: str = "",
    ) -> str:
        """Store a silence of alerts whose labels match every glob in `matchers`; returns its id."""
        silences.check(matchers, starts, ends, now)
        with self._write("adding a silence") as conn:
            return silences.insert(
                conn,
                matchers=matchers,
                starts=starts,
                ends=ends,
                now=now,
                comment=comment,
                author=author,
            )

    def list_silences(self, now: float, *, include_expired: bool = False) -> list[SilenceRecord]:
        """Active and future silences (and ended ones if asked), by start time."""
        with self._read("listing silences") as conn:
            return silences.in_force(conn, now, include_expired=include_expired)

    def active_silences(self, now: float) -> list[Silence]:
        with self._read("reading silences") as conn:
            return silences.active(conn, now)

    def expire_silence(self, silence_id: str, now: float) -> bool:
        """End a silence now; False when no silence with this id is still in force."""
        with self._write("expiring a silence") as conn:
            return silences.expire(conn, silence_id, now)

    # -- outbox -----------------------------------------------------------------

    def claim_due(
        self, now: float, limit: int = 100, *, notifier: str | None = None
    ) -> list[OutboxItem]:
        """Pending items due at `now` (of `notifier` only, if given), oldest first, none
        behind a notifier's waiting retry.

        Claiming writes nothing: an item stays pending until marked, so a
        crash after sending repeats it rather than losing it (at-least-once).
        Callers in one process serialise their claims per notifier (the
        delivery worker's lanes do).
        """
        with self._read("reading the outbox") as conn:
            return outbox.claim_due(conn, now, limit, notifier)

    def head_attempts(self) -> dict[str, float]:
        """Each notifier with pending items -> when its head (oldest pending) item is due."""
        with self._read("reading the outbox") as conn:
            return outbox.head_attempts(conn)

    def next_attempt_at(self, notifier: str | None = None) -> float | None:
        """When the earliest head item (of `notifier`, if given) is due; None: none pending."""
        heads = self.head_attempts()
        if notifier is not None:
            return heads.get(notifier)
        return min(heads.values(), default=None)

    def mark_delivered(self, item_id: int, result: DeliveryResult, now: float) -> bool:
        """Record a confirmed send; False if the item was not pending (already handled)."""
        with self._write("recording a delivery") as conn:
            return outbox.mark_delivered(conn, item_id, result, now)

    def mark_retry(
        self,
        item_id: int,
        error: str,
        next_attempt_at: float,
        *,
        progress: UrlProgress | None = None,
    ) -> bool:
        """Schedule the next try; `progress` says which URLs have the item (None: not known,
        the next try goes to every URL)."""
        with self._write("scheduling a retry") as conn:
            return outbox.mark_retry(conn, item_id, error, next_attempt_at, progress=progress)

    def mark_dead(
        self,
        item_id: int,
        reason: str,
        now: float,
        *,
        result: DeliveryResult | None = None,
        progress: UrlProgress | None = None,
    ) -> bool:
        """Give up on an item; `result` is the failed attempt's, None when none was made;
        `progress` which URLs it reached (None: as last recorded)."""
        with self._write("recording a dead letter") as conn:
            return outbox.mark_dead(conn, item_id, reason, now, result=result, progress=progress)

    def url_progress(self, item_id: int) -> UrlProgress | None:
        """Which URLs of its notifier a partly delivered item has reached; None: not known."""
        with self._read("reading the outbox") as conn:
            return outbox.url_progress(conn, item_id)

    def prune(self, before: float) -> int:
        """Delete delivered and dead items and log rows finished before `before`."""
        with self._write("pruning the outbox") as conn:
            return outbox.prune(conn, before)

    # -- status -----------------------------------------------------------------

    def outbox_counts(self) -> OutboxCounts:
        """Backlog, oldest pending item and dead letters: for every tick's /health figures."""
        with self._read("reading the outbox") as conn:
            return outbox.counts(conn)

    def status(self, now: float, *, dead_letters: int = 20) -> StoreStatus:
        """Alerts, silences in force, the outbox backlog and the newest dead letters.

        Decodes every alert instance (about 100 ms for 10,000): for `memalert
        status`, not for every tick (`outbox_counts` is the cheap part).
        """
        with self._read("reading the status") as conn:
            counts = outbox.counts(conn)
            inhibited = store_instances.read_inhibited(conn, self.path)
            return StoreStatus(
                alerts=tuple(
                    replace(a, inhibited=(a.rule, a.labels) in inhibited)
                    for a in self._read_alerts()
                ),
                silences=tuple(self.list_silences(now)),
                backlog=counts.backlog,
                oldest_pending_at=counts.oldest_pending_at,
                dead_letters=outbox.dead_letters(conn, dead_letters),
                dead_total=counts.dead_total,
            )

    # -- internals --------------------------------------------------------------

    def _committed_instances(self) -> dict[InstanceKey, InstanceState]:
        if self._committed is None:
            # A commit before any load must still delete rows the state dropped.
            self._committed = {(a.rule, a.labels): a.state for a in self._read_alerts()}
        return self._committed

    def _read_groups(self) -> Groups:
        with self._read("reading notification groups") as conn:
            return store_groups.read_all(conn, self.path)

    def _read_alerts(self) -> list[StoredAlert]:
        with self._read("reading alert instances") as conn:
            return store_instances.read_all(conn, self.path)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateStoreError(f"state file {self.path}: the store is closed")
        return self._conn

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front, so a
        concurrent writer makes us wait (busy timeout) instead of failing half-way."""
        with self._lock, self._transaction("BEGIN IMMEDIATE", what) as conn:
            yield conn

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for multi-statement reads (re-entrant inside a write)."""
        with self._lock:
            conn = self._connection()
            if conn.in_transaction:
                yield conn
                return
            with self._transaction("BEGIN", what) as conn:
                yield conn

    @contextmanager
    def _transaction(self, begin: str, what: str) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            conn.execute(begin)
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                # A full disk can fail the rollback too; the error to report is the first.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error | PayloadError):
                raise StateStoreError(
                    f"state file {self.path}: {what} failed: {sqlite_failure(exc)}"
                ) from exc
            raise
