"""`GET /`: the daemon's dashboard, a page that charts every watched target (docs/http.md).

The page is static; its script reads `/dashboard.json` (one view of the latest
snapshot) every tick and redraws. The chart library is plotly, served by the daemon
itself at `/assets/plotly.min.js` from the installed `report` extra, so the page
needs no internet; without the extra the page still shows its tables.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import TYPE_CHECKING, Any

from memalert.engine.alerting.views import silence_view
from memalert.engine.core.release import VERSION
from memalert.engine.core.secrets import mask

if TYPE_CHECKING:
    from memalert.engine.live.snapshot import EngineSnapshot


@functools.cache
def plotly_js() -> bytes | None:
    """plotly's bundle, read once; None without the `report` extra."""
    try:
        from plotly.offline import get_plotlyjs  # noqa: PLC0415 - optional, 5 MB
    except ImportError:
        return None
    return str(get_plotlyjs()).encode("utf-8")


def dashboard_view(snapshot: EngineSnapshot, now: float) -> dict[str, Any]:
    """What the page draws: per target its memory, floors and leak figures; alerts, silences."""
    leaks = {(leak.target, leak.component): leak for leak in snapshot.leaks}
    latest = {
        (s.target, s.metric): s.value for s in snapshot.samples if "component" not in s.labels
    }
    names = sorted({target for target, _ in latest} | set(snapshot.memory))
    targets: list[dict[str, Any]] = []
    for name in names:
        leak = leaks.get((name, None))
        targets.append(
            {
                "target": name,
                "rss_bytes": latest.get((name, "rss_bytes")),
                "limit_bytes": latest.get((name, "limit_bytes")),
                "up": latest.get((name, "up")),
                "leak_bytes": leak.leak_bytes if leak else 0.0,
                "growth_bytes_per_hour": leak.growth_bytes_per_hour if leak else 0.0,
                "confidence": leak.confidence if leak else 0.0,
                "time_to_limit_seconds": leak.time_to_limit_seconds if leak else None,
                "memory": [list(point) for point in snapshot.memory.get(name, ())],
                "floors": [list(point) for point in snapshot.floors.get(name, ())],
            }
        )
    targets.sort(key=lambda t: (-t["confidence"], -t["growth_bytes_per_hour"], t["target"]))
    return {
        "interval": snapshot.interval,
        "last_tick_at": snapshot.last_tick_at,
        "targets": targets,
        "alerts": [
            {
                "rule": a.rule,
                "severity": a.severity.label,
                "state": a.state,
                "labels": a.labels.as_dict(),
                "summary": mask(a.summary),
            }
            for a in snapshot.alerts
        ],
        "silences": [silence_view(s, now) for s in snapshot.silences],
    }


@functools.cache
def page() -> bytes:
    """The page, from the package (engine/http/dashboard.html), with the version filled in."""
    text = resources.files("memalert.engine.http").joinpath("dashboard.html").read_text("utf-8")
    return text.replace("VERSION", VERSION).encode("utf-8")
