"""The delivery worker on a real state file: retries, dead letters, order, crashes, shutdown.

Time is a FakeClock and `flush` sleeps by advancing it, so nothing here sleeps.
The worker's threads (a lane per notifier) are tested in test_delivery_threads.py.
"""

from __future__ import annotations

import logging
from random import Random
from typing import TYPE_CHECKING

import pytest
from store_kit import T0, ScriptedNotifier, SimulatedCrash, fired, note, raw, resolved, worker_for

from memalert.engine.alerting.evaluate import EvalState
from memalert.engine.delivery.attempt import RetryPolicy, backoff_delay
from memalert.engine.delivery.worker import DeliveryWorker
from memalert.engine.store.state import StateStore, StateStoreError
from memalert.engine.testing import FakeClock
from memalert.notifiers.testing import RecordingNotifier

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from memalert.engine.alerting.routing import Notification

DAY = 24 * 3600.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(path: Path) -> Iterator[StateStore]:
    with StateStore(path) as opened:
        yield opened


def enqueue(store: StateStore, clock: FakeClock, *notifications: Notification) -> None:
    store.commit_tick(EvalState(), list(notifications), now=clock())


def outbox_rows(path: Path) -> list[tuple[str, str, int]]:
    with raw(path) as conn:
        rows = conn.execute("SELECT notifier, status, attempts FROM outbox ORDER BY id")
        return [tuple(r) for r in rows]


def test_due_items_are_delivered_and_recorded(store: StateStore, clock: FakeClock) -> None:
    ops = RecordingNotifier("ops")
    worker = worker_for(store, clock, {"ops": ops})
    sent = [note("ops", fired(target="a")), note("ops", fired(target="b"))]
    enqueue(store, clock, *sent)
    assert worker.run_once(clock()) == 2
    assert ops.sent == sent
    assert store.status(clock()).backlog == 0
    assert worker.stats.delivered == 2
    assert worker.run_once(clock()) == 0  # nothing is sent twice


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 3, 8, 9, 100, 10_000])
def test_backoff_stays_within_its_full_jitter_bounds(attempt: int) -> None:
    random = Random(attempt)
    ceiling = min(300.0, 1.0 * 2 ** min(attempt - 1, 64))
    delays = [backoff_delay(attempt, base=1.0, cap=300.0, random=random) for _ in range(200)]
    assert all(0.0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling / 2  # jittered over the range, not pinned low


def test_retries_back_off_exponentially_then_deliver(
    store: StateStore, clock: FakeClock, path: Path
) -> None:
    ops = RecordingNotifier("ops", failures=5)
    worker = worker_for(store, clock, {"ops": ops}, base_backoff=1.0, max_backoff=8.0)
    enqueue(store, clock, note("ops"))
    expected = Random(7)  # the worker's own sequence, replayed
    for attempt in range(1, 6):
        assert worker.run_once(clock()) == 0
        due = store.next_attempt_at()
        assert due is not None
        delay = due - clock()
        assert 0.0 <= delay <= min(8.0, 2.0 ** (attempt - 1))
        assert delay == pytest.approx(backoff_delay(attempt, base=1, cap=8, random=expected))
        assert worker.run_once(clock()) == 0 or delay == 0  # not due before its time
        clock.set(due)
    assert worker.run_once(clock()) == 1
    assert len(ops.attempts) == 6
    assert len(ops.sent) == 1
    assert outbox_rows(path) == [("ops", "delivered", 6)]
    assert worker.stats.retried == 5


def test_an_item_never_delivered_is_dead_after_max_age(
    store: StateStore, clock: FakeClock, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = ScriptedNotifier("ops", ["retry"] * 10_000)
    worker = worker_for(store, clock, {"ops": down}, max_backoff=3600.0)
    enqueue(store, clock, note("ops"))
    created = clock()
    passes = 0
    while (due := store.next_attempt_at()) is not None:
        clock.set(max(due, clock()))
        worker.run_once(clock())
        passes += 1
        assert passes < 200
    status = store.status(clock())
    (dead,) = status.dead_letters
    assert dead.reason.startswith("not delivered within 1d")
    assert "HTTP 500" in dead.reason
    # The last try is made at the expiry, not one full backoff before it.
    assert dead.dead_at == created + DAY
    assert dead.attempts == len(down.attempts)
    assert outbox_rows(path)[0][1] == "dead"
    assert any(
        r.levelno == logging.ERROR and "dead letter" in r.getMessage() for r in caplog.records
    )


def test_an_item_older_than_max_age_is_dead_without_a_send(
    store: StateStore, clock: FakeClock
) -> None:
    ops = RecordingNotifier("ops")
    worker = worker_for(store, clock, {"ops": ops})
    enqueue(store, clock, note("ops"))
    clock.advance(DAY + 1)  # the daemon was down for a day
    assert worker.run_once(clock()) == 0
    assert ops.attempts == []
    (dead,) = store.status(clock()).dead_letters
    assert dead.reason == "not delivered within 1d (0 attempts)"


def test_a_rejected_item_is_dead_at_once_and_does_not_block_the_next(
    store: StateStore, clock: FakeClock
) -> None:
    ops = ScriptedNotifier("ops", ["reject"])
    worker = worker_for(store, clock, {"ops": ops})
    enqueue(store, clock, note("ops", fired(target="a")), note("ops", fired(target="b")))
    assert worker.run_once(clock()) == 1
    (dead,) = store.status(clock()).dead_letters
    assert dead.reason == "rejected: test://ops: HTTP 400 bad request"
    assert dead.attempts == 1


def test_unknown_notifiers_and_unreadable_rows_become_dead_letters(
    store: StateStore, clock: FakeClock, path: Path
) -> None:
    worker = worker_for(store, clock, {"ops": RecordingNotifier("ops")})
    enqueue(store, clock, note("removed-by-reload"), note("ops"))
    with raw(path) as conn:
        conn.execute("UPDATE outbox SET payload = '{\"version\": 1' WHERE notifier = 'ops'")
    assert worker.run_once(clock()) == 0
    reasons = sorted(d.reason for d in store.status(clock()).dead_letters)
    assert reasons[0] == "no notifier named 'removed-by-reload' is configured"
    assert reasons[1].startswith("unreadable outbox entry: payload is not JSON")


def test_a_notifier_that_raises_is_retried_with_its_secret_masked(
    store: StateStore, clock: FakeClock
) -> None:
    leaky = ScriptedNotifier(
        "ops", [RuntimeError("POST https://hooks.slack.com/services/T000AAAA/B000BBBB/XXXXyyyy")]
    )
    worker = worker_for(store, clock, {"ops": leaky})
    enqueue(store, clock, note("ops"))
    assert worker.run_once(clock()) == 0
    (item,) = store.claim_due(clock() + 3600)
    assert item.last_error.startswith("RuntimeError: POST https://hooks.slack.com/services/")
    assert "XXXXyyyy" not in item.last_error
    clock.advance(3600)
    assert worker.run_once(clock()) == 1


# -- order -----------------------------------------------------------------------------------


def test_per_notifier_order_holds_through_failures_and_recovery(
    store: StateStore, clock: FakeClock
) -> None:
    flaky = ScriptedNotifier("webhook", ["retry", "retry", "retry"])
    steady = RecordingNotifier("mail")
    # Backoffs longer than a tick: "resolved" comes due while "firing" waits for its retry.
    worker = worker_for(
        store, clock, {"webhook": flaky, "mail": steady}, base_backoff=60.0, max_backoff=600.0
    )
    firing_hook, firing_mail = note("webhook", fired()), note("mail", fired())
    enqueue(store, clock, firing_hook, firing_mail)
    worker.run_once(clock())
    clock.advance(15)
    resolved_hook = note("webhook", resolved(at=clock()), at=clock())
    resolved_mail = note("mail", resolved(at=clock()), at=clock())
    enqueue(store, clock, resolved_hook, resolved_mail)
    assert store.next_attempt_at() == clock()  # mail's "resolved" is due now ...
    assert [i.notifier for i in store.claim_due(clock())] == ["mail"]  # ... webhook's is not
    while (due := store.next_attempt_at()) is not None:
        clock.set(max(due, clock()))
        worker.run_once(clock())
    # The healthy notifier was never held up by the failing one ...
    assert steady.sent == [firing_mail, resolved_mail]
    # ... and the failing one got "resolved" only after "firing" went through.
    assert flaky.attempts == [firing_hook] * 4 + [resolved_hook]


# -- crashes and restarts ----------------------------------------------------------------------


def test_a_crash_between_send_and_mark_repeats_the_message_and_drops_none(
    path: Path, clock: FakeClock
) -> None:
    store = StateStore(path)
    before_crash = ScriptedNotifier("ops", ["ok", "crash"])
    worker = worker_for(store, clock, {"ops": before_crash})
    confirmed, in_flight, queued = (note("ops", fired(target=t)) for t in ("a", "b", "c"))
    enqueue(store, clock, confirmed, in_flight, queued)
    with pytest.raises(SimulatedCrash):
        worker.run_once(clock())  # the server got "b", then the process died
    store.close()
    del worker

    after_restart = RecordingNotifier("ops")
    with StateStore(path) as reopened:
        worker_for(reopened, clock, {"ops": after_restart}).run_once(clock())
    assert before_crash.attempts == [confirmed, in_flight]
    # "a" was confirmed: not sent again; "b" is repeated (at-least-once); "c" arrives.
    assert after_restart.sent == [in_flight, queued]
    assert outbox_rows(path) == [("ops", "delivered", 1)] * 3


def test_items_claimed_but_never_marked_are_delivered_by_the_next_worker(
    path: Path, clock: FakeClock
) -> None:
    store = StateStore(path)
    enqueue(store, clock, note("ops"))
    assert len(store.claim_due(clock())) == 1  # claimed, then the worker vanished
    store.close()
    ops = RecordingNotifier("ops")
    with StateStore(path) as reopened:
        assert worker_for(reopened, clock, {"ops": ops}).run_once(clock()) == 1
    assert len(ops.sent) == 1


# -- shutdown ----------------------------------------------------------------------------------


def test_flush_waits_for_retries_due_before_the_deadline(
    store: StateStore, clock: FakeClock
) -> None:
    ops = RecordingNotifier("ops", failures=3)
    worker = worker_for(store, clock, {"ops": ops}, base_backoff=1.0, max_backoff=4.0)
    enqueue(store, clock, note("ops"))
    assert worker.flush(deadline=clock() + 30) is True
    assert len(ops.sent) == 1
    assert clock() < T0 + 30


def test_flush_gives_up_at_the_deadline(store: StateStore, clock: FakeClock) -> None:
    down = ScriptedNotifier("ops", ["retry"] * 1000)
    worker = worker_for(store, clock, {"ops": down}, base_backoff=1.0, max_backoff=4.0)
    enqueue(store, clock, note("ops"))
    assert worker.flush(deadline=clock() + 10) is False
    assert clock() <= T0 + 10
    assert store.status(clock()).backlog == 1  # still queued for the next start


def test_flush_with_nothing_pending_returns_at_once(store: StateStore, clock: FakeClock) -> None:
    assert worker_for(store, clock, {}).flush(deadline=clock()) is True


def test_a_store_failure_in_run_once_is_a_clear_error(store: StateStore, path: Path) -> None:
    worker = DeliveryWorker(store, {"ops": ScriptedNotifier("ops")})
    store.commit_tick(EvalState(), [note("ops")], now=T0)
    store.close()
    with pytest.raises(StateStoreError, match="closed"):
        worker.run_once(T0)


def test_bad_retry_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="max_backoff"):
        RetryPolicy(base_backoff=10.0, max_backoff=1.0)
