"""memalert's evaluator against real Prometheus: `promtool test rules` (issue 2, item 6).

Every scenario (seeded random ones and the hand-written ones below) is run
through memalert's evaluator in-process; what it reports firing at every
evaluation time becomes the expectations of a promtool test file (one
Prometheus alerting rule per level) and of a memalert test file. promtool
passing says Prometheus fires exactly the same alerts at exactly the same
times; `memalert test` passing says the CLI reads the files as the evaluator
was driven here. All files go through one run of each tool.

The hand-written scenarios also carry claims: what Prometheus fires, stated by
hand. Those are checked against promtool (so they are facts about Prometheus,
used by docs/prometheus-differences.md) and against `memalert test`.

A failure names the scenario and its seed; `python tests/promtool_files.py
SEED DIR` writes that scenario's files again for a human to replay.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from promtool_files import (
    memalert_failures,
    promtool_failures,
    run_memalert,
    run_promtool,
    write_files,
)
from promtool_scenarios import (
    Expectations,
    FiringAlert,
    Scenario,
    Series,
    memalert_firing,
    random_scenario,
    runs_from_text,
)

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping
    from pathlib import Path

pytestmark = pytest.mark.promtool

RANDOM_SCENARIOS = 240
SHOWN_FAILURES = 3  # promtool's report for the first few failing scenarios
REPORT_LINES = 40  # the first differing eval times say enough


def _scenario(
    name: str,
    values: str,
    claims: Mapping[int, str],
    *,
    levels: Mapping[str, int] | None = None,
    for_s: int = 0,
    keep_s: int = 0,
    interval_s: int = 15,
    unit: str = "",
    stale_as_down: bool = False,
) -> tuple[Scenario, dict[int, str]]:
    """A hand-written scenario on target `api`; claims: eval second -> level firing ("" none)."""
    runs = runs_from_text(values)
    length = sum(len(run.values()) for run in runs)
    last = max((length - 1) * interval_s, *claims)
    scenario = Scenario(
        name=name,
        levels=levels or {"warning": 100, "critical": 200},
        series=(Series(target="api", runs=runs),),
        eval_times=tuple(sorted({*range(0, last + 1, 15), *claims})),
        unit=unit,
        for_s=for_s,
        keep_s=keep_s,
        interval_s=interval_s,
        stale_as_down=stale_as_down,
    )
    return scenario, dict(claims)


W, C = "warning", "critical"
HAND_WRITTEN = [
    # warning from 15s fires at 45s; critical from 90s fires at 120s; each level then
    # keeps firing 45s after its own condition last held (critical 165s, warning 180s).
    _scenario(
        "threshold-for-keep",
        "50 150x4 250x4 150 50x6",
        {30: "", 45: W, 105: W, 120: C, 195: C, 210: W, 225: ""},
        for_s=30,
        keep_s=45,
    ),
    _scenario(
        "flapping-never-outlasts-for",
        "150 50 150 50 150 50 150 50",
        dict.fromkeys(range(0, 106, 15), ""),
        for_s=30,
    ),
    _scenario(
        "keep-firing-for-bridges-flapping",
        "150 50 50 150 50 50 50 50",
        {0: W, 30: W, 45: W, 90: W, 105: ""},
        keep_s=45,
    ),
    _scenario(
        "gap-shorter-than-lookback",
        "250 _x10 50 _x8 250 _x19 150",
        {150: C, 165: "", 300: C, 585: C, 600: W},
    ),
    # The 5-minute lookback is a closed interval in Prometheus 2.x: seen at exactly 300s.
    _scenario("gap-longer-than-lookback", "250 _x25", {300: C, 315: "", 375: ""}),
    _scenario(
        "vanished-data-holds-for-keep-firing-for",
        "250 _x30",
        {300: C, 315: C, 360: C, 375: ""},
        keep_s=60,
    ),
    _scenario(
        "stale-marker-ends-the-series", "250 250 stale _x3 250", {15: C, 30: "", 75: "", 90: C}
    ),
    _scenario(
        "target-down-is-a-stale-marker",
        "250 250 stale _x3 250",
        {15: C, 30: "", 75: "", 90: C},
        stale_as_down=True,
    ),
    _scenario(
        "de-escalation-waits-keep-firing-for",
        "250x2 150x8",
        {30: C, 75: C, 90: W, 150: W},
        keep_s=45,
    ),
    # Each level has its own keep_firing_for clock: warning's starts at 30s, not 15s.
    _scenario("each-level-keeps-its-own-clock", "250 150 50x6", {45: C, 60: W, 75: ""}, keep_s=45),
    _scenario(
        "thresholds-are-exclusive", "100 200 201 101 100", {0: "", 15: W, 30: C, 45: W, 60: ""}
    ),
    _scenario(
        "escalation-needs-its-own-for",
        "150x2 250x4 150",
        {15: "", 30: W, 60: W, 75: C, 105: C, 120: W},
        for_s=30,
    ),
    _scenario(
        "input-slower-than-evaluation",
        "150 50 250",
        {0: W, 45: W, 60: "", 105: "", 120: C},
        interval_s=60,
    ),
    _scenario(
        "input-faster-than-evaluation",
        "150 250 50 50 150 150",
        {0: W, 15: C, 30: "", 45: W},
        interval_s=10,
    ),
    _scenario("sizes-in-mebibytes", "0+50x6", {30: "", 45: W, 60: W, 75: C}, unit="MiB"),
    _scenario("eval-time-between-evaluations", "150 50 250", {7: W, 22: "", 44: C}),
    _scenario(
        "one-level-only",
        "250x3 50",
        {0: "", 15: C, 45: C, 60: ""},
        levels={"critical": 200},
        for_s=15,
    ),
]
HAND_WRITTEN_IDS = [scenario.name for scenario, _ in HAND_WRITTEN]


def _claimed(claims: Mapping[int, str]) -> Expectations:
    return {
        at: (FiringAlert(labels={"target": "api"}, severity=level, value=math.nan, summary=""),)
        if level
        else ()
        for at, level in claims.items()
    }


@dataclass(frozen=True, kw_only=True, slots=True, repr=False)
class Batch:
    """Every scenario, what memalert fires in it, and what each tool said about the files.

    Keys are scenario names; `claims/NAME` is a hand-written scenario checked
    against its claims instead of memalert's answers.
    """

    scenarios: dict[str, Scenario]
    expected: dict[str, Expectations]
    files: int
    promtool: subprocess.CompletedProcess[str]
    promtool_failed: dict[str, str]
    memalert: subprocess.CompletedProcess[str]
    memalert_failed: dict[str, str]


def _require_promtool() -> None:
    if shutil.which("promtool") is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("promtool is missing in CI: .ci/run must install Debian's `prometheus`")
    pytest.skip("promtool is not installed (Debian package `prometheus`); CI runs these tests")


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    _require_promtool()
    root = tmp_path_factory.mktemp("vs_promtool")
    scenarios = [scenario for scenario, _ in HAND_WRITTEN]
    scenarios += [random_scenario(seed) for seed in range(RANDOM_SCENARIOS)]
    expected = {s.name: memalert_firing(s) for s in scenarios}
    files = {s.name: write_files(s, expected[s.name], root / s.name) for s in scenarios}
    for scenario, claims in HAND_WRITTEN:
        name = f"claims/{scenario.name}"
        files[name] = write_files(scenario, _claimed(claims), root / name)
    promtool = run_promtool([f.promtool_test for f in files.values()])
    memalert = run_memalert([f.memalert_test for f in files.values()])
    by_path = {
        str(path): name for name, f in files.items() for path in (f.promtool_test, f.memalert_test)
    }
    return Batch(
        scenarios={s.name: s for s in scenarios},
        expected=expected,
        files=len(files),
        promtool=promtool,
        promtool_failed={
            by_path.get(path, path): report
            for path, report in promtool_failures(promtool.stdout).items()
        },
        memalert=memalert,
        memalert_failed={
            by_path.get(path, path): report
            for path, report in memalert_failures(memalert.stdout).items()
        },
    )


def _some(names: list[str]) -> str:
    return ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _describe(scenario: Scenario) -> str:
    rule = (
        f"above {dict(scenario.levels)} {scenario.unit or 'bytes'}, for {scenario.for_s}s, "
        f"keep_firing_for {scenario.keep_s}s, input every {scenario.interval_s}s"
    )
    series = (f"\n   {s.target} {dict(s.labels)}: {s.text('')}" for s in scenario.series)
    return rule + "".join(series)


def _explain(batch: Batch, names: list[str]) -> str:
    lines = [f"promtool disagrees with memalert in {len(names)} scenario(s): {_some(names)}"]
    for name in names[:SHOWN_FAILURES]:
        scenario = batch.scenarios[name]
        lines.append(f"\n== {name}: {_describe(scenario)}")
        if scenario.seed is not None:
            lines.append(f"   replay: python tests/promtool_files.py {scenario.seed} DIR")
        report = batch.promtool_failed[name].splitlines()
        lines += report[:REPORT_LINES]
        if len(report) > REPORT_LINES:
            lines.append(f"   ... {len(report) - REPORT_LINES} more lines")
    return "\n".join(lines)


def test_promtool_ran_every_file(batch: Batch) -> None:
    assert batch.promtool.returncode in {0, 1}, batch.promtool.stdout[-3000:]
    passed = batch.promtool.stdout.count("\n  SUCCESS")
    assert passed + len(batch.promtool_failed) == batch.files, batch.promtool.stdout[-3000:]


def test_random_scenarios_fire_as_in_prometheus(batch: Batch) -> None:
    failed = [name for name in batch.promtool_failed if name.startswith("random-")]
    assert not failed, _explain(batch, failed)


@pytest.mark.parametrize("name", HAND_WRITTEN_IDS)
def test_hand_written_scenario_fires_as_in_prometheus(batch: Batch, name: str) -> None:
    failed = name in batch.promtool_failed
    assert not failed, _explain(batch, [name])


@pytest.mark.parametrize("name", HAND_WRITTEN_IDS)
def test_claim_holds_in_prometheus(batch: Batch, name: str) -> None:
    report = batch.promtool_failed.get(f"claims/{name}")
    assert report is None, report


@pytest.mark.parametrize("name", HAND_WRITTEN_IDS)
def test_memalert_test_meets_claim(batch: Batch, name: str) -> None:
    _assert_memalert_ran(batch.memalert, batch.files)
    report = batch.memalert_failed.get(f"claims/{name}")
    assert report is None, report


def _assert_memalert_ran(result: subprocess.CompletedProcess[str], tests: int) -> None:
    """Exit 1 is also what a crash gives: insist on the closing summary line."""
    summary = re.search(r"^(\d+) passed, (\d+) failed$", result.stdout, re.MULTILINE)
    assert result.returncode in {0, 1}, result.stdout[-3000:] + result.stderr[-3000:]
    assert summary, result.stdout[-3000:] + result.stderr[-3000:]
    assert int(summary[1]) + int(summary[2]) == tests, summary[0]


def test_memalert_test_reads_every_file_as_driven_here(batch: Batch) -> None:
    _assert_memalert_ran(batch.memalert, batch.files)
    failed = [name for name in batch.memalert_failed if not name.startswith("claims/")]
    shown = "\n".join(batch.memalert_failed[name] for name in failed[:SHOWN_FAILURES])
    assert not failed, f"memalert test failed {_some(failed)}:\n{shown}"


def _transitions(expected: Expectations) -> set[tuple[str, str]]:
    """(before, after) severity changes of any instance between consecutive checks."""
    changes: set[tuple[str, str]] = set()
    previous: dict[str, str] = {}
    for at in sorted(expected):
        now = {repr(sorted(a.labels.items())): a.severity for a in expected[at]}
        for key in {*previous, *now}:
            if previous.get(key, "") != now.get(key, ""):
                changes.add((previous.get(key, ""), now.get(key, "")))
        previous = now
    return changes


def test_random_scenarios_exercise_what_they_claim_to(batch: Batch) -> None:
    """Guard against a generator drifting into scenarios where nothing much happens."""
    counts = dict.fromkeys(
        (
            "escalated",
            "deescalated",
            "resolved after keep_firing_for",
            "fired after for >= 1m",
            "stale",
            "target down",
            "gap >= 5 min",
            "off-grid check",
        ),
        0,
    )
    for name, scenario in batch.scenarios.items():
        if scenario.seed is None:
            continue
        changes = _transitions(batch.expected[name])
        runs = [run for series in scenario.series for run in series.runs]
        counts["escalated"] += ("warning", "critical") in changes
        counts["deescalated"] += ("critical", "warning") in changes
        counts["resolved after keep_firing_for"] += scenario.keep_s > 0 and any(
            after == "" for _, after in changes
        )
        counts["fired after for >= 1m"] += scenario.for_s >= 60 and any(
            before == "" for before, _ in changes
        )
        counts["stale"] += any(run.kind == "stale" for run in runs)
        counts["target down"] += scenario.stale_as_down
        counts["gap >= 5 min"] += any(
            run.kind == "gap" and run.count * scenario.interval_s >= 300 for run in runs
        )
        counts["off-grid check"] += any(at % 15 for at in scenario.eval_times)
    assert min(counts.values()) >= 10, counts


def test_a_wrong_expectation_fails_both_tools(tmp_path: Path) -> None:
    """The comparison can fail: drop one firing alert from the expectations."""
    _require_promtool()
    scenario, _ = HAND_WRITTEN[0]
    expected = memalert_firing(scenario)
    expected[120] = ()
    files = write_files(scenario, expected, tmp_path)
    promtool = run_promtool([files.promtool_test])
    assert promtool.returncode == 1
    assert "time: 2m" in promtool.stdout, promtool.stdout
    memalert = run_memalert([files.memalert_test])
    _assert_memalert_ran(memalert, 1)
    assert memalert.returncode == 1, memalert.stdout
    assert "at eval_time 2m" in memalert.stdout, memalert.stdout


def test_promtool_has_no_size_units_in_series(tmp_path: Path) -> None:
    """docs/prometheus-differences.md: `100MiB` is memalert-only notation."""
    _require_promtool()
    scenario, claims = HAND_WRITTEN[0]
    files = write_files(scenario, _claimed(claims), tmp_path)
    text = files.promtool_test.read_text(encoding="utf-8")
    files.promtool_test.write_text(text.replace("values: ", "values: 1MiB ", 1), encoding="utf-8")
    promtool = run_promtool([files.promtool_test])
    assert promtool.returncode == 1
    assert "parse error" in promtool.stdout, promtool.stdout


def test_prometheus_annotation_keeps_the_last_matching_value(tmp_path: Path) -> None:
    """docs/prometheus-differences.md: a held alert's annotation is not re-rendered."""
    _require_promtool()
    (tmp_path / "rules.yml").write_text(
        "groups: [{name: g, rules: [{alert: high, expr: rss_bytes > 200, keep_firing_for: 45s,"
        " annotations: {summary: '{{ $value | humanize1024 }}'}}]}]\n",
        encoding="utf-8",
    )
    (tmp_path / "test.yml").write_text(
        "rule_files: [rules.yml]\nevaluation_interval: 15s\n"
        "tests: [{interval: 15s, input_series: [{series: 'rss_bytes{target=\"a\"}',"
        " values: '250 300 50 50'}], alert_rule_test: [{eval_time: 30s, alertname: high,"
        " exp_alerts: [{exp_labels: {target: a}, exp_annotations: {summary: '300'}}]}]}]\n",
        encoding="utf-8",
    )
    promtool = run_promtool([tmp_path / "test.yml"])
    assert promtool.returncode == 0, promtool.stdout
