"""The local history: every session's report, saved before any provider is called.

Pure (no pytest import). Entries are report documents in ``<folder>/sessions/``, named so that
they sort by start time; writes are atomic (temp file + ``os.replace``) so a kill mid-write leaves
the previous state, never half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_fairmind import report
from pytest_fairmind.result import SessionResult

SESSIONS = "sessions"
#: Temp files of an atomic write older than this were left by a killed process.
STALE_TEMP_SECONDS = 3600.0


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a report is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def stamp(started: str) -> str:
    """A start time as the digits that begin an entry's name (entries sort by start time)."""
    return "".join(c for c in started if c.isdigit())[:20]


def entry_path(folder: Path, session: SessionResult) -> Path:
    return folder / SESSIONS / f"{stamp(session.started)}-{session.id}.json"


def save(folder: Path, session: SessionResult, *, keep: int = 100, text: str | None = None) -> Path:
    """Write (or rewrite) the session's entry and prune to the newest ``keep`` entries; ``text`` is
    ``report.dumps(session)`` when the caller has it already."""
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():  # like .pytest_cache: the history is local state, never committed
        atomic_write(ignore, "# created by pytest-fairmind\n*\n")
    path = entry_path(folder, session)
    atomic_write(path, report.dumps(session) if text is None else text)
    prune(folder, keep=keep)
    return path


def entries(folder: Path) -> list[Path]:
    """History entries, oldest first."""
    directory = folder / SESSIONS
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == ".json" and not p.name.startswith("."))


def prune(folder: Path, *, keep: int, stale_after: float = STALE_TEMP_SECONDS) -> None:
    """Keep the newest ``keep`` entries; remove temp files of writes killed midway (older than
    ``stale_after`` seconds, so a concurrent session's write in progress is left alone)."""
    found = entries(folder)
    for old in found[: max(0, len(found) - keep)]:
        with contextlib.suppress(OSError):
            old.unlink()
    directory = folder / SESSIONS
    now = time.time()
    for temp in directory.glob(".*.tmp") if directory.is_dir() else ():
        with contextlib.suppress(OSError):
            if now - temp.stat().st_mtime >= stale_after:
                temp.unlink()


def newest(
    folder: Path,
    *,
    project: str | None = None,
    exclude_id: str | None = None,
    on_skip: Callable[[Path, str], None] | None = None,
) -> tuple[Path, SessionResult] | None:
    """The newest readable entry (of ``project``, when given) and its session, skipping session
    ``exclude_id``. An entry that cannot be read (a foreign or corrupt file) is passed over;
    ``on_skip(path, why)`` hears of it."""
    for path in reversed(entries(folder)):
        if exclude_id and path.stem.endswith(exclude_id):
            continue
        try:
            session = report.load(str(path))
        except (OSError, report.ReportError) as exc:
            if on_skip is not None:
                on_skip(path, str(exc))
            continue
        if project is None or session.project == project:
            return path, session
    return None


def last(folder: Path, *, project: str | None = None, exclude_id: str | None = None) -> Path | None:
    """The newest readable entry (of ``project``, when given), skipping session ``exclude_id``."""
    found = newest(folder, project=project, exclude_id=exclude_id)
    return None if found is None else found[0]
