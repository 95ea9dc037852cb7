"""Leak-detection quality on labelled traces, per family, beside two classic alert rules.

Every trace of every labelled set is replayed through the real CLI, `memalert dry-run
RULEFILE --observations TRACE --format json`, with one rule (`leak_bytes` above 10 MB,
`for: 0`) and the detector's `sensitivity` set in the rule file's `detector:`
section. The trend detector runs inside dry-run on the raw samples, exactly as live.

The sets, by default: ../shared/leak-traces (26 twelve-hour traces),
../shared/leak-traces-2 (76 traces, 14 families) and bench/real-traces (real programs
recorded with `memalert record`, see bench/record_programs.py). A set that is not
there (a fresh clone without ../shared) is named and skipped; --traces DIR... scores
other directories. Each directory holds *.jsonl traces and a labels.json: per trace
`leak`, `start` (onset, unix seconds) and, optionally, `family`.

Scoring: a leak trace is detected (TP) when its first firing is at or after the
onset; any firing on a non-leak trace, or before the onset of a leak trace, is a
false positive. Families listed in --separate (default: dataset_growth_stops, a data
set that grows linearly for hours and then stops: a leak until it stops) are
reported on their own and left out of the false-positive rate.

Baselines, computed here over the same samples (`rss_bytes`):
- static: `rss > 1.3 x baseline + 50 MB`, baseline = median of the first 30 minutes;
- deriv: `deriv(rss[30m]) > 5 MB/h` held 30 minutes (Prometheus' least-squares slope).
The trade-off table sweeps each baseline's threshold and the detector's sensitivity,
and says for every baseline point whether a detector point dominates it (no higher
false-positive rate and no longer median time to detect).

    python bench/leak_quality.py [--traces DIR ...] [--jobs N] [--sensitivity S ...]

Ratios are printed as in every bench: above 1 meets the target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from memalert.engine.replay.observations import parse_timestamp, read_observations

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_SETS = (SHARED / "leak-traces", SHARED / "leak-traces-2", REPO / "bench" / "real-traces")
SENSITIVITIES = ("low", "normal", "high")
HOUR = 3600.0
DERIV_WINDOW = DERIV_HOLD = 30 * 60.0
STATIC_SWEEP = ((1.1, 20e6), (1.3, 50e6), (1.5, 100e6), (2.0, 200e6))
DERIV_SWEEP = (2e6, 5e6, 10e6, 20e6)

RULE_FILE = """\
version: 1
detector: {{sensitivity: {sensitivity}}}
rules:
  - name: leak
    metric: leak_bytes
    above: {{warning: 10MB}}
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Label:
    name: str
    family: str
    leak: bool
    start: float | None
    target: str | None  # the labelled target of a trace with several; None: the only one


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    verdict: str  # TP, FN, FP (a firing that should not be), TN
    ttd_hours: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Summary:
    traces: int
    precision: float
    recall: float
    f1: float
    fpr: float
    false_positives: int
    median_ttd_hours: float | None


def load_labels(directory: Path) -> list[Label]:
    raw = json.loads((directory / "labels.json").read_text(encoding="utf-8"))
    labels = []
    for name, entry in sorted(raw.items()):
        if not (directory / f"{name}.jsonl").exists():
            continue
        family = str(entry.get("family") or entry.get("kind") or "-")
        start = entry.get("start")
        labels.append(
            Label(
                name=name,
                family=family,
                leak=bool(entry["leak"]),
                start=start and float(start),
                target=entry.get("target"),
            )
        )
    return labels


def score(label: Label, fires: Sequence[float]) -> Outcome:
    first = min(fires) if fires else None
    if not label.leak:
        return Outcome(verdict="FP" if fires else "TN")
    if first is None:
        return Outcome(verdict="FN")
    if label.start is not None and first < label.start:
        return Outcome(verdict="FP")
    return Outcome(verdict="TP", ttd_hours=(first - (label.start or first)) / HOUR)


def summarise(labels: Sequence[Label], outcomes: Sequence[Outcome]) -> Summary:
    count = {v: sum(1 for o in outcomes if o.verdict == v) for v in ("TP", "FN", "FP", "TN")}
    leaks = sum(1 for lab in labels if lab.leak)
    fired_wrongly = sum(
        1 for lab, o in zip(labels, outcomes, strict=True) if not lab.leak and o.verdict == "FP"
    )
    non_leaks = len(labels) - leaks
    precision = count["TP"] / (count["TP"] + count["FP"]) if count["TP"] + count["FP"] else 1.0
    recall = count["TP"] / leaks if leaks else 1.0
    ttds = [o.ttd_hours for o in outcomes if o.ttd_hours is not None]
    return Summary(
        traces=len(labels),
        precision=precision,
        recall=recall,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        fpr=fired_wrongly / non_leaks if non_leaks else 0.0,
        false_positives=count["FP"],
        median_ttd_hours=statistics.median(ttds) if ttds else None,
    )


# -- the methods ---------------------------------------------------------------------


def detector_fires(rule_file: Path, trace: Path, target: str | None) -> list[float]:
    """Firing times from `memalert dry-run --format json` (one JSON object per line)."""
    command = [sys.executable, "-m", "memalert.engine.cli", "dry-run", str(rule_file)]
    done = subprocess.run(
        [*command, "--observations", str(trace), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"dry-run of {trace} exited {done.returncode}:\n{done.stderr}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return [
        parse_timestamp(e["at"])
        for e in events
        if e["event"] == "firing" and target in (None, e["labels"].get("target"))
    ]


def rss_series(trace: Path, target: str | None) -> list[tuple[float, float]]:
    return [
        (s.ts, s.value)
        for s in read_observations(trace)
        if s.metric == "rss_bytes" and target in (None, s.target)
    ]


def static_fires(
    series: Sequence[tuple[float, float]], factor: float, offset: float
) -> list[float]:
    """`rss > factor x baseline + offset`, baseline the median of the first 30 minutes."""
    if not series:
        return []
    first = series[0][0]
    baseline = statistics.median(v for t, v in series if t < first + 1800)
    threshold = factor * baseline + offset
    return [t for t, v in series if v > threshold][:1]


def deriv_fires(series: Sequence[tuple[float, float]], rate_per_hour: float) -> list[float]:
    """`deriv(rss[30m]) > rate` held 30 minutes, evaluated at every sample."""
    fires: list[float] = []
    window: list[tuple[float, float]] = []
    pending_since: float | None = None
    for ts, value in series:
        window = [(t, v) for t, v in window if t > ts - DERIV_WINDOW]
        window.append((ts, value))
        slope = _least_squares_slope(window)
        if slope is None or slope * HOUR <= rate_per_hour:
            pending_since = None
            continue
        pending_since = ts if pending_since is None else pending_since
        if ts - pending_since >= DERIV_HOLD:
            return [ts]
    return fires


def _least_squares_slope(points: Sequence[tuple[float, float]]) -> float | None:
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


# -- one set -------------------------------------------------------------------------


def score_set(
    directory: Path, sensitivities: Sequence[str], jobs: int, separate: frozenset[str]
) -> list[tuple[str, Summary]]:
    labels = load_labels(directory)
    traces = [(directory / f"{lab.name}.jsonl", lab.target) for lab in labels]
    methods: dict[str, list[list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=jobs) as pool:
        for sensitivity in sensitivities:
            rule_file = Path(tmp) / f"leak-{sensitivity}.yaml"
            rule_file.write_text(RULE_FILE.format(sensitivity=sensitivity), encoding="utf-8")
            methods[f"memalert {sensitivity}"] = list(
                pool.map(lambda trace, r=rule_file: detector_fires(r, *trace), traces)
            )
        series = list(pool.map(lambda trace: rss_series(*trace), traces))
    for factor, offset in STATIC_SWEEP:
        name = f"static {factor:g}x+{offset / 1e6:g}MB"
        methods[name] = [static_fires(s, factor, offset) for s in series]
    for rate in DERIV_SWEEP:
        methods[f"deriv>{rate / 1e6:g}MB/h 30m"] = [deriv_fires(s, rate) for s in series]
    outcomes = {
        name: [score(lab, f) for lab, f in zip(labels, fires, strict=True)]
        for name, fires in methods.items()
    }
    main_name = "memalert normal" if "normal" in sensitivities else f"memalert {sensitivities[0]}"
    shown = [main_name, "static 1.3x+50MB", "deriv>5MB/h 30m"]
    print_families(labels, {name: outcomes[name] for name in shown})
    scored = [i for i, lab in enumerate(labels) if lab.family not in separate]
    kept = [labels[i] for i in scored]
    summaries = [(name, summarise(kept, [o[i] for i in scored])) for name, o in outcomes.items()]
    print_summaries(summaries, excluded=sorted({lab.family for lab in labels} & separate))
    print_tradeoff(summaries)
    return summaries


def print_families(labels: Sequence[Label], outcomes: dict[str, list[Outcome]]) -> None:
    families = sorted({lab.family for lab in labels})
    print(f"{'family':26} {'n':>3} {'leak':>5}  " + "".join(f"{n:>26}" for n in outcomes))
    for family in families:
        idx = [i for i, lab in enumerate(labels) if lab.family == family]
        leak = labels[idx[0]].leak
        cells = []
        for found in outcomes.values():
            mine = [found[i] for i in idx]
            if leak:
                ttds = [o.ttd_hours for o in mine if o.ttd_hours is not None]
                ttd = f" {statistics.median(ttds):5.2f}h" if ttds else "      -"
                hits = sum(o.verdict == "TP" for o in mine)
                cells.append(f"found {hits}/{len(mine)}{ttd}")
            else:
                cells.append(f"fired {sum(o.verdict == 'FP' for o in mine)}/{len(mine)}")
        print(f"{family:26} {len(idx):>3} {'yes' if leak else 'no':>5}  ", end="")
        print("".join(f"{c:>26}" for c in cells))
    print("(leak families: found/total and median time to detect; others: fired/total)\n")


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} h"


def print_summaries(summaries: Sequence[tuple[str, Summary]], excluded: Sequence[str]) -> None:
    note = f" (without {', '.join(excluded)})" if excluded else ""
    print(f"{'method' + note:44} {'prec':>6} {'recall':>7} {'F1':>6} {'FPR':>6} {'TTD':>9}")
    for name, s in summaries:
        print(
            f"{name:44} {s.precision:6.3f} {s.recall:7.3f} {s.f1:6.3f} {s.fpr:6.3f} "
            f"{_hours(s.median_ttd_hours):>9}"
        )
    print()


def print_tradeoff(summaries: Sequence[tuple[str, Summary]]) -> None:
    ours = [(n, s) for n, s in summaries if n.startswith("memalert")]
    print("trade-off: is every baseline point dominated (FPR <= and median TTD <=)?")
    for name, base in summaries:
        if name.startswith("memalert"):
            continue
        better = [
            n
            for n, s in ours
            if s.fpr <= base.fpr
            and s.median_ttd_hours is not None
            and (base.median_ttd_hours is None or s.median_ttd_hours <= base.median_ttd_hours)
        ]
        verdict = f"yes, by {', '.join(better)}" if better else "NO"
        print(f"  {name:26} FPR {base.fpr:.3f} TTD {_hours(base.median_ttd_hours):>8}: {verdict}")
    print()


def ratio_line(title: str, figure: float | None, target: float, *, at_most: bool) -> str:
    """`target / figure` for an upper bound, `figure / target` for a lower: above 1 meets."""
    if figure is None:
        return f"{title}: - (target {'<=' if at_most else '>='} {target:g})"
    upper = float("inf") if figure == 0 else target / figure
    ratio = upper if at_most else figure / target
    bound = "<=" if at_most else ">="
    return f"{title}: {figure:.3f} (target {bound} {target:g}) ratio {ratio:.2f}"


def print_targets(directory: Path, summaries: Sequence[tuple[str, Summary]]) -> None:
    normal = dict(summaries).get("memalert normal")
    if normal is None:
        return
    print(f"targets for {directory.name} (default sensitivity):")
    if directory.name == "leak-traces-2":
        print("  " + ratio_line("recall", normal.recall, 0.95, at_most=False))
        print("  " + ratio_line("false-positive rate", normal.fpr, 0.05, at_most=True))
        print("  " + ratio_line("median TTD (h)", normal.median_ttd_hours, 3.0, at_most=True))
    elif directory.name == "leak-traces":
        print("  " + ratio_line("F1", normal.f1, 0.95, at_most=False))
        print(f"  false positives: {normal.false_positives} (target 0)")
        print("  " + ratio_line("median TTD (h)", normal.median_ttd_hours, 2.0, at_most=True))
    else:
        print(f"  false positives: {normal.false_positives} (target 0)")
        print("  " + ratio_line("recall", normal.recall, 1.0, at_most=False))
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=Path, nargs="+", default=list(DEFAULT_SETS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sensitivity", nargs="+", choices=SENSITIVITIES, default=SENSITIVITIES)
    parser.add_argument("--separate", nargs="*", default=["dataset_growth_stops"])
    args = parser.parse_args()
    scored = 0
    for directory in args.traces:
        if not (directory / "labels.json").is_file():
            print(f"{directory}: not found (no labels.json); skipped\n")
            continue
        print(f"== {directory} ==")
        summaries = score_set(
            directory, args.sensitivity, max(1, args.jobs), frozenset(args.separate)
        )
        print_targets(directory, summaries)
        scored += 1
    if not scored:
        print("no labelled set found: nothing scored")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
