"""xdist: which models a test records for, written down as it records, so that a test that
crashes its worker still belongs to its models.

A test's records travel on its reports; a test that takes its worker down (``os._exit``, a
segfault) sends none, and xdist reports it as failed with "worker crashed" and nothing else. A
model that only test recorded for would vanish from the session. So each worker appends one line
``[nodeid, model]`` to its spool file the first time a test records for a model, and the
aggregating process reads the lines of a crashed test. Only names are spooled, never values: what
the crashed test recorded is lost, and the summary says so.

Pure (no pytest import). Best effort: a spool that cannot be written changes nothing else.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pytest_fairmind.records import Record

#: The ``workerinput`` key holding the spool folder (set by the aggregating process).
WORKERINPUT_KEY = "fairmind_spool"


def make_folder() -> Path:
    """A new, private spool folder for one session."""
    return Path(tempfile.mkdtemp(prefix="fairmind-spool-"))


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class Spool:
    """One worker's spool file."""

    def __init__(self, folder: str | Path, worker: str) -> None:
        self.path = Path(folder) / f"{worker}.jsonl"

    def note(self, nodeid: str, model: str) -> None:
        """Say that ``nodeid`` records for ``model``."""
        with contextlib.suppress(OSError), open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps([nodeid, model]) + "\n")


def models_of(folder: str | Path, nodeid: str) -> list[str]:
    """The models ``nodeid`` recorded for, as the workers' spool files say (in the order noted)."""
    found: list[str] = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                entry: Any = json.loads(line)
            except ValueError:
                continue  # a line cut short by the crash
            if isinstance(entry, list) and len(entry) == 2 and entry[0] == nodeid:
                model = str(entry[1])
                if model not in found:
                    found.append(model)
    return found


class SpoolingRecords(list[Record]):
    """A test's record list (the fixture's sink) that notes each new model in the spool."""

    def __init__(self, spool: Spool, nodeid: str) -> None:
        super().__init__()
        self._spool = spool
        self._nodeid = nodeid
        self._noted: set[str] = set()

    def append(self, record: Record) -> None:
        super().append(record)
        model = str(record.get("model"))
        if model not in self._noted:
            self._noted.add(model)
            self._spool.note(self._nodeid, model)
