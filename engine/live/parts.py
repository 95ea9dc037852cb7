"""Small parts of the live engine: default targets, notifier errors as diagnostics, counting."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING

from memalert.engine.core.errors import Diagnostic
from memalert.engine.core.model import RuleSet, TargetSpec
from memalert.notifiers.base import DeliveryResult, Destinations, Notifier, NotifierError

if TYPE_CHECKING:
    from memalert.engine.alerting.routing import Notification


HOST_TARGET = TargetSpec(name="host", kind="system")
SELF_TARGET_NAME = "self"


def draws_progress(stream: IO[str], env: Mapping[str, str]) -> bool:
    """A redrawn progress line only for a person at a terminal, never in a CI log."""
    return stream.isatty() and env.get("CI", "").lower() not in ("true", "1")


def default_targets() -> tuple[TargetSpec, ...]:
    """A rule file without `targets` watches the host (docs/targets.md)."""
    return (HOST_TARGET,)


# Runs the daemon's clock this many times faster: hours of leak detection in a
# test or a demo (docs/operations.md); never for watching a real host.
TIME_SCALE_VARIABLE = "MEMALERT_TIME_SCALE"
MAX_TIME_SCALE = 10_000.0


def scaled_clock(clock: Callable[[], float], scale: float) -> Callable[[], float]:
    """`clock`, running `scale` times faster from now on."""
    start = clock()
    return lambda: start + (clock() - start) * scale


def time_scale_from(env: Mapping[str, str]) -> float:
    """The scale $MEMALERT_TIME_SCALE asks for (1 when unset); ValueError says what is wrong."""
    text = env.get(TIME_SCALE_VARIABLE, "").strip()
    if not text:
        return 1.0
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not 1.0 <= scale <= MAX_TIME_SCALE:
        raise ValueError(
            f"{TIME_SCALE_VARIABLE} must be a number from 1 to {MAX_TIME_SCALE:g}, got {text!r}"
        )
    return scale


def self_target_name(targets: Sequence[TargetSpec]) -> str:
    """The name this process is watched under: its `self` target's, else "self"."""
    return next((t.name for t in targets if t.kind == "self"), SELF_TARGET_NAME)


def notifier_diagnostics(exc: NotifierError, ruleset: RuleSet) -> list[Diagnostic]:
    """NotifierError's Diagnostics; one of no notifier entry is placed at the first file."""
    where = ruleset.files[0] if ruleset.files else "."
    return [
        d if d.file else Diagnostic(file=where, line=1, col=1, message=d.message)
        for d in exc.diagnostics
    ]


class CountingNotifier:
    """Counts each send's outcome per notifier for the snapshot; sends through `inner`."""

    def __init__(self, inner: Notifier, count: Callable[[str, str], object]) -> None:
        self._inner = inner
        self._count = count

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def destinations(self) -> Destinations:
        return self._inner.destinations

    def send(
        self, notification: Notification, *, only: frozenset[int] | None = None
    ) -> DeliveryResult:
        try:
            result = self._inner.send(notification, only=only)
        except Exception:
            self._count(notification.notifier, "failed")
            raise
        self._count(notification.notifier, "delivered" if result.ok else "failed")
        return result
