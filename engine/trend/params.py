"""The trend detector's parameters, each chosen from first principles.

docs/leak-detection.md explains every field and why its default is what it
is; the short comments here only say what each one controls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

HOUR = 3600.0


@dataclass(frozen=True, kw_only=True, slots=True)
class TrendParams:
    """Tuning of the trend detector; the defaults suit 15 s sampling."""

    # Storage resolution: one bucket keeps min, max and noise of its samples.
    bucket_seconds: float = 300.0
    # Transients shorter than this never lift the floor (GC cycles, batch jobs).
    floor_window_seconds: float = 1800.0
    # How much history a target keeps; bounds memory per target.
    history_seconds: float = 24 * HOUR
    # Growth must be sustained at least this long to be called a leak.
    min_span_seconds: float = 1 * HOUR
    # Windows judged end now and grow from min_span by this factor up to the
    # history; the longest passing one dates the onset.
    window_growth_factor: float = 1.5
    # A window is thinned to at most this many floor points before the statistics.
    max_points: int = 16
    # Slower growth than this is not worth calling a leak.
    min_growth_bytes_per_hour: float = 1e6
    # The floor's noise scale, as a share of the samples' noise.
    floor_noise_ratio: float = 0.75
    # Growth over a window (its largest step cut out) / the floor's noise scale.
    min_signal_to_noise: float = 4.0
    # The largest rise within this span is what a one-time step would look like...
    step_seconds: float = 600.0
    # ... and at least this share of the growth must remain without it.
    min_growth_share_without_step: float = 0.4
    # Slope in the later half of a window / slope in the earlier half, and back.
    min_late_to_early_ratio: float = 0.5
    min_early_to_late_ratio: float = 0.25
    # Share of the window's growth that must be above every earlier floor of the life.
    min_new_high_fraction: float = 0.5
    # The floor now may sit below the window's highest floor by this many noise
    # scales or this share of the window's rise, whichever is larger.
    peak_tolerance_noise: float = 2.0
    peak_tolerance_share: float = 0.1
    # A declared leak stays declared this long after its last passing window.
    hold_seconds: float = 900.0
    # A restart is a sample below the floor by more than both of these.
    restart_noise_multiple: float = 8.0
    restart_min_drop_fraction: float = 0.02
    # Buckets whose median noise sets the restart threshold.
    noise_window_seconds: float = 1 * HOUR

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"TrendParams.{f.name} must be finite and >= 0, got {value!r}")
        if self.bucket_seconds <= 0 or self.floor_window_seconds < self.bucket_seconds:
            raise ValueError(
                "TrendParams: need bucket_seconds > 0 and floor_window_seconds >= bucket_seconds, "
                f"got {self.bucket_seconds!r} and {self.floor_window_seconds!r}"
            )
        if self.max_points < 4:
            raise ValueError(f"TrendParams.max_points must be >= 4, got {self.max_points!r}")
        if self.window_growth_factor <= 1 or self.min_span_seconds <= 0:
            raise ValueError(
                "TrendParams: need window_growth_factor > 1 and min_span_seconds > 0, got "
                f"{self.window_growth_factor!r} and {self.min_span_seconds!r}"
            )
        if self.history_seconds < self.min_span_seconds + self.floor_window_seconds:
            raise ValueError(
                "TrendParams: history_seconds must hold min_span_seconds plus "
                f"floor_window_seconds, got {self.history_seconds!r}"
            )

    @property
    def windows_seconds(self) -> tuple[float, ...]:
        """Window lengths judged, shortest first: min_span * factor**k within the history."""
        count = 1 + math.floor(
            math.log(max(1.0, self.history_seconds / self.min_span_seconds))
            / math.log(self.window_growth_factor)
        )
        return tuple(self.min_span_seconds * self.window_growth_factor**k for k in range(count))

    @property
    def floor_buckets(self) -> int:
        return math.ceil(self.floor_window_seconds / self.bucket_seconds)

    @property
    def history_buckets(self) -> int:
        return math.ceil(self.history_seconds / self.bucket_seconds)

    @property
    def noise_buckets(self) -> int:
        return max(1, math.ceil(self.noise_window_seconds / self.bucket_seconds))
