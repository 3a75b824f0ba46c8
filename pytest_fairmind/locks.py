"""File locks and writer marks: what lets several processes share a store, a history entry or a run.

* :func:`exclusive` is an ``fcntl.flock`` on a lock file, waited for with a timeout. The kernel
  releases it when its holder dies, however it dies (SIGKILL included), so a lock can never be
  left held by a dead process. The lock file is removed when the lock is released.
* :func:`store_lock` (``<store>.lock`` beside a local MLflow store) serialises the creation and
  migration of the store's schema, which MLflow does not do across processes.
* :func:`lock_entry` makes replays of one saved session exclude each other.
* :func:`writer_mark` / :func:`writer_alive` say who is writing a run and whether that process
  can still be writing it, where no lock can be shared (a tracking server seen from several hosts).

Without ``fcntl`` (Windows) the locks are no-ops. A lock file that cannot be created (a read-only
folder) leaves the block unlocked: nobody can write there anyway. See docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pytest_fairmind import procs

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_POLL = 0.05  # seconds between attempts while another process holds a lock
#: A writer on another machine is presumed dead this long after its own deadline (clock skew).
OTHER_HOST_GRACE_S = 60.0
#: A provider process is killed ``timeout + 10 s`` after it started logging (``isolation``);
#: a writer mark is valid a little longer than that.
WRITER_MARGIN_S = 15.0


class LockTimeout(TimeoutError):
    """Another process held the lock for longer than the caller would wait."""


@contextlib.contextmanager
def exclusive(path: str, *, timeout: float | None = None, what: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created, removed again on release) for the block.

    Waits up to ``timeout`` seconds (None: as long as it takes), then raises :class:`LockTimeout`
    naming ``what`` (default: the lock file).
    """
    if fcntl is None:
        yield
        return
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    fd = _acquire(path, deadline, what or path)
    if fd is None:  # the lock file cannot be created: nothing to exclude
        yield
        return
    try:
        yield
    finally:
        # Removed while still held: a process waiting on this file sees it unlinked and retries
        # on a new one (see _acquire), so at no time do two processes hold "the" lock.
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _acquire(path: str, deadline: float | None, what: str) -> int | None:
    assert fcntl is not None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeout(f"{what} is locked by another process") from None
            time.sleep(_POLL)
            continue
        except OSError:  # a file system without flock: proceed unlocked
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except OSError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed the file between our open and our lock: try again


def store_lock(store_path: str, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
    """The lock beside a local store (``<store_path>.lock``): held while its schema is created or
    migrated, and while one process decides whether a (session, model) run exists."""
    return exclusive(f"{store_path}.lock", timeout=timeout, what=f"the store {store_path}")


def entry_lock_path(entry: str) -> str:
    """``<folder>/.<name>.lock``: hidden, and not a ``.json`` file, so never read as an entry."""
    folder, name = os.path.split(os.path.abspath(entry))
    return os.path.join(folder, f".{name}.lock")


def lock_entry(entry: str, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
    """Exclude other replays of the saved session ``entry`` (a history entry or a report file)
    for the block; :class:`LockTimeout` after ``timeout`` seconds of waiting."""
    return exclusive(entry_lock_path(entry), timeout=timeout, what=f"{entry} (being replayed)")


# --------------------------------------------------------------------------- writer marks


@dataclass(frozen=True)
class Writer:
    """Who writes a run: a process on a machine, and until when it may possibly be writing."""

    host: str
    pid: int
    space: str  # the machine and pid namespace; a pid means something only within the same one
    started: int  # the process's start time (clock ticks after boot), 0 when unknown
    until: float  # epoch seconds: past this the process has certainly been killed

    def text(self) -> str:
        return json.dumps(
            {"host": self.host, "pid": self.pid, "space": self.space, "started": self.started,
             "until": round(self.until, 3)},
            separators=(",", ":"),
        )  # fmt: skip

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def _space() -> str:
    return procs.pid_space() or socket.gethostname()


def writer_mark(budget: float, *, pid: int | None = None) -> Writer:
    """The mark of this process (or ``pid`` on this machine) writing for up to ``budget`` seconds."""
    pid = os.getpid() if pid is None else pid
    stat = procs.read_stat(pid)
    return Writer(
        host=socket.gethostname(),
        pid=pid,
        space=_space(),
        started=stat.start_ticks if stat is not None else 0,
        until=time.time() + max(0.0, budget) + WRITER_MARGIN_S,
    )


def parse_writer(text: str | None) -> Writer | None:
    """A mark read back (from a run's tag or a file), None when absent or not one of ours."""
    if not text:
        return None
    try:
        data = json.loads(text)
        return Writer(str(data["host"]), int(data["pid"]), str(data["space"]), int(data["started"]),
                      float(data["until"]))  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return None


def writer_alive(writer: Writer | None, *, now: float | None = None) -> bool:
    """Whether ``writer`` may still be writing.

    No mark (a run of an older version), or a mark past its deadline: no. On this machine (same
    pid namespace): yes while that process exists and is the same process (its start time
    matches: pids are reused). On another machine nothing can be checked: yes until the deadline
    plus :data:`OTHER_HOST_GRACE_S` for clock skew.
    """
    if writer is None:
        return False
    now = time.time() if now is None else now
    if writer.space != _space():
        return now <= writer.until + OTHER_HOST_GRACE_S
    if now > writer.until:
        return False
    return procs.is_running(writer.pid, started=writer.started or None)
