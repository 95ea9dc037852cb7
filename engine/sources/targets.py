"""Sampling of one target (docs/targets.md) into the tracker metrics of docs/rules.md#metrics.

One function per target kind, registered in `_SAMPLERS`. Process-like kinds
(`self`, `pid`, `pidfile`, `process`) first resolve to root pids, then optionally
to their whole tree, then sum the processes' memory. Anything that keeps a target
from being read raises `TargetUnavailableError` with the reason; the tracker turns it
into `up` 0.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from memalert.engine.core.regexes import backtracking_problem, match_chars
from memalert.engine.core.units import parse_decimal
from memalert.engine.sources.base import TargetUnavailableError, read_optional, read_small_file
from memalert.engine.sources.cgroup import (
    CgroupMemory,
    cgroup_limit,
    memory_cgroup_of,
    read_cgroup_memory,
    resolve_cgroup,
)
from memalert.engine.sources.naming import pod_names
from memalert.engine.sources.procfs import (
    HostMemory,
    ProcessInfo,
    list_processes,
    pid_file,
    process_name,
    read_cmdline,
    read_host_memory,
    read_process_memory,
)
from memalert.engine.sources.psi import Pressure, read_pressure

if TYPE_CHECKING:
    from memalert.engine.core.model import TargetSpec

    Metrics = dict[str, float]


class TickView:
    """What one tick reads about the machine, each piece at most once.

    Five hundred targets share one scan of the process table, one read of
    /proc/meminfo and one read per cgroup, so a tick costs about one read per
    process sampled.
    """

    def __init__(
        self,
        *,
        proc_root: Path,
        cgroup_root: Path,
        self_pid: int,
        patterns: PatternCache,
        clock: Callable[[], float] = time.monotonic,
        host_root: Path = Path("/"),
    ) -> None:
        self.clock = clock
        self.host_root = host_root
        self.proc_root = proc_root
        self.cgroup_root = cgroup_root
        self.self_pid = self_pid
        self.patterns = patterns
        self._cmdlines: dict[int, list[str]] = {}
        self._domains: dict[str, tuple[int | None, Pressure | None]] = {}
        # Each cgroup directory's own v2 memory.max, read once per tick.
        self.cgroup_limits: dict[str, int | None] = {}

    @cached_property
    def processes(self) -> list[ProcessInfo]:
        return list_processes(self.proc_root)

    @cached_property
    def pod_names(self) -> dict[str, str]:
        """Pod uid -> namespace/name, from the kubelet's log directories (none: {})."""
        try:
            # listdir: the kubelet names one directory per pod; no Path per entry needed.
            entries = os.listdir(self.host_root / "var/log/pods")  # noqa: PTH208
        except OSError:
            return {}
        return pod_names(entries)

    @cached_property
    def _children(self) -> dict[int, list[int]]:
        children: dict[int, list[int]] = {}
        for info in self.processes:
            children.setdefault(info.ppid, []).append(info.pid)
        return children

    @cached_property
    def _host_reading(self) -> HostMemory | TargetUnavailableError:
        try:
            return read_host_memory(self.proc_root)
        except TargetUnavailableError as exc:
            return exc

    def host(self) -> HostMemory:
        reading = self._host_reading
        if isinstance(reading, TargetUnavailableError):
            raise TargetUnavailableError(reading.reason)
        return reading

    @cached_property
    def host_pressure(self) -> Pressure | None:
        return read_pressure(self.proc_root / "pressure" / "memory")

    @property
    def physical_bytes(self) -> int | None:
        """None where meminfo is unreadable: limits then come from cgroups alone."""
        reading = self._host_reading
        return None if isinstance(reading, TargetUnavailableError) else reading.total_bytes

    def cmdline(self, pid: int) -> list[str]:
        if pid not in self._cmdlines:
            try:
                self._cmdlines[pid] = read_cmdline(self.proc_root, pid)
            except TargetUnavailableError:
                self._cmdlines[pid] = []
        return self._cmdlines[pid]

    def with_descendants(self, roots: list[int]) -> list[int]:
        """The roots and every process below them, each once."""
        seen: dict[int, None] = {}
        stack = list(reversed(roots))
        while stack:
            pid = stack.pop()
            if pid not in seen:
                seen[pid] = None
                stack.extend(self._children.get(pid, ()))
        return list(seen)

    def domain(self, pid: int) -> tuple[int | None, Pressure | None]:
        """The memory limit that applies to `pid` and the PSI of that domain.

        The limit is the process's cgroup limit where it has one, else physical RAM;
        PSI is its v2 cgroup's, else the host's.
        """
        return self.domain_of(read_optional(pid_file(self.proc_root, pid, "cgroup")) or "")

    def domain_of(self, membership: str) -> tuple[int | None, Pressure | None]:
        """`domain` from the text of a /proc/PID/cgroup (kept by discovery across ticks)."""
        # Processes of one group share that text: key on it, and look the group up
        # once per tick.
        if membership not in self._domains:
            where = memory_cgroup_of(membership, self.cgroup_root)
            limit = pressure = None
            if where is not None:
                try:
                    limit = cgroup_limit(where, self.cgroup_root, own_limits=self.cgroup_limits)
                except TargetUnavailableError:
                    # A garbled limit file must not take the process down with it:
                    # physical RAM then stands in, as for a process without a limit.
                    limit = None
                if where.version == 2:
                    pressure = read_pressure(where.path / "memory.pressure")
            self._domains[membership] = (
                _cap(limit, self.physical_bytes),
                pressure or self.host_pressure,
            )
        return self._domains[membership]


@dataclass(frozen=True, slots=True)
class ProcessPattern:
    """A compiled name or cmdline regex and how many characters it may look at."""

    regex: re.Pattern[str]
    chars: int


class PatternCache:
    """Compiled name and cmdline regexes, kept across ticks; a bad one is a target error.

    Patterns that could backtrack without bound are refused here as well as by
    `check`: a TargetSpec may come from the Python API without a rule file.
    """

    def __init__(self) -> None:
        self._compiled: dict[str, ProcessPattern] = {}

    def get(self, pattern: str, what: str) -> ProcessPattern:
        compiled = self._compiled.get(pattern)
        if compiled is None:
            try:
                regex = re.compile(pattern)
            except (re.error, OverflowError, RecursionError) as exc:
                raise TargetUnavailableError(f"invalid {what} regex {pattern!r}: {exc}") from None
            problem = backtracking_problem(pattern)
            if problem is not None:
                raise TargetUnavailableError(f"{what} regex {pattern!r} refused: {problem}")
            compiled = ProcessPattern(regex, match_chars(pattern))
            self._compiled[pattern] = compiled
        return compiled


def sample_target(spec: TargetSpec, view: TickView) -> Metrics:
    """The tracker metrics (docs/rules.md#metrics) of one target but `up` (the caller adds it)."""
    sampler = _SAMPLERS.get(spec.kind)
    if sampler is None:
        raise TargetUnavailableError(f"unknown target kind {spec.kind!r}")
    return sampler(spec, view)


# -- process-like targets ------------------------------------------------------


def _self_pids(spec: TargetSpec, view: TickView) -> list[int]:
    return [view.self_pid]


def _pid_pids(spec: TargetSpec, view: TickView) -> list[int]:
    if spec.pid is None or spec.pid <= 0:
        raise TargetUnavailableError(f"target {spec.name!r}: pid {spec.pid!r} is not a process id")
    return [spec.pid]


# The longest one process-matching target may spend matching patterns in a tick.
MATCH_BUDGET_SECONDS = 2.0
# A pid and a newline, with room for the spaces and CRs some writers add.
_PIDFILE_MAX_BYTES = 64


def _pidfile_pids(spec: TargetSpec, view: TickView) -> list[int]:
    if not spec.pidfile:
        raise TargetUnavailableError(f"target {spec.name!r}: no pidfile given")
    try:
        data = read_small_file(spec.pidfile, _PIDFILE_MAX_BYTES)
    except TargetUnavailableError as exc:
        raise TargetUnavailableError(f"pidfile: {exc.reason}") from None
    # Never quoted: the path may lead (by a symlink, a typo) to a file holding a secret.
    pid = parse_decimal(data.strip().decode("ascii", "replace"))
    if pid is None or pid <= 0:
        raise TargetUnavailableError(f"pidfile {spec.pidfile} does not hold a process id")
    return [pid]


def _matching_pids(spec: TargetSpec, view: TickView) -> list[int]:
    """Every process whose name and cmdline match the patterns given (both when both are)."""
    name_re = cmd_re = None
    if spec.name_pattern is not None:
        name_re = view.patterns.get(spec.name_pattern, "process name")
    if spec.cmdline_pattern is not None:
        cmd_re = view.patterns.get(spec.cmdline_pattern, "process cmdline")
    if name_re is None and cmd_re is None:
        raise TargetUnavailableError(
            f"target {spec.name!r}: process needs a name or cmdline pattern"
        )
    matches = []
    # Any local user sets argv: beside the pattern's shape and the input's length,
    # a budget per target bounds what a thousand such processes can cost a tick.
    give_up_at = view.clock() + MATCH_BUDGET_SECONDS
    for checked, info in enumerate(view.processes):
        if view.clock() > give_up_at:
            raise TargetUnavailableError(
                f"matching took over {MATCH_BUDGET_SECONDS:g}s ({checked} of "
                f"{len(view.processes)} processes checked); see docs/targets.md"
            )
        if name_re is not None:
            # Reading cmdline only where comm was truncated keeps name matching cheap.
            cmdline = view.cmdline(info.pid) if len(info.comm) >= 15 else []
            name = process_name(info, cmdline)[: name_re.chars]
            if not name_re.regex.fullmatch(name):
                continue
        if cmd_re is not None:
            joined = " ".join(view.cmdline(info.pid))[: cmd_re.chars]
            if not cmd_re.regex.search(joined):
                continue
        matches.append(info.pid)
    if not matches:
        wanted = " and ".join(
            f"{what} {pattern!r}"
            for what, pattern in (("name", spec.name_pattern), ("cmdline", spec.cmdline_pattern))
            if pattern is not None
        )
        raise TargetUnavailableError(f"no process matches {wanted}")
    return matches


_PID_RESOLVERS: dict[str, Callable[[TargetSpec, TickView], list[int]]] = {
    "self": _self_pids,
    "pid": _pid_pids,
    "pidfile": _pidfile_pids,
    "process": _matching_pids,
}


def _process_target(spec: TargetSpec, view: TickView) -> Metrics:
    """Sum over the target's processes; processes that exit mid-tick are left out.

    RSS sums count shared pages once per process, so a tree's `rss_bytes` overstates
    what it holds; `uss_bytes` (private pages) sums exactly and is given only when
    every process's smaps_rollup was readable, since a partial sum would mislead.
    """
    roots = _PID_RESOLVERS[spec.kind](spec, view)
    pids = view.with_descendants(roots) if spec.children else roots
    memories = []
    reason = ""
    for pid in pids:
        try:
            memories.append(read_process_memory(view.proc_root, pid, with_uss=True))
        except TargetUnavailableError as exc:
            # A named process that is gone makes the target down; a match or a child
            # that exits between the scan and the read is just no longer part of it.
            if spec.kind != "process" and pid == roots[0]:
                source = f" (pid from pidfile {spec.pidfile})" if spec.kind == "pidfile" else ""
                raise TargetUnavailableError(exc.reason + source) from None
            reason = exc.reason
    if not memories:
        raise TargetUnavailableError(
            f"none of the {len(pids)} matching processes was readable: {reason}"
        )
    rss = sum(m.rss_bytes for m in memories)
    metrics: Metrics = {
        "rss_bytes": rss,
        "vms_bytes": sum(m.vms_bytes for m in memories),
        "swap_bytes": sum(m.swap_bytes for m in memories),
    }
    uss_values = [m.uss_bytes for m in memories if m.uss_bytes is not None]
    if len(uss_values) == len(memories):
        metrics["uss_bytes"] = sum(uss_values)
    limit, pressure = view.domain(memories[0].pid)
    return _with_limit(metrics, rss, limit, pressure)


# -- host and cgroup -----------------------------------------------------------


def _system_target(spec: TargetSpec, view: TickView) -> Metrics:
    """The host: used = total - available, so page cache the kernel can drop is not "used"."""
    host = view.host()
    used = max(0, host.total_bytes - host.available_bytes)
    metrics: Metrics = {
        "rss_bytes": used,
        "vms_bytes": host.committed_bytes,
        "swap_bytes": host.swap_used_bytes,
    }
    return _with_limit(metrics, used, host.total_bytes, view.host_pressure)


def _cgroup_target(spec: TargetSpec, view: TickView) -> Metrics:
    if not spec.cgroup:
        raise TargetUnavailableError(f"target {spec.name!r}: no cgroup path given")
    where = resolve_cgroup(view.cgroup_root, spec.cgroup)
    memory = read_cgroup_memory(where, view.cgroup_root, own_limits=view.cgroup_limits)
    return cgroup_metrics(memory, view)


def cgroup_metrics(memory: CgroupMemory, view: TickView) -> Metrics:
    """The tracker metrics of one cgroup reading (a `cgroup` or a discovered target)."""
    metrics: Metrics = {"rss_bytes": memory.usage_bytes}
    if memory.swap_bytes is not None:
        metrics["swap_bytes"] = memory.swap_bytes
    limit = _cap(memory.limit_bytes, view.physical_bytes)
    return _with_limit(metrics, memory.usage_bytes, limit, memory.pressure)


def table_process_metrics(info: ProcessInfo, membership: str, view: TickView) -> Metrics:
    """A discovered process's metrics from its process-table row alone (no read of its own).

    No PSI: it is its cgroup's or the host's, the same for hundreds of processes,
    and those targets carry it.
    """
    metrics: Metrics = {"rss_bytes": info.rss_bytes, "vms_bytes": info.vms_bytes}
    limit, _ = view.domain_of(membership)
    return _with_limit(metrics, info.rss_bytes, limit, None)


_SAMPLERS: dict[str, Callable[[TargetSpec, TickView], Metrics]] = {
    "self": _process_target,
    "pid": _process_target,
    "pidfile": _process_target,
    "process": _process_target,
    "system": _system_target,
    "cgroup": _cgroup_target,
}


def _cap(limit: int | None, physical: int | None) -> int | None:
    """A limit above physical RAM cannot be reached: the effective limit is the lower one."""
    if limit is None or physical is None:
        return limit if limit is not None else physical
    return min(limit, physical)


def _with_limit(
    metrics: Metrics, used: float, limit: int | None, pressure: Pressure | None
) -> Metrics:
    if limit:
        metrics["limit_bytes"] = limit
        metrics["pressure"] = used / limit
    if pressure is not None:
        metrics["psi_some_avg10"] = pressure.some_avg10
        if pressure.full_avg10 is not None:
            metrics["psi_full_avg10"] = pressure.full_avg10
    return metrics
