"""Judge whether the floor of one target's current life grows without bound.

`assess(...)` runs when a bucket closes. It turns the life's bucket minima
into *segment minima* (the floor: the lowest bucket of each `segment_seconds`,
which is a GC trough or the bottom of a batch), measures the floor's own
jitter on that series, and judges windows of it that end now. A window passes
when every gate passes; each gate is a statistic of what bounded memory does
(saturating fills, steps that hold, cycles, warm-ups) that a leak does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from memalert.engine.trend.params import HOUR, TrendParams
from memalert.engine.trend.stats import diff_jitter, linear_fit, median, quadratic_curvature

DAY = 24 * HOUR
# The jitter estimated from fewer segment differences than this is too
# uncertain alone; the buckets' own jitter (an upper bound) is used with it.
MIN_JITTER_DIFFS = 8
# Floors never jitter less than this share of their level (page granularity,
# allocator noise): keeps the z statistics finite on perfectly clean traces.
MIN_RELATIVE_JITTER = 2e-5
# Most parts a window is cut into for the spread test.
MAX_PARTS = 8
# A rise or fall of the floor is real beyond this many floor jitters: 3 sigma
# of the difference of two floors (sqrt(2) jitters each).
DRAWDOWN_JITTERS = 3.0 * math.sqrt(2.0)
# A stretch is stable when its slope plus this many standard errors is below
# the limit. 0.3 already stops three chance-flat floors inside a steady noisy
# rise (diurnal_leak-04: a 58 MB/h first-day upswing, 9.8 MB floor jitter); a
# full standard error also refuses 30 min of honest flat floor between the
# warm-up and a leak that starts an hour into a noisy life (the README's
# sample, slow_leak_noisy-03), which then waits hours for min_life.
STABLE_MARGIN_SE = 0.3
# `leak_confidence` from here to 0.49: growth significant over a judged window,
# a bounded explanation not yet excluded (docs/leak-detection.md, "Confidence levels").
JUDGED_CONFIDENCE = 0.3


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """The assessment cached in a target's state until its next bucket closes."""

    leaking: bool = False
    leak_bytes: float = 0.0
    growth_bytes_per_hour: float = 0.0
    confidence: float = 0.0
    onset: float | None = None
    last_passed: float = 0.0  # time of the last assessment at which some window passed
    jitter: float = 0.0  # floor jitter used, bytes (sigma)
    # Some window passes every gate but the life's age: steady unexplained growth.
    growing: bool = False
    # While growth is significant but no leak is declared: the gate that holds the
    # verdict back (a name from `GATES`, or SATURATION_VETO), else "".
    held_back_by: str = ""


NO_VERDICT = Verdict()
# Held back not by a gate of the window itself but by a longer window ending now
# that bends down (the saturation veto).
SATURATION_VETO = "saturation_veto"


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowEvidence:
    """How one window fared: gate name -> evidence in [0, 1] (0.5 = at threshold)."""

    start: float
    passed: bool
    passed_but_age: bool
    reaccelerated: bool
    settled: bool  # steady growth of a life past any fill: not vetoed by a longer window
    z_curvature: float
    significant: bool
    confidence: float
    share_passed: float
    growth_bytes_per_hour: float
    gates: dict[str, float]


def _evidence(value: float, threshold: float, full: float) -> float:
    """0 at or below 0, 0.5 at the threshold, 1 at `full`; linear in between."""
    if threshold <= 0:
        return 1.0 if value >= threshold else 0.0
    if value <= 0:
        return 0.0
    if value < threshold:
        return 0.5 * value / threshold
    if full <= threshold:
        return 1.0
    return min(1.0, 0.5 + 0.5 * (value - threshold) / (full - threshold))


def segment_floors(
    lows: Sequence[float], first: float, params: TrendParams, since: float
) -> tuple[list[float], list[float]]:
    """(times, floors) of the segments that end at the newest bucket, oldest first.

    A segment's floor is its lowest bucket; a segment with less than half of
    its buckets observed (a gap) is left out rather than trusted.
    """
    size = params.segment_buckets
    width = params.bucket_seconds
    times: list[float] = []
    floors: list[float] = []
    end = len(lows)
    while end - size >= 0:
        begin = end - size
        seg_start = first + begin * width
        if seg_start < since:
            break
        values = [v for v in lows[begin:end] if not math.isnan(v)]
        if 2 * len(values) >= size:
            times.append(seg_start + size * width / 2.0)
            floors.append(min(values))
        end = begin
    times.reverse()
    floors.reverse()
    return times, floors


def floor_jitter(floors: Sequence[float], bucket_jitter: float) -> float:
    """The floor's own jitter, measured on the floor (segment minima), not on samples."""
    recent = floors[-97:]
    jitter = diff_jitter(recent)
    if len(recent) - 1 < MIN_JITTER_DIFFS:
        jitter = max(jitter, bucket_jitter)
    level = median(recent) if recent else 0.0
    return max(jitter, MIN_RELATIVE_JITTER * level, 1.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class Context:
    """What every window of one assessment shares."""

    times: Sequence[float]
    floors: Sequence[float]
    base: int  # index of the first judged floor of the life
    jitter: float
    age: float
    carried: bool
    params: TrendParams
    new_high: float  # new_high_share of the judged floors


def judge_window(
    ctx: Context, start_index: int, day_ago: Sequence[float] | None
) -> WindowEvidence | None:
    """Evidence for unbounded growth in floors[start_index:]; None if too few points."""
    params, jitter = ctx.params, ctx.jitter
    ts = ctx.times[start_index:]
    vs = ctx.floors[start_index:]
    n = len(ts)
    if n < 4:
        return None
    span = ts[-1] - ts[0] + params.segment_seconds
    slope, _, stt = linear_fit(ts, vs)
    rise = slope * span
    z_slope = slope * math.sqrt(stt) / jitter if stt > 0 else 0.0
    mid = n // 2
    early, _, _ = linear_fit(ts[: mid + 1], vs[: mid + 1])
    late, _, _ = linear_fit(ts[mid:], vs[mid:])
    ratio = late / early if early > 0 else (math.inf if late > 0 else 0.0)
    # Growth left once the largest rise within `step_seconds` is cut out: a
    # reload or deploy is one such rise and leaves nothing; a leak, even a
    # staircase of many stairs, keeps most of its growth.
    without_step = without_largest_rise(ts, vs, params.step_segments)
    step_slope, _, _ = linear_fit(*without_step)
    # Steady growth is what is left without the largest step: a ratchet or two
    # on a fill's tail is not a steady rate.
    steady = steady_share(ctx.times, ctx.floors, step_slope, params.segment_seconds)
    settled_life = ctx.age >= params.settled_life_seconds
    c, se_unit, rsd = quadratic_curvature(ts, vs)
    z_curv = c / (se_unit * max(jitter, rsd)) if math.isfinite(se_unit) and se_unit > 0 else 0.0
    spread, reaccelerated = _parts(
        ts,
        vs,
        # Re-acceleration only matters to a window that bends down (the veto).
        bends_down=z_curv < -params.z_curvature,
        span=span,
        rise=rise,
        jitter=jitter,
        params=params,
    )
    stable_before = is_change_point(ctx, start_index, slope)
    peak_gap = max(vs) - vs[-1]
    z = params.z_curvature
    measures: dict[str, tuple[float, float, float]] = {
        "life_age": (
            params.min_life_seconds if stable_before or ctx.carried else ctx.age,
            params.min_life_seconds,
            1.5 * params.min_life_seconds,
        ),
        # Until `settled_life_seconds` a fill may still be going: growth from a
        # life's start that passes only by the life's age must then be a real
        # part of what the life grew. A heap sized to its maximum in the first
        # hour, then creeping up by a last expansion or two, is not. (Growth
        # after a change point, or carried over, is not the life's fill.)
        "mostly_steady": (
            1.0 if stable_before or ctx.carried or settled_life else steady,
            params.min_steady_share,
            1.0,
        ),
        "span": (span, params.min_span_seconds, 2 * params.min_span_seconds),
        "growth": (
            slope * HOUR,
            params.min_growth_bytes_per_hour,
            4 * params.min_growth_bytes_per_hour,
        ),
        "significance": (z_slope, params.z_slope, 2 * params.z_slope),
        # A saturating fill (cache, fragmentation, LRU warm-up) decelerates:
        # its parabola bends down by more than the noise allows.
        "not_saturating": (2 * z + min(0.0, z_curv), z, 2 * z),
        "not_levelling_off": (min(ratio, 2.0), params.min_late_to_early_ratio, 1.0),
        "under_way": (
            params.max_late_to_early_ratio / ratio if ratio > 0 else 0.0,
            1.0,
            2.0,
        ),
        # Nor does a leak bend upwards smoothly: the convex start of an upswing
        # (a daily cycle's morning) does, and so does a window that reaches
        # back before a leak's onset (then a shorter window holds the leak).
        "steady": (2 * z - max(0.0, z_curv), z, 2 * z),
        "spread": (spread, params.min_growing_parts_share, 1.0),
        "not_a_step": (
            step_slope / slope if slope > 0 else 0.0,
            params.min_growth_share_without_step,
            1.0,
        ),
        "new_high": (ctx.new_high, params.min_new_high_fraction, 1.0),
        # A leak's floor is at its highest now, give or take noise; an
        # oscillation past its crest is not.
        "at_peak": (
            max(2.0 * jitter, 0.1 * abs(rise)) / peak_gap if peak_gap > 0 else 2.0,
            1.0,
            2.0,
        ),
    }
    if day_ago is not None and rise > 0:
        # A day of history: the floor now against the floor a day ago removes a
        # daily cycle. A leak that began `span` ago added rate x min(span, 24 h).
        expected = slope * min(span, DAY)
        gained = median([a - b for a, b in zip(vs[-len(day_ago) :], day_ago, strict=True)])
        measures["day_over_day"] = (gained / expected, params.daily_share, 1.0)
    gates = {name: _evidence(*m) for name, m in measures.items()}
    passed_flags = [x >= threshold for x, threshold, _ in measures.values()]
    return WindowEvidence(
        start=ts[0] - params.segment_seconds / 2,
        passed=all(passed_flags),
        passed_but_age=all(x >= t for name, (x, t, _) in measures.items() if name != "life_age"),
        reaccelerated=reaccelerated,
        settled=settled_life and steady >= params.settled_steady_share,
        z_curvature=z_curv,
        significant=slope * HOUR >= params.min_growth_bytes_per_hour and z_slope >= params.z_slope,
        confidence=min(gates.values()),
        share_passed=sum(passed_flags) / len(passed_flags),
        growth_bytes_per_hour=slope * HOUR,
        gates=gates,
    )


def _part_rises(
    ts: Sequence[float], vs: Sequence[float], *, span: float, parts: int, params: TrendParams
) -> list[float]:
    """The rise of each of `parts` equal parts of the window (parts with no floor skipped)."""
    rises: list[float] = []
    n = len(ts)
    for k in range(parts):
        lo = ts[0] + k * (span / parts) - params.segment_seconds / 2
        hi = lo + span / parts
        idx = [i for i in range(n) if lo <= ts[i] < hi - 1e-6]
        if len(idx) >= 2:
            part_slope, _, _ = linear_fit([ts[i] for i in idx], [vs[i] for i in idx])
            rises.append(part_slope * span / parts)
        elif idx:
            rises.append(vs[idx[0]] - (vs[idx[0] - 1] if idx[0] > 0 else vs[idx[0]]))
    return rises


def _parts(
    ts: Sequence[float],
    vs: Sequence[float],
    *,
    span: float,
    rise: float,
    jitter: float,
    params: TrendParams,
    bends_down: bool,
) -> tuple[float, bool]:
    """(share of the window's parts that grow, whether a later part re-accelerated).

    Is the growth spread over the window (a leak) or held in a few steps
    (reloads, deploys)? Parts last at least `spread_part_seconds`, so a
    staircase counts as a leak only once it has climbed many stairs.
    Re-acceleration is judged only for a window that `bends_down`.
    """
    parts = int(min(MAX_PARTS, max(params.spread_parts, span // params.spread_part_seconds)))
    rises = _part_rises(ts, vs, span=span, parts=parts, params=params)
    growing = sum(1 for r in rises if r >= params.part_growth_share * rise / parts)
    # A saturating curve only ever slows down. A part that rises clearly faster
    # than an earlier one (a warm-up, a flat stretch, then a leak) is not one,
    # but only if it still does with the largest step after the first part cut
    # out: one high-water-mark step late on a plateau is not a new trend, while
    # a leak after a flat stretch keeps rising without it. (The first part is
    # left alone: its rise is the one later parts are compared with, and a
    # saturating curve's steepest stretch is there.)
    margin = DRAWDOWN_JITTERS * jitter
    reaccelerated = False
    if bends_down and _reaccelerates(rises, margin):
        later = ts[0] + span / parts - params.segment_seconds / 2
        cut = without_largest_rise(ts, vs, params.step_segments, after=later)
        reaccelerated = _reaccelerates(
            _part_rises(*cut, span=span, parts=parts, params=params), margin
        )
    return growing / parts, reaccelerated


def _reaccelerates(rises: Sequence[float], margin: float) -> bool:
    """Does a later part rise faster than twice an earlier part, by more than `margin`?"""
    return any(rises[j] > 2.0 * max(0.0, min(rises[:j])) + margin for j in range(1, len(rises)))


def steady_share(
    times: Sequence[float], floors: Sequence[float], slope: float, segment_seconds: float
) -> float:
    """Share of the life's growth that `slope` (bytes/s) explains had it run all along.

    rate x time known / (floor now - the life's first known floor): about 1 for a
    leak since the start (a warm-up's share shrinks as it goes on), a for a
    power-law fill t^a, and falling towards 0 for a fill that has slowed down.
    Infinite when the floor has not grown.
    """
    grown = floors[-1] - floors[0]
    if grown <= 0:
        return math.inf
    known = times[-1] - times[0] + segment_seconds
    return slope * known / grown


def new_high_share(floors: Sequence[float], margin: float) -> float:
    """Share of the current climb that is above every floor held before it.

    The climb is traced back from now for as long as the floor never stood
    `margin` above a later floor: it starts at the trough after the last real
    fall. Regrowth to a level the life already held before that fall (a daily
    cycle's second upswing, recovery after a dip or a GC) is not new memory.
    Taken over the life rather than before each window: a window that begins
    part-way up a climb must not count the climb's own lower part as the
    'earlier high' it beats.
    """
    if not floors:
        return 1.0
    now = floors[-1]
    trough = now
    for i in range(len(floors) - 2, -1, -1):
        if floors[i] > trough + margin:
            earlier = max(floors[: i + 1])
            climb = now - trough
            return (now - earlier) / climb if climb > 0 else 0.0
        trough = min(trough, floors[i])
    return 1.0


def is_change_point(ctx: Context, start_index: int, slope: float) -> bool:
    """A change point: growth that begins after a stable stretch of the life.

    Such growth is not the life's warm-up, so it need not wait for
    `min_life_seconds`. 'Stable' must be measured, not guessed: the stretch's
    slope plus STABLE_MARGIN_SE standard errors (from the floor jitter) must stay below
    `stable_slope_share` of the growth. Three noisy floors in the middle of a
    steady rise can show a flat slope by chance; when `stable_seconds` of
    floor cannot tell, the stretch is extended back, one segment at a time,
    to the life's judged start, and is not stable if it still cannot tell.
    """
    params = ctx.params
    begin = ctx.times[start_index]
    limit = params.stable_slope_share * slope
    shortest = params.stable_seconds - params.segment_seconds
    # Running sums (time relative to `begin`) keep the extension O(stretch).
    n = 0
    st = sv = stt = stv = 0.0
    for lo in range(start_index - 1, ctx.base - 1, -1):
        t, v = ctx.times[lo] - begin, ctx.floors[lo]
        n, st, sv, stt, stv = n + 1, st + t, sv + v, stt + t * t, stv + t * v
        if n < 3 or -t < shortest:
            continue
        spread = stt - st * st / n  # sum of squared time deviations
        if spread <= 0:
            continue
        pre_slope = (stv - st * sv / n) / spread
        if pre_slope > limit:
            return False
        if pre_slope + STABLE_MARGIN_SE * ctx.jitter / math.sqrt(spread) <= limit:
            return True
    return False


def without_largest_rise(
    times: Sequence[float], values: Sequence[float], steps: int, after: float = -math.inf
) -> tuple[list[float], list[float]]:
    """The series with its largest rise over `steps` points that starts at or after
    `after` cut out (later points lowered); unchanged when no such rise exists."""
    n = len(values)
    steps = min(steps, n - 1)
    rises = [values[i + steps] - values[i] for i in range(n - steps)]
    starts = [i for i in range(len(rises)) if times[i] >= after]
    if not starts:
        return list(times), list(values)
    at = max(starts, key=rises.__getitem__)
    rise = max(0.0, rises[at])
    kept_t = [*times[: at + 1], *times[at + steps :]]
    kept_v = [*values[: at + 1], *(v - rise for v in values[at + steps :])]
    return kept_t, kept_v


def suspicion(
    lows: Sequence[float], first: float, *, params: TrendParams, since: float, jitter: float
) -> float:
    """Early 'suspected' confidence, 0 or 0.1..0.3, from the recent buckets' growth."""
    count = max(3, round(params.suspect_seconds / params.bucket_seconds))
    width = params.bucket_seconds
    start = len(lows) - count
    if start < 0 or first + start * width < since:
        return 0.0
    pts = [
        (first + (i + 0.5) * width, v)
        for i, v in enumerate(lows[start:], start)
        if not math.isnan(v)
    ]
    if len(pts) < 3:
        return 0.0
    slope, _, stt = linear_fit([p[0] for p in pts], [p[1] for p in pts])
    if slope * HOUR < params.min_growth_bytes_per_hour or jitter <= 0:
        return 0.0
    z = slope * math.sqrt(stt) / jitter
    if z < params.z_suspect:
        return 0.0
    return 0.1 + 0.2 * min(1.0, (z - params.z_suspect) / (2 * params.z_suspect))


def assess(
    lows: Sequence[float],
    first: float,
    life_start: float,
    *,
    params: TrendParams,
    previous: Verdict = NO_VERDICT,
    carried: bool = False,
) -> Verdict:
    """The verdict for a life's bucket minima (`lows[0]` starts at `first`).

    `carried`: the previous life grew steadily until a restart, so this life's
    growth from its start is that behaviour again, not a warm-up to wait out.
    """
    now = first + len(lows) * params.bucket_seconds
    recent = [v for v in lows[-73:] if not math.isnan(v)]
    bucket_jitter = diff_jitter(recent)
    level = median(recent) if recent else 0.0
    bucket_jitter = max(bucket_jitter, MIN_RELATIVE_JITTER * level, 1.0)
    suspected = suspicion(lows, first, params=params, since=life_start, jitter=bucket_jitter)
    judged_from = life_start + params.warmup_seconds
    times, floors = segment_floors(lows, first, params, life_start)
    jitter = floor_jitter(floors, bucket_jitter)
    usable = [i for i, t in enumerate(times) if t - params.segment_seconds / 2 >= judged_from]
    if len(usable) < 4:
        return Verdict(confidence=min(0.49, suspected), jitter=jitter)
    base = usable[0]
    ctx = Context(
        times=times,
        floors=floors,
        base=base,
        jitter=jitter,
        age=now - life_start,
        carried=carried,
        params=params,
        new_high=new_high_share(floors[base:], DRAWDOWN_JITTERS * jitter),
    )
    day_shift = round(DAY / params.segment_seconds)
    evidence: list[WindowEvidence] = []
    length = params.min_span_seconds
    available = now - judged_from
    while True:
        w = min(length, available)
        start_index = next(
            (i for i in usable if times[i] - params.segment_seconds / 2 >= now - w - 1e-6),
            None,
        )
        if start_index is not None:
            day_ago = _day_ago(times, floors, start_index, day_shift=day_shift, params=params)
            e = judge_window(ctx, start_index, day_ago)
            if e is not None:
                evidence.append(e)
        if length >= available:
            break
        length *= params.window_growth_factor
    # A fill that decelerates is judged on its longest window: while any longer
    # window ending now bends down significantly, no shorter one inside it
    # proves a leak (the last hours of a saturating curve look straight).
    vetoed = False
    judged: list[WindowEvidence] = []
    vetoed_passes = 0
    # Past `settled_life_seconds` no fill is still going (fills take hours), so
    # growth that is mostly steady over the life (a warm-up, then a leak: the
    # warm-up bends the longest window down for ever) is not vetoed; a fill that
    # keeps slowing (a power law, a long exponential tail) explains less of it.
    for e in reversed(evidence):
        if e.z_curvature < -params.z_curvature and not e.reaccelerated:
            vetoed = True
        held_back = e.passed and vetoed and not e.settled
        vetoed_passes += held_back
        judged.append(replace(e, passed=False) if held_back else e)
    judged.reverse()
    verdict = _verdict(
        judged,
        ctx,
        now=now,
        waiting=min(0.49, max(suspected, _judged_confidence(judged))),
        previous=previous,
    )
    if verdict.leaking or verdict.confidence < JUDGED_CONFIDENCE:
        return verdict
    held = SATURATION_VETO if vetoed_passes else _weakest_gate(judged)
    return replace(verdict, held_back_by=held)


def _weakest_gate(evidence: Sequence[WindowEvidence]) -> str:
    """The failing gate of the significant window closest to passing: what a
    reader most needs to know about growth that is real but not (yet) a leak."""
    significant = [e for e in evidence if e.significant]
    if not significant:
        return ""
    closest = max(significant, key=lambda e: (e.share_passed, e.confidence))
    return min(closest.gates, key=lambda name: closest.gates[name])


def _judged_confidence(evidence: Sequence[WindowEvidence]) -> float:
    """0.3-0.49 when growth is significant over a judged window, else 0.

    Growth is then real; the share of the other gates passed says how far a
    bounded explanation (warm-up, fill, steps, cycle) is already excluded.
    """
    significant = [e for e in evidence if e.significant]
    if not significant:
        return 0.0
    return JUDGED_CONFIDENCE + 0.19 * max(e.share_passed for e in significant)


def _day_ago(
    times: Sequence[float],
    floors: Sequence[float],
    start_index: int,
    *,
    day_shift: int,
    params: TrendParams,
) -> list[float] | None:
    """Floors a day before the window's last (up to 2 h of) points, if all are known."""
    count = max(2, round(2 * HOUR / params.segment_seconds))
    count = min(count, len(times) - start_index)
    out: list[float] = []
    for i in range(len(times) - count, len(times)):
        target = times[i] - DAY
        j = i - day_shift
        # Segments skipped for gaps shift the indices: look around for the match.
        while j > 0 and times[j] > target + 1:
            j -= 1
        if j < 0 or abs(times[j] - target) > params.segment_seconds / 2:
            return None
        out.append(floors[j])
    return out


def _verdict(
    evidence: Sequence[WindowEvidence],
    ctx: Context,
    *,
    now: float,
    waiting: float,
    previous: Verdict,
) -> Verdict:
    """Declare, hold or clear the leak; `waiting` is the confidence when not declared."""
    params, jitter = ctx.params, ctx.jitter
    passing = [e for e in evidence if e.passed]
    known_onset = previous.onset if previous.leaking else None
    growing = any(e.passed_but_age for e in evidence)
    if not passing:
        held = previous.leaking and now - previous.last_passed < params.hold_seconds
        if held and known_onset is not None:
            leak = _rise_since(ctx, known_onset)
            if leak > 0:
                return replace(
                    previous,
                    leak_bytes=leak,
                    jitter=jitter,
                    growing=True,
                    confidence=max(0.5, previous.confidence * 0.9),
                )
        return Verdict(confidence=waiting, jitter=jitter, growing=growing)
    onset = min(e.start for e in passing)
    if known_onset is not None:
        # The leak began no later than first thought: its onset only moves back.
        onset = min(onset, known_onset)
    leak = _rise_since(ctx, onset)
    if leak <= 0:
        return Verdict(confidence=waiting, jitter=jitter, growing=growing)
    # The most recent window that still proves the trend gives the current rate.
    shortest = max(passing, key=lambda e: e.start)
    return Verdict(
        leaking=True,
        leak_bytes=leak,
        growth_bytes_per_hour=shortest.growth_bytes_per_hour,
        confidence=max([0.5, *(e.confidence for e in passing)]),
        onset=onset,
        last_passed=now,
        jitter=jitter,
        growing=True,
    )


def _rise_since(ctx: Context, onset: float) -> float:
    """Memory the leak holds: the floor now above the higher of its level at the
    onset and every judged floor of the life before it (so regrowth to a level
    already seen is never counted)."""
    times, floors, base = ctx.times, ctx.floors, ctx.base
    at = next((i for i in range(base, len(times)) if times[i] >= onset), len(times) - 1)
    reference = max([median(floors[at : at + 3]), *floors[base:at]])
    return floors[-1] - reference
