"""`memalert exec --trace-python`: the top growing allocation sites of a Python command.

Every Python process of the command's tree imports a `sitecustomize` that memalert
puts first on PYTHONPATH: it starts tracemalloc, keeps a baseline snapshot once the
warm-up is over, and every `MEMALERT_TRACE_EVERY` seconds (and at exit) writes the
sites that grew since that baseline to `<dir>/<pid>.json`. memalert reads those
files when the command has ended. A command with a sitecustomize of its own loses it
for the run (docs/ci.md says so); a non-Python command is simply not traced.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

TOP_SITES = 15

SITECUSTOMIZE = r"""
import atexit, json, os, threading, time, tracemalloc

_dir = os.environ.get("MEMALERT_TRACE_DIR")
if _dir:
    tracemalloc.start(int(os.environ.get("MEMALERT_TRACE_FRAMES", "1")))
    _started = time.monotonic()
    _warmup = float(os.environ.get("MEMALERT_TRACE_WARMUP", "1"))
    _every = float(os.environ.get("MEMALERT_TRACE_EVERY", "2"))
    _state = {"baseline": None}
    _lock = threading.Lock()

    def _dump():
        with _lock:
            snapshot = tracemalloc.take_snapshot().filter_traces(
                (tracemalloc.Filter(False, tracemalloc.__file__),
                 tracemalloc.Filter(False, __file__))
            )
            if _state["baseline"] is None:
                if time.monotonic() - _started < _warmup:
                    return
                _state["baseline"] = snapshot
                return
            top = snapshot.compare_to(_state["baseline"], "lineno")[:TOP]
            sites = [
                {"file": s.traceback[0].filename, "line": s.traceback[0].lineno,
                 "size_diff": s.size_diff, "size": s.size, "count_diff": s.count_diff}
                for s in top if s.size_diff > 0
            ]
            path = os.path.join(_dir, f"{os.getpid()}.json")
            with open(path + ".tmp", "w") as out:
                json.dump({"pid": os.getpid(), "sites": sites}, out)
            os.replace(path + ".tmp", path)

    def _loop():
        while True:
            time.sleep(_every)
            try:
                _dump()
            except Exception:
                pass

    threading.Thread(target=_loop, name="memalert-trace", daemon=True).start()
    atexit.register(_dump)
""".replace("TOP]", f"{TOP_SITES}]")


@dataclass(frozen=True, kw_only=True, slots=True)
class GrowingSite:
    file: str
    line: int
    size_diff: int  # bytes more than at the baseline, after the warm-up
    count_diff: int
    pids: int  # processes of the tree in which this site grew


def tracing_env(env: Mapping[str, str], directory: Path, *, warmup: float) -> dict[str, str]:
    """`env` with the sitecustomize first on PYTHONPATH and its settings."""
    hook = directory / "hook"
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    python_path = os.pathsep.join(p for p in (str(hook), env.get("PYTHONPATH", "")) if p)
    return {
        **env,
        "PYTHONPATH": python_path,
        "MEMALERT_TRACE_DIR": str(directory),
        "MEMALERT_TRACE_WARMUP": f"{warmup:.3f}",
    }


def read_sites(directory: Path) -> list[GrowingSite]:
    """The growing sites of every traced process, summed per site, largest first."""
    merged: dict[tuple[str, int], list[int]] = {}
    for dump in sorted(directory.glob("*.json")):
        try:
            sites = json.loads(dump.read_text(encoding="utf-8"))["sites"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a process killed mid-write leaves nothing worth reading
        for site in sites:
            try:
                key = (str(site["file"]), int(site["line"]))
                size, count = int(site["size_diff"]), int(site["count_diff"])
            except (KeyError, TypeError, ValueError):
                continue
            totals = merged.setdefault(key, [0, 0, 0])
            totals[0] += size
            totals[1] += count
            totals[2] += 1
    ranked = sorted(merged.items(), key=lambda item: item[1][0], reverse=True)[:TOP_SITES]
    return [
        GrowingSite(file=f, line=n, size_diff=s, count_diff=c, pids=p)
        for (f, n), (s, c, p) in ranked
    ]
