"""The HTTP API as a plain function: `HttpApp.handle(Request) -> Response`.

No sockets here: `memalert.engine.http.server` only moves bytes between the network and
this class, so every endpoint is tested in-process with a FakeClock. Reads are
pure functions of the engine's latest `EngineSnapshot` (`memalert.engine.http.views`,
`memalert.engine.export.exposition`); their bodies are rendered once per snapshot and reused
until the engine publishes the next one, so a scrape storm costs one render
per tick. The two writes (`POST /silences`, `DELETE /silences/{id}`) need a
bearer token from the environment, and all writes share one rate limit.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client.exposition import choose_encoder

from memalert.engine.alerting.views import silence_view
from memalert.engine.core.errors import MemalertError
from memalert.engine.core.model import Matcher, Silence
from memalert.engine.core.secrets import mask
from memalert.engine.core.units import parse_duration
from memalert.engine.export.exposition import render_metrics
from memalert.engine.http.dashboard import dashboard_view, page, plotly_js
from memalert.engine.http.views import (
    Json,
    alerts_view,
    health_view,
    leaks_view,
    silences_view,
    snapshot_view,
)
from memalert.engine.live.snapshot import EngineSnapshot, SnapshotSource
from memalert.engine.replay.observations import parse_timestamp

TOKEN_ENV = "MEMALERT_API_TOKEN"  # noqa: S105 - the variable's name, not a token
MAX_BODY_BYTES = 64 * 1024
JSON_TYPE = "application/json"
MAX_MATCHERS = 32
MAX_TEXT = 1024
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_SILENCE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")
_SILENCE_KEYS = frozenset({"match", "starts", "ends", "duration", "comment", "author"})


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    """`target` is the request target as sent (path and query); header names lower case."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True, kw_only=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()


class HttpError(Exception):
    """A request refused with a 4xx status; becomes a JSON error body."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.status = status
        self.headers = headers


def json_response(
    status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return Response(status=status, body=body, headers=headers)


def error_response(
    status: int, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    # Messages quote the request and the store's errors: either may hold a secret.
    return json_response(status, {"error": mask(message), "status": status}, headers)


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimit:
    """A token bucket: `burst` calls at once, refilled at `per_second`."""

    burst: int = 10
    per_second: float = 0.5


class _Bucket:
    def __init__(self, limit: RateLimit, now: float) -> None:
        self._limit = limit
        self._tokens = float(limit.burst)
        self._at = now
        self._lock = threading.Lock()

    def take(self, now: float) -> float | None:
        """None when allowed; else the seconds until a call would be."""
        with self._lock:
            elapsed = max(0.0, now - self._at)
            self._tokens = min(self._limit.burst, self._tokens + elapsed * self._limit.per_second)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            return (1 - self._tokens) / self._limit.per_second


def _take(bucket: _Bucket, now: float, what: str) -> None:
    wait = bucket.take(now)
    if wait is not None:
        retry = str(max(1, round(wait)))
        raise HttpError(429, f"{what}; retry later", (("Retry-After", retry),))


# -- POST /silences body ------------------------------------------------------------


def _time_field(body: Mapping[str, Any], key: str) -> float | None:
    if key not in body or body[key] is None:
        return None
    try:
        return parse_timestamp(body[key])
    except (ValueError, OverflowError) as exc:
        raise HttpError(400, f"'{key}': {exc}") from None


def _text_field(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise HttpError(400, f"'{key}' must be a string of at most {MAX_TEXT} characters")
    return value


def _matchers(match: object) -> tuple[Matcher, ...]:
    if not isinstance(match, dict) or not match or len(match) > MAX_MATCHERS:
        raise HttpError(400, f"'match' must be an object of 1 to {MAX_MATCHERS} label: glob pairs")
    for label, pattern in match.items():
        if not _LABEL_NAME.match(label):
            raise HttpError(400, f"'match': {label[:64]!r} is not a label name")
        if not isinstance(pattern, str) or len(pattern) > MAX_TEXT:
            raise HttpError(400, f"'match.{label}' must be a glob string")
    return tuple(Matcher.compile(label, pattern) for label, pattern in sorted(match.items()))


def parse_silence(body: bytes, now: float) -> Silence:
    """The silence a POST body describes; raises HttpError(400) naming what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers malformed JSON and bytes that are not UTF-8.
        raise HttpError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HttpError(400, "the body must be a JSON object")
    unknown = sorted(set(data) - _SILENCE_KEYS)
    if unknown:
        raise HttpError(400, f"unknown key {unknown[0][:64]!r}; known: {sorted(_SILENCE_KEYS)}")
    matchers = _matchers(data.get("match"))
    given_start = _time_field(data, "starts")
    starts = now if given_start is None else given_start
    ends = _time_field(data, "ends")
    if ("duration" in data) == (ends is not None):
        raise HttpError(400, "give exactly one of 'ends' and 'duration'")
    if ends is None:
        try:
            ends = starts + parse_duration(data["duration"])
        except (ValueError, OverflowError) as exc:
            raise HttpError(400, f"'duration': {exc}") from None
    if not math.isfinite(ends):
        raise HttpError(400, "the silence must end at a finite time")
    if ends <= starts:
        raise HttpError(400, "the silence must end after it starts")
    if ends <= now:
        raise HttpError(400, "the silence must end in the future")
    return Silence(
        matchers=matchers,
        starts=starts,
        ends=ends,
        comment=_text_field(data, "comment"),
        author=_text_field(data, "author"),
    )


# -- the app ---------------------------------------------------------------------------


class _PerSnapshot:
    """Bodies rendered from one snapshot, dropped when the engine publishes another."""

    MAX_ENTRIES = 16  # /metrics keys by negotiated format: a handful at most

    def __init__(self) -> None:
        self._snapshot: EngineSnapshot | None = None
        self._bodies: dict[str, Response] = {}

    def get(self, snapshot: EngineSnapshot, key: str, render: Callable[[], Response]) -> Response:
        # Handler threads race here only to render the same thing twice; the
        # (snapshot, bodies) pair is replaced whole, never mutated across snapshots.
        if snapshot is not self._snapshot:
            self._snapshot, self._bodies = snapshot, {}
        bodies = self._bodies
        found = bodies.get(key)
        if found is None:
            found = render()
            if len(bodies) < self.MAX_ENTRIES:
                bodies[key] = found
        return found


Handler = Callable[["HttpApp", Request, EngineSnapshot, float], Response]


class HttpApp:
    """Routes requests to the endpoints over `source`; thread-safe."""

    def __init__(
        self,
        source: SnapshotSource,
        *,
        token: str | None = None,
        clock: Callable[[], float] = time.time,
        write_limit: RateLimit | None = None,
    ) -> None:
        self._source = source
        self._token = token.encode() if token else None
        self._clock = clock
        self._bucket = _Bucket(write_limit or RateLimit(), clock())
        # Refused tokens drain a bucket of their own: guessing stays slow, and
        # requests without the token cannot use up the writes of those with it.
        self._refusals = _Bucket(write_limit or RateLimit(), clock())
        self._cache = _PerSnapshot()

    @classmethod
    def from_env(cls, source: SnapshotSource, env: Mapping[str, str], **kwargs: Any) -> HttpApp:
        return cls(source, token=env.get(TOKEN_ENV) or None, **kwargs)

    def handle(self, request: Request) -> Response:
        """Never raises for bad input: every refusal is a 4xx JSON error."""
        try:
            path = unquote(urlsplit(request.target).path)
            routes = _routes_for(path)
            if routes is None:
                raise HttpError(404, f"no endpoint {path[:200]!r}; see docs/http.md")
            method = "GET" if request.method == "HEAD" else request.method
            handler = routes.get(method)
            if handler is None:
                allow = ", ".join(sorted({*routes, "HEAD"} if "GET" in routes else routes))
                raise HttpError(
                    405, f"{request.method[:16]} is not allowed on {path}", (("Allow", allow),)
                )
            if len(request.body) > MAX_BODY_BYTES:
                raise HttpError(413, f"the body exceeds {MAX_BODY_BYTES} bytes")
            return handler(self, request, self._source.latest(), self._clock())
        except HttpError as exc:
            return error_response(exc.status, str(exc), exc.headers)

    # -- reads ------------------------------------------------------------------

    def _metrics(self, request: Request, snapshot: EngineSnapshot, now: float) -> Response:
        accept = request.headers.get("accept", "")

        def render() -> Response:
            body, content_type = render_metrics(snapshot, accept)
            return Response(status=200, body=body, content_type=content_type)

        # Keyed by the format negotiated, not the header: a few keys, however clients spell it.
        return self._cache.get(snapshot, "metrics " + choose_encoder(accept)[1], render)

    def _cached_json(
        self, key: str, snapshot: EngineSnapshot, view: Callable[[EngineSnapshot], Json]
    ) -> Response:
        return self._cache.get(snapshot, key, lambda: json_response(200, view(snapshot)))

    def _health(self, request: Request, snapshot: EngineSnapshot, now: float) -> Response:
        status, body = health_view(snapshot, now)
        return json_response(status, body)

    def _snapshot(self, request: Request, snapshot: EngineSnapshot, now: float) -> Response:
        return self._cached_json("snapshot", snapshot, snapshot_view)

    def _dashboard(self, request: Request, snapshot: EngineSnapshot, now: float) -> Response:
        return Response(status=200, body=page(), content_type="text/html; charset=utf-8")

    def _dashboard_json(self, request: Request, snapshot: EngineSnapshot, now: float) -> Response:
        return json_response(200, dashboard_view(snapshot, now))

    def _plotly(self, request: Request, snapshot: EngineSnapshot, now: float) -> Response:
        script = plotly_js()
        if script is None:
            raise HttpError(404, "the chart library needs the report extra: memalert[report]")
        return Response(
            status=200,
            body=script,
            content_type="text/javascript; charset=utf-8",
            headers=(("Cache-Control", "max-age=86400"),),
        )

    def _leaks(self, request: Request, snapshot: EngineSnapshot, now: float) -> Response:
        return self._cached_json("leaks", snapshot, leaks_view)

    def _alerts(self, request: Request, snapshot: EngineSnapshot, now: float) -> Response:
        return self._cached_json("alerts", snapshot, alerts_view)

    def _silences(self, request: Request, snapshot: EngineSnapshot, now: float) -> Response:
        return json_response(200, silences_view(snapshot, now))

    # -- writes -----------------------------------------------------------------

    def _authorize_write(self, request: Request, now: float) -> None:
        if self._token is None:
            raise HttpError(403, f"changes over HTTP are disabled: set {TOKEN_ENV} to enable them")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self._token
        ):
            _take(self._refusals, now, "too many refused tokens")
            raise HttpError(
                401,
                "a valid 'Authorization: Bearer <token>' is required",
                (("WWW-Authenticate", 'Bearer realm="memalert"'),),
            )
        _take(self._bucket, now, "too many changes")

    def _add_silence(self, request: Request, snapshot: EngineSnapshot, now: float) -> Response:
        self._authorize_write(request, now)
        content_type = request.headers.get("content-type", JSON_TYPE)
        if content_type.split(";")[0].strip().lower() != JSON_TYPE:
            raise HttpError(415, f"send the silence as {JSON_TYPE}")
        silence = parse_silence(request.body, now)
        try:
            silence_id = self._source.add_silence(silence)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        except MemalertError as exc:
            raise HttpError(503, f"the silence could not be stored: {exc}") from None
        return json_response(201, silence_view(replace(silence, id=silence_id), now))

    def _expire_silence(self, request: Request, snapshot: EngineSnapshot, now: float) -> Response:
        self._authorize_write(request, now)
        silence_id = unquote(urlsplit(request.target).path).removeprefix("/silences/")
        if not _SILENCE_ID.match(silence_id):
            raise HttpError(400, "a silence id is 1 to 128 letters, digits and . _ : -")
        try:
            expired = self._source.expire_silence(silence_id)
        except MemalertError as exc:
            raise HttpError(503, f"the silence could not be expired: {exc}") from None
        if not expired:
            raise HttpError(404, f"no active silence with id {silence_id!r}")
        return json_response(200, {"id": silence_id, "expired": True})


_ROUTES: dict[str, dict[str, Handler]] = {
    "/": {"GET": HttpApp._dashboard},
    "/dashboard.json": {"GET": HttpApp._dashboard_json},
    "/assets/plotly.min.js": {"GET": HttpApp._plotly},
    "/metrics": {"GET": HttpApp._metrics},
    "/health": {"GET": HttpApp._health},
    "/snapshot": {"GET": HttpApp._snapshot},
    "/leaks": {"GET": HttpApp._leaks},
    "/alerts": {"GET": HttpApp._alerts},
    "/silences": {"GET": HttpApp._silences, "POST": HttpApp._add_silence},
}
_SILENCE_ROUTES: dict[str, Handler] = {"DELETE": HttpApp._expire_silence}


def _routes_for(path: str) -> dict[str, Handler] | None:
    if path.startswith("/silences/") and len(path) > len("/silences/"):
        return _SILENCE_ROUTES
    return _ROUTES.get(path)
