"""What `memalert run` imports: heavy libraries load only when the rule files use them.

Each case builds the daemon's engine in a fresh interpreter, the way `memalert
run` does (the CLI, then `cli.daemon`, then `AlertEngine.from_files`), ticks
once and prints the top-level modules it holds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from memalert.engine.rules.load import DEFAULT_RULES

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import sys
import memalert.engine.cli.main
import memalert.engine.cli.daemon
from memalert.engine.live.alert_engine import AlertEngine
engine = AlertEngine.from_files([sys.argv[1]], state_path=sys.argv[2], env={})
engine.tick()
engine.close()
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""

WEBHOOK_RULES = """\
version: 1
interval: 15s
targets:
  - {name: me, self: true}
rules:
  - name: me-rss
    metric: rss_bytes
    above: {warning: 1TiB}
    notify: [hook]
notifiers:
  hook: {urls: ["json://127.0.0.1:9/alerts"]}
"""


def loaded_modules(rules: Path, tmp_path: Path) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(rules), str(tmp_path / "state.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_a_console_only_daemon_does_not_import_apprise(tmp_path: Path) -> None:
    # rules/memory.yaml sends everything to the built-in console notifier.
    modules = loaded_modules(ROOT / "rules" / "memory.yaml", tmp_path)
    assert "memalert" in modules
    assert "apprise" not in modules
    assert "requests" not in modules
    assert "psutil" not in modules  # MemTotal comes from /proc/meminfo


def test_the_built_in_rules_load_without_jsonschema_or_jinja(tmp_path: Path) -> None:
    # The shipped defaults are validated by tests/engine/cli/test_defaults.py, not
    # at start; Jinja loads with the first alert's summary (no alert fires here).
    modules = loaded_modules(DEFAULT_RULES, tmp_path)
    assert {"jsonschema", "referencing", "jsonschema_specifications"}.isdisjoint(modules)
    assert "jinja2" not in modules
    assert "apprise" not in modules
    # Each loads with its first use: a did-you-mean hint, an HTML email, an allocation diagnosis.
    assert {"difflib", "html", "tracemalloc"}.isdisjoint(modules)


def test_a_rule_file_is_checked_against_the_schema_and_its_templates(tmp_path: Path) -> None:
    modules = loaded_modules(ROOT / "rules" / "memory.yaml", tmp_path)
    assert {"jsonschema", "jinja2"} <= modules


def test_a_rule_file_naming_an_apprise_url_loads_apprise(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(WEBHOOK_RULES)
    assert "apprise" in loaded_modules(rules, tmp_path)
