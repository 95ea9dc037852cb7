"""Discovered targets: every process or cgroup worth watching, found anew each tick.

The reading edge of docs/targets.md#discovered-targets; naming and identity are
the pure `memalert.engine.sources.naming`. Per tick a `discover: processes`
target costs the process-table scan the tick makes anyway (`stat` carries RSS
and virtual size) and, once per process lifetime, its `cmdline`, owner and
`cgroup`; `smaps_rollup` is never read (the leak detector works on RSS here).
A `discover: cgroups` target walks the slices and container groupings of the
cgroup mount and reads each group's memory files.

Anything odd about one process or cgroup (gone mid-read, a zombie, permission
denied, a garbled file) skips it for this tick with a debug-level reason; the
other targets are sampled as usual.
"""

from __future__ import annotations

import functools
import heapq
import json
import logging
import os
import pwd
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memalert.engine.sources.base import TargetUnavailableError, read_optional, read_small_file
from memalert.engine.sources.cgroup import CgroupDir, read_cgroup_memory
from memalert.engine.sources.naming import (
    SHORT_ID,
    Entry,
    Identity,
    NameBook,
    cgroup_descends,
    cgroup_identity,
    cgroup_name,
    cgroup_workload,
    printable,
    process_identity,
)
from memalert.engine.sources.procfs import pid_file, read_cmdline
from memalert.engine.sources.targets import cgroup_metrics, table_process_metrics

if TYPE_CHECKING:
    from pathlib import Path

    from memalert.engine.core.model import TargetSpec
    from memalert.engine.sources.procfs import ProcessInfo
    from memalert.engine.sources.targets import Metrics, TickView

log = logging.getLogger(__name__)

# A watched target stays watched down to this share of the floor, so one that
# hovers around `min_rss` is not dropped and found again every other tick.
KEEP_BELOW_FLOOR = 0.5
# The cgroup walk never goes deeper or visits more directories than this.
MAX_CGROUP_DEPTH = 8
MAX_CGROUP_DIRS = 10_000


@dataclass(frozen=True, slots=True)
class Found:
    """One discovered target this tick: its name entry and its tracker metrics."""

    entry: Entry
    metrics: Metrics


def discover(spec: TargetSpec, view: TickView, book: NameBook, now: float) -> list[Found]:
    """The instances of a `discover` target this tick; `book` remembers their names."""
    if spec.discover == "processes":
        found = _processes(spec, view, book, now)
    elif spec.discover == "cgroups":
        found = _cgroups(spec, view, book, now)
    else:
        raise TargetUnavailableError(f"target {spec.name!r}: unknown discover {spec.discover!r}")
    return found


def _kept(rss: float, watched: bool, floor: float) -> bool:
    return rss >= (floor * KEEP_BELOW_FLOOR if watched else floor)


# -- processes ---------------------------------------------------------------------


# A process above the floor: its table row, holder and entry (None: not named yet).
_Candidate = tuple["ProcessInfo", tuple[int, int], Entry | None]


def _processes(spec: TargetSpec, view: TickView, book: NameBook, now: float) -> list[Found]:
    # (process, its holder, its entry if already named): the book is asked once per process.
    candidates: list[_Candidate] = []
    floor = spec.min_rss_bytes
    for info in view.processes:
        if info.state.startswith(("Z", "X")):
            log.debug("process %d skipped: a zombie (exited, not reaped)", info.pid)
        elif info.vms_bytes:  # kernel threads (no address space) never are candidates
            holder = (info.pid, info.start_ticks)
            entry = book.held_by(holder)
            if _kept(info.rss_bytes, entry is not None, floor):
                candidates.append((info, holder, entry))
    if len(candidates) > spec.max_targets:
        # Only over the cap does size decide (largest first); below it order is immaterial.
        candidates = heapq.nlargest(spec.max_targets, candidates, key=_size_rank)
    book.release_all_but({holder for _, holder, _ in candidates})
    # New processes are named largest first, so of one identity the largest gets the plain name.
    fresh = sorted((c for c in candidates if c[2] is None), key=_size_rank, reverse=True)
    found = []
    for info, holder, held in (*(c for c in candidates if c[2] is not None), *fresh):
        if held is None:
            try:
                identity, details = _identify(view.proc_root, info)
            except TargetUnavailableError as exc:
                log.debug("process %d skipped: %s", info.pid, exc.reason)
                continue
            entry = book.assign(holder, identity, now)
            entry.info = {**details, "discovered": spec.name}
            entry.membership = read_optional(pid_file(view.proc_root, info.pid, "cgroup")) or ""
        else:
            entry = book.assign(holder, held.identity, now)
        metrics = table_process_metrics(info, entry.membership, view)
        found.append(Found(entry=entry, metrics=metrics))
    return found


def _size_rank(candidate: _Candidate) -> tuple[int, int, int]:
    """Larger ranks higher; of equal size the older process, then the lower pid."""
    info = candidate[0]
    return (info.rss_bytes, -info.start_ticks, -info.pid)


def _identify(proc_root: Path, info: ProcessInfo) -> tuple[Identity, dict[str, str]]:
    """Identity and the details messages show; read once per process lifetime."""
    cmdline = read_cmdline(proc_root, info.pid)
    try:
        uid = (proc_root / str(info.pid)).stat().st_uid
    except FileNotFoundError:
        raise TargetUnavailableError(f"process {info.pid} not found") from None
    except OSError as exc:
        raise TargetUnavailableError(f"cannot stat process {info.pid}: {exc.strerror}") from None
    user = _user(uid)
    identity = process_identity(info.comm, cmdline, user)
    return identity, {
        "pid": str(info.pid),
        "user": user,
        "cmdline": printable(" ".join(cmdline) or f"[{info.comm}]"),
    }


@functools.lru_cache(maxsize=256)
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)  # no passwd entry (a container's user): the number is the name


# -- cgroups -----------------------------------------------------------------------


def _cgroups(spec: TargetSpec, view: TickView, book: NameBook, now: float) -> list[Found]:
    readings = []
    for parts, where in walk_cgroups(view.cgroup_root):
        try:
            memory = read_cgroup_memory(where, view.cgroup_root, own_limits=view.cgroup_limits)
        except TargetUnavailableError as exc:
            log.debug("cgroup %s skipped: %s", where.path, exc.reason)
            continue
        holder = "/" + "/".join(parts)
        if _kept(memory.usage_bytes, book.held_by(holder) is not None, spec.min_rss_bytes):
            readings.append((parts, holder, memory))
    readings.sort(key=lambda r: -r[2].usage_bytes)
    del readings[spec.max_targets :]
    book.release_all_but({path for _, path, _ in readings})
    found = []
    for parts, path, memory in readings:
        entry = book.held_by(path)
        identity = entry.identity if entry is not None else _cgroup_identity(parts, view)
        entry = book.assign(path, identity, now)
        if not entry.info:
            entry.info = {"cgroup": path, "discovered": spec.name}
        found.append(Found(entry=entry, metrics=cgroup_metrics(memory, view)))
    return found


def _cgroup_identity(parts: tuple[str, ...], view: TickView) -> Identity:
    """Once per cgroup lifetime: the container's or pod's name, where the runtime keeps it."""
    workload = cgroup_workload(parts)
    name = None
    if workload is not None and workload.kind == "docker":
        name = _docker_name(view.host_root, workload.id)
    elif workload is not None and workload.kind == "pod":
        name = view.pod_names.get(workload.id)
    return cgroup_identity(parts, name)


# Docker keeps each container's name in its config; read at most this much of it.
_DOCKER_CONFIG_MAX = 1 << 20


def _docker_name(host_root: Path, container: str) -> str | None:
    path = host_root / "var/lib/docker/containers" / container / "config.v2.json"
    try:
        name = json.loads(read_small_file(path, _DOCKER_CONFIG_MAX)).get("Name")
    except (TargetUnavailableError, ValueError, AttributeError) as exc:
        reason = exc.reason if isinstance(exc, TargetUnavailableError) else "not a JSON object"
        log.debug("docker container %s: no name (%s)", container[:SHORT_ID], reason)
        return None
    if not isinstance(name, str):
        return None
    return name.lstrip("/") or None  # Docker writes "/web"


def walk_cgroups(root: Path) -> list[tuple[tuple[str, ...], CgroupDir]]:
    """Every service, container and pod group under the mount: v1's memory hierarchy, else v2."""
    if (root / "memory" / "memory.usage_in_bytes").is_file():
        hierarchy, version, usage = root / "memory", 1, "memory.usage_in_bytes"
    else:
        hierarchy, version, usage = root, 2, "memory.current"
    found = []
    stack: list[tuple[str, ...]] = [()]
    visited = 0
    while stack and visited < MAX_CGROUP_DIRS:
        parts = stack.pop()
        visited += 1
        directory = hierarchy.joinpath(*parts)
        try:
            with os.scandir(directory) as entries:
                children = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
        except OSError as exc:
            log.debug("cgroup %s not listed: %s", directory, exc.strerror)
            continue
        for child in reversed(children):
            inner = (*parts, child)
            if cgroup_name(inner) is not None and (directory / child / usage).is_file():
                found.append((inner, CgroupDir(path=directory / child, version=version)))
            elif len(inner) < MAX_CGROUP_DEPTH and cgroup_descends(inner):
                stack.append(inner)
    return found
