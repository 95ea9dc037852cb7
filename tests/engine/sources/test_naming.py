"""Names and identities of discovered targets: pure functions and the NameBook."""

from __future__ import annotations

import pytest

from memalert.engine.sources.naming import (
    Identity,
    NameBook,
    cgroup_descends,
    cgroup_name,
    printable,
    process_identity,
    safe_name,
)


@pytest.mark.parametrize(
    ("cmdline", "short"),
    [
        (["/usr/bin/python3", "-u", "/srv/worker.py", "--queue", "a"], "python3:worker.py"),
        (["python3", "-m", "http.server", "8000"], "python3:http.server"),
        (["/srv/api/.venv/bin/python", "/srv/api/main.py"], "python:api/main.py"),
        (["python3", "-W", "ignore", "job.py"], "python3:job.py"),
        (["python3", "-c", "print(1)"], "python3:-c"),
        (["java", "-Xmx1g", "-cp", "a.jar:b.jar", "org.apache.Bootstrap"], "java:Bootstrap"),
        (["java", "-jar", "/opt/app/service.jar"], "java:service.jar"),
        (["node", "--max-old-space-size=4096", "dist/server.js"], "node:dist/server.js"),
        (["nginx: worker process"], "nginx:worker"),
        (["postgres: app shop [local] idle"], "postgres:app"),
        (["/usr/lib/postgresql/16/bin/postgres", "-D", "/var/lib/pg"], "postgres"),
        (["-bash"], "bash"),
        (["/opt/google/chrome/chrome --type=renderer --lang=en"], "chrome"),
    ],
)
def test_short_names_say_what_runs(cmdline: list[str], short: str) -> None:
    assert process_identity("comm", cmdline, "alice").short == short


def test_identity_is_user_executable_and_arguments() -> None:
    one = process_identity("python3", ["python3", "w.py", "--id", "1"], "alice")
    assert one == process_identity("python3", ["python3", "w.py", "--id", "1"], "alice")
    assert one != process_identity("python3", ["python3", "w.py", "--id", "2"], "alice")
    assert one != process_identity("python3", ["python3", "w.py", "--id", "1"], "bob")


def test_rewritten_argv_identity_ignores_the_changing_state() -> None:
    idle = process_identity("postgres", ["postgres: app shop [local] idle"], "pg")
    busy = process_identity("postgres", ["postgres: app shop [local] SELECT"], "pg")
    assert idle == busy


def test_kernel_threads_and_unreadable_cmdlines_use_comm() -> None:
    assert process_identity("kworker/0:1", [], "root").short == "kworker/0:1"


def test_hostile_names_become_safe_labels() -> None:
    name = process_identity("x", ["/tmp/evil\nname\udcff", "a"], "u").short
    assert "\n" not in name
    assert name == safe_name(name)
    assert len(safe_name("a" * 500)) == 64
    assert safe_name("\n\n") == "_"
    assert printable("a\nb\tc") == "a?b?c"


POD_SLICE = "kubepods-burstable-pod7c1e2f3a_1b2c_4d5e_8f90_123456789abc.slice"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("system.slice/nginx.service", "nginx.service"),
        ("user.slice/user-1000.slice/session-2.scope", "session-2.scope"),
        ("system.slice/docker-" + "ab" * 32 + ".scope", "docker:abababababab"),
        ("docker/" + "cd" * 32, "docker:cdcdcdcdcdcd"),
        (
            f"kubepods.slice/kubepods-burstable.slice/{POD_SLICE}",
            "pod:7c1e2f3a-1b2c-4d5e-8f90-123456789abc",
        ),
        (
            "kubepods/besteffort/pod7c1e2f3a-1b2c-4d5e-8f90-123456789abc",
            "pod:7c1e2f3a-1b2c-4d5e-8f90-123456789abc",
        ),
        ("system.slice/cri-containerd-" + "ef" * 32 + ".scope", "containerd:efefefefefef"),
        ("machine.slice/libpod-" + "01" * 32 + ".scope", "podman:010101010101"),
        ("system.slice", None),
        ("kubepods.slice", None),
    ],
)
def test_cgroup_names(path: str, name: str | None) -> None:
    assert cgroup_name(tuple(path.split("/"))) == name


def test_walk_descends_into_slices_and_groupings_only() -> None:
    assert cgroup_descends(("system.slice",))
    assert cgroup_descends(("kubepods", "burstable"))
    assert not cgroup_descends(("system.slice", "nginx.service"))
    assert not cgroup_descends(("kubepods.slice", "kubepods-pod" + "1" * 36 + ".slice"))
    assert not cgroup_descends(("tmp",))


def identity(key: str, short: str = "app") -> Identity:
    return Identity(key=key, short=short)


def test_a_restart_takes_the_name_back() -> None:
    book = NameBook(capacity=10)
    assert book.assign((100, 1), identity("a"), 0.0).name == "app"
    assert book.end_tick(0.0, forget_after=60) == []
    book.end_tick(15.0, forget_after=60)  # pid 100 gone: the name waits for it
    assert book.assign((200, 9), identity("a"), 30.0).name == "app"


def test_concurrent_twins_and_other_identities_get_other_names() -> None:
    book = NameBook(capacity=10)
    names = [book.assign((pid, 0), identity("a"), 0.0).name for pid in (1, 2, 3)]
    assert names == ["app", "app#2", "app#3"]
    other = book.assign((4, 0), identity("b"), 0.0).name
    assert other.startswith("app~")
    assert len(other) == len("app~1234")
    # The middle twin restarts: it takes its own slot back, the others keep theirs.
    book.assign((1, 0), identity("a"), 5.0)
    book.assign((3, 0), identity("a"), 5.0)
    book.end_tick(5.0, forget_after=60)
    assert book.assign((9, 7), identity("a"), 10.0).name == "app#2"


def test_gone_names_are_forgotten_after_a_while_and_beyond_capacity() -> None:
    book = NameBook(capacity=3)
    for pid in range(3):
        book.assign((pid, 0), identity(str(pid), f"p{pid}"), float(pid))
        book.end_tick(float(pid), forget_after=100)
    assert len(book) == 3
    book.assign((9, 0), identity("9", "p9"), 10.0)
    # Over capacity: the longest gone goes first, the one holding a process never does.
    assert book.end_tick(10.0, forget_after=100) == ["p0"]
    assert sorted(book.end_tick(200.0, forget_after=100)) == ["p1", "p2", "p9"]
    assert len(book) == 0
