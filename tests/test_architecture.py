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


# -- references into the docs --------------------------------------------------------

SCANNED = ["README.md", "docs", "engine", "notifiers", "tests", "bench", "pyproject.toml"]
SUFFIXES = {".md", ".py", ".yaml", ".toml"}
# `docs/x.md#anchor` or `README.md#anchor` in code and docs; `](x.md#anchor)` in Markdown.
CITATION = re.compile(r"\b((?:docs/)?[\w.-]+\.md)(#[\w-]+)?")
LINK = re.compile(r"\]\(([\w./-]*\.md)?(#[\w-]+)?\)")


def scanned_files() -> list[Path]:
    found = []
    for name in SCANNED:
        path = ROOT / name
        found += [path] if path.is_file() else sorted(path.rglob("*"))
    here = Path(__file__).resolve()  # whose examples are not references
    return [p for p in found if p.suffix in SUFFIXES and p.resolve() != here]


def anchors(doc: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", doc.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {"#" + re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_no_reference_to_a_design_document_outside_the_repository() -> None:
    cited = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in scanned_files()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "DESIGN" + " §" in line
    ]
    assert cited == []


def test_every_reference_into_the_docs_resolves() -> None:
    broken = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8")
        pairs = [
            (ROOT / m[1], m[2])
            for m in CITATION.finditer(text)
            if m[1].startswith(("docs/", "README.md"))
        ]
        if path.suffix == ".md":
            pairs += [(path.parent / m[1] if m[1] else path, m[2]) for m in LINK.finditer(text)]
        for target, anchor in pairs:
            if not target.is_file() or (anchor and anchor not in anchors(target)):
                broken.append(f"{path.relative_to(ROOT)}: {target.name}{anchor or ''}")
    assert broken == []
