"""`memalert top` in a real terminal (tmux) and through a pipe, against a real daemon.

A `memalert run --listen` daemon (interval 1 s) watches two child processes,
one of which holds enough memory to fire its rule. tmux runs a shell in a
120x30 pane on its own socket; the test types `memalert top` into it, reads
the screen with `capture-pane`, presses keys, and checks that quitting leaves
the alternate screen and the tty settings as they were. Every wait polls with
a deadline; the tmux server, the daemon and the children are ended at the end.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

# Imported first (isort's order): it puts notifier_kit's directory on sys.path.
from daemon_e2e_kit import DEADLINE, MEMALERT, REPO, Child, Daemon, wait_for
from memchildren import MiB, stop
from notifier_kit import free_port

from memalert.engine.http.top_table import MAX_TARGET_WIDTH, shorten

pytestmark = pytest.mark.integration

TMUX = shutil.which("tmux")
LONG_NAME = "worker.nightly-reindex-of-the-customer-search-documents-shard-07-of-16"
RULES = """\
version: 1
interval: 1s
targets:
  - {{name: big, pid: {big}}}
  - {{name: {long}, pid: {idle}}}
rules:
  - name: big-rss
    metric: rss_bytes
    above: {{warning: {warning}}}
"""


class Pane:
    """A shell in a tmux pane on a private server (its own socket, so no other tmux is touched)."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        assert TMUX is not None
        self.base = [TMUX, "-S", str(tmp_path / "tmux.sock")]
        shell = "env PS1='$ ' bash --norc --noprofile"
        self.tmux("new-session", "-d", "-x", "120", "-y", "30", "-s", "top", shell, env=env)

    def tmux(self, *argv: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [*self.base, *argv],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=True,
            env=env,
        )
        return done.stdout

    def type(self, line: str) -> None:
        self.tmux("send-keys", "-t", "top", "-l", line)
        self.tmux("send-keys", "-t", "top", "Enter")

    def press(self, key: str) -> None:
        self.tmux("send-keys", "-t", "top", key)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "top")

    def alternate(self) -> bool:
        return self.tmux("display-message", "-p", "-t", "top", "#{alternate_on}").strip() == "1"

    def wait_for_text(self, *texts: str) -> str:
        wait_for(f"{texts} on the screen", lambda: all(t in self.screen() for t in texts))
        return self.screen()

    def close(self) -> None:
        subprocess.run(
            [*self.base, "kill-server"], capture_output=True, timeout=DEADLINE, check=False
        )


@pytest.fixture
def children() -> Iterator[tuple[Child, Child]]:
    big = Child()
    try:
        idle = Child()
        try:
            big.hold(60)
            yield big, idle
        finally:
            stop(idle.process)
    finally:
        stop(big.process)


@pytest.fixture
def daemon(tmp_path: Path, children: tuple[Child, Child]) -> Iterator[tuple[Daemon, str]]:
    big, idle = children
    rules = tmp_path / "rules.yaml"
    warning = big.baseline + 30 * MiB  # the idle child stays near the baseline
    rules.write_text(
        RULES.format(big=big.process.pid, idle=idle.process.pid, long=LONG_NAME, warning=warning)
    )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    started = Daemon(rules, tmp_path / "state.db", env, tmp_path / "daemon.log")
    address = f"127.0.0.1:{free_port()}"
    started.extra = ("--listen", address)
    try:
        started.start()
        yield started, address
    finally:
        started.kill()


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (apt-get install tmux)")
def test_top_draws_the_targets_in_a_terminal_and_q_or_ctrl_c_restore_it(
    tmp_path: Path, daemon: tuple[Daemon, str]
) -> None:
    _, address = daemon
    env = dict(daemon[0].env, TERM="xterm", LANG="C.UTF-8")
    pane = Pane(tmp_path, env)
    command = shlex.join([*MEMALERT, "top", "--connect", address, "--interval", "1s"])
    try:
        pane.type(f"cd {shlex.quote(str(REPO))}; stty -g > {tmp_path}/stty.before")
        pane.type(f"{command}; echo top-exit=$?")
        screen = pane.wait_for_text("FIRING warning big-rss", "2 targets")
        assert pane.alternate()
        lines = screen.splitlines()
        title, header = lines[0], lines[1]
        assert title.startswith(f"memalert top  {address}  2 targets  alerts: 1 firing")
        assert header.split() == [
            *("TARGET", "RSS", "LIMIT", "GROWTH/H", "CONF", "TO", "LIMIT", "ALERT"),
        ]
        big = next(line for line in lines if line.startswith("big "))
        assert "MiB" in big
        assert "B/h" in big
        assert "%" in big
        # The long name is shortened in the middle; the row still fits the 120 columns.
        long_row = next(line for line in lines if line.startswith("worker.nightly-"))
        shown = long_row.split()[0]
        assert (shown[:15], "..." in shown, shown[-9:]) == (LONG_NAME[:15], True, "-07-of-16")
        assert len(long_row) <= 120
        assert lines[-1].startswith("q quit  s sort  every 1s")

        pane.press("s")
        pane.wait_for_text("sort: growth")
        # A terminal too short for every row shows the first ones, and says so.
        pane.tmux("resize-window", "-t", "top", "-x", "100", "-y", "4")
        screen = pane.wait_for_text("2 targets, 1 shown")
        assert len(screen.splitlines()[0]) <= 100
        pane.tmux("resize-window", "-t", "top", "-x", "120", "-y", "30")
        pane.wait_for_text("2 targets  alerts")
        pane.press("q")
        screen = pane.wait_for_text("top-exit=0")
        assert not pane.alternate()
        assert "GROWTH/H" not in screen  # the table was on the alternate screen, now gone
        assert "Traceback" not in screen

        pane.type(f"{command}; echo top-exit=$?")
        pane.wait_for_text("FIRING warning big-rss")
        pane.press("C-c")
        wait_for("the second exit", lambda: pane.screen().count("top-exit=0") == 2)
        assert not pane.alternate()
        pane.type(f"stty -g > {tmp_path}/stty.after; echo saved-$((6 * 7))")
        pane.wait_for_text("saved-42")  # the command line itself shows $((6 * 7))
        before = (tmp_path / "stty.before").read_text()
        assert (tmp_path / "stty.after").read_text() == before

        # The daemon goes away: the last table stays, the status line says why.
        pane.type(f"{command}; echo top-exit=$?")
        pane.wait_for_text("FIRING warning big-rss")
        assert daemon[0].stop() == 0
        screen = pane.wait_for_text("retrying every 1s (q quits): cannot read http://")
        assert "big-rss" in screen
        pane.press("q")
        wait_for("the third exit", lambda: pane.screen().count("top-exit=0") == 3)
    finally:
        pane.close()


def test_piped_with_an_interval_it_prints_plain_tables_until_ctrl_c(
    tmp_path: Path, daemon: tuple[Daemon, str]
) -> None:
    started, address = daemon
    out = tmp_path / "top.out"
    with out.open("w") as stdout:
        process = subprocess.Popen(
            [*MEMALERT, "top", "--connect", address, "--interval", "1s", "--sort", "rss"],
            cwd=REPO,
            env=started.env,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        # Each table is flushed as soon as it is printed.
        wait_for("two tables", lambda: out.read_text().count("memalert top") >= 2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=DEADLINE)
    finally:
        stop(process)
    assert process.returncode == 0, err
    assert err == ""
    text = out.read_text()
    assert "\x1b" not in text
    titles = [line for line in text.splitlines() if line.startswith("memalert top")]
    assert all("2 targets" in title and "sort: rss" in title for title in titles)
    tables = text.split("\n\n")
    assert len(tables) == len(titles)
    for table in tables:
        rows = table.splitlines()[2:]
        # By RSS; the long name shortened in the middle.
        assert [row.split()[0] for row in rows] == ["big", shorten(LONG_NAME, MAX_TARGET_WIDTH)]
