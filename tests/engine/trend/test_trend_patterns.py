"""The trend core on every pattern it must tell apart, over seeded random variants.

Each case draws a 12-hour trace from `memtraces` (rates, periods, amplitudes
and noise all random within wide ranges) and runs it through the pure
`update`. A leak must be declared after its onset and never before; nothing
else may ever be declared. "Declared" here is what an alert would see:
`leak_bytes` > 0 (the detector reports 0 whenever it sees no leak).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from memtraces import GENERATORS, HOUR, MB, T0, Trace, make

from memalert.engine.trend.params import DEFAULT_PARAMS
from memalert.engine.trend.state import TrendResult, TrendState, update

LEAKS = sorted(k for k in GENERATORS if k.startswith("leak_"))
NOT_LEAKS = sorted(k for k in GENERATORS if not k.startswith("leak_"))
SEEDS = (0, 1, 2)
LIMIT = 8e9


@dataclass(frozen=True, kw_only=True, slots=True)
class Replay:
    trace: Trace
    results: list[tuple[float, TrendResult]]
    state: TrendState

    def declared(self) -> list[tuple[float, TrendResult]]:
        return [(ts, r) for ts, r in self.results if r.leak_bytes > 0]


def replay(trace: Trace) -> Replay:
    state = TrendState()
    results = []
    for ts, value in zip(trace.times(), trace.values, strict=True):
        state, result = update(state, ts, value, LIMIT)
        results.append((ts, result))
    return Replay(trace=trace, results=results, state=state)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", NOT_LEAKS)
def test_patterns_that_are_not_leaks_are_never_declared(kind: str, seed: int) -> None:
    run = replay(make(kind, seed))

    assert run.declared() == []
    assert max(r.confidence for _, r in run.results) < 0.5


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", LEAKS)
def test_leaks_are_declared_after_their_onset_and_not_before(kind: str, seed: int) -> None:
    run = replay(make(kind, seed))
    onset = run.trace.onset
    assert onset is not None

    declared = run.declared()
    assert declared, f"{kind} seed {seed} at {run.trace.rate / MB:.0f} MB/h never declared"
    first_ts, first = declared[0]
    assert first_ts >= onset
    # Sustained for the shortest window plus a segment, not much more (these leak >= 5 MB/h);
    # a leak from a life's first sample waits for the life to be min_life old.
    young_wait = max(0.0, DEFAULT_PARAMS.min_life_seconds - (onset - T0))
    assert first_ts - onset <= 3 * HOUR + young_wait
    assert first.confidence >= 0.5
    assert first.onset is not None
    assert onset - HOUR <= first.onset <= first_ts - HOUR


@pytest.mark.parametrize("seed", SEEDS)
def test_a_linear_leak_is_measured_in_bytes_and_bytes_per_hour(seed: int) -> None:
    trace = make("leak_linear", seed)
    assert trace.onset is not None
    run = replay(trace)

    final = run.results[-1][1]
    leaked = trace.rate * (trace.times()[-1] - trace.onset) / HOUR
    assert final.leak_bytes == pytest.approx(leaked, rel=0.15)
    assert final.growth_bytes_per_hour == pytest.approx(trace.rate, rel=0.15)


def test_an_accelerating_leak_reports_its_current_rate_not_its_average() -> None:
    trace = make("leak_accelerating", 0)
    assert trace.onset is not None
    run = replay(trace)

    hours = (trace.times()[-1] - trace.onset) / HOUR
    average = run.results[-1][1].leak_bytes / hours
    assert run.results[-1][1].growth_bytes_per_hour > 1.5 * average


@pytest.mark.parametrize("seed", SEEDS)
def test_a_restart_starts_a_new_life_instead_of_ending_the_leak(seed: int) -> None:
    run = replay(make("leak_restarts", seed, hours=20))

    assert run.state.restarts >= 2
    # A restart drops what leaked (the alert resolves) and the next life's
    # growth is declared again once it has been sustained.
    largest_per_life: dict[int, float] = {}
    for _, r in run.results:
        largest_per_life[r.restarts] = max(largest_per_life.get(r.restarts, 0.0), r.leak_bytes)
    first_of_life = [
        r
        for (_, before), (_, r) in zip(run.results, run.results[1:], strict=False)
        if r.restarts > before.restarts
    ]
    assert all(r.leak_bytes == 0 for r in first_of_life)
    assert sum(1 for v in largest_per_life.values() if v > 10 * MB) >= 2


@pytest.mark.parametrize("seed", SEEDS)
def test_restarts_without_a_leak_are_new_baselines_not_leaks(seed: int) -> None:
    run = replay(make("restart_without_leak", seed))

    assert run.state.restarts >= 1
    assert run.declared() == []
