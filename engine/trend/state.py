"""Per-target memory trend: the pure core of the leak detector.

`update(state, ts, value, limit)` folds one sample into a small, bounded,
immutable `TrendState` and returns the new state with a `TrendResult`:

1. Samples are folded into `bucket_seconds` buckets; a closed bucket keeps
   only its lowest sample (in a float array, NaN for a bucket with no data),
   so a target costs at most `history_seconds / bucket_seconds` floats.
2. A sample far below the floor (by `restart_min_drop_fraction` and
   `restart_jitter_multiple` floor jitters), confirmed by the next sample, is a
   restart: a new *life* begins and its history starts afresh.
3. When a bucket closes, `assess` judges the life and its `Verdict` is cached.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field, replace

from memalert.engine.trend.assess import NO_VERDICT, Verdict, assess
from memalert.engine.trend.params import DEFAULT_PARAMS, TrendParams

# Highs of the last buckets kept for the peak that meets the limit first.
RECENT_HIGHS = 6


def _empty() -> array[float]:
    return array("d")


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenBucket:
    """The bucket that the latest samples are being folded into."""

    start: float
    low: float
    high: float


@dataclass(frozen=True, kw_only=True, slots=True)
class TrendState:
    """Everything the detector remembers about one target, bounded in size.

    `lows` is never mutated once a state holds it (copy on write), so states
    stay values that can be kept, compared and replayed.
    """

    lows: array[float] = field(default_factory=_empty)  # bucket minima of the life
    first: float = 0.0  # start of the bucket lows[0]
    life_start: float | None = None
    open: OpenBucket | None = None
    highs: tuple[float, ...] = ()  # highs of the last RECENT_HIGHS closed buckets
    last_ts: float | None = None
    limit: float | None = None
    suspected_restart: tuple[float, float] | None = None
    restarts: int = 0
    carried: bool = False  # the previous life grew steadily until its restart
    verdict: Verdict = NO_VERDICT


@dataclass(frozen=True, kw_only=True, slots=True)
class TrendResult:
    """What the detector reports for one target at one tick."""

    leak_bytes: float
    growth_bytes_per_hour: float
    confidence: float
    time_to_limit_seconds: float | None
    onset: float | None  # estimated start of the leak (unix seconds), None when none
    restarts: int
    # Growth is significant but no leak declared: the gate holding the verdict
    # back (trend.reasons describes it), else "".
    held_back_by: str = ""


def update(
    state: TrendState,
    ts: float,
    value: float,
    limit: float | None = None,
    params: TrendParams = DEFAULT_PARAMS,
) -> tuple[TrendState, TrendResult]:
    """Fold one sample (bytes at unix time `ts`) into `state`; pure, O(1) amortised.

    Invalid input never raises: a non-finite or negative value, or a sample
    not newer than the last one, leaves the history untouched.
    """
    try:
        ts = float(ts)
        value = float(value)
    except (TypeError, ValueError):
        return state, _result(state)
    if limit is not None:
        try:
            lim = float(limit)
        except (TypeError, ValueError):
            lim = math.nan
        if math.isfinite(lim) and lim > 0 and lim != state.limit:
            state = replace(state, limit=lim)
    valid = math.isfinite(ts) and math.isfinite(value) and value >= 0
    if not valid or (state.last_ts is not None and ts <= state.last_ts):
        return state, _result(state)
    suspected = state.suspected_restart
    if suspected is not None:
        state = replace(state, suspected_restart=None)
        if _is_below_floor(state, value, params, share=0.5):
            state = _restart(state, suspected, (ts, value), params)
            return state, _result(state)
        # The low reading was a glitch: it is dropped, the history goes on.
    if _is_below_floor(state, value, params):
        state = replace(state, suspected_restart=(ts, value), last_ts=ts)
    else:
        state = _fold(state, ts, value, params)
    return state, _result(state)


def _floor(state: TrendState, params: TrendParams) -> float | None:
    """The current floor: the lowest bucket of the last two segments, with the open one."""
    recent = [v for v in state.lows[-2 * params.segment_buckets :] if not math.isnan(v)]
    if state.open is not None:
        recent.append(state.open.low)
    return min(recent) if recent else None


def _is_below_floor(
    state: TrendState, value: float, params: TrendParams, share: float = 1.0
) -> bool:
    """Is `value` further below the current floor than a restart threshold (times share)?"""
    if state.life_start is None or state.last_ts is None:
        return False
    if state.last_ts - state.life_start < params.segment_seconds:
        # Too little of this life to call any reading a drop against.
        return False
    floor = _floor(state, params)
    if floor is None:
        return False
    threshold = max(
        params.restart_min_drop_fraction * floor,
        params.restart_jitter_multiple * state.verdict.jitter,
    )
    return value < floor - share * threshold


def _restart(
    state: TrendState,
    drop: tuple[float, float],
    confirmation: tuple[float, float],
    params: TrendParams,
) -> TrendState:
    """Begin a new life from the two low samples; only the limit and the count carry over."""
    lived = (state.last_ts or 0.0) - (state.life_start or 0.0)
    carried = state.verdict.growing and lived >= params.carry_min_life_seconds
    fresh = TrendState(limit=state.limit, restarts=state.restarts + 1, carried=carried)
    for ts, value in (drop, confirmation):
        fresh = _fold(fresh, ts, value, params)
    return fresh


def _fold(state: TrendState, ts: float, value: float, params: TrendParams) -> TrendState:
    width = params.bucket_seconds
    start = math.floor(ts / width) * width
    current = state.open
    if current is not None and current.start == start:
        if current.low <= value <= current.high:
            return replace(state, last_ts=ts)
        folded = OpenBucket(start=start, low=min(current.low, value), high=max(current.high, value))
        return replace(state, open=folded, last_ts=ts)
    life_start = ts if state.life_start is None else state.life_start
    state = replace(state, life_start=life_start, last_ts=ts)
    if current is not None:
        state = _close(state, current, start, params)
    return replace(state, open=OpenBucket(start=start, low=value, high=value))


def _close(
    state: TrendState, closing: OpenBucket, next_start: float, params: TrendParams
) -> TrendState:
    """Append the finished bucket (and NaN for a gap), forget old buckets, re-assess."""
    width = params.bucket_seconds
    limit = params.history_buckets
    if len(state.lows) == 0:
        lows: array[float] = array("d", [closing.low])
        first = closing.start
    else:
        end = state.first + len(state.lows) * width
        missing = max(0, round((closing.start - end) / width))
        missing = min(missing, limit)
        lows = array("d", state.lows)
        if missing:
            lows.extend([math.nan] * missing)
        lows.append(closing.low)
        first = state.first
    if len(lows) > limit:
        drop = len(lows) - limit
        lows = lows[drop:]
        first += drop * width
    highs = (*state.highs[-(RECENT_HIGHS - 1) :], closing.high)
    life_start = state.life_start if state.life_start is not None else closing.start
    verdict = assess(
        lows, first, life_start, params=params, previous=state.verdict, carried=state.carried
    )
    # A gap makes the buckets after it start a fresh run of data (no reset).
    del next_start
    return replace(state, lows=lows, first=first, highs=highs, verdict=verdict)


def _result(state: TrendState) -> TrendResult:
    verdict = state.verdict
    time_to_limit = None
    if verdict.leaking and verdict.growth_bytes_per_hour > 0 and state.limit is not None:
        # Memory runs out when the peaks, not the floor, reach the limit.
        peaks = list(state.highs)
        if state.open is not None:
            peaks.append(state.open.high)
        headroom = state.limit - (max(peaks) if peaks else 0.0)
        time_to_limit = max(0.0, headroom) / verdict.growth_bytes_per_hour * 3600.0
    return TrendResult(
        leak_bytes=verdict.leak_bytes if verdict.leaking else 0.0,
        growth_bytes_per_hour=verdict.growth_bytes_per_hour if verdict.leaking else 0.0,
        confidence=verdict.confidence,
        time_to_limit_seconds=time_to_limit,
        onset=verdict.onset if verdict.leaking else None,
        restarts=state.restarts,
        held_back_by=verdict.held_back_by,
    )
