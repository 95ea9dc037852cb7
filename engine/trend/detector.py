"""The per-target trend leak detector: raw tracker samples in, leak metrics out.

`TrendDetector.observe(samples)` takes one tick's samples and returns, for
every target with an `rss_bytes` or `uss_bytes` sample, the detector metrics
of docs/rules.md#metrics with the same labels and timestamp:

- `leak_bytes`: memory above the floor the target had before its current
  sustained upward trend (0 when there is none),
- `leak_growth_bytes_per_hour`: the trend's current rate (0 when none),
- `leak_confidence`: 0..1, >= 0.5 while the evidence passes every criterion,
- `time_to_limit_seconds`: when a leak grows and `limit_bytes` is known.

USS is preferred over RSS; `up` = 0 or a missing sample is a gap, never a
reset. docs/leak-detection.md describes the method and its parameters.

The analysis is the pure `memalert.engine.trend.state.update`; this class only keeps the
dict of per-target states around it, so live runs and dry-run replays give
the same numbers for the same samples. Not thread-safe: the engine calls it
from its one tick thread.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from memalert.engine.core.metrics import DETECTOR_METRICS
from memalert.engine.core.model import DetectorSettings, Labels, RuleSet, Sample
from memalert.engine.trend.params import DEFAULT_PARAMS, TrendParams, params_for
from memalert.engine.trend.state import TrendResult, TrendState, update

__all__ = ["DETECTOR_METRICS", "TrendDetector", "TrendParams", "TrendResult"]

# USS excludes pages shared with other processes, so it is the better leak
# signal; RSS is the fallback when USS is not readable.
SOURCE_METRICS = ("uss_bytes", "rss_bytes")
_INPUT_METRICS = frozenset((*SOURCE_METRICS, "limit_bytes", "up"))


@dataclass(frozen=True, kw_only=True, slots=True)
class _TargetTick:
    """One target's inputs in one call: its source samples in time order, limit, up flag."""

    sources: tuple[Sample, ...]
    limit: float | None
    up: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class _Tracked:
    metric: str  # which of SOURCE_METRICS feeds this state
    state: TrendState
    result: TrendResult
    fed_at: float  # when `metric` last fed the state


class TrendDetector:
    """A dict of per-target `TrendState`s folded forward one tick at a time.

    `params` apply to every target but those in `per_target` (the rule files'
    `detector:` sections, see `for_ruleset`).
    """

    def __init__(
        self,
        params: TrendParams | None = None,
        *,
        per_target: Mapping[str, TrendParams] | None = None,
    ) -> None:
        self._targets: dict[str, _Tracked] = {}
        self.configure(params, per_target=per_target)

    @classmethod
    def for_ruleset(cls, ruleset: RuleSet) -> TrendDetector:
        detector = cls()
        detector.configure_for(ruleset)
        return detector

    def configure(
        self, params: TrendParams | None, *, per_target: Mapping[str, TrendParams] | None = None
    ) -> None:
        """Set the parameters; the history kept so far stays (a reload is not a restart)."""
        self._params = params or DEFAULT_PARAMS
        self._per_target = dict(per_target or {})

    def configure_for(self, ruleset: RuleSet) -> None:
        """The parameters the rule set's `detector:` sections ask for."""
        self.configure(
            settings_params(ruleset.detector),
            per_target={
                t.name: settings_params(t.detector)
                for t in ruleset.targets
                if t.detector is not None
            },
        )

    def params_of(self, target: str) -> TrendParams:
        return self._per_target.get(target, self._params)

    @property
    def params(self) -> TrendParams:
        return self._params

    def results(self) -> Mapping[str, TrendResult]:
        """The latest result per target (for /leaks and diagnostics)."""
        return {target: tracked.result for target, tracked in self._targets.items()}

    def floor_history(self) -> dict[str, tuple[tuple[float, float], ...]]:
        """Per target, the (bucket start, lowest sample) of its current life (the dashboard)."""
        return {
            target: floors_of(tracked.state, self.params_of(target))
            for target, tracked in self._targets.items()
        }

    def states(self) -> Mapping[str, TrendState]:
        """The state kept per target (immutable; for diagnostics and benchmarks)."""
        return {target: tracked.state for target, tracked in self._targets.items()}

    def forget(self, targets: Iterable[str]) -> None:
        """Drop the history of targets gone for good (discovered ones past `forget_after`)."""
        for target in targets:
            self._targets.pop(target, None)

    def observe(self, samples: Iterable[Sample]) -> list[Sample]:
        """Fold one tick's raw samples in; return the detector samples for that tick.

        A replay may hand over several samples of a target at once (recorded
        more often than the rules evaluate): all are folded in, in time order,
        and the result of the newest is returned.
        """
        out: list[Sample] = []
        for target, tick in _group(samples).items():
            tracked = self._advance(target, tick)
            self._targets[target] = tracked
            out.extend(_detector_samples(tick.sources[-1], tracked.result))
        return out

    def _advance(self, target: str, tick: _TargetTick) -> _Tracked:
        previous = self._targets.get(target)
        newest = tick.sources[-1]
        metric, state, fed_at = newest.metric, TrendState(), newest.ts
        feeding = tick.up  # a target that is down keeps its history: a gap is not a reset
        if previous is not None and previous.metric == metric:
            state = previous.state
        elif (
            previous is not None
            and SOURCE_METRICS.index(metric) > SOURCE_METRICS.index(previous.metric)
            # USS may be missing for two floor segments before the target falls back to RSS.
            and newest.ts - previous.fed_at <= 2 * self.params_of(target).segment_seconds
        ):
            # USS missing for a few ticks (one child's smaps unreadable) is a
            # gap in the USS history, not a reason to switch to RSS.
            metric, state, fed_at, feeding = previous.metric, previous.state, previous.fed_at, False
        # Otherwise a new source starts a new history: USS and RSS differ by
        # the shared pages, and switching between them would read as a step.
        result = previous.result if previous is not None else None
        params = self.params_of(target)
        for sample in tick.sources:
            value = sample.value if feeding else math.nan
            state, result = update(state, sample.ts, value, tick.limit, params)
        if feeding:
            fed_at = newest.ts
        assert result is not None  # a _TargetTick always has a source sample
        return _Tracked(metric=metric, state=state, result=result, fed_at=fed_at)


def floors_of(state: TrendState, params: TrendParams) -> tuple[tuple[float, float], ...]:
    """The bucket minima of `state`'s life with their times; gaps (NaN) left out."""
    return tuple(
        (state.first + i * params.bucket_seconds, low)
        for i, low in enumerate(state.lows)
        if math.isfinite(low)
    )


def settings_params(settings: DetectorSettings) -> TrendParams:
    """The parameters of a `detector:` section (checked when its rule file was)."""
    return params_for(settings.sensitivity, **dict(settings.overrides))


def _group(samples: Iterable[Sample]) -> dict[str, _TargetTick]:
    """Pick each target's source samples (USS over RSS), latest limit and up flag."""
    by_target: dict[str, dict[str, list[Sample]]] = {}
    for sample in samples:
        target = sample.labels.get("target")
        if not target or sample.metric not in _INPUT_METRICS:
            continue
        by_target.setdefault(target, {}).setdefault(sample.metric, []).append(sample)
    ticks: dict[str, _TargetTick] = {}
    for target, metrics in by_target.items():
        sources = next((metrics[m] for m in SOURCE_METRICS if m in metrics), None)
        if sources is None:
            continue
        limits = metrics.get("limit_bytes")
        ups = metrics.get("up")
        ticks[target] = _TargetTick(
            sources=tuple(sorted(sources, key=lambda s: s.ts)),
            limit=max(limits, key=lambda s: s.ts).value if limits else None,
            up=not ups or max(ups, key=lambda s: s.ts).value != 0,
        )
    return ticks


def _detector_samples(source: Sample, result: TrendResult) -> list[Sample]:
    labels: Labels = source.labels
    values: dict[str, float | None] = {
        "leak_bytes": result.leak_bytes,
        "leak_growth_bytes_per_hour": result.growth_bytes_per_hour,
        "leak_confidence": result.confidence,
        "time_to_limit_seconds": result.time_to_limit_seconds,
    }
    return [
        Sample(metric=metric, labels=labels, value=value, ts=source.ts)
        for metric, value in values.items()
        if value is not None
    ]
