"""Value types shared by every part: samples, compiled rules, alert events.

All are frozen and keyword-only; sizes are float bytes and durations float
seconds, converted once when a rule file is compiled (see `memalert.engine.rules.load`).
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from memalert.engine.core.timeintervals import TimeWindow


class Labels(Mapping[str, str]):
    """An immutable, hashable label set; its identity is its sorted items.

    Alert instances are keyed by rule name + labels millions of times per hour,
    so the hash and the sorted items are computed once, at construction.
    """

    __slots__ = ("_dict", "_hash", "_items")

    def __init__(self, items: Mapping[str, str] | None = None, /, **kwargs: str) -> None:
        merged = dict(items or {}, **kwargs)
        self._items: tuple[tuple[str, str], ...] = tuple(sorted(merged.items()))
        self._dict: dict[str, str] = dict(self._items)
        self._hash = hash(self._items)

    def __getitem__(self, key: str) -> str:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Labels):
            return self._hash == other._hash and self._items == other._items
        if isinstance(other, Mapping):
            return self._dict == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Labels({self._dict!r})"

    @property
    def items_key(self) -> tuple[tuple[str, str], ...]:
        return self._items

    def merged(self, extra: Mapping[str, str]) -> Labels:
        return Labels({**self._dict, **extra})

    def as_dict(self) -> dict[str, str]:
        return dict(self._dict)


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one metric for one labelled series at one time (unix seconds)."""

    metric: str
    labels: Labels
    value: float
    ts: float

    @property
    def target(self) -> str:
        return self.labels.get("target", "")


class Severity(enum.IntEnum):
    """Ordered so that `max()` picks the worse level."""

    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]


@dataclass(frozen=True, kw_only=True, slots=True)
class Position:
    """Where a node stands in a source file (1-based)."""

    file: str
    line: int = 1
    col: int = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class Matcher:
    """A glob on one label; `*` matches anything, a leading `!` negates."""

    label: str
    pattern: str
    regex: re.Pattern[str] = field(compare=False, repr=False)
    negate: bool = False

    @classmethod
    def compile(cls, label: str, pattern: str) -> Matcher:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        return cls(
            label=label, pattern=pattern, regex=re.compile(fnmatch.translate(glob)), negate=negate
        )

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.label)
        found = value is not None and self.regex.match(value) is not None
        return found != self.negate


def fingerprint(rule: str, labels: Labels) -> str:
    """16 hex digits naming one alert instance (rule + labels), stable across runs."""
    key = "\x00".join([rule, *(f"{k}={v}" for k, v in labels.items_key)])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def matches_all(matchers: tuple[Matcher, ...], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


@dataclass(frozen=True, kw_only=True, slots=True)
class DetectorSettings:
    """A `detector:` section: the sensitivity preset and expert overrides by field name.

    The trend detector turns these into its parameters (docs/leak-detection.md).
    """

    sensitivity: str = "normal"
    overrides: tuple[tuple[str, float], ...] = ()
    position: Position | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetSpec:
    """What the tracker samples: exactly one of the selector fields is set."""

    name: str
    kind: str  # self | pid | pidfile | process | system | cgroup | discover
    pid: int | None = None
    pidfile: str | None = None
    name_pattern: str | None = None
    cmdline_pattern: str | None = None
    cgroup: str | None = None
    children: bool = False
    # `discover: processes | cgroups`: one target per process or cgroup found each
    # tick (docs/targets.md#discovered-targets), at least `min_rss_bytes` resident,
    # the `max_targets` largest, remembered `forget_after_seconds` once gone.
    discover: str | None = None
    min_rss_bytes: float = 0.0
    max_targets: int = 0
    forget_after_seconds: float = 0.0
    detector: DetectorSettings | None = None  # the target's or its file's section
    position: Position | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Rule:
    """A compiled alert rule; `thresholds` and `recover` hold only the levels given."""

    name: str
    metric: str
    direction: str  # "above" | "below"
    thresholds: Mapping[Severity, float]
    recover: Mapping[Severity, float] = field(default_factory=dict)
    where: tuple[Matcher, ...] = ()
    for_seconds: float = 0.0
    # `for: {warning: 10m, critical: 2m}`: a level's own `for`, over `for_seconds`.
    for_levels: Mapping[Severity, float] = field(default_factory=dict)
    keep_firing_for_seconds: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    summary: str | None = None
    notify: tuple[str, ...] | None = None
    position: Position | None = None

    def pending_for(self, level: Severity) -> float:
        """How long `level`'s condition must hold before it fires (its Prometheus `for`)."""
        return self.for_levels.get(level, self.for_seconds)


@dataclass(frozen=True, kw_only=True, slots=True)
class NotifierConfig:
    """A named destination: apprise URLs, or memalert's own `console://` / `file://`."""

    name: str
    urls: tuple[str, ...]
    position: Position | None = None


GROUP_BY_ALL = "..."
"""`group_by: ['...']`: every label is a group label (one group per alert)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Grouping:
    """Alertmanager's grouping over time on a route (docs/rules.md, Routes).

    The defaults are Alertmanager's; `repeat` None is the rule set's `repeat_interval`.
    """

    by: tuple[str, ...] = ()
    wait: float = 30.0
    interval: float = 300.0
    repeat: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Route:
    matchers: tuple[Matcher, ...]
    notify: tuple[str, ...]
    continue_matching: bool = False
    # Names of the rule set's time_intervals: muted in any of the first, or
    # outside all of the second (when given), the route notifies nobody.
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    # None: no grouping over time, each tick's events are sent as they happen.
    grouping: Grouping | None = None
    position: Position | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class InhibitRule:
    """Alertmanager's inhibit rule: a firing source mutes targets with equal `equal` labels."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()
    position: Position | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Silence:
    """Suppresses notifications (never evaluation) for matching alerts in [starts, ends).

    A rule file's silence may also recur: with `time_intervals` it is active
    only inside those named windows (resolved into `windows` when the files
    are merged, so a silence answers `active` on its own).
    """

    matchers: tuple[Matcher, ...]
    starts: float
    ends: float
    comment: str = ""
    author: str = ""
    id: str = ""
    time_intervals: tuple[str, ...] = ()
    windows: tuple[TimeWindow, ...] = ()

    def active(self, now: float) -> bool:
        if not self.starts <= now < self.ends:
            return False
        return not self.time_intervals or any(w.contains(now) for w in self.windows)


DEFAULT_INTERVAL = 15.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0
CONSOLE_NOTIFIER = "console"


@dataclass(frozen=True, kw_only=True, slots=True)
class RuleSet:
    """Everything compiled from one or more rule files."""

    rules: tuple[Rule, ...]
    interval: float = DEFAULT_INTERVAL
    targets: tuple[TargetSpec, ...] = ()
    notifiers: Mapping[str, NotifierConfig] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    repeat_interval: float = DEFAULT_REPEAT_INTERVAL
    silences: tuple[Silence, ...] = ()
    time_intervals: Mapping[str, tuple[TimeWindow, ...]] = field(default_factory=dict)
    inhibit_rules: tuple[InhibitRule, ...] = ()
    # The top level's group_by/group_wait/group_interval: Alertmanager's root
    # route, for alerts no route matches (None: sent as they happen).
    grouping: Grouping | None = None
    # For series of targets no file declares (replays, the default host).
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    files: tuple[str, ...] = ()


# -- events: what evaluation reports, named in the past tense ------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertEvent:
    """A transition of one alert instance (rule name + sample labels)."""

    event: ClassVar[str] = "event"

    at: float
    rule: str
    metric: str
    severity: Severity
    labels: Labels
    value: float | None
    threshold: float | None = None
    summary: str = ""  # the evaluator's are rendered on first read: see `defer_summary`
    silenced: bool = False
    # The detector's values for the same series (growth, time to limit, ...).
    related: Mapping[str, float] = field(default_factory=dict)
    # The top growing allocation sites as (site, bytes grown), when diagnosed.
    top_sites: tuple[tuple[str, float], ...] = ()
    # A discovered target's `target_info` labels: pid, user, cmdline (for templates).
    info: Mapping[str, str] = field(default_factory=dict)
    active_since: float | None = None
    firing_since: float | None = None
    reason: str = ""


SummaryRenderer = Callable[[AlertEvent], str]
"""Renders an event's summary from the event itself (see `defer_summary`)."""


class _RenderedOnFirstRead:
    """Stands in for the `summary` slot: a deferred summary is rendered when first read.

    A burst tick emits thousands of events whose summaries nobody may read
    (pending, silenced, `memalert test`), and rendering was a third of such a
    tick. Every read (attribute, `==`, repr, `replace`, the outbox) sees the
    text. The evaluator's renderer never raises (`memalert.engine.rules.templates.render`), so
    a broken template still never drops a message. Two threads reading at once
    both render the same text.
    """

    __slots__ = ("_slot",)

    def __init__(self, slot: Any) -> None:
        self._slot = slot

    def __get__(self, event: AlertEvent | None, owner: type | None = None) -> Any:
        if event is None:
            return self
        value = self._slot.__get__(event, owner)
        if not isinstance(value, str):
            value = value(event)
            self._slot.__set__(event, value)
        return value

    def __set__(self, event: AlertEvent, value: str | SummaryRenderer) -> None:
        self._slot.__set__(event, value)


_SUMMARY = _RenderedOnFirstRead(AlertEvent.__dict__["summary"])
# After the class exists: a dataclass with slots replaces class attributes named
# like its fields, and the subclasses below inherit this one.
type.__setattr__(AlertEvent, "summary", _SUMMARY)


def defer_summary(event: AlertEvent, render: SummaryRenderer) -> None:
    """Let `event.summary` be `render(event)`, rendered on its first read."""
    _SUMMARY.__set__(event, render)


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertPending(AlertEvent):
    event: ClassVar[str] = "pending"


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertFired(AlertEvent):
    event: ClassVar[str] = "firing"


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertEscalated(AlertEvent):
    event: ClassVar[str] = "escalated"


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertDeescalated(AlertEvent):
    event: ClassVar[str] = "deescalated"


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertResolved(AlertEvent):
    event: ClassVar[str] = "resolved"


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertRepeated(AlertEvent):
    """Still firing after `repeat_interval`: re-notified, not a state change."""

    event: ClassVar[str] = "repeated"
