"""The JSON Lines file notifier: one object per notification, appended, owner-only."""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING

from notifier_kit import MiB, fired, note, resolved

from memalert.engine.core.model import NotifierConfig
from memalert.notifiers.file import JsonLinesFileNotifier
from memalert.notifiers.registry import build_notifier

if TYPE_CHECKING:
    from pathlib import Path


def test_appends_one_json_object_per_notification_to_a_0600_file(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    notifier = build_notifier(NotifierConfig(name="log", urls=(path.as_uri(),)), env={})

    first = notifier.send(note(fired(), notifier="log"))
    second = notifier.send(note(resolved(), resolved(target="db"), notifier="log"))

    assert first.ok
    assert second.ok
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [len(r["events"]) for r in records] == [1, 2]
    assert records[0]["notifier"] == "log"
    assert records[0]["events"][0]["value"] == 150 * MiB
    assert records[1]["status"] == "resolved"
    assert first.urls[0].url == path.as_uri()


def test_fsync_option_is_read_from_the_url(tmp_path: Path) -> None:
    path = tmp_path / "synced.jsonl"
    notifier = build_notifier(
        NotifierConfig(name="log", urls=(f"{path.as_uri()}?fsync=yes",)), env={}
    )
    assert isinstance(notifier, JsonLinesFileNotifier)
    assert notifier.path == path
    assert notifier.send(note(fired())).ok
    assert path.read_text().count("\n") == 1


def test_a_missing_directory_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir.jsonl"
    result = JsonLinesFileNotifier("log", path).send(note(fired()))
    assert not result.ok
    assert "cannot append" in result.error


def test_a_directory_in_place_of_the_file_is_not_retryable(tmp_path: Path) -> None:
    result = JsonLinesFileNotifier("log", tmp_path).send(note(fired()))
    assert not result.ok
    assert not result.retryable


def test_a_send_that_leaves_out_its_url_appends_nothing(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    notifier = JsonLinesFileNotifier("log", path)
    skipped = notifier.send(note(fired()), only=frozenset({1}))
    assert (skipped.ok, skipped.urls, path.exists()) == (True, (), False)
    assert notifier.send(note(fired()), only=frozenset({0})).ok
    assert path.read_text().count("\n") == 1
    assert notifier.destinations.urls == (path.as_uri(),)
