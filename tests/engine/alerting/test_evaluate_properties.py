"""Invariants of the evaluator over generated rules and series (Hypothesis)."""

from __future__ import annotations

from dataclasses import replace

from builders import run_series
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import rules, series

from memalert.engine.core.model import Rule

ORDER = {"pending": 0, "firing": 1, "escalated": 1, "deescalated": 1, "repeated": 1, "resolved": 2}


@settings(max_examples=300, deadline=None)
@given(rule=rules(), values=series)
def test_valid_rules_never_crash_and_events_follow_the_state_machine(
    rule: Rule, values: list[float | None]
) -> None:
    firing = False
    for _, event, _ in run_series(rule, values, repeat_interval=60):
        if event in {"escalated", "deescalated", "repeated", "resolved"}:
            assert firing, f"{event} while not firing"
        if event == "firing":
            assert not firing, "fired twice without resolving"
        firing = event in {"firing", "escalated", "deescalated", "repeated"} or (
            firing and event == "pending"
        )


@settings(max_examples=300, deadline=None)
@given(rule=rules(hysteresis=False), values=series, bump=st.floats(min_value=0, max_value=30))
def test_thresholds_are_monotone(rule: Rule, values: list[float | None], bump: float) -> None:
    """A stricter threshold never makes an alert fire at an evaluation where it did not."""
    sign = 1 if rule.direction == "above" else -1
    stricter = replace(rule, thresholds={k: t + sign * bump for k, t in rule.thresholds.items()})
    assert _firing_ticks(stricter, values) <= _firing_ticks(rule, values)


@settings(max_examples=300, deadline=None)
@given(
    rule=rules(),
    start=st.floats(min_value=0, max_value=100),
    wobble=st.lists(st.floats(min_value=0, max_value=1), min_size=5, max_size=60),
)
def test_hysteresis_never_flaps(rule: Rule, start: float, wobble: list[float]) -> None:
    """Once firing, values that stay beyond every recover threshold never resolve it."""
    assume(rule.recover)
    level = min(rule.thresholds)
    trigger, recover = rule.thresholds[level], rule.recover[level]
    sign = 1 if rule.direction == "above" else -1
    # Fire first (held long enough for `for`), then wander between recover and trigger.
    fire = [trigger + sign * 1.0] * 20
    wander = [recover + sign * (0.01 + w * abs(trigger - recover)) for w in wobble]
    events = [event for _, event, _ in run_series(rule, fire + wander)]
    assert "resolved" not in events
    assert events.count("firing") == 1


def _firing_ticks(rule: Rule, values: list[float | None]) -> set[float]:
    firing_at: set[float] = set()
    firing = False
    events = {t: e for t, e, _ in run_series(rule, values)}
    for tick in range(len(values)):
        now = tick * 15.0
        event = events.get(now)
        if event in {"firing", "escalated", "deescalated"}:
            firing = True
        elif event == "resolved":
            firing = False
        if firing:
            firing_at.add(now)
    return firing_at
