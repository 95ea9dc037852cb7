"""`alertmanager://host[:port]/path` (`alertmanagers://` for HTTPS): Alertmanager-style webhooks.

apprise's `json://` wraps every message in its own envelope
(`{"version": "1.0", "title", "message", "type"}`); consumers written for
Alertmanager's webhook expect its v4 body instead. This plugin reuses the
`json://` URL grammar (user:password@, `+Header=value`, `-param=value`,
`method=`, `cto`, `rto`, `verify`) and POSTs the body memalert rendered as is.
It is used only through `instantiate_plugin`; apprise's own registry is not
touched, so `alertmanager://` means nothing to other apprise users in the process.

Extra URL parameters: `max_alerts=N` caps the alerts in one body (the rest are
counted in `truncatedAlerts`), `external_url=URL` fills `externalURL` and
each alert's `generatorURL`.
"""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from apprise import NotifyType
from apprise.plugins.custom_json import NotifyJSON

SCHEMES = ("alertmanager", "alertmanagers")


class AlertmanagerWebhook(NotifyJSON):  # type: ignore[no-untyped-call]  # apprise's hook
    service_name = "Alertmanager webhook"
    protocol = SCHEMES[0]
    secure_protocol = SCHEMES[1]

    def __init__(self, *, max_alerts: int = 0, external_url: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.max_alerts = max_alerts
        self.external_url = external_url

    def send(
        self,
        body: Any,
        title: Any = "",
        notify_type: Any = NotifyType.INFO,
        attach: Any = None,
        **kwargs: Any,
    ) -> bool:
        del title, notify_type, attach, kwargs  # the body is the whole, already rendered, payload
        scheme = "https" if self.secure else "http"
        port = f":{self.port}" if isinstance(self.port, int) else ""
        query = f"?{urllib.parse.urlencode(self.params)}" if self.params else ""
        headers = {"User-Agent": self.app_id, "Content-Type": "application/json", **self.headers}
        if self.user:
            token = base64.b64encode(f"{self.user}:{self.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(  # noqa: S310 - the scheme is fixed to http(s) above
            f"{scheme}://{self.host}{port}{self.fullpath}{query}",
            data=body.encode("utf-8"),
            headers=headers,
            method=str(self.method),
        )
        context = ssl.create_default_context()
        if not self.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self.throttle()  # type: ignore[no-untyped-call]
        # urllib has one timeout for connect and each read; the larger one bounds both.
        timeout = max(self.socket_connect_timeout, self.socket_read_timeout)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            self.logger.warning("Alertmanager webhook answered HTTP %s %s.", exc.code, exc.reason)
            return False
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            self.logger.warning("Alertmanager webhook not reached at %s: %s.", self.host, reason)
            return False
        return True


def parse_url(url: str) -> dict[str, Any] | None:
    """The keyword arguments for `AlertmanagerWebhook`; None if apprise cannot parse `url`."""
    results: dict[str, Any] | None = NotifyJSON.parse_url(url)  # type: ignore[no-untyped-call]
    if not results:
        return None
    query = results["qsd"]
    max_alerts = query.get("max_alerts", "0")
    if not max_alerts.isdigit():
        raise ValueError(f"max_alerts must be a whole number, got {max_alerts!r}")
    results["max_alerts"] = int(max_alerts)
    results["external_url"] = query.get("external_url", "")
    return results
