"""Silences in the state file, as statements on an open connection.

`memalert silence add|list|expire` and the daemon share these through
`memalert.engine.store.state.StateStore`, which runs each in its own transaction.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping
from typing import Any

from memalert.engine.core.errors import MemalertError
from memalert.engine.core.limits import TIME
from memalert.engine.core.model import Matcher, Silence
from memalert.engine.store.codec import PayloadError, decode_labels, encode_labels
from memalert.engine.store.records import SilenceRecord

_SELECT = "SELECT id, matchers, starts, ends, comment, author, created_at, expired_at FROM silences"


class InvalidSilenceError(MemalertError, ValueError):
    """A silence that cannot be added (no matchers, ends before it starts, ...)."""


def check(matchers: Mapping[str, str], starts: float, ends: float, now: float) -> None:
    if not matchers:
        raise InvalidSilenceError("a silence needs at least one matcher (label=pattern)")
    if not ends > starts:  # NaN too
        raise InvalidSilenceError(f"a silence must end after it starts ({ends} <= {starts})")
    if ends <= now:
        raise InvalidSilenceError("a silence must end in the future")
    for what, moment in (("start", starts), ("end", ends)):
        problem = TIME.problem(moment)
        if problem is not None:  # also NaN; rfc3339 shows only these
            raise InvalidSilenceError(f"a silence's {what} {problem}")


def insert(
    conn: sqlite3.Connection,
    *,
    matchers: Mapping[str, str],
    starts: float,
    ends: float,
    now: float,
    comment: str,
    author: str,
) -> str:
    silence_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO silences (id, matchers, starts, ends, comment, author, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (silence_id, encode_labels(matchers), starts, ends, comment, author, now),
    )
    return silence_id


def in_force(conn: sqlite3.Connection, now: float, *, include_expired: bool) -> list[SilenceRecord]:
    rows = conn.execute(
        _SELECT + " WHERE :all OR (expired_at IS NULL AND ends > :now) ORDER BY starts, id",
        {"now": now, "all": include_expired},
    ).fetchall()
    return [_record(row) for row in rows]


def active(conn: sqlite3.Connection, now: float) -> list[Silence]:
    rows = conn.execute(
        _SELECT + " WHERE expired_at IS NULL AND starts <= ? AND ends > ?", (now, now)
    ).fetchall()
    return [_record(row).silence for row in rows]


def expire(conn: sqlite3.Connection, silence_id: str, now: float) -> bool:
    cursor = conn.execute(
        "UPDATE silences SET expired_at = :now, ends = min(ends, :now)"
        " WHERE id = :id AND expired_at IS NULL AND ends > :now",
        {"id": silence_id, "now": now},
    )
    return cursor.rowcount == 1


def _record(row: tuple[Any, ...]) -> SilenceRecord:
    silence_id, matchers_json, starts, ends, comment, author, created_at, expired_at = row
    try:
        matchers = decode_labels(matchers_json)
    except PayloadError as exc:
        raise PayloadError(f"silence {silence_id}: {exc}") from None
    return SilenceRecord(
        silence=Silence(
            matchers=tuple(Matcher.compile(k, v) for k, v in matchers.items()),
            starts=starts,
            ends=ends,
            comment=comment,
            author=author,
            id=silence_id,
        ),
        created_at=created_at,
        expired_at=expired_at,
    )
