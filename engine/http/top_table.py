"""`memalert top`'s table: a pure function of the HTTP API's `/snapshot`, `/leaks` and `/alerts`.

The documents come from a daemon over the network, so nothing in them is
trusted: a field that is missing or of the wrong type shows as `-`, an entry
without a target name is left out, and only a document whose shape is wrong as
a whole (not an object, no `targets` list) is a `TopDataError`. The terminal
and the plain-text output draw the same lines (`render`); only the terminal
uses each line's `emphasis`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from memalert.engine.core.units import format_bytes, format_duration

SORTS = ("confidence", "growth", "rss", "time-to-limit")
# The widest a target name is shown: longer ones (command lines) are shortened in the middle,
# which keeps the executable and the arguments that tell instances apart.
MAX_TARGET_WIDTH = 60
_MIN_TARGET_WIDTH = 16
_ELLIPSIS = "..."
_STATE_RANK = {"firing": 2, "pending": 1}
_SEVERITY_RANK = {"critical": 2, "warning": 1}
_NUMBER_COLUMNS = (("RSS", 10), ("LIMIT", 10), ("GROWTH/H", 12), ("CONF", 5), ("TO LIMIT", 8))
_GAP = "  "


class TopDataError(ValueError):
    """A document that is not what the HTTP API serves (docs/http.md)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertCell:
    """The most urgent alert on a target, and how many others it has."""

    rule: str
    state: str
    severity: str
    inhibited: bool
    others: int

    def text(self) -> str:
        state = self.state.upper() if self.state == "firing" else self.state
        more = f" +{self.others}" if self.others else ""
        muted = " (inhibited)" if self.inhibited else ""
        return f"{state} {self.severity} {self.rule}{muted}{more}"


@dataclass(frozen=True, kw_only=True, slots=True)
class TopRow:
    target: str
    up: bool | None
    rss_bytes: float | None
    limit_bytes: float | None
    growth_bytes_per_hour: float | None
    confidence: float | None
    time_to_limit_seconds: float | None
    alert: AlertCell | None


@dataclass(frozen=True, kw_only=True, slots=True)
class TopTable:
    taken_at: float | None  # the daemon's last tick
    rows: tuple[TopRow, ...]  # sorted
    firing: int
    pending: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Line:
    text: str
    emphasis: str  # "title", "header", "firing" (a row with a firing alert) or ""


def _number(value: Any) -> float | None:
    # bool is an int to Python, not a number to JSON.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _entries(document: Any, key: str, path: str) -> list[dict[str, Any]]:
    """The objects in `document[key]`; TopDataError unless it is a list in an object."""
    if not isinstance(document, dict) or not isinstance(document.get(key), list):
        raise TopDataError(f"GET {path}: expected a JSON object with a {key!r} list")
    return [entry for entry in document[key] if isinstance(entry, dict)]


def _target_leaks(leaks: Any) -> dict[str, dict[str, Any]]:
    """The trend detector's entry per target; components' entries are not targets."""
    return {
        entry["target"]: entry
        for entry in _entries(leaks, "leaks", "/leaks")
        if isinstance(entry.get("target"), str) and entry.get("component") is None
    }


def _alert_cells(alerts: Any) -> tuple[dict[str, AlertCell], int, int]:
    """The most urgent alert per `target` label; the firing and pending counts of all."""
    by_target: dict[str, list[dict[str, Any]]] = {}
    firing = pending = 0
    for alert in _entries(alerts, "alerts", "/alerts"):
        state = alert.get("state")
        firing += state == "firing"
        pending += state == "pending"
        labels = alert.get("labels")
        target = labels.get("target") if isinstance(labels, dict) else None
        if isinstance(target, str):
            by_target.setdefault(target, []).append(alert)
    cells = {}
    for target, found in by_target.items():
        worst = max(
            found,
            key=lambda a: (
                _STATE_RANK.get(a.get("state", ""), 0),
                _SEVERITY_RANK.get(a.get("severity", ""), 0),
            ),
        )
        cells[target] = AlertCell(
            rule=str(worst.get("rule", "?")),
            state=str(worst.get("state", "?")),
            severity=str(worst.get("severity", "?")),
            inhibited=worst.get("inhibited") is True,
            others=len(found) - 1,
        )
    return cells, firing, pending


def _leak_figure(leak: dict[str, Any] | None, key: str, entry: dict[str, Any], own: str) -> Any:
    """/leaks' figure where it names the target, else the snapshot's sample of the metric."""
    if leak is not None and _number(leak.get(key)) is not None:
        return leak[key]
    return entry.get(own)


def _sort_key(sort: str, row: TopRow) -> tuple[float, ...]:
    confidence = row.confidence or 0.0
    growth = row.growth_bytes_per_hour or 0.0
    if sort == "growth":
        return (-growth, -confidence)
    if sort == "rss":
        return (-(row.rss_bytes or 0.0), -confidence)
    if sort == "time-to-limit":
        ttl = row.time_to_limit_seconds
        return (math.inf if ttl is None else ttl, -confidence)
    return (-confidence, -growth)


def build_table(snapshot: Any, leaks: Any, alerts: Any, *, sort: str = "confidence") -> TopTable:
    """One row per target of `/snapshot`, sorted by `sort` (one of `SORTS`), then by name."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    targets = _entries(snapshot, "targets", "/snapshot")
    leak_of = _target_leaks(leaks)
    cells, firing, pending = _alert_cells(alerts)
    rows = []
    for entry in targets:
        name = entry.get("target")
        if not isinstance(name, str):
            continue
        leak = leak_of.get(name)
        up = entry.get("up")
        rows.append(
            TopRow(
                target=name,
                up=up if isinstance(up, bool) else None,
                rss_bytes=_number(entry.get("rss_bytes")),
                limit_bytes=_number(entry.get("limit_bytes")),
                growth_bytes_per_hour=_number(
                    _leak_figure(leak, "growth_bytes_per_hour", entry, "leak_growth_bytes_per_hour")
                ),
                confidence=_number(_leak_figure(leak, "confidence", entry, "leak_confidence")),
                time_to_limit_seconds=_number(
                    _leak_figure(leak, "time_to_limit_seconds", entry, "time_to_limit_seconds")
                ),
                alert=cells.get(name),
            )
        )
    rows.sort(key=lambda row: (*_sort_key(sort, row), row.target))
    return TopTable(
        taken_at=_number(snapshot.get("timestamp_unix")),
        rows=tuple(rows),
        firing=firing,
        pending=pending,
    )


# -- text -------------------------------------------------------------------------


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` characters, its middle replaced by `...` when it is longer."""
    # One line per target: a newline or tab in a name would break the table.
    text = "".join(c if c.isprintable() else "?" for c in text)
    if len(text) <= width:
        return text
    if width <= len(_ELLIPSIS):
        return text[:width]
    kept = width - len(_ELLIPSIS)
    head = (kept + 1) // 2
    return text[:head] + _ELLIPSIS + text[len(text) - (kept - head) :]


def format_rate(bytes_per_hour: float | None) -> str:
    if bytes_per_hour is None:
        return "-"
    sign = "+" if bytes_per_hour > 0 else ""
    return f"{sign}{format_bytes(bytes_per_hour)}/h"


def format_confidence(confidence: float | None) -> str:
    return "-" if confidence is None else f"{round(confidence * 100)}%"


def format_time_to_limit(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return "now" if seconds <= 0 else format_duration(seconds)


def _bytes(value: float | None) -> str:
    return "-" if value is None else format_bytes(value)


def _cells(row: TopRow) -> tuple[str, ...]:
    return (
        "down" if row.up is False else _bytes(row.rss_bytes),
        _bytes(row.limit_bytes),
        format_rate(row.growth_bytes_per_hour),
        format_confidence(row.confidence),
        format_time_to_limit(row.time_to_limit_seconds),
    )


def _title(table: TopTable, source: str, sort: str, now: float, shown: int) -> str:
    down = sum(row.up is False for row in table.rows)
    plural = "" if len(table.rows) == 1 else "s"
    count = f"{len(table.rows)} target{plural}" + (f" ({down} down)" if down else "")
    if shown < len(table.rows):
        count += f", {shown} shown"
    if table.taken_at is None:
        tick = "no tick yet"
    else:
        at = time.strftime("%H:%M:%S", time.gmtime(table.taken_at))
        tick = f"tick {at}Z ({format_duration(max(0, round(now - table.taken_at)))} ago)"
    alerts = f"alerts: {table.firing} firing, {table.pending} pending"
    return f"memalert top  {source}  {count}  {alerts}  sort: {sort}  {tick}"


def render(
    table: TopTable,
    *,
    source: str,
    sort: str,
    now: float,
    width: int | None = None,
    height: int | None = None,
) -> list[Line]:
    """The title, the column header and as many rows as fit in `height` lines, each cut to `width`.

    Without a width the target column is as wide as the longest name (at most
    `MAX_TARGET_WIDTH`); without a height every row is shown.
    """
    rows = table.rows if height is None else table.rows[: max(0, height - 2)]
    longest = max((len(row.target) for row in rows), default=0)
    target_width = max(len("TARGET"), min(longest, MAX_TARGET_WIDTH))
    if width is not None:
        fixed = sum(w + len(_GAP) for _, w in _NUMBER_COLUMNS) + len(_GAP)
        alerts = max((len(row.alert.text()) for row in rows if row.alert), default=len("ALERT"))
        room = width - fixed - min(alerts, 24)
        target_width = min(target_width, max(_MIN_TARGET_WIDTH, room))

    def line(target: str, cells: tuple[str, ...], alert: str) -> str:
        numbers = _GAP.join(f"{c:>{w}}" for c, (_, w) in zip(cells, _NUMBER_COLUMNS, strict=True))
        text = f"{target:<{target_width}}{_GAP}{numbers}{_GAP}{alert}".rstrip()
        return text if width is None else text[:width]

    header = line("TARGET", tuple(name for name, _ in _NUMBER_COLUMNS), "ALERT")
    title = _title(table, source, sort, now, len(rows))
    lines = [
        Line(text=title if width is None else title[:width], emphasis="title"),
        Line(text=header, emphasis="header"),
    ]
    for row in rows:
        alert = row.alert.text() if row.alert else "-"
        emphasis = "firing" if row.alert and row.alert.state == "firing" else ""
        text = line(shorten(row.target, target_width), _cells(row), alert)
        lines.append(Line(text=text, emphasis=emphasis))
    return lines if height is None else lines[:height]
