"""One evaluating process per state file: an exclusive `flock` on `<state>.lock`, held while open.

Two daemons on one state file would both evaluate and both drain the outbox,
so every alert would be notified twice. The daemon (any `AlertEngine` that
opens its own store) takes this lock before its first tick; the commands that
only read or edit the state (`memalert status`, `memalert silence ...`) never
take it and keep working beside it.

`flock` rather than a pid file: the kernel drops the lock when the process
ends however it ends (SIGKILL, OOM killer, power cut), so a lock is never
stale and nothing has to guess whether a recorded pid is still alive. The
holder writes its pid into the file only so a refused start can name it.
The lock belongs to the open file, not the process (unlike `lockf`), so a
second engine in the same process is refused too. The file stays after exit;
it is empty of meaning unless locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from memalert.engine.core.units import parse_decimal
from memalert.engine.store.schema import StateStoreError

_OWNER_ONLY = 0o600
_PID_BYTES = 32  # "4194304\n" fits many times over


def lock_path(state_path: Path) -> Path:
    """`state.db` -> `state.db.lock`, beside it (SQLite's own `-wal`/`-shm` use dashes)."""
    return state_path.with_name(f"{state_path.name}.lock")


class StateFileBusyError(StateStoreError):
    """Another process evaluates on this state file; the message names it and its pid."""


class StateFileLock:
    """The held lock; `release` (or the process ending) lets the next daemon start."""

    def __init__(self, state_path: Path) -> None:
        """Take the lock at once or raise: StateFileBusyError when held, StateStoreError else."""
        self.path = lock_path(state_path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _OWNER_ONLY)
        except OSError as exc:
            raise StateStoreError(
                f"state file {state_path}: cannot open its lock file {self.path}: {exc.strerror}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _recorded_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateStoreError(
                    f"state file {state_path}: cannot lock {self.path}: {exc.strerror}"
                ) from exc
            who = "another process" if holder is None else f"pid {holder}"
            raise StateFileBusyError(
                f"state file {state_path}: already in use by {who}, a memalert daemon "
                f"holding {self.path}; stop it or pass another --state file"
            ) from None
        self._fd: int | None = fd
        self._record_pid(fd)

    @staticmethod
    def _record_pid(fd: int) -> None:
        # Only after the lock is ours (the file may hold a killed holder's pid
        # until then). Only messages need it: a full disk does not stop the start.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Closing the file drops the lock; the pid is left, meaningless once unlocked."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _recorded_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, _PID_BYTES, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return parse_decimal(text)
