"""`memalert export promtool-tests`: promtool and `memalert test` agree on the same tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from promtool_files import (
    memalert_failures,
    promtool_failures,
    run_memalert,
    run_promtool,
    write_files,
)
from promtool_scenarios import memalert_firing, random_scenario

from memalert.engine.cli.main import main
from memalert.engine.core.model import Labels, Sample
from memalert.engine.export.promtool_tests import input_series

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = 60


def test_input_series_are_the_agents_series_and_a_down_target_goes_stale() -> None:
    app = Labels(target="app")
    samples = [
        *(Sample("up", app, v, t) for t, v in ((0, 1.0), (15, 1.0), (30, 0.0), (45, 0.0))),
        *(Sample("leak_bytes", app, 5.0, t) for t in (0, 15)),
        Sample("rss_bytes", Labels(target="x", pod='a"b'), 1.5, 30),
    ]
    assert input_series(samples, 15) == [
        {"series": 'memalert_up{target="app"}', "values": "1 1 0 0"},
        {"series": 'memalert_leak_bytes{target="app"}', "values": "5 5 stale stale"},
        {"series": r'memalert_rss_bytes{pod="a\"b",target="x"}', "values": "_ _ 1.5"},
    ]


def _convert(tmp_path: Path, capsys: pytest.CaptureFixture[str], *tests: Path) -> tuple[int, str]:
    code = main(["export", "promtool-tests", *map(str, tests), "-o", str(tmp_path / "out")])
    return code, capsys.readouterr().err


def test_pending_becomes_the_absence_of_firing_with_a_comment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _convert(tmp_path, capsys, ROOT / "rules" / "tests" / "memory_test.yaml")
    assert code == 0
    text = (tmp_path / "out" / "memory_test.promtool.yml").read_text()
    document = yaml.safe_load(text)
    first = document["tests"][0]
    assert first["input_series"][0]["series"] == (
        'memalert_leak_bytes{component="cache",target="api"}'
    )
    at_90s = next(c for c in first["alert_rule_test"] if c["eval_time"] == "90s")
    assert at_90s["exp_alerts"] == []
    assert "# memalert expects pending warning {component=cache, target=api}" in text
    # critical firing in memalert is both levels firing in Prometheus
    at_4m = next(c for c in first["alert_rule_test"] if c["eval_time"] == "4m")
    assert [a["exp_labels"]["severity"] for a in at_4m["exp_alerts"]] == ["warning", "critical"]
    rules = yaml.safe_load((tmp_path / "out" / "memory_test.rules.yml").read_text())
    assert all("annotations" not in r for g in rules["groups"] for r in g["rules"])
    # the detector's test cannot run in Prometheus: left out, named at its position
    assert "memory_test.yaml:97:5: warning: test 'the trend detector" in err
    assert _convert(tmp_path, capsys, ROOT / "rules" / "tests")[0] == 0
    assert (
        main(
            [
                "export",
                "promtool-tests",
                str(ROOT / "rules" / "tests"),
                "-o",
                str(tmp_path / "o2"),
                "--strict",
            ]
        )
        == 1
    )


def _skip_without_promtool() -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`); CI runs this test")


@pytest.mark.promtool
def test_promtool_and_memalert_test_agree_on_rules_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _skip_without_promtool()
    assert _convert(tmp_path, capsys, ROOT / "rules" / "tests")[0] == 0
    memalert = run_memalert([ROOT / "rules" / "tests"])
    assert memalert.returncode == 0, memalert.stdout + memalert.stderr
    promtool = run_promtool(sorted((tmp_path / "out").glob("*.promtool.yml")))
    assert promtool.returncode == 0, promtool.stdout


@pytest.mark.promtool
def test_promtool_and_memalert_test_agree_on_the_differential_scenarios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seeded scenarios of test_vs_promtool: memalert's own test file, exported."""
    _skip_without_promtool()
    tests = []
    for seed in range(SCENARIOS):
        scenario = random_scenario(seed)
        files = write_files(scenario, memalert_firing(scenario), tmp_path / f"s{seed}")
        tests.append(files.memalert_test)
    memalert = run_memalert(tests)
    assert memalert_failures(memalert.stdout) == {}
    assert memalert.returncode == 0, memalert.stdout + memalert.stderr
    out = tmp_path / "out"
    for seed, test in enumerate(tests):
        assert main(["export", "promtool-tests", str(test), "-o", str(out / f"s{seed}")]) == 0
    capsys.readouterr()
    promtool = run_promtool(sorted(out.glob("*/*.promtool.yml")))
    failures = promtool_failures(promtool.stdout)
    assert failures == {}, "\n".join(list(failures.values())[:3])
    assert promtool.returncode == 0, promtool.stdout[-4000:]


def test_a_lower_level_with_a_longer_for_leaves_its_test_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # memalert's `critical` is "critical firing" here, with warning maybe still
    # pending in Prometheus: the test cannot say which, so it is left out, named.
    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules:\n  - name: high-rss\n    metric: rss_bytes\n"
        "    above: {warning: 100MiB, critical: 200MiB}\n    for: {warning: 1m, critical: 15s}\n"
    )
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(
        "rule_files: [rules.yaml]\nevaluation_interval: 15s\ntests:\n  - name: climb\n"
        "    input_series:\n      - {target: api, metric: rss_bytes, values: 250MiBx4}\n"
        "    alert_rule_test:\n      - eval_time: 30s\n        rule: high-rss\n"
        "        exp_alerts: [{severity: critical, labels: {target: api}}]\n"
    )
    code, err = _convert(tmp_path, capsys, test_file)
    assert code == 0
    assert (
        "rules_test.yaml:4:5: warning: test 'climb' is left out: a lower level waits a longer "
        "`for` than the level expected"
    ) in err
