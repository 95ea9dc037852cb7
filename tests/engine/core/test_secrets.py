"""Literal secrets are found, masked everywhere, and `${VAR}` expands from an injected env."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memalert.engine.core.secrets import (
    VariableError,
    expand,
    find_literal_secrets,
    mask,
    reference_errors,
    referenced_vars,
    secret_spans,
)

SLACK_HOOK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"


@pytest.mark.parametrize(
    ("text", "found", "masked"),
    [
        pytest.param(
            SLACK_HOOK,
            ["a Slack webhook URL with its secret path (https://hooks.slack.com/services/***)"],
            "https://hooks.slack.com/services/***",
            id="slack-webhook",
        ),
        pytest.param(
            "https://discord.com/api/webhooks/123456789/abcdefGHIJ-kl",
            ["a Discord webhook URL with its secret path (https://discord.com/api/webhooks/***)"],
            "https://discord.com/api/webhooks/***",
            id="discord-webhook",
        ),
        pytest.param(
            "https://acme.webhook.office.com/webhookb2/abc-123@def/IncomingWebhook/xyz",
            [
                (
                    "a Microsoft Teams webhook URL with its secret path "
                    "(https://acme.webhook.office.com/***)"
                )
            ],
            "https://acme.webhook.office.com/***",
            id="teams-webhook",
        ),
        pytest.param(
            "token: xoxb-1234567890-0987654321-AbCdEfGhIj",
            ["a Slack token (xoxb-***)"],
            "token: xoxb-***",
            id="slack-bot-token",
        ),
        pytest.param(
            "xoxp-11111111-22222222 and xapp-1-A0000-12345",
            ["a Slack token (xoxp-***)", "a Slack token (xapp-***)"],
            "xoxp-*** and xapp-***",
            id="slack-user-and-app-tokens",
        ),
        pytest.param(
            "mailtos://alerts:hunter2@smtp.example.com?to=ops@example.com",
            ["a password in a URL (mailtos://alerts:***@)"],
            "mailtos://alerts:***@smtp.example.com?to=ops@example.com",
            id="password-in-url",
        ),
        pytest.param(
            "slack://memalert@T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
            ["a literal token in an apprise slack:// URL (slack://memalert@***/***/***/#general)"],
            "slack://memalert@***/***/***/#general",
            id="apprise-slack",
        ),
        pytest.param(
            "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
            ["a literal token in an apprise discord:// URL (discord://***/***)"],
            "discord://***/***",
            id="apprise-discord",
        ),
        pytest.param(
            "workflows://prod-00.westus.logic.azure.com/abcdefgh12/ijklmnop34/",
            [
                (
                    "a literal token in an apprise workflows:// URL "
                    "(workflows://prod-00.westus.logic.azure.com/***/***/)"
                )
            ],
            "workflows://prod-00.westus.logic.azure.com/***/***/",
            id="apprise-teams-workflow",
        ),
        pytest.param(
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc",
            ["a bearer token (Bearer ***)"],
            "Authorization: Bearer ***",
            id="bearer-header",
        ),
        pytest.param(
            "jsons://hooks.example.com/in?token=s3cr3t-value&x=1",
            ["a token in a URL parameter (?token=***)"],
            "jsons://hooks.example.com/in?token=***&x=1",
            id="token-parameter",
        ),
    ],
)
def test_literal_secrets_are_found_and_masked(text: str, found: list[str], masked: str) -> None:
    assert find_literal_secrets(text) == found
    assert mask(text) == masked
    assert find_literal_secrets(mask(text)) == []


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("${SLACK_WEBHOOK_URL}", id="whole-url-reference"),
        pytest.param("https://hooks.slack.com/services/${SLACK_PATH}", id="path-reference"),
        pytest.param("mailtos://${SMTP_USER}:${SMTP_PASSWORD}@smtp.example.com", id="password-ref"),
        pytest.param("slack://${TOKEN_A}/${TOKEN_B}/${TOKEN_C}/#general", id="apprise-refs"),
        pytest.param("jsons://hooks.example.com/in?+X-Token=${WEBHOOK_TOKEN}", id="header-ref"),
        pytest.param("Authorization: Bearer ${API_TOKEN}", id="bearer-ref"),
        pytest.param("https://hooks.slack.com/services/...", id="documentation-dots"),
        pytest.param("mailtos://user:<password>@example.com", id="documentation-placeholder"),
        pytest.param("slack://TokenA/TokenB/TokenC/#channel", id="apprise-doc-example"),
        pytest.param("console:// file:///var/log/a.jsonl json://example.com/hook", id="plain"),
        pytest.param("https://example.com:8443/path@v2", id="port-not-password"),
        pytest.param("the xoxb- prefix marks bot tokens", id="prose"),
    ],
)
def test_references_placeholders_and_plain_urls_are_not_secrets(text: str) -> None:
    assert find_literal_secrets(text) == []
    assert mask(text) == text


def test_one_secret_found_by_two_patterns_is_masked_once() -> None:
    text = "slack://xoxb-1234-5678-abcdefghijkl/#alerts"
    assert mask(text) == "slack://***/#alerts"


def test_spans_point_at_the_secret_part() -> None:
    text = f"urls: [{SLACK_HOOK}]"
    (span,) = secret_spans(text)
    assert text[span.secret_start : span.secret_end] == SLACK_HOOK.rsplit("services/", 1)[1]
    assert text[span.start : span.end] == SLACK_HOOK


TOKEN = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789", min_size=8)


@given(a=TOKEN, b=TOKEN, c=TOKEN, password=TOKEN)
def test_masking_hides_every_generated_secret(a: str, b: str, c: str, password: str) -> None:
    cases = {
        f"[https://hooks.slack.com/services/{a}/{b}/{c}]": "[https://hooks.slack.com/services/***]",
        f"slack://{a}/{b}/{c}/#ops": "slack://***/***/***/#ops",
        f"mailtos://me:{password}@example.com": "mailtos://me:***@example.com",
        f"'xoxb-{a}'": "'xoxb-***'",
        f"Bearer {password}, done": "Bearer ***, done",
    }
    for text, masked in cases.items():
        assert mask(text) == masked


# -- URLs as RFC 3986 and apprise read them -----------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(
            "mailtos://smtp.example.com:587?user=${SMTP_USER}&pass=${SMTP_PASSWORD}"
            "&to=oncall@example.com",
            id="port-then-at-in-query",
        ),
        pytest.param(
            "mailto://127.0.0.1:25?from=memalert@example.com&to=oncall@example.com", id="ip"
        ),
        pytest.param("ntfys://ntfy.example.com/alerts?auth=token&token=${NTFY_TOKEN}", id="ntfy"),
        pytest.param("slack://${SLACK_A}/${SLACK_B}/${SLACK_C}/memory-alerts", id="slack-channel"),
        pytest.param("jsons://example.com/in?+Authorization=Bearer%20${TOKEN}", id="bearer-ref"),
        pytest.param("jsons://example.com/in?sort_key=name&-partition_key=memalert", id="x_key"),
        pytest.param("https://example.com/api?sort_key=name&page=2", id="https-sort-key"),
        pytest.param("tgram://${TELEGRAM_BOT_TOKEN}/${TELEGRAM_CHAT_ID}", id="telegram-refs"),
        pytest.param("pover://${PUSHOVER_USER}@${PUSHOVER_TOKEN}", id="pushover-refs"),
        pytest.param("mailtos://alerts@example.com?to=oncall@example.com", id="user-no-password"),
    ],
)
def test_valid_urls_with_references_are_not_secrets(url: str) -> None:
    assert find_literal_secrets(url) == []
    assert mask(url) == url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        pytest.param(
            "mailtos://smtp.example.com:587?user=alerts&pass=hunter2&to=oncall@example.com",
            "mailtos://smtp.example.com:587?user=alerts&pass=***&to=oncall@example.com",
            id="pass-parameter",
        ),
        pytest.param(
            "ntfys://ntfy.example.com/alerts?password=hunter2",
            "ntfys://ntfy.example.com/alerts?password=***",
            id="password-parameter",
        ),
        pytest.param(
            "https://prod-12.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke"
            "?api-version=2016-06-01&sv=1.0&sig=AbCdEf0123456789",
            "https://prod-12.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke"
            "?api-version=2016-06-01&sv=1.0&sig=***",
            id="signed-webhook",
        ),
        pytest.param(
            "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567",
            "tgram://***/-1001234567",
            id="telegram",
        ),
        pytest.param(
            "pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi",
            "pover://***@***",
            id="pushover",
        ),
        pytest.param(
            "pagerduty://A1BRTD4JD3TIiajkdnlazkcOXrIdevi7@b1c2d3e4f5g6h7i8j9k0/memalert",
            "pagerduty://***@***/memalert",
            id="pagerduty",
        ),
        pytest.param(
            "gotifys://gotify.example.com/AbCdEf123456789",
            "gotifys://gotify.example.com/***",
            id="gotify",
        ),
        pytest.param(
            "opsgenie://6a8e4f0c-1d2b-4c5e-9f7a-0b1c2d3e4f5a", "opsgenie://***", id="opsgenie"
        ),
        pytest.param(
            "sendgrid://SG.abcdefghijklmnop.qrstuvwx:alerts@example.com/oncall@example.com",
            "sendgrid://***:alerts@example.com/oncall@example.com",
            id="sendgrid",
        ),
        pytest.param(
            "mailgun://alerts@mg.example.com/key-0123456789abcdef",
            "mailgun://alerts@mg.example.com/***",
            id="mailgun",
        ),
        pytest.param(
            "dingtalk://SECabcdef0123456789@0123456789abcdef0123/",
            "dingtalk://***@***/",
            id="dingtalk",
        ),
        pytest.param(
            "apprises://apprise.example.com/abcdef0123456789",
            "apprises://apprise.example.com/***",
            id="apprise-api",
        ),
        pytest.param(
            "json://user:p@ss@hooks.example.com/in",
            "json://user:***@hooks.example.com/in",
            id="password-holding-an-at",
        ),
        pytest.param(
            "mailtos://hunter2@smtp.example.com?user=alerts@example.com",
            "mailtos://***@smtp.example.com?user=alerts@example.com",
            id="password-before-user-parameter",
        ),
    ],
)
def test_literal_secrets_in_urls_are_found_and_masked(url: str, masked: str) -> None:
    assert find_literal_secrets(url)
    assert mask(url) == masked


# -- ${VAR} ----------------------------------------------------------------------


def test_expand_replaces_each_reference_from_the_given_environment() -> None:
    env = {"USER": "alerts", "PASS": "p@ss", "HOST": "smtp.example.com"}
    url = "mailtos://${USER}:${PASS}@${HOST}?to=${USER}@example.com"
    assert expand(url, env) == "mailtos://alerts:p@ss@smtp.example.com?to=alerts@example.com"


def test_expand_names_an_unset_variable() -> None:
    with pytest.raises(VariableError) as caught:
        expand("${SLACK_WEBHOOK_URL}", {"OTHER": "x"})
    assert str(caught.value) == "environment variable SLACK_WEBHOOK_URL is not set"
    assert caught.value.name == "SLACK_WEBHOOK_URL"
    assert caught.value.exit_code == 2


def test_expand_refuses_malformed_references() -> None:
    with pytest.raises(VariableError, match=r"malformed variable reference '\$\{SLACK'"):
        expand("${SLACK", {"SLACK": "x"})


def test_text_without_references_is_unchanged() -> None:
    assert expand("console://", {}) == "console://"


def test_referenced_vars_are_listed_once_in_order() -> None:
    assert referenced_vars("${B} ${A} ${B} $C ${1X}") == ["B", "A"]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("${SLACK", "${SLACK", id="unterminated"),
        pytest.param("${}", "${}", id="empty"),
        pytest.param("${1ABC}", "${1ABC}", id="starts-with-digit"),
        pytest.param("${A-B}", "${A-B}", id="dash"),
    ],
)
def test_reference_errors_name_the_bad_reference(text: str, shown: str) -> None:
    assert reference_errors(f"x {text} ${{GOOD}}") == [
        (
            f"malformed variable reference {shown!r}: write ${{NAME}} with letters, digits and "
            "underscores"
        )
    ]


@pytest.mark.parametrize("scheme", ["mailtos", "ntfys", "apprises", "json", "sendgrid", "gotify"])
@pytest.mark.parametrize("body", ["a:@" * 5000, "a:" * 5000 + "@", "a@" * 5000 + ":", ":@/" * 5000])
def test_hostile_urls_are_scanned_without_backtracking(scheme: str, body: str) -> None:
    """Ambiguous `:` and `@` runs: a backtracking template match would take years here."""
    assert mask(f"{scheme}://{body}?to=x") != ""
    assert mask("a." * 100_000 + "://x").endswith("://x")
