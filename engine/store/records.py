"""What the state store hands out: frozen records read from the state file."""

from __future__ import annotations

from dataclasses import dataclass

from memalert.engine.alerting.evaluate import InstanceState
from memalert.engine.alerting.routing import Notification
from memalert.engine.core.model import Labels, Silence
from memalert.engine.store.codec import decode_notification


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredAlert:
    """One remembered alert instance as `memalert status` shows it.

    `last_value` is the instance's value when its row was last written, that
    is when its state last changed or it was last notified; the live value is
    the HTTP server's business.
    """

    rule: str
    labels: Labels
    fingerprint: str
    state: InstanceState
    last_value: float | None
    updated_at: float
    metric: str = ""  # the rule's metric, '' for rows written before it was stored
    inhibited: bool = False  # muted by an inhibit rule after the last tick

    @property
    def status(self) -> str:
        return "pending" if self.state.firing is None else "firing"


@dataclass(frozen=True, kw_only=True, slots=True)
class SilenceRecord:
    silence: Silence
    created_at: float
    expired_at: float | None

    def status(self, now: float) -> str:
        """`active`, `pending` (starts later) or `expired` (ended or expired by hand)."""
        if self.expired_at is not None or now >= self.silence.ends:
            return "expired"
        return "active" if now >= self.silence.starts else "pending"


@dataclass(frozen=True, kw_only=True, slots=True)
class OutboxItem:
    """A notification waiting for delivery; `payload` is decoded on demand.

    Decoding is left to the worker so one unreadable row becomes one dead
    letter instead of an error that blocks every other row.
    """

    id: int
    notifier: str
    created_at: float
    payload: str
    attempts: int
    next_attempt_at: float
    last_error: str

    def notification(self) -> Notification:
        return decode_notification(self.payload)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeadLetter:
    """A notification given up on: rejected by its notifier, or older than the maximum age."""

    id: int
    notifier: str
    created_at: float
    dead_at: float
    attempts: int
    reason: str
    payload: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OutboxCounts:
    """The outbox at a glance: cheap enough to read every tick (no alert rows decoded)."""

    backlog: int
    oldest_pending_at: float | None
    dead_total: int


@dataclass(frozen=True, kw_only=True, slots=True)
class StoreStatus:
    alerts: tuple[StoredAlert, ...]
    silences: tuple[SilenceRecord, ...]
    backlog: int
    oldest_pending_at: float | None
    dead_letters: tuple[DeadLetter, ...]  # the newest few
    dead_total: int


@dataclass(frozen=True, kw_only=True, slots=True)
class CommitStats:
    """What one `commit_tick` wrote: instance rows upserted and deleted, outbox rows added."""

    written: int
    deleted: int
    enqueued: int
