"""Memory of a cgroup, v1 or v2, and the cgroup a process belongs to.

cgroup v2 (one hierarchy at the mount point):
  usage   memory.current - inactive_file (memory.stat)
  limit   memory.max ("max" = none), the lowest over the group and its ancestors
  swap    memory.swap.current
  PSI     memory.pressure
cgroup v1 (the memory controller mounted at `<root>/memory`):
  usage   memory.usage_in_bytes - total_inactive_file (memory.stat)
  limit   memory.limit_in_bytes, or hierarchical_memory_limit if lower; values of
          2^62 and above are the "unlimited" sentinel (PAGE_COUNTER_MAX pages,
          9223372036854771712 with 4 KiB pages) and mean none
  swap    total_swap (memory.stat, present with swap accounting)
  PSI     none: v1 has no pressure files
Usage is the working set in both versions, as cAdvisor and the kubelet compute it:
inactive file pages are page cache the kernel reclaims before it OOM-kills anyone,
so counting them would page people over a cache warming up. Subtracting them in v2
as well keeps a rule meaning the same on v1 and v2 hosts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from memalert.engine.sources.base import (
    TargetUnavailableError,
    parse_int,
    parse_key_values,
    read_optional,
    read_text,
)
from memalert.engine.sources.psi import Pressure, read_pressure

if TYPE_CHECKING:
    from pathlib import Path

# Any v1 limit at or above this is the kernel's "no limit" value, whatever the page size.
UNLIMITED_SENTINEL = 1 << 62

_V2_USAGE = "memory.current"
_V1_USAGE = "memory.usage_in_bytes"


@dataclass(frozen=True, kw_only=True, slots=True)
class CgroupDir:
    """A cgroup directory that carries memory accounting, and its hierarchy's version."""

    path: Path
    version: int  # 1 or 2


@dataclass(frozen=True, kw_only=True, slots=True)
class CgroupMemory:
    """One reading of a cgroup; None means the kernel does not say (not zero)."""

    where: CgroupDir
    usage_bytes: int
    limit_bytes: int | None
    swap_bytes: int | None
    pressure: Pressure | None


def _accounting_version(directory: Path) -> int | None:
    if (directory / _V2_USAGE).is_file():
        return 2
    if (directory / _V1_USAGE).is_file():
        return 1
    return None


def resolve_cgroup(cgroup_root: Path, path: str) -> CgroupDir:
    """Find the cgroup `path` names: a directory under the mount (`/sys/fs/cgroup/...`), or a
    path as /proc/PID/cgroup shows it (`/kubepods/pod1`), looked up in the v2 hierarchy
    `<root>/<path>` and then in the v1 memory hierarchy `<root>/memory/<path>`.
    """
    root_text = str(cgroup_root).rstrip("/")
    if path == root_text or path.startswith(root_text + "/"):
        candidates = [cgroup_root / path[len(root_text) :].strip("/")]
    else:
        relative = path.strip("/")
        candidates = [cgroup_root / relative, cgroup_root / "memory" / relative]
    for directory in candidates:
        version = _accounting_version(directory)
        if version is not None:
            return CgroupDir(path=directory, version=version)
    looked = " or ".join(str(c) for c in candidates)
    raise TargetUnavailableError(
        f"cgroup {path!r} not found: no {_V2_USAGE} (v2) or {_V1_USAGE} (v1) in {looked}"
        " (the v2 root cgroup has no memory.current: watch the host with `system: true`)"
    )


def memory_cgroup_of(membership: str, cgroup_root: Path) -> CgroupDir | None:
    """The memory cgroup named in `membership` (the text of /proc/PID/cgroup), if readable.

    A container often mounts its own cgroup as the hierarchy's root while
    /proc/PID/cgroup still names the host-side path; when that path does not exist
    under the mount, the mount's root is the process's group (as the JVM assumes).
    """
    found = None
    for line in membership.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy_id, controllers, path = parts
        if "memory" in controllers.split(","):
            found = _existing(cgroup_root / "memory", path, version=1)
        elif hierarchy_id == "0" and controllers == "":
            found = _existing(cgroup_root, path, version=2)
        # Only one hierarchy carries the memory controller; the other finds nothing.
        if found is not None:
            return found
    return None


def _existing(hierarchy: Path, path: str, *, version: int) -> CgroupDir | None:
    usage = _V2_USAGE if version == 2 else _V1_USAGE
    for directory in (hierarchy / path.strip("/"), hierarchy):
        if (directory / usage).is_file():
            return CgroupDir(path=directory, version=version)
    return None


def read_cgroup_memory(
    where: CgroupDir, cgroup_root: Path, *, own_limits: dict[str, int | None] | None = None
) -> CgroupMemory:
    """Usage, limit, swap and PSI of one cgroup; garbage in a required file names the file.

    `own_limits` memoises each directory's own v2 `memory.max` (see `cgroup_limit`).
    """
    # Strings, not Paths: joining Paths cost more than reading a hundred groups' files.
    directory = str(where.path)
    stat_path = f"{directory}/memory.stat"
    stat_text = read_optional(stat_path)
    stat = parse_key_values(stat_text, stat_path) if stat_text else {}
    if where.version == 2:
        usage_path = f"{directory}/{_V2_USAGE}"
        usage = parse_int(read_text(usage_path), usage_path)
        inactive_file = stat.get("inactive_file", 0)
        swap_path = f"{directory}/memory.swap.current"
        swap_text = read_optional(swap_path)
        swap = None if swap_text is None else parse_int(swap_text, swap_path)
        pressure = read_pressure(f"{directory}/memory.pressure")
    else:
        usage_path = f"{directory}/{_V1_USAGE}"
        usage = parse_int(read_text(usage_path), usage_path)
        # total_* fields include child groups, as usage_in_bytes does.
        inactive_file = stat.get("total_inactive_file", stat.get("inactive_file", 0))
        swap = stat.get("total_swap")
        pressure = None
    return CgroupMemory(
        where=where,
        usage_bytes=max(0, usage - inactive_file),
        limit_bytes=cgroup_limit(where, cgroup_root, stat=stat, own_limits=own_limits),
        swap_bytes=swap,
        pressure=pressure,
    )


def cgroup_limit(
    where: CgroupDir,
    cgroup_root: Path,
    *,
    stat: dict[str, int] | None = None,
    own_limits: dict[str, int | None] | None = None,
) -> int | None:
    """The lowest memory limit that applies to the group, None if none does.

    With `own_limits` (one tick's memo), the ancestors that a hundred services
    share (system.slice) are read once per tick, not once per service.
    """
    if where.version == 1:
        path = where.path / "memory.limit_in_bytes"
        if stat is None:
            stat_text = read_optional(where.path / "memory.stat")
            stat = parse_key_values(stat_text, where.path / "memory.stat") if stat_text else {}
        limits = [parse_int(read_text(path), path), stat.get("hierarchical_memory_limit")]
        real = [limit for limit in limits if limit is not None and limit < UNLIMITED_SENTINEL]
        return min(real, default=None)
    # v2 publishes only each group's own memory.max, so walk up to the mount.
    # As strings (Paths made and compared per level cost more than the reads).
    root = str(cgroup_root)
    prefix = root.rstrip("/") + "/"
    lowest = None
    directory = str(where.path)
    memo = own_limits if own_limits is not None else {}
    while directory == root or directory.startswith(prefix):
        if directory not in memo:
            max_path = f"{directory}/memory.max"
            text = read_optional(max_path)
            memo[directory] = (
                None if text is None or text.strip() == "max" else parse_int(text, max_path)
            )
        limit = memo[directory]
        if limit is not None:
            lowest = limit if lowest is None else min(lowest, limit)
        if directory == root:
            break
        directory = directory.rpartition("/")[0] or "/"
    return lowest
