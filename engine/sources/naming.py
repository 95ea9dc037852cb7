"""Names of discovered targets (docs/targets.md#discovered-targets): pure, no file is read.

A discovered process or cgroup needs a name a person recognises and that stays the
same when the process restarts, since the name is the `target` label: the alert
instance and the leak detector's history hang on it.

- A process is named from its executable and the meaningful part of its command
  line: the script or module of an interpreter (`python3:worker.py`,
  `java:Bootstrap`), the role an argv-rewriting daemon gives itself
  (`nginx:worker`), else the executable alone (`postgres`). Its identity, what
  must match for a restart to keep the name, is its user, executable and
  arguments.
- A cgroup is named by the systemd unit, container or pod its path names
  (`nginx.service`, `docker:3f2a9c1b7e4d`, `pod:7c1e...`); its identity is its path.

`NameBook` hands out the names: one identity keeps its name while it is
remembered, concurrent processes of one identity get `name#2`, `name#3`, and
another identity whose short name is taken gets a suffix from a hash of its
identity (`name~1a2b`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# Longest target name and command line kept: labels are copied into every series.
MAX_NAME = 64
MAX_CMDLINE = 1024

_INTERPRETER = re.compile(
    r"(python|pypy)[\d.]*|node(js)?|deno|bun|ruby[\d.]*|perl[\d.]*|php[\d.]*(-cgi)?"
    r"|java|bash|sh|dash|zsh|ksh|lua[\d.]*|Rscript|tclsh[\d.]*|dotnet|beam\.smp|erl"
)
# Interpreter options that take the next argument as their value.
_VALUE_OPTIONS = frozenset({"-W", "-X", "-cp", "-classpath", "--class-path", "-r", "--require"})
# `-m module`, `-jar file`, `--module m`: the value is what runs.
_RUNS_VALUE = frozenset({"-m", "-jar", "--module", "-e"})
# Script names too common to tell services apart: their directory is added (`api/main.py`).
_GENERIC_SCRIPTS = frozenset(
    {"main", "index", "app", "server", "run", "__main__", "manage", "start", "cli", "wsgi", "asgi"}
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@+=/#~-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_name(text: str) -> str:
    """`text` as a label value that reads well anywhere: odd characters become `_`."""
    cleaned = _UNSAFE.sub("_", text).strip("_")
    return cleaned[:MAX_NAME] or "_"


def printable(text: str) -> str:
    """A command line for a message: control characters (a newline in argv) shown as `?`."""
    return _CONTROL.sub("?", text)[:MAX_CMDLINE]


@dataclass(frozen=True, slots=True)
class Identity:
    """What must match for a process or cgroup to be the same target again, and its name."""

    key: str
    short: str


def process_identity(comm: str, cmdline: list[str], user: str) -> Identity:
    """The identity and short name of a process from its comm, arguments and user."""
    if not cmdline:
        # Kernel threads and processes whose cmdline is unreadable: only comm is known.
        return Identity(key=f"{user}\0{comm}", short=safe_name(comm))
    first = cmdline[0]
    if ": " in first and len(cmdline) == 1:
        # Daemons that rewrite argv to say their role: "nginx: worker process",
        # "postgres: checkpointer", "postgres: app db [local] idle". The role's first
        # word names it; the rest changes while the process runs.
        program, _, role = first.partition(": ")
        words = role.split()
        short = f"{_base(program)}:{words[0]}" if words else _base(program)
        return Identity(key=f"{user}\0{short}", short=safe_name(short))
    if len(cmdline) == 1 and " " in first:
        # Others (Chrome, Electron apps) join their arguments into argv[0].
        cmdline = first.split()
        first = cmdline[0]
    program = _base(first) or comm
    detail = _interpreted(cmdline[1:]) if _INTERPRETER.fullmatch(program) else ""
    short = f"{program}:{detail}" if detail else program
    return Identity(key="\0".join((user, *cmdline)), short=safe_name(short))


def _base(path: str) -> str:
    # A login shell's argv[0] is "-bash".
    return PurePosixPath(path).name.lstrip("-")


def _interpreted(args: list[str]) -> str:
    """What an interpreter runs: the script, `-m` module, `-jar` file or main class."""
    skip_value = False
    for index, arg in enumerate(args):
        if skip_value:
            skip_value = False
            continue
        if arg in _RUNS_VALUE:
            value = args[index + 1] if index + 1 < len(args) else ""
            return _script(value) if arg == "-jar" else value
        if arg == "-c":
            return "-c"
        if arg.startswith("-"):
            skip_value = arg in _VALUE_OPTIONS
            continue
        if "/" not in arg and "." in arg and not arg.endswith((".py", ".js", ".rb", ".pl", ".sh")):
            return arg.rsplit(".", 1)[-1]  # a Java main class: org.apache.Bootstrap
        return _script(arg)
    return ""


def _script(path: str) -> str:
    script = PurePosixPath(path)
    if script.stem in _GENERIC_SCRIPTS and script.parent.name:
        return f"{script.parent.name}/{script.name}"
    return script.name


# -- cgroups -----------------------------------------------------------------------

_HEX_ID = re.compile(r"[0-9a-f]{64}")
# Container runtimes' scope units under systemd: docker-<id>.scope, cri-containerd-<id>.scope ...
_CONTAINER_SCOPE = re.compile(r"(docker|cri-containerd|crio|libpod|nerdctl)-([0-9a-f]{64})\.scope")
_RUNTIME_NAMES = {
    "docker": "docker",
    "cri-containerd": "containerd",
    "crio": "crio",
    "libpod": "podman",
    "nerdctl": "containerd",
}
# kubepods-burstable-pod<uid>.slice (systemd driver) or pod<uid> (cgroupfs driver).
_POD = re.compile(r"(?:kubepods-(?:\w+-)?)?pod([0-9a-f_-]{36})(?:\.slice)?")
# Directories that only group containers (cgroupfs drivers): looked into, not watched.
_GROUPING = frozenset({"docker", "kubepods", "burstable", "besteffort", "guaranteed", "lxc"})
SHORT_ID = 12


def cgroup_name(parts: tuple[str, ...]) -> str | None:
    """The target name of the cgroup at `parts` (path components below the mount), or None.

    None: the group is not a service, container or pod (a slice, the root).
    """
    if not parts:
        return None
    last = parts[-1]
    container = _CONTAINER_SCOPE.fullmatch(last)
    if container is not None:
        return f"{_RUNTIME_NAMES[container.group(1)]}:{container.group(2)[:SHORT_ID]}"
    pod = _POD.fullmatch(last)
    if pod is not None and (last.endswith(".slice") or len(parts) > 1):
        return f"pod:{pod.group(1).replace('_', '-')}"
    if _HEX_ID.fullmatch(last) and len(parts) > 1 and parts[-2] in ("docker", "lxc"):
        return f"docker:{last[:SHORT_ID]}"
    if last.endswith((".service", ".scope")):
        return safe_name(last)
    return None


@dataclass(frozen=True, slots=True)
class Workload:
    """A container (`docker`, `containerd`, ...) or a Kubernetes `pod` a cgroup path names."""

    kind: str
    id: str  # the full container id, or the pod uid


def cgroup_workload(parts: tuple[str, ...]) -> Workload | None:
    """The container or pod the cgroup at `parts` is, if its path says so."""
    last = parts[-1] if parts else ""
    container = _CONTAINER_SCOPE.fullmatch(last)
    if container is not None:
        return Workload(kind=_RUNTIME_NAMES[container.group(1)], id=container.group(2))
    if _HEX_ID.fullmatch(last) and len(parts) > 1 and parts[-2] in ("docker", "lxc"):
        return Workload(kind="docker", id=last)
    pod = _POD.fullmatch(last)
    if pod is not None and cgroup_name(parts) is not None:
        return Workload(kind="pod", id=pod.group(1).replace("_", "-"))
    return None


def cgroup_identity(parts: tuple[str, ...], workload_name: str | None) -> Identity:
    """A cgroup's identity: its container's or pod's name where the runtime tells it, else its path.

    By name, a container recreated under the same name (a new id, a new path) is
    the same target again, as a restarted process is.
    """
    if workload_name:
        workload = cgroup_workload(parts)
        assert workload is not None  # only a workload has a name to look up
        key = f"{workload.kind}:{workload_name}"
        return Identity(key=key, short=safe_name(key))
    name = cgroup_name(parts)
    assert name is not None  # the walk yields named groups only
    return Identity(key="/" + "/".join(parts), short=name)


def pod_names(log_dirs: list[str]) -> dict[str, str]:
    """Pod uid -> `namespace/name` from the kubelet's /var/log/pods/<ns>_<name>_<uid> entries.

    Namespaces and pod names are DNS labels and subdomains, so they hold no `_`.
    """
    names = {}
    for entry in log_dirs:
        fields = entry.split("_")
        if len(fields) == 3 and all(fields):
            names[fields[2]] = f"{fields[0]}/{fields[1]}"
    return names


def cgroup_descends(parts: tuple[str, ...]) -> bool:
    """Whether the walk looks below `parts`: slices and container groupings, not targets."""
    if not parts:
        return True
    last = parts[-1]
    if cgroup_name(parts) is not None:
        return False  # a unit's or pod's inner groups are parts of it
    return last.endswith(".slice") or last in _GROUPING


# -- handing out names --------------------------------------------------------------


# What holds a name now: a process as (pid, start time), a cgroup as its path.
Holder = tuple[int, int] | str


@dataclass(slots=True)
class Entry:
    """One named target: its identity, the instance holding it now, when last seen.

    `info` is what messages show about the holder (pid, user, command line);
    `membership` its /proc/PID/cgroup text, read once since it decides the limit.
    """

    name: str
    identity: Identity
    holder: Holder | None
    last_seen: float
    info: dict[str, str] = field(default_factory=dict)
    membership: str = ""


class NameBook:
    """Names of one `discover` target's instances, kept between ticks; pure (time is passed).

    An identity keeps its names until it has been gone `forget_after` seconds;
    the book holds at most `capacity` entries, dropping the longest gone first.
    """

    def __init__(self, *, capacity: int) -> None:
        self.capacity = capacity
        self._entries: dict[str, Entry] = {}
        self._by_identity: dict[str, list[str]] = {}
        self._by_holder: dict[Holder, str] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def held_by(self, holder: Holder) -> Entry | None:
        name = self._by_holder.get(holder)
        return None if name is None else self._entries[name]

    def assign(self, holder: Holder, identity: Identity, now: float) -> Entry:
        """The entry `holder` is watched under: its own, a free one of its identity, or new."""
        entry = self.held_by(holder)
        if entry is None:
            names = self._by_identity.setdefault(identity.key, [])
            entry = next((self._entries[n] for n in names if self._entries[n].holder is None), None)
            if entry is None:
                name = self._free_name(identity, len(names))
                entry = Entry(name=name, identity=identity, holder=None, last_seen=now)
                names.append(entry.name)
                self._entries[entry.name] = entry
            entry.holder = holder
            entry.info, entry.membership = {}, ""
            self._by_holder[holder] = entry.name
        entry.last_seen = now
        return entry

    def _free_name(self, identity: Identity, taken_by_identity: int) -> str:
        suffix = f"#{taken_by_identity + 1}" if taken_by_identity else ""
        name = identity.short + suffix
        if name in self._entries:
            digest = hashlib.sha256(identity.key.encode("utf-8", "replace")).hexdigest()
            name = f"{identity.short}~{digest[:4]}{suffix}"
            while name in self._entries:  # two identities with one hash prefix: very rare
                name += "~"
        return name

    def release_all_but(self, present: set[Holder]) -> None:
        """Before this tick's `assign`s: free the names of holders gone since the last tick,
        so a process restarted between two ticks takes its name back at once."""
        for holder in [h for h in self._by_holder if h not in present]:
            self._entries[self._by_holder.pop(holder)].holder = None

    def end_tick(self, now: float, forget_after: float) -> list[str]:
        """Release the holders not assigned at `now`; drop what is gone too long (or too many).

        Returns the names dropped, so the caller can drop their detector state too.
        """
        for holder, name in list(self._by_holder.items()):
            if self._entries[name].last_seen != now:
                del self._by_holder[holder]
                self._entries[name].holder = None
        gone = sorted(
            (e for e in self._entries.values() if e.holder is None), key=lambda e: e.last_seen
        )
        overflow = len(self._entries) - self.capacity
        dropped = [
            e.name for i, e in enumerate(gone) if i < overflow or now - e.last_seen > forget_after
        ]
        for name in dropped:
            entry = self._entries.pop(name)
            names = self._by_identity[entry.identity.key]
            names.remove(name)
            if not names:
                del self._by_identity[entry.identity.key]
        return dropped
