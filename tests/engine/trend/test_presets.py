"""Sensitivity presets trade how long the evidence must hold, never what counts as a leak.

A leak from a life's first sample has no change point before it, so each preset
declares it only once the life is `min_life_seconds` old (docs/leak-detection.md,
"Sensitivity presets"): `high` first, `low` last. Bounded patterns stay quiet at
every preset.
"""

from __future__ import annotations

import random

import pytest
from memtraces import GENERATORS, HOUR, MB, STEP, T0, make

from memalert.engine.trend.params import PRESETS, params_for
from memalert.engine.trend.state import TrendState, update

LIMIT = 8e9
NOT_LEAKS = sorted(k for k in GENERATORS if not k.startswith("leak_"))


def first_declared(values: list[float], sensitivity: str) -> float | None:
    """Hours from the first sample to the first `leak_bytes` > 0, or None."""
    params = params_for(sensitivity)
    state = TrendState()
    for i, value in enumerate(values):
        state, result = update(state, T0 + i * STEP, value, LIMIT, params=params)
        if result.leak_bytes > 0:
            return i * STEP / HOUR
    return None


def leak_from_the_start(hours: float = 14.0, rate: float = 20 * MB) -> list[float]:
    rng = random.Random(7)
    steps = int(hours * HOUR / STEP)
    return [400 * MB + rate * i * STEP / HOUR + rng.gauss(0, MB) for i in range(steps)]


def test_a_leak_from_a_lifes_start_waits_for_each_presets_min_life() -> None:
    values = leak_from_the_start()
    declared = {s: first_declared(values, s) for s in PRESETS}

    for sensitivity, hours in declared.items():
        assert hours is not None, sensitivity
        assert hours >= params_for(sensitivity).min_life_seconds / HOUR
    high, normal, low = declared["high"], declared["normal"], declared["low"]
    assert high is not None
    assert normal is not None
    assert low is not None
    assert high < normal < low


@pytest.mark.parametrize("sensitivity", sorted(PRESETS))
@pytest.mark.parametrize("kind", NOT_LEAKS)
def test_bounded_patterns_are_quiet_at_every_preset(kind: str, sensitivity: str) -> None:
    trace = make(kind, seed=0, hours=16.0)

    assert first_declared(list(trace.values), sensitivity) is None
