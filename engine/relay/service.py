"""The running relay: its state file, its delivery worker and its HTTP server, started and
stopped in the order that loses nothing (docs/scale-out.md, "Operating the relay")."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from memalert.engine.delivery.attempt import RetryPolicy
from memalert.engine.delivery.worker import DeliveryWorker
from memalert.engine.http.server import ServerHandle, serve_app
from memalert.engine.relay.app import DEFAULT_MAX_BODY, TOKEN_ENV, RelayApp, RelayConfig
from memalert.engine.rules.load import load_rules
from memalert.engine.store.schema import default_state_path
from memalert.engine.store.state import StateStore
from memalert.notifiers.base import Notifier
from memalert.notifiers.registry import build_notifiers

DEFAULT_PORT = 9465


def default_relay_state(env: Mapping[str, str]) -> Path:
    """Beside `memalert run`'s state file, so one host can run both."""
    return default_state_path(env).with_name("relay.db")


class Relay:
    """Owns one state file (exclusively): webhooks in, notifications out."""

    def __init__(
        self,
        config: RelayConfig,
        store: StateStore,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Callable[[], float] = time.time,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.store = store
        self.worker = DeliveryWorker(store, notifiers, clock=clock, retry=retry)
        self.app = RelayApp(config, store, delivery_stats=lambda: self.worker.stats, clock=clock)
        self._server: ServerHandle | None = None

    @classmethod
    def from_files(
        cls,
        paths: Sequence[str | Path],
        *,
        state_path: str | Path | None = None,
        env: Mapping[str, str] = os.environ,
        dedup_window: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> Relay:
        """RuleFileError, NotifierError or StateStoreError (busy: another relay owns it)."""
        ruleset = load_rules(paths, env=env)
        notifiers = build_notifiers(ruleset.notifiers, env=env)
        config = RelayConfig(
            rules={rule.name: rule for rule in ruleset.rules},
            notifiers=frozenset(notifiers),
            token=env.get(TOKEN_ENV) or None,
            dedup_window=ruleset.repeat_interval / 2 if dedup_window is None else dedup_window,
        )
        store = StateStore(state_path or default_relay_state(env), env=env, exclusive=True)
        return cls(config, store, notifiers, retry=retry)

    @property
    def url(self) -> str | None:
        return None if self._server is None else self._server.url

    def start(self, host: str, port: int, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        """Deliver what a previous run left queued, then take webhooks (OSError: no bind)."""
        self.worker.start()
        try:
            self._server = serve_app(self.app, host, port, max_body=max_body, what="memalert relay")
        except OSError:
            self.worker.stop()
            raise

    def stop(self, flush_timeout: float) -> bool:
        """Take no more webhooks, deliver for up to `flush_timeout`; True if nothing is left.
        What is left stays in the state file for the next start."""
        if self._server is not None:
            self._server.close()
            self._server = None
        flushed = self.worker.flush(time.time() + flush_timeout)
        self.worker.stop(timeout=flush_timeout)
        self.store.close()
        return flushed
