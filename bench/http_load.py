"""The HTTP API under load while a real AlertEngine ticks every second.

Issue 5: 200 concurrent clients for 10 s against /metrics and /alerts while the
engine ticks every second: no error, no missed tick; report requests per second
and p99 latency. The engine is a real `AlertEngine` (rule file with
`interval: 1s`, watching this process and the host, state in a temporary
SQLite file) started with its scheduler, served by `memalert.engine.http.server.serve`
on 127.0.0.1. The clients run in a child process (asyncio, one keep-alive
connection each, alternating /metrics and /alerts), so they do not share the
server's interpreter lock. Figures are printed beside the reference figures as
ratios (above 1 meets them); the exit status is 1 on any error or missed tick.

    python bench/http_load.py [--clients 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PATHS = ("/metrics", "/alerts")
# Reference figures for the ratio columns: a p99 a scraper never notices, and
# a rate that 200 scrapers every second would need.
P99_TARGET_MS = 250.0
RATE_TARGET = 200.0
RULES = """\
version: 1
interval: 1s
targets:
  - {name: bench, self: true}
  - {name: host, system: true}
rules:
  - name: bench-rss
    metric: rss_bytes
    above: {warning: 1MiB}
  - name: host-pressure
    metric: pressure
    above: {warning: 0.0}
"""


# -- the client side (a child process) ------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _client(host: str, port: int, deadline: float, tally: Tally, n: int) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        tally.errors.append(f"connect: {exc}")
        return
    try:
        while time.monotonic() < deadline:
            path = PATHS[n % len(PATHS)]
            n += 1
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            tally.latencies.append(time.perf_counter() - started)
            if status != b"200":
                tally.errors.append(f"{path}: HTTP {status.decode()}")
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        tally.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def _load(host: str, port: int, clients: int, seconds: float) -> dict[str, object]:
    tally = Tally()
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(_client(host, port, deadline, tally, n) for n in range(clients)))
    elapsed = time.monotonic() - started
    errors = tally.errors
    ordered = sorted(tally.latencies)
    return {
        "requests": len(ordered),
        "elapsed": elapsed,
        "errors": errors[:20],
        "error_count": len(errors),
        "p50_ms": 1000 * statistics.median(ordered) if ordered else None,
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else None,
    }


def client_main(host: str, port: int, clients: int, seconds: float) -> None:
    print(json.dumps(asyncio.run(_load(host, port, clients, seconds))))


# -- the server side -------------------------------------------------------------------------


def server_main(clients: int, seconds: float) -> int:
    from memalert.engine.http.server import serve  # noqa: PLC0415
    from memalert.engine.live.alert_engine import AlertEngine  # noqa: PLC0415 - after sys.path is set
    from memalert.notifiers.testing import RecordingNotifier  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="memalert-load-") as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(RULES)
        engine = AlertEngine.from_files(
            [rules],
            state_path=Path(tmp) / "state.db",
            env={},
            # The alerts fire (so /alerts has content) into a notifier that only records.
            notifiers={"console": RecordingNotifier("console")},
        )
        engine.start()
        handle = serve(engine, port=0, env={})
        try:
            before = engine.latest()
            load = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--client",
                    f"{handle.host}:{handle.port}",
                    "--clients",
                    str(clients),
                    "--seconds",
                    str(seconds),
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=seconds + 120,
            )
            after = engine.latest()
        finally:
            handle.close()
            engine.stop(timeout=5)
    result = json.loads(load.stdout)
    ticks = after.ticks_total - before.ticks_total
    missed = after.missed_ticks_total - before.missed_ticks_total
    tick_errors = after.tick_errors_total - before.tick_errors_total
    rate = result["requests"] / result["elapsed"]
    p99 = result["p99_ms"]
    print(f"engine: real AlertEngine, interval 1s; {clients} clients for {seconds:g} s")
    print(f"requests: {result['requests']}, errors: {result['error_count']}")
    for error in result["errors"]:
        print(f"  {error}")
    print(f"ticks during the load: {ticks}, missed: {missed}, failed: {tick_errors}")
    ratio = rate / RATE_TARGET
    print(f"throughput: {rate:.0f} requests/s (target {RATE_TARGET:.0f}/s) ratio {ratio:.2f}")
    print(
        f"latency: p50 {result['p50_ms']:.1f} ms, p99 {p99:.1f} ms "
        f"(target {P99_TARGET_MS:.0f} ms) ratio {P99_TARGET_MS / p99:.2f}"
    )
    ok = result["error_count"] == 0 and missed == 0 and tick_errors == 0
    print("result: " + ("no error, no missed tick" if ok else "FAILED"))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client", metavar="HOST:PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        host, _, port = args.client.rpartition(":")
        client_main(host, int(port), args.clients, args.seconds)
        return 0
    return server_main(args.clients, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
