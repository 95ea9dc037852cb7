"""Bounded growth that looks like a leak for hours: the detector must stay quiet.

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

from memalert.engine.trend.assess import new_high_share
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
