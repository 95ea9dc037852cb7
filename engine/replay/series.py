"""promtool's expanding notation for test input series, with size units allowed.

    "0+10MiBx3"   -> 0 10MiB 20MiB 30MiB      (a+bxn: n+1 values)
    "1-2x2"       -> 1 -1 -3
    "5x2"         -> 5 5 5                   (axn: n+1 values)
    "1 _x3 stale" -> 1 _ _ _ stale           (_xn: n missing values)

`None` stands for a missing sample, NaN for a staleness marker.
"""

from __future__ import annotations

import math
import re

from memalert.engine.core.units import UnitError, parse_size

_NUMBER = r"[-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)[A-Za-z]*"
_EXPANDING = re.compile(rf"^(?P<a>{_NUMBER})(?:(?P<op>[-+])(?P<b>{_NUMBER}))?x(?P<n>[0-9]+)$")
_MISSING_RUN = re.compile(r"^_x(?P<n>[0-9]+)$")
MAX_VALUES = 1_000_000


class SeriesError(ValueError):
    """A `values` string that cannot be expanded; the message names the token."""


def _number(token: str, whole: str) -> float:
    sign = -1.0 if token.startswith("-") else 1.0
    try:
        return sign * parse_size(token.lstrip("+-"))
    except UnitError as exc:
        raise SeriesError(f"cannot read {token!r} in {whole!r}: {exc}") from None


def expand_values(text: str, *, limit: int = MAX_VALUES) -> list[float | None]:
    """Expand a promtool `values` string into one value (or None) per step, at most `limit`."""
    values: list[float | None] = []
    for word in text.split():
        if word == "_":
            values.append(None)
        elif word == "stale":
            values.append(math.nan)
        elif match := _MISSING_RUN.match(word):
            if len(values) + int(match["n"]) > limit:
                raise SeriesError(f"{word!r} expands past {limit:,} values")
            values.extend([None] * int(match["n"]))
        elif match := _EXPANDING.match(word):
            start = _number(match["a"], word)
            count = int(match["n"])
            step = 0.0
            if match["b"] is not None:
                step = _number(match["b"], word) * (-1 if match["op"] == "-" else 1)
            if len(values) + count + 1 > limit:
                raise SeriesError(f"{word!r} expands past {limit:,} values")
            values.extend(start + step * i for i in range(count + 1))
        else:
            values.append(_number(word, text))
        if len(values) > limit:
            raise SeriesError(f"series expands past {limit:,} values")
    return values
