"""Scenarios for the differential test against Prometheus (`promtool test rules`).

A scenario is one memalert rule on `rss_bytes` (one or two levels, `for`,
`keep_firing_for`) plus input series in promtool's notation, either written by
hand (`runs_from_text`) or generated from a seed (`random_scenario`): values
flapping around both thresholds, gaps either side of the 5-minute lookback,
staleness markers.

`memalert_firing` runs memalert's evaluator in-process, tick by tick as
`memalert test` does, and says what fires at every evaluation time; those
answers become the expectations that `promtool_files` writes for both tools.
Used by tests/engine/test_vs_promtool.py and bench/vs_promtool.py.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from memalert.engine.alerting.evaluate import LOOKBACK_SECONDS, EvalState, evaluate
from memalert.engine.alerting.views import active_alerts
from memalert.engine.core.model import Labels, Rule, RuleSet, Sample, Severity
from memalert.engine.core.units import parse_size

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

EVALUATION_INTERVAL = 15
LEVELS = ("warning", "critical")
MEMALERT_RULE = "r"
MEMALERT_SUMMARY = "{{ target }} at {{ value | bytes }}"


@dataclass(frozen=True, slots=True)
class Run:
    """One token of promtool's notation: `a`, `axn`, `a+bxn`, `_`, `_xn` or `stale`.

    `start` and `step` count in the scenario's unit; `count` is how many
    samples (or missing samples) the token stands for.
    """

    kind: str  # "value" | "gap" | "stale"
    count: int = 1
    start: int = 0
    step: int = 0

    def token(self, unit: str) -> str:
        if self.kind == "stale":
            return "stale"
        if self.kind == "gap":
            return "_" if self.count == 1 else f"_x{self.count}"
        text = f"{self.start}{unit}"
        if self.step:
            text += f"{'+' if self.step > 0 else '-'}{abs(self.step)}{unit}"
        return text if self.count == 1 and not self.step else f"{text}x{self.count - 1}"

    def values(self) -> list[int | str | None]:
        if self.kind == "stale":
            return ["stale"]
        if self.kind == "gap":
            return [None] * self.count
        return [self.start + self.step * i for i in range(self.count)]


@dataclass(frozen=True, kw_only=True, slots=True)
class Series:
    target: str
    runs: tuple[Run, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    metric: str = "rss_bytes"

    def values(self) -> list[int | str | None]:
        return [value for run in self.runs for value in run.values()]

    def text(self, unit: str) -> str:
        return " ".join(run.token(unit) for run in self.runs)


@dataclass(frozen=True, kw_only=True, slots=True)
class Scenario:
    """One rule and its input; thresholds and values count in `unit` (e.g. MiB)."""

    name: str
    levels: Mapping[str, int]
    series: tuple[Series, ...]
    eval_times: tuple[int, ...]
    unit: str = ""
    for_s: int = 0
    keep_s: int = 0
    interval_s: int = EVALUATION_INTERVAL
    rule_labels: Mapping[str, str] = field(default_factory=dict)
    # memalert's own spelling of a staleness marker: the target reported down.
    stale_as_down: bool = False
    summaries: bool = False
    seed: int | None = None

    @property
    def factor(self) -> float:
        return parse_size(f"1{self.unit}")


@dataclass(frozen=True, kw_only=True, slots=True)
class FiringAlert:
    """What memalert reports firing for one instance at one evaluation."""

    labels: Mapping[str, str]  # sample labels + rule labels, as memalert compares them
    severity: str
    value: float
    summary: str


Expectations = dict[int, tuple[FiringAlert, ...]]


# -- memalert's answer, in-process -------------------------------------------------------


def memalert_rule(scenario: Scenario) -> Rule:
    return Rule(
        name=MEMALERT_RULE,
        metric="rss_bytes",
        direction="above",
        thresholds={
            Severity.parse(level): value * scenario.factor
            for level, value in scenario.levels.items()
        },
        for_seconds=float(scenario.for_s),
        keep_firing_for_seconds=float(scenario.keep_s),
        labels=dict(scenario.rule_labels),
        summary=MEMALERT_SUMMARY if scenario.summaries else None,
    )


def memalert_series(scenario: Scenario) -> list[Series]:
    """The input as memalert reads it: stale markers become `up` == 0 when asked."""
    if not scenario.stale_as_down:
        return list(scenario.series)
    converted: list[Series] = []
    for series in scenario.series:
        up = [
            Run("value", start=0) if r.kind == "stale" else Run("gap", count=r.count)
            for r in series.runs
        ]
        rss = [Run("gap") if r.kind == "stale" else r for r in series.runs]
        converted += [
            replace(series, runs=tuple(rss)),
            Series(target=series.target, runs=tuple(up), metric="up"),
        ]
    return converted


def memalert_samples(scenario: Scenario) -> list[Sample]:
    samples: list[Sample] = []
    for series in memalert_series(scenario):
        labels = Labels({**series.labels, "target": series.target})
        factor = scenario.factor if series.metric == "rss_bytes" else 1.0
        for step, value in enumerate(series.values()):
            if value is None:
                continue
            number = math.nan if value == "stale" else float(value) * factor
            samples.append(Sample(series.metric, labels, number, float(step * scenario.interval_s)))
    samples.sort(key=lambda s: s.ts)
    return samples


def memalert_firing(scenario: Scenario) -> Expectations:
    """Run memalert's evaluator as `memalert test` would; firing alerts per eval time."""
    ruleset = RuleSet(rules=(memalert_rule(scenario),), interval=float(EVALUATION_INTERVAL))
    samples = memalert_samples(scenario)
    checks = sorted(set(scenario.eval_times))
    expectations: Expectations = {}
    state = EvalState()
    fed = tick = 0
    while checks and tick * EVALUATION_INTERVAL <= checks[-1]:
        now = tick * EVALUATION_INTERVAL
        start = fed
        while fed < len(samples) and samples[fed].ts <= now:
            fed += 1
        state, _ = evaluate(ruleset, samples[start:fed], state, float(now))
        # A check between two evaluations sees the earlier one, as in promtool.
        due = [at for at in checks if now <= at < now + EVALUATION_INTERVAL]
        if due:
            firing = tuple(
                FiringAlert(
                    labels=view.labels.as_dict(),
                    severity=view.severity.label,
                    value=view.value if view.value is not None else math.nan,
                    summary=view.summary,
                )
                for view in active_alerts(ruleset, state, float(now))
                if view.state == "firing"
            )
            expectations.update(dict.fromkeys(due, firing))
        tick += 1
    return expectations


# -- random scenarios --------------------------------------------------------------------

_UNITS = ("", "MiB", "MB", "KiB")
_TARGETS = ("api", "worker", "db")


def random_scenario(seed: int) -> Scenario:
    """A seeded scenario: flapping around both thresholds, gaps either side of 5 min."""
    rng = random.Random(seed)
    warning = rng.choice((80, 100, 120))
    critical = warning + rng.choice((20, 50, 100))
    levels = rng.choices(
        [{"warning": warning, "critical": critical}, {"warning": warning}, {"critical": critical}],
        weights=(6, 2, 2),
    )[0]
    interval = rng.choices((15, 10, 30, 60), weights=(6, 1, 2, 1))[0]
    steps = rng.randint(24, 80)
    palette = sorted(
        {
            0,
            warning - 10,
            warning,
            warning + 10,
            (warning + critical) // 2,
            critical,
            critical + 10,
            critical + 50,
        }
    )
    series = []
    for target in rng.sample(_TARGETS, rng.randint(1, 3)):
        components = [{}] if rng.random() < 0.8 else [{"component": "heap"}, {"component": "cache"}]
        for labels in components:
            length = steps * EVALUATION_INTERVAL // interval + 1
            series.append(
                Series(
                    target=target, labels=labels, runs=_random_runs(rng, length, interval, palette)
                )
            )
    has_stale = any(run.kind == "stale" for s in series for run in s.runs)
    one_per_target = len({s.target for s in series}) == len(series)
    grid = list(range(0, steps * EVALUATION_INTERVAL + 1, EVALUATION_INTERVAL))
    off_grid = [at + rng.randint(1, EVALUATION_INTERVAL - 1) for at in rng.sample(grid, 3)]
    return Scenario(
        name=f"random-{seed}",
        seed=seed,
        levels=levels,
        series=tuple(series),
        eval_times=tuple(sorted({*grid, *off_grid})),
        unit=rng.choice(_UNITS),
        for_s=rng.choice((0, 15, 30, 60, 120)),
        keep_s=rng.choice((0, 15, 45, 60)),
        interval_s=interval,
        rule_labels={"team": "core"} if rng.random() < 0.3 else {},
        # up == 0 drops the whole target at once, so it only stands for a stale
        # marker when each target has one series and samples fall on evaluation ticks.
        stale_as_down=has_stale
        and one_per_target
        and interval % EVALUATION_INTERVAL == 0
        and rng.random() < 0.5,
    )


def _random_runs(
    rng: random.Random, length: int, interval: int, palette: Sequence[int]
) -> tuple[Run, ...]:
    runs: list[Run] = []
    lookback_samples = int(LOOKBACK_SECONDS) // interval
    while sum(len(run.values()) for run in runs) < length:
        kind = rng.choices(
            ("flat", "flap", "ramp", "gap", "long-gap", "stale"), weights=(30, 25, 10, 15, 12, 5)
        )[0]
        if kind == "flat":
            runs.append(Run("value", count=rng.randint(1, 6), start=rng.choice(palette)))
        elif kind == "flap":
            low, high = sorted(rng.sample(list(palette), 2))
            runs += [Run("value", start=(low, high)[i % 2]) for i in range(rng.randint(2, 6))]
        elif kind == "ramp":
            step = rng.choice((-25, -10, 10, 25))
            count = rng.randint(3, 8)
            start = rng.choice(palette) if step > 0 else max(palette) + rng.randint(0, 40)
            runs.append(Run("value", count=count, start=max(start, -step * (count - 1)), step=step))
        elif kind == "gap":
            runs.append(Run("gap", count=rng.randint(1, max(1, lookback_samples - 2))))
        elif kind == "long-gap":
            # Around the lookback edge: the last sample is still seen at exactly 5 min.
            runs.append(Run("gap", count=max(1, lookback_samples + rng.randint(-1, 4))))
        else:
            runs.append(Run("stale"))
    return tuple(runs)


def runs_from_text(text: str) -> tuple[Run, ...]:
    """Read promtool's notation (integers only) into runs: `250 150x3 0+25x4 _x20 stale`."""
    runs: list[Run] = []
    for token in text.split():
        if token == "stale":
            runs.append(Run("stale"))
        elif token.startswith("_"):
            runs.append(Run("gap", count=int(token.partition("x")[2] or 1)))
        else:
            head, _, times = token.partition("x")
            start, sign, step = head.partition("+") if "+" in head else head.partition("-")
            count = int(times) + 1 if times else 1
            step_value = int(step) * (-1 if sign == "-" else 1) if step else 0
            runs.append(Run("value", count=count, start=int(start), step=step_value))
    return tuple(runs)
