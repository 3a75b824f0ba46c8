"""What the plugin keeps per pytest config and per test item (in ``config.stash`` / ``item.stash``),
and the attribute on test reports that carries a test's records to the aggregating process.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_fairmind.aggregate import Collector
from pytest_fairmind.markers import Marked
from pytest_fairmind.providers.base import Provider
from pytest_fairmind.records import Record
from pytest_fairmind.result import SessionResult
from pytest_fairmind.settings import Settings
from pytest_fairmind.spool import Spool

#: The test report attribute holding a test's new records and marks: plain data, so it crosses
#: xdist and stays out of ``--junitxml``.
PAYLOAD_ATTR = "fairmind_payload"


@dataclass
class FairmindState:
    """Per-config state, kept in ``config.stash``."""

    settings: Settings
    aggregating: bool  # the xdist controller, or the only process
    providers: list[Provider] = field(default_factory=list)
    collector: Collector = field(default_factory=Collector)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: str = ""
    result: SessionResult | None = None
    history_entry: Path | None = None
    notices: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # FairmindWarnings turned into errors by filters
    spool: Spool | None = None  # an xdist worker: where it notes the models its tests record for
    spool_folder: Path | None = None  # the aggregating process under xdist: the workers' spool files


STATE_KEY = pytest.StashKey[FairmindState]()
#: A test item's records so far, and how many of them earlier reports already carried.
RECORDS_KEY = pytest.StashKey[list[Record]]()
SENT_KEY = pytest.StashKey[int]()
#: A test item's ``fairmind`` marks, parsed once.
MARKED_KEY = pytest.StashKey[Marked]()
