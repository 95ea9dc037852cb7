"""The memory limit of the running process: its cgroup's (v1 or v2), else physical RAM.

The in-process `LeakDetector` divides by this for `memory_pressure`; it lives here,
with the other kernel readers, so the allocation analysis reads no files itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from memalert.engine.sources.base import TargetUnavailableError, read_optional
from memalert.engine.sources.cgroup import cgroup_limit, memory_cgroup_of
from memalert.engine.sources.procfs import read_host_memory


def process_memory_limit(
    proc_root: Path = Path("/proc"),
    cgroup_root: Path = Path("/sys/fs/cgroup"),
    physical_bytes: int | None = None,
) -> int:
    """The tighter of this process's cgroup memory limit (v1 or v2) and physical RAM.

    Unreadable or garbage cgroup files fall back to RAM: the budget only scales
    `memory_pressure`, so that is the documented behaviour rather than an error.
    """
    # MemTotal, read as the host target reads it: psutil (1.5 MB) is not loaded for one number.
    physical = (
        physical_bytes if physical_bytes is not None else read_host_memory(proc_root).total_bytes
    )
    membership = read_optional(proc_root / str(os.getpid()) / "cgroup")
    where = memory_cgroup_of(membership, cgroup_root) if membership else None
    try:
        limit = cgroup_limit(where, cgroup_root) if where is not None else None
    except TargetUnavailableError:
        limit = None
    return physical if limit is None else min(limit, physical)
