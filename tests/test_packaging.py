"""What the distribution declares: every package, a version, and a lock that pins it all.

The wheel itself is built, installed and run in tests/test_wheel.py.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from memalert.engine.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = ROOT / "requirements" / "dev.lock"


def source_packages() -> set[str]:
    """The import name of every package directory the package-dir mapping installs."""
    found = set()
    for name, directory in PYPROJECT["tool"]["setuptools"]["package-dir"].items():
        top = ROOT / directory
        for init in top.rglob("__init__.py"):
            parts = init.parent.relative_to(top).parts
            found.add(".".join((name, *parts)))
    return found


def test_the_package_list_names_every_package_directory() -> None:
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]) == source_packages()


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if match := re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line.strip()):
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


@pytest.mark.parametrize(
    "requirement",
    [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"]["dev"]],
)
def test_the_lock_pins_every_dependency_within_its_range(requirement: str) -> None:
    # A dependency added to pyproject.toml without refreshing the lock fails here (README).
    wanted = Requirement(requirement)
    pinned = locked().get(re.sub(r"[-_.]+", "-", wanted.name).lower())
    assert pinned is not None, f"{wanted.name} is not in {LOCK.name}: refresh the lock"
    assert wanted.specifier.contains(pinned, prereleases=True)


def test_version_flag_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"memalert {version('memalert')}\n"


def test_ci_runs_exactly_the_readmes_test_command_with_the_lock() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    run_line, test_line = first_block.splitlines()
    assert run_line.startswith("python3 -m pip install -e '.[report]' && memalert run ")
    assert test_line.startswith("python3 -m pip install -c requirements/dev.lock ")
    ci_commands = [
        line
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.startswith("python3 ")
    ]
    assert ci_commands == [test_line]
