"""From a rule file's `notifiers:` entry to a working notifier: an explicit scheme table.

`console://[stdout|stderr]` and `file:///path.jsonl[?fsync=yes]` are memalert's
own; every other URL goes to apprise (including memalert's `alertmanager://`).
One notifier may mix them: memalert's own URLs are sent to first, then apprise's,
each in the order written, and the results are reported together.
`${VAR}` in a URL is expanded from the injected environment here, once, and the
values it took are masked in every result the notifier returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from engine.model import CONSOLE_NOTIFIER
from engine.secrets import VariableError, expand, mask, referenced_vars
from notifiers.apprise_notifier import AppriseNotifier
from notifiers.base import DeliveryResult, Notifier, NotifierError, Redactor, Transport
from notifiers.console import STREAMS, ConsoleNotifier
from notifiers.file import JsonLinesFileNotifier

if TYPE_CHECKING:
    from engine.model import NotifierConfig
    from engine.routing import Notification

_TRUE = frozenset({"1", "yes", "true", "on"})


def _console(config: NotifierConfig, url: str, transport: Transport, redact: Redactor) -> Notifier:
    stream_name = urlsplit(url).netloc or "stdout"
    if stream_name not in STREAMS:
        raise NotifierError.about(
            config.name,
            f"console://{stream_name}: the console writes to one of {', '.join(STREAMS)}",
            position=config.position,
        )
    return ConsoleNotifier(
        config.name, stream=transport.stream, stream_name=stream_name, redact=redact
    )


def _file(config: NotifierConfig, url: str, transport: Transport, redact: Redactor) -> Notifier:
    del transport  # a local file needs nothing from the outside world but its path
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost") or not path.startswith("/"):
        raise NotifierError.about(
            config.name,
            f"{redact(url)}: a file URL needs an absolute path, e.g. file:///var/log/alerts.jsonl",
            position=config.position,
        )
    fsync = parse_qs(parts.query).get("fsync", ["no"])[-1].lower() in _TRUE
    return JsonLinesFileNotifier(config.name, Path(path), fsync=fsync, redact=redact)


_Builder = Callable[["NotifierConfig", str, Transport, Redactor], Notifier]

# memalert's own schemes; anything else is an apprise URL.
SCHEMES: Mapping[str, _Builder] = {"console": _console, "file": _file}


class CompositeNotifier:
    """One named notifier with URLs of several kinds; every URL gets every message."""

    def __init__(self, name: str, parts: Sequence[Notifier]) -> None:
        self._name = name
        self._parts = tuple(parts)

    @property
    def name(self) -> str:
        return self._name

    def send(self, notification: Notification) -> DeliveryResult:
        urls = tuple(u for part in self._parts for u in part.send(notification).urls)
        return DeliveryResult.from_urls(self._name, urls)


def build_notifier(
    config: NotifierConfig, *, env: Mapping[str, str], transport: Transport | None = None
) -> Notifier:
    """Build the notifier for one `notifiers:` entry; raises NotifierError naming every problem."""
    transport = transport or Transport()
    if not config.urls:
        raise NotifierError.about(config.name, "has no urls", position=config.position)
    expanded, used = _expand_all(config, env)
    redact = Redactor.of(used)
    parts: list[Notifier] = []
    apprise_urls: list[str] = []
    errors: list[NotifierError] = []
    for url in expanded:
        builder = SCHEMES.get(urlsplit(url).scheme.lower())
        if builder is None:
            apprise_urls.append(url)
            continue
        try:
            parts.append(builder(config, url, transport, redact))
        except NotifierError as exc:
            errors.append(exc)
    if apprise_urls:
        try:
            parts.append(
                AppriseNotifier(
                    config.name,
                    apprise_urls,
                    transport=transport,
                    redact=redact,
                    position=config.position,
                )
            )
        except NotifierError as exc:
            errors.append(exc)
    if errors:
        raise NotifierError.combine(errors)
    return parts[0] if len(parts) == 1 else CompositeNotifier(config.name, parts)


def build_notifiers(
    configs: Mapping[str, NotifierConfig],
    *,
    env: Mapping[str, str],
    transport: Transport | None = None,
) -> dict[str, Notifier]:
    """Every configured notifier, plus `console` unless configured: routing's fallback."""
    transport = transport or Transport()
    built: dict[str, Notifier] = {}
    errors: list[NotifierError] = []
    for name, config in configs.items():
        try:
            built[name] = build_notifier(config, env=env, transport=transport)
        except NotifierError as exc:
            errors.append(exc)
    if errors:
        raise NotifierError.combine(errors)
    built.setdefault(CONSOLE_NOTIFIER, ConsoleNotifier(CONSOLE_NOTIFIER, stream=transport.stream))
    return built


def _expand_all(config: NotifierConfig, env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Expanded URLs, and the environment values that went into them (to be masked)."""
    expanded: list[str] = []
    errors: list[NotifierError] = []
    for raw in config.urls:
        try:
            expanded.append(expand(raw, env))
        except VariableError as exc:
            problem = f"{mask(raw)}: {exc}"
            errors.append(NotifierError.about(config.name, problem, position=config.position))
    if errors:
        raise NotifierError.combine(errors)
    used = [env[name] for raw in config.urls for name in referenced_vars(raw)]
    return expanded, used
