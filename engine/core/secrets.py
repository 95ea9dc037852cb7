"""Secrets: spotting literal ones in rule files, masking them in output, expanding `${VAR}`.

Rule files hold references (`${SLACK_WEBHOOK_URL}`), never secrets; the
environment fills them in when a notification is sent. `memalert check` fails
a file that holds what looks like a literal token, and everything that prints
URLs (logs, dry-run, HTTP responses) passes them through `mask` first.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from memalert.engine.core.errors import MemalertError
from memalert.engine.core.url_secrets import URL_CHARS, SecretSpan, not_secret, url_secret_spans

if TYPE_CHECKING:
    from collections.abc import Mapping

MASK = "***"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(r"\$\{(" + _NAME + r")\}")
_REFERENCE_START = re.compile(r"\$\{")
_SHOWN_REFERENCE = re.compile(r"\$\{[^}\s]{0,30}\}?")


class VariableError(MemalertError, ValueError):
    """A `${VAR}` reference that cannot be expanded: unset, or not well formed."""

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


def _pattern(kind: str, regex: str, *, flags: int = 0) -> tuple[str, re.Pattern[str]]:
    return kind, re.compile(regex, flags)


# Secrets that a URL's structure does not reveal (`url_secrets` finds those):
# webhook URLs whose path is the secret, and tokens in prose. Each pattern
# names the part to hide as the group `secret`.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    _pattern(
        "a Slack webhook URL with its secret path",
        r"https?://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/"
        rf"(?P<secret>{URL_CHARS}+)",
    ),
    _pattern(
        "a Discord webhook URL with its secret path",
        r"https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/webhooks/"
        rf"(?P<secret>{URL_CHARS}+)",
    ),
    _pattern(
        "a Microsoft Teams webhook URL with its secret path",
        rf"https?://[\w.-]*\.webhook\.office\.com/(?P<secret>{URL_CHARS}+)",
    ),
    _pattern("a Slack token", r"\b(?:xox[abposr]|xapp)-(?P<secret>[A-Za-z0-9-]{6,})"),
    _pattern(
        "a bearer token",
        r"\bbearer(?:\s+|%20|\+)(?P<secret>[A-Za-z0-9\-._~+/]{8,}=*)",
        flags=re.IGNORECASE,
    ),
)


def secret_spans(text: str) -> list[SecretSpan]:
    """Every literal secret in `text`, by position; `${VAR}` references are not secrets."""
    found = url_secret_spans(text)
    for kind, regex in _PATTERNS:
        for match in regex.finditer(text):
            if not_secret(match.group("secret")):
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
    found.sort(key=lambda span: (span.secret_start, -span.secret_end))
    return found


def find_literal_secrets(text: str) -> list[str]:
    """Describe each literal secret, masked, e.g. `a Slack token (xoxb-***)`; [] when clean."""
    spans = secret_spans(text)
    described: list[str] = []
    for span in spans:
        entry = f"{span.kind} ({masked_excerpt(text, spans, span.start, span.end)})"
        if entry not in described:
            described.append(entry)
    return described


def masked_excerpt(text: str, spans: list[SecretSpan], start: int, end: int) -> str:
    """`text[start:end]` with every secret of `spans` in it masked (`spans` from `secret_spans`).

    Masking the excerpt alone would miss what only its context reveals: `?token=x`
    is a secret parameter only after a URL's path.
    """
    pieces: list[str] = []
    cursor = start
    for span in spans:
        if span.secret_end <= cursor or span.secret_start >= end:
            continue  # outside, or inside a part already masked
        pieces.append(text[cursor : max(cursor, span.secret_start)])
        pieces.append(MASK)
        cursor = min(span.secret_end, end)
    pieces.append(text[cursor:end])
    return "".join(pieces)


def mask(text: str) -> str:
    """Replace every secret part of `text` with `***`, keeping the rest readable."""
    spans = secret_spans(text)
    return masked_excerpt(text, spans, 0, len(text)) if spans else text


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
