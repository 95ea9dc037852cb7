"""One attempt at an outbox item: send it, then record it delivered, due again, or dead.

`memalert.engine.delivery.worker` decides when and on which thread; this decides what an
attempt means (docs/operations.md, "The outbox" and "Dead letters"):
- delivered only once every URL of the notifier accepted it (at-least-once);
- a failure retrying may fix is due again after an exponential backoff with
  full jitter, up to `max_age` after the item was created, with one last try
  exactly then; a retry goes only to the URLs that have not accepted the item
  (memalert.engine.store.progress), unless a reload changed the notifier's URLs;
- too old, rejected (retrying cannot fix it), a notifier that no longer
  exists or an unreadable payload: a dead letter, logged at ERROR, naming the
  URLs that never got it when others did.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING, Literal

from memalert.engine.core.secrets import mask
from memalert.engine.core.units import format_duration
from memalert.engine.store.codec import PayloadError
from memalert.engine.store.progress import UrlProgress
from memalert.notifiers.base import DeliveryResult

if TYPE_CHECKING:
    from memalert.engine.alerting.routing import Notification
    from memalert.engine.store.records import OutboxItem
    from memalert.engine.store.state import StateStore
    from memalert.notifiers.base import Notifier

log = logging.getLogger("memalert.delivery")

DEFAULT_MAX_AGE = 24 * 3600.0

Outcome = Literal["delivered", "retry", "dead"]


def backoff_delay(attempt: int, *, base: float, cap: float, random: Random) -> float:
    """Seconds before retry number `attempt` (1 = first retry): "full jitter".

    Uniform over [0, min(cap, base * 2**(attempt-1))]: spreads the retries of
    many items (and of several daemons) so a recovering server is not hit by
    one synchronized wave.
    """
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 64))
    return random.uniform(0.0, ceiling)


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How long an outbox item is retried and how far apart (docs/operations.md, "The outbox").

    `max_age`: from the item's creation to its last try; `base_backoff` and
    `max_backoff`: the first retry's ceiling and the cap of the doubling ceilings.
    """

    max_age: float = DEFAULT_MAX_AGE
    base_backoff: float = 1.0
    max_backoff: float = 300.0

    def __post_init__(self) -> None:
        if not (self.max_age > 0 and 0 < self.base_backoff <= self.max_backoff):
            raise ValueError(
                "need max_age > 0 and 0 < base_backoff <= max_backoff, got "
                f"max_age={self.max_age}, base_backoff={self.base_backoff}, "
                f"max_backoff={self.max_backoff}"
            )

    def delay(self, attempt: int, random: Random) -> float:
        """Seconds before retry number `attempt`."""
        return backoff_delay(attempt, base=self.base_backoff, cap=self.max_backoff, random=random)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryStats:
    """Counters since the worker was built (for logs, /metrics and /health)."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0


class DeliveryAttempts:
    """Makes attempts at outbox items (from any thread) and counts their outcomes."""

    def __init__(
        self,
        store: StateStore,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Callable[[], float] = time.time,
        random: Random | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._store = store
        self._notifiers = dict(notifiers)
        self._clock = clock
        self._random = random if random is not None else Random()
        self._retry = retry or RetryPolicy()
        self._max_age = self._retry.max_age
        self._stats = DeliveryStats()
        self._stats_lock = threading.Lock()  # lanes of several notifiers count at once

    @property
    def stats(self) -> DeliveryStats:
        return self._stats

    def replace_notifiers(self, notifiers: Mapping[str, Notifier]) -> None:
        """Use new notifiers from the next attempt on (SIGHUP reload)."""
        self._notifiers = dict(notifiers)

    def attempt(self, item: OutboxItem, now: float) -> Outcome:
        """Send `item` once (unless it is too old or cannot be sent) and record the outcome.

        A failing notifier never raises out of here; a failing state file does
        (StateStoreError), leaving the item pending.
        """
        # Only an item tried before can have reached some of its URLs.
        known = self._store.url_progress(item.id) if item.attempts else None
        if now - item.created_at > self._max_age:
            last = f"; last error: {item.last_error}" if item.last_error else ""
            return self._give_up(
                item,
                f"not delivered within {format_duration(self._max_age)} "
                f"({item.attempts} attempts{last})",
                known,
            )
        notifier = self._notifiers.get(item.notifier)
        if notifier is None:
            return self._give_up(item, f"no notifier named {item.notifier!r} is configured", known)
        try:
            notification = item.notification()
        except PayloadError as exc:
            return self._give_up(item, f"unreadable outbox entry: {exc}", known)

        destinations = notifier.destinations
        if known is not None and not known.applies_to(destinations):
            log.info(
                "the URLs of %s changed since notification %d reached some of them; "
                "sending it to every URL again",
                item.notifier,
                item.id,
            )
            known = None
        only = None if known is None else known.owed
        result = self._send(notifier, item.notifier, notification, only)
        progress = UrlProgress.of(destinations, result) if known is None else known.after(result)
        # Every URL's outcome so far; a notifier that raised tells nothing about its URLs.
        outcome = result if progress is None else progress.outcome
        finished = self._clock()
        if outcome.ok:
            self._store.mark_delivered(item.id, outcome, finished)
            self._count(delivered=1)
            log.info(
                "delivered notification %d to %s (%d alerts, attempt %d%s)",
                item.id,
                item.notifier,
                len(notification.events),
                item.attempts + 1,
                _skipped(known),
            )
            return "delivered"
        # This try's error; when the notifier raised, that is the exception, not the URLs.
        error = result.error or outcome.error
        if not outcome.retryable:
            return self._give_up(item, f"rejected: {error}", progress, tried=outcome)
        expires = item.created_at + self._max_age
        if finished >= expires:
            return self._give_up(
                item,
                f"not delivered within {format_duration(self._max_age)} "
                f"({item.attempts + 1} attempts; last error: {error})",
                progress,
                tried=outcome,
            )
        delay = self._retry.delay(item.attempts + 1, self._random)
        # One last try exactly at expiry rather than none after the last full backoff.
        retry_at = min(finished + delay, expires)
        self._store.mark_retry(item.id, error, retry_at, progress=progress)
        self._count(retried=1)
        log.warning(
            "delivery of notification %d to %s failed (attempt %d), retrying in %s%s: %s",
            item.id,
            item.notifier,
            item.attempts + 1,
            format_duration(retry_at - finished),
            _retried_only(progress),
            error,
        )
        return "retry"

    def _send(
        self,
        notifier: Notifier,
        name: str,
        notification: Notification,
        only: frozenset[int] | None,
    ) -> DeliveryResult:
        try:
            return notifier.send(notification, only=only)
        except Exception as exc:  # a notifier bug must not stop delivery
            # The contract says send() reports failures; one that raises is
            # treated as a transient failure and retried, its text masked.
            log.warning("notifier %s raised instead of reporting", name, exc_info=True)
            return DeliveryResult(
                notifier=name,
                ok=False,
                urls=(),
                retryable=True,
                error=mask(f"{type(exc).__name__}: {exc}"),
            )

    def _give_up(
        self,
        item: OutboxItem,
        reason: str,
        progress: UrlProgress | None,
        *,
        tried: DeliveryResult | None = None,
    ) -> Outcome:
        """Make `item` a dead letter; `tried` is this attempt's outcome, None if none was made."""
        if progress is not None:
            reason += progress.shortfall()
        self._store.mark_dead(item.id, reason, self._clock(), result=tried, progress=progress)
        self._count(dead=1)
        log.error("notification %d to %s is a dead letter: %s", item.id, item.notifier, reason)
        return "dead"

    def _count(self, *, delivered: int = 0, retried: int = 0, dead: int = 0) -> None:
        with self._stats_lock:
            s = self._stats
            self._stats = DeliveryStats(
                delivered=s.delivered + delivered, retried=s.retried + retried, dead=s.dead + dead
            )


def _skipped(known: UrlProgress | None) -> str:
    """For the delivery log line: the URLs that had the item before this try."""
    if known is None or not (reached := len(known.outcome.urls) - len(known.owed)):
        return ""
    return f"; {reached} of {len(known.outcome.urls)} URLs had it from an earlier attempt"


def _retried_only(progress: UrlProgress | None) -> str:
    """For the retry log line: to how many URLs the retry goes, when not to all of them."""
    if progress is None or not progress.outcome.partial:
        return ""
    return f" to {len(progress.owed)} of {len(progress.outcome.urls)} URLs"
