"""One evaluating process per state file: the `<state>.lock` flock, on real files and processes."""

from __future__ import annotations

import fcntl
import os
import selectors
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from store_kit import T0

from memalert.engine.store.lock import StateFileBusyError, StateFileLock, lock_path
from memalert.engine.store.state import StateStore, StateStoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[3]
BOUND = 60.0

# Holds the state file as the daemon does, says "ok", then waits to be killed.
HOLDER = """
import sys
from memalert.engine.store.state import StateStore
store = StateStore(sys.argv[1], exclusive=True)
print("ok", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def holder(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding `path` exclusively."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                assert selector.select(BOUND), "the holder did not start"
            assert process.stdout.readline().strip() == "ok"
            yield process
        finally:
            process.kill()
            process.wait(timeout=BOUND)


def test_a_second_exclusive_store_is_refused_naming_the_file_and_the_holder(path: Path) -> None:
    with StateStore(path, exclusive=True):
        with pytest.raises(StateFileBusyError) as refused:
            StateStore(path, exclusive=True)
        message = str(refused.value)
        assert message.startswith(f"state file {path}: already in use by pid {os.getpid()}")
        assert str(lock_path(path)) in message
        assert "\n" not in message
        assert isinstance(refused.value, StateStoreError)
        assert refused.value.exit_code == 2
    with StateStore(path, exclusive=True):  # closed: free again
        pass


def test_readers_and_silence_writers_share_the_file_with_the_holder(path: Path) -> None:
    with StateStore(path, exclusive=True) as daemon, StateStore(path, create=False) as cli:
        silence_id = cli.add_silence(matchers={"target": "api"}, starts=T0, ends=T0 + 60, now=T0)
        assert [s.silence.id for s in cli.status(T0).silences] == [silence_id]
        assert cli.expire_silence(silence_id, T0 + 1)
        assert daemon.active_silences(T0 + 2) == []


def test_the_lock_file_is_private_and_names_its_holder(path: Path) -> None:
    with StateStore(path, exclusive=True):
        lock = lock_path(path)
        assert lock == path.with_name("state.db.lock")
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        assert lock.read_text() == f"{os.getpid()}\n"


def test_a_holder_that_has_not_written_its_pid_yet_is_another_process(path: Path) -> None:
    StateStore(path).close()
    lock_path(path).write_text("")
    with lock_path(path).open("r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StateFileBusyError, match="already in use by another process,"):
            StateFileLock(path)


@pytest.mark.integration
def test_a_held_file_is_refused_to_another_process_and_freed_by_its_sigkill(
    path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(StateFileBusyError, match=f"already in use by pid {holder.pid},"):
        StateStore(path, exclusive=True)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=BOUND)
    # The kernel dropped the lock with the process: the pid left in the file is not a lock.
    assert lock_path(path).read_text() == f"{holder.pid}\n"
    with StateStore(path, exclusive=True):
        assert lock_path(path).read_text() == f"{os.getpid()}\n"


def test_a_lock_file_that_cannot_be_created_is_a_state_file_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore(path).close()
    lock_path(path).mkdir()  # in the way: not a file
    with pytest.raises(StateStoreError, match="cannot open its lock file") as refused:
        StateStore(path, exclusive=True)
    assert not isinstance(refused.value, StateFileBusyError)
