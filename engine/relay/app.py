"""`memalert relay`'s HTTP endpoints as a plain function: `RelayApp.handle(Request) -> Response`.

- `POST /alertmanager/<notifier>`: an Alertmanager webhook (payload version 4)
  for one memalert notifier (`memalert export alertmanager` writes these URLs).
  It is rendered (memalert.engine.relay.events) and enqueued in the relay's own
  outbox, then answered 200: from then on memalert's delivery worker owns it
  (retries, per-URL progress, dead letters). The same webhook again within the
  de-duplication window (Alertmanager retrying, or its HA peers each sending)
  is answered 200 and not enqueued again.
- `GET /health`, `GET /metrics`: the relay's own figures.

With a token (MEMALERT_RELAY_TOKEN) the webhook needs `Authorization: Bearer
<token>`. Bad payloads get a 4xx JSON error naming the problem; a state file
that cannot take the webhook now gets a 503, so Alertmanager retries: nothing
the relay said 200 to is ever lost, and nothing else is a 500.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from memalert.engine.core.metrics import Kind
from memalert.engine.core.model import Rule
from memalert.engine.delivery.attempt import DeliveryStats
from memalert.engine.export.alertmanager_config import WEBHOOK_PATH
from memalert.engine.export.exposition import Family, export, metrics_text
from memalert.engine.http.app import HttpError, Request, Response, error_response, json_response
from memalert.engine.relay.events import notification
from memalert.engine.relay.payload import WebhookError, parse_webhook
from memalert.engine.store.schema import StateStoreError
from memalert.engine.store.state import StateStore

log = logging.getLogger("memalert.relay")

TOKEN_ENV = "MEMALERT_RELAY_TOKEN"  # noqa: S105 - the variable's name, not a token
DEFAULT_MAX_BODY = 4 * 1024 * 1024
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, kw_only=True, slots=True)
class RelayConfig:
    rules: Mapping[str, Rule]
    notifiers: frozenset[str]
    token: str | None
    # Alertmanager re-sends a notification it is not sure of (a timeout, an HA
    # peer); within this window the same one is delivered once. Keep it below
    # repeat_interval, whose reminders are meant to go out.
    dedup_window: float


class RelayApp:
    def __init__(
        self,
        config: RelayConfig,
        store: StateStore,
        *,
        delivery_stats: Callable[[], DeliveryStats] = DeliveryStats,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._delivery_stats = delivery_stats
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._webhooks: Counter[str] = Counter()
        self._alerts: Counter[str] = Counter()

    def handle(self, request: Request) -> Response:
        """Never raises: every refusal is a 4xx JSON error, a store failure a 503."""
        try:
            path = unquote(urlsplit(request.target).path)
            method = "GET" if request.method == "HEAD" else request.method
            if path in ("/health", "/metrics"):
                if method != "GET":
                    raise HttpError(
                        405,
                        f"{request.method[:16]} is not allowed on {path}",
                        (("Allow", "GET, HEAD"),),
                    )
                return self._health() if path == "/health" else self._metrics()
            if path.startswith(WEBHOOK_PATH):
                if method != "POST":
                    raise HttpError(
                        405, f"{request.method[:16]} is not allowed on {path}", (("Allow", "POST"),)
                    )
                return self._webhook(path.removeprefix(WEBHOOK_PATH), request)
            raise HttpError(404, f"no endpoint {path[:200]!r}; see docs/scale-out.md")
        except HttpError as exc:
            if exc.status != 404 or request.method == "POST":
                self._count("refused")
            return error_response(exc.status, str(exc), exc.headers)
        except StateStoreError as exc:
            log.error("webhook not accepted (Alertmanager will retry): %s", exc)
            self._count("unavailable")
            return error_response(503, "the relay cannot store the webhook now; retry later")

    # -- the webhook ---------------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        token = self._config.token
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credentials.strip().encode(), token.encode()
        ):
            raise HttpError(401, "a bearer token is required", (("WWW-Authenticate", "Bearer"),))

    def _webhook(self, notifier: str, request: Request) -> Response:
        self._authorize(request)
        if notifier not in self._config.notifiers:
            known = ", ".join(sorted(self._config.notifiers))
            raise HttpError(404, f"no notifier {notifier[:64]!r} in the rule files; known: {known}")
        try:
            webhook = parse_webhook(request.body)
        except WebhookError as exc:
            raise HttpError(400, str(exc)) from None
        now = self._clock()
        message = notification(self._config.rules, notifier, webhook, now)
        enqueued = self._store.enqueue_once(
            webhook.dedup_key(notifier), message, now=now, window=self._config.dedup_window
        )
        result = "accepted" if enqueued else "duplicate"
        self._count(result)
        if enqueued:
            with self._lock:
                self._alerts.update(alert.status for alert in webhook.alerts)
        if webhook.truncated_alerts:
            log.warning(
                "Alertmanager left %d alert(s) out of a webhook for %s (max_alerts)",
                webhook.truncated_alerts,
                notifier,
            )
        return json_response(200, {"status": result, "alerts": len(webhook.alerts)})

    def _count(self, result: str) -> None:
        with self._lock:
            self._webhooks[result] += 1

    # -- figures ------------------------------------------------------------------

    def _health(self) -> Response:
        counts = self._store.outbox_counts()
        reasons = []
        if counts.dead_total:
            reasons.append(f"{counts.dead_total} notification(s) could not be delivered")
        now = self._clock()
        return json_response(
            200,
            {
                "status": "degraded" if reasons else "healthy",
                "uptime_seconds": max(0.0, now - self._started),
                "outbox_backlog": counts.backlog,
                "oldest_pending_age_seconds": (
                    None
                    if counts.oldest_pending_at is None
                    else max(0.0, now - counts.oldest_pending_at)
                ),
                "dead_letters": counts.dead_total,
                "reasons": reasons,
            },
        )

    def _metrics(self) -> Response:
        counts = self._store.outbox_counts()
        stats = self._delivery_stats()
        with self._lock:
            webhooks = sorted(self._webhooks.items())
            alerts = sorted(self._alerts.items())
        families = [
            _family(
                "relay_webhooks", "counter", "Webhooks received, by result.", "result", webhooks
            ),
            _family(
                "relay_alerts",
                "counter",
                "Alerts in accepted webhooks, by status.",
                "status",
                alerts,
            ),
            _family(
                "relay_deliveries",
                "counter",
                "Delivery attempts of the relay's outbox, by outcome.",
                "outcome",
                [("delivered", stats.delivered), ("retried", stats.retried), ("dead", stats.dead)],
            ),
            Family(
                key="outbox_backlog",
                kind="gauge",
                help="Notifications waiting in the outbox to be delivered.",
                points=((export(()), float(counts.backlog)),),
            ),
            Family(
                key="dead_letters",
                kind="gauge",
                help="Notifications that failed for good and were set aside.",
                points=((export(()), float(counts.dead_total)),),
            ),
        ]
        return Response(
            status=200, body=metrics_text(families, openmetrics=False), content_type=METRICS_TYPE
        )


def _family(
    key: str, kind: Kind, help_text: str, label: str, values: list[tuple[str, int]]
) -> Family:
    points = tuple((export([(label, name)]), float(n)) for name, n in values)
    return Family(key=key, kind=kind, help=help_text, points=points)
