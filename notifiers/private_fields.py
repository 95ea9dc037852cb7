"""apprise's own knowledge of which parts of each service's URL are secret, as a table.

apprise describes every service's URL (`Apprise.details()`): its templates
(`{schema}://{bot_token}/{targets}`) and, per template token and query
argument, whether it is `private`. `memalert check` and `core.secrets.mask`
read that knowledge from `memalert/engine/core/apprise_private.json`, made
from it here, so that checking a rule file neither imports apprise's ~200
plugins nor keeps a hand-made list of services in step with apprise.

Refresh the table after upgrading apprise (a test fails until it matches
the installed apprise; docs/notifiers.md):

    python -m memalert.notifiers.private_fields > engine/core/apprise_private.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from apprise import Apprise
from apprise.url import URL_TOKEN_ALIASES

# Query arguments every apprise URL reads as the password (`URLBase.parse_url`).
_PASSWORD_ARGS = ("password", *sorted(a for a, c in URL_TOKEN_ALIASES.items() if c == "password"))


def _service(details: dict[str, Any], common_args: set[str]) -> dict[str, Any]:
    tokens: dict[str, dict[str, Any]] = details["tokens"]
    private = {name for name, token in tokens.items() if token.get("private")}
    args: dict[str, dict[str, Any]] = details["args"]
    private_args = {
        name
        for name, arg in args.items()
        if arg.get("private") or arg.get("alias_of") in private or name in private
    }
    return {
        # Only the templates with a private token say where a secret sits.
        "templates": [t for t in details["templates"] if any(f"{{{p}}}" in t for p in private)],
        "private": sorted(private),
        # Tokens that stand for several path segments (`{targets}`).
        "lists": sorted(n for n, t in tokens.items() if str(t.get("type", "")).startswith("list")),
        "private_args": sorted(private_args),
        # Arguments apprise reads as settings (`?auth=token` picks ntfy's mode).
        "public_args": sorted(set(args) - private_args - common_args),
    }


def private_fields_table() -> dict[str, Any]:
    """What every service's URL holds that is secret, by scheme (see the module's doc)."""
    schemes: dict[str, Any] = {}
    details = Apprise().details(show_requirements=False, show_disabled=True)
    # The arguments of apprise's URL base class, which every service reads.
    common_args = set.intersection(*(set(s["details"]["args"]) for s in details["schemas"]))
    for schema in details["schemas"]:
        service = _service(schema["details"], common_args)
        for protocol in (*(schema["protocols"] or ()), *(schema["secure_protocols"] or ())):
            schemes[protocol.lower()] = service
    return {
        "apprise": details["version"],
        "common_args": sorted(common_args),
        "password_args": list(_PASSWORD_ARGS),
        "schemes": dict(sorted(schemes.items())),
    }


def main() -> int:
    json.dump(private_fields_table(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
