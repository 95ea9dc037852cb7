"""From a rule file's `notifiers:` entry to a working notifier: an explicit scheme table.

`console://[stdout|stderr]` and `file:///path.jsonl[?fsync=yes]` are memalert's
own; every other URL goes to apprise (including memalert's `alertmanager://`).
One notifier may mix them: memalert's own URLs are sent to first, then apprise's,
each in the order written, and the results are reported together; a URL's
index (what `send(..., only=...)` names) is its place in that sending order.
`${VAR}` in a URL is expanded from the injected environment here, once, and the
values it took are masked in every result the notifier returns. The notifier's
`Destinations.fingerprint` is made from the URLs as written, before expansion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from memalert.engine.core.model import CONSOLE_NOTIFIER
from memalert.engine.core.secrets import VariableError, expand, mask, referenced_vars
from memalert.notifiers.base import (
    DeliveryResult,
    Destinations,
    Notifier,
    NotifierError,
    Redactor,
    Transport,
    UrlResult,
    fingerprint_urls,
)
from memalert.notifiers.console import STREAMS, ConsoleNotifier
from memalert.notifiers.file import JsonLinesFileNotifier

if TYPE_CHECKING:
    from memalert.engine.alerting.routing import Notification
    from memalert.engine.core.model import NotifierConfig

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
        config.name,
        stream=transport.stream,
        stream_name=stream_name,
        redact=redact,
        fingerprint=fingerprint_urls(config.urls),
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
    return JsonLinesFileNotifier(
        config.name,
        Path(path),
        fsync=fsync,
        redact=redact,
        fingerprint=fingerprint_urls(config.urls),
    )


_Builder = Callable[["NotifierConfig", str, Transport, Redactor], Notifier]

# memalert's own schemes; anything else is an apprise URL.
SCHEMES: Mapping[str, _Builder] = {"console": _console, "file": _file}


class CompositeNotifier:
    """One named notifier with URLs of several kinds; every URL gets every message.

    Its URLs are its parts' URLs, part after part: a part's URL at index i is
    the composite's URL at i plus the number of URLs in the parts before it.
    """

    def __init__(
        self, name: str, parts: Sequence[Notifier], *, fingerprint: str | None = None
    ) -> None:
        """`fingerprint`: of the configured URL list (the registry passes it); by
        default, of the parts' own fingerprints."""
        self._name = name
        self._parts = tuple(parts)
        self._destinations = Destinations(
            urls=tuple(u for part in self._parts for u in part.destinations.urls),
            fingerprint=fingerprint
            or fingerprint_urls([part.destinations.fingerprint for part in self._parts]),
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def destinations(self) -> Destinations:
        return self._destinations

    def send(
        self, notification: Notification, *, only: frozenset[int] | None = None
    ) -> DeliveryResult:
        urls: list[UrlResult] = []
        offset = 0
        for part in self._parts:
            count = len(part.destinations.urls)
            mine = None
            if only is not None:
                mine = frozenset(i - offset for i in only if offset <= i < offset + count)
            if mine is None or mine:
                result = part.send(notification, only=mine)
                urls.extend(replace(u, index=u.index + offset) for u in result.urls)
            offset += count
        return DeliveryResult.from_urls(self._name, tuple(urls))


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
        # apprise costs ~15 MB to import: only a notifier that names an apprise URL loads it.
        from memalert.notifiers.apprise_notifier import AppriseNotifier  # noqa: PLC0415

        try:
            parts.append(
                AppriseNotifier(
                    config.name,
                    apprise_urls,
                    transport=transport,
                    redact=redact,
                    position=config.position,
                    fingerprint=fingerprint_urls(config.urls),
                )
            )
        except NotifierError as exc:
            errors.append(exc)
    if errors:
        raise NotifierError.combine(errors)
    if len(parts) == 1:
        return parts[0]
    return CompositeNotifier(config.name, parts, fingerprint=fingerprint_urls(config.urls))


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
