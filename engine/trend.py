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
4. When a bucket closes, `engine.trend_assess.assess` judges windows of the
   life's floor ending now and caches a `Verdict` until the next bucket.

`TrendDetector` (engine/detector.py) is only a dict of these states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from engine.trend_assess import NO_VERDICT, Verdict, assess
from engine.trend_params import TrendParams
from engine.trend_stats import median


@dataclass(frozen=True, kw_only=True, slots=True)
class Bucket:
    """One closed bucket: its lowest and highest sample, the floor, and the noise."""

    start: float
    low: float
    high: float
    floor: float  # lowest sample in the floor window ending with this bucket
    mature: bool  # the life already covered the whole floor window
    noise: float  # mean absolute change between consecutive samples


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenBucket:
    """The bucket that the latest samples are being folded into."""

    start: float
    low: float
    high: float
    last: float
    abs_change_sum: float = 0.0
    changes: int = 0

    def noise(self) -> float:
        return self.abs_change_sum / self.changes if self.changes else 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class TrendState:
    """Everything the detector remembers about one target, bounded in size."""

    buckets: tuple[Bucket, ...] = ()  # closed buckets of the current life, oldest first
    open: OpenBucket | None = None
    last_ts: float | None = None
    limit: float | None = None
    suspected_restart: tuple[float, float] | None = None  # (ts, value) awaiting confirmation
    noise: float = 0.0  # typical sample-to-sample change over the recent buckets
    verdict: Verdict = field(default=NO_VERDICT)
    life_start: float | None = None
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
    not newer than the last one, leaves the history untouched.
    """
    if limit is not None and math.isfinite(limit) and limit > 0:
        state = replace(state, limit=float(limit))
    valid = math.isfinite(ts) and math.isfinite(value) and value >= 0
    if not valid or (state.last_ts is not None and ts <= state.last_ts):
        return state, _result(state, params)
    if state.suspected_restart is not None:
        state = _resolve_suspected_restart(state, ts, value, params)
        if state.last_ts == ts:
            return state, _result(state, params)
    if _is_drop(state, value, params):
        state = replace(state, suspected_restart=(ts, value))
        return state, _result(state, params)
    state = _fold(state, ts, value, params)
    return state, _result(state, params)


def _reference_floor(state: TrendState) -> float | None:
    floors = [state.buckets[-1].floor] if state.buckets else []
    if state.open is not None:
        floors.append(state.open.low)
    return min(floors) if floors else None


def _is_drop(state: TrendState, value: float, params: TrendParams) -> bool:
    floor = _reference_floor(state)
    if floor is None:
        return False
    noise = state.noise if state.buckets else (state.open.noise() if state.open else 0.0)
    threshold = max(params.restart_min_drop_fraction * floor, params.restart_noise_multiple * noise)
    return value < floor - threshold


def _resolve_suspected_restart(
    state: TrendState, ts: float, value: float, params: TrendParams
) -> TrendState:
    """A drop that the next sample confirms is a restart; one that it contradicts, a glitch."""
    assert state.suspected_restart is not None
    drop_ts, drop_value = state.suspected_restart
    state = replace(state, suspected_restart=None)
    if not _is_drop(state, value, replace(params, restart_noise_multiple=0.0)):
        return state
    start = _bucket_start(drop_ts, params)
    fresh = OpenBucket(
        start=start,
        low=min(drop_value, value),
        high=max(drop_value, value),
        last=value,
        abs_change_sum=abs(value - drop_value),
        changes=1,
    )
    if _bucket_start(ts, params) != start:
        fresh = OpenBucket(start=_bucket_start(ts, params), low=value, high=value, last=value)
    return TrendState(
        open=fresh,
        last_ts=ts,
        limit=state.limit,
        life_start=drop_ts,
        restarts=state.restarts + 1,
    )


def _bucket_start(ts: float, params: TrendParams) -> float:
    return math.floor(ts / params.bucket_seconds) * params.bucket_seconds


def _fold(state: TrendState, ts: float, value: float, params: TrendParams) -> TrendState:
    start = _bucket_start(ts, params)
    current = state.open
    if current is not None and current.start == start:
        adjacent = state.last_ts is not None and ts - state.last_ts <= params.bucket_seconds
        folded = OpenBucket(
            start=start,
            low=min(current.low, value),
            high=max(current.high, value),
            last=value,
            abs_change_sum=current.abs_change_sum + (abs(value - current.last) if adjacent else 0),
            changes=current.changes + (1 if adjacent else 0),
        )
        return replace(state, open=folded, last_ts=ts)
    if current is not None:
        state = _close(state, current, params)
    fresh = OpenBucket(start=start, low=value, high=value, last=value)
    life_start = state.life_start if state.life_start is not None else ts
    return replace(state, open=fresh, last_ts=ts, life_start=life_start)


def _close(state: TrendState, closing: OpenBucket, params: TrendParams) -> TrendState:
    """Append the finished bucket, forget what fell out of the history, re-assess."""
    end = closing.start + params.bucket_seconds
    in_floor_window = [
        b.low
        for b in state.buckets[-params.floor_buckets :]
        if b.start >= end - params.floor_window_seconds
    ]
    bucket = Bucket(
        start=closing.start,
        low=closing.low,
        high=closing.high,
        floor=min([closing.low, *in_floor_window]),
        noise=closing.noise(),
        mature=state.life_start is not None
        and end - state.life_start >= params.floor_window_seconds,
    )
    horizon = end - params.history_seconds
    kept = [b for b in state.buckets[-params.history_buckets :] if b.start >= horizon]
    buckets = (*kept, bucket)
    recent_noise = [b.noise for b in buckets[-params.noise_buckets :] if b.noise > 0]
    return replace(
        state,
        buckets=buckets,
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
