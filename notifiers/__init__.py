"""Delivery of grouped notifications: the contract, the scheme table and the notifiers.

- `notifiers.base`: `Notifier`, `DeliveryResult`, `UrlResult`, `NotifierError`, `Transport`.
- `notifiers.registry`: `build_notifier` / `build_notifiers` from `NotifierConfig`s.
- `notifiers.render`: one notification as text, Markdown, HTML or Alertmanager JSON.
- `notifiers.apprise_notifier`, `notifiers.console`, `notifiers.file`: the notifiers.
- `notifiers.testing`: `RecordingNotifier`, a real notifier for tests and dry-run.

Nothing is imported here, so `notifiers.testing` loads without apprise.
"""

from __future__ import annotations
