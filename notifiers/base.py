"""The notifier contract: what a delivery returns, what can go wrong, and what is injected.

A notifier sends one grouped `Notification` (one tick's alerts for one named
destination) and reports per URL what happened, so the delivery worker can
retry what failed, and only to the URLs that failed, and `memalert notify-test`
can print every URL's outcome. Nothing here touches the network; the outside
world comes in via `Transport`.
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO
from urllib.parse import parse_qsl, quote, urlsplit

from memalert.engine.core.errors import EXIT_FAILED, Diagnostic, MemalertError
from memalert.engine.core.secrets import MASK, mask, secret_spans

if TYPE_CHECKING:
    from memalert.engine.alerting.routing import Notification
    from memalert.engine.core.model import Position

# Values shorter than this are not masked on their own: replacing every "a" or
# "80" in a message would destroy it while hiding nothing worth hiding.
_MIN_SECRET_LENGTH = 3


class NotifierError(MemalertError, ValueError):
    """A notifier that cannot be built: unknown scheme, bad URL, missing `${VAR}`.

    A configuration error, not a delivery failure: retrying cannot fix it, so it
    is raised at build time (start-up, reload, `notify-test`) rather than
    returned. `diagnostics` holds every problem, at its notifier's entry when known.
    """

    exit_code = EXIT_FAILED

    @classmethod
    def about(
        cls, notifier: str, message: str, *, position: Position | None = None
    ) -> NotifierError:
        return cls([Diagnostic.at(position, f"notifier {notifier!r}: {message}")])

    @classmethod
    def combine(cls, errors: Sequence[NotifierError]) -> NotifierError:
        return cls([diagnostic for error in errors for diagnostic in error.diagnostics])


@dataclass(frozen=True, kw_only=True, slots=True)
class UrlResult:
    """The outcome for one URL of a notifier; `url` is always masked.

    `index` is the URL's position in the notifier's `Destinations.urls`, how a
    retry names the URLs still owed the message; a single-URL notifier's is 0.
    """

    url: str
    ok: bool
    detail: str = ""
    retryable: bool = False
    index: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryResult:
    """The outcome of one `send`: ok only if every URL sent to accepted the message.

    A partial success (some URLs ok, some not) is not ok; the per-URL results
    say which. `retryable` is true when a later attempt may succeed (server
    error, timeout, connection refused).
    """

    notifier: str
    ok: bool
    urls: tuple[UrlResult, ...]
    retryable: bool
    error: str = ""

    @classmethod
    def from_urls(cls, notifier: str, urls: tuple[UrlResult, ...]) -> DeliveryResult:
        failed = [u for u in urls if not u.ok]
        return cls(
            notifier=notifier,
            ok=not failed,
            urls=urls,
            retryable=any(u.retryable for u in failed),
            error="; ".join(f"{u.url}: {u.detail}" for u in failed),
        )

    @property
    def partial(self) -> bool:
        return not self.ok and any(u.ok for u in self.urls)


@dataclass(frozen=True, kw_only=True, slots=True)
class Destinations:
    """Where a notifier sends: its URLs, masked, in the order `send` reports them.

    `fingerprint` identifies the URL list as configured, so that a retry can
    tell whether the indexes it remembers still name the same URLs: it changes
    when a URL is added, removed, reordered or edited (a SIGHUP reload may do
    any of these). A digest: keeping it in the state file stores no URL.
    """

    urls: tuple[str, ...]
    fingerprint: str


def fingerprint_urls(urls: Sequence[str]) -> str:
    """The `Destinations.fingerprint` of a URL list (as written in the rule file, when
    built from one: `${VAR}` unexpanded, so the digest covers no secret value)."""
    listed = json.dumps(list(urls), ensure_ascii=False).encode()
    return hashlib.sha256(listed).hexdigest()[:16]


def selected(only: frozenset[int] | None, index: int) -> bool:
    """Whether a `send(..., only=...)` goes to the URL at `index`; None selects every URL."""
    return only is None or index in only


class SingleUrlNotifier(abc.ABC):
    """A notifier with one URL (console, file, recording): `send` delivers unless
    `only` leaves that URL out, in which case there is nothing to do."""

    def __init__(self, name: str, *, url: str, fingerprint: str) -> None:
        """`url`: masked, as results show it; `fingerprint`: of its configured URL list."""
        self._name = name
        self._destinations = Destinations(urls=(url,), fingerprint=fingerprint)

    @property
    def name(self) -> str:
        return self._name

    @property
    def url(self) -> str:
        return self._destinations.urls[0]

    @property
    def destinations(self) -> Destinations:
        return self._destinations

    def send(
        self, notification: Notification, *, only: frozenset[int] | None = None
    ) -> DeliveryResult:
        if not selected(only, 0):
            return DeliveryResult.from_urls(self._name, ())
        return self._deliver(notification)

    @abc.abstractmethod
    def _deliver(self, notification: Notification) -> DeliveryResult:
        """Send to the one URL; never raise for a delivery failure."""


class Notifier(Protocol):
    """Sends one grouped notification; never raises for a delivery failure.

    `only` names the URLs to send to by their index in `destinations.urls`
    (None: all of them); the result then holds those URLs' outcomes only. A
    retry uses it to skip the URLs that already accepted the message.
    """

    @property
    def name(self) -> str: ...

    @property
    def destinations(self) -> Destinations: ...

    def send(
        self, notification: Notification, *, only: frozenset[int] | None = None
    ) -> DeliveryResult: ...


# (url, asset) -> an apprise plugin instance or None when no service matches.
PluginFactory = Callable[[str, Any], Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class Transport:
    """The outside world notifiers touch, injected so tests can point it elsewhere.

    `stream` is where `console://` writes (None: `sys.stdout` at send time, so a
    replaced stdout is honoured). `instantiate` turns one expanded apprise URL
    into a plugin; None means `memalert.notifiers.apprise_notifier.instantiate_plugin`.
    Timeouts apply to apprise URLs that do not set their own `cto`/`rto`.
    """

    stream: TextIO | None = None
    instantiate: PluginFactory | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    service_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class Redactor:
    """Masks the values `${VAR}` expanded to, then whatever `core.secrets.mask` finds.

    Every value taken from the environment counts as a secret: the rule file
    author chose to keep it out of the file, and a result text can quote a URL
    (or a server's reply) that embeds it, raw or percent-encoded.
    """

    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: Iterable[str]) -> Redactor:
        found: set[str] = set()
        for value in values:
            for piece in (value, *_secret_parts(value)):
                if len(piece) >= _MIN_SECRET_LENGTH:
                    found.update({piece, quote(piece, safe=""), quote(piece)})
        # Longest first, so a secret containing a shorter one is masked whole.
        return cls(tuple(sorted(found, key=len, reverse=True)))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return mask(text)


def _secret_parts(value: str) -> list[str]:
    """The parts of a URL from the environment that also show up alone in logs.

    HTTP client logs print the path and query string only (urllib3's debug
    line), and a service may put a token from the URL's host into its own
    API's path (Telegram's `/bot<token>/`): the path, the password, every query
    value, and every field `core.secrets` finds private (apprise's own list).
    """
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed `[` of an IPv6 host: not a URL to take apart
        return []
    if not (parts.scheme and parts.netloc):
        return []
    found = [parts.path.strip("/"), *(v for _, v in parse_qsl(parts.query))]
    if parts.password:
        found.append(parts.password)
    found.extend(value[s.secret_start : s.secret_end] for s in secret_spans(value))
    return found
