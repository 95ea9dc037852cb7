"""Per-process and host memory from a /proc tree (the real one, or a fake one in tests).

The files read, all documented in proc(5):
- `PID/status` for VmRSS, VmSize, VmSwap, RssAnon...: kernel counters, cheap to read;
- `PID/smaps_rollup` for USS (Private_*): the kernel walks the page tables, so it
  costs more and needs ptrace-read access; it is optional;
- `PID/stat` for the name (comm) and parent pid, `PID/cmdline` for matching;
- `meminfo` for the host.
psutil reads the same files but takes its /proc root from a process-wide global
and builds a Process object per pid; reading them here keeps the root injectable
and a 500-process tick inside its time budget.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from memalert.engine.core.units import parse_decimal
from memalert.engine.sources.base import (
    TargetUnavailableError,
    parse_key_values,
    read_optional,
    read_text,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

# The kernel truncates comm to 15 bytes (TASK_COMM_LEN - 1).
_COMM_MAX = 15
# `stat` and `statm` count resident memory in pages.
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, kw_only=True, slots=True)
class ProcessMemory:
    """One process's memory in bytes, from `status` (and `smaps_rollup` for USS)."""

    pid: int
    rss_bytes: int
    vms_bytes: int
    swap_bytes: int
    # Anonymous resident memory: malloc heap and arenas, mmap'd blocks, stacks. This is
    # where a leak lands; the `[heap]` mapping alone misses glibc's mmap'd chunks.
    anon_bytes: int
    shmem_bytes: int
    uss_bytes: int | None


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which
# is most of the cost of scanning a thousand-process table.
@dataclass(kw_only=True, slots=True)
class ProcessInfo:
    """One row of the process table: enough to match by name, walk the tree and rank by size.

    `stat` carries the kernel's RSS and virtual size counters (the same as `statm`),
    so discovered targets cost no read beyond the table scan. Fields a short or
    odd `stat` line lacks are 0.
    """

    pid: int
    ppid: int
    comm: str
    state: str = ""
    start_ticks: int = 0  # start time after boot in clock ticks: with pid, one process
    rss_bytes: int = 0
    vms_bytes: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class HostMemory:
    total_bytes: int
    available_bytes: int
    swap_used_bytes: int
    committed_bytes: int


def pid_file(proc_root: Path, pid: int, name: str) -> str:
    # A string, not a Path: joining Paths costs more than reading the file.
    return f"{proc_root}/{pid}/{name}"


# The status and smaps_rollup lines a ProcessMemory is made of.
MEMORY_STATUS_KEYS = ("VmRSS", "VmSize", "VmSwap", "RssAnon", "RssShmem", "VmData")
USS_ROLLUP_KEYS = ("Private_Clean", "Private_Dirty", "Private_Hugetlb")


def read_status(
    proc_root: Path, pid: int, keys: Iterable[str] | None = MEMORY_STATUS_KEYS
) -> dict[str, int]:
    """Numeric fields of `PID/status` (`keys`, or all if None), sizes in bytes.

    A vanished pid and a zombie say so plainly rather than naming a file.
    """
    path = pid_file(proc_root, pid, "status")
    try:
        text = read_text(path)
    except TargetUnavailableError:
        if not (proc_root / str(pid)).exists():
            raise TargetUnavailableError(f"process {pid} not found") from None
        raise
    try:
        return parse_key_values(text, path, keys)
    except TargetUnavailableError:
        # A zombie's status stops after its name, state and ids: no Vm* lines.
        if _state_field(text).startswith("Z"):
            raise TargetUnavailableError(
                f"process {pid} is a zombie: it has exited and its parent has not reaped it"
            ) from None
        raise


def _state_field(status_text: str) -> str:
    """The `State:` field of a status text (`Z (zombie)`), or ''."""
    start = status_text.find("State:")
    if start < 0:
        return ""
    end = status_text.find("\n", start)
    return status_text[start + len("State:") : end if end >= 0 else None].strip()


def read_smaps_rollup(
    proc_root: Path, pid: int, keys: Iterable[str] | None = USS_ROLLUP_KEYS
) -> dict[str, int] | None:
    """Fields of `smaps_rollup` in bytes; None where denied or the kernel (< 4.14) lacks it."""
    path = pid_file(proc_root, pid, "smaps_rollup")
    text = read_optional(path)
    if text is None:
        return None
    try:
        fields = parse_key_values(text, path, keys)
    except TargetUnavailableError:
        return None
    return fields if "Private_Clean" in fields else None


def uss_from_rollup(rollup: dict[str, int] | None) -> int | None:
    """Unique set size: the private pages, what the kernel frees when the process exits."""
    if rollup is None:
        return None
    return (
        rollup["Private_Clean"] + rollup.get("Private_Dirty", 0) + rollup.get("Private_Hugetlb", 0)
    )


def read_uss(proc_root: Path, pid: int) -> int | None:
    return uss_from_rollup(read_smaps_rollup(proc_root, pid))


def has_address_space(status: dict[str, int]) -> bool:
    """Kernel threads and zombies have no Vm* lines: they hold no user memory at all."""
    return "VmRSS" in status


def memory_from_status(pid: int, status: dict[str, int], uss: int | None) -> ProcessMemory:
    anon = status.get("RssAnon")
    return ProcessMemory(
        pid=pid,
        rss_bytes=status.get("VmRSS", 0),
        vms_bytes=status.get("VmSize", 0),
        swap_bytes=status.get("VmSwap", 0),
        # Kernels before 4.5 lack RssAnon; VmData (private writable mappings) is the
        # closest figure they offer, an upper bound since it counts untouched pages.
        anon_bytes=anon if anon is not None else status.get("VmData", 0),
        shmem_bytes=status.get("RssShmem", 0),
        uss_bytes=uss,
    )


def read_process_memory(proc_root: Path, pid: int, *, with_uss: bool) -> ProcessMemory:
    status = read_status(proc_root, pid)
    uss = None
    if with_uss:
        uss = read_uss(proc_root, pid) if has_address_space(status) else 0
    return memory_from_status(pid, status, uss)


def read_process_info(proc_root: Path, pid: int) -> ProcessInfo:
    """Name and parent from `PID/stat`, whose comm field may itself hold spaces and ')'."""
    path = pid_file(proc_root, pid, "stat")
    text = read_text(path)
    open_paren, close_paren = text.find("("), text.rfind(")")
    # Split only as far as rss (field 24): the 28 fields after it are not needed.
    rest = text[close_paren + 1 :].split(None, 22)
    if open_paren < 0 or close_paren < open_paren or len(rest) < 2:
        raise TargetUnavailableError(f"{path}: unexpected format")
    try:
        ppid = int(rest[1])
    except ValueError:
        raise TargetUnavailableError(f"{path}: bad parent pid {rest[1]!r}") from None
    # proc(5) fields 22-24 (starttime, vsize, rss in pages) are rest[19:22]; a
    # short line lacks some (0). Indexed, not a comprehension: a thousand per tick.
    if len(rest) > 21:
        start, vms, rss_pages = _count(rest[19]), _count(rest[20]), _count(rest[21])
    else:
        start, vms, rss_pages = (*[_count(field) for field in rest[19:22]], 0, 0, 0)[:3]
    return ProcessInfo(
        pid=pid,
        ppid=ppid,
        comm=text[open_paren + 1 : close_paren],
        state=rest[0],
        start_ticks=start,
        rss_bytes=rss_pages * PAGE_SIZE,
        vms_bytes=vms,
    )


def _count(field: str) -> int:
    """A kernel-written decimal field: isdigit and int, cheaper than parse_decimal's
    regex over a thousand processes (garbage is 0, never an error)."""
    return int(field) if field.isascii() and field.isdigit() else 0


def list_pids(proc_root: Path) -> list[int]:
    try:
        # listdir, not Path.iterdir: no Path object per entry on a host with many processes.
        names = os.listdir(proc_root)  # noqa: PTH208
        pids = (parse_decimal(entry) for entry in names)
        return sorted(pid for pid in pids if pid is not None)
    except OSError as exc:
        raise TargetUnavailableError(f"cannot list {proc_root}: {exc.strerror or exc}") from None


def list_processes(proc_root: Path) -> list[ProcessInfo]:
    """The process table; processes that exit while it is read are left out."""
    table = []
    for pid in list_pids(proc_root):
        try:
            table.append(read_process_info(proc_root, pid))
        except TargetUnavailableError:
            continue
    return table


def read_cmdline(proc_root: Path, pid: int) -> list[str]:
    """The arguments; empty for kernel threads and zombies."""
    text = read_text(pid_file(proc_root, pid, "cmdline"))
    return [arg for arg in text.split("\0") if arg]


def process_name(info: ProcessInfo, cmdline: list[str]) -> str:
    """comm, or argv[0]'s basename where comm was truncated to 15 bytes (as psutil does)."""
    if len(info.comm) >= _COMM_MAX and cmdline:
        base = PurePosixPath(cmdline[0]).name
        if base.startswith(info.comm):
            return base
    return info.comm


def read_host_memory(proc_root: Path) -> HostMemory:
    path = proc_root / "meminfo"
    fields = parse_key_values(read_text(path), path)
    if "MemTotal" not in fields:
        raise TargetUnavailableError(f"{path}: no MemTotal line")
    available = fields.get("MemAvailable")
    if available is None:
        # Kernels before 3.14: the estimate `free` used before MemAvailable existed.
        available = fields.get("MemFree", 0) + fields.get("Buffers", 0) + fields.get("Cached", 0)
    return HostMemory(
        total_bytes=fields["MemTotal"],
        available_bytes=available,
        swap_used_bytes=max(0, fields.get("SwapTotal", 0) - fields.get("SwapFree", 0)),
        committed_bytes=fields.get("Committed_AS", 0),
    )
