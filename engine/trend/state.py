"""Per-target memory trend: the pure core of the leak detector.

`update(state, ts, value, limit)` folds one sample into a small, bounded,
immutable `TrendState` and returns the new state with a `TrendResult`. The
method and every parameter are explained in docs/leak-detection.md; in short:

1. Samples are folded into fixed time buckets (min, max, noise). Memory per
   target is bounded by `history_seconds / bucket_seconds` buckets.
2. Each closed bucket gets a *floor*: the lowest sample in the trailing
   `floor_window_seconds`. Transients shorter than that window (GC
   saw-tooth, batch spikes) never lift the floor; a leak lifts it for good.
3. A sample far below the floor, confirmed by the next sample, is a restart:
   the process released everything, so the fit starts a new *life* from
   the new baseline instead of reading the drop as "the leak went away".
4. When a bucket closes, `memalert.engine.trend.assess.assess` judges windows of the
   life's floor ending now and caches a `Verdict` until the next bucket.

`TrendDetector` (engine/trend/detector.py) is only a dict of these states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from memalert.engine.trend.assess import NO_VERDICT, Verdict, assess
from memalert.engine.trend.params import TrendParams
from memalert.engine.trend.stats import median

# Sample-to-sample changes kept per open bucket for its noise estimate; the cap
# bounds the state whatever the sampling rate (a 15 s tick fills 20 of them).
MAX_CHANGES_PER_BUCKET = 64
# For independent normal noise the median of |x[t] - x[t-1]| is 0.954 sigma.
_MEDIAN_ABS_CHANGE_PER_SIGMA = 0.954


@dataclass(frozen=True, kw_only=True, slots=True)
class Bucket:
    """One closed bucket: its lowest and highest sample, the floor, and the noise."""

    start: float
    low: float
    high: float
    floor: float  # lowest sample in the floor window ending with this bucket
    noise: float  # standard deviation of the sample noise, from sample-to-sample changes
    mature: bool  # the life already covered the whole floor window


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenBucket:
    """The bucket that the latest samples are being folded into."""

    start: float
    low: float
    high: float
    last: float
    changes: tuple[float, ...] = ()  # |change| between consecutive samples

    def noise(self) -> float:
        # The median ignores the rare large changes (a GC drop, the edge of a
        # batch spike) and keeps the jitter that the floor inherits.
        return median(self.changes) / _MEDIAN_ABS_CHANGE_PER_SIGMA if self.changes else 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class TrendState:
    """Everything the detector remembers about one target, bounded in size."""

    buckets: tuple[Bucket, ...] = ()  # closed buckets of the current life, oldest first
    open: OpenBucket | None = None
    last_ts: float | None = None
    limit: float | None = None
    suspected_restart: tuple[float, float] | None = None  # (ts, value) awaiting confirmation
    noise: float = 0.0  # sample noise over the recent buckets
    verdict: Verdict = field(default=NO_VERDICT)
    covered_since: float | None = None  # start of the current gap-free stretch of this life
    restarts: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class TrendResult:
    """What the detector reports for one target at one tick."""

    leak_bytes: float
    growth_bytes_per_hour: float
    confidence: float
    time_to_limit_seconds: float | None
    onset: float | None  # estimated start of the leak (unix seconds), None when none
    restarts: int


DEFAULT_PARAMS = TrendParams()


def update(
    state: TrendState,
    ts: float,
    value: float,
    limit: float | None = None,
    params: TrendParams = DEFAULT_PARAMS,
) -> tuple[TrendState, TrendResult]:
    """Fold one sample (bytes at unix time `ts`) into `state`; pure and O(1) amortised.

    Invalid input never raises: a non-finite or negative value, or a sample
    not newer than the last one, leaves the history untouched (a gap).
    """
    if limit is not None and math.isfinite(limit) and limit > 0 and limit != state.limit:
        state = replace(state, limit=float(limit))
    valid = math.isfinite(ts) and math.isfinite(value) and value >= 0
    if not valid or (state.last_ts is not None and ts <= state.last_ts):
        return state, _result(state, params)
    suspected = state.suspected_restart
    if suspected is not None:
        state = replace(state, suspected_restart=None)
        if _is_below_floor(state, value, params, share=0.5):
            state = _restart(state, suspected, (ts, value), params)
            return state, _result(state, params)
    if _is_below_floor(state, value, params):
        # Wait for the next sample: one low reading alone may be a glitch.
        state = replace(state, suspected_restart=(ts, value))
    else:
        state = _fold(state, ts, value, params)
    return state, _result(state, params)


def _is_below_floor(
    state: TrendState, value: float, params: TrendParams, share: float = 1.0
) -> bool:
    """Is `value` further below the current floor than a restart threshold (times share)?"""
    if not state.buckets or not state.buckets[-1].mature:
        # Until the life has filled a floor window, its floor may be the top of
        # a spike or a warm-up: nothing to call a drop against yet.
        return False
    floor = state.buckets[-1].floor
    if state.open is not None:
        floor = min(floor, state.open.low)
    threshold = max(
        params.restart_min_drop_fraction * floor, params.restart_noise_multiple * state.noise
    )
    return value < floor - share * threshold


def _restart(
    state: TrendState,
    drop: tuple[float, float],
    confirmation: tuple[float, float],
    params: TrendParams,
) -> TrendState:
    """Begin a new life from the two low samples; only the limit and the count carry over."""
    fresh = TrendState(limit=state.limit, restarts=state.restarts + 1)
    for ts, value in (drop, confirmation):
        fresh = _fold(fresh, ts, value, params)
    return fresh


def _bucket_start(ts: float, params: TrendParams) -> float:
    return math.floor(ts / params.bucket_seconds) * params.bucket_seconds


def _fold(state: TrendState, ts: float, value: float, params: TrendParams) -> TrendState:
    start = _bucket_start(ts, params)
    current = state.open
    if current is not None and current.start == start:
        changes = current.changes
        if len(changes) < MAX_CHANGES_PER_BUCKET:
            changes = (*changes, abs(value - current.last))
        folded = OpenBucket(
            start=start,
            low=min(current.low, value),
            high=max(current.high, value),
            last=value,
            changes=changes,
        )
        return replace(state, open=folded, last_ts=ts)
    if current is not None:
        state = _close(state, current, params)
    fresh = OpenBucket(start=start, low=value, high=value, last=value)
    covered_since = state.covered_since if state.covered_since is not None else ts
    return replace(state, open=fresh, last_ts=ts, covered_since=covered_since)


def _close(state: TrendState, closing: OpenBucket, params: TrendParams) -> TrendState:
    """Append the finished bucket, forget what fell out of the history, re-assess."""
    end = closing.start + params.bucket_seconds
    in_floor_window = [
        b.low
        for b in state.buckets[-params.floor_buckets :]
        if b.start >= end - params.floor_window_seconds
    ]
    covered_since = closing.start if state.covered_since is None else state.covered_since
    if state.buckets and closing.start - state.buckets[-1].start > params.bucket_seconds:
        # After a gap the floor window holds fewer samples again: a floor from
        # a few minutes of a saw-tooth would sit high and then "drop".
        covered_since = closing.start
    bucket = Bucket(
        start=closing.start,
        low=closing.low,
        high=closing.high,
        floor=min([closing.low, *in_floor_window]),
        noise=closing.noise(),
        mature=end - covered_since >= params.floor_window_seconds,
    )
    horizon = end - params.history_seconds
    kept = [b for b in state.buckets[-params.history_buckets :] if b.start >= horizon]
    buckets = (*kept, bucket)
    recent_noise = [b.noise for b in buckets[-params.noise_buckets :] if b.noise > 0]
    return replace(
        state,
        buckets=buckets,
        covered_since=covered_since,
        noise=median(recent_noise) if recent_noise else 0.0,
        verdict=assess(buckets, params, state.verdict),
    )


def _result(state: TrendState, params: TrendParams) -> TrendResult:
    verdict = state.verdict
    time_to_limit = None
    if verdict.leaking and verdict.growth_bytes_per_hour > 0 and state.limit is not None:
        # Memory runs out when the peaks, not the floor, reach the limit.
        headroom = state.limit - _recent_peak(state, params)
        time_to_limit = max(0.0, headroom) / verdict.growth_bytes_per_hour * 3600.0
    return TrendResult(
        leak_bytes=verdict.leak_bytes,
        growth_bytes_per_hour=verdict.growth_bytes_per_hour,
        confidence=verdict.confidence,
        time_to_limit_seconds=time_to_limit,
        onset=verdict.onset,
        restarts=state.restarts,
    )


def _recent_peak(state: TrendState, params: TrendParams) -> float:
    peaks = [b.high for b in state.buckets[-params.floor_buckets :]]
    if state.open is not None:
        peaks.append(state.open.high)
    return max(peaks) if peaks else 0.0
