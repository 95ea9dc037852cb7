"""The delivery worker: drains the outbox through the notifiers, losing nothing.

- At-least-once: an item is marked delivered only after its notifier said ok,
  so a crash between the send and the mark repeats that one message after a
  restart; nothing is ever marked delivered that was not sent.
- Order: per notifier, items go out in creation order, and a notifier's later
  items wait while an earlier one waits for its retry (head-of-line), so a
  "resolved" never overtakes its "firing". Notifiers do not wait for each other.
- Retries: exponential backoff with full jitter, up to `max_age` (24 h by
  default) after the item was created; then, or at once for a failure retrying
  cannot fix, the item is dead: logged at ERROR and listed by `memalert status`.

The worker runs in its own thread (`start`/`stop`), so a slow or dead notifier
never delays an evaluation tick; `run_once(now)` is the same step for tests
(with a FakeClock) and `flush(deadline)` is the bounded last effort on SIGTERM.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING

from engine.secrets import mask
from engine.store_codec import PayloadError
from engine.units import format_duration
from notifiers.base import DeliveryResult

if TYPE_CHECKING:
    from engine.routing import Notification
    from engine.store import StateStore
    from engine.store_records import OutboxItem
    from notifiers.base import Notifier

log = logging.getLogger("memalert.delivery")

DEFAULT_MAX_AGE = 24 * 3600.0
# Delivered and dead items (and their log rows) are kept this long for
# `memalert status` and post-mortems, then pruned.
DEFAULT_RETENTION = 7 * 24 * 3600.0
_PRUNE_EVERY = 3600.0


def backoff_delay(attempt: int, *, base: float, cap: float, random: Random) -> float:
    """Seconds before retry number `attempt` (1 = first retry): "full jitter".

    Uniform over [0, min(cap, base * 2**(attempt-1))]: spreads the retries of
    many items (and of several daemons) so a recovering server is not hit by
    one synchronized wave.
    """
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 64))
    return random.uniform(0.0, ceiling)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryStats:
    """Counters since the worker was built (for logs, /metrics and /health)."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0


class DeliveryWorker:
    """Sends what `StateStore.commit_tick` enqueued; see the module doc for the guarantees."""

    def __init__(
        self,
        store: StateStore,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Callable[[], float] = time.time,
        random: Random | None = None,
        max_age: float = DEFAULT_MAX_AGE,
        base_backoff: float = 1.0,
        max_backoff: float = 300.0,
        batch_size: int = 100,
        idle_wait: float = 5.0,
        retention: float = DEFAULT_RETENTION,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if max_age <= 0 or base_backoff <= 0 or max_backoff < base_backoff or batch_size < 1:
            raise ValueError(
                "need max_age > 0, 0 < base_backoff <= max_backoff and batch_size >= 1, got "
                f"max_age={max_age}, base_backoff={base_backoff}, max_backoff={max_backoff}, "
                f"batch_size={batch_size}"
            )
        self._store = store
        self._notifiers = dict(notifiers)
        self._clock = clock
        self._random = random if random is not None else Random()
        self._max_age = max_age
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._retention = retention
        self._sleep = sleep
        # One delivery pass at a time: the thread, flush() and tests share the store's outbox.
        self._pass_lock = threading.Lock()
        self._stats = DeliveryStats()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._last_prune: float | None = None

    @property
    def stats(self) -> DeliveryStats:
        return self._stats

    def replace_notifiers(self, notifiers: Mapping[str, Notifier]) -> None:
        """Use new notifiers from the next item on (SIGHUP reload); pending items stay queued."""
        self._notifiers = dict(notifiers)

    def wake(self) -> None:
        """Look at the outbox now rather than at the next planned time."""
        self._wake.set()

    # -- one pass ---------------------------------------------------------------

    def run_once(self, now: float | None = None) -> int:
        """Try every item due at `now` (default: the clock); return how many were delivered.

        A failing notifier never raises out of here; a failing state file does
        (StateStoreError), leaving the item pending for the next pass.
        """
        with self._pass_lock:
            now = self._clock() if now is None else now
            blocked: set[str] = set()  # notifiers whose head now waits for a retry
            delivered = 0
            while True:
                items = self._store.claim_due(now, self._batch_size)
                fresh = [item for item in items if item.notifier not in blocked]
                for item in fresh:
                    if item.notifier in blocked:
                        continue  # an earlier item of this notifier just failed
                    outcome = self._deliver(item, now)
                    if outcome == "delivered":
                        delivered += 1
                    elif outcome == "retry":
                        blocked.add(item.notifier)
                # A full batch may hide more due items; a batch of blocked ones does not.
                if len(items) < self._batch_size or not fresh:
                    return delivered

    def _deliver(self, item: OutboxItem, now: float) -> str:
        if now - item.created_at > self._max_age:
            last = f"; last error: {item.last_error}" if item.last_error else ""
            return self._give_up(
                item,
                f"not delivered within {format_duration(self._max_age)} "
                f"({item.attempts} attempts{last})",
                None,
            )
        notifier = self._notifiers.get(item.notifier)
        if notifier is None:
            return self._give_up(item, f"no notifier named {item.notifier!r} is configured", None)
        try:
            notification = item.notification()
        except PayloadError as exc:
            return self._give_up(item, f"unreadable outbox entry: {exc}", None)

        result = self._send(notifier, item.notifier, notification)
        finished = self._clock()
        if result.ok:
            self._store.mark_delivered(item.id, result, finished)
            self._count(delivered=1)
            log.info(
                "delivered notification %d to %s (%d alerts, attempt %d)",
                item.id,
                item.notifier,
                len(notification.events),
                item.attempts + 1,
            )
            return "delivered"
        if not result.retryable:
            return self._give_up(item, f"rejected: {result.error}", result)
        expires = item.created_at + self._max_age
        if finished >= expires:
            return self._give_up(
                item,
                f"not delivered within {format_duration(self._max_age)} "
                f"({item.attempts + 1} attempts; last error: {result.error})",
                result,
            )
        delay = backoff_delay(
            item.attempts + 1, base=self._base_backoff, cap=self._max_backoff, random=self._random
        )
        # One last try exactly at expiry rather than none after the last full backoff.
        retry_at = min(finished + delay, expires)
        self._store.mark_retry(item.id, result.error, retry_at)
        self._count(retried=1)
        log.warning(
            "delivery of notification %d to %s failed (attempt %d), retrying in %s: %s",
            item.id,
            item.notifier,
            item.attempts + 1,
            format_duration(retry_at - finished),
            result.error,
        )
        return "retry"

    def _send(self, notifier: Notifier, name: str, notification: Notification) -> DeliveryResult:
        try:
            return notifier.send(notification)
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

    def _give_up(self, item: OutboxItem, reason: str, result: DeliveryResult | None) -> str:
        self._store.mark_dead(item.id, reason, self._clock(), result=result)
        self._count(dead=1)
        log.error("notification %d to %s is a dead letter: %s", item.id, item.notifier, reason)
        return "dead"

    def _count(self, *, delivered: int = 0, retried: int = 0, dead: int = 0) -> None:
        s = self._stats
        self._stats = DeliveryStats(
            delivered=s.delivered + delivered, retried=s.retried + retried, dead=s.dead + dead
        )

    # -- background thread and shutdown -------------------------------------------

    def start(self) -> None:
        """Deliver in a background thread, woken by every commit that enqueues."""
        if self._thread is not None:
            raise RuntimeError("the delivery worker is already running")
        self._stopping.clear()
        self._unsubscribe = self._store.subscribe(self.wake)
        self._thread = threading.Thread(target=self._loop, name="memalert-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread (a send in progress finishes); True if it ended within `timeout`."""
        thread = self._thread
        if thread is None:
            return True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    def flush(self, deadline: float) -> bool:
        """Deliver what is pending until the clock reaches `deadline`; True if nothing is left.

        Waits for retries due before the deadline; a send in progress may
        overrun it by the notifier's own timeout.
        """
        while True:
            self.run_once()
            due = self._store.next_attempt_at()
            if due is None:
                return True
            now = self._clock()
            if now >= deadline or due >= deadline:
                return False
            if due > now:
                self._sleep(due - now)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            # Cleared before the pass: a commit during the pass wakes the next one.
            self._wake.clear()
            try:
                self.run_once()
                self._prune_now_and_then()
                wait = self._until_next_due()
            except Exception:  # the thread must outlive a failed pass
                log.exception(
                    "delivery pass failed; retrying in %s", format_duration(self._idle_wait)
                )
                wait = self._idle_wait
            self._wake.wait(wait)

    def _until_next_due(self) -> float:
        due = self._store.next_attempt_at()
        if due is None:
            return self._idle_wait
        return min(max(due - self._clock(), 0.0), self._idle_wait)

    def _prune_now_and_then(self) -> None:
        now = self._clock()
        if self._last_prune is None or now - self._last_prune >= _PRUNE_EVERY:
            self._last_prune = now
            removed = self._store.prune(now - self._retention)
            if removed:
                log.info("pruned %d finished outbox and log rows", removed)
