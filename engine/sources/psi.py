"""Linux pressure stall information (PSI) for memory: host-wide or per cgroup v2.

The file has one line per kind, `some` (at least one task stalled on memory)
and `full` (all non-idle tasks stalled), each with running averages in percent:

    some avg10=0.12 avg60=0.05 avg300=0.01 total=123456
    full avg10=0.00 avg60=0.00 avg300=0.00 total=6789
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from memalert.engine.sources.base import read_optional

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True, kw_only=True, slots=True)
class Pressure:
    """The 10-second averages, in percent; `full_avg10` is None where the kernel has no line.

    Kernels before 5.13 wrote no `full` line for the host CPU file, and cgroup v1
    has no pressure files at all; a missing line means unknown, not zero.
    """

    some_avg10: float
    full_avg10: float | None


def parse_pressure(text: str) -> Pressure | None:
    """The averages from a pressure file's text; None if it has no readable `some` line."""
    averages: dict[str, float] = {}
    for line in text.splitlines():
        kind, _, fields = line.partition(" ")
        for field in fields.split():
            key, _, value = field.partition("=")
            if key == "avg10":
                try:
                    averages[kind] = float(value)
                except ValueError:
                    break
    if "some" not in averages:
        return None
    return Pressure(some_avg10=averages["some"], full_avg10=averages.get("full"))


def read_pressure(path: str | Path) -> Pressure | None:
    """PSI from `path`; None where the kernel lacks it (no file, or booted with psi=0)."""
    text = read_optional(path)
    return None if text is None else parse_pressure(text)
