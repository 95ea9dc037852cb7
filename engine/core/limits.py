"""The range of every duration, size and time a user can write (docs/rules.md, "Ranges").

One table, read by `memalert check` (rule files), the command line's options and
the HTTP API, so a value that passes any of them is one the daemon can run with:
an interval the scheduler can plan (`timedelta` ends near 2.7 million years) and
`/health` can judge (a tick takes milliseconds), times `rfc3339` can show (years
1970 to 9999), timeouts `threading` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86400.0
YEAR = 365 * DAY


@dataclass(frozen=True, slots=True)
class Range:
    """Values from `low` to `high`; `low` itself refused when `above_low`. `text` is the doc's."""

    low: float
    high: float
    text: str
    above_low: bool = False

    def problem(self, value: float) -> str | None:
        """Why `value` is out of range, or None."""
        above = self.low < value if self.above_low else self.low <= value
        return None if above and value <= self.high else f"must be {self.text}"  # NaN: refused


# 100 ms: `memalert record` samples this fast for time-compressed recordings; below
# it a tick cannot keep up on a busy host.
INTERVAL = Range(0.1, DAY, "from 100ms to 1d")
REPEAT_INTERVAL = Range(1.0, YEAR, "from 1s to 365d")
HOLD = Range(0.0, YEAR, "from 0s to 365d")  # `for`, `keep_firing_for`
SECONDS_THRESHOLD = Range(0.0, 100 * YEAR, "from 0s to 36500d")  # time_to_limit_seconds
SIZE = Range(0.0, 2.0**63, "from 0 B to 8 EiB")
SIZE_PER_HOUR = Range(-(2.0**63), 2.0**63, "from -8 EiB to 8 EiB per hour")
# 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z: what RFC 3339 and `datetime` can show.
TIME = Range(0.0, 253402300799.0, "from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z")
FLUSH_TIMEOUT = Range(0.0, DAY, "more than 0s and at most 1d", above_low=True)
RECORD_DURATION = Range(0.0, YEAR, "from 0s to 365d")
POSITIVE_DURATION = Range(0.0, YEAR, "more than 0s and at most 365d", above_low=True)
SILENCE_DURATION = Range(0.0, 100 * YEAR, "more than 0s and at most 36500d", above_low=True)
