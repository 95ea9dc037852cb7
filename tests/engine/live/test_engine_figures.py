"""The engine's figures about itself and the snapshot it publishes with them."""

from __future__ import annotations

from store_kit import T0, ScriptedNotifier, note

from memalert.engine.live.figures import DURATIONS_KEPT, EngineFigures


def test_counts_carry_over_every_publish_and_a_good_tick_clears_the_error() -> None:
    figures = EngineFigures(started_at=T0, interval=15.0)
    figures.tick_missed()
    figures.tick_failed("OSError: disk full")
    failed = figures.latest()
    assert (failed.missed_ticks_total, failed.tick_errors_total) == (1, 1)
    assert failed.last_tick_error == "OSError: disk full"

    figures.tick_done(0.25)
    figures.publish(interval=15.0, last_tick_at=T0 + 15)
    published = figures.latest()
    assert (published.started_at, published.last_tick_at) == (T0, T0 + 15)
    assert (published.ticks_total, published.missed_ticks_total) == (1, 1)
    assert published.tick_errors_total == 1
    assert published.last_tick_error is None
    assert published.tick_durations == (0.25,)


def test_only_the_latest_durations_are_kept() -> None:
    figures = EngineFigures(started_at=T0, interval=15.0)
    for tick in range(DURATIONS_KEPT + 5):
        figures.tick_done(float(tick))
    figures.publish(interval=15.0)
    durations = figures.latest().tick_durations
    assert len(durations) == DURATIONS_KEPT
    assert durations[-1] == DURATIONS_KEPT + 4


def test_counting_notifiers_count_each_outcome_and_amend_keeps_the_counts() -> None:
    figures = EngineFigures(started_at=T0, interval=15.0)
    ops = figures.counting({"ops": ScriptedNotifier("ops", ["retry", "ok"])})["ops"]
    ops.send(note("ops"))
    ops.send(note("ops"))
    figures.publish(interval=15.0)
    figures.amend(silences=())
    assert figures.latest().notifications_total == {("ops", "failed"): 1, ("ops", "delivered"): 1}
