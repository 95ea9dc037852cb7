"""Delivery of grouped notifications: the contract, the scheme table and the notifiers.

- `memalert.notifiers.base`: `Notifier`, `DeliveryResult`, `UrlResult`, `NotifierError`,
  `Transport`.
- `memalert.notifiers.registry`: `build_notifier` / `build_notifiers` from `NotifierConfig`s.
- `memalert.notifiers.render`: one notification as text, Markdown, HTML or Alertmanager JSON.
- `memalert.notifiers.apprise_notifier`, `.console`, `.file`: the notifiers.
- `memalert.notifiers.testing`: `RecordingNotifier`, a real notifier for tests and dry-run.

Nothing is imported here, so `memalert.notifiers.testing` loads without apprise.
"""

from __future__ import annotations
