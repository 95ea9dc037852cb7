"""Safe YAML loading with positions: every refusal is a Diagnostic, never a traceback."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from memalert.engine.cli.main import main
from memalert.engine.core.errors import Diagnostic, RuleFileError
from memalert.engine.rules.yamlsource import MAX_ALIAS_NODES, load_yaml, parse_yaml

if TYPE_CHECKING:
    from pathlib import Path

DOC = """\
version: 1
rules:
  - name: leak
    above: {warning: 50MiB, critical: 100MiB}
    labels:
      team: core
when: 2026-12-01T00:00:00Z
flags: [yes, no, ~, 0x10, 1.5]
"""


def refusal(text: str) -> str:
    with pytest.raises(RuleFileError) as caught:
        parse_yaml(text, "f.yaml")
    return str(caught.value)


def parser_refusal(text: str) -> Diagnostic:
    """The one diagnostic for text that PyYAML itself refuses.

    Its wording is PyYAML's and changes between releases (6.0.4 reworded some and refuses deep
    flow nesting on its own), so callers check the behaviour: refused, at a position, and
    marked as invalid YAML.
    """
    with pytest.raises(RuleFileError) as caught:
        parse_yaml(text, "f.yaml")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.file == "f.yaml"
    assert diagnostic.message.startswith("invalid YAML: ")
    assert "\n" not in diagnostic.message
    return diagnostic


def test_data_is_plain_python_with_timestamps_kept_as_text() -> None:
    doc = parse_yaml(DOC, "f.yaml")
    assert doc.data == {
        "version": 1,
        "rules": [
            {
                "name": "leak",
                "above": {"warning": "50MiB", "critical": "100MiB"},
                "labels": {"team": "core"},
            }
        ],
        "when": "2026-12-01T00:00:00Z",
        "flags": [True, False, None, 16, 1.5],
    }
    assert doc.file == "f.yaml"
    assert doc.text == DOC


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        pytest.param((), False, (1, 1), id="root"),
        pytest.param(("version",), False, (1, 10), id="scalar-value"),
        pytest.param(("version",), True, (1, 1), id="scalar-key"),
        pytest.param(("rules", 0), False, (3, 5), id="list-item"),
        pytest.param(("rules", 0, "above", "critical"), False, (4, 39), id="flow-mapping-value"),
        pytest.param(("rules", 0, "above", "critical"), True, (4, 29), id="flow-mapping-key"),
        pytest.param(("rules", 0, "labels", "team"), False, (6, 13), id="block-value"),
        pytest.param(("flags", 3), False, (8, 21), id="flow-list-item"),
        pytest.param(("rules", 0, "missing", "deeper"), False, (3, 5), id="missing-uses-parent"),
        pytest.param(("rules", 7), False, (3, 3), id="missing-index-uses-parent"),
        pytest.param(("nope",), True, (1, 1), id="missing-key-uses-root"),
    ],
)
def test_positions_are_one_based_line_and_column(
    path: tuple[str | int, ...], key: bool, expected: tuple[int, int]
) -> None:
    position = parse_yaml(DOC, "f.yaml").position(path, key=key)
    assert (position.file, position.line, position.col) == ("f.yaml", *expected)


def test_merge_keys_merge_and_explicit_keys_win() -> None:
    doc = parse_yaml(
        "base: &b {for: 1m, labels: {team: a}}\nrule:\n  <<: *b\n  for: 5m\n", "f.yaml"
    )
    assert doc.data["rule"] == {"labels": {"team": "a"}, "for": "5m"}
    assert doc.position(["rule", "for"]).line == 4


def test_aliases_expand_to_equal_data() -> None:
    doc = parse_yaml("a: &x [1, {b: 2}]\nc: *x\n", "f.yaml")
    assert doc.data["c"] == [1, {"b": 2}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "f.yaml:1:1: the file is empty", id="empty"),
        pytest.param("# nothing\n\n", "f.yaml:1:1: the file is empty", id="only-comments"),
        pytest.param("---\n", "f.yaml:1:1: the file is empty", id="only-document-marker"),
        pytest.param(
            "a: 1\n---\nb: 2\n",
            "f.yaml:2:1: more than one YAML document in this file ('---'); use one file each",
            id="two-documents",
        ),
        pytest.param(
            "a: 1\nb: 2\na: 3\n",
            "f.yaml:3:1: duplicate key 'a' (first on line 1)",
            id="duplicate-key",
        ),
        pytest.param(
            "a: &x [1, *x]\n",
            "f.yaml:1:11: recursive alias *x refers to a node that contains it",
            id="recursive-alias",
        ),
        pytest.param(
            "a: *nope\n",
            "f.yaml:1:4: alias *nope refers to no anchor &nope defined before it",
            id="undefined-alias",
        ),
        pytest.param(
            "a: !!python/object:os.system x\n",
            "f.yaml:1:4: unsupported YAML tag !!python/object:os.system",
            id="python-tag",
        ),
        pytest.param("a: !!set {x}\n", "f.yaml:1:4: unsupported YAML tag !!set", id="set-tag"),
        pytest.param("a: !mine x\n", "f.yaml:1:4: unsupported YAML tag !mine", id="local-tag"),
        pytest.param(
            "? [a, b]\n: 1\n",
            "f.yaml:1:3: mapping keys must be plain text, not a list or mapping",
            id="list-as-key",
        ),
        pytest.param(
            "a:\n  <<: 3\n",
            "f.yaml:2:7: a merge key '<<' needs a mapping or a list of mappings",
            id="bad-merge",
        ),
    ],
)
def test_bad_yaml_is_refused_with_its_position(text: str, expected: str) -> None:
    assert refusal(text) == expected


@pytest.mark.parametrize(
    ("text", "position"),
    [
        pytest.param("a: 1\nb: c: d\n", (2, 5), id="malformed"),
        pytest.param("a:\n\t- b\n", (2, 1), id="tab-indent"),
        pytest.param("a: \x01\n", (1, 4), id="control-character"),
        pytest.param("version: 1\nrules: [\n", (3, 1), id="unclosed-flow-list"),
    ],
)
def test_malformed_yaml_is_refused_at_its_position(text: str, position: tuple[int, int]) -> None:
    diagnostic = parser_refusal(text)
    assert (diagnostic.line, diagnostic.col) == position


def test_every_duplicate_key_is_reported() -> None:
    message = refusal("a: 1\na: 2\nb:\n  c: 1\n  c: 2\n")
    assert message.splitlines() == [
        "f.yaml:2:1: duplicate key 'a' (first on line 1)",
        "f.yaml:5:3: duplicate key 'c' (first on line 4)",
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 100_000 + "]" * 100_000, id="flow-lists"),
        pytest.param("{a: " * 50_000 + "1" + "}" * 50_000, id="flow-mappings"),
        pytest.param("- " * 100_000 + "x\n", id="block-lists"),
    ],
)
def test_deep_nesting_is_refused_before_the_parser_recurses(text: str) -> None:
    # libyaml's own composer crashes the interpreter on the first of these. Our bound or
    # PyYAML's (6.0.4 refuses deep flow nesting itself, in its own words) may refuse first:
    # either way it is one diagnostic on line 1, where the nesting gets deep, not a crash or
    # a RecursionError at the far end of the text.
    with pytest.raises(RuleFileError) as caught:
        parse_yaml(text, "f.yaml")
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.file, diagnostic.line) == ("f.yaml", 1)
    assert diagnostic.col < len(text) // 2


def test_check_refuses_deep_nesting_with_exit_1_and_a_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("rules: " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    assert main(["check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert re.match(rf"{re.escape(str(path))}:1:\d+: \S", err + out)
    assert "Traceback" not in err + out


def test_nesting_through_aliases_is_bounded_too() -> None:
    levels = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]" for i in range(1, 15)]
    assert "nesting deeper than 100 levels (with aliases)" in refusal("\n".join(levels) + "\n")


def test_alias_bomb_is_refused_at_the_alias() -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 8)]
    message = refusal("\n".join(lines) + "\n")
    assert f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes (an alias bomb?)" in message
    assert message.startswith("f.yaml:")


def test_moderate_aliases_are_fine() -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 4)]
    doc = parse_yaml("\n".join(lines) + "\n", "f.yaml")
    assert len(doc.data["l3"]) == 10


# -- files ---------------------------------------------------------------------


def test_load_yaml_reads_utf8_with_or_without_bom(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes("\ufeffname: caf\u00e9\n".encode())
    assert load_yaml(path).data == {"name": "caf\u00e9"}


def file_refusal(path: Path, **kwargs: int) -> str:
    with pytest.raises(RuleFileError) as caught:
        load_yaml(path, **kwargs)
    return str(caught.value).removeprefix(f"{path}:")


def test_non_utf8_names_the_byte_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"a: 1\nname: caf\xe9\n")
    assert file_refusal(path) == (
        "2:10: not UTF-8 text: invalid byte 0xe9 at byte offset 14; save the file as UTF-8"
    )


def test_binary_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "blob.yaml"
    path.write_bytes(b"a: 1\n\x00\x01\x02\xff")
    assert file_refusal(path) == (
        "2:1: binary file (NUL byte at byte offset 5): expected YAML text"
    )


def test_huge_files_are_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as stream:
        stream.truncate(10_000_001)  # sparse: no 10 MB actually written
    assert (
        file_refusal(path)
        == "1:1: file too large (10,000,001 bytes; the limit is 10,000,000 bytes)"
    )


def test_the_size_limit_is_a_parameter(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("a: 1\nb: 2\n")
    assert file_refusal(path, max_bytes=5) == "1:1: file too large (10 bytes; the limit is 5 bytes)"


def test_missing_files_and_directories_are_refused(tmp_path: Path) -> None:
    assert file_refusal(tmp_path / "nope.yaml") == "1:1: cannot read: no such file"
    assert file_refusal(tmp_path) == "1:1: cannot read: a directory"
