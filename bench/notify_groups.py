"""Notification grouping speed: 10,000 active alerts in 500 groups, one tick's notification step.

Target (issue 15): at most 20 ms per tick on the 2-core reference machine; each
figure is printed with the ratio target / figure (above 1 meets the target).
20 rules fire for each of 500 targets, grouped by `target` (500 groups of 20
alerts), `group_interval: 1m` at a 15 s tick. The step timed is what
`Pipeline.step` runs after evaluation: the notifications sent at once
(`group_notifications`) and the groups' step (`grouping.step`), with one silence
in force and 1% of the alerts inhibited. Each tick brings 100 events (repeats,
resolutions, alerts firing again); every fourth tick all 500 groups are due at
once (they were created together), the worst case, and is shown on its own.
Run: python bench/notify_groups.py [--ticks N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memalert.engine.alerting import grouping
from memalert.engine.alerting.grouping import Groups
from memalert.engine.alerting.routing import group_notifications
from memalert.engine.core.model import (
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
)

TARGET_MS = 20.0
INTERVAL = 15.0


def _event(kind: type[AlertEvent], rule: int, target: int, now: float) -> AlertEvent:
    return kind(
        at=now,
        rule=f"rule-{rule}",
        metric="rss_bytes",
        severity=Severity.WARNING,
        labels=Labels(target=f"t{target}", team="core"),
        value=500.0,
        threshold=400.0,
        summary="",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--rules", type=int, default=20)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--events", type=int, default=100, help="events per tick")
    args = parser.parse_args()
    route = Route(
        matchers=(Matcher.compile("team", "core"),),
        notify=("pager",),
        grouping=Grouping(by=("target",), wait=0.0, interval=60.0, repeat=3600.0),
    )
    ruleset = RuleSet(rules=(), routes=(route,))
    silences = [Silence(matchers=(Matcher.compile("target", "t0"),), starts=0.0, ends=1e12)]
    rng = random.Random(7)
    alerts = [(r, t) for r in range(args.rules) for t in range(args.groups)]
    inhibited = frozenset(
        (f"rule-{r}", Labels(target=f"t{t}", team="core")) for r, t in rng.sample(alerts, 100)
    )
    firing = set(alerts)
    groups: Groups = {}
    groups, first = grouping.step(
        ruleset, groups, [_event(AlertFired, r, t, 0.0) for r, t in alerts], now=0.0
    )
    timings: list[float] = []
    flush_timings: list[float] = []
    sent = 0
    for tick in range(1, args.ticks + 1):
        now = tick * INTERVAL
        events = []
        for r, t in rng.sample(alerts, args.events):
            if (r, t) not in firing:
                firing.add((r, t))
                events.append(_event(AlertFired, r, t, now))
            elif rng.random() < 0.05:
                firing.discard((r, t))
                events.append(_event(AlertResolved, r, t, now))
            else:
                events.append(_event(AlertRepeated, r, t, now))
        start = time.perf_counter()
        notes = group_notifications(ruleset, events, inhibited)
        groups, flushed = grouping.step(
            ruleset, groups, events, now=now, inhibited=inhibited, silences=silences
        )
        elapsed = (time.perf_counter() - start) * 1000
        timings.append(elapsed)
        if tick % 4 == 0:
            flush_timings.append(elapsed)
        sent += len(notes) + len(flushed)
    active = sum(len(g.alerts) for g in groups.values())
    timings.sort()
    median = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99) - 1]
    flush = statistics.median(flush_timings)
    print(
        f"{len(first)} first notifications; at the end {active} alerts in {len(groups)} "
        f"groups; {sent} notifications over {args.ticks} ticks of {args.events} events"
    )
    print(
        f"notification step median: {median:.2f} ms  (target <= {TARGET_MS:.0f} ms)  "
        f"ratio {TARGET_MS / median:.2f}"
    )
    print(
        f"notification step p99:    {p99:.2f} ms  (target <= {TARGET_MS:.0f} ms)  "
        f"ratio {TARGET_MS / p99:.2f}"
    )
    print(
        f"all groups due (median):  {flush:.2f} ms  (target <= {TARGET_MS:.0f} ms)  "
        f"ratio {TARGET_MS / flush:.2f}"
    )


if __name__ == "__main__":
    main()
