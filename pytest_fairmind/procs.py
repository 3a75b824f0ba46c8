"""What Linux ``/proc`` says about processes: parents, names, ages; and killing a process tree.

Provider children need this because wandb starts ``wandb-core`` in a session of its own, out of
reach of a process-group kill. Elsewhere than Linux nothing is found (empty lists, ``None`` ages)
and only the process-group kill happens. See docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field

_PROC = "/proc"


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` we use."""

    pid: int
    name: str  # ``comm``: the executable name, at most 15 characters
    ppid: int
    start_ticks: int  # start time after boot, in clock ticks
    state: str = field(default="?", compare=False)  # R, S, D, Z (zombie: it has exited), ...


def read_stat(pid: int | str = "self") -> ProcStat | None:
    """``/proc/<pid>/stat`` parsed, or None when it cannot be read (gone, not Linux)."""
    try:
        with open(f"{_PROC}/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        head, _, tail = text.rpartition(")")  # the name may hold spaces and parentheses
        fields = tail.split()
        return ProcStat(
            pid=int(head.partition(" ")[0]),
            name=head[head.find("(") + 1 :],
            ppid=int(fields[1]),
            start_ticks=int(fields[19]),
            state=fields[0],
        )
    except (OSError, ValueError, IndexError):
        return None


def processes() -> list[ProcStat]:
    """Every process whose stat is readable now."""
    try:
        entries = [entry for entry in os.listdir(_PROC) if entry.isdigit()]
    except OSError:
        return []
    return [stat for stat in map(read_stat, entries) if stat is not None]


def descendants(pid: int) -> list[int]:
    """Process ids below ``pid``: children, their children, and so on."""
    children: dict[int, list[int]] = {}
    for stat in processes():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def children_named(parent: int, name: str) -> list[int]:
    """Direct children of ``parent`` whose executable is ``name``."""
    return [stat.pid for stat in processes() if stat.ppid == parent and stat.name == name]


def carrying(name: str, value: str) -> list[int]:
    """Live processes (this one excepted) whose environment holds ``name=value``: what a process
    started with that variable left behind, wherever it was reparented (``wandb-core``)."""
    entry = f"{name}={value}".encode()
    found = []
    for stat in processes():
        if stat.pid == os.getpid() or stat.state == "Z":
            continue
        try:
            with open(f"{_PROC}/{stat.pid}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if entry in environ.split(b"\0"):
            found.append(stat.pid)
    return found


def process_age(pid: int | str = "self") -> float | None:
    """Seconds since ``pid`` (default: this process) started, None when unknown."""
    stat = read_stat(pid)
    if stat is None:
        return None
    try:
        with open(f"{_PROC}/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - stat.start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def is_running(pid: int, *, started: int | None = None) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has), and, given ``started``
    (its start time in clock ticks, from :func:`read_stat`), is still that process: pids are reused.

    Without ``/proc`` only existence is checked (``kill(pid, 0)``)."""
    stat = read_stat(pid)
    if stat is not None:
        return stat.state != "Z" and (started is None or stat.start_ticks == started)
    if os.path.isdir(_PROC + "/self"):
        return False  # /proc works and has no such process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def pid_space() -> str | None:
    """What a pid is relative to: this boot of this machine and this pid namespace (a container
    has its own), as ``<boot id>:<namespace>``; None when unknown (not Linux)."""
    try:
        with open(f"{_PROC}/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read().strip()
        namespace = os.readlink(f"{_PROC}/self/ns/pid")
    except OSError:
        return None
    return f"{boot}:{namespace}"


def kill(pids: list[int]) -> None:
    """SIGKILL each of ``pids``; one that is gone already is no error."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``'s descendants, then its process group (``pid`` leads one)."""
    kill(descendants(pid))
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
