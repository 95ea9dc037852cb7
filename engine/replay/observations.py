"""Observations: the JSON Lines files `record` writes and `dry-run` replays (docs/observations.md).

    {"ts": 1764000000.0, "target": "api", "metrics": {"rss_bytes": 1.2e8}}
    {"ts": "2026-11-24T09:00:15Z", "target": "api", "component": "cache",
     "metrics": {"component_bytes": 5.2e7}}

The format (docs/observations.md) is written and read here only. Reading,
every bad line is reported with its line number (up to `MAX_REPORTED`), and
nothing is half-read: a file with any bad line is refused as a whole.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from memalert.engine.core.errors import Diagnostic, InputError
from memalert.engine.core.model import Labels, Sample
from memalert.engine.core.suggest import closest
from memalert.engine.core.units import EARLIEST_TIME, LATEST_TIME, rfc3339

if TYPE_CHECKING:
    from collections.abc import Iterable

MAX_REPORTED = 20
# Labels with a key of their own; any others go under "labels".
_OWN_KEYS = ("target", "component", "site")
_KEYS = ("ts", *_OWN_KEYS, "labels", "metrics")


# -- writing ---------------------------------------------------------------------------


def _number(value: float) -> float | int:
    # 125829120 rather than 125829120.0: the files are for people too.
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def observation_records(samples: Iterable[Sample]) -> list[dict[str, Any]]:
    """Samples as observation records: one per label set, in first-seen order."""
    grouped: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for sample in samples:
        if not math.isfinite(sample.value):
            continue  # the format (and JSON) has no NaN: a missing value is a missing key
        key = sample.labels.items_key
        record = grouped.get(key)
        if record is None:
            record = {"ts": sample.ts}
            record.update({k: sample.labels[k] for k in _OWN_KEYS if k in sample.labels})
            extra = {k: v for k, v in sample.labels.items() if k not in _OWN_KEYS}
            if extra:
                record["labels"] = extra
            record["metrics"] = {}
            grouped[key] = record
        record["metrics"][sample.metric] = _number(sample.value)
    return list(grouped.values())


def write_observations(out: IO[str], samples: Iterable[Sample]) -> int:
    """Append `samples` to `out` as JSON Lines; returns the number of lines written."""
    records = observation_records(samples)
    for record in records:
        out.write(json.dumps(record, separators=(", ", ": ")) + "\n")
    return len(records)


# -- reading ---------------------------------------------------------------------------


def parse_timestamp(value: object) -> float:
    """Unix seconds (number) or RFC 3339 text (`Z` or an offset required) -> unix seconds."""
    if isinstance(value, bool):
        raise ValueError(f"'ts' must be unix seconds or RFC 3339 text, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"'ts' must be finite, got {value!r}")
        return _in_range(float(value), value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"'ts' {value!r} is not RFC 3339 (e.g. 2026-11-24T09:00:15Z)"
            ) from None
        if parsed.tzinfo is None:
            raise ValueError(f"'ts' {value!r} has no time zone; add Z or an offset such as +01:00")
        return _in_range(parsed.timestamp(), value)
    raise ValueError(f"'ts' must be unix seconds or RFC 3339 text, got {type(value).__name__}")


def _in_range(ts: float, given: object) -> float:
    # Every time is shown as RFC 3339 text at last, which has years 1 to 9999 only.
    if not EARLIEST_TIME <= ts <= LATEST_TIME:
        raise ValueError(
            f"'ts' {given!r} is outside the times memalert can show "
            f"({rfc3339(EARLIEST_TIME)} to {rfc3339(LATEST_TIME)})"
        )
    return ts


def _valid_text(record: dict[str, Any]) -> None:
    """JSON's `\\udcff` escapes give lone surrogates: no text to label or print them with."""
    texts: list[tuple[str, object]] = [("a key", key) for key in record]
    texts += [(f"'{key}'", record.get(key)) for key in _OWN_KEYS]
    for key in ("labels", "metrics"):
        if isinstance(record.get(key), dict):
            texts += [(f"a key of '{key}'", name) for name in record[key]]
    if isinstance(record.get("labels"), dict):
        texts += [(f"label '{name}'", value) for name, value in record["labels"].items()]
    for what, text in texts:
        lone = [ch for ch in text if "\ud800" <= ch <= "\udfff"] if isinstance(text, str) else []
        if lone:
            raise ValueError(
                f"{what} holds the escape {ascii(lone[0])[1:-1]}, half of a UTF-16 surrogate "
                "pair, which is no character: write the character itself"
            )


def _parse_record(record: object) -> list[Sample]:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    _valid_text(record)
    unknown = [k for k in record if k not in _KEYS]
    if unknown:
        hint = closest(unknown[0], _KEYS)
        suggestion = f"; did you mean '{hint}'?" if hint else f" (known: {', '.join(_KEYS)})"
        raise ValueError(f"unknown key '{unknown[0]}'{suggestion}")
    if "ts" not in record:
        raise ValueError("missing 'ts'")
    ts = parse_timestamp(record["ts"])
    target = record.get("target")
    if not isinstance(target, str) or not target:
        raise ValueError("'target' must be a non-empty string")
    labels: dict[str, str] = {"target": target}
    extra = record.get("labels", {})
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise ValueError("'labels' must be an object of strings")
    labels.update(extra)
    for key in ("component", "site"):
        if key in record:
            if not isinstance(record[key], str):
                raise ValueError(f"'{key}' must be a string")
            labels[key] = record[key]
    metrics = record.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("'metrics' must be a non-empty object of numbers")
    label_set = Labels(labels)
    samples = []
    for name, value in metrics.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"metric '{name}' must be a finite number, got {value!r}")
        samples.append(Sample(name, label_set, float(value), ts))
    return samples


def read_observations(path: str | Path) -> list[Sample]:
    """Every sample in the file, in time order; raises InputError naming bad lines."""
    file = str(path)
    samples: list[Sample] = []
    problems: list[Diagnostic] = []
    try:
        with Path(path).open("rb") as handle:
            lines = list(enumerate(handle, start=1))
    except OSError as exc:
        message = f"cannot read: {exc.strerror or exc}"
        raise InputError([Diagnostic(file=file, line=1, col=1, message=message)]) from None
    for number, raw in lines:

        def problem(message: str, number: int = number) -> None:
            problems.append(Diagnostic(file=file, line=number, col=1, message=message))

        if b"\0" in raw:
            problem("binary data (a NUL byte): this is not a JSON Lines text file")
            break
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem(f"not UTF-8 text (byte {exc.start} of the line)")
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(
                Diagnostic(
                    file=file, line=number, col=exc.colno, message=f"invalid JSON: {exc.msg}"
                )
            )
            continue
        try:
            samples.extend(_parse_record(record))
        except ValueError as exc:
            problem(str(exc))
        if len(problems) >= MAX_REPORTED:
            break
    if not samples and not problems:
        problems.append(Diagnostic(file=file, line=1, col=1, message="no observations in the file"))
    if problems:
        raise InputError(problems)
    samples.sort(key=lambda s: s.ts)
    return samples
