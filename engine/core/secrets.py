"""Secrets: spotting literal ones in rule files, masking them in output, expanding `${VAR}`.

Rule files hold references (`${SLACK_WEBHOOK_URL}`), never secrets; the
environment fills them in when a notification is sent. `memalert check` fails
a file that holds what looks like a literal token, and everything that prints
URLs (logs, dry-run, HTTP responses) passes them through `mask` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memalert.engine.core.errors import MemalertError

if TYPE_CHECKING:
    from collections.abc import Mapping

MASK = "***"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(r"\$\{(" + _NAME + r")\}")
_REFERENCE_START = re.compile(r"\$\{")
_SHOWN_REFERENCE = re.compile(r"\$\{[^}\s]{0,30}\}?")
# Characters that end a URL or token inside YAML, JSON, prose or a log line
# (`,` `]` `)` close flow lists and parentheses; webhook paths never hold them).
_URL_CHARS = r"[^\s\"'<>`,\])]"


class VariableError(MemalertError, ValueError):
    """A `${VAR}` reference that cannot be expanded: unset, or not well formed."""

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True, kw_only=True, slots=True)
class SecretSpan:
    """One literal secret: `secret_*` is the part to hide, `start`/`end` the whole match."""

    kind: str
    start: int
    end: int
    secret_start: int
    secret_end: int


def _pattern(kind: str, regex: str, *, flags: int = 0) -> tuple[str, re.Pattern[str]]:
    return kind, re.compile(regex, flags)


# Each pattern names the part to hide as the group `secret`.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    _pattern(
        "a Slack webhook URL with its secret path",
        r"https?://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/"
        rf"(?P<secret>{_URL_CHARS}+)",
    ),
    _pattern(
        "a Discord webhook URL with its secret path",
        r"https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/webhooks/"
        rf"(?P<secret>{_URL_CHARS}+)",
    ),
    _pattern(
        "a Microsoft Teams webhook URL with its secret path",
        rf"https?://[\w.-]*\.webhook\.office\.com/(?P<secret>{_URL_CHARS}+)",
    ),
    _pattern("a Slack token", r"\b(?:xox[abposr]|xapp)-(?P<secret>[A-Za-z0-9-]{6,})"),
    _pattern(
        "a password in a URL",
        r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\"'<>]*:(?P<secret>[^\s@/\"'<>]+)@",
    ),
    _pattern(
        "a bearer token",
        r"\bbearer(?:\s+|%20|\+)(?P<secret>[A-Za-z0-9\-._~+/]{8,}=*)",
        flags=re.IGNORECASE,
    ),
    _pattern(
        "a token in a URL parameter",
        r"[?&]\+?(?:[\w-]*[_-])?(?:token|secret|password|passwd|apikey|api[_-]?key|key|auth"
        r"|authorization)=(?P<secret>[^&\s#\"'<>,\])]+)",
        flags=re.IGNORECASE,
    ),
)

_MIN_APPRISE_TOKEN = 8
# apprise's own schemes put the tokens in the path: slack://TokenA/TokenB/TokenC/#channel.
_APPRISE_TOKEN_URL = re.compile(r"\b(?:slack|discord|msteams)://(?P<body>[^\s?\"'<>`,\])]+)")


def _is_reference_only(text: str) -> bool:
    return _REFERENCE.sub("", text) == ""


def _is_placeholder(text: str) -> bool:
    """`...`, `***` (already masked), `<token>`, `{password}`: examples, not secrets."""
    stripped = text.rstrip(".,;:)")
    return not any(ch.isalnum() for ch in stripped) or (
        len(stripped) > 1 and stripped[0] + stripped[-1] in ("<>", "{}", "[]")
    )


def _not_secret(text: str) -> bool:
    return _is_reference_only(text) or _is_placeholder(text)


def _apprise_token_spans(text: str) -> list[SecretSpan]:
    found: list[SecretSpan] = []
    for match in _APPRISE_TOKEN_URL.finditer(text):
        body_start = match.start("body")
        body = match.group("body")
        # `botname@` before the first token names the sender; it is not secret.
        offset = body.index("@") + 1 if "@" in body.split("/", 1)[0] else 0
        for segment in re.finditer(r"[^/]+", body[offset:]):
            token = segment.group()
            # A channel, a user, a ${VAR} reference, or too short for any of
            # these services' tokens (`TokenA` in apprise's own examples).
            if token[0] in "#@+" or _not_secret(token) or len(token) < _MIN_APPRISE_TOKEN:
                continue
            start = body_start + offset + segment.start()
            found.append(
                SecretSpan(
                    kind="a literal token in an apprise URL",
                    start=match.start(),
                    end=match.end(),
                    secret_start=start,
                    secret_end=start + len(token),
                )
            )
    return found


def secret_spans(text: str) -> list[SecretSpan]:
    """Every literal secret in `text`, by position; `${VAR}` references are not secrets."""
    found: list[SecretSpan] = []
    for kind, regex in _PATTERNS:
        for match in regex.finditer(text):
            if _not_secret(match.group("secret")):
                continue
            found.append(
                SecretSpan(
                    kind=kind,
                    start=match.start(),
                    end=match.end(),
                    secret_start=match.start("secret"),
                    secret_end=match.end("secret"),
                )
            )
    found.extend(_apprise_token_spans(text))
    found.sort(key=lambda span: (span.secret_start, -span.secret_end))
    return found


def find_literal_secrets(text: str) -> list[str]:
    """Describe each literal secret, masked, e.g. `a Slack token (xoxb-***)`; [] when clean."""
    described: list[str] = []
    for span in secret_spans(text):
        entry = f"{span.kind} ({mask(text[span.start : span.end])})"
        if entry not in described:
            described.append(entry)
    return described


def mask(text: str) -> str:
    """Replace every secret part of `text` with `***`, keeping the rest readable."""
    spans = secret_spans(text)
    if not spans:
        return text
    pieces: list[str] = []
    cursor = 0
    for span in spans:
        if span.secret_end <= cursor:
            continue  # inside a part already masked
        pieces.append(text[cursor : max(cursor, span.secret_start)])
        pieces.append(MASK)
        cursor = span.secret_end
    pieces.append(text[cursor:])
    return "".join(pieces)


def referenced_vars(text: str) -> list[str]:
    """The names of the `${VAR}` references in `text`, each once, in order of appearance."""
    return list(dict.fromkeys(_REFERENCE.findall(text)))


def reference_errors(text: str) -> list[str]:
    """Messages for each `${` that does not start a well-formed `${NAME}` reference."""
    errors: list[str] = []
    for start in _REFERENCE_START.finditer(text):
        if _REFERENCE.match(text, start.start()) is None:
            shown = _SHOWN_REFERENCE.match(text, start.start())
            assert shown is not None  # it matches any "${" at least
            errors.append(
                f"malformed variable reference {shown.group()!r}: write ${{NAME}} with letters, "
                "digits and underscores"
            )
    return errors


def expand(text: str, env: Mapping[str, str]) -> str:
    """Replace each `${VAR}` with `env[VAR]`; raise VariableError naming an unset or bad one."""
    problems = reference_errors(text)
    if problems:
        raise VariableError(problems[0])

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise VariableError(f"environment variable {name} is not set", name=name)
        return env[name]

    return _REFERENCE.sub(value_of, text)
