"""Rule files: each bad input gives the expected FILE:LINE:COL message; good ones compile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memalert.engine.core.errors import RuleFileError
from memalert.engine.core.model import Matcher, RuleSet, Severity
from memalert.engine.rules.load import check_paths, load_rules

ROOT = Path(__file__).resolve().parents[3]
W, C = Severity.WARNING, Severity.CRITICAL


def check(tmp_path: Path, text: str, name: str = "r.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return [str(d).replace(f"{tmp_path}/", "") for d in check_paths([path])]


def load(tmp_path: Path, text: str, *, env: dict[str, str] | None = None) -> RuleSet:
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules([path], env=env)


RULE = "version: 1\nrules:\n  - name: leak\n    metric: leak_bytes\n"

BAD = [
    # -- structure (schema) ----------------------------------------------------
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    sumary: x\n",
        "r.yaml:6:5: unknown key 'sumary' in rule 'leak'; did you mean 'summary'?",
        id="unknown-key-did-you-mean",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    keep_firing: 2m\n",
        "r.yaml:6:5: unknown key 'keep_firing' in rule 'leak'; did you mean 'keep_firing_for'?",
        id="unknown-key-prefix",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB, critcal: 1GiB}\n",
        "r.yaml:5:29: unknown key 'critcal' in 'above' of rule 'leak'; did you mean 'critical'?",
        id="unknown-level",
    ),
    pytest.param(
        "version: 1\nintervall: 5s\n",
        "r.yaml:2:1: unknown key 'intervall' in the rule file; did you mean 'interval'?",
        id="unknown-top-level-key",
    ),
    pytest.param(
        "rules: []\n",
        "r.yaml:1:1: the rule file is missing the required key 'version' "
        "(add `version: 1` at the top)",
        id="missing-version",
    ),
    pytest.param(
        "version: 2\n",
        "r.yaml:1:10: unsupported version 2: this memalert reads `version: 1`",
        id="wrong-version",
    ),
    pytest.param(
        "- version: 1\n",
        "r.yaml:1:1: a rule file must be a mapping starting with `version: 1`, not a list",
        id="top-level-list",
    ),
    pytest.param(
        "version: 1\nrules:\n  - metric: rss_bytes\n    above: {warning: 1GB}\n",
        "r.yaml:3:5: rule #1 is missing the required key 'name'",
        id="missing-name",
    ),
    pytest.param(
        RULE,
        "r.yaml:3:5: rule 'leak' needs one of above or below",
        id="no-direction",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    below: {warning: 1MiB}\n",
        "r.yaml:6:5: rule 'leak' has both above and below; use one of above or below",
        id="both-directions",
    ),
    pytest.param(
        RULE + "    above: {}\n",
        "r.yaml:5:12: 'above' of rule 'leak' needs at least one of warning, critical",
        id="no-level",
    ),
    pytest.param(
        RULE + "    above: 50MiB\n",
        "r.yaml:5:12: 'above' of rule 'leak' must be a mapping (key: value), not text '50MiB'",
        id="above-not-a-mapping",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    for: [1m]\n",
        "r.yaml:6:10: 'for' of rule 'leak' must be a duration such as 30s, 5m or 1h30m, "
        "or one per level such as {warning: 10m, critical: 2m}, not a list",
        id="duration-wrong-type",
    ),
    pytest.param(
        "version: 1\ninhibit_rules:\n  - {source_matchers: {severity: critical}}\n",
        "r.yaml:3:5: inhibit rule #1 is missing the required key 'target_matchers'",
        id="inhibit-without-target",
    ),
    pytest.param(
        "version: 1\ninhibit_rules:\n"
        "  - {source_matchers: {severity: crit}, target_matchers: {severity: warning}}\n",
        "r.yaml:3:34: 'source_matchers.severity' of inhibit rule #1: 'crit' matches no "
        "severity; use warning or critical; did you mean 'critical'?",
        id="inhibit-unknown-severity",
    ),
    pytest.param(
        "version: 1\ninhibit_rules:\n"
        "  - {source_matchers: {}, target_matchers: {severity: warning}}\n",
        "r.yaml:3:23: 'source_matchers' of inhibit rule #1 must name at least one label",
        id="inhibit-empty-matchers",
    ),
    pytest.param(
        "version: 1\ninhibit_rules:\n  - {source_matchers: {severity: critical}, "
        "target_matchers: {severity: warning}, equals: [target]}\n",
        "r.yaml:3:83: unknown key 'equals' in inhibit rule #1; did you mean 'equal'?",
        id="inhibit-unknown-key",
    ),
    pytest.param(
        "version: 1\ninhibit_rules:\n  - {source_matchers: {severity: critical}, "
        "target_matchers: {severity: warning}, equal: [9x]}\n",
        "r.yaml:3:91: 'equal[0]' of inhibit rule #1 '9x' must be letters, digits and _, "
        "not starting with a digit",
        id="inhibit-bad-equal-label",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    for: {warnin: 1m}\n",
        "r.yaml:6:11: unknown key 'warnin' in 'for' of rule 'leak'; did you mean 'warning'?",
        id="for-unknown-level",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    for: {warning: 10x}\n",
        "r.yaml:6:20: 'for.warning' of rule 'leak': cannot read duration '10x': "
        "expected e.g. 30s, 5m, 2h, 1d or 1h30m",
        id="for-level-bad-duration",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    for: {warning: 400d}\n",
        "r.yaml:6:20: 'for.warning' of rule 'leak' must be from 0s to 365d (docs/rules.md, Ranges)",
        id="for-level-out-of-range",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    for: {critical: 2m}\n",
        "r.yaml:6:21: 'for.critical' of rule 'leak': there is no critical threshold in 'above' "
        "to wait for",
        id="for-level-without-threshold",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    for: {}\n",
        "r.yaml:6:10: 'for' of rule 'leak' needs at least one of warning, critical",
        id="for-no-level",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    labels: {team: 7}\n",
        "r.yaml:6:20: 'labels.team' of rule 'leak' must be text, not number 7; "
        "put it in quotes to make it text",
        id="label-value-number",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    notify: oncall\n",
        "r.yaml:6:13: 'notify' of rule 'leak' must be a list, not text 'oncall'",
        id="notify-not-a-list",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: my leak\n    metric: leak_bytes\n    above: {warning: 1}\n",
        "r.yaml:3:11: invalid rule name 'my leak': names may use only letters, digits and "
        "_ . : - and must start with a letter or digit",
        id="rule-name-pattern",
    ),
    pytest.param(
        "version: 1\ntargets:\n  - name: api\n",
        "r.yaml:3:5: target 'api' needs one of process, pid, pidfile, self, system, cgroup",
        id="target-without-selector",
    ),
    pytest.param(
        "version: 1\ntargets:\n  - name: api\n    pid: 12\n    pidfile: /run/api.pid\n",
        "r.yaml:5:5: target 'api' has both pid and pidfile; "
        "use one of process, pid, pidfile, self, system, cgroup",
        id="target-two-selectors",
    ),
    pytest.param(
        "version: 1\ntargets:\n  - name: api\n    pid: $APP_PID\n",
        "r.yaml:4:10: 'pid' of target 'api' must be a process id (a whole number from 1) or a "
        "${VAR} reference, not text '$APP_PID'",
        id="pid-bad-reference",
    ),
    pytest.param(
        "version: 1\ntargets:\n  - name: api\n    process: {}\n",
        "r.yaml:4:14: 'process' of target 'api' needs name or cmdline",
        id="process-empty",
    ),
    pytest.param(
        "version: 1\ntargets:\n  - name: box\n    system: false\n",
        "r.yaml:4:13: 'system' of target 'box' must be true (or left out)",
        id="system-false",
    ),
    pytest.param(
        "version: 1\nnotifiers:\n  ops: {urls: []}\n",
        "r.yaml:3:15: 'urls' of notifier 'ops' must not be empty",
        id="notifier-no-urls",
    ),
    pytest.param(
        "version: 1\nroutes:\n  - match: {severity: critical}\n",
        "r.yaml:3:5: route #1 is missing the required key 'notify'",
        id="route-without-notify",
    ),
    pytest.param(
        "version: 1\nsilences:\n  - {match: {}, starts: '2026-01-01T00:00:00Z', "
        "ends: '2026-01-02T00:00:00Z'}\n",
        "r.yaml:3:13: 'match' of silence #1 must name at least one label",
        id="silence-matches-everything",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    where: {bad-label: x}\n",
        "r.yaml:6:13: invalid name 'bad-label' in 'where' of rule 'leak': names must be letters, "
        "digits and _, not starting with a digit",
        id="label-name-pattern",
    ),
    # -- meaning ---------------------------------------------------------------------
    pytest.param(
        "version: 1\nrules:\n  - name: leak\n    metric: leak_byte\n    above: {warning: 1MiB}\n",
        "r.yaml:4:13: unknown metric 'leak_byte' in rule 'leak'; did you mean 'leak_bytes'?",
        id="unknown-metric",
    ),
    pytest.param(
        RULE + "    above: {warning: 100MiB, critical: 50MiB}\n",
        "r.yaml:5:40: thresholds in the wrong order in rule 'leak': for above, warning "
        "(100.0 MiB) must be below critical (50.0 MiB)",
        id="above-order",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB, critical: 50MiB}\n",
        "r.yaml:5:39: thresholds in the wrong order in rule 'leak': for above, warning "
        "(50.0 MiB) must be below critical (50.0 MiB)",
        id="above-equal",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: ttl\n    metric: time_to_limit_seconds\n"
        "    below: {warning: 1h, critical: 1d}\n",
        "r.yaml:5:36: thresholds in the wrong order in rule 'ttl': for below, warning (1h) "
        "must be above critical (1d)",
        id="below-order",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB, critical: 100MiB}\n"
        "    recover: {warning: 60MiB, critical: 90MiB}\n",
        "r.yaml:6:24: 'recover.warning' of rule 'leak' (60.0 MiB) must be below the warning "
        "threshold (50.0 MiB): an alert leaves a level only when the value is back below "
        "`recover`",
        id="recover-above-threshold",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: down\n    metric: up\n    below: {critical: 1}\n"
        "    recover: {critical: 0.5}\n",
        "r.yaml:6:25: 'recover.critical' of rule 'down' (0.5) must be above the critical "
        "threshold (1): an alert leaves a level only when the value is back above `recover`",
        id="recover-below-threshold",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    recover: {critical: 90MiB}\n",
        "r.yaml:6:25: 'recover.critical' of rule 'leak': there is no critical threshold in "
        "'above' to recover from",
        id="recover-missing-level",
    ),
    pytest.param(
        RULE + "    above: {warning: 50 MegaBytes}\n",
        "r.yaml:5:22: 'above.warning' of rule 'leak': unknown size unit 'MegaBytes' in "
        "'50 MegaBytes': use B, KB, MB, GB, TB (SI) or KiB, MiB, GiB, TiB (IEC)",
        id="bad-size-unit",
    ),
    pytest.param(
        RULE + "    above: {warning: 1" + "0" * 400 + "}\n",
        "r.yaml:5:22: 'above.warning' of rule 'leak': "
        "size 100000000000000000...0000000000000000000 is too large",
        id="size-too-large",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    for: 5 minutes\n",
        "r.yaml:6:10: 'for' of rule 'leak': cannot read duration '5 minutes': expected e.g. "
        "30s, 5m, 2h, 1d or 1h30m",
        id="bad-duration",
    ),
    pytest.param(
        "version: 1\ninterval: 0s\n",
        "r.yaml:2:11: 'interval' must be from 100ms to 1d (docs/rules.md, Ranges)",
        id="zero-interval",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: p\n    metric: pressure\n    above: {warning: 80%}\n",
        "r.yaml:5:22: 'above.warning' of rule 'p': pressure is a plain number (ratio 0..1); "
        "write e.g. 0.8 for 80%, not '80%'",
        id="pressure-percent-text",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: p\n    metric: pressure\n    above: {warning: 80}\n",
        "r.yaml:5:22: 'above.warning' of rule 'p': pressure is a ratio 0..1; 80 is out of "
        "range (write e.g. 0.8 for 80%)",
        id="pressure-out-of-range",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: p\n    metric: pressure\n    above: {warning: 512MiB}\n",
        "r.yaml:5:22: 'above.warning' of rule 'p': pressure is a plain number (ratio 0..1); "
        "write e.g. 0.8 for 80%, not '512MiB'",
        id="pressure-with-unit",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: rss\n    metric: rss_bytes\n    above: {warning: 1GB}\n"
        "    where: {component: cache}\n",
        "r.yaml:6:13: 'where' label 'component' in rule 'rss' can never match: rss_bytes "
        "samples carry only target",
        id="where-label-never-carried",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: site\n    metric: site_growth_bytes\n"
        "    above: {warning: 1MB}\n    where: {component: cache}\n",
        "r.yaml:6:13: 'where' label 'component' in rule 'site' can never match: "
        "site_growth_bytes samples carry only site, target",
        id="where-site-metric",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    where: {component: ''}\n",
        "r.yaml:6:24: 'where.component' of rule 'leak': an empty pattern can never match; "
        "use '*' for any value",
        id="where-empty-pattern",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    labels: {severity: high}\n",
        "r.yaml:6:14: label 'severity' in rule 'leak' is reserved: memalert sets it",
        id="reserved-label",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    summary: '{{ target } leaks'\n",
        "r.yaml:6:14: 'summary' of rule 'leak': template syntax error on line 1: unexpected '}'",
        id="template-syntax",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    summary: '{{ target }} grows {{ grwth }}'\n",
        "r.yaml:6:14: 'summary' of rule 'leak': unknown template variable 'grwth'; did you "
        "mean 'growth'?",
        id="template-unknown-variable",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    summary: '{{ value | byte }}'\n",
        "r.yaml:6:14: 'summary' of rule 'leak': unknown template filter 'byte'; did you mean "
        "'bytes'?",
        id="template-unknown-filter",
    ),
    pytest.param(
        RULE + "    above: {warning: 50MiB}\n    notify: [oncal]\n"
        "notifiers:\n  oncall: {urls: ['console://']}\n",
        "r.yaml:6:14: unknown notifier 'oncal'; did you mean 'oncall'?",
        id="unknown-notifier-in-rule",
    ),
    pytest.param(
        "version: 1\nroutes:\n  - {match: {severity: critical}, notify: [pager]}\n",
        "r.yaml:3:44: unknown notifier 'pager'; declare it under `notifiers:`",
        id="unknown-notifier-in-route",
    ),
    pytest.param(
        "version: 1\nroutes:\n  - {match: {severity: crit}, notify: [console]}\n",
        "r.yaml:3:24: 'match.severity' of route #1: 'crit' matches no severity; use warning or "
        "critical; did you mean 'critical'?",
        id="route-severity-never-matches",
    ),
    pytest.param(
        RULE
        + "    above: {warning: 1MiB}\nroutes:\n  - {match: {rule: lake}, notify: [console]}\n",
        "r.yaml:7:20: no rule is named 'lake'; did you mean 'leak'?",
        id="route-rule-never-matches",
    ),
    pytest.param(
        RULE
        + "    above: {warning: 1MiB}\n"
        + RULE.split("rules:\n")[1]
        + "    below: {warning: 1}\n",
        "r.yaml:6:11: duplicate rule name 'leak' (first defined at r.yaml:3:11)",
        id="duplicate-rule",
    ),
    pytest.param(
        "version: 1\ntargets:\n  - {name: api, pid: 1}\n  - {name: api, self: true}\n",
        "r.yaml:4:12: duplicate target name 'api' (first defined at r.yaml:3:12)",
        id="duplicate-target",
    ),
    pytest.param(
        "version: 1\ntargets:\n  - name: api\n    process: {cmdline: 'uvicorn (api'}\n",
        "r.yaml:4:24: 'process.cmdline' of target 'api' is not a valid regular expression: "
        "missing ), unterminated subpattern at position 8",
        id="bad-regex",
    ),
    pytest.param(
        "version: 1\ntargets:\n  - name: api\n    pidfile: ${PIDFILE\n",
        "r.yaml:4:14: 'pidfile' of target 'api': malformed variable reference '${PIDFILE': "
        "write ${NAME} with letters, digits and underscores",
        id="bad-reference-in-target",
    ),
    pytest.param(
        "version: 1\nnotifiers:\n  ops: {urls: [ops-channel]}\n",
        "r.yaml:3:16: 'urls[0]' of notifier 'ops' is not a URL: expected scheme://..., such as "
        "slack://, mailtos://, json:// or console://",
        id="notifier-url-not-a-url",
    ),
    pytest.param(
        "version: 1\nnotifiers:\n  ops:\n    urls:\n      - https://hooks.slack.com/services/"
        "T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx\n",
        "r.yaml:5:42: literal secret: a Slack webhook URL with its secret path "
        "(https://hooks.slack.com/services/***); keep it in an environment variable and write "
        "${VAR} here instead",
        id="literal-slack-webhook",
    ),
    pytest.param(
        "version: 1\nnotifiers:\n  ops: {urls: ['slack://xoxb-1234-5678-abcdefghijkl/#ops']}\n",
        "r.yaml:3:25: literal secret: a literal token in an apprise slack:// URL "
        "(slack://***/#ops); keep it in an environment variable and write ${VAR} here instead",
        id="literal-slack-token",
    ),
    pytest.param(
        "version: 1\nnotifiers:\n  mail: {urls: ['mailtos://alerts:hunter2@example.com']}\n",
        "r.yaml:3:35: literal secret: a password in a URL (mailtos://alerts:***@); keep it in an "
        "environment variable and write ${VAR} here instead",
        id="literal-password",
    ),
    pytest.param(
        "version: 1\n# old: https://discord.com/api/webhooks/1234/abcdefghijklmnop\n",
        "r.yaml:2:41: literal secret: a Discord webhook URL with its secret path "
        "(https://discord.com/api/webhooks/***); keep it in an environment variable and write "
        "${VAR} here instead",
        id="literal-secret-in-comment",
    ),
    pytest.param(
        "version: 1\nsilences:\n  - match: {target: batch}\n    starts: tomorrow\n"
        "    ends: 2026-12-01T02:00:00Z\n",
        "r.yaml:4:13: 'starts' of silence #1: 'tomorrow' is not an RFC 3339 time with a time "
        "zone, such as 2026-12-01T00:00:00Z",
        id="silence-bad-time",
    ),
    pytest.param(
        "version: 1\nsilences:\n  - match: {target: batch}\n    starts: 2026-12-01T00:00:00\n"
        "    ends: 2026-12-01T02:00:00Z\n",
        "r.yaml:4:13: 'starts' of silence #1: '2026-12-01T00:00:00' is not an RFC 3339 time with "
        "a time zone, such as 2026-12-01T00:00:00Z",
        id="silence-without-zone",
    ),
    pytest.param(
        "version: 1\nsilences:\n  - match: {target: batch}\n    starts: 2026-12-01T02:00:00Z\n"
        "    ends: 2026-12-01T00:00:00Z\n",
        "r.yaml:5:11: silence #1 ends before it starts",
        id="silence-backwards",
    ),
    # -- the loader's refusals reach check unchanged --------------------------------
    pytest.param("", "r.yaml:1:1: the file is empty", id="empty-file"),
    pytest.param(
        "version: 1\nversion: 1\n",
        "r.yaml:2:1: duplicate key 'version' (first on line 1)",
        id="duplicate-key",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_each_problem_is_reported_where_it_is(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in check(tmp_path, text)


def test_malformed_yaml_reaches_check_at_its_position(tmp_path: Path) -> None:
    # After the position the words are PyYAML's, which change between releases.
    (problem,) = check(tmp_path, "version: 1\nrules: [\n")
    assert problem.startswith("r.yaml:3:1: invalid YAML: ")


MANY_PROBLEMS = """\
version: 1
interval: 5 seconds
targets:
  - {name: api}
rules:
  - name: leak
    metric: leak_byte
    above: {warning: 100MiB, critical: 50MiB}
    recover: {critical: 60MiB}
    summary: "{{ nope }}"
    notify: [pager]
  - name: leak
    metric: rss_bytes
    below: {warning: 1GB}
    where: {site: "*"}
    colour: red
notifiers:
  ops: {urls: ["mailtos://me:hunter2@example.com"]}
"""


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    assert check(tmp_path, MANY_PROBLEMS) == [
        (
            "r.yaml:2:11: 'interval': cannot read duration '5 seconds': expected e.g. 30s, 5m, 2h, "
            "1d or 1h30m"
        ),
        "r.yaml:4:5: target 'api' needs one of process, pid, pidfile, self, system, cgroup",
        "r.yaml:7:13: unknown metric 'leak_byte' in rule 'leak'; did you mean 'leak_bytes'?",
        (
            "r.yaml:8:40: thresholds in the wrong order in rule 'leak': for above, warning "
            "(100.0 MiB) must be below critical (50.0 MiB)"
        ),
        (
            "r.yaml:9:25: 'recover.critical' of rule 'leak' (60.0 MiB) must be below the critical "
            "threshold (50.0 MiB): an alert leaves a level only when the value is back below "
            "`recover`"
        ),
        "r.yaml:10:14: 'summary' of rule 'leak': unknown template variable 'nope'",
        "r.yaml:11:14: unknown notifier 'pager'; declare it under `notifiers:`",
        "r.yaml:12:11: duplicate rule name 'leak' (first defined at r.yaml:6:11)",
        (
            "r.yaml:15:13: 'where' label 'site' in rule 'leak' can never match: rss_bytes samples "
            "carry only target"
        ),
        "r.yaml:16:5: unknown key 'colour' in rule 'leak'",
        (
            "r.yaml:18:30: literal secret: a password in a URL (mailtos://me:***@); keep it in an "
            "environment variable and write ${VAR} here instead"
        ),
    ]


def test_load_rules_raises_with_all_diagnostics(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError) as caught:
        load(tmp_path, RULE + "    above: {warning: 100MiB, critical: 50MiB}\n    fro: 1m\n")
    assert [d.line for d in caught.value.diagnostics] == [5, 6]
    assert caught.value.exit_code == 1


# -- compiling -----------------------------------------------------------------------

GOOD = """\
version: 1
interval: 30s
targets:
  - name: api
    process: {cmdline: "uvicorn .*api"}
    children: true
  - {name: host, system: true}
  - {name: app, pidfile: "${APP_PIDFILE}"}
  - {name: worker, pid: "${WORKER_PID}"}
rules:
  - name: memory-leak
    metric: leak_bytes
    where: {component: "*", target: "!batch"}
    above: {warning: 50MiB, critical: 100MB}
    for: 1m
    keep_firing_for: 2m
    recover: {warning: 40MiB}
    labels: {team: core}
    summary: "{{ target }} leaks {{ value | bytes }} ({{ team }})"
    notify: [oncall]
  - name: pressure
    metric: pressure
    above: {critical: 0.8}
  - name: ttl
    metric: time_to_limit_seconds
    below: {warning: 1d, critical: 2h}
    notify: []
notifiers:
  oncall: {urls: ["${SLACK_WEBHOOK_URL}", "mailtos://${SMTP_USER}:${SMTP_PASSWORD}@example.com"]}
routes:
  - {match: {severity: critical, rule: "mem*"}, notify: [oncall], continue: true}
  - {notify: [console]}
repeat_interval: 1h
silences:
  - match: {target: batch}
    starts: 2026-12-01T00:00:00Z
    ends: "2026-12-01T02:00:00+01:00"
    comment: migration
    author: ops
"""


def test_a_valid_file_compiles_to_model_values(tmp_path: Path) -> None:
    assert check(tmp_path, GOOD) == []
    ruleset = load(tmp_path, GOOD)
    leak, pressure, ttl = ruleset.rules
    assert leak.name == "memory-leak"
    assert leak.direction == "above"
    assert leak.thresholds == {W: 50 * 2**20, C: 100e6}
    assert leak.recover == {W: 40 * 2**20}
    assert leak.where == (Matcher.compile("component", "*"), Matcher.compile("target", "!batch"))
    assert (leak.for_seconds, leak.keep_firing_for_seconds) == (60.0, 120.0)
    assert leak.labels == {"team": "core"}
    assert leak.summary == "{{ target }} leaks {{ value | bytes }} ({{ team }})"
    assert leak.notify == ("oncall",)
    assert leak.position is not None
    assert (leak.position.line, leak.position.col) == (11, 5)
    assert pressure.thresholds == {C: 0.8}
    assert (pressure.notify, pressure.summary, pressure.for_seconds) == (None, None, 0.0)
    assert ttl.direction == "below"
    assert ttl.thresholds == {W: 86400.0, C: 7200.0}
    assert ttl.notify == ()
    assert ruleset.interval == 30.0
    assert ruleset.repeat_interval == 3600.0
    assert ruleset.files == (str(tmp_path / "r.yaml"),)


def test_targets_notifiers_routes_and_silences_compile(tmp_path: Path) -> None:
    ruleset = load(tmp_path, GOOD)
    api, host, app, worker = ruleset.targets
    assert (api.kind, api.cmdline_pattern, api.children) == ("process", "uvicorn .*api", True)
    assert host.kind == "system"
    assert (app.kind, app.pidfile) == ("pidfile", "${APP_PIDFILE}")
    assert (worker.kind, worker.pid) == ("pid", None)  # expanded only when given an env
    (oncall,) = ruleset.notifiers.values()
    assert oncall.urls == (
        "${SLACK_WEBHOOK_URL}",
        "mailtos://${SMTP_USER}:${SMTP_PASSWORD}@example.com",
    )
    first, catch_all = ruleset.routes
    assert first.matchers == (
        Matcher.compile("severity", "critical"),
        Matcher.compile("rule", "mem*"),
    )
    assert (first.notify, first.continue_matching) == (("oncall",), True)
    assert (catch_all.matchers, catch_all.notify) == ((), ("console",))
    (silence,) = ruleset.silences
    assert silence.starts == 1796083200.0  # 2026-12-01T00:00:00Z
    assert silence.ends == 1796083200.0 + 3600.0
    assert (silence.comment, silence.author) == ("migration", "ops")
    assert silence.id == load(tmp_path, GOOD).silences[0].id
    assert len(silence.id) == 16


def test_the_environment_expands_target_selectors_only(tmp_path: Path) -> None:
    env = {"APP_PIDFILE": "/run/app.pid", "WORKER_PID": "4242", "SLACK_WEBHOOK_URL": "x"}
    ruleset = load(tmp_path, GOOD, env=env)
    assert [(t.name, t.pid, t.pidfile) for t in ruleset.targets[2:]] == [
        ("app", None, "/run/app.pid"),
        ("worker", 4242, None),
    ]
    assert ruleset.notifiers["oncall"].urls[0] == "${SLACK_WEBHOOK_URL}"


def test_a_target_whose_variable_is_unset_is_not_watched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ruleset = load(tmp_path, GOOD, env={"WORKER_PID": "7"})
    assert [t.name for t in ruleset.targets] == ["api", "host", "worker"]
    (line,) = [r.getMessage() for r in caplog.records if "is not watched" in r.getMessage()]
    # FILE:LINE:COL, as every diagnostic: the pidfile selector that names the variable.
    assert re.fullmatch(
        r".+\.yaml:\d+:\d+: target 'app' is not watched: "
        r"environment variable APP_PIDFILE is not set",
        line,
    ), line


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("nope", id="word"),
        # str.isdigit accepts both: int() reads the first as 4242, refuses the second.
        pytest.param("\u0664\u0662\u0664\u0662", id="arabic-indic-digits"),
        pytest.param("\u00b2", id="superscript-two"),
        pytest.param("4_242", id="underscore"),
        pytest.param("9" * 5000, id="beyond-int-str-digits"),
    ],
)
def test_a_pid_variable_must_hold_a_pid(tmp_path: Path, value: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        load(tmp_path, GOOD, env={"APP_PIDFILE": "/x", "WORKER_PID": value})
    (problem,) = caught.value.diagnostics
    assert "r.yaml:9:25: 'pid' of target 'worker' expands to " in str(problem)
    assert str(problem).endswith(", which is not a process id")


# -- several files -------------------------------------------------------------------


def test_files_merge_in_order_with_the_smallest_intervals(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "version: 1\ninterval: 1m\nrepeat_interval: 2h\nrules:\n"
        "  - {name: one, metric: rss_bytes, above: {warning: 1GB}}\n"
        "routes:\n  - {match: {rule: one}, notify: [console]}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "version: 1\ninterval: 10s\nrules:\n"
        "  - {name: two, metric: rss_bytes, above: {warning: 2GB}, notify: [ops]}\n"
        "notifiers:\n  ops: {urls: ['console://']}\n"
        "routes:\n  - {match: {rule: two}, notify: [ops]}\n"
    )
    ruleset = load_rules([tmp_path / "b.yaml", tmp_path / "a.yaml"], env=None)
    assert [r.name for r in ruleset.rules] == ["two", "one"]
    assert [r.notify for r in ruleset.routes] == [("ops",), ("console",)]
    assert (ruleset.interval, ruleset.repeat_interval) == (10.0, 7200.0)
    assert ruleset.files == (str(tmp_path / "b.yaml"), str(tmp_path / "a.yaml"))


def test_names_must_be_unique_across_files(tmp_path: Path) -> None:
    rule = "version: 1\nrules:\n  - {name: leak, metric: leak_bytes, above: {warning: 1MiB}}\n"
    notifier = "notifiers:\n  ops: {urls: ['console://']}\n"
    (tmp_path / "a.yaml").write_text(rule + notifier)
    (tmp_path / "b.yaml").write_text(rule + notifier)
    problems = [str(d).removeprefix(f"{tmp_path}/") for d in check_paths([tmp_path])]
    assert problems == [
        f"b.yaml:3:12: duplicate rule name 'leak' (first defined at {tmp_path}/a.yaml:3:12)",
        f"b.yaml:5:3: duplicate notifier name 'ops' (first defined at {tmp_path}/a.yaml:5:3)",
    ]


def test_notifiers_of_other_files_are_known(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules:\n  - {name: x, metric: up, below: {warning: 1}, notify: [ops]}\n"
    )
    (tmp_path / "notifiers.yaml").write_text("version: 1\nnotifiers:\n  ops: {urls: ['x://']}\n")
    assert check_paths([tmp_path / "rules.yaml", tmp_path / "notifiers.yaml"]) == []
    (alone,) = check_paths([tmp_path / "rules.yaml"])
    assert alone.message == "unknown notifier 'ops'; declare it under `notifiers:`"


def test_directories_are_searched_recursively_and_test_files_skipped(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "b.yml").write_text("version: 1\n")
    (tmp_path / "sub" / "deeper" / "a.yaml").write_text("version: 1\n")
    (tmp_path / "sub" / "tests.yaml").write_text("rule_files: [../b.yml]\ntests: []\n")
    (tmp_path / ".hidden" / "bad.yaml").write_text("not: [valid\n")
    (tmp_path / "notes.txt").write_text("not yaml")
    ruleset = load_rules([tmp_path, tmp_path / "b.yml"], env=None)
    assert ruleset.files == (
        str(tmp_path / "b.yml"),
        str(tmp_path / "sub" / "deeper" / "a.yaml"),
    )


def test_a_test_file_given_by_name_is_pointed_at_memalert_test(tmp_path: Path) -> None:
    assert check(tmp_path, "rule_files: [memory.yaml]\ntests: []\n", "t.yaml") == [
        (
            "t.yaml:1:1: this is a rule unit-test file (it has `rule_files`): "
            "run it with `memalert test`"
        )
    ]


def test_missing_paths_and_empty_directories_are_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    problems = check_paths([tmp_path / "nope.yaml", tmp_path / "empty"])
    assert [str(d).removeprefix(f"{tmp_path}/") for d in problems] == [
        "empty:1:1: no rule files (*.yaml, *.yml) in this directory",
        "nope.yaml:1:1: cannot read: no such file",
    ]
    with pytest.raises(RuleFileError, match="no rule files found"):
        load_rules([], env=None)


# -- the shipped rules ---------------------------------------------------------------


def test_the_shipped_rules_directory_is_valid() -> None:
    assert check_paths([ROOT / "rules"]) == []


def test_the_defaults_hold_the_original_thresholds() -> None:
    ruleset = load_rules([ROOT / "rules" / "memory.yaml"], env={})
    rules = {rule.name: rule for rule in ruleset.rules}
    assert rules["memory-leak"].thresholds == {W: 50 * 2**20, C: 100 * 2**20}
    assert rules["memory-pressure"].thresholds == {W: 0.5, C: 0.8}
    assert [t.kind for t in ruleset.targets] == ["system"]  # MEMALERT_PIDFILE unset
    assert [t.kind for t in load_rules([ROOT / "rules"], env=None).targets] == ["system", "pidfile"]


def test_for_per_level_compiles_to_each_levels_own_for(tmp_path: Path) -> None:
    above = "    above: {warning: 50MiB, critical: 80MiB}\n"
    text = RULE + above + "    for: {warning: 10m, critical: 2m}\n"
    assert check(tmp_path, text) == []
    (rule,) = load(tmp_path, text).rules
    assert (rule.pending_for(W), rule.pending_for(C)) == (600.0, 120.0)
    # A level left out of the mapping has no `for`, like a Prometheus rule without one.
    text = RULE + above + "    for: {critical: 2m}\n"
    (rule,) = load(tmp_path, text).rules
    assert (rule.pending_for(W), rule.pending_for(C)) == (0.0, 120.0)


def test_inhibit_rules_compile_to_matchers(tmp_path: Path) -> None:
    text = (
        "version: 1\ninhibit_rules:\n"
        "  - source_matchers: {severity: critical, target: 'host-*'}\n"
        "    target_matchers: {severity: warning}\n"
        "    equal: [target]\n"
    )
    assert check(tmp_path, text) == []
    (inhibit,) = load(tmp_path, text).inhibit_rules
    assert inhibit.source == (
        Matcher.compile("severity", "critical"),
        Matcher.compile("target", "host-*"),
    )
    assert inhibit.target == (Matcher.compile("severity", "warning"),)
    assert inhibit.equal == ("target",)
    assert inhibit.position is not None
    assert (inhibit.position.line, inhibit.position.col) == (3, 5)
