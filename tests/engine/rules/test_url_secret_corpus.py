"""Generated apprise URLs of real shapes: `${VAR}` secrets pass `check`, literal ones do not.

Each shape is a URL of a service apprise documents, with its secret parts as
`{S}` (a token) or `{W}` (a password, which may hold `@`) and its public
parts as `{host}`, `{word}`, `{email}`. Filled with `${VAR}` references, the
URL must pass `check` and come out of masking unchanged; filled with
literal values, `check` must refuse it at the first secret's FILE:LINE:COL,
and neither the diagnostic, nor `mask`, nor the Redactor that masks a
notifier's logs may show any of the values.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memalert.engine.core.secrets import mask
from memalert.engine.rules.load import check_paths
from memalert.notifiers.base import Redactor

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

SHAPES = (
    "tgram://{S}/{word}",
    "pover://{S}@{S}",
    "pagerduty://{S}@{S}/{word}",
    "gotifys://{host}/{S}",
    "gotify://{host}/{word}/{S}",
    "opsgenie://{S}",
    "opsgenie://{S}/{word}",
    "sendgrid://{S}:{email}/{email}",
    "mailgun://{word}@{host}/{S}",
    "dingtalk://{S}@{S}/",
    "apprises://{host}/{S}",
    "slack://{S}/{S}/{S}/#{word}",
    "slack://{word}@{S}/{S}/{S}/{word}",
    "discord://{S}/{S}",
    "workflows://{host}/{S}/{S}/",
    "mailtos://{word}:{W}@{host}?to={email}",
    "mailtos://{host}:587?user={word}&pass={W}&to={email}",
    "mailtos://{W}@{host}?user={email}&to={email}",
    "ntfys://{host}/{word}?auth=token&token={S}",
    "ntfys://{word}:{W}@{host}/{word}",
    "json://{word}:{W}@{host}:8080/{word}",
    "jsons://{host}/{word}?+Authorization=Bearer%20{S}",
    "jsons://{host}/{word}?sort_key={word}&-token={S}",
    "https://hooks.slack.com/services/{S}",
    "https://{host}/workflows/{word}/invoke?api-version=2016-06-01&sv=1.0&sig={S}",
)

_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789"
tokens = st.text(alphabet=_ALNUM, min_size=8, max_size=40)
passwords = st.text(alphabet=_ALNUM + "@!~*", min_size=8, max_size=24).filter(
    lambda p: p[0] != "@" and any(c.isalnum() for c in p)
)
words = st.from_regex(r"[a-z][a-z0-9-]{1,14}", fullmatch=True)
hosts = st.builds("{}.example.com".format, words)
emails = st.builds("{}@example.com".format, words)


@st.composite
def filled(draw: st.DrawFn) -> tuple[str, str, list[tuple[int, str]]]:
    """(URL with `${VAR}`s, the same URL with literal secrets, [(offset, secret)] in it)."""
    shape = draw(st.sampled_from(SHAPES))
    referenced: list[str] = []
    literal: list[str] = []
    secrets: list[tuple[int, str]] = []
    for piece in re.split(r"(\{\w+\})", shape):
        if piece in ("{S}", "{W}"):
            value = draw(tokens if piece == "{S}" else passwords)
            referenced.append(f"${{SECRET_{len(secrets)}}}")
            secrets.append((sum(map(len, literal)), value))
            literal.append(value)
            continue
        public = {"{host}": hosts, "{word}": words, "{email}": emails}.get(piece)
        text = draw(public) if public is not None else piece
        referenced.append(text)
        literal.append(text)
    return "".join(referenced), "".join(literal), secrets


def _check(directory: Path, url: str) -> tuple[Path, list[str]]:
    path = directory / "notifiers.yaml"
    path.write_text(f"version: 1\nnotifiers:\n  out:\n    urls:\n      - '{url}'\n")
    return path, [str(d) for d in check_paths([path])]


URL_LINE, URL_COL = 5, 10  # where `- '{url}'` puts the URL's first character


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=filled())
def test_generated_apprise_urls(
    case: tuple[str, str, list[tuple[int, str]]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    referenced, literal, secrets = case
    directory = tmp_path_factory.mktemp("corpus")

    _, problems = _check(directory, referenced)
    assert problems == [], referenced
    assert mask(referenced) == referenced

    path, problems = _check(directory, literal)
    first = min(offset for offset, _ in secrets)
    assert len(problems) == 1, (literal, problems)
    assert problems[0].startswith(f"{path}:{URL_LINE}:{URL_COL + first}: literal secret: "), (
        literal,
        problems,
    )
    message = problems[0].removeprefix(f"{path}:")  # a token may be "notifier" by chance
    masked = mask(literal)
    redact = Redactor.of([literal])
    for _, secret in secrets:
        assert secret not in message
        assert secret not in masked, (literal, masked)
        # An HTTP client's log line may quote one field alone.
        assert secret not in redact(f"POST /bot{secret}/send"), literal
