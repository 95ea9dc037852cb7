"""Compile functions for the alerting items of a rule file: notifier, route, inhibit rule, silence.

As memalert.engine.rules.items does for rules and targets: each checks what the
schema cannot (URLs, severities and rule names in matchers, time interval
names, dates), reports through the FileCompiler, and appends a compiled value
only when the item is entirely valid. The labels and rule names matchers need
are kept for the cross-file checks of memalert.engine.rules.load.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from memalert.engine.core.limits import TIME
from memalert.engine.core.model import InhibitRule, NotifierConfig, Route, Silence
from memalert.engine.core.secrets import reference_errors
from memalert.engine.core.suggest import did_you_mean
from memalert.engine.core.units import parse_rfc3339
from memalert.engine.rules.items import LEVELS, as_mapping
from memalert.engine.rules.routegroups import compile_grouping

if TYPE_CHECKING:
    from memalert.engine.rules.compile import FileCompiler
    from memalert.engine.rules.yamlsource import JsonPath


def compile_notifier(c: FileCompiler, name: str, body: object) -> None:
    path: JsonPath = ("notifiers", name)
    c.declare("notifier", name, path, key=True)
    urls = body.get("urls") if isinstance(body, dict) else None
    if not isinstance(urls, list):
        return
    for i, url in enumerate(urls):
        if not isinstance(url, str):
            continue
        at = (*path, "urls", i)
        problems = reference_errors(url)
        for problem in problems:
            c.error(at, f"{c.what(at)}: {problem}")
        c.variables(at, url, f"`run` and `notify-test` refuse notifier {name!r}")
        if not problems and "://" not in url and not re.fullmatch(r"(\$\{\w+\})+", url):
            c.error(
                at,
                f"{c.what(at)} is not a URL: expected scheme://..., such as "
                "slack://, mailtos://, json:// or console://",
            )
    if c.item_ok() and urls and all(isinstance(u, str) for u in urls):
        c.out.notifiers.append(
            NotifierConfig(name=name, urls=tuple(urls), position=c.doc.position(path))
        )


def compile_route(c: FileCompiler, path: JsonPath, item: dict[str, Any]) -> None:
    match = item.get("match", {})
    matchers = c.matchers((*path, "match"), match)
    _check_alert_matchers(c, (*path, "match"), match)
    notify = c.names((*path, "notify"), item.get("notify"))
    if c.item_ok() and notify:
        c.out.routes.append(
            Route(
                matchers=matchers,
                notify=notify,
                continue_matching=bool(item.get("continue", False)),
                mute_time_intervals=_interval_names(c, path, item, "mute_time_intervals"),
                active_time_intervals=_interval_names(c, path, item, "active_time_intervals"),
                grouping=compile_grouping(c, path, item, c.out.grouping),
                position=c.doc.position(path),
            )
        )


def _interval_names(
    c: FileCompiler, path: JsonPath, item: dict[str, Any], key: str
) -> tuple[str, ...]:
    """Names of time intervals, each kept for the cross-file check."""
    return c.names((*path, key), item.get(key), refs=c.out.interval_refs)


def _check_alert_matchers(c: FileCompiler, path: JsonPath, match: object) -> None:
    """Routes and silences match alert labels: `severity` and `rule` have known values.

    Each label a matcher needs present is kept for `check`'s warning about
    labels no rule's alerts carry (memalert.engine.rules.load).
    """
    if not isinstance(match, dict):
        return
    for label, pattern in match.items():
        if isinstance(pattern, str) and not pattern.startswith("!"):
            at = (*path, label)
            c.out.label_refs.append((label, c.what(at), c.doc.position(at, key=True)))
    severity = match.get("severity")
    if isinstance(severity, str) and severity not in ("", "!"):
        glob = severity.removeprefix("!")
        if not any(fnmatch.fnmatchcase(level, glob) for level in LEVELS):
            c.error(
                (*path, "severity"),
                f"{c.what((*path, 'severity'))}: {severity!r} matches "
                f"no severity; use warning or critical{did_you_mean(glob, LEVELS)}",
            )
    rule = match.get("rule")
    if isinstance(rule, str) and rule and not rule.startswith("!"):
        c.out.rule_refs.append((rule, c.doc.position((*path, "rule"))))


def compile_inhibit_rule(c: FileCompiler, path: JsonPath, item: dict[str, Any]) -> None:
    matchers = []
    for key in ("source_matchers", "target_matchers"):
        match = item.get(key)
        matchers.append(c.matchers((*path, key), match))
        _check_alert_matchers(c, (*path, key), match)
    equal = item.get("equal", [])
    if c.item_ok() and all(matchers):
        c.out.inhibit_rules.append(
            InhibitRule(
                source=matchers[0],
                target=matchers[1],
                equal=tuple(str(label) for label in equal),
                position=c.doc.position(path),
            )
        )


def compile_silence(c: FileCompiler, path: JsonPath, item: dict[str, Any]) -> None:
    match = item.get("match")
    matchers = c.matchers((*path, "match"), match)
    _check_alert_matchers(c, (*path, "match"), match)
    intervals = _interval_names(c, path, item, "time_intervals")
    # A recurring silence may leave out its dates: then it holds for ever.
    starts = _time(c, (*path, "starts"), item.get("starts"))
    ends = _time(c, (*path, "ends"), item.get("ends"))
    if intervals:  # a recurring silence's dates are optional bounds
        starts = TIME.low if "starts" not in item else starts
        ends = TIME.high if "ends" not in item else ends
    if starts is not None and ends is not None and ends <= starts:
        c.error((*path, "ends"), f"{c.what(path)} ends before it starts")
    if c.item_ok() and starts is not None and ends is not None and matchers:
        comment, author = str(item.get("comment", "")), str(item.get("author", ""))
        identity = json.dumps(
            [sorted(as_mapping(match).items()), starts, ends, comment, author, *intervals]
        )
        c.out.silences.append(
            Silence(
                matchers=matchers,
                starts=starts,
                ends=ends,
                comment=comment,
                author=author,
                id=hashlib.sha256(identity.encode()).hexdigest()[:16],
                time_intervals=intervals,
            )
        )


def _time(c: FileCompiler, path: JsonPath, value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = parse_rfc3339(value)
    except ValueError as exc:
        c.error(path, f"{c.what(path)}: {exc}")
        return None
    problem = TIME.problem(moment)
    if problem is not None:
        c.error(path, f"{c.what(path)} {problem} (docs/rules.md, Ranges)")
        return None
    return moment
