"""The short-run leak verdict of `memalert exec`: floors of a whole run, judged at its end."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memalert.engine.trend.short_run import MAX_BUCKETS, ShortRunHistory, judge

MIB = 2**20
STEP = 0.25


def run(shape: Sequence[float], *, seed: int = 1, noise: float = 0.2 * MIB) -> ShortRunHistory:
    rng = random.Random(seed)
    history = ShortRunHistory(width=STEP)
    for i, value in enumerate(shape):
        history.add(1000.0 + i * STEP, max(0.0, value + rng.gauss(0, noise)))
    return history


def steps(seconds: float) -> range:
    return range(int(seconds / STEP))


def test_a_steady_leak_after_a_warm_up_is_a_leak_with_its_size() -> None:
    shape = [50 * MIB + 2 * MIB * i * STEP for i in steps(60)]  # 2 MiB/s for a minute
    verdict = judge(run(shape))
    assert verdict.leaking
    assert verdict.confidence >= 0.5
    # The judged part is the middle ~72% of the run: about 86 MiB of it.
    assert 70 * MIB < verdict.leak_bytes < 100 * MIB


def test_a_cache_that_warms_up_and_then_holds_is_not_a_leak() -> None:
    shape = [50 * MIB + 80 * MIB * (1 - math.exp(-i * STEP / 4)) for i in steps(60)]
    verdict = judge(run(shape))
    assert not verdict.leaking
    assert verdict.confidence < 0.5


def test_a_gc_saw_tooth_over_a_flat_floor_is_not_a_leak() -> None:
    shape = [80 * MIB + 60 * MIB * ((i * STEP) % 5) / 5 for i in steps(90)]
    assert not judge(run(shape)).leaking


def test_a_saw_tooth_over_a_rising_floor_is_a_leak() -> None:
    shape = [80 * MIB + 60 * MIB * ((i * STEP) % 5) / 5 + MIB * i * STEP for i in steps(90)]
    assert judge(run(shape)).leaking


def test_one_allocation_that_holds_is_a_step_not_a_leak() -> None:
    shape = [50 * MIB + (100 * MIB if i * STEP > 30 else 0) for i in steps(60)]
    verdict = judge(run(shape))
    assert not verdict.leaking
    assert "step" in verdict.reason


def test_teardown_at_exit_does_not_hide_a_leak() -> None:
    shape = [50 * MIB + 2 * MIB * i * STEP for i in steps(60)] + [5 * MIB] * 2
    assert judge(run(shape)).leaking


def test_a_slow_teardown_longer_than_the_teardown_share_does_not_hide_a_leak() -> None:
    # 13 s of leaking, then 3 s of freeing it (tracemalloc on a loaded machine
    # frees slowly): the fall is exit, not a falling floor.
    leak = [50 * MIB + 18 * MIB * i * STEP for i in steps(13)]
    fall = [leak[-1] * (1 - (k + 1) / 12) + 5 * MIB for k in range(12)]
    verdict = judge(run(leak + fall, noise=0.0))
    assert verdict.leaking, verdict.reason


def test_a_bounded_run_that_frees_at_exit_stays_bounded() -> None:
    level = [80 * MIB] * len(steps(13))
    fall = [80 * MIB * (1 - (k + 1) / 12) for k in range(12)]
    assert not judge(run(level + fall)).leaking


def test_a_run_too_short_to_judge_says_so() -> None:
    verdict = judge(run([50 * MIB + MIB * i for i in range(8)]))
    assert not verdict.leaking
    assert "too short" in verdict.reason


def test_small_growth_under_the_minimum_is_not_a_leak() -> None:
    shape = [50 * MIB + 0.05 * MIB * i * STEP for i in steps(60)]  # 3 MiB in a minute
    assert not judge(run(shape, noise=0)).leaking


def test_history_stays_bounded_however_long_the_run() -> None:
    history = ShortRunHistory(width=STEP)
    for i in range(20_000):
        history.add(float(i) * STEP, 50 * MIB + i)
    assert len(history.buckets) <= MAX_BUCKETS
    assert judge(history).leaking is False  # 20 KB over the run: far under the minimum


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
        max_size=200,
    )
)
def test_any_input_never_raises(points: list[tuple[float, float]]) -> None:
    history = ShortRunHistory(width=STEP)
    for ts, value in points:
        history.add(ts, value)
    verdict = judge(history)
    assert 0.0 <= verdict.confidence <= 1.0
    assert verdict.leaking == (verdict.confidence >= 0.5)


@pytest.mark.parametrize("seed", range(20))
def test_bounded_noise_alone_never_is_a_leak(seed: int) -> None:
    shape = [100 * MIB] * 240
    assert not judge(run(shape, seed=seed, noise=3 * MIB)).leaking
