"""`group_by`, `group_wait`, `group_interval`, `repeat_interval`: a route's grouping over time.

On a route, or at a file's top level (Alertmanager's root route), where they
are the defaults of that file's routes and apply to alerts no route matches.
A route that sets none of them, in a file whose top level sets none either,
has no grouping: its alerts are sent at the tick they change, as before
grouping existed (docs/rules.md, Routes).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from memalert.engine.core.limits import HOLD, POSITIVE_DURATION, REPEAT_INTERVAL
from memalert.engine.core.model import GROUP_BY_ALL, Grouping

if TYPE_CHECKING:
    from memalert.engine.rules.compile import FileCompiler
    from memalert.engine.rules.yamlsource import JsonPath

TOP_LEVEL_KEYS = ("group_by", "group_wait", "group_interval")
ROUTE_KEYS = (*TOP_LEVEL_KEYS, "repeat_interval")


def compile_grouping(
    c: FileCompiler, path: JsonPath, item: dict[str, Any], defaults: Grouping | None
) -> Grouping | None:
    """The grouping `item` sets over `defaults` (its file's top level); None: no grouping.

    At the top level (`path` empty) `repeat_interval` is the rule set's own,
    so only the route keys read it.
    """
    keys = TOP_LEVEL_KEYS if not path else ROUTE_KEYS
    if not any(key in item for key in keys):
        return defaults
    grouping = defaults if defaults is not None else Grouping()
    if "group_by" in item:
        grouping = replace(grouping, by=_group_by(c, (*path, "group_by"), item["group_by"]))
    if "group_wait" in item:
        wait = c.duration((*path, "group_wait"), item["group_wait"], HOLD)
        grouping = replace(grouping, wait=grouping.wait if wait is None else wait)
    if "group_interval" in item:
        every = c.duration((*path, "group_interval"), item["group_interval"], POSITIVE_DURATION)
        grouping = replace(grouping, interval=grouping.interval if every is None else every)
    if "repeat_interval" in keys and "repeat_interval" in item:
        repeat = c.duration((*path, "repeat_interval"), item["repeat_interval"], REPEAT_INTERVAL)
        grouping = replace(grouping, repeat=repeat)
    return grouping


def _group_by(c: FileCompiler, path: JsonPath, value: object) -> tuple[str, ...]:
    """Label names (unknown ones allowed, as in Alertmanager), or `...` alone for all."""
    if not isinstance(value, list):
        return ()  # the schema reported the type
    names = tuple(v for v in value if isinstance(v, str))
    if GROUP_BY_ALL in names and len(names) > 1:
        c.error(path, f"{c.what(path)}: '...' groups by every label, so it must stand alone")
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            c.error((*path, i), f"{c.what((*path, i))}: {name!r} is listed twice")
        seen.add(name)
    return names
