"""The state machine of docs/alerting-semantics.md, as tables of series -> expected transitions."""

from __future__ import annotations

import pytest
from builders import C, W, make_rule, run_series, sample

from memalert.engine.alerting.evaluate import LOOKBACK_SECONDS, EvalState, evaluate
from memalert.engine.alerting.views import active_alerts
from memalert.engine.core.model import Labels, Matcher, RuleSet, Silence

CASES = [
    pytest.param(
        make_rule(above={W: 10, C: 20}),
        [5, 15, 25, 15, 5],
        [
            (15, "firing", "warning"),
            (30, "escalated", "critical"),
            (45, "deescalated", "warning"),
            (60, "resolved", "warning"),
        ],
        id="above-escalate-deescalate-resolve",
    ),
    pytest.param(
        make_rule(above={W: 10}, for_s=30),
        [15, 15, 15, 15, 5],
        [(0, "pending", "warning"), (30, "firing", "warning"), (60, "resolved", "warning")],
        id="for-holds-pending-then-fires",
    ),
    pytest.param(
        make_rule(above={W: 10}, for_s=60),
        [15, 15, 5, 15],
        [(0, "pending", "warning"), (45, "pending", "warning")],
        id="pending-dropped-without-resolution",
    ),
    pytest.param(
        make_rule(above={W: 10}, keep_s=30),
        [15, 5, 15, 5, 5, 5],
        [(0, "firing", "warning"), (75, "resolved", "warning")],
        id="keep-firing-for-bridges-dips",
    ),
    pytest.param(
        make_rule(above={W: 10}, recover={W: 8}),
        [11, 9, 9, 7, 11],
        [(0, "firing", "warning"), (45, "resolved", "warning"), (60, "firing", "warning")],
        id="recover-threshold-hysteresis",
    ),
    pytest.param(
        make_rule(below={W: 100, C: 50}),
        [200, 90, 40, 90, 200],
        [
            (15, "firing", "warning"),
            (30, "escalated", "critical"),
            (45, "deescalated", "warning"),
            (60, "resolved", "warning"),
        ],
        id="below",
    ),
    pytest.param(
        make_rule(above={W: 10, C: 20}, for_s=30),
        [15, 15, 15, 25, 25, 25, 25],
        [
            (0, "pending", "warning"),
            (30, "firing", "warning"),
            (45, "pending", "critical"),
            (75, "escalated", "critical"),
        ],
        id="each-level-has-its-own-pending-timer",
    ),
    pytest.param(
        make_rule(above={W: 10, C: 20}, for_s=30),
        [25, 25, 25, 5],
        [(0, "pending", "critical"), (30, "firing", "critical"), (45, "resolved", "critical")],
        id="straight-to-critical",
    ),
    pytest.param(
        make_rule(above={W: 10, C: 20}, keep_s=30),
        [25, 15, 15, 15, 25, 15, 15, 15],
        [
            (0, "firing", "critical"),
            (45, "deescalated", "warning"),
            (60, "escalated", "critical"),
            (105, "deescalated", "warning"),
        ],
        id="deescalation-waits-keep-firing-for",
    ),
    pytest.param(
        make_rule(above={W: 10}),
        [15] + [None] * 21,
        [(0, "firing", "warning"), (315, "resolved", "warning")],
        id="missing-samples-use-lookback-then-resolve",
    ),
    pytest.param(
        make_rule(above={W: 10}, keep_s=60),
        [15] + [None] * 25,
        [(0, "firing", "warning"), (375, "resolved", "warning")],
        id="missing-data-holds-for-keep-firing-for",
    ),
    pytest.param(
        make_rule(above={W: 10}, for_s=30),
        [15, None, 15, 15],
        [(0, "pending", "warning"), (30, "firing", "warning")],
        id="a-skipped-sample-does-not-reset-pending",
    ),
    # `for` per level: each level waits its own `for`, as two Prometheus rules would.
    pytest.param(
        make_rule(above={W: 10, C: 20}, for_levels={C: 30}),
        [25, 25, 25, 25, 15, 5],
        [
            (0, "firing", "warning"),
            (30, "escalated", "critical"),
            (60, "deescalated", "warning"),
            (75, "resolved", "warning"),
        ],
        id="for-per-level-critical-waits-longer",
    ),
    pytest.param(
        make_rule(above={W: 10, C: 20}, for_levels={W: 60, C: 15}),
        [25, 25, 25, 25, 25, 25, 25, 15, 5],
        [
            (0, "pending", "critical"),
            (15, "firing", "critical"),
            (105, "deescalated", "warning"),
            (120, "resolved", "warning"),
        ],
        id="for-per-level-warning-fires-under-critical-after-its-own-for",
    ),
    pytest.param(
        make_rule(above={W: 10, C: 20}, for_levels={W: 60, C: 15}),
        [25, 25, 25, 15, 15, 15, 15, 5],
        [
            (0, "pending", "critical"),
            (15, "firing", "critical"),
            # Warning is still pending (since 0): critical resolves, warning fires at 60.
            (45, "resolved", "critical"),
            (60, "firing", "warning"),
            (105, "resolved", "warning"),
        ],
        id="for-per-level-a-pending-warning-outlives-a-resolved-critical",
    ),
    pytest.param(
        make_rule(above={W: 10, C: 20}, for_levels={W: 60, C: 15}, keep_s=30),
        [25, 25, 25, 5, 5, 5, 5, 5],
        [(0, "pending", "critical"), (15, "firing", "critical"), (75, "resolved", "critical")],
        id="for-per-level-keep-firing-for-holds-only-levels-that-fired",
    ),
]


@pytest.mark.parametrize(("rule", "values", "expected"), CASES)
def test_transitions(rule, values, expected):  # type: ignore[no-untyped-def]
    assert run_series(rule, values) == expected


def test_repeat_interval_renotifies_while_firing() -> None:
    events = run_series(make_rule(above={W: 10}), [15] * 10, repeat_interval=60)
    assert events == [
        (0, "firing", "warning"),
        (60, "repeated", "warning"),
        (120, "repeated", "warning"),
    ]


def test_silence_suppresses_notification_not_evaluation() -> None:
    rule = make_rule(above={W: 10})
    ruleset = RuleSet(rules=(rule,), repeat_interval=1e9)
    silence = Silence(matchers=(Matcher.compile("target", "api"),), starts=0, ends=30)
    state = EvalState()
    log: list[tuple[float, str, bool]] = []
    for tick in range(5):
        now = tick * 15.0
        state, events = evaluate(ruleset, [sample(15, now)], state, now, silences=[silence])
        log.extend((e.at, e.event, e.silenced) for e in events)
    # Fired while silenced (evaluated, marked silenced); notified once when the silence ended.
    assert log == [(0, "firing", True), (30, "repeated", False)]


def test_up_zero_is_a_staleness_marker() -> None:
    rule = make_rule(above={W: 10})
    ruleset = RuleSet(rules=(rule,))
    state, events = evaluate(ruleset, [sample(15, 0)], EvalState(), 0)
    assert [e.event for e in events] == ["firing"]
    up = sample(0, 15, metric="up")
    state, events = evaluate(ruleset, [up], state, 15)
    assert [(e.event, e.reason) for e in events] == [("resolved", "no data")]


def test_stale_series_are_forgotten_after_lookback() -> None:
    ruleset = RuleSet(rules=(make_rule(),))
    state, _ = evaluate(ruleset, [sample(1, 0)], EvalState(), 0)
    assert state.series
    state, _ = evaluate(ruleset, [], state, LOOKBACK_SECONDS + 1)
    assert not state.series


def test_where_matchers_and_rule_labels() -> None:
    rule = make_rule(
        metric="leak_bytes", above={W: 10}, where={"component": "ca*"}, labels={"team": "core"}
    )
    ruleset = RuleSet(rules=(rule,))
    samples = [
        sample(50, 0, metric="leak_bytes", component="cache"),
        sample(50, 0, metric="leak_bytes", component="db"),
        sample(50, 0, metric="leak_bytes"),
    ]
    state, events = evaluate(ruleset, samples, EvalState(), 0)
    assert [e.labels for e in events] == [Labels(target="api", component="cache", team="core")]
    views = active_alerts(ruleset, state, 0)
    assert [(v.state, v.severity.label) for v in views] == [("firing", "warning")]


def test_negated_matcher() -> None:
    rule = make_rule(above={W: 10}, where={"target": "!batch*"})
    ruleset = RuleSet(rules=(rule,))
    samples = [sample(50, 0), sample(50, 0).__class__("rss_bytes", Labels(target="batch-1"), 50, 0)]
    _, events = evaluate(ruleset, samples, EvalState(), 0)
    assert [e.labels["target"] for e in events] == ["api"]


def test_removed_rule_drops_its_instances() -> None:
    ruleset = RuleSet(rules=(make_rule(name="gone", above={W: 10}),))
    state, _ = evaluate(ruleset, [sample(15, 0)], EvalState(), 0)
    state, events = evaluate(RuleSet(rules=()), [sample(15, 15)], state, 15)
    assert not state.instances
    assert events == []


def test_summary_is_rendered_with_units() -> None:
    rule = make_rule(
        metric="leak_bytes",
        above={W: 50 * 2**20},
        summary="{{ target }} leaks {{ value | bytes }} ({{ growth | bytes }}/h)",
    )
    ruleset = RuleSet(rules=(rule,))
    samples = [
        sample(100e6, 0, metric="leak_bytes"),
        sample(10 * 2**20, 0, metric="leak_growth_bytes_per_hour"),
    ]
    _, events = evaluate(ruleset, samples, EvalState(), 0)
    assert events[0].summary == "api leaks 95.4 MiB (10.0 MiB/h)"


def test_evaluate_is_pure() -> None:
    ruleset = RuleSet(rules=(make_rule(above={W: 10}, for_s=30),))
    state0 = EvalState()
    first = evaluate(ruleset, [sample(15, 0)], state0, 0)
    second = evaluate(ruleset, [sample(15, 0)], state0, 0)
    assert first == second
    assert state0 == EvalState()


def test_summaries_say_what_each_transition_was() -> None:
    """Rendered on first read, each summary still shows its own moment."""
    rule = make_rule(
        above={W: 10, C: 20},
        for_s=15,
        labels={"team": "core"},
        summary="{{ state }} {{ severity }} {{ value | number }}/{{ threshold | number }} "
        "for {{ firing_for | number }} ({{ team }})",
    )
    ruleset = RuleSet(rules=(rule,))
    state = EvalState()
    seen = []
    for tick, value in enumerate([15, 15, 25, 25, 5]):
        state, events = evaluate(ruleset, [sample(value, tick * 15.0)], state, tick * 15.0)
        seen.extend(events)
    assert [(e.at, e.summary) for e in seen] == [
        (0, "pending warning 15/10 for n/a (core)"),
        (15, "firing warning 15/10 for 0 (core)"),
        (30, "pending critical 25/20 for n/a (core)"),
        (45, "escalated critical 25/20 for 30 (core)"),
        (60, "resolved critical 5/20 for 45 (core)"),
    ]


def test_a_broken_summary_still_leaves_a_message() -> None:
    rule = make_rule(above={W: 10}, summary="{{ value | bytes }} {{ nope() }}")
    _, events = evaluate(RuleSet(rules=(rule,)), [sample(15, 0)], EvalState(), 0)
    assert [e.event for e in events] == ["firing"]
    assert events[0].summary == (
        "[template error in summary: 'nope' is undefined] r warning api value=15 B"
    )


def test_only_the_series_that_went_away_resolve() -> None:
    ruleset = RuleSet(rules=(make_rule(above={W: 10}),))
    state, _ = evaluate(ruleset, [sample(15, 0), sample(15, 0, target="db")], EvalState(), 0)
    down = sample(0, 15, metric="up", target="db")
    state, events = evaluate(ruleset, [sample(15, 15), down], state, 15)
    assert [(e.event, e.labels["target"], e.reason) for e in events] == [
        ("resolved", "db", "no data")
    ]
    assert [key[1]["target"] for key in state.instances] == ["api"]


def test_a_reloaded_where_resolves_what_it_no_longer_selects() -> None:
    before = RuleSet(rules=(make_rule(above={W: 10}),))
    state, _ = evaluate(before, [sample(15, 0)], EvalState(), 0)
    after = RuleSet(rules=(make_rule(above={W: 10}, where={"target": "db"}),))
    state, events = evaluate(after, [sample(15, 15)], state, 15)
    assert [(e.event, e.reason) for e in events] == [("resolved", "no data")]
    assert not state.instances
