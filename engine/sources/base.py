"""What every reader shares: one error type carrying the reason, and file reads that raise it."""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

from memalert.engine.core.errors import MemalertError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path


class TargetUnavailableError(MemalertError, LookupError):
    """A target could not be read this time: it is gone, access was denied, or a file is garbage.

    The tracker turns it into `up` 0 and keeps `reason` in `last_errors`; it never
    leaves a tick.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# Kernel files report their size as 0 or 4096, so read in chunks until EOF.
_CHUNK = 1 << 16


def read_text(path: str | Path) -> str:
    """Read a small kernel file whole; OS errors become `TargetUnavailableError` naming the file.

    Plain os.open/os.read: a tick reads three files per process, and a buffered
    file object per read is most of the cost of a 500-process tick.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = [os.read(fd, _CHUNK)]
            while len(chunks[-1]) == _CHUNK:
                chunks.append(os.read(fd, _CHUNK))
        finally:
            os.close(fd)
        return b"".join(chunks).decode("utf-8", "replace")
    except FileNotFoundError:
        raise TargetUnavailableError(f"{path} not found") from None
    except PermissionError:
        raise TargetUnavailableError(f"permission denied reading {path}") from None
    except OSError as exc:
        # ESRCH: the process exited between open() and read(); same as not found.
        if exc.errno == errno.ESRCH:
            raise TargetUnavailableError(f"{path} not found") from None
        raise TargetUnavailableError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_small_file(path: str | Path, limit: int) -> bytes:
    """At most `limit` bytes of a regular file the user names (a pid file), never more.

    Such a path may be a FIFO (open would block until a writer comes), a device
    (/dev/zero never ends) or a huge file: open without blocking, refuse anything
    but a regular file, and read `limit + 1` bytes so "too long" can be told apart.
    The errors name the file but never its content, which may be a secret.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise TargetUnavailableError(f"{path} is not a regular file")
            data = os.read(fd, limit + 1)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise TargetUnavailableError(f"{path} not found") from None
    except PermissionError:
        raise TargetUnavailableError(f"permission denied reading {path}") from None
    except OSError as exc:
        raise TargetUnavailableError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise TargetUnavailableError(f"{path} is longer than {limit} bytes")
    return data


def read_optional(path: str | Path) -> str | None:
    """Like `read_text`, but None where the kernel does not offer the file or denies it."""
    try:
        return read_text(path)
    except TargetUnavailableError:
        return None


def parse_int(text: str, path: str | Path) -> int:
    """An integer from a one-value kernel file; garbage becomes `TargetUnavailableError`."""
    try:
        return int(text.strip())
    except ValueError:
        got = text.strip()[:40]
        raise TargetUnavailableError(f"{path}: expected an integer, got {got!r}") from None


def parse_key_values(
    text: str, path: str | Path, keys: Iterable[str] | None = None
) -> dict[str, int]:
    """`key value [kB]` lines (memory.stat, meminfo, status, smaps_rollup) as ints, in bytes.

    The unit is read per line: /proc files give sizes in kB (KiB, in fact) beside
    plain counts such as `Threads`, memory.stat gives bytes. Trusting the suffix
    rather than a per-file scale is what keeps RSS from coming out 1024x off.

    Lines that are not `key number` are skipped: the kernel adds fields over time
    and smaps_rollup starts with an address line. With `keys`, only those lines are
    looked up: status has some 55 lines and a snapshot needs five of them.
    """
    lines = text.splitlines() if keys is None else _lines_of(text, keys)
    values: dict[str, int] = {}
    for line in lines:
        parts = line.split()
        if len(parts) < 2:
            continue
        try:
            number = int(parts[1])
        except ValueError:
            continue
        values[parts[0].rstrip(":")] = number * 1024 if parts[2:3] == ["kB"] else number
    if not values and text.strip():
        # The text itself is not quoted: it is the watched process's business (its name).
        raise TargetUnavailableError(f"{path}: no 'key value' lines")
    return values


def _lines_of(text: str, keys: Iterable[str]) -> list[str]:
    text = "\n" + text
    lines = []
    for key in keys:
        start = text.find(f"\n{key}:")
        if start < 0:
            start = text.find(f"\n{key} ")
        if start >= 0:
            end = text.find("\n", start + 1)
            lines.append(text[start + 1 : end] if end >= 0 else text[start + 1 :])
    return lines
