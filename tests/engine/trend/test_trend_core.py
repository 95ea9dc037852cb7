"""The pure trend core: purity, bounded state, restarts and glitches, robust statistics."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memtraces import HOUR, MB, STEP, T0

from memalert.engine.trend.params import TrendParams
from memalert.engine.trend.state import RECENT_HIGHS, TrendState, update
from memalert.engine.trend.stats import median, theil_sen_slope


def feed(state: TrendState, values: list[float], start: float = T0) -> TrendState:
    for i, value in enumerate(values):
        state, _ = update(state, start + i * STEP, value)
    return state


def noisy_leak(hours: float, rate: float, base: float = 300 * MB, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    return [
        base + rate * i * STEP / HOUR + rng.gauss(0, MB) for i in range(int(hours * HOUR / STEP))
    ]


def test_update_is_pure_same_input_same_output_and_the_state_is_frozen() -> None:
    state = feed(TrendState(), noisy_leak(8, 20 * MB))

    first = update(state, T0 + 8 * HOUR, 460 * MB, 1e9)
    second = update(state, T0 + 8 * HOUR, 460 * MB, 1e9)

    assert first == second
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.restarts = 5  # type: ignore[misc]


def test_state_stays_bounded_however_long_the_history() -> None:
    params = TrendParams()
    state = TrendState()
    rng = random.Random(4)
    for i in range(int(72 * HOUR / 5)):  # three days at 5 s, more often than the tracker ticks
        state, _ = update(state, T0 + i * 5, 300 * MB + rng.gauss(0, MB))

    assert len(state.lows) <= params.history_buckets
    assert len(state.highs) <= RECENT_HIGHS
    assert state.open is not None


def test_a_single_low_reading_is_a_glitch_not_a_restart() -> None:
    state = feed(TrendState(), noisy_leak(8, 20 * MB))
    ts = T0 + 8 * HOUR
    before = update(state, ts, 460 * MB)[1]

    state, _ = update(state, ts, 1 * MB)
    state, result = update(state, ts + STEP, 460 * MB)

    assert result.restarts == 0
    assert result.leak_bytes == before.leak_bytes > 0
    assert min(state.lows) > 100 * MB


def test_a_drop_confirmed_by_the_next_sample_is_a_restart() -> None:
    state = feed(TrendState(), noisy_leak(8, 20 * MB))
    ts = T0 + 8 * HOUR
    assert update(state, ts, 460 * MB)[1].leak_bytes > 0

    state, _ = update(state, ts, 300 * MB)
    state, result = update(state, ts + STEP, 300 * MB)

    assert result.restarts == 1
    assert result.leak_bytes == 0
    assert len(state.lows) == 0  # a new life: nothing of the old one is judged


def test_time_to_limit_counts_from_the_peaks_not_the_floor() -> None:
    # A saw-tooth 50 MB tall on a 20 MB/h leak: the peaks hit the limit first.
    values = [
        300 * MB + 20 * MB * i * STEP / HOUR + 50 * MB * ((i % 40) / 40)
        for i in range(int(9 * HOUR / STEP))
    ]
    state = feed(TrendState(), values)
    ts = T0 + len(values) * STEP

    _, result = update(state, ts, values[-1] - 50 * MB, 1000 * MB)

    peak = max(values[-120:])
    assert result.time_to_limit_seconds == pytest.approx(
        (1000 * MB - peak) / (20 * MB) * HOUR, rel=0.15
    )


def test_time_to_limit_is_zero_once_the_peaks_are_past_the_limit() -> None:
    state = feed(TrendState(), noisy_leak(8, 30 * MB))

    _, result = update(state, T0 + 8 * HOUR, 540 * MB, 400 * MB)

    assert result.time_to_limit_seconds == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=600.0),
            st.one_of(
                st.floats(min_value=0, max_value=1e12),
                st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0]),
            ),
        ),
        min_size=1,
        max_size=300,
    ),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_any_input_gives_sane_results_and_never_raises(
    steps: list[tuple[float, float]], limit: float | None
) -> None:
    state = TrendState()
    ts = T0
    for gap, value in steps:
        ts += gap
        state, result = update(state, ts, value, limit)
        assert result.leak_bytes >= 0
        assert 0 <= result.confidence <= 1
        assert result.time_to_limit_seconds is None or result.time_to_limit_seconds >= 0
        assert math.isfinite(result.growth_bytes_per_hour)


def test_median_and_theil_sen_shrug_off_outliers() -> None:
    times = [float(t) for t in range(20)]
    values = [2.0 * t + 1 for t in times]
    values[3] = values[11] = values[17] = 1e9  # batch spikes caught in the floor

    assert theil_sen_slope(times, values) == pytest.approx(2.0)
    assert median([5.0, 1.0, 3.0, 2.0]) == 2.5
    assert theil_sen_slope([1.0, 1.0], [4.0, 6.0]) == 0.0
    assert median([]) == 0.0  # callers check their counts first
