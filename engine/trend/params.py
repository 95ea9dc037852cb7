"""The trend detector's parameters, their valid ranges and the sensitivity presets.

`PARAMETERS` is the machine-readable table (name -> `ParamSpec`) that the rule
file validator can use: every field of `TrendParams` has a kind (duration in
seconds, size in bytes, ratio, count), a minimum, a maximum and a one-line
reason. leak-detection.md explains each one at length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

HOUR = 3600.0
MINUTE = 60.0

Kind = Literal["duration", "size", "ratio", "count"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ParamSpec:
    """Valid range and meaning of one parameter."""

    minimum: float
    maximum: float
    kind: Kind
    doc: str


PARAMETERS: dict[str, ParamSpec] = {
    "bucket_seconds": ParamSpec(
        minimum=30.0,
        maximum=900.0,
        kind="duration",
        doc="storage resolution: one bucket keeps the lowest sample of its span",
    ),
    "segment_seconds": ParamSpec(
        minimum=300.0,
        maximum=3 * HOUR,
        kind="duration",
        doc="the floor is the lowest bucket of each segment; >= 1.3 x the slowest GC period",
    ),
    "history_seconds": ParamSpec(
        minimum=6 * HOUR,
        maximum=72 * HOUR,
        kind="duration",
        doc="history kept per target; >= 25 h lets the daily-cycle test run",
    ),
    "warmup_seconds": ParamSpec(
        minimum=0.0,
        maximum=6 * HOUR,
        kind="duration",
        doc="start of a life never judged: start-up allocations and the steepest warm-up",
    ),
    "min_life_seconds": ParamSpec(
        minimum=1 * HOUR,
        maximum=24 * HOUR,
        kind="duration",
        doc="a life younger than this is never declared leaking (warm-ups, caches, GC cycles)",
    ),
    "carry_min_life_seconds": ParamSpec(
        minimum=1 * HOUR,
        maximum=24 * HOUR,
        kind="duration",
        doc="a life this long that grew steadily until a restart: the next life need not wait",
    ),
    "min_steady_share": ParamSpec(
        minimum=0.0,
        maximum=1.0,
        kind="ratio",
        doc="a mature life's window must explain this share of the life's growth at its rate"
        " (rate x age): the last expansions of a heap filling to its max do not",
    ),
    "settled_life_seconds": ParamSpec(
        minimum=1 * HOUR,
        maximum=48 * HOUR,
        kind="duration",
        doc="a life this old is past any fill; its steady growth overrides the saturation veto",
    ),
    "settled_steady_share": ParamSpec(
        minimum=0.0,
        maximum=1.0,
        kind="ratio",
        doc="... when its rate x age explains this share of the life's growth"
        " (a fill that keeps slowing explains less)",
    ),
    "min_span_seconds": ParamSpec(
        minimum=30 * MINUTE,
        maximum=12 * HOUR,
        kind="duration",
        doc="shortest window of floor that can prove a leak",
    ),
    "window_growth_factor": ParamSpec(
        minimum=1.2,
        maximum=3.0,
        kind="ratio",
        doc="judged windows grow from min_span by this factor up to the life",
    ),
    "min_growth_bytes_per_hour": ParamSpec(
        minimum=0.0,
        maximum=1e9,
        kind="size",
        doc="slower floor growth is not worth calling a leak (per hour)",
    ),
    "z_slope": ParamSpec(
        minimum=2.0,
        maximum=20.0,
        kind="ratio",
        doc="floor slope / its standard error from the floor's own jitter",
    ),
    "z_curvature": ParamSpec(
        minimum=1.0,
        maximum=10.0,
        kind="ratio",
        doc="a deceleration this many standard errors strong means saturating growth",
    ),
    "min_late_to_early_ratio": ParamSpec(
        minimum=0.0,
        maximum=1.0,
        kind="ratio",
        doc="slope of the later half / earlier half below this is levelling off",
    ),
    "max_late_to_early_ratio": ParamSpec(
        minimum=1.0,
        maximum=100.0,
        kind="ratio",
        doc="slope of the later half / earlier half above this is an upswing just begun",
    ),
    "spread_parts": ParamSpec(
        minimum=2.0,
        maximum=12.0,
        kind="count",
        doc="a window is cut into this many parts to see whether its growth is spread out",
    ),
    "spread_part_seconds": ParamSpec(
        minimum=15 * MINUTE,
        maximum=6 * HOUR,
        kind="duration",
        doc="long windows are cut into parts of at least this length (up to 8 parts)",
    ),
    "stable_seconds": ParamSpec(
        minimum=15 * MINUTE,
        maximum=6 * HOUR,
        kind="duration",
        doc="a stable stretch this long before growth makes it a change point, not a warm-up",
    ),
    "stable_slope_share": ParamSpec(
        minimum=0.0,
        maximum=1.0,
        kind="ratio",
        doc="'stable' means a slope below this share of the growth that follows",
    ),
    "min_growing_parts_share": ParamSpec(
        minimum=0.0,
        maximum=1.0,
        kind="ratio",
        doc="share of the parts that must grow: steps that hold are not a leak",
    ),
    "part_growth_share": ParamSpec(
        minimum=0.0,
        maximum=1.0,
        kind="ratio",
        doc="a part grows when it rises by this share of its pro-rata part of the window's rise",
    ),
    "step_seconds": ParamSpec(
        minimum=5 * MINUTE,
        maximum=2 * HOUR,
        kind="duration",
        doc="how fast a one-time step (reload, deploy) completes; its largest rise is cut out",
    ),
    "min_growth_share_without_step": ParamSpec(
        minimum=0.0,
        maximum=1.0,
        kind="ratio",
        doc="share of a window's growth that must remain without its largest step",
    ),
    "min_new_high_fraction": ParamSpec(
        minimum=0.0,
        maximum=1.0,
        kind="ratio",
        doc="share of the current climb (from the trough after the last real fall) "
        "above every floor held before it",
    ),
    "daily_share": ParamSpec(
        minimum=0.0,
        maximum=1.0,
        kind="ratio",
        doc="with a day of history: the day-over-day rise must be this share of 24 h x rate",
    ),
    "hold_seconds": ParamSpec(
        minimum=0.0,
        maximum=6 * HOUR,
        kind="duration",
        doc="a declared leak stays declared this long after its last passing window",
    ),
    "restart_min_drop_fraction": ParamSpec(
        minimum=0.0,
        maximum=0.9,
        kind="ratio",
        doc="a restart drops the floor by at least this share",
    ),
    "restart_jitter_multiple": ParamSpec(
        minimum=2.0,
        maximum=100.0,
        kind="ratio",
        doc="... and by at least this many floor jitters",
    ),
    "suspect_seconds": ParamSpec(
        minimum=5 * MINUTE,
        maximum=2 * HOUR,
        kind="duration",
        doc="recent span whose growth raises the early 'suspected' confidence",
    ),
    "z_suspect": ParamSpec(
        minimum=1.0,
        maximum=20.0,
        kind="ratio",
        doc="recent growth this many standard errors strong is suspected",
    ),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class TrendParams:
    """Tuning of the trend detector; the defaults suit 15 s sampling ('normal')."""

    bucket_seconds: float = 300.0
    segment_seconds: float = 900.0
    history_seconds: float = 50 * HOUR
    warmup_seconds: float = 30 * MINUTE
    min_life_seconds: float = 6 * HOUR
    carry_min_life_seconds: float = 4 * HOUR
    min_steady_share: float = 0.25
    settled_life_seconds: float = 9 * HOUR
    settled_steady_share: float = 0.8
    min_span_seconds: float = 1.5 * HOUR
    window_growth_factor: float = 1.5
    min_growth_bytes_per_hour: float = 1e6
    z_slope: float = 6.0
    z_curvature: float = 3.0
    min_late_to_early_ratio: float = 0.6
    max_late_to_early_ratio: float = 4.0
    spread_parts: int = 4
    spread_part_seconds: float = 2 * HOUR
    stable_seconds: float = 45 * MINUTE
    stable_slope_share: float = 0.25
    min_growing_parts_share: float = 0.75
    part_growth_share: float = 0.25
    step_seconds: float = 30 * MINUTE
    min_growth_share_without_step: float = 0.5
    min_new_high_fraction: float = 0.5
    daily_share: float = 0.5
    hold_seconds: float = 30 * MINUTE
    restart_min_drop_fraction: float = 0.02
    restart_jitter_multiple: float = 8.0
    suspect_seconds: float = 30 * MINUTE
    z_suspect: float = 4.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = float(getattr(self, f.name))
            spec = PARAMETERS[f.name]
            if not math.isfinite(value) or not spec.minimum <= value <= spec.maximum:
                raise ValueError(
                    f"TrendParams.{f.name} must be within [{spec.minimum:g}, {spec.maximum:g}]"
                    f" ({spec.kind}), got {value!r}"
                )
        if self.segment_seconds < 2 * self.bucket_seconds:
            raise ValueError(
                "TrendParams: segment_seconds must hold at least two buckets, got "
                f"{self.segment_seconds!r} with bucket_seconds {self.bucket_seconds!r}"
            )
        if self.min_span_seconds < 4 * self.segment_seconds:
            raise ValueError(
                "TrendParams: min_span_seconds must hold at least four segments, got "
                f"{self.min_span_seconds!r} with segment_seconds {self.segment_seconds!r}"
            )
        if self.settled_life_seconds < self.min_life_seconds:
            raise ValueError(
                "TrendParams: settled_life_seconds must be at least min_life_seconds, got "
                f"{self.settled_life_seconds!r} with min_life_seconds {self.min_life_seconds!r}"
            )
        if self.history_seconds < self.min_life_seconds + self.min_span_seconds:
            raise ValueError(
                "TrendParams: history_seconds must hold min_life_seconds + min_span_seconds,"
                f" got {self.history_seconds!r}"
            )

    @property
    def history_buckets(self) -> int:
        return math.ceil(self.history_seconds / self.bucket_seconds)

    @property
    def segment_buckets(self) -> int:
        return max(2, round(self.segment_seconds / self.bucket_seconds))

    @property
    def step_segments(self) -> int:
        """How many floor segments a one-time step (reload, deploy) takes to complete."""
        return max(1, round(self.step_seconds / self.segment_seconds))


Sensitivity = Literal["low", "normal", "high"]

# Presets move only the evidence the verdict waits for; what counts as a leak
# (rates, shapes) stays the same. 'low' waits longer and asks for stronger
# evidence (fewer false alarms, later); 'high' the opposite.
PRESETS: dict[str, dict[str, float]] = {
    "low": {
        "min_life_seconds": 8 * HOUR,
        "carry_min_life_seconds": 6 * HOUR,
        "stable_seconds": 1.5 * HOUR,
        "min_span_seconds": 2.5 * HOUR,
        "z_slope": 8.0,
    },
    "normal": {},
    "high": {
        # 3 h: past the fast fills (an LRU warm-up's steepest hours, the first
        # GC cycles), not the slow ones (TTL and fragmentation fills of 4-6 h):
        # those are the pages 'high' accepts for finding a leak from a life's
        # start in half the time.
        "min_life_seconds": 3 * HOUR,
        "carry_min_life_seconds": 3 * HOUR,
        "stable_seconds": 30 * MINUTE,
        "min_span_seconds": 1 * HOUR,
        "z_slope": 5.0,
    },
}

DEFAULT_PARAMS = TrendParams()


def params_for(sensitivity: str = "normal", **overrides: float) -> TrendParams:
    """The preset for `sensitivity` ('low' | 'normal' | 'high') with expert overrides."""
    if sensitivity not in PRESETS:
        raise ValueError(f"sensitivity must be one of {', '.join(PRESETS)}, got {sensitivity!r}")
    unknown = sorted(set(overrides) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown trend parameter(s): {', '.join(unknown)}")
    values: dict[str, float] = {**PRESETS[sensitivity], **overrides}
    base = DEFAULT_PARAMS
    converted = {
        name: int(v) if isinstance(getattr(base, name), int) else float(v)
        for name, v in values.items()
    }
    return replace(base, **converted)  # type: ignore[arg-type]
