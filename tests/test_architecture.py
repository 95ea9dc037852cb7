"""docs/architecture.md matches the code: the same layers as pyproject, every subpackage."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def section(title: str) -> str:
    start = DOC.index(f"\n## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end != -1 else None]


def normalized(layer: str) -> str:
    return " | ".join(sorted(part.strip() for part in layer.split("|")))


def test_the_documented_layers_are_the_import_linter_contract() -> None:
    listed = section("Layers: what may import what").split("```text\n", 1)[1].split("```", 1)[0]
    (contract,) = (
        c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    )
    assert [normalized(line) for line in listed.splitlines()] == [
        normalized(layer) for layer in contract["layers"]
    ]


def test_the_subpackage_table_names_every_subpackage() -> None:
    documented = set(re.findall(r"^\| `(\w+)` \|", section("Subpackages"), flags=re.MULTILINE))
    actual = {p.parent.name for p in (ROOT / "engine").glob("*/__init__.py")} | {"notifiers"}
    assert documented == actual


def test_every_subpackage_sits_in_a_layer() -> None:
    (contract,) = (
        c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    )
    layered = {part.strip() for layer in contract["layers"] for part in layer.split("|")}
    actual = {f"memalert.engine.{p.parent.name}" for p in (ROOT / "engine").glob("*/__init__.py")}
    assert actual | {"memalert.notifiers"} == layered
