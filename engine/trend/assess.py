"""Judge whether the floor of one target's current life is leaking.

`assess(buckets, params, previous)` looks at windows of the floor series that
end now (1 h, then each 1.5 times longer, up to the life's length) and asks of
each whether the floor rose in a way only a leak explains. Every criterion is
a *gate* with a threshold; a window passes when all gates pass. Each gate also
yields an evidence score in [0, 1] (0.5 exactly at its threshold) and a
window's confidence is its weakest gate's score, so `leak_confidence` >= 0.5
means "some window passes" and grows smoothly with the evidence.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from memalert.engine.trend.stats import median, theil_sen_slope

if TYPE_CHECKING:
    from memalert.engine.trend.params import TrendParams


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """The assessment cached in a target's state until its next bucket closes."""

    leaking: bool = False
    leak_bytes: float = 0.0
    growth_bytes_per_hour: float = 0.0
    confidence: float = 0.0
    onset: float | None = None
    last_passed: float = 0.0  # end of the last bucket at which some window passed


NO_VERDICT = Verdict()


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowEvidence:
    """How one window fared: its gates' evidence and what a leak there would mean."""

    start: float
    passed: bool
    confidence: float
    growth_bytes_per_hour: float
    gates: dict[str, float]  # gate name -> evidence score in [0, 1]


class FloorPoint(Protocol):
    """What assess needs of a bucket (memalert.engine.trend.state.Bucket)."""

    @property
    def start(self) -> float: ...
    @property
    def floor(self) -> float: ...
    @property
    def mature(self) -> bool: ...
    @property
    def noise(self) -> float: ...


def assess(
    buckets: Sequence[FloorPoint], params: TrendParams, previous: Verdict = NO_VERDICT
) -> Verdict:
    """The verdict for a life's closed buckets (oldest first).

    A leak already declared stays declared for `hold_seconds` after its last
    passing window: hysteresis, so one noisy bucket cannot resolve an alert
    that the next bucket would raise again.
    """
    # Until the life has filled a floor window, the floor is the minimum of
    # fewer samples and would make any warm-up look like a late, sudden rise.
    mature = [b for b in buckets if b.mature]
    if not mature:
        return NO_VERDICT
    ends = [b.start + params.bucket_seconds for b in mature]
    floors = [b.floor for b in mature]
    noises = [b.noise for b in mature]
    life = ends[-1] - ends[0]
    lengths = [w for w in params.windows_seconds if w <= life + params.bucket_seconds / 2]
    if not lengths:
        # Too young to judge: report how far the evidence has got, never a leak.
        lengths = [life]
    evidence = [
        e for w in lengths if (e := judge_window(ends, floors, noises, ends[-1] - w, params))
    ]
    if not evidence:
        return NO_VERDICT
    # A window that fails a gate has confidence below 0.5, so when nothing
    # passes the maximum stays below 0.5 too.
    confidence = max(e.confidence for e in evidence)
    passing = [e for e in evidence if e.passed]
    now = ends[-1]
    known_onset = (
        previous.onset if previous.onset is not None and previous.onset >= ends[0] else None
    )
    if not passing:
        held = previous.leaking and now - previous.last_passed < params.hold_seconds
        if not held or known_onset is None:
            return Verdict(confidence=confidence)
        return replace(
            previous,
            leak_bytes=max(0.0, _rise_since(ends, floors, known_onset)),
            confidence=confidence,
        )
    onset = min(e.start for e in passing)
    if previous.leaking and known_onset is not None:
        # The leak began no later than first thought: windows that pass come
        # and go, but its onset, and so the memory it holds, only moves back.
        onset = min(onset, known_onset)
    shortest = max(passing, key=lambda e: e.start)
    return Verdict(
        leaking=True,
        leak_bytes=max(0.0, _rise_since(ends, floors, onset)),
        # The most recent window that still proves the trend gives the current rate,
        # which matters for an accelerating leak's time to the limit.
        growth_bytes_per_hour=shortest.growth_bytes_per_hour,
        confidence=confidence,
        onset=onset,
        last_passed=now,
    )


def judge_window(
    ends: Sequence[float],
    floors: Sequence[float],
    noises: Sequence[float],
    start: float,
    params: TrendParams,
) -> WindowEvidence | None:
    """Evidence for a leak in the floor from `start` to the last point; None if too few points."""
    first = bisect.bisect_left(ends, start - 1e-6)
    count = len(ends) - first
    if count < 4:
        return None
    # Thinning keeps the quadratic statistics cheap on long windows; sampling
    # backwards from now keeps the newest floor in every window.
    stride = math.ceil(count / params.max_points)
    picked = list(range(len(ends) - 1, first - 1, -stride))[::-1]
    times = [ends[i] for i in picked]
    values = [floors[i] for i in picked]
    span = times[-1] - times[0]
    slope = theil_sen_slope(times, values)
    level = median(values)
    noise = max(
        # Jitter of the floor predicted from the samples' own noise: robust when
        # the window holds too few independent floors to measure it directly.
        params.floor_noise_ratio * median(noises[first:]),
        # A perfectly clean series has no noise at all; 1 ppm of the level
        # keeps the ratio finite without making real noise negligible.
        1e-6 * level,
        1.0,
    )
    steps = max(1, round(params.step_seconds / (stride * params.bucket_seconds)))
    step_times, step_values = _without_largest_rise(times, values, steps)
    step_slope = theil_sen_slope(step_times, step_values)
    mid = len(times) // 2
    early = theil_sen_slope(times[: mid + 1], values[: mid + 1])
    late = theil_sen_slope(times[mid:], values[mid:])
    current = floors[-1]
    start_level = _level_at(floors, first)
    earlier = max(floors[:first]) if first else None
    rise = current - start_level
    new_high = 1.0 if earlier is None else (current - earlier) / rise if rise > 0 else 0.0
    measures = {
        "span": (span, params.min_span_seconds, 2 * params.min_span_seconds),
        "growth": (
            slope * 3600.0,
            params.min_growth_bytes_per_hour,
            4 * params.min_growth_bytes_per_hour,
        ),
        # Growth that remains once the largest rise within `step_seconds` is cut
        # out: a deploy or config step is one such rise and leaves nothing.
        "signal_to_noise": (
            step_slope * span / noise,
            params.min_signal_to_noise,
            3 * params.min_signal_to_noise,
        ),
        "not_a_step": (
            step_slope / slope if slope > 0 else 0.0,
            params.min_growth_share_without_step,
            1.0,
        ),
        # Growth must run through the whole window: a warm-up or a cache filling
        # up decelerates (late half flat), and the upswing of an oscillation
        # seen through the floor starts flat (early half flat).
        "not_levelling_off": (_ratio(late, early), params.min_late_to_early_ratio, 1.0),
        "under_way": (_ratio(early, late), params.min_early_to_late_ratio, 1.0),
        "still_growing": (
            late * span / 2 / noise,
            params.min_signal_to_noise / 2,
            3 * params.min_signal_to_noise / 2,
        ),
        "new_high": (new_high, params.min_new_high_fraction, 1.0),
        # A leak's floor is at its highest now, give or take noise; an
        # oscillation past its crest is not.
        "at_peak": (
            _ratio(
                max(params.peak_tolerance_noise * noise, params.peak_tolerance_share * rise),
                max(values) - current,
            ),
            1.0,
            2.0,
        ),
    }
    gates = {name: _evidence(*m) for name, m in measures.items()}
    return WindowEvidence(
        start=times[0],
        passed=all(x >= threshold for x, threshold, _ in measures.values()),
        confidence=min(gates.values()),
        growth_bytes_per_hour=slope * 3600.0,
        gates=gates,
    )


def _level_at(floors: Sequence[float], index: int) -> float:
    """The floor where a window starts: a median of three, so one odd bucket cannot set it."""
    return median(floors[index : index + 3])


def _rise_since(ends: Sequence[float], floors: Sequence[float], onset: float) -> float:
    """Memory the leak holds: the floor now above its level at the onset.

    The level counted from is the higher of the floor at the onset and every
    floor before it in this life, so growth back to a level the target had
    already reached (an oscillation, a recovery) is not attributed to a leak.
    """
    at = bisect.bisect_left(ends, onset - 1e-6)
    reference = max([_level_at(floors, at), *floors[:at]])
    return floors[-1] - reference


def _evidence(value: float, threshold: float, full: float) -> float:
    """0 at or below 0, 0.5 at the threshold, 1 at `full`; linear in between."""
    if value <= 0 or threshold <= 0:
        return 0.0 if threshold > 0 else 1.0
    if value < threshold:
        return 0.5 * value / threshold
    if full <= threshold:
        return 1.0
    return min(1.0, 0.5 + 0.5 * (value - threshold) / (full - threshold))


def _without_largest_rise(
    times: Sequence[float], values: Sequence[float], steps: int
) -> tuple[list[float], list[float]]:
    """The series with its largest rise over `steps` points cut out and the rest lowered.

    A one-time step (deploy, config change) is one such rise: without it the
    series is flat. A leak, even a staircase, keeps rising without it.
    """
    n = len(values)
    steps = min(steps, n - 1)
    rises = [values[i + steps] - values[i] for i in range(n - steps)]
    at = max(range(len(rises)), key=rises.__getitem__)
    rise = rises[at]
    kept_times = [*times[: at + 1], *times[at + steps :]]
    kept_values = [*values[: at + 1], *(v - rise for v in values[at + steps :])]
    return kept_times, kept_values


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator for growth rates, capped at 2; no growth at all is 0."""
    if denominator <= 0:
        return 2.0 if numerator > 0 else 0.0
    return max(0.0, min(2.0, numerator / denominator))
