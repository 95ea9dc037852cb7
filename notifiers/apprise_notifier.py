"""Any apprise URL (Slack, email, JSON webhooks, ...): one apprise call per URL, per send.

apprise 2.x returns an `AppriseResult` (not a bool) from `notify()`; each URL
gets its own call so its status (SUCCESS / FAILURE / TIMEOUT) and the log
lines apprise captured for it become that URL's `UrlResult` exactly, with no
guessing which of several services failed.

Per URL, at build time:
- the plugin is made by `Transport.instantiate` (default `instantiate_plugin`);
  no plugin means no apprise service matches: a `NotifierError`, not a retry;
- apprise's per-instance throttle (`request_rate_per_sec`, 5.5 s for email,
  1.2 s for Slack) is switched off: memalert already sends one grouped message
  per notifier per tick, and a sleeping throttle would hold up the delivery
  worker;
- connect/read timeouts are set unless the URL gives its own `cto`/`rto`.

The body follows what the service prefers: HTML for email (apprise adds the
plain-text alternative part), Markdown for chat services (Slack gets mrkdwn),
plain text otherwise, and the Alertmanager v4 JSON for `alertmanager://`.
Colours follow the worst severity: critical red, warning orange, resolved green.
"""

from __future__ import annotations

import enum
import importlib
import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from apprise import (
    LOGGER_NAME,
    Apprise,
    AppriseAsset,
    AppriseResultStatus,
    NotifyFormat,
    NotifyType,
)
from apprise.exception import AppriseException

from memalert.notifiers.alertmanager import SCHEMES as ALERTMANAGER_SCHEMES
from memalert.notifiers.alertmanager import AlertmanagerWebhook
from memalert.notifiers.alertmanager import parse_url as parse_alertmanager_url
from memalert.notifiers.base import (
    DeliveryResult,
    Destinations,
    NotifierError,
    Redactor,
    Transport,
    UrlResult,
    fingerprint_urls,
    selected,
)
from memalert.notifiers.render import (
    TONE_COLOURS,
    Message,
    alertmanager_body,
    render_html,
    render_markdown,
    render_text,
    tone,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from memalert.engine.alerting.routing import Notification
    from memalert.engine.core.model import Position

# A server's explanation can be long (an HTML error page); results stay readable.
_MAX_DETAIL = 500

_NOTIFY_TYPES = {
    "critical": NotifyType.FAILURE,
    "warning": NotifyType.WARNING,
    "resolved": NotifyType.SUCCESS,
}


class _MaskApprisesLog(logging.Filter):
    """apprise logs the URL it posts to at DEBUG, webhook tokens included; mask them.

    One filter shared by the loggers below; every AppriseNotifier adds the
    values its `${VAR}`s expanded to. It also covers the lines apprise captures
    into its results, as logger filters run before any handler.
    """

    def __init__(self) -> None:
        super().__init__()
        self._redact = Redactor()

    def add(self, redact: Redactor) -> None:
        # Rebuilt, not mutated: a logging thread may be reading the old one.
        self._redact = Redactor(tuple(dict.fromkeys(self._redact.secrets + redact.secrets)))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record; logging itself reports it when emitting
        masked = self._redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_LOG_MASK = _MaskApprisesLog()
# apprise's own, and the HTTP client under it, which logs each request's path.
_MASKED_LOGGERS = (LOGGER_NAME, "urllib3.connectionpool")


class Channel(enum.Enum):
    """How a message is rendered for one URL."""

    TEXT = "text"
    HTML = "html"
    MARKDOWN = "markdown"
    ALERTMANAGER = "alertmanager"


def make_asset(transport: Transport) -> AppriseAsset:
    return AppriseAsset(
        app_id="memalert",
        app_desc="memalert memory alerts",
        # apprise colours by notify type; memalert maps severities onto them.
        html_notify_map={
            NotifyType.FAILURE: TONE_COLOURS["critical"],
            NotifyType.WARNING: TONE_COLOURS["warning"],
            NotifyType.SUCCESS: TONE_COLOURS["resolved"],
            NotifyType.INFO: "#3AA3E3",
        },
        # Nothing to persist between runs; keep apprise off the disk.
        storage_mode="memory",
        service_timeout=transport.service_timeout,
    )


# The plugins memalert documents and tests, loaded by module: apprise's own URL
# lookup imports all of its ~200 plugin modules on first use, +24 MiB RSS
# (measured), a third of the daemon's budget. Other schemes still work, through
# that lookup. Slack's webhook URLs (https://hooks.slack.com/...) are native
# URLs: apprise would scan every plugin to recognise them.
_DIRECT_PLUGINS: Mapping[str, tuple[str, str]] = {
    "slack": ("apprise.plugins.slack", "NotifySlack"),
    "mailto": ("apprise.plugins.email", "NotifyEmail"),
    "mailtos": ("apprise.plugins.email", "NotifyEmail"),
    "json": ("apprise.plugins.custom_json", "NotifyJSON"),
    "jsons": ("apprise.plugins.custom_json", "NotifyJSON"),
}
_SLACK_WEBHOOK = re.compile(r"^https?://hooks\.slack(?:-gov)?\.com/", re.IGNORECASE)


def instantiate_plugin(url: str, asset: AppriseAsset) -> Any:
    """The default `Transport.instantiate`: memalert's `alertmanager://`, else apprise's own.

    Returns None when no service matches; lets a plugin's own complaint about
    its parameters (e.g. an invalid From address) propagate as an exception.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in ALERTMANAGER_SCHEMES:
        return _construct(AlertmanagerWebhook, parse_alertmanager_url(url), asset)
    if scheme in _DIRECT_PLUGINS or _SLACK_WEBHOOK.match(url):
        module, name = _DIRECT_PLUGINS.get(scheme, _DIRECT_PLUGINS["slack"])
        plugin_class = getattr(importlib.import_module(module), name)
        parse = (
            plugin_class.parse_url if scheme in _DIRECT_PLUGINS else plugin_class.parse_native_url
        )
        # As apprise's own lookup does: `/#channel` is a target, not a fragment.
        return _construct(plugin_class, parse(url.replace("/#", "/%23")), asset)
    return Apprise.instantiate(url, asset=asset, suppress_exceptions=False)


def _construct(plugin_class: Any, results: dict[str, Any] | None, asset: AppriseAsset) -> Any:
    """What `Apprise.instantiate` does with parsed URL results, minus the registry lookup."""
    if not results:
        return None
    plugin = plugin_class(**{**results, "tag": set(), "asset": asset})
    return plugin if plugin.enabled else None


@dataclass(frozen=True, kw_only=True, slots=True)
class _Endpoint:
    url: str  # masked, for results and logs
    channel: Channel
    plugin: Any
    apprise: Apprise


class AppriseNotifier:
    """Sends each notification to every URL (or those asked for); reports each URL's outcome."""

    def __init__(
        self,
        name: str,
        urls: Sequence[str],
        *,
        transport: Transport | None = None,
        redact: Redactor | None = None,
        position: Position | None = None,
        fingerprint: str | None = None,
    ) -> None:
        """`fingerprint`: of the URL list as configured (the registry passes it, made
        before `${VAR}` expansion); by default, of `urls` themselves."""
        self._name = name
        self._redact = redact or Redactor()
        _LOG_MASK.add(self._redact)
        for logger in _MASKED_LOGGERS:
            logging.getLogger(logger).addFilter(_LOG_MASK)  # a no-op once added
        self._position = position
        transport = transport or Transport()
        asset = make_asset(transport)
        endpoints: list[_Endpoint] = []
        errors: list[NotifierError] = []
        for url in urls:
            try:
                endpoints.append(self._endpoint(url, asset, transport))
            except NotifierError as exc:
                errors.append(exc)
        if errors:
            raise NotifierError.combine(errors)
        self._endpoints = tuple(endpoints)
        self._destinations = Destinations(
            urls=self.urls, fingerprint=fingerprint or fingerprint_urls(urls)
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def urls(self) -> tuple[str, ...]:
        """The masked URLs, in configuration order."""
        return tuple(e.url for e in self._endpoints)

    @property
    def destinations(self) -> Destinations:
        return self._destinations

    def _endpoint(self, url: str, asset: AppriseAsset, transport: Transport) -> _Endpoint:
        instantiate = transport.instantiate or instantiate_plugin
        shown = self._redact(url)
        try:
            plugin = instantiate(url, asset)
        except (AppriseException, TypeError, ValueError) as exc:
            raise NotifierError.about(
                self._name, f"{shown}: {self._redact(str(exc))}", position=self._position
            ) from None
        if plugin is None:
            scheme = urlsplit(url).scheme or "(none)"
            raise NotifierError.about(
                self._name,
                f"no apprise service matches {shown} (scheme {scheme!r}); "
                "see https://appriseit.com/services/ for the URL formats",
                position=self._position,
            )
        plugin.request_rate_per_sec = 0
        query = parse_qs(urlsplit(url).query)
        if "cto" not in query:
            plugin.socket_connect_timeout = transport.connect_timeout
        if "rto" not in query:
            plugin.socket_read_timeout = transport.read_timeout
        apprise = Apprise(asset=asset)
        apprise.add(plugin)
        # apprise's privacy URL hides passwords and tokens; its query string is
        # only apprise's defaults, noise in a result line.
        masked = self._redact(str(plugin.url(privacy=True)).split("?", 1)[0])
        return _Endpoint(url=masked, channel=_channel(plugin), plugin=plugin, apprise=apprise)

    def send(
        self, notification: Notification, *, only: frozenset[int] | None = None
    ) -> DeliveryResult:
        notify_type = _NOTIFY_TYPES[tone(notification)]
        rendered: dict[Channel, tuple[Message, NotifyFormat]] = {}
        results = []
        for index, endpoint in enumerate(self._endpoints):
            if not selected(only, index):
                continue
            if endpoint.channel not in rendered or endpoint.channel is Channel.ALERTMANAGER:
                rendered[endpoint.channel] = self._render(endpoint, notification)
            message, body_format = rendered[endpoint.channel]
            results.append(self._deliver(endpoint, index, message, body_format, notify_type))
        return DeliveryResult.from_urls(self._name, tuple(results))

    def _render(
        self, endpoint: _Endpoint, notification: Notification
    ) -> tuple[Message, NotifyFormat]:
        if endpoint.channel is Channel.ALERTMANAGER:
            body = alertmanager_body(
                notification,
                receiver=self._name,
                external_url=endpoint.plugin.external_url,
                max_alerts=endpoint.plugin.max_alerts,
            )
            return Message(title="", body=json.dumps(body)), NotifyFormat.TEXT
        if endpoint.channel is Channel.HTML:
            return render_html(notification), NotifyFormat.HTML
        if endpoint.channel is Channel.MARKDOWN:
            return render_markdown(notification), NotifyFormat.MARKDOWN
        return render_text(notification), NotifyFormat.TEXT

    def _deliver(
        self,
        endpoint: _Endpoint,
        index: int,
        message: Message,
        body_format: NotifyFormat,
        notify_type: NotifyType,
    ) -> UrlResult:
        with endpoint.apprise.notify(
            body=message.body,
            title=message.title,
            notify_type=notify_type,
            body_format=body_format,
        ) as result:
            status = result.status
            complaints = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
        if status == AppriseResultStatus.SUCCESS:
            return UrlResult(url=endpoint.url, ok=True, detail="delivered", index=index)
        explanation = " | ".join(complaints) or f"apprise reported {status.name}"
        detail = self._redact(f"{status.name.lower()}: {explanation}")[:_MAX_DETAIL]
        return UrlResult(
            url=endpoint.url,
            ok=False,
            detail=detail,
            index=index,
            # A plugin was built for this URL, so NOMATCH cannot be fixed by retrying;
            # anything else (HTTP error, refused connection, timeout) may pass later.
            retryable=status != AppriseResultStatus.NOMATCH,
        )


def _channel(plugin: Any) -> Channel:
    if isinstance(plugin, AlertmanagerWebhook):
        return Channel.ALERTMANAGER
    formats = plugin.notify_format
    preferred = formats[0] if isinstance(formats, tuple) else formats
    if preferred == NotifyFormat.HTML:
        return Channel.HTML
    if preferred == NotifyFormat.MARKDOWN:
        return Channel.MARKDOWN
    return Channel.TEXT
