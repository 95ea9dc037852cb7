"""Invariants of grouping over time (alerting.grouping) over generated ticks (Hypothesis).

The flush keeps caches between ticks for speed (bench/notify_groups.py): the
silence verdicts, what the last flush found firing; and it skips the silences
that cannot mute a group. These tests say none of it changes what is sent or kept.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from memalert.engine.alerting import grouping
from memalert.engine.alerting.grouping import Groups
from memalert.engine.alerting.routing import matchable
from memalert.engine.core.model import (
    GROUP_BY_ALL,
    AlertDeescalated,
    AlertEscalated,
    AlertEvent,
    AlertFired,
    AlertRepeated,
    AlertResolved,
    Grouping,
    Labels,
    Matcher,
    Route,
    RuleSet,
    Severity,
    Silence,
    matches_all,
)

KINDS = (AlertFired, AlertRepeated, AlertResolved, AlertEscalated, AlertDeescalated)
VALUES = {"target": ("api", "db"), "host": ("a", "b"), "rule": ("leak", "rss")}
NAMES = (*VALUES, "severity", "team")  # no alert has a team
PATTERNS = {**VALUES, "severity": ("warning", "critical")}

events = st.builds(
    lambda kind, rule, target, host, severity: kind(
        at=0.0,
        rule=rule,
        metric="rss_bytes",
        severity=severity,
        labels=Labels({"target": target, "host": host}),
        value=1.0,
    ),
    st.sampled_from(KINDS),
    st.sampled_from(VALUES["rule"]),
    st.sampled_from(VALUES["target"]),
    st.sampled_from(VALUES["host"]),
    st.sampled_from(Severity),
)
# A matcher draws its value from the label's own values, so that silences mute often.
matchers = st.sampled_from(NAMES).flatmap(
    lambda name: st.builds(
        lambda value, negate: Matcher.compile(name, ("!" if negate else "") + value),
        st.sampled_from((*PATTERNS.get(name, ("core",)), "*")),
        st.booleans(),
    )
)
silence_pool = st.lists(
    st.builds(
        lambda ms: Silence(matchers=tuple(ms), starts=0, ends=1e9),
        st.lists(matchers, min_size=1, max_size=3),
    ),
    max_size=3,
)
by = st.one_of(
    st.just((GROUP_BY_ALL,)),
    st.lists(st.sampled_from(("target", "host", "severity", "rule", "zone")), unique=True).map(
        tuple
    ),
)
# Each tick: its events, which silences of the pool are in force, which alerts are inhibited.
ticks = st.lists(
    st.tuples(
        st.lists(events, max_size=6),
        st.lists(st.booleans(), min_size=3, max_size=3),
        st.sets(st.tuples(st.sampled_from(VALUES["rule"]), st.sampled_from(("a", "b")))),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(by=by, pool=silence_pool, ticks=ticks)
def test_the_flush_caches_change_nothing_sent_or_kept(
    by: tuple[str, ...],
    pool: list[Silence],
    ticks: list[tuple[list[AlertEvent], list[bool], set[tuple[str, str]]]],
) -> None:
    # Short intervals, so that flushes and repeats happen within a few ticks.
    grouped = Grouping(by=by, interval=30.0, repeat=60.0)
    ruleset = RuleSet(rules=(), routes=(Route(matchers=(), notify=("pager",), grouping=grouped),))
    cached: Groups = {}
    fresh: Groups = {}
    for tick, (batch, in_force, muted_hosts) in enumerate(ticks):
        now = tick * 15.0
        timed = [replace(e, at=now) for e in batch]
        silences = [s for s, on in zip(pool, in_force, strict=False) if on]
        inhibited = frozenset(
            (rule, Labels({"target": t, "host": host}))
            for rule, host in muted_hosts
            for t in VALUES["target"]
        )
        cached, sent = grouping.step(
            ruleset, cached, timed, now=now, inhibited=inhibited, silences=silences
        )
        # The same tick from groups that forgot every cache: what a restart sees.
        forgot = {k: replace(g, silenced=None, seen=None) for k, g in fresh.items()}
        fresh, expected = grouping.step(
            ruleset, forgot, timed, now=now, inhibited=inhibited, silences=silences
        )
        assert sent == expected
        assert cached == fresh
        for (_, labels), group in cached.items():
            may_mute = grouping._may_mute(labels, tuple(silences))
            for event in group.alerts.values():
                for silence in silences:
                    if matches_all(silence.matchers, matchable(event)):
                        assert silence in may_mute, "a silence that mutes an alert was skipped"
