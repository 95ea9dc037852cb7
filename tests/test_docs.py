"""Every fenced block in README.md and docs/ runs as written, or says that it does not.

The convention (docs/architecture.md, "Docs that run"), by the fence's language:

- `python`: run as a script by this Python in a scratch directory that holds copies of
  rules/ and docs/samples/, with HOME pointing there too.
- `sh`: one command a line (`\\` continues it, `&&` chains commands, `#` starts a comment).
  `memalert check`, `memalert dry-run` and `memalert test` run for real in that directory
  and must succeed (`dry-run --fail-on` may exit 1: that is its answer); any other
  `memalert` command must parse with the real argument parser; other programs must split
  as shell words, and a script they name (`bash .ci/x`, `python bench/x.py`) must exist.
- `yaml` and `json` must parse (`json` may be JSON Lines); a yaml block with `version:`
  is a whole rule file and must pass `memalert check`.
- `text` and `ini` are output, diagrams or config of other programs: not run.

A block preceded by an HTML comment `<!-- not run: REASON -->` is a placeholder (a
collector that is not there, an hour of recording) and is skipped; every fence must
name its language, so that nothing escapes these checks by leaving it out.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from memalert.engine.cli.main import build_parser, main
from memalert.engine.rules.load import check_paths

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = re.compile(r"<!--\s*not run:\s*\S.*-->")
FENCE = re.compile(r"^```(\S*)\s*$")
RUN_FOR_REAL = {"check", "dry-run", "test"}
NOT_CODE = {"text", "ini"}
TIMEOUT = 120.0


@dataclass(frozen=True)
class Block:
    file: Path
    line: int  # of the opening fence, 1-based
    language: str
    body: str
    placeholder: bool

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        blocks.append(
            Block(
                file=path,
                line=i + 1,
                language=opening[1],
                body="\n".join(lines[i + 1 : end]) + "\n",
                placeholder=PLACEHOLDER.fullmatch(before.strip()) is not None,
            )
        )
        i = end + 1
    return blocks


BLOCKS = [block for path in DOCS for block in fenced_blocks(path)]


def blocks_in(*languages: str) -> list[object]:
    return [
        pytest.param(b, id=b.where, marks=[pytest.mark.skip("a placeholder")] * b.placeholder)
        for b in BLOCKS
        if b.language in languages
    ]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory laid out like the checkout's data: rules/ and docs/samples/."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "docs" / "samples", tmp_path / "docs" / "samples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


def test_every_fence_names_a_known_language() -> None:
    known = {"python", "sh", "yaml", "json", *NOT_CODE}
    unnamed = [
        f"{b.where} ({b.language or 'no language'})" for b in BLOCKS if b.language not in known
    ]
    assert unnamed == []


@pytest.mark.integration
@pytest.mark.parametrize("block", blocks_in("python"))
def test_python_blocks_run(block: Block, scratch: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", block.body],
        cwd=scratch,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{block.where}:\n{result.stderr}"


def shell_commands(body: str) -> list[list[str]]:
    """The block's commands as argv lists: continuations joined, `&&` split, comments cut."""
    text = body.replace("\\\n", " ")
    commands, pending = [], ""
    for line in text.splitlines():
        pending += line + "\n"
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # a quoted string that goes on on the next line
            continue
        pending = ""
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:cut])
            words = words[cut + 1 :]
    assert not pending, f"unclosed quote in {body!r}"
    return [command for command in commands if command]


def run_memalert(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue() + err.getvalue()


def parses(argv: list[str]) -> str | None:
    """None if the real parser accepts argv; else what it said."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        return None if exc.code == 0 else err.getvalue()
    return None


@pytest.mark.parametrize("block", blocks_in("sh"))
def test_shell_blocks_run_or_parse(block: Block, scratch: Path) -> None:
    for command in shell_commands(block.body):
        program, *argv = command
        shown = f"{block.where}: {shlex.join(command)}"
        if program != "memalert":
            script = argv[0] if program in {"bash", "python", "python3"} and argv else ""
            if script.endswith((".py", ".sh")) or script.startswith(".ci/"):
                assert (ROOT / script).is_file(), f"{shown}: no such script"
            continue
        if argv and argv[0] in RUN_FOR_REAL:
            code, output = run_memalert(argv)
            allowed = {0, 1} if argv[0] == "dry-run" and "--fail-on" in argv else {0}
            assert code in allowed, f"{shown} exited {code}:\n{output}"
            assert "Traceback" not in output
            assert "internal error" not in output
        else:
            assert parses(argv) is None, f"{shown}: {parses(argv)}"


@pytest.mark.parametrize("block", blocks_in("yaml"))
def test_yaml_blocks_parse_and_whole_rule_files_check(block: Block, tmp_path: Path) -> None:
    data = yaml.safe_load(block.body)
    assert isinstance(data, dict), block.where
    if "version" in data:
        path = tmp_path / "block.yaml"
        path.write_text(block.body, encoding="utf-8")
        assert [str(d) for d in check_paths([path])] == [], block.where


@pytest.mark.parametrize("block", blocks_in("json"))
def test_json_blocks_parse(block: Block) -> None:
    try:
        json.loads(block.body)
    except json.JSONDecodeError:  # JSON Lines: one value a line
        for line in block.body.splitlines():
            json.loads(line)


@pytest.mark.integration
def test_leak_quality_names_a_missing_set_and_scores_the_others(tmp_path: Path) -> None:
    # README and docs/leak-detection.md say `python bench/leak_quality.py`; a fresh clone
    # has no ../shared/leak-traces beside it.
    missing = tmp_path / "leak-traces"
    samples = ROOT / "docs" / "samples"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "leak_quality.py"),
            "--sensitivity",
            "normal",
            "--traces",
            str(missing),
            str(samples),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{missing}: not found (no labels.json); skipped" in result.stdout
    assert f"== {samples} ==" in result.stdout
