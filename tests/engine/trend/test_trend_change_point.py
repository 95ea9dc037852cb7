"""The change point that lets a young life's growth skip the wait must be measured.

`is_change_point` decides whether growth begins after a stable stretch of the
floor. Three noisy floors can look flat by chance in the middle of a steady
rise; the stretch's slope must be below the share of the growth that follows
with its own uncertainty, extended back when `stable_seconds` cannot tell.
"""

from __future__ import annotations

from memtraces import HOUR, MB, T0

from memalert.engine.trend.assess import Context, is_change_point
from memalert.engine.trend.params import DEFAULT_PARAMS

SEGMENT = DEFAULT_PARAMS.segment_seconds


def context(floors: list[float], jitter: float) -> Context:
    times = [T0 + (i + 0.5) * SEGMENT for i in range(len(floors))]
    return Context(
        times=times,
        floors=floors,
        base=0,
        jitter=jitter,
        age=len(floors) * SEGMENT,
        carried=False,
        params=DEFAULT_PARAMS,
        new_high=1.0,
    )


def test_three_flat_floors_inside_a_noisy_steady_rise_are_not_a_change_point() -> None:
    # 50 MB/h from the start, floors jittering by 20 MB; floors 8-10 happen to
    # be level. The window from floor 11 rises at 50 MB/h.
    per_segment = 50 * MB * SEGMENT / HOUR
    floors = [per_segment * i for i in range(8)]
    floors += [per_segment * 8] * 3
    floors += [per_segment * (i - 2) for i in range(11, 20)]
    slope = 50 * MB / HOUR

    assert not is_change_point(context(floors, jitter=20 * MB), 11, slope)
    # With a jitter small enough for three floors to tell, they are stable.
    assert is_change_point(context(floors, jitter=0.1 * MB), 11, slope)


def test_a_long_noisy_flat_stretch_is_a_change_point_once_it_can_tell() -> None:
    # Flat for 3 h with floors jittering by 5 MB, then growth at 40 MB/h: 45
    # min of such floor cannot tell, 3 h can.
    flat = [5 * MB * (1 if i % 2 else -1) for i in range(12)]
    rise = [40 * MB * SEGMENT / HOUR * k for k in range(1, 9)]
    assert is_change_point(context(flat + rise, jitter=5 * MB), 12, 40 * MB / HOUR)
    # Three hours of the same floor rising at a third of the growth are not stable.
    tilted = [v + 40 * MB / 3 * SEGMENT / HOUR * i for i, v in enumerate(flat)]
    assert not is_change_point(context(tilted + rise, jitter=5 * MB), 12, 40 * MB / HOUR)
