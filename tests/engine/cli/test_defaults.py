"""The built-in rules: `run` and `record` with no rule file, `run --print-defaults`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from memalert.engine.cli.main import build_parser, main
from memalert.engine.live.parts import scaled_clock, time_scale_from
from memalert.engine.rules import load
from memalert.engine.rules.load import DEFAULT_RULES, load_rules
from memalert.engine.rules.schemacheck import schema_diagnostics
from memalert.engine.rules.yamlsource import load_yaml
from memalert.engine.testing import FakeClock


def test_print_defaults_prints_a_rule_file_check_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--print-defaults"]) == 0
    printed = capsys.readouterr().out
    assert printed == DEFAULT_RULES.read_text(encoding="utf-8")
    rules = tmp_path / "memory.yaml"
    rules.write_text(printed)
    assert main(["check", str(rules)]) == 0


def test_the_defaults_are_schema_valid_and_load_as_a_checked_copy_does(tmp_path: Path) -> None:
    # `memalert run` skips the schema check on the shipped defaults (jsonschema
    # stays unloaded): this test is that check.
    assert schema_diagnostics(load_yaml(str(DEFAULT_RULES))) == ([], [])
    copy = tmp_path / "defaults.yaml"
    copy.write_text(DEFAULT_RULES.read_text(encoding="utf-8"), encoding="utf-8")
    shipped, checked = load_rules([DEFAULT_RULES], env={}), load_rules([copy], env={})
    assert repr(shipped).replace(str(DEFAULT_RULES), str(copy)) == repr(checked)


def test_the_shipped_digest_is_the_defaults_file_s() -> None:
    digest = hashlib.sha256(load_yaml(str(DEFAULT_RULES)).text.encode()).hexdigest()
    assert digest == load.DEFAULT_RULES_SHA256, (
        f"defaults.yaml changed: set DEFAULT_RULES_SHA256 in engine/rules/load.py to {digest!r}"
    )


def test_defaults_edited_in_place_are_checked_against_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited = tmp_path / "defaults.yaml"
    edited.write_text(
        DEFAULT_RULES.read_text(encoding="utf-8").replace("interval: 15s", "intervall: 15s")
    )
    monkeypatch.setattr(load, "DEFAULT_RULES", edited)
    problems = load.check_paths([edited])
    assert any("intervall" in p.message for p in problems), problems


def test_the_defaults_watch_the_host_processes_and_services() -> None:
    ruleset = load_rules([DEFAULT_RULES], env={})
    kinds = {(t.kind, t.discover) for t in ruleset.targets}
    assert kinds == {("system", None), ("discover", "processes"), ("discover", "cgroups")}
    processes = next(t for t in ruleset.targets if t.discover == "processes")
    assert (processes.min_rss_bytes, processes.max_targets) == (50 * 2**20, 100)
    metrics = {r.metric for r in ruleset.rules}
    assert {"leak_bytes", "time_to_limit_seconds", "pressure", "psi_some_avg10"} <= metrics


def test_run_and_record_take_no_rule_file() -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "--listen"]).rules == []
    assert parser.parse_args(["record", "--out", "x.jsonl"]).rules is None


def test_record_without_rules_records_every_discovered_target(tmp_path: Path) -> None:
    out = tmp_path / "host.jsonl"
    assert main(["record", "--out", str(out), "--duration", "1s"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert "host" in {r["target"] for r in rows}
    infos = [r for r in rows if "target_info" in r["metrics"]]
    # This test's own Python process (pytest) holds more than the 50 MiB floor.
    assert "processes" in {r["labels"]["discovered"] for r in infos}
    assert main(["dry-run", str(DEFAULT_RULES), "--observations", str(out)]) == 0


@pytest.mark.parametrize("text", ["0.5", "abc", "1e9", "nan"])
def test_a_bad_time_scale_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="MEMALERT_TIME_SCALE must be a number from 1 to 10000"):
        time_scale_from({"MEMALERT_TIME_SCALE": text})


def test_the_scaled_clock_runs_faster_from_its_start() -> None:
    clock = FakeClock(1000.0)
    assert time_scale_from({}) == 1.0
    fast = scaled_clock(clock, time_scale_from({"MEMALERT_TIME_SCALE": "600"}))
    clock.advance(6.0)
    assert fast() == 1000.0 + 3600.0
