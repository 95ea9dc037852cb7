"""Differential: `dry-run` lists exactly the notifications a live AlertEngine delivers.

A live engine, driven by a FakeClock and fed the observations by a tracker
that replays them, enqueues and delivers to recording notifiers; dry-run
replays the same file. Both must name the same notifications (notifier, time,
events) in the same order: repeats every `repeat_interval`, escalation,
resolution, and the re-notification of an alert that fired during a silence.
"""

from __future__ import annotations

import json
from itertools import groupby
from typing import TYPE_CHECKING, Any

from memalert.engine.cli.main import main
from memalert.engine.core.units import rfc3339
from memalert.engine.live.alert_engine import AlertEngine
from memalert.engine.replay.observations import read_observations
from memalert.engine.sources.tracker import MemoryTracker
from memalert.engine.testing import FakeClock
from memalert.notifiers.testing import RecordingNotifier

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import pytest

    from memalert.engine.alerting.routing import Notification
    from memalert.engine.core.model import Sample, TargetSpec

MiB = 2**20
T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z
INTERVAL = 15.0
TICKS = 48

RULES = f"""\
version: 1
interval: 15s
repeat_interval: 3m
rules:
  - name: rss
    metric: rss_bytes
    above: {{warning: 100MiB, critical: 200MiB}}
    for: 30s
    summary: "{{{{ target }}}} at {{{{ value | bytes }}}}"
routes:
  - match: {{severity: critical}}
    notify: [pager]
    continue: true
  - match: {{target: "*"}}
    notify: [hook]
notifiers:
  hook: {{urls: ["console://"]}}
  pager: {{urls: ["console://"]}}
silences:
  - match: {{target: batch}}
    starts: "{rfc3339(T0 + 60)}"
    ends: "{rfc3339(T0 + 7 * 60)}"
    comment: migration
"""


def _api_mib(tick: int) -> float:
    if tick < 2 or tick >= 36:
        return 50
    return 250 if 14 <= tick < 24 else 150


def _batch_mib(tick: int) -> float:
    return 150 if 6 <= tick < 42 else 10


def write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    observations = tmp_path / "obs.jsonl"
    lines = [
        json.dumps({"ts": T0 + tick * INTERVAL, "target": target, "metrics": {"rss_bytes": mib}})
        for tick in range(TICKS)
        for target, mib in (("api", _api_mib(tick) * MiB), ("batch", _batch_mib(tick) * MiB))
    ]
    observations.write_text("\n".join(lines) + "\n")
    return rules, observations


class ReplayedTracker(MemoryTracker):
    """Hands the engine the observations stamped with the tick's time, as if sampled then."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        super().__init__()
        self._samples = samples

    def sample_targets(self, targets: Sequence[TargetSpec], now: float) -> list[Sample]:
        del targets
        return [s for s in self._samples if s.ts == now]


Sent = tuple[str, str, tuple[tuple[str, str, str, tuple[tuple[str, str], ...], float | None], ...]]


def _sent(note: Notification) -> Sent:
    return (
        note.notifier,
        rfc3339(note.at),
        tuple(
            (e.event, e.rule, e.severity.label, tuple(sorted(e.labels.items())), e.value)
            for e in note.events
        ),
    )


def live_notifications(tmp_path: Path, rules: Path, observations: Path) -> list[Sent]:
    notifiers = {name: RecordingNotifier(name) for name in ("hook", "pager", "console")}
    clock = FakeClock(T0)
    with AlertEngine.from_files(
        [rules],
        state_path=tmp_path / "state.db",
        env={},
        clock=clock,
        tracker=ReplayedTracker(read_observations(observations)),
        notifiers=notifiers,
        sleep=clock.advance,
    ) as engine:
        for tick in range(TICKS):
            now = T0 + tick * INTERVAL
            clock.set(now)
            engine.tick(now)
            engine.delivery.run_once(now)
    sent = [_sent(note) for notifier in notifiers.values() for note in notifier.sent]
    return sorted(sent, key=lambda s: s[:2])  # by notifier and time; stable: in send order


def dry_run_notifications(records: list[dict[str, Any]]) -> list[Sent]:
    """The notifications dry-run's JSON names: its events grouped by time and notifier."""
    sent: list[Sent] = []
    for at, group in groupby(records, key=lambda r: r["at"]):
        events = list(group)
        notifiers = dict.fromkeys(n for r in events for n in r["notify"])
        sent.extend(
            (
                name,
                at,
                tuple(
                    (
                        r["event"],
                        r["rule"],
                        r["severity"],
                        tuple(sorted(r["labels"].items())),
                        r["value"],
                    )
                    for r in events
                    if name in r["notify"]
                ),
            )
            for name in notifiers
        )
    return sorted(sent, key=lambda s: s[:2])


def test_dry_run_json_lists_what_the_live_engine_sends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, observations = write_inputs(tmp_path)
    live = live_notifications(tmp_path, rules, observations)

    assert (
        main(["dry-run", str(rules), "--observations", str(observations), "--format", "json"]) == 0
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert dry_run_notifications(records) == live
    kinds = {(name, event[0]) for name, _, events in live for event in events}
    # The scenario exercises what went missing: repeats (also the one after the silence).
    assert ("hook", "repeated") in kinds
    assert ("pager", "escalated") in kinds
    after_silence = [
        at
        for name, at, events in live
        for event in events
        if event[0] == "repeated" and ("target", "batch") in event[3]
    ]
    assert after_silence[0] == rfc3339(T0 + 7 * 60)


def test_dry_run_text_stamps_every_notification_with_its_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, observations = write_inputs(tmp_path)
    live = live_notifications(tmp_path, rules, observations)

    assert main(["dry-run", str(rules), "--observations", str(observations)]) == 0
    lines = capsys.readouterr().out.splitlines()

    shown = [line.split("  -> ", 1) for line in lines if "  -> " in line]
    assert sorted((name.split(":", 1)[0], at) for at, name in shown) == [
        (name, at) for name, at, _ in live
    ]
    assert f", {len(live)} notifications would be sent" in lines[-1]


GROUPED_RULES = RULES.replace(
    "    notify: [hook]\n",
    "    notify: [hook]\n    group_by: [rule]\n    group_wait: 30s\n    group_interval: 1m\n",
)


def test_dry_run_lists_the_group_notifications_the_live_engine_sends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Grouping over time through the outbox: same groups, times and alerts as dry-run."""
    rules, observations = write_inputs(tmp_path)
    rules.write_text(GROUPED_RULES)
    live = [
        (name, at, tuple((e[0], e[1], e[2], e[3]) for e in events))
        for name, at, events in live_notifications(tmp_path, rules, observations)
        if name == "hook"
    ]

    assert (
        main(["dry-run", str(rules), "--observations", str(observations), "--format", "json"]) == 0
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    replayed = [
        (
            r["notification"],
            r["at"],
            tuple(
                (a["event"], a["rule"], a["severity"], tuple(sorted(a["labels"].items())))
                for a in r["alerts"]
            ),
        )
        for r in records
        if r.get("notification") == "hook"
    ]
    assert replayed == live
    assert len(live) >= 3  # first notification, changes, resolutions
    # One notification per group flush, listing both targets' alerts together.
    assert any(len(events) == 2 for _, _, events in live)
