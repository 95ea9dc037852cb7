"""The report of one `memalert exec` run: summary.json and a self-contained report.html.

The chart is drawn by plotly (the `report` extra): its JavaScript is written into the
file, so the report opens offline, from a CI artifact, with nothing else beside it.
It shows the tree's RSS (and USS) over the run, the budget and its warning level,
the floors the leak verdict judged with their fitted trend, and a marker where each
alert fired (docs/ci.md).
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from memalert.engine.core.errors import MemalertError
from memalert.engine.core.units import format_bytes, format_duration

if TYPE_CHECKING:
    from pathlib import Path

    from memalert.engine.live.exec_run import ExecResult

MIB = 2**20


class ReportExtraMissingError(MemalertError):
    """report.html needs plotly: `pip install 'memalert[report]'`."""


def summary(result: ExecResult, *, budget: float | None) -> dict[str, Any]:
    """What summary.json holds: the figures a CI job reads to decide or to trend."""
    verdict = result.verdict
    first = result.samples[0].rss if result.samples else 0.0
    final = result.samples[-1].rss if result.samples else 0.0
    # Growth is measured to the peak, not to the last sample: a program that is exiting
    # frees its memory (Python tears down its globals), so the last sample can sit below
    # the first even for a program that leaked all along.
    return {
        "command": list(result.command),
        "target": result.target,
        "exit_code": result.returncode,
        "signal": result.signalled,
        "started": _iso(result.started),
        "duration_seconds": round(result.ended - result.started, 3),
        "samples": len(result.samples),
        "budget_bytes": budget,
        "peak_rss_bytes": result.peak_rss,
        "final_rss_bytes": final,
        "growth_bytes": result.peak_rss - first,
        "verdict": {
            "leaking": verdict.leaking,
            "leak_bytes": verdict.leak_bytes,
            "growth_bytes_per_hour": verdict.growth_bytes_per_hour,
            "confidence": round(verdict.confidence, 3),
            "reason": verdict.reason,
        },
        "growing_sites": [
            {
                "file": s.file,
                "line": s.line,
                "size_diff_bytes": s.size_diff,
                "count_diff": s.count_diff,
                "processes": s.pids,
            }
            for s in result.sites
        ],
        "alerts": [
            {
                "at": _iso(event.at),
                "event": event.event,
                "rule": event.rule,
                "severity": event.severity.label,
                "value": event.value,
                "summary": event.summary,
            }
            for event in result.events
            if event.event in ("firing", "escalated")
        ],
    }


def write_report(result: ExecResult, directory: Path, *, budget: float | None) -> None:
    facts = summary(result, budget=budget)
    (directory / "summary.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    (directory / "report.html").write_text(report_html(result, facts, budget), encoding="utf-8")


def ensure_report_extra() -> None:
    """Refuse before the command runs, not after, when plotly is missing."""
    try:
        import plotly.graph_objects  # noqa: F401, PLC0415 - an optional extra
    except ImportError as exc:
        raise ReportExtraMissingError(
            "report.html needs plotly; install it with: pip install 'memalert[report]'"
        ) from exc


def report_html(result: ExecResult, facts: dict[str, Any], budget: float | None) -> str:
    ensure_report_extra()
    import plotly.graph_objects as go  # noqa: PLC0415 - 5 MB of JavaScript, only for reports

    start = result.started
    seconds = [s.ts - start for s in result.samples]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(x=seconds, y=[s.rss / MIB for s in result.samples], name="RSS", mode="lines")
    )
    uss = [(t, s.uss / MIB) for t, s in zip(seconds, result.samples, strict=True) if s.uss]
    if uss:
        figure.add_trace(
            go.Scatter(x=[t for t, _ in uss], y=[v for _, v in uss], name="USS", mode="lines")
        )
    floors, trend = result.verdict.floors, result.verdict.trend
    if floors and trend is not None:
        times = [t - start for t, _ in floors]
        values = [v / MIB for _, v in floors]
        slope, intercept = trend
        ends = (floors[0][0], floors[-1][0])
        figure.add_trace(
            go.Scatter(
                x=times,
                y=values,
                name="floor (judged)",
                mode="markers",
                marker={"size": 9, "symbol": "diamond"},
            )
        )
        figure.add_trace(
            go.Scatter(
                x=[ts - start for ts in ends],
                y=[(intercept + slope * ts) / MIB for ts in ends],
                name="fitted trend",
                mode="lines",
                line={"dash": "dot"},
            )
        )
    if budget is not None:
        figure.add_hline(y=budget / MIB, line={"color": "#c0392b"}, annotation_text="budget")
        figure.add_hline(
            y=0.8 * budget / MIB,
            line={"color": "#e67e22", "dash": "dash"},
            annotation_text="warning (80%)",
        )
    fired = [e for e in result.events if e.event in ("firing", "escalated")]
    for k, event in enumerate(fired):
        # Alternate sides so that labels of alerts close in time do not overlap.
        figure.add_vline(
            x=event.at - start,
            line={"color": "#8e44ad", "dash": "dot"},
            annotation_text=f"{event.severity.label} {event.rule}",
            annotation_position="top left" if k % 2 else "top right",
        )
    figure.update_layout(
        template="plotly_white",
        height=480,
        margin={"l": 60, "r": 30, "t": 30, "b": 50},
        xaxis_title="seconds since start",
        yaxis_title="MiB",
        legend={"orientation": "h", "y": -0.18},
    )
    chart = figure.to_html(
        full_html=False,
        include_plotlyjs=True,
        div_id="memory-chart",
        config={"displaylogo": False, "responsive": True},
    )
    return _page(facts, chart)


def _page(facts: dict[str, Any], chart: str) -> str:
    verdict = facts["verdict"]
    failed = facts["exit_code"] != 0 or bool(facts["alerts"])
    status = "leak" if verdict["leaking"] else ("alert" if facts["alerts"] else "ok")
    rows = (
        "".join(
            f"<tr><td>{html.escape(a['at'])}</td><td>{html.escape(a['severity'])}</td>"
            f"<td>{html.escape(a['rule'])}</td><td>{html.escape(a['summary'])}</td></tr>"
            for a in facts["alerts"]
        )
        or "<tr><td colspan=4>no alert fired</td></tr>"
    )
    figures = [
        ("exit code", str(facts["exit_code"])),
        ("duration", format_duration(facts["duration_seconds"])),
        ("peak RSS", format_bytes(facts["peak_rss_bytes"])),
        ("final RSS", format_bytes(facts["final_rss_bytes"])),
        ("budget", "-" if facts["budget_bytes"] is None else format_bytes(facts["budget_bytes"])),
        ("leak", "yes" if verdict["leaking"] else "no"),
    ]
    cards = "".join(
        f"<div class=card><div class=k>{html.escape(k)}</div>"
        f"<div class=v>{html.escape(v)}</div></div>"
        for k, v in figures
    )
    command = html.escape(" ".join(facts["command"]))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>memalert exec: {command}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 24px 32px; color: #1d2733; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} code {{ background: #f2f4f7; padding: 1px 5px; }}
.status {{ display: inline-block; padding: 2px 10px; border-radius: 10px; color: white;
  background: {"#c0392b" if failed else "#27ae60"}; font-weight: 600; }}
.cards {{ display: flex; gap: 12px; margin: 16px 0; flex-wrap: wrap; }}
.card {{ border: 1px solid #dde3ea; border-radius: 8px; padding: 8px 14px; min-width: 110px; }}
.k {{ color: #6b7785; font-size: 12px; }} .v {{ font-size: 18px; font-weight: 600; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #eef1f4; padding: 6px 8px; text-align: left; }}
</style></head><body>
<h1>memalert exec <span class="status">{status}</span></h1>
<div><code>{command}</code> &middot; started {html.escape(facts["started"])}</div>
<div class="cards">{cards}</div>
<p><b>Leak verdict:</b> {html.escape(verdict["reason"])}
(confidence {verdict["confidence"]:.2f})</p>
{chart}
<h2>Alerts</h2>
<table><tr><th>at</th><th>severity</th><th>rule</th><th>summary</th></tr>{rows}</table>
{_sites_table(facts["growing_sites"])}
</body></html>
"""


def _sites_table(sites: list[dict[str, Any]]) -> str:
    if not sites:
        return ""
    rows = "".join(
        f"<tr><td><code>{html.escape(s['file'])}:{s['line']}</code></td>"
        f"<td>{html.escape(format_bytes(s['size_diff_bytes']))}</td>"
        f"<td>{s['count_diff']:+d}</td><td>{s['processes']}</td></tr>"
        for s in sites
    )
    return (
        "<h2>Top growing Python allocation sites</h2><table><tr><th>site</th>"
        f"<th>grew by</th><th>blocks</th><th>processes</th></tr>{rows}</table>"
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
