"""Bounded growth that looks like a leak for hours: the detector must stay quiet,
and must not let a bounded warm-up hide the leak that follows it.

Each case is a long synthetic series (longer than memtraces' 12 hours: these
shapes need a day or more to show what they are) replayed through the pure
`update`, over a few seeds of noise.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from memtraces import HOUR, MB, STEP, T0

from memalert.engine.trend.assess import new_high_share, steady_share
from memalert.engine.trend.state import TrendState, update

SEEDS = (0, 1, 2)


def declared_at(
    shape: Callable[[float], float], hours: float, seed: int, noise: float
) -> list[float]:
    """Hours at which a leak is declared on `shape` (seconds -> bytes) plus gaussian noise."""
    rng = random.Random(seed)
    state = TrendState()
    out = []
    for i in range(int(hours * HOUR / STEP)):
        t = i * STEP
        state, result = update(state, T0 + t, shape(t) + rng.gauss(0.0, noise))
        if result.leak_bytes > 0:
            out.append(t / HOUR)
    return out


def test_new_high_counts_only_the_climb_above_the_level_held_before_the_last_fall() -> None:
    fall_and_climb = [*(100.0 - i for i in range(11)), *(90.0 + 4 * i for i in range(1, 16))]

    # Trough 90, earlier high 100, now 150: 50 of the 60 climbed are new.
    assert new_high_share(fall_and_climb, margin=3.0) == pytest.approx(50 / 60)
    # However far up the climb a window begins, the earlier high is 100, not
    # the climb's own lower part: back at 100 nothing is new.
    assert new_high_share([*fall_and_climb[:-13], 100.0], margin=3.0) == pytest.approx(0.0)
    # A steady rise with jitter below the margin has no earlier high at all.
    jittery = [10.0 * i + (1.0 if i % 2 else -1.0) for i in range(30)]
    assert new_high_share(jittery, margin=3.0) == 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_a_daily_cycle_seen_from_past_its_crest_is_not_a_leak_on_its_next_upswing(
    seed: int,
) -> None:
    # The series starts 3 h past the crest: the first upswing (hours 9-21)
    # climbs back to the level the life held before its fall and a little
    # above it; most of that climb is not new memory.
    def shape(t: float) -> float:
        phase = 2 * math.pi * (t + 3 * HOUR) / (24 * HOUR)
        return 1200 * MB + 140 * MB * (1 + math.cos(phase))

    assert declared_at(shape, hours=30, seed=seed, noise=3 * MB) == []


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fill", "tau_hours"),
    # A gentle fill, and a steep one whose first half hour rises more than the
    # step: the step, not the fill's start, is what must be cut out.
    [(200 * MB, 5.0), (300 * MB, 3.0)],
)
def test_a_high_water_mark_step_on_a_saturating_fill_does_not_lift_the_saturation(
    seed: int, fill: float, tau_hours: float
) -> None:
    # Fragmentation approaching its plateau, then one 25 MB ratchet late on
    # the plateau: the longest window still bends down; the step is not the
    # start of a new trend.
    def shape(t: float) -> float:
        grown = fill * (1 - math.exp(-t / (tau_hours * HOUR)))
        return 800 * MB + grown + (25 * MB if t > 22 * HOUR else 0.0)

    assert declared_at(shape, hours=27, seed=seed, noise=1 * MB) == []


def test_steady_share_is_the_share_of_the_lifes_growth_its_rate_explains() -> None:
    times = [900.0 * i for i in range(9)]  # two hours of segment floors
    linear = [100 * MB + 5 * MB * t / HOUR for t in times]
    assert steady_share(times, linear, 5 * MB / HOUR, 900.0) == pytest.approx(2.25 / 2)
    filled = [100 * MB, *([200 * MB + 1 * MB * t / HOUR for t in times[1:]])]
    assert steady_share(times, filled, 1 * MB / HOUR, 900.0) < 0.05
    assert steady_share(times, [100 * MB] * 9, 0.0, 900.0) == math.inf


@pytest.mark.parametrize("seed", SEEDS)
def test_a_heap_sized_to_its_max_then_a_few_last_expansions_is_not_a_leak(seed: int) -> None:
    # A JVM: 220 MB in its first hour, then expansion steps that hold (19, 6,
    # 1.5 and 12 MB over four hours) and a floor still to the page. The steps
    # are spread out, but they are the tail of the life's fill: their rate
    # over the life explains a sixth of what it grew.
    steps = ((1.6, 19 * MB), (3.6, 6 * MB), (4.9, 1.5 * MB), (5.9, 12 * MB))

    def shape(t: float) -> float:
        heap = 220 * MB * (1 - math.exp(-t / (0.3 * HOUR)))
        return 45 * MB + heap + sum(size for at, size in steps if t > at * HOUR)

    assert declared_at(shape, hours=14, seed=seed, noise=0.02 * MB) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_a_request_leak_after_an_allocator_warm_up_is_found_once_the_life_is_settled(
    seed: int,
) -> None:
    # 7 MB/h kept per request on top of a 15 MB warm-up (tau 2 h): the warm-up
    # bends the life's longest window down for good, which vetoed the leak for
    # ever. Past `settled_life_seconds` steady growth is no longer vetoed.
    def shape(t: float) -> float:
        return 12 * MB + 15 * MB * (1 - math.exp(-t / (2 * HOUR))) + 7 * MB * t / HOUR

    declared = declared_at(shape, hours=14, seed=seed, noise=0.3 * MB)
    assert declared
    assert 9.0 <= declared[0] <= 11.0
