"""Evaluator speed: 100 rules x 100 targets = 10,000 alert instances per tick.

Target (issue 2): at most 20 ms per tick on the 2-core reference machine; each
figure is printed with the ratio target / figure (above 1 meets the target).
About half the instances are active (pending or firing) and values wander
across the thresholds, so ticks include real transitions, not just skips; the
first tick has about 5,000 alerts change state at once.

Summaries are rendered when first read, so by default the figures leave out
their rendering (pending, silenced and `memalert test` events are never read);
`--read-summaries` reads every event's summary inside the timed part, which is
what a tick whose every event is notified pays in all.
Run: python bench/evaluate.py [--ticks N] [--read-summaries]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memalert.engine.alerting.evaluate import EvalState, evaluate
from memalert.engine.core.model import Labels, Rule, RuleSet, Sample, Severity

TARGET_MS = 20.0


def build(rules_n: int, targets_n: int) -> tuple[RuleSet, list[Labels]]:
    rules = tuple(
        Rule(
            name=f"rule-{i}",
            metric="rss_bytes",
            direction="above",
            thresholds={Severity.WARNING: 400.0 + i, Severity.CRITICAL: 700.0 + i},
            recover={Severity.WARNING: 380.0 + i},
            for_seconds=30.0 * (i % 3),
            keep_firing_for_seconds=15.0 * (i % 2),
            summary="{{ target }} uses {{ value | bytes }}",
        )
        for i in range(rules_n)
    )
    labels = [Labels(target=f"t{j}") for j in range(targets_n)]
    return RuleSet(rules=rules, repeat_interval=3600.0), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--read-summaries", action="store_true")
    args = parser.parse_args()
    ruleset, labels = build(args.rules, args.targets)
    rng = random.Random(7)
    values = [rng.uniform(0, 1000) for _ in labels]
    state = EvalState()
    timings: list[float] = []
    transitions = 0
    for tick in range(args.ticks):
        now = tick * 15.0
        values = [min(1200.0, max(0.0, v + rng.gauss(0, 40))) for v in values]
        samples = [Sample("rss_bytes", lab, v, now) for lab, v in zip(labels, values, strict=True)]
        start = time.perf_counter()
        state, events = evaluate(ruleset, samples, state, now)
        if args.read_summaries:
            for event in events:
                _ = event.summary
        timings.append((time.perf_counter() - start) * 1000)
        transitions += len(events)
    active = len(state.instances)
    timings.sort()
    median = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99) - 1]
    instances = args.rules * args.targets
    print(
        f"instances per tick: {instances} ({active} active at the end), "
        f"{transitions} events over {args.ticks} ticks"
    )
    print(
        f"evaluate median: {median:.2f} ms  (target <= {TARGET_MS:.0f} ms)  "
        f"ratio {TARGET_MS / median:.2f}"
    )
    print(
        f"evaluate p99:    {p99:.2f} ms  (target <= {TARGET_MS:.0f} ms)  "
        f"ratio {TARGET_MS / p99:.2f}"
    )
    print(f"evaluate worst:  {timings[-1]:.2f} ms  (no target)")


if __name__ == "__main__":
    main()
