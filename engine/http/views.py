"""The JSON bodies of the read-only endpoints: pure functions of one `EngineSnapshot`.

Every string that comes from configuration or from the watched systems (label
values, summaries, rule names, errors) passes through `memalert.engine.core.secrets.mask`,
so a webhook URL that leaked into a label never leaves the process. Numbers
that JSON cannot carry (NaN, infinities) become null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from memalert.engine.alerting.views import silence_view
from memalert.engine.allocations.leaks import BYTES_PER_MB, LeakAnalysis
from memalert.engine.core.model import Labels, Sample
from memalert.engine.core.secrets import mask
from memalert.engine.live.snapshot import EngineSnapshot, TargetLeak

# /health turns unhealthy when no tick ran for this many intervals.
UNHEALTHY_AFTER_INTERVALS = 3
# The seed's name for virtual memory, which /snapshot keeps (docs/http.md, Snapshot).
_SNAPSHOT_NAMES = {"vms_bytes": "virtual_bytes"}
_ALWAYS_SHOWN = ("rss_bytes", "virtual_bytes", "pressure", "limit_bytes")

Json = dict[str, Any]


def number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def masked_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {mask(k): mask(v) for k, v in labels.items()}


# -- /health ----------------------------------------------------------------------


def health_view(snapshot: EngineSnapshot, now: float) -> tuple[int, Json]:
    """(HTTP status, body): 503 when no tick ran for `UNHEALTHY_AFTER_INTERVALS` intervals."""
    # Before the first tick, the engine has been "silent" since it started.
    since = snapshot.last_tick_at if snapshot.last_tick_at is not None else snapshot.started_at
    silent = max(0.0, now - since)
    reasons: list[str] = []
    if silent > UNHEALTHY_AFTER_INTERVALS * snapshot.interval:
        if snapshot.last_tick_error is not None:
            # Ticks do run: saying "no tick" would send people looking at the scheduler.
            reasons.append(
                f"ticks fail: none succeeded for {silent:.0f}s; the last failed with "
                f"{mask(snapshot.last_tick_error)}"
            )
        else:
            reasons.append(
                f"no tick for {silent:.0f}s (interval {snapshot.interval:g}s, "
                f"unhealthy after {UNHEALTHY_AFTER_INTERVALS} intervals)"
            )
        status = "unhealthy"
    else:
        if snapshot.last_tick_error is not None:
            reasons.append("the last tick failed")
        if snapshot.dead_letters:
            reasons.append(f"{snapshot.dead_letters} notification(s) could not be delivered")
        status = "degraded" if reasons else "healthy"
    body: Json = {
        "status": status,
        "uptime_seconds": max(0.0, now - snapshot.started_at),
        "last_tick_at": snapshot.last_tick_at,
        "last_tick_error": (
            None if snapshot.last_tick_error is None else mask(snapshot.last_tick_error)
        ),
        "outbox_backlog": snapshot.outbox_backlog,
        "dead_letters": snapshot.dead_letters,
        "ticks_total": snapshot.ticks_total,
        "reasons": reasons,
    }
    return (503 if status == "unhealthy" else 200), body


# -- /snapshot --------------------------------------------------------------------


def _part_of(labels: Labels) -> tuple[str, str]:
    """("", "") for the target itself, ("component", name) or ("site", name)."""
    for kind in ("component", "site"):
        if kind in labels:
            return kind, labels[kind]
    return "", ""


def _metrics_of(samples: list[Sample]) -> Json:
    values: Json = {"timestamp_unix": max(s.ts for s in samples)}
    for sample in samples:
        values[_SNAPSHOT_NAMES.get(sample.metric, sample.metric)] = number(sample.value)
    return values


def _target_entry(target: str, parts: dict[tuple[str, str], list[Sample]]) -> Json:
    entry: Json = {"target": mask(target), "up": None, "timestamp_unix": None}
    entry.update(dict.fromkeys(_ALWAYS_SHOWN))
    own = parts.get(("", ""))
    if own:
        entry.update(_metrics_of(own))
    if entry["up"] is not None:
        entry["up"] = entry["up"] == 1
    for kind, plural in (("component", "components"), ("site", "sites")):
        entry[plural] = [
            {kind: mask(name), **_metrics_of(group)}
            for (part, name), group in sorted(parts.items())
            if part == kind
        ]
    return entry


def snapshot_view(snapshot: EngineSnapshot) -> Json:
    """The latest sample of every target, with its components and allocation sites."""
    by_target: dict[str, dict[tuple[str, str], list[Sample]]] = {}
    for sample in snapshot.samples:
        parts = by_target.setdefault(sample.target, {})
        parts.setdefault(_part_of(sample.labels), []).append(sample)
    return {
        "timestamp_unix": snapshot.last_tick_at,
        "targets": [_target_entry(t, by_target[t]) for t in sorted(by_target)],
    }


# -- /leaks -----------------------------------------------------------------------


def _leak_entry(leak: TargetLeak) -> Json:
    return {
        "target": mask(leak.target),
        "component": None if leak.component is None else mask(leak.component),
        "leak_bytes": number(leak.leak_bytes),
        "growth_bytes_per_hour": number(leak.growth_bytes_per_hour),
        "confidence": number(leak.confidence),
        "time_to_limit_seconds": number(leak.time_to_limit_seconds),
        "patterns": [mask(p) for p in leak.patterns],
        "top_sites": [
            {"site": mask(site), "growth_bytes": number(grown)} for site, grown in leak.top_sites
        ],
    }


def _component_details(analysis: LeakAnalysis, component: str) -> Json:
    """What the in-process detector knows beyond the engine's summary of a component."""
    details: Json = {
        "pattern_details": [
            mask(p.detail) for p in analysis.suspicious_patterns if p.component == component
        ]
    }
    for info in analysis.potential_leaks:
        if info.component == component:
            details.update(
                allocation_count=info.allocation_count,
                average_size_bytes=number(info.average_size_bytes),
                first_seen=info.first_seen,
                last_seen=info.last_seen,
            )
    return details


def leaks_view(snapshot: EngineSnapshot) -> Json:
    """Potential leaks per target (the trend detector) and per component (allocation records)."""
    leaks = []
    for leak in snapshot.leaks:
        if not leak.leak_bytes > 0:
            continue
        entry = _leak_entry(leak)
        if leak.component is not None and snapshot.component_leaks is not None:
            entry.update(_component_details(snapshot.component_leaks, leak.component))
        leaks.append(entry)
    growth = sum(leak["growth_bytes_per_hour"] or 0.0 for leak in leaks)
    return {
        "potential_leak_count": len(leaks),
        "growth_rate_mb_per_hour": growth / BYTES_PER_MB,
        "leaks": leaks,
    }


# -- /alerts and /silences --------------------------------------------------------


def alerts_view(snapshot: EngineSnapshot) -> Json:
    alerts = sorted(snapshot.alerts, key=lambda a: (a.rule, a.labels.items_key))
    return {
        "alerts": [
            {
                "rule": mask(alert.rule),
                "labels": masked_labels(alert.labels),
                "state": alert.state,
                "severity": alert.severity.label,
                "active_since": alert.active_since,
                "value": number(alert.value),
                "summary": mask(alert.summary),
                "inhibited": alert.inhibited,
            }
            for alert in alerts
        ]
    }


def silences_view(snapshot: EngineSnapshot, now: float) -> Json:
    ordered = sorted(snapshot.silences, key=lambda s: (s.starts, s.id))
    return {"silences": [silence_view(s, now) for s in ordered]}
