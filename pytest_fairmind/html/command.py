"""``fairmind report PATH|last --html OUT [--history DIR]``: the HTML page of a saved session.

Pure (no pytest import); the ``fairmind`` command's argument parsing calls :func:`report_command`.
Exit codes as the rest of the command: 0 when the page was written, 2 when a file could not be
read (the session; or a history entry, which is then left out of the trends and the page still
written) or the page could not be written. See docs/reports.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pytest_fairmind import history, report
from pytest_fairmind.redact import redact_text

__all__ = ["EXIT_OK", "EXIT_UNREADABLE", "report_command"]

EXIT_OK, EXIT_UNREADABLE = 0, 2


def _notice(line: str) -> None:
    print(f"fairmind: {redact_text(line)}", file=sys.stderr)


def _history_folder(history_dir: str | None, workdir: Path) -> Path:
    """``--history``, else ``FAIRMIND_HISTORY``, else ini ``fairmind_history``, else ``.fairmind``;
    relative to ``workdir``."""
    from pytest_fairmind.cli import pytest_ini_values  # the command's own ini reader, imported late

    chosen = (
        history_dir
        or os.environ.get("FAIRMIND_HISTORY")
        or pytest_ini_values(workdir).get("history")
        or ".fairmind"
    )
    return workdir / chosen


def _project(workdir: Path) -> str | None:
    """The project the configuration names, if any (``last`` picks that project's newest session)."""
    from pytest_fairmind.cli import pytest_ini_values
    from pytest_fairmind.settings import pick

    project = pick(None, pytest_ini_values(workdir).get("project"), os.environ, ["FAIRMIND_PROJECT"])
    return str(project).strip() or None if project else None


def _session_path(path: str, folder: Path, workdir: Path) -> Path | None:
    """The file ``path`` names; ``last``: the newest readable entry of the history folder."""
    if path != "last":
        return workdir / path

    def skipped(entry: Path, why: str) -> None:
        _notice(f"skipped {entry}: cannot read the session ({why})")

    project = _project(workdir)
    found = history.newest(folder, project=project, on_skip=skipped)
    if found is None:
        of = f" of project {project!r}" if project else ""
        _notice(f"error: no session{of} in the history folder {folder}")
        return None
    return found[0]


def report_command(path: str, html_out: str, history_dir: str | None, workdir: str) -> int:
    """Write the HTML page of the session in ``path`` (a report file, a history entry or ``last``)
    to ``html_out``, with the trends of the history folder's sessions of the same project."""
    from pytest_fairmind.html import history_documents, read_document, render_html

    base = Path(workdir)
    folder = _history_folder(history_dir, base)
    source = _session_path(path, folder, base)
    if source is None:
        return EXIT_UNREADABLE
    try:
        doc = read_document(source)
    except (OSError, report.ReportError) as exc:
        _notice(f"error: {source}: cannot read the session ({exc})")
        return EXIT_UNREADABLE
    earlier, skipped = history_documents(folder)
    for entry, why in skipped:
        _notice(f"skipped {entry}: cannot read the session ({why}); left out of the trends")
    out = base / html_out
    try:
        history.atomic_write(out, render_html(doc, history=earlier))
    except (OSError, ImportError) as exc:  # ImportError: Jinja2 missing; the message names the extra
        _notice(f"error: cannot write {out}: {exc}")
        return EXIT_UNREADABLE
    models = len(doc.get("models") or {})
    print(f"fairmind: wrote {out} ({models} model(s); {len(earlier)} history entr(ies) read from {folder})")
    return EXIT_UNREADABLE if skipped else EXIT_OK
