"""The install path users take: build the wheel, install it into a fresh venv, run it there.

One wheel and one virtual environment (no system site-packages) serve every test here.
Dependencies come from the package registry at the versions of requirements/dev.lock;
nothing else is reached. Every command runs from a scratch directory, so the checkout's
engine/ and notifiers/ directories cannot stand in for what the wheel left out.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "dev.lock"
# Building and installing (apprise, jsonschema, psutil, ...) from the registry takes a while.
INSTALL_TIMEOUT = 600.0
RUN_TIMEOUT = 60.0
# What a build reads: the rest of the checkout (tests, bench, docs) stays out of its way.
BUILD_INPUTS = ("pyproject.toml", "README.md", "engine", "notifiers")

TICKING_RULES = """\
version: 1
interval: 1s
targets:
  - {name: host, system: true}
rules:
  # Any host uses some memory: this fires on the first tick and prints on the console.
  - name: host-in-use
    metric: pressure
    above: {warning: 0.000001}
    summary: "{{ target }} uses {{ value | percent }}"
"""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    workdir: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def memalert(self) -> Path:
        return self.venv / "bin" / "memalert"

    def run(
        self, *argv: str | Path, timeout: float = RUN_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(arg) for arg in argv],
            cwd=self.workdir,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def pip(self, *argv: str | Path) -> None:
        result = self.run(self.python, "-m", "pip", *argv, timeout=INSTALL_TIMEOUT)
        assert result.returncode == 0, result.stdout + result.stderr

    def imports(self, module: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, "-c", f"import {module}; print({module}.__file__)")


def clean_env() -> dict[str, str]:
    """This environment without anything that would put the checkout or our venv on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    source, dist, workdir = base / "source", base / "dist", base / "work"
    workdir.mkdir()
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
        env=clean_env(),
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("memalert-*.whl")
    venv = base / "venv"
    # Without --system-site-packages: only what the wheel and its dependencies bring.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=INSTALL_TIMEOUT)
    result = Installed(wheel=wheel, venv=venv, workdir=workdir)
    result.pip("install", "-q", "-c", LOCK, wheel)
    return result


def source_modules() -> set[str]:
    """Every file of engine/ and notifiers/ as the wheel should hold it, under memalert/."""
    found = set()
    for top in ("engine", "notifiers"):
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                found.add(f"memalert/{path.relative_to(ROOT).as_posix()}")
    return found


def test_the_wheel_holds_every_module_and_nothing_else(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {name for name in names if not name.startswith("memalert-")} == source_modules()
    top_level = {name.split("/", 1)[0] for name in names}
    assert top_level == {"memalert", installed.wheel.name.split("-py")[0] + ".dist-info"}
    assert "memalert/__init__.py" not in names  # a namespace package, as in the checkout


def test_site_packages_gains_only_memalert_and_its_dist_info(installed: Installed) -> None:
    where = installed.run(installed.python, "-c", "import memalert; print(*memalert.__path__)")
    assert where.returncode == 0, where.stderr
    (package,) = map(Path, where.stdout.split())  # one portion: the namespace is ours alone
    site_packages = package.parent
    assert site_packages.is_relative_to(installed.venv)
    (dist_info,) = site_packages.glob("memalert-*.dist-info")
    record = (dist_info / "RECORD").read_text(encoding="utf-8").splitlines()
    # The console script lands outside site-packages, as ../../../bin/memalert.
    owned = {line.split("/", 1)[0] for line in record if not line.startswith("..")}
    assert owned == {"memalert", dist_info.name}


def test_version_comes_from_the_installed_metadata(installed: Installed) -> None:
    result = installed.run(installed.memalert, "--version")
    assert (result.returncode, result.stdout) == (0, f"memalert {wheel_version(installed)}\n")


def wheel_version(installed: Installed) -> str:
    return installed.wheel.name.split("-")[1]


def test_check_and_dry_run_from_the_wheel(installed: Installed) -> None:
    check = installed.run(installed.memalert, "check", ROOT / "rules")
    assert check.returncode == 0, check.stdout + check.stderr
    dry = installed.run(
        installed.memalert,
        *("dry-run", ROOT / "rules" / "memory.yaml"),
        *("--observations", ROOT / "docs" / "samples" / "leaky-api.jsonl"),
        *("--format", "json", "--fail-on", "critical"),
    )
    assert dry.returncode == 1, dry.stdout + dry.stderr  # the sample leaks: critical fires
    assert '"memory-leak"' in dry.stdout
    assert "Traceback" not in dry.stderr


def test_run_from_the_wheel_ticks_and_stops_on_sigterm(installed: Installed) -> None:
    rules = installed.workdir / "ticking.yaml"
    rules.write_text(TICKING_RULES, encoding="utf-8")
    out, err = installed.workdir / "run.out", installed.workdir / "run.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        daemon = subprocess.Popen(
            [str(installed.memalert), "run", str(rules), "--state", "state.db"],
            cwd=installed.workdir,
            env=clean_env(),
            stdout=stdout,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        # The first tick samples the host, fires and prints through the console notifier.
        while "host-in-use" not in out.read_text() and daemon.poll() is None:
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.1)
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=RUN_TIMEOUT)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=RUN_TIMEOUT)
    assert code == 0, err.read_text()
    assert "host-in-use" in out.read_text()
    assert "Traceback" not in err.read_text()


@pytest.mark.parametrize("bare", ["engine", "notifiers"])
def test_the_bare_directory_names_do_not_import(installed: Installed, bare: str) -> None:
    result = installed.imports(bare)
    assert result.returncode == 1
    assert f"No module named '{bare}'" in result.stderr


def test_the_notifiers_package_from_the_index_installs_beside_it(installed: Installed) -> None:
    # PyPI's `notifiers` owns the top-level name `notifiers`; ours is memalert.notifiers.
    installed.pip("install", "-q", "notifiers==2.0.0")
    theirs = installed.imports("notifiers")
    assert theirs.returncode == 0, theirs.stderr
    assert "memalert" not in theirs.stdout
    for ours in ("memalert.notifiers.apprise_notifier", "memalert.engine.cli.main"):
        assert installed.imports(ours).returncode == 0
    assert installed.run(installed.memalert, "check", ROOT / "rules").returncode == 0
    # Removing either one leaves the other whole.
    installed.pip("uninstall", "-q", "-y", "notifiers")
    assert installed.run(installed.memalert, "check", ROOT / "rules").returncode == 0
    assert installed.imports("notifiers").returncode == 1
