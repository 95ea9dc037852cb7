"""The `detector:` section of rule files and targets (docs/leak-detection.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from memalert.engine.core.errors import RuleFileError
from memalert.engine.rules.load import check_paths, load_rules
from memalert.engine.trend.detector import TrendDetector
from memalert.engine.trend.params import PARAMETERS, params_for

if TYPE_CHECKING:
    from pathlib import Path

HOUR = 3600.0


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_file_and_target_sections_set_each_targets_parameters(tmp_path: Path) -> None:
    rules = write(
        tmp_path,
        "r.yaml",
        """version: 1
detector: {sensitivity: low, min_life: 7h}
targets:
  - {name: api, pid: 1, detector: {sensitivity: high, min_growth_per_hour: 5MB}}
  - {name: db, pid: 1}
""",
    )
    ruleset = load_rules([rules], env={})
    detector = TrendDetector.for_ruleset(ruleset)

    assert detector.params_of("api") == params_for("high", min_growth_bytes_per_hour=5e6)
    assert detector.params_of("db") == params_for("low", min_life_seconds=7 * HOUR)
    # A target no file declares (a replay, the default host) takes the file's section.
    assert detector.params_of("replayed") == params_for("low", min_life_seconds=7 * HOUR)


def test_no_section_is_the_default_parameters(tmp_path: Path) -> None:
    rules = write(tmp_path, "r.yaml", "version: 1\n")
    assert TrendDetector.for_ruleset(load_rules([rules], env={})).params_of("x") == params_for()


@pytest.mark.parametrize(
    ("section", "where", "says"),
    [
        ("{sensitivity: paranoid}", (2, 25), "must be one of low, normal, high"),
        ("{min_life: 30m}", (2, 22), "must be within 1h..1d, got '30m'"),
        ("{min_lif: 2h}", (2, 12), "unknown key 'min_lif' (did you mean min_life?)"),
        ("{z_slope: x}", (2, 21), "must be a number"),
        ("{spread_parts: 2.5}", (2, 26), "must be a whole number"),
        ("{min_growth_per_hour: 1XB}", (2, 33), "unknown size unit"),
        ("{min_span: 30m, segment: 15m}", (2, 11), "min_span_seconds must hold at least four"),
        ("[low]", (2, 11), "not a list"),
    ],
)
def test_bad_settings_name_file_line_column_and_the_key(
    tmp_path: Path, section: str, where: tuple[int, int], says: str
) -> None:
    rules = write(tmp_path, "r.yaml", f"version: 1\ndetector: {section}\n")

    diagnostics = check_paths([rules])

    assert len(diagnostics) == 1, diagnostics
    assert (diagnostics[0].line, diagnostics[0].col) == where
    assert says in diagnostics[0].message
    with pytest.raises(RuleFileError):
        load_rules([rules], env={})


def test_files_whose_sections_differ_are_refused_at_the_later_one(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "version: 1\ndetector: {sensitivity: low}\n")
    second = write(tmp_path, "b.yaml", "version: 1\ndetector: {sensitivity: high}\n")

    (diagnostic,) = check_paths([first, second])

    assert diagnostic.file == str(second)
    assert f"{first}:2:11" in diagnostic.message


def test_every_parameter_is_a_knob_with_its_unit(tmp_path: Path) -> None:
    # The defaults, written back as knobs in their own units, are all accepted.
    knobs = []
    for name, spec in PARAMETERS.items():
        value = getattr(params_for(), name)
        if spec.kind == "duration":
            knobs.append(f"{name.removesuffix('_seconds')}: {value:g}s")
        elif spec.kind == "size":
            knobs.append(f"{name.removesuffix('_bytes_per_hour')}_per_hour: {value:g}B")
        else:
            knobs.append(f"{name}: {value:g}")
    rules = write(
        tmp_path, "r.yaml", "version: 1\ndetector:\n" + "".join(f"  {k}\n" for k in knobs)
    )

    assert check_paths([rules]) == []
    assert TrendDetector.for_ruleset(load_rules([rules], env={})).params_of("x") == params_for()
