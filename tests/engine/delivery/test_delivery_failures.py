"""What the state file can do to delivery: rows that cannot be read, a disk that is full.

A row whose payload cannot be read is a dead letter and never holds up the rows
behind it; a full disk is one log line naming it, never a traceback, and
/health says what fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from store_kit import T0, fired, note, raw, worker_for

from memalert.engine.alerting.evaluate import EvalState
from memalert.engine.delivery.worker import DeliveryWorker
from memalert.engine.http.views import health_view
from memalert.engine.live.snapshot import EngineSnapshot
from memalert.engine.store.state import StateStore, StateStoreError
from memalert.engine.testing import FakeClock
from memalert.notifiers.testing import RecordingNotifier

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


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


GOOD_EVENT = '{"event":"firing","at":1,"rule":"r","metric":"m","severity":"warning","labels":{}}'


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("42", id="a-number-column"),
        pytest.param("x'00ff'", id="a-blob"),
        pytest.param("'" + "[" * 100_000 + "'", id="nested-past-the-recursion-limit"),
        pytest.param(
            """'{"version":1,"notifier":"ops","at":1,"events":[{"event":["firing"]}]}'""",
            id="an-unhashable-event-kind",
        ),
        pytest.param(
            "'" + GOOD_EVENT.replace('"at":1', '"at":' + "9" * 400) + "'",
            id="an-integer-beyond-float",
        ),
    ],
)
def test_an_unreadable_payload_is_a_dead_letter_and_the_next_goes_out(
    store: StateStore, clock: FakeClock, path: Path, payload: str
) -> None:
    ops = RecordingNotifier("ops")
    worker = worker_for(store, clock, {"ops": ops})
    store.commit_tick(EvalState(), [note("ops", fired(target="a"))], now=clock())
    store.commit_tick(EvalState(), [note("ops", fired(target="b"))], now=clock())
    with raw(path) as conn:
        first = conn.execute("SELECT min(id) FROM outbox").fetchone()[0]
        conn.execute(f"UPDATE outbox SET payload = {payload} WHERE id = ?", (first,))  # noqa: S608
    assert worker.run_once(clock()) == 1
    (dead,) = store.status(clock()).dead_letters
    assert dead.reason.startswith("unreadable outbox entry: ")
    assert [n.events[0].labels["target"] for n in ops.sent] == ["b"]


def fill_the_disk(path: Path) -> None:
    """SQLite's own quota: no page beyond those in use, as on a full disk (SQLITE_FULL)."""
    with raw(path) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")


def full_store(path: Path) -> StateStore:
    store = StateStore(path)
    conn = store._connection()
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    return store


def test_a_full_disk_is_named_in_the_error(path: Path, clock: FakeClock) -> None:
    StateStore(path).close()
    many = [note("ops", fired(target=str(i) * 2000)) for i in range(50)]
    with full_store(path) as store, pytest.raises(StateStoreError) as caught:
        store.commit_tick(EvalState(), many, now=clock())
    assert "disk full" in str(caught.value)


def test_a_failing_state_file_is_one_log_line_without_traceback(
    store: StateStore,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = DeliveryWorker(store, {"ops": RecordingNotifier("ops")}, clock=clock)

    def full(*args: object, **kwargs: object) -> None:
        raise StateStoreError("state file s.db: reading the outbox failed: disk full")

    monkeypatch.setattr(store, "head_attempts", full)
    worker._look()
    (record,) = [r for r in caplog.records if r.name == "memalert.delivery"]
    assert record.exc_info is None
    assert "disk full" in record.getMessage()
    assert "Traceback" not in caplog.text


def test_health_says_what_fails_when_ticks_fail() -> None:
    error = "StateStoreError: state file /s.db: committing the tick failed: disk full"
    snapshot = EngineSnapshot(
        started_at=T0, interval=15.0, last_tick_at=T0, last_tick_error=error, ticks_total=3
    )
    status, body = health_view(snapshot, T0 + 600)
    assert status == 503
    assert body["status"] == "unhealthy"
    (reason,) = body["reasons"]
    assert "disk full" in reason
    assert reason.startswith("ticks fail")


def test_health_still_says_no_tick_when_none_failed() -> None:
    snapshot = EngineSnapshot(started_at=T0, interval=15.0, last_tick_at=T0)
    _, body = health_view(snapshot, T0 + 600)
    (reason,) = body["reasons"]
    assert reason.startswith("no tick for 600s")
