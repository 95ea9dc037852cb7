"""Which parts of a URL are secret: its password, its secret query values, apprise's private fields.

A URL is read as RFC 3986 reads it: the authority (`user:password@host:port`)
ends at the first `/`, `?` or `#`, so an `@` in the query string
(`?to=oncall@example.com`) is no password's end. What is secret comes from
apprise's own description of each service's URL where the scheme is one of
apprise's (`apprise_private.json`, made by `memalert.notifiers.private_fields`):
the template tokens and query arguments it marks `private`, such as Telegram's
`tgram://{bot_token}` or PagerDuty's `{integrationkey}@{apikey}`. Other URLs
(plain https webhooks) and the arguments apprise does not describe fall back
to the query names that say secret (`token`, `pass`, `sig`, `api_key`, ...).
A value made only of `${VAR}` references, or a placeholder (`<token>`,
`...`), is no secret.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from collections.abc import Iterator

# Characters that end a URL or token inside YAML, JSON, prose or a log line
# (`,` `]` `)` close flow lists and parentheses; webhook paths never hold them).
URL_CHARS = r"[^\s\"'<>`,\])]"
_URL = re.compile(rf"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*+)://(?P<rest>{URL_CHARS}*+)")
_MAX_SCHEME = 64
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*+\Z")
_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_PARAMETER = re.compile(r"(?:^|&)(?P<name>[^=&#]*)=(?P<value>[^&#]*)")
# An HTTP auth scheme before a `${VAR}` (`+Authorization=Bearer%20${TOKEN}`) hides nothing.
_AUTH_SCHEME = re.compile(r"^(?:bearer|basic|token|digest)(?:\s+|%20|\+)", re.IGNORECASE)
# Query names that say "secret" where apprise does not describe the URL: exact
# names, and names ending in one of `_SECRET_SUFFIXES` after `_` or `-`
# (`access_token`, `client-secret`; but `sort_key` is a sort order).
_SECRET_NAMES = frozenset(
    {
        "token", "secret", "password", "passwd", "pass", "pwd", "apikey", "api_key", "api-key",
        "key", "auth", "authorization", "sig", "signature", "access_key", "secret_key",
        "private_key", "privatekey", "accesstoken", "code",
    }
)  # fmt: skip
_SECRET_SUFFIXES = ("token", "secret", "password", "passwd", "apikey", "signature")
_SUFFIXED = re.compile(r"[\w-]*[_-](?:api[_-]?key|" + "|".join(_SECRET_SUFFIXES) + ")")
# apprise's example tokens (`slack://TokenA/TokenB/TokenC`) are shorter than any
# of these services' real tokens; a password is a secret at any length.
MIN_TOKEN_LENGTH = 8

# What a span is, as `memalert check` names it.
PASSWORD = "a password in a URL"  # noqa: S105 - a description, not a password
PARAMETER = "a token in a URL parameter"


@dataclass(frozen=True, kw_only=True, slots=True)
class SecretSpan:
    """One literal secret: `secret_*` is the part to hide, `start`/`end` the whole match."""

    kind: str
    start: int
    end: int
    secret_start: int
    secret_end: int


def is_reference_only(text: str) -> bool:
    return _REFERENCE.sub("", text) == ""


def is_placeholder(text: str) -> bool:
    """`...`, `***` (already masked), `<token>`, `{password}`: examples, not secrets."""
    stripped = text.rstrip(".,;:)")
    return not any(ch.isalnum() for ch in stripped) or (
        len(stripped) > 1 and stripped[0] + stripped[-1] in ("<>", "{}", "[]")
    )


def not_secret(text: str) -> bool:
    return is_reference_only(_AUTH_SCHEME.sub("", text)) or is_placeholder(text)


@dataclass(frozen=True, slots=True)
class _Template:
    regex: re.Pattern[str]
    private: tuple[str | None, ...]  # per group: the private token's name, None if public


@dataclass(frozen=True, slots=True)
class _Service:
    templates: tuple[_Template, ...]
    # Whether `user:password@` holds a password: `sendgrid://{apikey}:{from_email}` does not.
    password: bool
    private_args: frozenset[str]
    public_args: frozenset[str]


@functools.cache
def _table() -> dict[str, Any]:
    text = resources.files("memalert.engine.core").joinpath("apprise_private.json").read_text()
    table: dict[str, Any] = json.loads(text)
    return table


def _template(template: str, private: frozenset[str], lists: frozenset[str]) -> _Template | None:
    """A regex for the URL part before `?`; a query in the template is left to the arguments.

    Every quantifier but a list's is possessive, each token stopping at the
    character that follows it in the template: matching never backtracks, so
    a hostile URL (`a:@a:@...`) costs linear time, not exponential.
    """
    prefix = "{schema}://"
    if not template.startswith(prefix):
        return None
    pieces = re.split(r"(\{\w+\})", template[len(prefix) :].split("?", 1)[0].rstrip("/"))
    regex: list[str] = []
    names: list[str | None] = []
    for i, piece in enumerate(pieces):
        if not (piece.startswith("{") and piece.endswith("}")):
            regex.append(re.escape(piece))
            continue
        name = piece[1:-1]
        following = next((p for p in pieces[i + 1 :] if p), "")
        if name in lists:
            regex.append("(.*?)" if following else "(.*+)")
        elif name == "path":
            regex.append("(/(?:[^/]*+/)*+)" if following else "(/.*+)?")
        elif following.startswith(":"):
            regex.append("([^/:]++)")
        elif following.startswith("@") and i > 0 and pieces[i - 1].endswith(":"):
            # A password: up to the last `@` of the authority, as URL parsers read it.
            regex.append("((?:[^/@]|@(?=[^/@]*+@))*+)")
        elif following.startswith("@"):
            regex.append("([^/:@]++)")
        elif name in private:
            regex.append("([^/@]++)")  # `botname@` before a token is not the token
        else:
            regex.append("([^/]++)")
        names.append(name if name in private else None)
    return _Template(re.compile("".join(regex) + "/?", re.DOTALL), tuple(names))


@functools.cache
def _service(scheme: str) -> _Service | None:
    entry = _table()["schemes"].get(scheme.lower())
    if entry is None:
        return None
    private = frozenset(entry["private"])
    lists = frozenset(entry["lists"])
    built = (_template(t, private, lists) for t in entry["templates"])
    return _Service(
        templates=tuple(t for t in built if t is not None),
        password="password" in private,
        private_args=frozenset(entry["private_args"]) | frozenset(_table()["password_args"]),
        public_args=frozenset(entry["public_args"]) | frozenset(_table()["common_args"]),
    )


def _secret_name(name: str, service: _Service | None) -> bool:
    if service is not None:
        if name in service.private_args:
            return True
        if name in service.public_args:
            return False
    return name in _SECRET_NAMES or _SUFFIXED.fullmatch(name) is not None


def _spans_of(match: re.Match[str]) -> Iterator[SecretSpan]:
    scheme = match.group("scheme")
    rest_start = match.start("rest")
    rest = match.group("rest")
    service = _service(scheme)
    body, _, query = rest.partition("?")
    query_start = rest_start + len(body) + 1

    def span(
        kind: str, start: int, end: int, *, whole: tuple[int, int] | None = None
    ) -> SecretSpan:
        first, last = whole or (match.start(), match.end())
        return SecretSpan(kind=kind, start=first, end=last, secret_start=start, secret_end=end)

    authority = re.split(r"[/#]", body, maxsplit=1)[0]
    at = authority.rfind("@")
    names = [unquote(m.group("name")).lstrip("+-:").lower() for m in _PARAMETER.finditer(query)]
    if at >= 0 and (service is None or service.password):
        userinfo = authority[:at]
        password = userinfo.partition(":")[2]
        if ":" not in userinfo and service is not None and "user" in names:
            password = userinfo  # apprise reads `PASSWORD@host?user=NAME` so (URLBase.parse_url)
        if password and not not_secret(password):
            end = rest_start + at
            yield span(PASSWORD, end - len(password), end, whole=(match.start(), end + 1))
    for parameter, name in zip(_PARAMETER.finditer(query), names, strict=True):
        value = parameter.group("value")
        if value and _secret_name(name, service) and not not_secret(unquote(value)):
            # From the `?` or `&` before the name: `?token=***` says where it was.
            first = query_start + parameter.start() - (parameter.start() == 0)
            scheme_word = _AUTH_SCHEME.match(value)  # `Bearer%20` stays readable
            yield span(
                PARAMETER,
                query_start + parameter.start("value") + (scheme_word.end() if scheme_word else 0),
                query_start + parameter.end("value"),
                whole=(first, query_start + parameter.end()),
            )
    if service is None:
        return
    for template in service.templates:
        fields = template.regex.fullmatch(body)
        if fields is None:
            continue
        for group, field in enumerate(template.private, start=1):
            value = fields.group(group)
            if field is None or value is None or len(value) < MIN_TOKEN_LENGTH:
                continue
            if not not_secret(value):
                yield span(
                    f"a literal token in an apprise {scheme.lower()}:// URL",
                    rest_start + fields.start(group),
                    rest_start + fields.end(group),
                )


def url_secret_spans(text: str) -> list[SecretSpan]:
    """The secret parts of every `scheme://` URL in `text`."""
    found: list[SecretSpan] = []
    url_end = 0
    for separator in re.finditer("://", text):
        if separator.start() < url_end:
            continue  # inside the URL before: `?next=https://...`
        # The scheme, looked for in a bounded window: a scan from every word
        # boundary (`\b[a-z...]*://`) is quadratic in a long run of `a.a.a.`.
        window = max(0, separator.start() - _MAX_SCHEME)
        scheme = _SCHEME.search(text, window, separator.start())
        if scheme is None or (scheme.start() > 0 and text[scheme.start() - 1].isalnum()):
            continue
        match = _URL.match(text, scheme.start())
        if match is None:
            continue
        url_end = match.end()
        found.extend(_spans_of(match))
    return found
