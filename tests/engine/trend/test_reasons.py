"""Why a growing target is not (yet) a leak: `held_back_by` and its words."""

from __future__ import annotations

import math
import random

import pytest
from memtraces import GENERATORS, HOUR, MB, STEP, T0, make

import memalert.engine.trend.assess as assess_module
from memalert.engine.trend.assess import SATURATION_VETO
from memalert.engine.trend.reasons import HELD_BACK_BY, describe
from memalert.engine.trend.state import TrendResult, TrendState, update


def replay(values: list[float]) -> list[TrendResult]:
    state = TrendState()
    results = []
    for i, value in enumerate(values):
        state, result = update(state, T0 + i * STEP, value, None)
        results.append(result)
    return results


def noisy(shape: list[float], seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    return [v + rng.gauss(0, 0.5 * MB) for v in shape]


def hours(h: float) -> int:
    return int(h * HOUR / STEP)


def test_a_young_steady_rise_is_held_back_by_the_lifes_age() -> None:
    rise = noisy([400 * MB + 20 * MB * i * STEP / HOUR for i in range(hours(4))])
    last = replay(rise)[-1]

    assert last.leak_bytes == 0
    assert last.held_back_by == "life_age"
    assert "younger than min_life" in describe(last)


def test_a_saturating_fill_is_held_back_as_a_fill() -> None:
    fill = noisy(
        [300 * MB + 400 * MB * (1 - math.exp(-i * STEP / (3 * HOUR))) for i in range(hours(8))]
    )
    held = {r.held_back_by for r in replay(fill)[hours(6.5) :]}

    assert held <= {"not_saturating", "not_levelling_off", SATURATION_VETO}
    assert held


def test_a_declared_leak_is_described_with_its_size_and_onset() -> None:
    rise = noisy([400 * MB + 20 * MB * i * STEP / HOUR for i in range(hours(9))])
    last = replay(rise)[-1]

    assert last.leak_bytes > 0
    assert last.held_back_by == ""
    assert describe(last).startswith("leak declared since ")


def test_flat_memory_has_no_reason_to_give() -> None:
    last = replay(noisy([400 * MB] * hours(8)))[-1]

    assert last.held_back_by == ""
    assert describe(last) == "no sustained growth"


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_every_gate_and_every_reason_given_has_words(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gates: set[str] = set()
    judge = assess_module.judge_window

    def recording(*args: object, **kwargs: object) -> assess_module.WindowEvidence | None:
        evidence = judge(*args, **kwargs)  # type: ignore[arg-type]
        if evidence is not None:
            gates.update(evidence.gates)
        return evidence

    monkeypatch.setattr(assess_module, "judge_window", recording)
    results = replay(list(make(kind, seed=0, hours=30.0).values))

    assert gates <= set(HELD_BACK_BY)
    assert {r.held_back_by for r in results} - {""} <= set(HELD_BACK_BY)
