"""The committed table of apprise's private URL fields is what the installed apprise says."""

from __future__ import annotations

import json
from importlib import resources

from memalert.notifiers.private_fields import private_fields_table


def test_the_committed_table_matches_the_installed_apprise() -> None:
    committed = json.loads(
        resources.files("memalert.engine.core").joinpath("apprise_private.json").read_text()
    )
    # On a mismatch, refresh it (docs/notifiers.md):
    #   python -m memalert.notifiers.private_fields > engine/core/apprise_private.json
    assert committed == json.loads(json.dumps(private_fields_table()))


def test_the_table_knows_the_services_that_carry_tokens_in_their_urls() -> None:
    schemes = private_fields_table()["schemes"]
    assert "bot_token" in schemes["tgram"]["private"]
    assert {"apikey", "integrationkey"} <= set(schemes["pagerduty"]["private"])
    assert "token" in schemes["ntfys"]["private_args"]
    assert "auth" in schemes["ntfys"]["public_args"]
