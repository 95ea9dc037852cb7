"""The outbox, the notification log, silences and the payload encoding, on a real SQLite file."""

from __future__ import annotations

import dataclasses
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st
from store_kit import T0, fired, note, raw, resolved, scalar

from memalert.engine.alerting.evaluate import EvalState
from memalert.engine.alerting.routing import Notification
from memalert.engine.core.model import AlertEvent, Labels, Severity
from memalert.engine.store.codec import (
    EVENT_FIELDS,
    EVENT_KINDS,
    PayloadError,
    decode_notification,
    encode_notification,
)
from memalert.engine.store.progress import UrlProgress
from memalert.engine.store.state import InvalidSilenceError, StateStore, StateStoreError
from memalert.notifiers.base import DeliveryResult, UrlResult

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.db") as opened:
        yield opened


def ok(name: str) -> DeliveryResult:
    return DeliveryResult.from_urls(name, (UrlResult(url=f"test://{name}", ok=True),))


# -- the payload encoding --------------------------------------------------------------------


def test_every_alert_event_field_is_encoded() -> None:
    assert set(EVENT_FIELDS) == {f.name for f in dataclasses.fields(AlertEvent)}


@pytest.mark.parametrize("kind", sorted(EVENT_KINDS))
def test_each_event_kind_round_trips(kind: str) -> None:
    event = EVENT_KINDS[kind](
        at=T0,
        rule="leak",
        metric="leak_bytes",
        severity=Severity.WARNING,
        labels=Labels(target="api", component="cäche"),
        value=None if kind == "resolved" else 1.5e8,
        threshold=1e8,
        summary="api leaks",
        silenced=kind == "pending",
        related={"leak_growth_bytes_per_hour": 5e6, "time_to_limit_seconds": float("inf")},
        top_sites=(("cache.py:42", 4.2e7), ("db.py:7", 1e6)),
        active_since=T0 - 60,
        firing_since=None,
        reason="no data" if kind == "resolved" else "",
    )
    notification = Notification(notifier="ops", at=T0, events=(event,))
    decoded = decode_notification(encode_notification(notification))
    assert decoded == notification
    assert type(decoded.events[0]) is type(event)


@given(
    value=st.floats(allow_nan=False) | st.none(),
    labels=st.dictionaries(st.text(min_size=1), st.text(), max_size=4),
    summary=st.text(),
)
def test_any_values_round_trip(value: float | None, labels: dict[str, str], summary: str) -> None:
    event = dataclasses.replace(fired(), value=value, labels=Labels(labels), summary=summary)
    notification = note("ops", event)
    assert decode_notification(encode_notification(notification)) == notification


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "not JSON"),
        ("[]", "must be a JSON object"),
        ('{"version": 99, "events": []}', "version 99"),
        (
            '{"version": 1, "notifier": "ops", "at": 1, "events": [{"event": "exploded"}]}',
            "unknown event 'exploded'",
        ),
        ('{"version": 1, "notifier": "ops", "events": []}', "at is missing"),
    ],
)
def test_unreadable_payloads_say_what_is_wrong(payload: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_notification(payload)


def test_fields_missing_from_an_older_payload_take_their_defaults() -> None:
    document = json.loads(encode_notification(note("ops")))
    for optional in ("related", "top_sites", "reason"):
        del document["events"][0][optional]
    (event,) = decode_notification(json.dumps(document)).events
    assert (event.related, event.top_sites, event.reason) == ({}, (), "")


def test_a_wrong_field_type_is_named() -> None:
    document = json.loads(encode_notification(note("ops")))
    document["events"][0]["severity"] = "apocalyptic"
    with pytest.raises(PayloadError, match=r"events\[0\]\.severity: unknown severity"):
        decode_notification(json.dumps(document))


# -- silences --------------------------------------------------------------------------------


def test_silences_are_listed_active_and_expired(store: StateStore) -> None:
    now_id = store.add_silence(
        matchers={"target": "batch*"},
        starts=T0,
        ends=T0 + 3600,
        now=T0,
        comment="migration",
        author="ada",
    )
    later_id = store.add_silence(
        matchers={"severity": "warning"}, starts=T0 + 600, ends=T0 + 1200, now=T0
    )
    (active,) = store.active_silences(T0 + 1)
    assert active.id == now_id
    assert (active.comment, active.author) == ("migration", "ada")
    assert active.matchers[0].matches({"target": "batch-7"})

    listed = store.list_silences(T0 + 1)
    assert [(r.silence.id, r.status(T0 + 1)) for r in listed] == [
        (now_id, "active"),
        (later_id, "pending"),
    ]
    assert {s.id for s in store.active_silences(T0 + 700)} == {now_id, later_id}

    assert store.expire_silence(now_id, T0 + 800) is True
    assert store.expire_silence(now_id, T0 + 801) is False  # already expired
    assert store.expire_silence("no-such-id", T0 + 801) is False
    assert [s.id for s in store.active_silences(T0 + 900)] == [later_id]
    assert [r.silence.id for r in store.list_silences(T0 + 900)] == [later_id]
    everything = store.list_silences(T0 + 900, include_expired=True)
    expired = next(r for r in everything if r.silence.id == now_id)
    assert (expired.expired_at, expired.silence.ends, expired.status(T0 + 900)) == (
        T0 + 800,
        T0 + 800,
        "expired",
    )
    assert store.active_silences(T0 + 1200) == []


@pytest.mark.parametrize(
    ("matchers", "starts", "ends", "message"),
    [
        ({}, T0, T0 + 60, "at least one matcher"),
        ({"target": "api"}, T0, T0, "end after it starts"),
        ({"target": "api"}, T0 - 120, T0 - 60, "end in the future"),
    ],
)
def test_invalid_silences_are_refused(
    store: StateStore, matchers: dict[str, str], starts: float, ends: float, message: str
) -> None:
    with pytest.raises(InvalidSilenceError, match=message):
        store.add_silence(matchers=matchers, starts=starts, ends=ends, now=T0)


def test_an_unreadable_silence_is_a_clear_error(store: StateStore, tmp_path: Path) -> None:
    silence_id = store.add_silence(matchers={"target": "api"}, starts=T0, ends=T0 + 60, now=T0)
    with raw(tmp_path / "state.db") as conn:
        conn.execute("UPDATE silences SET matchers = '[1, 2]'")
    with pytest.raises(StateStoreError, match=f"silence {silence_id}: labels must be"):
        store.active_silences(T0)


def test_silences_added_by_another_process_are_seen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as daemon, StateStore(path) as cli:
        silence_id = cli.add_silence(matchers={"target": "api"}, starts=T0, ends=T0 + 60, now=T0)
        assert [s.id for s in daemon.active_silences(T0)] == [silence_id]


# -- the outbox ------------------------------------------------------------------------------


def enqueue(store: StateStore, *notifications: Notification, now: float = T0) -> list[int]:
    before = {item.id for item in store.claim_due(now + 1e9, 10_000)}
    store.commit_tick(EvalState(), list(notifications), now=now)
    return sorted({item.id for item in store.claim_due(now + 1e9, 10_000)} - before)


def test_claimed_items_come_oldest_first_and_decode_to_what_was_enqueued(
    store: StateStore,
) -> None:
    first, second = note("ops", fired()), note("ops", resolved(at=T0 + 15), at=T0 + 15)
    enqueue(store, first)
    enqueue(store, second, now=T0 + 15)
    items = store.claim_due(T0 + 15)
    assert [item.notification() for item in items] == [first, second]
    assert [(i.attempts, i.created_at) for i in items] == [(0, T0), (0, T0 + 15)]
    assert store.claim_due(T0 - 1) == []  # nothing is due before it was created


def test_claiming_writes_nothing(store: StateStore) -> None:
    enqueue(store, note("ops"))
    assert store.claim_due(T0) == store.claim_due(T0)


def test_a_waiting_retry_holds_back_later_items_of_the_same_notifier_only(
    store: StateStore,
) -> None:
    a1, b1 = enqueue(store, note("a"), note("b"))
    (a2,) = enqueue(store, note("a", resolved(at=T0 + 15)), now=T0 + 15)
    assert store.mark_retry(a1, "HTTP 500", T0 + 60)
    assert [i.id for i in store.claim_due(T0 + 30)] == [b1]
    assert store.next_attempt_at() == T0  # b's head is due; a's later item does not count
    assert store.mark_delivered(b1, ok("b"), T0 + 30)
    # a2 was due long ago, but a's head waits until T0+60.
    assert store.next_attempt_at() == T0 + 60
    assert [i.id for i in store.claim_due(T0 + 59)] == []
    assert [i.id for i in store.claim_due(T0 + 60)] == [a1, a2]
    assert store.mark_dead(a1, "rejected", T0 + 61)
    assert [i.id for i in store.claim_due(T0 + 61)] == [a2]


def test_claims_respect_the_limit(store: StateStore) -> None:
    ids = enqueue(store, *(note(f"n{i}") for i in range(5)))
    assert [i.id for i in store.claim_due(T0, limit=2)] == ids[:2]


def test_marks_apply_to_pending_items_only(store: StateStore) -> None:
    (item,) = enqueue(store, note("ops"))
    assert store.mark_delivered(item, ok("ops"), T0 + 1) is True
    assert store.mark_delivered(item, ok("ops"), T0 + 2) is False
    assert store.mark_retry(item, "late", T0 + 9) is False
    assert store.mark_dead(item, "late", T0 + 9) is False
    assert store.mark_delivered(12345, ok("ops"), T0) is False
    assert store.next_attempt_at() is None


def test_the_log_records_what_was_sent_and_each_urls_result(
    store: StateStore, tmp_path: Path
) -> None:
    sent, dropped = enqueue(store, note("ops", fired(target="api")), note("pager"))
    result = DeliveryResult.from_urls(
        "ops",
        (
            UrlResult(url="json://hooks.example/***", ok=True, detail="200"),
            UrlResult(url="mailto://***@example.com", ok=True, detail="250"),
        ),
    )
    store.mark_retry(sent, "HTTP 500", T0 + 1)
    store.mark_delivered(sent, result, T0 + 2)
    store.mark_dead(dropped, "rejected: HTTP 400", T0 + 3)
    with raw(tmp_path / "state.db") as conn:
        rows = conn.execute(
            "SELECT outbox_id, notifier, at, outcome, attempts, alerts, urls, detail"
            " FROM notification_log ORDER BY id"
        ).fetchall()
    assert [r[:5] for r in rows] == [
        (sent, "ops", T0 + 2, "delivered", 2),
        (dropped, "pager", T0 + 3, "dead", 0),
    ]
    assert json.loads(rows[0][5]) == [
        {"event": "firing", "rule": "rss-high", "severity": "critical", "labels": {"target": "api"}}
    ]
    assert [(u["url"], u["ok"], u["detail"]) for u in json.loads(rows[0][6])] == [
        ("json://hooks.example/***", True, "200"),
        ("mailto://***@example.com", True, "250"),
    ]
    assert rows[1][7] == "rejected: HTTP 400"


def test_which_urls_an_item_reached_is_kept_with_its_retry(
    store: StateStore, tmp_path: Path
) -> None:
    (item,) = enqueue(store, note("ops"))
    assert store.url_progress(item) is None  # never tried
    reached = UrlResult(url="json://a", ok=True, detail="delivered", index=0)
    failed = UrlResult(url="json://b", ok=False, detail="HTTP 500", retryable=True, index=1)
    progress = UrlProgress(
        fingerprint="0123abcd", outcome=DeliveryResult.from_urls("ops", (reached, failed))
    )
    assert store.mark_retry(item, "json://b: HTTP 500", T0 + 5, progress=progress)
    assert store.url_progress(item) == progress
    assert progress.owed == {1}

    with raw(tmp_path / "state.db") as conn:
        conn.execute("""UPDATE outbox SET url_results = '[{"url": 7}]'""")
    # Unreadable counts as unknown: the next try goes to every URL, not to none.
    assert store.url_progress(item) is None
    assert store.mark_retry(item, "raised", T0 + 9)  # a try that learnt nothing forgets
    assert scalar(tmp_path / "state.db", "SELECT url_fingerprint FROM outbox") == ""
    assert store.url_progress(item) is None


def test_status_reports_backlog_and_newest_dead_letters(store: StateStore) -> None:
    ids = enqueue(store, *(note(f"n{i}") for i in range(5)))
    store.commit_tick(EvalState(), [note("late")], now=T0 + 10)
    store.mark_delivered(ids[0], ok("n0"), T0 + 1)
    for offset, item in enumerate(ids[1:4], start=2):
        store.mark_dead(item, f"reason {item}", T0 + offset)
    store.add_silence(matchers={"target": "x"}, starts=T0, ends=T0 + 60, now=T0)

    counts = store.outbox_counts()
    assert (counts.backlog, counts.oldest_pending_at, counts.dead_total) == (2, T0, 3)
    status = store.status(T0 + 20, dead_letters=2)
    assert (status.backlog, status.oldest_pending_at) == (2, T0)
    assert status.dead_total == 3
    assert [d.id for d in status.dead_letters] == [ids[3], ids[2]]
    assert status.dead_letters[0].reason == f"reason {ids[3]}"
    assert len(status.silences) == 1
    assert status.alerts == ()


def test_prune_removes_finished_items_only(store: StateStore, tmp_path: Path) -> None:
    done, dead, waiting = enqueue(store, note("a"), note("b"), note("c"))
    store.mark_delivered(done, ok("a"), T0 + 1)
    store.mark_dead(dead, "gone", T0 + 2)
    assert store.prune(T0 + 1) == 0
    assert store.prune(T0 + 3) == 4  # two outbox rows and their two log rows
    assert [i.id for i in store.claim_due(T0 + 3)] == [waiting]
    assert scalar(tmp_path / "state.db", "SELECT count(*) FROM outbox") == 1


def test_a_committing_thread_and_a_delivering_thread_lose_nothing(store: StateStore) -> None:
    ticks = 200
    finished = threading.Event()

    def scheduler() -> None:
        try:
            for tick in range(ticks):
                store.commit_tick(EvalState(), [note("ops", at=T0 + tick)], now=T0 + tick)
        finally:
            finished.set()

    def deliverer() -> list[int]:
        delivered: list[int] = []
        while True:
            done = finished.is_set()  # read before claiming, so the last tick is seen
            for item in store.claim_due(T0 + ticks):
                assert store.mark_delivered(item.id, ok("ops"), T0 + ticks)
                delivered.append(item.id)
            if done and store.next_attempt_at() is None:
                return delivered

    with ThreadPoolExecutor(max_workers=2) as pool:
        scheduling = pool.submit(scheduler)
        delivering = pool.submit(deliverer)
        scheduling.result(timeout=60)  # re-raises whatever failed in the thread
        delivered = delivering.result(timeout=60)
    assert len(delivered) == ticks == len(set(delivered))
    assert store.status(T0 + ticks).backlog == 0
