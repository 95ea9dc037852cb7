"""`memalert export prometheus`: memalert rules as Prometheus alerting rules (docs/scale-out.md).

The agents expose `memalert_<metric>` (memalert.engine.export.exposition); these
rules are evaluated over them by Prometheus. One memalert rule with two levels
becomes two Prometheus alerts named after the rule, told apart by their
`severity` label, each with its level's `for` and the rule's `keep_firing_for` (Prometheus
2.42+), as docs/prometheus-differences.md explains; Alertmanager's inhibit rule
(memalert.engine.export.alertmanager_config) keeps a critical from also paging as
a warning.

- `where` globs become label matchers: `=` / `!=` for a plain value, else `=~` /
  `!~` with the glob as an anchored regular expression.
- `recover` hysteresis: a level that fires stays active while the value is on
  the wrong side of its recover level, read from the alert's own `ALERTS`
  series of the previous evaluation:
  `m > warn or (m > recover and ignoring(...) ALERTS{alertname, severity, alertstate="firing"})`.
- `summary` becomes an annotation in Prometheus' template language
  (memalert.engine.export.go_template); `value` and `threshold` annotations carry
  the numbers for `memalert relay`, which renders the rule's own summary, and
  so do `growth`, `confidence`, `time_to_limit` and `limit` when the summary
  reads them (each the same target's series, by Prometheus' `query`).

What has no Prometheus equivalent is reported as `FILE:LINE:COL: warning: ...`
(`Export.losses`); the rest is still written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memalert.engine.core.errors import Diagnostic
from memalert.engine.core.model import Matcher, Position, Rule, RuleSet, Severity
from memalert.engine.export.exposition import PREFIX, label_name
from memalert.engine.export.go_template import (
    Context,
    related_annotation,
    related_variables,
    translate,
)
from memalert.engine.rules.values import default_summary
from memalert.engine.rules.yamlsource import Document, load_yaml

# Labels an alert carries that are not the series' own: ignored when a level's
# expression is matched with its own ALERTS series.
_ALERT_LABELS = ("alertname", "alertstate", "severity")
# RE2's metacharacters; RE2 refuses escapes of anything but punctuation.
_REGEX_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


@dataclass(slots=True)
class Export:
    """A Prometheus rule file as plain data, and what it could not express."""

    document: dict[str, Any]
    losses: list[Diagnostic] = field(default_factory=list)


def prometheus_rules(ruleset: RuleSet) -> Export:
    """One rule group per rule file, evaluated at the rule files' `interval`."""
    export = Export(document={"groups": []})
    documents: dict[str, Document | None] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in ruleset.rules:
        file = rule.position.file if rule.position else "memalert"
        if file not in documents:
            documents[file] = _document(file)
        groups.setdefault(file, []).extend(_alerts(rule, documents[file], export.losses))
    names: set[str] = set()
    for file, alerts in groups.items():
        name = _group_name(file, names)
        export.document["groups"].append(
            {"name": name, "interval": prometheus_duration(ruleset.interval), "rules": alerts}
        )
    return export


def _document(file: str) -> Document | None:
    # Read again only for where a rule's fields are, to name them in warnings.
    try:
        return load_yaml(file) if Path(file).is_file() else None
    except Exception:  # noqa: BLE001 - positions are a courtesy; the rules loaded already
        return None


def _group_name(file: str, taken: set[str]) -> str:
    base = "memalert:" + Path(file).stem
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}:{n}"
    taken.add(name)
    return name


def prometheus_duration(seconds: float) -> str:
    """`90` -> `90s`, `120` -> `2m`, `1.5` -> `1500ms`: Prometheus' duration syntax."""
    millis = round(seconds * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis and millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


def promql_number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _string(text: str) -> str:
    """A PromQL double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def glob_regex(glob: str) -> str | None:
    """The glob as an RE2 expression; None when it has no wildcard (match it with `=`)."""
    out: list[str] = []
    i, wild = 0, False
    while i < len(glob):
        char = glob[i]
        if char == "*":
            out.append(".*")
            wild = True
        elif char == "?":
            out.append(".")
            wild = True
        elif char == "[" and (end := _class_end(glob, i)) is not None:
            inner = glob[i + 1 : end]
            if inner.startswith("!"):
                inner = "^" + inner[1:]
            elif inner.startswith("^"):  # a literal caret for fnmatch
                inner = "\\" + inner
            out.append("[" + inner.replace("\\", "\\\\") + "]")
            wild = True
            i = end
        else:
            out.append(_REGEX_SPECIAL.sub(r"\\\1", char))
        i += 1
    return "^(?:" + "".join(out) + ")$" if wild else None


def _class_end(glob: str, start: int) -> int | None:
    """Where fnmatch's `[...]` starting at `start` ends (a `]` first inside is literal)."""
    j = start + 1
    if j < len(glob) and glob[j] == "!":
        j += 1
    if j < len(glob) and glob[j] == "]":
        j += 1
    end = glob.find("]", j)
    return None if end < 0 else end


def label_matcher(matcher: Matcher) -> str:
    glob = matcher.pattern[1:] if matcher.negate else matcher.pattern
    name = label_name(matcher.label)
    regex = glob_regex(glob)
    if regex is None:
        return f"{name}{'!=' if matcher.negate else '='}{_string(glob)}"
    return f"{name}{'!~' if matcher.negate else '=~'}{_string(regex)}"


def selector(rule: Rule) -> str:
    matchers = ",".join(label_matcher(m) for m in rule.where)
    return f"{PREFIX}{rule.metric}{{{matchers}}}" if matchers else PREFIX + rule.metric


def level_expression(rule: Rule, severity: Severity) -> str:
    """The PromQL condition of one level, with its `recover` hysteresis if any."""
    op = ">" if rule.direction == "above" else "<"
    series = selector(rule)
    trigger = f"{series} {op} {promql_number(rule.thresholds[severity])}"
    recover = rule.recover.get(severity)
    if recover is None:
        return trigger
    ignored = ", ".join([*_ALERT_LABELS, *sorted(label_name(k) for k in rule.labels)])
    own = (
        f"ALERTS{{alertname={_string(rule.name)}, severity={_string(severity.label)},"
        ' alertstate="firing"}'
    )
    held = f"{series} {op} {promql_number(recover)}"
    return f"{trigger}\nor\n({held} and ignoring({ignored}) {own})"


def _alerts(
    rule: Rule, document: Document | None, losses: list[Diagnostic]
) -> list[dict[str, Any]]:
    alerts = []
    reported: set[str] = set()
    for severity in sorted(rule.thresholds):
        threshold = rule.thresholds[severity]
        alert: dict[str, Any] = {"alert": rule.name, "expr": level_expression(rule, severity)}
        pending = rule.pending_for(severity)
        if pending:
            alert["for"] = prometheus_duration(pending)
        if rule.keep_firing_for_seconds:
            alert["keep_firing_for"] = prometheus_duration(rule.keep_firing_for_seconds)
        alert["labels"] = {
            **{label_name(k): v for k, v in rule.labels.items()},
            "severity": severity.label,
        }
        context = Context(
            rule_labels=rule.labels,
            metric=rule.metric,
            severity=severity.label,
            threshold=threshold,
        )
        summary = rule.summary or default_summary(rule.metric)
        translated = translate(summary, context)
        # A default summary is memalert's, not the user's: what it loses is not reported.
        if rule.summary is not None:
            for loss in translated.losses:
                if loss not in reported:
                    reported.add(loss)
                    losses.append(_loss(rule, document, "summary", loss))
        alert["annotations"] = {
            "summary": translated.text,
            "value": "{{ $value }}",
            "threshold": promql_number(threshold),
            **{name: related_annotation(name) for name in related_variables(summary)},
        }
        alerts.append(alert)
    return alerts


def _loss(rule: Rule, document: Document | None, key: str, message: str) -> Diagnostic:
    position = _field_position(rule, document, key)
    return Diagnostic(
        file=position.file,
        line=position.line,
        col=position.col,
        message=f"warning: rule {rule.name!r} {key}: {message}",
    )


def _field_position(rule: Rule, document: Document | None, key: str) -> Position:
    fallback = rule.position or Position(file="memalert")
    items = document.data.get("rules") if document and isinstance(document.data, dict) else None
    if document is None or not isinstance(items, list):
        return fallback
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == rule.name:
            return document.position(("rules", index, key))
    return fallback
