"""The state file itself: where it lives, how it is opened safely, and its migrations.

The file holds alert state, silences and undelivered notifications, so opening
it must never make things worse: a file that is not memalert's, is damaged, or
was written by a newer memalert is refused with a message naming the file and
left exactly as it was. Nothing is ever recreated over existing data.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from memalert.engine.core.errors import MemalertError

log = logging.getLogger("memalert.store")

# "MmAl" in the SQLite header, so `file` and a later open can tell our
# databases from any other SQLite file a mistyped --state might point at.
APPLICATION_ID = int.from_bytes(b"MmAl", "big")

# Seconds a write waits for another process (`memalert silence add` while the
# daemon runs) before giving up with "database is locked".
BUSY_TIMEOUT = 5.0

_OWNER_ONLY = 0o600


class StateStoreError(MemalertError, RuntimeError):
    """The state file cannot be used; the message names the file and what to do."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Migration:
    """One schema step; `statements` run in order inside the migration's transaction."""

    version: int
    description: str
    statements: tuple[str, ...]


_INITIAL_SCHEMA = (
    # One row per alert instance the evaluator remembers (pending or firing).
    """CREATE TABLE alert_instances (
        rule TEXT NOT NULL,
        labels TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        warning_since REAL,
        critical_since REAL,
        firing TEXT CHECK (firing IN ('warning', 'critical')),
        firing_since REAL,
        warning_hold_since REAL,
        critical_hold_since REAL,
        last_notified REAL,
        last_value REAL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (rule, labels)
    ) WITHOUT ROWID""",
    """CREATE TABLE silences (
        id TEXT PRIMARY KEY,
        matchers TEXT NOT NULL,
        starts REAL NOT NULL,
        ends REAL NOT NULL,
        comment TEXT NOT NULL DEFAULT '',
        author TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        expired_at REAL
    )""",
    # AUTOINCREMENT: ids never go back, even after pruning, so id order is
    # creation order, which per-notifier delivery order relies on.
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        notifier TEXT NOT NULL,
        created_at REAL NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'delivered', 'dead')),
        delivered_at REAL,
        dead_at REAL
    )""",
    "CREATE INDEX outbox_pending ON outbox (notifier, id) WHERE status = 'pending'",
    "CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE status = 'delivered'",
    "CREATE INDEX outbox_dead ON outbox (dead_at) WHERE status = 'dead'",
    # One row per finished outbox entry: delivered (with each URL's result) or dead.
    """CREATE TABLE notification_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        outbox_id INTEGER NOT NULL,
        notifier TEXT NOT NULL,
        at REAL NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'dead')),
        attempts INTEGER NOT NULL,
        alerts TEXT NOT NULL,
        urls TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX notification_log_at ON notification_log (at)",
)

# Which URLs of its notifier each outbox item has reached, so a retry skips them
# (memalert.engine.store.progress). Rows from v1 get no progress: their next try goes
# to every URL, as v1 would have sent it.
_URL_PROGRESS = (
    # The fingerprint of the notifier's URL list the results refer to; '' = none known.
    "ALTER TABLE outbox ADD COLUMN url_fingerprint TEXT NOT NULL DEFAULT ''",
    # Each URL's latest outcome, by index: [{"url": masked, "ok": bool, "detail": str}].
    "ALTER TABLE outbox ADD COLUMN url_results TEXT NOT NULL DEFAULT '[]'",
)

# The metric of the rule each instance belongs to, so `memalert status` can show
# its value in the metric's unit (95.4 MiB, 83.0%) without the rule files.
# Rows from v2 get '': their value is shown as a plain number until rewritten.
_INSTANCE_METRIC = ("ALTER TABLE alert_instances ADD COLUMN metric TEXT NOT NULL DEFAULT ''",)

# What `memalert relay` accepted from Alertmanager, by its de-duplication key
# (memalert.engine.relay.dedup), so a webhook Alertmanager sends again (a retry, an HA
# peer) is not delivered twice, across restarts too.
_RECEIVED_WEBHOOKS = (
    """CREATE TABLE received_webhooks (
        key TEXT PRIMARY KEY,
        notifier TEXT NOT NULL,
        received_at REAL NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX received_webhooks_at ON received_webhooks (received_at)",
)

# The routes' notification groups (memalert.engine.store.groups): their timers and
# what they last sent survive a restart. A file from v4 has none: groups start anew.
# Beside them, the alerts inhibit rules mute after the last tick, for `memalert status`.
_NOTIFICATION_GROUPS = (
    """CREATE TABLE notification_groups (
        route TEXT NOT NULL,
        labels TEXT NOT NULL,
        due REAL NOT NULL,
        notified_at REAL,
        payload TEXT NOT NULL,
        PRIMARY KEY (route, labels)
    ) WITHOUT ROWID""",
    """CREATE TABLE inhibited_alerts (
        rule TEXT NOT NULL,
        labels TEXT NOT NULL,
        PRIMARY KEY (rule, labels)
    ) WITHOUT ROWID""",
)

# Append only: a released migration is never edited, a change is a new step.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(version=1, description="initial schema", statements=_INITIAL_SCHEMA),
    Migration(
        version=2, description="per-URL delivery progress in the outbox", statements=_URL_PROGRESS
    ),
    Migration(
        version=3,
        description="the rule's metric with each alert instance",
        statements=_INSTANCE_METRIC,
    ),
    Migration(
        version=4,
        description="webhooks the relay accepted, for de-duplication",
        statements=_RECEIVED_WEBHOOKS,
    ),
    Migration(
        version=5,
        description="the routes' notification groups and the inhibited alerts",
        statements=_NOTIFICATION_GROUPS,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def default_state_path(env: Mapping[str, str]) -> Path:
    """`$XDG_STATE_HOME/memalert/state.db`, else `~/.local/state/memalert/state.db`.

    The XDG spec says a relative `XDG_STATE_HOME` is invalid and must be ignored.
    """
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        base = Path(xdg)
    else:
        home = env.get("HOME") or str(Path.home())
        base = Path(home) / ".local" / "state"
    return base / "memalert" / "state.db"


def open_state_db(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open (creating with mode 0600 if allowed) and migrate the state file at `path`."""
    if path.exists() and not path.is_file():
        raise StateStoreError(f"state file {path}: exists but is not a regular file")
    if not path.exists():
        if not create:
            raise StateStoreError(f"state file {path}: does not exist")
        _create_private(path)
    _tighten_permissions(path)
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StateStoreError(f"state file {path}: cannot open: {exc}") from exc
    try:
        _check_identity(conn, path)
        # FULL: a commit that returned is on disk, so a notification the
        # evaluator handed over survives a power cut, not only a crash.
        # It costs one fsync per tick and per delivery: nothing at 15 s ticks.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("state file %s: WAL unavailable, using journal mode %s", path, mode)
        conn.execute("PRAGMA synchronous = FULL")
        migrate(conn, path=path)
    except sqlite3.Error as exc:
        conn.close()
        raise StateStoreError(f"state file {path}: cannot be used: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    path: Path | str = "<state>",
) -> int:
    """Bring the schema to the newest version, all steps in one transaction; return it.

    A file newer than the newest step known is refused: an older memalert
    cannot know what the newer columns mean, and downgrading would drop them.
    """
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, ... in order, got {versions}")
    known = versions[-1] if versions else 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read inside the lock: another process may have migrated meanwhile.
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if current > known:
            raise _newer_schema(path, current, known)
        for step in migrations[current:]:
            log.info("state file %s: migrating to v%d (%s)", path, step.version, step.description)
            for statement in step.statements:
                conn.execute(statement)
        if current < known:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {known}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return known


def _create_private(path: Path) -> None:
    try:
        # XDG: the state directory is the user's alone.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            # Created 0600 before SQLite sees it; SQLite gives -wal and -shm the
            # database file's mode, so those are private too.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _OWNER_ONLY)
        except FileExistsError:
            return  # another process won the race; its file is checked like any other
    except OSError as exc:
        raise StateStoreError(f"state file {path}: cannot create: {exc.strerror}") from exc
    os.close(fd)


def _tighten_permissions(path: Path) -> None:
    """An existing state file readable by others (an old copy, a restore) is made private."""
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                candidate.chmod(_OWNER_ONLY)
            except OSError as exc:
                log.warning(
                    "state file %s has mode %o and cannot be made 0600: %s",
                    candidate,
                    mode,
                    exc.strerror,
                )
            else:
                log.warning("state file %s had mode %o; changed to 0600", candidate, mode)


def _check_identity(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse anything but an empty file or a sound memalert database (read-only checks)."""
    try:
        application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as exc:
        raise StateStoreError(
            f"state file {path}: not a usable memalert state file ({exc}); it was left "
            "untouched: restore a backup, move it aside or pass another --state file"
        ) from exc
    if application_id != APPLICATION_ID and (application_id != 0 or tables):
        raise StateStoreError(
            f"state file {path}: an SQLite database of another application; "
            "it was left untouched: pass another --state file"
        )
    if version > SCHEMA_VERSION:
        # Refused before anything (WAL mode, migrations) writes to the file.
        raise _newer_schema(path, version, SCHEMA_VERSION)
    if problems != ["ok"]:
        raise StateStoreError(
            f"state file {path}: damaged ({'; '.join(problems)}); it was left untouched: "
            "restore a backup or move it aside (see docs/operations.md)"
        )


def _newer_schema(path: Path | str, version: int, known: int) -> StateStoreError:
    return StateStoreError(
        f"state file {path}: schema version {version} is newer than this memalert knows "
        f"({known}); it was left untouched: upgrade memalert or pass another --state file"
    )


# SQLite's primary result codes that say what is wrong with the file, not the call
# (https://www.sqlite.org/rescode.html): named plainly for the log and /health.
_SQLITE_CAUSES = {
    5: "locked by another process",  # SQLITE_BUSY
    8: "read-only",  # SQLITE_READONLY
    10: "I/O error",  # SQLITE_IOERR
    11: "damaged",  # SQLITE_CORRUPT
    13: "disk full",  # SQLITE_FULL
}


def sqlite_failure(exc: BaseException) -> str:
    """What went wrong with the file, in words, and SQLite's own message."""
    code = getattr(exc, "sqlite_errorcode", None)
    cause = None if code is None else _SQLITE_CAUSES.get(code & 0xFF)
    return f"{cause} ({exc})" if cause else str(exc)
