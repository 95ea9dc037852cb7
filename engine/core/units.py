"""Sizes and durations: parsing the strings people write, formatting for people to read.

Rule files accept SI and IEC sizes (`50MB` = 50e6, `50MiB` = 50 * 2**20) and
Prometheus-style durations (`30s`, `5m`, `2h`, `1d`, also compound `1h30m`).
Everything is converted once, at the edge, to int bytes and float seconds.
"""

from __future__ import annotations

import math
import re
import reprlib
from datetime import UTC, datetime, timedelta

_SIZE_FACTORS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")

_DURATION_FACTORS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ms|s|m|h|d|w)")
_DURATION_RE = re.compile(r"^(?:[0-9]*\.?[0-9]+(?:ms|s|m|h|d|w))+$")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_SHOWN = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()
_LAST_SHOWN = (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH).total_seconds()


class UnitError(ValueError):
    """A size or duration string that cannot be read; the message names the value."""


_ASCII_DIGITS = re.compile(r"[0-9]{1,18}")


def parse_decimal(text: str) -> int | None:
    """A non-negative integer written in 1 to 18 ASCII digits, else None.

    `str.isdigit` and `int` also accept other scripts' digits (`"\u0661\u0662"` is 12)
    and superscripts (which `isdigit` accepts and `int` refuses), and `int` takes
    signs, spaces and underscores: a pid or a Content-Length read with them can name
    another process or raise. 18 digits keep the value far inside int64.
    """
    return int(text) if _ASCII_DIGITS.fullmatch(text) else None


def parse_size(value: object) -> float:
    """Return bytes for `50MiB`, `1.5GB`, `1e6` or a plain number.

    The result is a float so that ratios (`0.8`) and fractional sizes pass through
    unchanged; callers that need whole bytes round it.
    """
    if isinstance(value, bool):
        raise UnitError(f"expected a size such as 50MiB, got {value!r}")
    if isinstance(value, int | float):
        return _finite(value, "size")
    if not isinstance(value, str):
        raise UnitError(f"expected a size such as 50MiB, got {value!r}")
    match = _SIZE_RE.match(value)
    if match is None:
        raise UnitError(
            f"cannot read size {value!r}: expected a number with a unit such as 50MB or 50MiB"
        )
    number, unit = match.groups()
    factor = _SIZE_FACTORS.get(unit.lower())
    if factor is None:
        raise UnitError(
            f"unknown size unit {unit!r} in {value!r}: "
            "use B, KB, MB, GB, TB (SI) or KiB, MiB, GiB, TiB (IEC)"
        )
    return _finite(float(number) * factor, "size", value)


def _finite(value: float, what: str, written: object = None) -> float:
    """`value` as a finite float; huge ints overflow float() and long digit strings give inf."""
    shown = reprlib.repr(value if written is None else written)
    try:
        result = float(value)
    except OverflowError:
        raise UnitError(f"{what} {shown} is too large") from None
    if not math.isfinite(result):
        raise UnitError(f"expected a finite {what}, got {shown}")
    return result


def parse_duration(value: object) -> float:
    """Return seconds for `30s`, `5m`, `1h30m`, `1d` or a plain number of seconds."""
    if isinstance(value, bool):
        raise UnitError(f"expected a duration such as 5m, got {value!r}")
    if isinstance(value, int | float):
        seconds = _finite(value, "duration")
        if seconds < 0:
            raise UnitError(f"expected a non-negative duration, got {value!r}")
        return seconds
    if not isinstance(value, str):
        raise UnitError(f"expected a duration such as 5m, got {value!r}")
    text = value.strip()
    if text == "0":
        return 0.0
    if not _DURATION_RE.match(text):
        raise UnitError(f"cannot read duration {value!r}: expected e.g. 30s, 5m, 2h, 1d or 1h30m")
    parts = _DURATION_PART.findall(text)
    return _finite(
        sum(float(num) * _DURATION_FACTORS[unit] for num, unit in parts), "duration", value
    )


_IEC_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(value: float) -> str:
    """`100000000` -> `95.4 MiB`: IEC units, one decimal (none for plain bytes)."""
    sign = "-" if value < 0 else ""
    size = abs(float(value))
    for unit in _IEC_UNITS:
        if size < 1024 or unit == _IEC_UNITS[-1]:
            if unit == "B":
                return f"{sign}{size:.0f} B"
            return f"{sign}{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable: the loop returns on its last unit")


def format_percent(value: float) -> str:
    """`0.834` -> `83.4%` (a ratio in 0..1 shown as a percentage)."""
    return f"{float(value) * 100:.1f}%"


def format_duration(seconds: float) -> str:
    """`5400` -> `1h30m`; `42` -> `42s`; fractions of a second are dropped above 1 s."""
    total = float(seconds)
    if total < 0:
        return "-" + format_duration(-total)
    if total < 1:
        return f"{total * 1000:.0f}ms" if total > 0 else "0s"
    remaining = round(total)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts[:2]) or "0s"


# The instants `datetime`, and so `rfc3339`, can show: years 1 to 9999 (UTC).
EARLIEST_TIME = datetime(1, 1, 1, tzinfo=UTC).timestamp()
LATEST_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def rfc3339(ts: float) -> str:
    """Unix seconds -> `2026-11-24T09:00:15Z` (milliseconds shown only when present).

    Total: a time outside what `datetime` can show (a row stored before times
    had a range, docs/rules.md "Ranges") shows as the nearest one it can.
    """
    if not _FIRST_SHOWN <= ts <= _LAST_SHOWN:  # also NaN
        ts = _FIRST_SHOWN if ts < _FIRST_SHOWN else _LAST_SHOWN
    moment = (_EPOCH + timedelta(seconds=ts)).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds" if ts == int(ts) else "milliseconds") + "Z"


def parse_rfc3339(text: str) -> float:
    """`2026-12-01T00:00:00Z` (a zone or an offset required) -> unix seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UnitError(
            f"{text!r} is not an RFC 3339 time with a time zone, such as 2026-12-01T00:00:00Z"
        )
    return moment.timestamp()
