"""The `memalert run` process: logging, signals, the engine's threads, a bounded last flush.

- SIGTERM / SIGINT: stop ticking, keep delivering queued notifications for at
  most `flush_timeout` seconds, exit 0. What is still queued stays in the
  state file and goes out on the next start.
- SIGHUP: load the rule files again; on any error keep the rules in use and
  log every error as `memalert check` prints it (FILE:LINE:COL: message).

Signals are blocked in every thread and taken with `sigwait` by the main
thread, so no handler ever runs on top of code holding a lock; the engine's
threads inherit the mask, so a signal is never delivered to one of them.
Logs go to stderr with secrets masked.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from memalert.engine.core.errors import EXIT_BAD_INPUT, EXIT_OK, MemalertError, SetupError
from memalert.engine.core.secrets import mask
from memalert.engine.core.units import format_duration
from memalert.engine.live.alert_engine import DEFAULT_STOP_TIMEOUT, AlertEngine
from memalert.engine.live.parts import TIME_SCALE_VARIABLE, time_scale_from
from memalert.notifiers.base import NotifierError

if TYPE_CHECKING:
    from memalert.engine.export.otlp import OtlpExport
    from memalert.engine.http.server import ServerHandle

log = logging.getLogger("memalert.daemon")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("debug", "info", "warning", "error")
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
HANDLED_SIGNALS = STOP_SIGNALS | {signal.SIGHUP}


class MaskingFormatter(logging.Formatter):
    """Formats, then masks: a secret in a message, an argument or a traceback never shows."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def configure_logging(level: str = "info", stream: TextIO | None = None) -> logging.Handler:
    """Send every log record to stderr (or `stream`), masked; returns the handler added."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(MaskingFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The tick scheduler reports each skipped tick itself; APScheduler's INFO
    # lines (job added, scheduler started) and its WARNING about the same skip
    # would only repeat it.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    return handler


class Daemon:
    """Runs a built engine until SIGTERM or SIGINT; reloads it on SIGHUP (main thread only).

    With `listen` (host, port), the HTTP API (`memalert.engine.http.server`) serves the
    engine's snapshots from before the first tick until the engine stops.
    """

    def __init__(
        self,
        engine: AlertEngine,
        *,
        flush_timeout: float = DEFAULT_STOP_TIMEOUT,
        listen: tuple[str, int] | None = None,
        env: Mapping[str, str] = os.environ,
        otlp_endpoint: str | None = None,
    ) -> None:
        self._engine = engine
        self._flush_timeout = flush_timeout
        self._listen = listen
        self._env = env
        self._otlp_endpoint = otlp_endpoint

    def run(self) -> int:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        server = None
        otlp = None
        try:
            try:
                # Bound before any tick: a taken port stops the start, not a running daemon.
                server = self._serve() if self._listen is not None else None
                otlp = self._start_otlp() if self._otlp_endpoint is not None else None
            except MemalertError as exc:
                self._engine.close()
                return refuse(exc)
            self._engine.start()
            ruleset = self._engine.ruleset
            log.info(
                "memalert running: %d rule(s), every %s, state %s (pid %d)",
                len(ruleset.rules),
                format_duration(ruleset.interval),
                self._engine.store.path,
                os.getpid(),
            )
            while True:
                received = signal.sigwait(HANDLED_SIGNALS)
                if received in STOP_SIGNALS:
                    break
                log.info("SIGHUP: reloading %s", ", ".join(map(str, self._engine.paths)))
                self._reload()
            log.info(
                "%s: stopping; delivering queued notifications for up to %s",
                signal.Signals(received).name,
                format_duration(self._flush_timeout),
            )
            flushed = self._engine.stop(self._flush_timeout)
            self._discard_late_signals()
        finally:
            if otlp is not None:
                otlp.close()  # flushes the last export
            if server is not None:
                server.close()
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        if flushed:
            log.info("stopped; every notification was delivered")
        else:
            log.warning(
                "stopped with notifications still queued; the next run on %s sends them",
                self._engine.store.path,
            )
        return EXIT_OK

    def _reload(self) -> None:
        """A reload never ends the daemon: whatever fails, the rules in use stay."""
        try:
            self._engine.reload()
        except Exception as exc:  # noqa: BLE001 - the engine reports rule errors itself
            log.error(
                "reload failed: %s; keeping the rules in use", mask(f"{type(exc).__name__}: {exc}")
            )

    def _serve(self) -> ServerHandle:
        from memalert.engine.http.server import serve  # noqa: PLC0415 - only with --listen

        assert self._listen is not None
        try:
            return serve(self._engine, *self._listen, env=self._env)
        except OSError as exc:
            host, port = self._listen
            raise SetupError(f"cannot listen on {host}:{port}: {exc}") from None

    def _start_otlp(self) -> OtlpExport:
        """Raises MissingExtraError without the OTLP extra."""
        # Imported here: the OTLP extra is optional and heavy.
        from memalert.engine.export.otlp import OtlpConfig, start_otlp_export  # noqa: PLC0415

        config = OtlpConfig(
            endpoint=self._otlp_endpoint or None, interval=self._engine.ruleset.interval
        )
        export = start_otlp_export(self._engine, config)
        log.info(
            "exporting metrics over OTLP to %s", mask(config.endpoint or "the OTEL_* endpoint")
        )
        return export

    def _discard_late_signals(self) -> None:
        """Signals that came during the flush would act after the mask is lifted: take them."""
        while signal.sigpending() & HANDLED_SIGNALS:
            late = signal.sigtimedwait(HANDLED_SIGNALS, 0)
            if late is None:
                return
            log.info("%s during shutdown: already stopping", signal.Signals(late.si_signo).name)


def run_daemon(
    paths: Sequence[str | Path],
    *,
    state_path: str | Path | None = None,
    env: Mapping[str, str] = os.environ,
    flush_timeout: float = DEFAULT_STOP_TIMEOUT,
    log_level: str = "info",
    listen: tuple[str, int] | None = None,
    otlp_endpoint: str | None = None,
) -> int:
    """`memalert run`: 0 after a graceful stop, 1 for invalid rules or notifiers, 2 bad state,
    an address the HTTP API cannot listen on, or OTLP asked for without its extra.

    `otlp_endpoint` None exports nothing; "" takes the endpoint from the OTEL_* variables.
    """
    configure_logging(log_level)
    try:
        scale = time_scale_from(env)
    except ValueError as exc:
        log.error("not started: %s", exc)
        return EXIT_BAD_INPUT
    if scale != 1.0:
        log.warning(
            "%s=%g: the clock runs %g times faster (tests, demos)",
            TIME_SCALE_VARIABLE,
            scale,
            scale,
        )
    try:
        engine = AlertEngine.from_files(
            paths, state_path=state_path, env=env, time_scale=scale, history=listen is not None
        )
    except MemalertError as exc:
        return refuse(exc)
    daemon = Daemon(
        engine, flush_timeout=flush_timeout, listen=listen, env=env, otlp_endpoint=otlp_endpoint
    )
    return daemon.run()


def refuse(exc: MemalertError) -> int:
    """Log why the daemon does not start, one line per problem; the error's exit code."""
    if len(exc.diagnostics) == 1 and not exc.diagnostics[0].file:
        log.error("not started: %s", exc.diagnostics[0].message)
    else:
        for diagnostic in exc.diagnostics:
            log.error("%s", diagnostic)
        log.error("not started: %d error(s) in %s", len(exc.diagnostics), _what(exc))
    return exc.exit_code


def _what(exc: MemalertError) -> str:
    return "the notifiers" if isinstance(exc, NotifierError) else "the rule files"
