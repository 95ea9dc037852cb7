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
  A retry goes only to the notifier's URLs that have not accepted the item
  (memalert.engine.store.progress); the item is delivered once all have.

Threads (`start`/`stop`): a dispatcher looks at the outbox on every commit
that enqueued (and every `idle_wait`), and each notifier with pending items
gets a lane: its own thread, sending that notifier's items one at a time, in
order, and ending once none is pending. So a notifier that hangs until its
timeout holds up its own later messages only, never another notifier's, and
never an evaluation tick. The lanes share the store's one connection; the
store holds its lock per statement group, never while a notifier sends.

`run_once(now)` is the same work in the calling thread, for tests (with a
FakeClock); `flush(deadline)` is the bounded last effort on SIGTERM.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from random import Random
from typing import TYPE_CHECKING

from memalert.engine.core.errors import MemalertError
from memalert.engine.core.secrets import mask
from memalert.engine.core.units import format_duration
from memalert.engine.delivery.attempt import DeliveryAttempts, DeliveryStats, RetryPolicy

if TYPE_CHECKING:
    from memalert.engine.store.state import StateStore
    from memalert.notifiers.base import Notifier

log = logging.getLogger("memalert.delivery")

# Delivered and dead items (and their log rows) are kept this long for
# `memalert status` and post-mortems, then pruned.
DEFAULT_RETENTION = 7 * 24 * 3600.0
_PRUNE_EVERY = 3600.0


@dataclass(eq=False, slots=True)
class _Lane:
    """One notifier's sending: its thread while items are pending, and its order.

    `sending` is held by whoever sends this notifier's items (its thread, or
    `run_once`), so two never send them at once, out of order or twice.
    """

    notifier: str
    sending: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class DeliveryWorker:
    """Sends what `StateStore.commit_tick` enqueued; see the module doc for the guarantees."""

    def __init__(
        self,
        store: StateStore,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Callable[[], float] = time.time,
        random: Random | None = None,
        retry: RetryPolicy | None = None,
        batch_size: int = 100,
        idle_wait: float = 5.0,
        retention: float = DEFAULT_RETENTION,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"need batch_size >= 1, got {batch_size}")
        self._attempts = DeliveryAttempts(store, notifiers, clock=clock, random=random, retry=retry)
        self._store = store
        self._clock = clock
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._retention = retention
        self._sleep = sleep
        # Guards the lanes and their threads' coming and going.
        self._lanes_lock = threading.RLock()
        self._lanes: dict[str, _Lane] = {}
        # Notified after every item handled: a flush waits on it for the lanes.
        self._progress = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._dispatcher: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._last_prune: float | None = None

    @property
    def stats(self) -> DeliveryStats:
        return self._attempts.stats

    def replace_notifiers(self, notifiers: Mapping[str, Notifier]) -> None:
        """Use new notifiers from the next item on (SIGHUP reload); pending items stay queued."""
        self._attempts.replace_notifiers(notifiers)

    def wake(self) -> None:
        """Look at the outbox now rather than at the next planned time."""
        self._wake.set()

    # -- one pass ---------------------------------------------------------------

    def run_once(self, now: float | None = None) -> int:
        """Try every item due at `now` (default: the clock); return how many were delivered.

        Notifier after notifier, in this thread; a notifier whose lane thread
        is sending right now is left to it. A failing notifier never raises
        out of here; a failing state file does (StateStoreError), leaving the
        item pending for the next pass.
        """
        now = self._clock() if now is None else now
        delivered = 0
        for name, due in self._store.head_attempts().items():
            lane = self._lane(name)
            if due <= now and lane.sending.acquire(blocking=False):
                try:
                    delivered += self._drain(name, now)
                finally:
                    lane.sending.release()
        return delivered

    def _drain(self, notifier: str, now: float, until: threading.Event | None = None) -> int:
        """Send `notifier`'s items due at `now`, in order, until one waits for a retry or
        `until` is set; the number delivered. The caller holds the lane's `sending`."""
        delivered = 0
        while True:
            items = self._store.claim_due(now, self._batch_size, notifier=notifier)
            for item in items:
                if until is not None and until.is_set():
                    return delivered
                outcome = self._attempts.attempt(item, now)
                with self._progress:
                    self._progress.notify_all()
                if outcome == "retry":
                    return delivered  # the later items wait behind it
                delivered += outcome == "delivered"
            if len(items) < self._batch_size:
                return delivered

    # -- threads and shutdown -------------------------------------------------------

    def start(self) -> None:
        """Deliver in background threads, woken by every commit that enqueues."""
        if self._dispatcher is not None:
            raise RuntimeError("the delivery worker is already running")
        self._stopping.clear()
        self._unsubscribe = self._store.subscribe(self.wake)
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="memalert-delivery", daemon=True
        )
        self._dispatcher.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the threads (sends in progress finish); True if all ended within `timeout`.

        A lane stuck in a send stays behind (a daemon thread: it does not hold
        up the process's exit); its item stays pending for the next run.
        """
        dispatcher = self._dispatcher
        if dispatcher is None:
            return True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._lanes_lock:  # no lane starts after this
            self._stopping.set()
            threads = [dispatcher]
            for lane in self._lanes.values():
                lane.wake.set()
                if lane.thread is not None:
                    threads.append(lane.thread)
        self._wake.set()
        ends = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if ends is None else max(ends - time.monotonic(), 0.0))
        if any(thread.is_alive() for thread in threads):
            return False
        self._dispatcher = None
        return True

    def flush(self, deadline: float) -> bool:
        """Deliver what is pending until the clock reaches `deadline`; True if nothing is left.

        Waits for retries due before the deadline. Running (`start`), the lanes
        do it, each notifier on its own, and this waits for them; else it is
        done here, notifier after notifier. A send in progress may overrun the
        deadline by the notifier's own timeout.
        """
        if self._dispatcher is not None:
            return self._wait_for_lanes(deadline)
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

    def _wait_for_lanes(self, deadline: float) -> bool:
        self.wake()  # lanes for what the last tick enqueued
        with self._progress:
            while True:
                due = self._store.next_attempt_at()
                if due is None:
                    return True
                now = self._clock()
                if now >= deadline or due >= deadline:
                    return False
                self._progress.wait(deadline - now)

    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            # Cleared before looking: a commit while we look wakes the next look.
            self._wake.clear()
            self._look()
            self._wake.wait(self._idle_wait)

    def _look(self) -> None:
        """Start a lane for each notifier with pending items; the thread outlives a failure."""
        try:
            for name in self._store.head_attempts():
                self._start_lane(name)
            self._prune_now_and_then()
        except Exception as exc:  # noqa: BLE001 - logged; the thread must outlive it
            _log_failure(exc, "delivery pass failed; retrying in %s", self._idle_wait)

    def _lane(self, notifier: str) -> _Lane:
        with self._lanes_lock:
            lane = self._lanes.get(notifier)
            if lane is None:
                lane = self._lanes[notifier] = _Lane(notifier)
            return lane

    def _start_lane(self, notifier: str) -> None:
        """Wake `notifier`'s lane thread, or start one (its first pass needs no wake-up)."""
        with self._lanes_lock:
            lane = self._lane(notifier)
            if self._stopping.is_set():
                return
            if lane.thread is not None:
                lane.wake.set()
                return
            lane.thread = threading.Thread(
                target=self._run_lane,
                args=(lane,),
                name=f"memalert-delivery-{notifier}",
                daemon=True,
            )
            lane.thread.start()

    def _run_lane(self, lane: _Lane) -> None:
        try:
            while not self._stopping.is_set():
                lane.wake.clear()
                try:
                    # Blocking: a `run_once` sending these items finishes first.
                    with lane.sending:
                        self._drain(lane.notifier, self._clock(), until=self._stopping)
                    due = self._next_due_or_end(lane)
                    if due is None:
                        return
                    wait = min(max(due - self._clock(), 0.0), self._idle_wait)
                except Exception as exc:  # noqa: BLE001 - logged; the lane must outlive it
                    _log_failure(
                        exc,
                        f"delivery pass failed for {lane.notifier}; retrying in %s",
                        self._idle_wait,
                    )
                    wait = self._idle_wait
                lane.wake.wait(wait)
        finally:
            with self._lanes_lock:
                if lane.thread is threading.current_thread():
                    lane.thread = None

    def _next_due_or_end(self, lane: _Lane) -> float | None:
        """When `lane`'s next item is due; with none pending, the lane ends (None)."""
        with self._lanes_lock:
            # Decided under the lock lanes are started under: an item enqueued
            # after this look finds the lane ended and starts a new one.
            due = self._store.next_attempt_at(lane.notifier)
            if due is None:
                lane.thread = None
            return due

    def _prune_now_and_then(self) -> None:
        now = self._clock()
        if self._last_prune is None or now - self._last_prune >= _PRUNE_EVERY:
            self._last_prune = now
            removed = self._store.prune(now - self._retention)
            if removed:
                log.info("pruned %d finished outbox and log rows", removed)


def _log_failure(exc: Exception, message: str, retry_in: float) -> None:
    """One line for what memalert reports (a state file that is full, locked, closed);
    a traceback only for what it does not expect, a bug."""
    text = message % format_duration(retry_in)
    if isinstance(exc, MemalertError):
        log.error("%s: %s", text, mask(str(exc)))
    else:
        log.error("%s: %s", text, mask(f"{type(exc).__name__}: {exc}"), exc_info=exc)
