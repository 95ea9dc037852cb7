"""One compile function per rule and target of a rule file (the alerting items: alerting_items).

Each checks what the schema cannot (units, threshold order, `recover` on the
right side, metric names, labels a metric never carries, templates, regular
expressions, times), reports through the FileCompiler, and appends a compiled
memalert.engine.core.model value only when the item is entirely valid.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from memalert.engine.core.limits import HOLD, POSITIVE_DURATION
from memalert.engine.core.metrics import SAMPLE_METRICS
from memalert.engine.core.model import (
    Rule,
    Severity,
    TargetSpec,
)
from memalert.engine.core.regexes import backtracking_problem
from memalert.engine.core.secrets import VariableError, expand, reference_errors
from memalert.engine.core.suggest import did_you_mean
from memalert.engine.core.units import format_bytes, parse_decimal
from memalert.engine.rules.detector import compile_detector
from memalert.engine.rules.values import TEMPLATE_VARIABLES, format_value

if TYPE_CHECKING:
    from collections.abc import Mapping

    from memalert.engine.rules.compile import FileCompiler
    from memalert.engine.rules.yamlsource import JsonPath

LEVELS = ("warning", "critical")
_SELECTORS = ("process", "pid", "pidfile", "self", "system", "cgroup", "discover")
# `discover` targets' settings and their defaults (docs/targets.md#discovered-targets).
_DISCOVER_KEYS = ("min_rss", "max_targets", "forget_after")
DISCOVER_DEFAULTS = {"min_rss": 50 * 2**20, "max_targets": 100, "forget_after": 3600.0}
# Rule labels become alert labels and template variables: they must not shadow ours.
_RESERVED_LABELS = TEMPLATE_VARIABLES | {"rule", "severity"}
_log = logging.getLogger(__name__)


def compile_rule(c: FileCompiler, path: JsonPath, item: dict[str, Any]) -> None:
    c.declare("rule", item.get("name"), (*path, "name"))
    metric = item.get("metric")
    if isinstance(metric, str) and metric not in SAMPLE_METRICS:
        c.error(
            (*path, "metric"),
            f"unknown metric {metric!r} in {c.what(path)}{did_you_mean(metric, SAMPLE_METRICS)}",
        )
    metric = metric if isinstance(metric, str) else ""
    direction = "above" if "above" in item else "below"
    thresholds = _levels(c, (*path, direction), item.get(direction), metric)
    _check_order(c, path=(*path, direction), metric=metric, direction=direction, levels=thresholds)
    recover = _levels(c, (*path, "recover"), item.get("recover"), metric)
    _check_recover(
        c, path=path, metric=metric, direction=direction, thresholds=thresholds, recover=recover
    )
    where = c.matchers((*path, "where"), item.get("where"))
    _check_where(c, (*path, "where"), metric, item.get("where"))
    labels = as_mapping(item.get("labels"))
    for label in labels:
        if label in _RESERVED_LABELS:
            c.error(
                (*path, "labels", label),
                f"label {label!r} in {c.what(path)} is reserved: memalert sets it",
                key=True,
            )
    summary = item.get("summary")
    if isinstance(summary, str) and not c.trusted:
        # Jinja loads here, for a rule file that needs checking.
        from memalert.engine.rules.templates import template_errors  # noqa: PLC0415

        for problem in template_errors(summary, extra_vars=labels):
            c.error((*path, "summary"), f"{c.what((*path, 'summary'))}: {problem}")
    notify = c.names((*path, "notify"), item.get("notify")) if "notify" in item else None
    pending = _pending_for(c, path, item.get("for", 0), direction, item.get(direction))
    keep_firing = c.duration((*path, "keep_firing_for"), item.get("keep_firing_for", 0), HOLD)
    if c.item_ok() and pending is not None and keep_firing is not None and thresholds:
        for_seconds, for_levels = pending
        c.out.rules.append(
            Rule(
                name=str(item.get("name")),
                metric=metric,
                direction=direction,
                thresholds=thresholds,
                recover=recover or {},
                where=where,
                for_seconds=for_seconds,
                for_levels=for_levels,
                keep_firing_for_seconds=keep_firing,
                labels={str(k): str(v) for k, v in labels.items()},
                summary=summary if isinstance(summary, str) else None,
                notify=notify,
                position=c.doc.position(path),
            )
        )


def _pending_for(
    c: FileCompiler, path: JsonPath, value: object, direction: str, thresholds: object
) -> tuple[float, dict[Severity, float]] | None:
    """`for` as (every level's duration, per-level ones); None when it is invalid."""
    at = (*path, "for")
    if not isinstance(value, dict):
        seconds = c.duration(at, value, HOLD)
        return None if seconds is None else (seconds, {})
    # A level left out has no `for`, like a Prometheus rule without one.
    levels: dict[Severity, float] = {}
    valid = True
    for level in LEVELS:
        if level not in value:
            continue
        here = (*at, level)
        seconds = c.duration(here, value[level], HOLD)
        if isinstance(thresholds, dict) and level not in thresholds:
            c.error(
                here, f"{c.what(here)}: there is no {level} threshold in '{direction}' to wait for"
            )
            valid = False
        if seconds is None:
            valid = False
        else:
            levels[Severity.parse(level)] = seconds
    return (0.0, levels) if valid else None


def _levels(c: FileCompiler, path: JsonPath, value: object, metric: str) -> dict[Severity, float]:
    if not isinstance(value, dict):
        return {}
    levels: dict[Severity, float] = {}
    for level in LEVELS:
        if level in value:
            number = c.threshold((*path, level), value[level], metric)
            if number is not None:
                levels[Severity.parse(level)] = number
    return levels


def _shown(metric: str, value: float) -> str:
    # An unknown metric (reported separately) had its thresholds read as sizes.
    return format_value(metric, value) if metric in SAMPLE_METRICS else format_bytes(value)


def _check_order(
    c: FileCompiler,
    *,
    path: JsonPath,
    metric: str,
    direction: str,
    levels: Mapping[Severity, float],
) -> None:
    warning, critical = levels.get(Severity.WARNING), levels.get(Severity.CRITICAL)
    if warning is None or critical is None:
        return
    if direction == "above" and not warning < critical:
        relation = "below"
    elif direction == "below" and not warning > critical:
        relation = "above"
    else:
        return
    c.error(
        (*path, "critical"),
        f"thresholds in the wrong order in {c.what(path[:2])}: for "
        f"{direction}, warning ({_shown(metric, warning)}) must be {relation} critical "
        f"({_shown(metric, critical)})",
    )


def _check_recover(
    c: FileCompiler,
    *,
    path: JsonPath,
    metric: str,
    direction: str,
    thresholds: Mapping[Severity, float],
    recover: Mapping[Severity, float],
) -> None:
    for level, value in recover.items():
        at = (*path, "recover", level.label)
        limit = thresholds.get(level)
        if limit is None:
            c.error(
                at,
                f"{c.what(at)}: there is no {level.label} threshold in "
                f"'{direction}' to recover from",
            )
        elif (direction == "above" and value >= limit) or (direction == "below" and value <= limit):
            side = "below" if direction == "above" else "above"
            c.error(
                at,
                f"{c.what(at)} ({_shown(metric, value)}) must be {side} the "
                f"{level.label} threshold ({_shown(metric, limit)}): an alert leaves a level "
                f"only when the value is back {side} `recover`",
            )


def _check_where(c: FileCompiler, path: JsonPath, metric: str, where: object) -> None:
    info = SAMPLE_METRICS.get(metric)
    if info is None or not isinstance(where, dict):
        return
    carried = ", ".join(sorted(info.labels))
    for label, pattern in where.items():
        negated = isinstance(pattern, str) and pattern.startswith("!")
        if label not in info.labels and not negated:
            c.error(
                (*path, label),
                f"'where' label {label!r} in {c.what(path[:2])} can never "
                f"match: {metric} samples carry only {carried}",
                key=True,
            )


def compile_target(c: FileCompiler, path: JsonPath, item: dict[str, Any]) -> None:
    c.declare("target", item.get("name"), (*path, "name"))
    process = as_mapping(item.get("process"))
    for key in ("name", "cmdline"):
        pattern = process.get(key)
        if isinstance(pattern, str):
            at = (*path, "process", key)
            try:
                re.compile(pattern)
            # Pathological patterns fail beyond re.error: `a{99999999999}`, 1,000 `(`.
            except (re.error, OverflowError, RecursionError) as exc:
                c.error(at, f"{c.what(at)} is not a valid regular expression: {exc}")
                continue
            problem = backtracking_problem(pattern)
            if problem is not None:
                c.error(at, f"{c.what(at)} could stall every tick: {problem} (see docs/targets.md)")
    for key in ("pidfile", "cgroup", "pid"):
        if isinstance(item.get(key), str):
            for problem in reference_errors(item[key]):
                c.error((*path, key), f"{c.what((*path, key))}: {problem}")
            c.variables((*path, key), item[key], f"`run` leaves target {item.get('name')!r} out")
    detector = (
        compile_detector(c, (*path, "detector"), item["detector"]) if "detector" in item else None
    )
    discovery = _discovery(c, path, item)
    kinds = [k for k in _SELECTORS if k in item]
    if not (c.item_ok() and len(kinds) == 1 and isinstance(item.get("name"), str)):
        return
    selectors = {key: item.get(key) for key in ("pid", "pidfile", "cgroup")}
    if c.env is not None:
        try:
            selectors = {
                k: expand(v, c.env) if isinstance(v, str) else v for k, v in selectors.items()
            }
        except VariableError as exc:
            # Defaults name targets by environment variables that a host may
            # not set (MEMALERT_PIDFILE): such a target is simply not watched.
            # The warning names where, as every diagnostic does.
            where = c.doc.position((*path, kinds[0]))
            _log.warning(
                "%s:%d:%d: target %r is not watched: %s",
                where.file,
                where.line,
                where.col,
                item["name"],
                exc,
            )
            return
    pid = _pid(c, (*path, "pid"), selectors["pid"])
    if "pid" in item and pid is None and c.env is not None:
        return
    c.out.targets.append(
        TargetSpec(
            name=item["name"],
            kind=kinds[0],
            pid=pid,
            pidfile=selectors["pidfile"],
            name_pattern=process.get("name"),
            cmdline_pattern=process.get("cmdline"),
            cgroup=selectors["cgroup"],
            children=bool(item.get("children", False)),
            discover=item.get("discover"),
            min_rss_bytes=discovery["min_rss"],
            max_targets=int(discovery["max_targets"]),
            forget_after_seconds=discovery["forget_after"],
            detector=detector,
            position=c.doc.position(path),
        )
    )


def _discovery(c: FileCompiler, path: JsonPath, item: dict[str, Any]) -> dict[str, float]:
    """`min_rss`, `max_targets` and `forget_after` of a `discover` target, defaults filled in."""
    settings = dict(DISCOVER_DEFAULTS)
    if "discover" in item and "detector" in item:
        # The detector's parameters are looked up by target name, and a discover
        # target's names are only known at run time.
        at = (*path, "detector")
        c.error(
            at, f"{c.what(at)}: a `discover` target uses its file's `detector:` section", key=True
        )
    for key in _DISCOVER_KEYS:
        if key not in item:
            continue
        at = (*path, key)
        if "discover" not in item:
            c.error(at, f"{c.what(at)} applies only to a `discover` target", key=True)
        elif key == "min_rss":
            settings[key] = c.threshold(at, item[key], "rss_bytes") or 0.0
        elif key == "forget_after":
            settings[key] = c.duration(at, item[key], POSITIVE_DURATION) or 0.0
        elif isinstance(item[key], int):
            settings[key] = item[key]
    return settings


def _pid(c: FileCompiler, path: JsonPath, value: object) -> int | None:
    """An int pid; a `${VAR}` is None until there is an environment to expand it from."""
    if isinstance(value, int) or value is None:
        return value
    text = str(value).strip()
    if c.env is None:
        return None
    pid = parse_decimal(text)
    if pid is None or pid < 1:
        c.error(path, f"{c.what(path)} expands to {text!r}, which is not a process id")
        return None
    return pid


def as_mapping(value: object) -> dict[str, Any]:
    """The item's value when it is a mapping, else an empty one (the schema reports it)."""
    return value if isinstance(value, dict) else {}
