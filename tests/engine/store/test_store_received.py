"""`StateStore.enqueue_once`: the relay's de-duplicated enqueue, atomic and pruned."""

from __future__ import annotations

from typing import TYPE_CHECKING

from store_kit import T0, note, scalar

from memalert.engine.store.state import StateStore

if TYPE_CHECKING:
    from pathlib import Path


def test_the_same_key_within_the_window_is_enqueued_once(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    woken: list[int] = []
    with StateStore(path) as store:
        store.subscribe(lambda: woken.append(1))
        assert store.enqueue_once("k1", note("hook"), now=T0, window=60)
        assert not store.enqueue_once("k1", note("hook"), now=T0 + 59, window=60)
        assert store.enqueue_once("k2", note("hook"), now=T0 + 59, window=60)
        assert store.enqueue_once("k1", note("hook"), now=T0 + 61, window=60)
        assert store.outbox_counts().backlog == 3
    assert woken == [1, 1, 1]  # the duplicate woke no delivery
    assert scalar(path, "SELECT count(*) FROM received_webhooks") == 2


def test_old_keys_are_pruned_with_the_outbox(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        store.enqueue_once("old", note("hook"), now=T0, window=60)
        store.enqueue_once("new", note("hook"), now=T0 + 100, window=60)
        assert store.prune(T0 + 50) == 1
    assert scalar(path, "SELECT key FROM received_webhooks") == "new"
