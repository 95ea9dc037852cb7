"""Which URLs of its notifier an outbox item has reached, so a retry goes only to the others.

Alertmanager retries each integration of a receiver on its own; memalert's unit
of retry is the outbox item, but its retries go only to the URLs that have not
accepted it yet (docs/operations.md, "Retries"): Slack, having taken the
message, does not get it again while the mail server is down.

The progress is each URL's latest outcome, named by the URL's index in the
notifier's `Destinations.urls`, kept with the fingerprint of that URL list. A
reload may add, remove or reorder URLs, after which an index may name another
URL: the progress then no longer applies and the item goes to every URL again
(a duplicate rather than a gap: delivery is at-least-once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from memalert.notifiers.base import DeliveryResult

if TYPE_CHECKING:
    from memalert.notifiers.base import Destinations


@dataclass(frozen=True, kw_only=True, slots=True)
class UrlProgress:
    """Each URL's latest outcome for one item (`outcome.urls[i]` is URL i's), and the
    fingerprint of the URL list the indexes refer to."""

    fingerprint: str
    outcome: DeliveryResult

    @classmethod
    def of(cls, destinations: Destinations, result: DeliveryResult) -> UrlProgress | None:
        """The progress a send to every URL made; None unless `result` names each URL once
        (a notifier that raised names none: nothing is known, the next try goes to all)."""
        by_index = sorted(result.urls, key=lambda u: u.index)
        if [u.index for u in by_index] != list(range(len(destinations.urls))):
            return None
        outcome = DeliveryResult.from_urls(result.notifier, tuple(by_index))
        return cls(fingerprint=destinations.fingerprint, outcome=outcome)

    def applies_to(self, destinations: Destinations) -> bool:
        """Whether the indexes still name the same URLs (the list was not changed by a reload)."""
        return self.fingerprint == destinations.fingerprint and len(self.outcome.urls) == len(
            destinations.urls
        )

    @property
    def owed(self) -> frozenset[int]:
        """The URLs that have not accepted the item: where the next try goes."""
        return frozenset(u.index for u in self.outcome.urls if not u.ok)

    def after(self, result: DeliveryResult) -> UrlProgress:
        """This progress updated by `result`, a send to some of the URLs."""
        latest = {u.index: u for u in self.outcome.urls}
        latest.update((u.index, u) for u in result.urls if u.index in latest)
        outcome = DeliveryResult.from_urls(
            self.outcome.notifier, tuple(latest[i] for i in sorted(latest))
        )
        return UrlProgress(fingerprint=self.fingerprint, outcome=outcome)

    def shortfall(self) -> str:
        """For a dead letter some URLs accepted: which did, and which never got it."""
        if not self.outcome.partial:
            return ""
        reached = ", ".join(u.url for u in self.outcome.urls if u.ok)
        missed = ", ".join(u.url for u in self.outcome.urls if not u.ok)
        return f"; delivered to {reached} but never to {missed}"
