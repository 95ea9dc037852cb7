"""`memalert export alertmanager`: an Alertmanager configuration from memalert's rule files.

- One webhook receiver per memalert notifier (and the built-in `console`),
  each posting to `memalert relay` at `<relay>/alertmanager/<notifier>`; the
  relay renders and delivers through that notifier (docs/scale-out.md).
- Routes as memalert routes them (memalert.engine.alerting.routing): a rule's own
  `notify` first, then `routes` in order, the first match winning unless it says
  `continue`; what matches nothing goes to `console`. A route to several
  notifiers becomes one Alertmanager route per notifier, all but the last with
  `continue: true`. memalert's `rule` label is Alertmanager's `alertname`.
- `repeat_interval` from the rule files; every alert instance is its own group
  (`group_by: ['...']`), as memalert notifies per instance, except on routes
  with grouping over time (`group_by`, `group_wait`, ...), which keep theirs
  (`rule` is `alertname` there too), and at the root when the top level sets
  grouping; routes without it then say the per-instance settings themselves.
- An inhibit rule: a firing critical mutes the warning of the same instance
  (equal `alertname` and instance labels), as memalert reports one severity;
  then the rule files' `inhibit_rules`, with the routes' matchers.
- `time_intervals` as they are (the rule files use Alertmanager's format) and
  each route's `mute_time_intervals` / `active_time_intervals` on every
  Alertmanager route it becomes.
- Silences (fixed windows, which Alertmanager keeps in its own state, not in
  its configuration) as `amtool silence add` commands (`amtool_silences`).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from memalert.engine.core.model import (
    CONSOLE_NOTIFIER,
    GROUP_BY_ALL,
    Grouping,
    Matcher,
    RuleSet,
    Silence,
)
from memalert.engine.core.timeintervals import WEEKDAYS, Span, TimeWindow
from memalert.engine.core.units import rfc3339
from memalert.engine.export.exposition import label_name
from memalert.engine.export.prometheus_rules import glob_regex, prometheus_duration

WEBHOOK_PATH = "/alertmanager/"
DEFAULT_RELAY_URL = "http://127.0.0.1:9465"
# Labels that name one alert instance besides `alertname`: what the agents
# export (memalert.engine.core.vocabulary) and what Prometheus adds to a scrape.
INSTANCE_LABELS = ("instance", "job", "target", "component", "site")


@dataclass(frozen=True, kw_only=True, slots=True)
class Timing:
    """Alertmanager's grouping times (repeat_interval comes from the rule files)."""

    group_wait: float = 10.0
    group_interval: float = 60.0


def receiver_url(relay_url: str, notifier: str) -> str:
    return relay_url.rstrip("/") + WEBHOOK_PATH + quote(notifier, safe="")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(name: str) -> str:
    """memalert's `rule` label is Alertmanager's `alertname`."""
    return "alertname" if name == "rule" else label_name(name)


def matcher_text(matcher: Matcher) -> str:
    """A memalert glob as an Alertmanager matcher: `target=~"batch-.*"`."""
    label = _label(matcher.label)
    glob = matcher.pattern[1:] if matcher.negate else matcher.pattern
    regex = glob_regex(glob)
    if regex is None:
        return f"{label}{'!=' if matcher.negate else '='}{_quoted(glob)}"
    return f"{label}{'!~' if matcher.negate else '=~'}{_quoted(regex)}"


def _grouping(ruleset: RuleSet, grouping: Grouping | None, timing: Timing) -> dict[str, Any]:
    """Alertmanager's group_by and timers for memalert's grouping (None: per instance)."""
    if grouping is None:
        return {
            "group_by": [GROUP_BY_ALL],
            "group_wait": prometheus_duration(timing.group_wait),
            "group_interval": prometheus_duration(timing.group_interval),
            "repeat_interval": prometheus_duration(ruleset.repeat_interval),
        }
    repeat = ruleset.repeat_interval if grouping.repeat is None else grouping.repeat
    return {
        "group_by": [name if name == GROUP_BY_ALL else _label(name) for name in grouping.by],
        "group_wait": prometheus_duration(grouping.wait),
        "group_interval": prometheus_duration(grouping.interval),
        "repeat_interval": prometheus_duration(repeat),
    }


def _routes(
    matchers: list[str],
    notify: Sequence[str],
    *,
    last_continues: bool,
    extra: Mapping[str, Any] | None = None,
) -> list[Any]:
    """One Alertmanager route per notifier; `extra`: the time windows and grouping keys."""
    routes = []
    for i, notifier in enumerate(notify):
        route: dict[str, Any] = {"receiver": notifier}
        if matchers:
            route["matchers"] = list(matchers)
        route.update(extra or {})
        if i < len(notify) - 1 or last_continues:
            route["continue"] = True
        routes.append(route)
    return routes


def _receiver(name: str, relay_url: str, token_file: str | None) -> dict[str, Any]:
    webhook: dict[str, Any] = {"url": receiver_url(relay_url, name), "send_resolved": True}
    if token_file is not None:
        webhook["http_config"] = {
            "authorization": {"type": "Bearer", "credentials_file": token_file}
        }
    return {"name": name, "webhook_configs": [webhook]}


def alertmanager_config(
    ruleset: RuleSet,
    *,
    relay_url: str = DEFAULT_RELAY_URL,
    token_file: str | None = None,
    timing: Timing = Timing(),
) -> dict[str, Any]:
    routes: list[Any] = []
    # With grouping at the root, a route without grouping says it is per instance.
    per_instance = {} if ruleset.grouping is None else _grouping(ruleset, None, timing)
    for rule in ruleset.rules:
        if rule.notify:
            # A rule's own `notify` wins over every route, and is never grouped.
            own = [f"alertname={_quoted(rule.name)}"]
            routes += _routes(own, rule.notify, last_continues=False, extra=per_instance)
    for route in ruleset.routes:
        matchers = [matcher_text(m) for m in route.matchers]
        extra: dict[str, Any] = {
            key: list(names)
            for key, names in (
                ("mute_time_intervals", route.mute_time_intervals),
                ("active_time_intervals", route.active_time_intervals),
            )
            if names
        }
        if route.grouping is not None:
            extra.update(_grouping(ruleset, route.grouping, timing))
        else:
            extra.update(per_instance)
        routes += _routes(
            matchers, route.notify, last_continues=route.continue_matching, extra=extra
        )
    notifiers = [CONSOLE_NOTIFIER, *(n for n in ruleset.notifiers if n != CONSOLE_NOTIFIER)]
    config: dict[str, Any] = {
        "route": {
            "receiver": CONSOLE_NOTIFIER,
            **_grouping(ruleset, ruleset.grouping, timing),
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["alertname", *INSTANCE_LABELS],
            },
            # The rule files' own inhibit rules, after the one for levels.
            *(
                {
                    "source_matchers": [matcher_text(m) for m in inhibit.source],
                    "target_matchers": [matcher_text(m) for m in inhibit.target],
                    "equal": [_label(name) for name in inhibit.equal],
                }
                for inhibit in ruleset.inhibit_rules
            ),
        ],
        "receivers": [_receiver(name, relay_url, token_file) for name in notifiers],
    }
    if ruleset.time_intervals:
        config["time_intervals"] = [
            {"name": name, "time_intervals": [_window(w) for w in windows]}
            for name, windows in ruleset.time_intervals.items()
        ]
    return config


def _window(window: TimeWindow) -> dict[str, Any]:
    """One window in Alertmanager's format, which is the rule files' format too."""
    out: dict[str, Any] = {}
    if window.times is not None:
        out["times"] = [
            {"start_time": _clock(start), "end_time": _clock(end)} for start, end in window.times
        ]
    names = {"weekdays": WEEKDAYS, "months": None, "days_of_month": None, "years": None}
    for key, spelled in names.items():
        spans: tuple[Span, ...] | None = getattr(window, key)
        if spans is not None:
            out[key] = [_span(span, spelled) for span in spans]
    out["location"] = window.location
    return out


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _span(span: Span, names: tuple[str, ...] | None) -> str:
    first, last = (names[end] if names is not None else str(end) for end in span)
    return first if first == last else f"{first}:{last}"


def amtool_silence(silence: Silence, alertmanager_url: str = "http://127.0.0.1:9093") -> str:
    """The `amtool silence add` command that makes the same silence in Alertmanager."""
    words = [
        "amtool",
        "silence",
        "add",
        f"--alertmanager.url={alertmanager_url}",
        f"--start={rfc3339(silence.starts)}",
        f"--end={rfc3339(silence.ends)}",
        f"--comment={silence.comment or 'from the memalert rule files'}",
    ]
    if silence.author:
        words.append(f"--author={silence.author}")
    words += [matcher_text(m) for m in silence.matchers]
    return shlex.join(words)


def amtool_silences(ruleset: RuleSet, alertmanager_url: str = "http://127.0.0.1:9093") -> list[str]:
    """The commands for the fixed silences; recurring ones are `unexported_silences`."""
    return [amtool_silence(s, alertmanager_url) for s in ruleset.silences if not s.time_intervals]


def unexported_silences(ruleset: RuleSet) -> list[str]:
    """Why each recurring silence is left out: an Alertmanager silence cannot recur."""
    return [
        f"silence {s.id} ({', '.join(matcher_text(m) for m in s.matchers)}) recurs in "
        f"{', '.join(s.time_intervals)}: Alertmanager's silences do not recur; put "
        "mute_time_intervals on the routes its alerts take instead"
        for s in ruleset.silences
        if s.time_intervals
    ]
