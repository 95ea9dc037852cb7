"""TrendDetector: tracker samples in, detector samples out, one tick at a time."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from memtraces import HOUR, MB, STEP, T0

from memalert.engine.core.model import Labels, Sample
from memalert.engine.trend.detector import DETECTOR_METRICS, TrendDetector, TrendParams
from memalert.engine.trend.params import params_for

TRACES = Path(__file__).resolve().parents[4] / "shared" / "leak-traces"
API = Labels(target="api")
# A young life waits min_life (6 h) before a leak is declared (docs/leak-detection.md);
# these tests of the wrapper around the detector let it declare after one hour.
QUICK = params_for("normal", min_life_seconds=HOUR)


def leaking(rate: float = 30 * MB, base: float = 300 * MB, seed: int = 1) -> Iterator[float]:
    """A linear leak from the first sample, with 1 MB of noise."""
    rng = random.Random(seed)
    i = 0
    while True:
        yield base + rate * i * STEP / HOUR + rng.gauss(0, MB)
        i += 1


def leaked_after_warmup(hours: float, rate: float = 30 * MB) -> float:
    """The least a leak from the first sample can measure: a life's warm-up is never
    judged, and the judged window starts at a segment's floor (docs/leak-detection.md)."""
    judged = hours * HOUR - QUICK.warmup_seconds - 2 * QUICK.segment_seconds
    return 0.85 * rate * judged / HOUR


def flat(base: float = 300 * MB, seed: int = 2) -> Iterator[float]:
    rng = random.Random(seed)
    while True:
        yield base + rng.gauss(0, MB)


def tick(ts: float, *, labels: Labels = API, **metrics: float) -> list[Sample]:
    return [Sample(metric=m, labels=labels, value=v, ts=ts) for m, v in metrics.items()]


def by_metric(samples: list[Sample]) -> dict[str, float]:
    return {s.metric: s.value for s in samples}


def run(detector: TrendDetector, values: Iterator[float], hours: float, start: float = T0) -> float:
    """Feed `hours` of rss samples; return the next timestamp."""
    ts = start
    for _ in range(int(hours * HOUR / STEP)):
        detector.observe(tick(ts, rss_bytes=next(values)))
        ts += STEP
    return ts


def test_every_target_with_rss_gets_the_detector_metrics_with_its_labels_and_time() -> None:
    detector = TrendDetector(QUICK)
    web = Labels(target="web", kind="process")

    out = detector.observe(
        [
            *tick(T0, rss_bytes=1e8, limit_bytes=1e9, vms_bytes=5e8),
            *tick(T0, labels=web, rss_bytes=2e8),
            *tick(T0, labels=Labels(target="idle"), vms_bytes=1e9, up=1),
        ]
    )

    assert {(s.metric, s.labels) for s in out} == {
        (m, labels) for m in DETECTOR_METRICS[:3] for labels in (API, web)
    }
    assert all(s.ts == T0 for s in out)
    assert by_metric([s for s in out if s.labels == API]) == {
        "leak_bytes": 0.0,
        "leak_growth_bytes_per_hour": 0.0,
        "leak_confidence": 0.0,
    }


def test_a_leak_is_reported_with_its_size_rate_and_time_to_the_limit() -> None:
    detector = TrendDetector(QUICK)
    values = leaking(rate=30 * MB)
    ts = run(detector, values, hours=4)

    out = by_metric(detector.observe(tick(ts, rss_bytes=next(values), limit_bytes=1000 * MB)))

    assert leaked_after_warmup(4) <= out["leak_bytes"] <= 4 * 30 * MB * 1.1
    assert out["leak_growth_bytes_per_hour"] == pytest.approx(30 * MB, rel=0.2)
    assert out["leak_confidence"] >= 0.5
    # About 420 MB now; the limit is 580 MB of headroom away at 30 MB/h.
    assert out["time_to_limit_seconds"] == pytest.approx(580 / 30 * HOUR, rel=0.2)


def test_no_time_to_limit_without_a_limit_or_without_growth() -> None:
    growing, steady = TrendDetector(QUICK), TrendDetector(QUICK)
    ts = run(growing, leaking(), hours=4)
    run(steady, flat(), hours=4)

    assert "time_to_limit_seconds" not in by_metric(growing.observe(tick(ts, rss_bytes=5e8)))
    out = by_metric(steady.observe(tick(ts, rss_bytes=3e8, limit_bytes=1e9)))
    assert "time_to_limit_seconds" not in out
    assert out["leak_bytes"] == 0


def test_uss_is_preferred_over_rss_when_the_tick_has_both() -> None:
    detector = TrendDetector(QUICK)
    growing, steady = leaking(), flat()
    ts = T0
    for _ in range(int(4 * HOUR / STEP)):
        # RSS grows (say, shared pages mapped in) but the process's own pages do not.
        out = detector.observe(tick(ts, rss_bytes=next(growing), uss_bytes=next(steady)))
        ts += STEP

    assert by_metric(out)["leak_bytes"] == 0


def test_a_change_of_source_metric_starts_a_new_history() -> None:
    detector = TrendDetector(QUICK)
    values = leaking()
    ts = run(detector, values, hours=4)
    assert detector.results()["api"].leak_bytes > 0

    out = by_metric(detector.observe(tick(ts, uss_bytes=next(values))))

    assert out["leak_bytes"] == 0
    assert out["leak_confidence"] == 0


def test_uss_missing_for_a_few_ticks_is_a_gap_and_for_long_a_fall_back_to_rss() -> None:
    detector = TrendDetector(QUICK)
    values = leaking()
    ts = T0
    for i in range(int(4 * HOUR / STEP)):
        value = next(values)
        # Every tenth tick one child's smaps was unreadable: RSS only (and larger).
        if i % 10 == 9:
            detector.observe(tick(ts, rss_bytes=value + 50 * MB))
        else:
            detector.observe(tick(ts, uss_bytes=value))
        ts += STEP
    assert leaked_after_warmup(4) <= detector.results()["api"].leak_bytes <= 4 * 30 * MB * 1.1

    for _ in range(int(HOUR / STEP)):
        out = by_metric(detector.observe(tick(ts, rss_bytes=next(values) + 50 * MB)))
        ts += STEP

    assert out["leak_confidence"] < 0.5  # RSS from scratch after 30 min without USS


def test_a_target_that_is_down_keeps_its_history() -> None:
    detector = TrendDetector(QUICK)
    values = leaking()
    ts = run(detector, values, hours=3)
    before = detector.results()["api"]
    assert before.leak_bytes > 0

    for _ in range(int(HOUR / STEP)):
        # The tracker may still emit a stale rss sample with up = 0: ignored.
        detector.observe(tick(ts, rss_bytes=1.0, up=0))
        next(values)
        ts += STEP
    after_outage = detector.results()["api"]
    run(detector, values, hours=0.5, start=ts)

    assert after_outage.leak_bytes == before.leak_bytes
    assert after_outage.restarts == 0
    assert detector.results()["api"].leak_bytes > before.leak_bytes


def test_a_gap_without_samples_is_not_a_reset() -> None:
    detector = TrendDetector(QUICK)
    values = leaking()
    ts = run(detector, values, hours=3)
    for _ in range(int(2 * HOUR / STEP)):  # two hours of nothing at all
        next(values)
        ts += STEP

    run(detector, values, hours=1, start=ts)

    result = detector.results()["api"]
    assert result.restarts == 0
    assert leaked_after_warmup(6) <= result.leak_bytes <= 6 * 30 * MB * 1.1


def test_several_samples_of_a_target_in_one_call_are_all_folded_in_time_order() -> None:
    one_by_one, batched = TrendDetector(QUICK), TrendDetector(QUICK)
    source = leaking()
    values = [next(source) for _ in range(int(3 * HOUR / STEP))]
    for i, value in enumerate(values):
        one_by_one.observe(tick(T0 + i * STEP, rss_bytes=value))
    for i in range(0, len(values), 3):
        chunk = [(T0 + j * STEP, values[j]) for j in range(i, min(i + 3, len(values)))]
        batched.observe([s for ts, v in reversed(chunk) for s in tick(ts, rss_bytes=v)])

    assert batched.results() == one_by_one.results()


def test_bad_values_never_raise_and_leave_the_history_alone() -> None:
    detector = TrendDetector(QUICK)
    values = leaking()
    ts = run(detector, values, hours=3)
    before = detector.results()["api"]

    for bad in (float("nan"), float("inf"), -5.0):
        out = detector.observe(tick(ts, rss_bytes=bad, limit_bytes=float("nan")))
        assert by_metric(out)["leak_bytes"] == before.leak_bytes
    # A sample older than the last one is out of order: ignored too.
    detector.observe(tick(ts - HOUR, rss_bytes=1.0))

    assert detector.results()["api"] == before


def test_params_are_checked_with_a_message_naming_the_field() -> None:
    with pytest.raises(ValueError, match="min_span_seconds"):
        TrendParams(min_span_seconds=-1)
    with pytest.raises(ValueError, match="segment_seconds"):
        TrendParams(bucket_seconds=600, segment_seconds=900)
    with pytest.raises(ValueError, match="history_seconds"):
        TrendParams(history_seconds=HOUR)
    with pytest.raises(ValueError, match="spread_parts"):
        TrendParams(spread_parts=1)
    assert TrendDetector(TrendParams(min_span_seconds=2 * HOUR)).params.min_span_seconds == 7200
    with pytest.raises(ValueError, match="sensitivity"):
        params_for("paranoid")


# -- the shared labelled traces (docs/observations.md), when present ----------------

SHARED = ("trace-001", "trace-005", "trace-006", "trace-012", "trace-021", "trace-023")


def replay_observations(path: Path) -> list[tuple[float, float]]:
    """(ts, leak_bytes) per observation, fed through the detector as dry-run does."""
    detector = TrendDetector()
    out = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            labels = Labels(target=row["target"])
            samples = [
                Sample(metric=m, labels=labels, value=float(v), ts=float(row["ts"]))
                for m, v in row["metrics"].items()
            ]
            out.append((float(row["ts"]), by_metric(detector.observe(samples))["leak_bytes"]))
    return out


@pytest.mark.skipif(not TRACES.is_dir(), reason=f"{TRACES} not present")
@pytest.mark.parametrize("name", SHARED)
def test_shared_traces_fire_only_on_leaks_and_only_after_the_onset(name: str) -> None:
    label = json.loads((TRACES / "labels.json").read_text(encoding="utf-8"))[name]

    crossings = [ts for ts, leak in replay_observations(TRACES / f"{name}.jsonl") if leak > 10e6]

    if not label["leak"]:
        assert crossings == []
    else:
        assert crossings
        assert crossings[0] >= label["start"]
