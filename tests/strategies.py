"""Hypothesis strategies shared by the property tests (the attrs habit)."""

from __future__ import annotations

from hypothesis import strategies as st

from memalert.engine.core.model import Rule, Severity

W = Severity.WARNING
C = Severity.CRITICAL

durations = st.sampled_from([0.0, 15.0, 30.0, 60.0, 120.0])
values = st.floats(min_value=0, max_value=100, allow_nan=False)
maybe_values = st.one_of(st.none(), values)
series = st.lists(maybe_values, min_size=1, max_size=80)


@st.composite
def rules(draw: st.DrawFn, *, hysteresis: bool = True) -> Rule:
    """Any valid compiled rule on `rss_bytes`: one or two levels, above or below."""
    direction = draw(st.sampled_from(["above", "below"]))
    levels = draw(st.sampled_from([(W,), (C,), (W, C)]))
    points = sorted(draw(st.lists(values, min_size=2, max_size=2, unique=True)))
    if direction == "below":
        points.reverse()
    thresholds = dict(zip(levels, points, strict=False))
    recover: dict[Severity, float] = {}
    if hysteresis and draw(st.booleans()):
        gap = draw(st.floats(min_value=0.1, max_value=20))
        recover = {
            level: (t - gap if direction == "above" else t + gap) for level, t in thresholds.items()
        }
    return Rule(
        name="r",
        metric="rss_bytes",
        direction=direction,
        thresholds=thresholds,
        recover=recover,
        for_seconds=draw(durations),
        keep_firing_for_seconds=draw(durations),
        summary=draw(st.sampled_from([None, "{{ value | bytes }} {{ growth }}", "{{ nope() }}"])),
    )
