"""Leak-detection quality on labelled traces, beside two classic alert rules.

Every trace in --traces (default: ../shared/leak-traces next to the repo, which a
fresh clone does not have: then the repository's own labelled sample, docs/samples) is
replayed through the real CLI, `memalert dry-run RULEFILE --observations TRACE
--format json`, with one rule: `leak_bytes` above 10 MB, warning, `for: 0`.
The trend detector runs inside dry-run on the raw `rss_bytes` samples, exactly
as it does live.

Scoring against labels.json (issue 3, item 6): a leak trace is detected when
its first firing is at or after the labelled onset (`start`); any firing on a
non-leak trace, or before the onset of a leak trace, is a false positive (and
such a leak trace does not count as detected). Printed: a table per trace,
then precision, recall, F1, false-positive rate (share of non-leak traces that
fired) and median time to detect, for the detector and, computed in the same
run over the same samples, two baselines:

- static: `rss_bytes > 500 MB` (for: 0). A hand-set threshold at roughly 1.5x
  what these services normally use (their baselines span 100-900 MB), the
  kind of value people pick once and forget. --static-bytes changes it.
- deriv: the Prometheus rule `deriv(rss_bytes[30m]) > 10 MB/h` held `for: 30m`:
  least-squares slope of the samples in the trailing 30 minutes, evaluated at
  every sample. 10 MB/h is the smallest growth the detector rule would report
  within an hour. --deriv-bytes-per-hour changes it.

Targets: F1 >= 0.95, no false positive on the non-leak traces, median time to
detect under 2 hours.

    python bench/leak_quality.py [--traces DIR] [--jobs N] \
        [--memalert "python -m memalert.engine.cli"]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memalert.engine.replay.observations import parse_timestamp, read_observations

REPO = Path(__file__).resolve().parents[1]

RULE_FILE = """\
version: 1
rules:
  - name: leak
    metric: leak_bytes
    above: {warning: 10MB}
"""
HOUR = 3600.0
TARGET_F1 = 0.95
TARGET_TTD_HOURS = 2.0
DERIV_WINDOW = 30 * 60.0
DERIV_HOLD = 30 * 60.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Label:
    name: str
    kind: str
    leak: bool
    start: float | None
    target: str | None = None  # the one target scored in a file that holds several


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """When a method first fired on a trace, and what that counts as."""

    first_fire: float | None
    verdict: str  # TP, FN, FP (a firing that should not be), TN
    ttd_hours: float | None = None


def score(label: Label, fires: Sequence[float]) -> Outcome:
    first = min(fires) if fires else None
    if not label.leak:
        return Outcome(first_fire=first, verdict="FP" if fires else "TN")
    assert label.start is not None
    if first is None:
        return Outcome(first_fire=None, verdict="FN")
    if first < label.start:
        return Outcome(first_fire=first, verdict="FP")
    return Outcome(first_fire=first, verdict="TP", ttd_hours=(first - label.start) / HOUR)


def detector_fires(
    memalert: Sequence[str], rule_file: Path, trace: Path, target: str | None
) -> list[float]:
    """Firing times from `memalert dry-run --format json` (one JSON object per line)."""
    command = [*memalert, "dry-run", str(rule_file), "--observations", str(trace)]
    done = subprocess.run(
        [*command, "--format", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"{shlex.join(command)} exited {done.returncode}:\n{done.stderr}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return [
        parse_timestamp(e["at"])
        for e in events
        if e["event"] == "firing" and target in (None, e["labels"]["target"])
    ]


def rss_series(trace: Path, target: str | None) -> list[tuple[float, float]]:
    return [
        (s.ts, s.value)
        for s in read_observations(trace)
        if s.metric == "rss_bytes" and target in (None, s.labels["target"])
    ]


def static_fires(series: Sequence[tuple[float, float]], threshold: float) -> list[float]:
    """Times at which `rss_bytes > threshold` starts to hold (for: 0)."""
    fires, above = [], False
    for ts, value in series:
        if value > threshold and not above:
            fires.append(ts)
        above = value > threshold
    return fires


def deriv_fires(series: Sequence[tuple[float, float]], rate_per_hour: float) -> list[float]:
    """Times at which `deriv(rss[30m]) > rate` has held for 30 minutes."""
    fires: list[float] = []
    window: list[tuple[float, float]] = []
    pending_since: float | None = None
    firing = False
    for ts, value in series:
        window = [(t, v) for t, v in window if t > ts - DERIV_WINDOW]
        window.append((ts, value))
        slope = _least_squares_slope(window)
        if slope is None or slope * HOUR <= rate_per_hour:
            pending_since, firing = None, False
            continue
        pending_since = ts if pending_since is None else pending_since
        if not firing and ts - pending_since >= DERIV_HOLD:
            fires.append(ts)
            firing = True
    return fires


def _least_squares_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus `deriv`: simple linear regression slope; None for fewer than two points."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


@dataclass(frozen=True, kw_only=True, slots=True)
class Summary:
    precision: float
    recall: float
    f1: float
    fpr: float
    median_ttd_hours: float | None
    false_positives_on_non_leaks: int


def summarise(labels: Sequence[Label], outcomes: Sequence[Outcome]) -> Summary:
    pairs = list(zip(labels, outcomes, strict=True))
    tp = sum(1 for _, o in pairs if o.verdict == "TP")
    fp = sum(1 for _, o in pairs if o.verdict == "FP")
    leaks = sum(1 for label in labels if label.leak)
    non_leaks = len(labels) - leaks
    fp_non_leaks = sum(1 for lab, o in pairs if not lab.leak and o.verdict == "FP")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / leaks if leaks else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    ttds = [o.ttd_hours for o in outcomes if o.ttd_hours is not None]
    return Summary(
        precision=precision,
        recall=recall,
        f1=f1,
        fpr=fp_non_leaks / non_leaks if non_leaks else 0.0,
        median_ttd_hours=statistics.median(ttds) if ttds else None,
        false_positives_on_non_leaks=fp_non_leaks,
    )


def load_labels(traces: Path) -> list[Label]:
    raw = json.loads((traces / "labels.json").read_text(encoding="utf-8"))
    return [
        Label(
            name=name,
            kind=info["kind"],
            leak=bool(info["leak"]),
            start=info.get("start"),
            target=info.get("target"),
        )
        for name, info in sorted(raw.items())
    ]


def _cell(label: Label, outcome: Outcome, first_ts: float) -> str:
    if outcome.first_fire is None:
        return outcome.verdict
    at = (outcome.first_fire - first_ts) / HOUR
    return f"{outcome.verdict} {at:5.2f}h"


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=Path, default=REPO.parent / "shared" / "leak-traces")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--memalert",
        default=f"{shlex.quote(sys.executable)} -m memalert.engine.cli",
        help="how to run the CLI (default: this Python, -m memalert.engine.cli, from the repo)",
    )
    parser.add_argument("--static-bytes", type=float, default=500e6)
    parser.add_argument("--deriv-bytes-per-hour", type=float, default=10e6)
    args = parser.parse_args()
    if not (args.traces / "labels.json").is_file():
        print(
            f"no labelled traces at {args.traces} (the shared set is not part of the repository;"
            " --traces DIR names one): scoring the repository's own sample, docs/samples, whose"
            " one leak says little about precision or false positives\n",
            file=sys.stderr,
        )
        args.traces = REPO / "docs" / "samples"
    labels = load_labels(args.traces)
    memalert = shlex.split(args.memalert)

    with tempfile.TemporaryDirectory() as tmp:
        rule_file = Path(tmp) / "leak.yaml"
        rule_file.write_text(RULE_FILE, encoding="utf-8")
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            detector = list(
                pool.map(
                    lambda lab: detector_fires(
                        memalert, rule_file, args.traces / f"{lab.name}.jsonl", lab.target
                    ),
                    labels,
                )
            )
    series = [rss_series(args.traces / f"{lab.name}.jsonl", lab.target) for lab in labels]
    methods: dict[str, list[list[float]]] = {
        "trend detector": detector,
        f"static rss > {args.static_bytes / 1e6:.0f} MB": [
            static_fires(s, args.static_bytes) for s in series
        ],
        f"deriv[30m] > {args.deriv_bytes_per_hour / 1e6:.0f} MB/h for 30m": [
            deriv_fires(s, args.deriv_bytes_per_hour) for s in series
        ],
    }
    outcomes = {
        name: [score(lab, f) for lab, f in zip(labels, fires, strict=True)]
        for name, fires in methods.items()
    }
    print_table(labels, series, outcomes)
    print_summary(labels, outcomes)


def print_table(
    labels: Sequence[Label],
    series: Sequence[Sequence[tuple[float, float]]],
    outcomes: dict[str, list[Outcome]],
) -> None:
    names = list(outcomes)
    print(f"{'trace':10} {'kind':18} {'onset':>6}  " + "  ".join(f"{n[:20]:20}" for n in names))
    for i, label in enumerate(labels):
        first_ts = series[i][0][0] if series[i] else 0.0
        onset = "-" if label.start is None else f"{(label.start - first_ts) / HOUR:.2f}h"
        cells = "  ".join(f"{_cell(label, outcomes[n][i], first_ts):20}" for n in names)
        print(f"{label.name:10} {label.kind:18} {onset:>6}  {cells}")
    print("(cell: verdict and hours from the trace's start to the first firing)\n")


def print_summary(labels: Sequence[Label], outcomes: dict[str, list[Outcome]]) -> None:
    rows: list[tuple[str, Callable[[Summary], str]]] = [
        ("precision", lambda s: f"{s.precision:.3f}"),
        ("recall", lambda s: f"{s.recall:.3f}"),
        ("F1", lambda s: f"{s.f1:.3f}"),
        ("false-positive rate", lambda s: f"{s.fpr:.3f}"),
        ("median time to detect", lambda s: _hours(s.median_ttd_hours)),
    ]
    summaries = {name: summarise(labels, o) for name, o in outcomes.items()}
    leaks = sum(1 for lab in labels if lab.leak)
    print(f"{len(labels)} traces: {leaks} leaks, {len(labels) - leaks} non-leaks")
    print(f"{'':24}" + "".join(f"{name[:30]:>32}" for name in summaries))
    for title, render in rows:
        print(f"{title:24}" + "".join(f"{render(s):>32}" for s in summaries.values()))
    ours = summaries["trend detector"]
    ttd = ours.median_ttd_hours
    print()
    print(f"detector F1 {ours.f1:.3f} (target >= {TARGET_F1}) ratio {ours.f1 / TARGET_F1:.2f}")
    print(
        f"detector false positives on non-leak traces: {ours.false_positives_on_non_leaks}"
        " (target 0)"
    )
    if ttd is not None:
        print(
            f"detector median time to detect {ttd:.2f} h (target < {TARGET_TTD_HOURS} h) "
            f"ratio {TARGET_TTD_HOURS / ttd:.2f}"
            if ttd > 0
            else "detector median TTD 0 h"
        )


if __name__ == "__main__":
    main()
