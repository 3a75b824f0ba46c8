"""Under pytest-xdist: a worker killed with ``os._exit`` loses only what it had not finished, the
summary names the lost worker, and providers still run once, in the controller."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import run_pytest, third_party_conftest, wait_no_processes, write

pytest.importorskip("xdist")

WORKER_DIES = """
import os
import pytest

@pytest.mark.parametrize("i", range(8))
def test_records(fairmind, i):
    fairmind.record({"demographic_parity_ratio": 0.8 + i / 100}, model=f"m{i}", scope="sex")

def test_worker_dies(fairmind, worker_id):
    fairmind.record({"lost": 1.0}, model="dying")  # never reported: the worker dies first
    os._exit(3)
"""


def test_a_killed_worker_loses_only_its_unfinished_test(tmp_path: Path) -> None:
    write(tmp_path, "conftest.py", third_party_conftest({"good": "ok"}))
    write(tmp_path, "test_workers.py", WORKER_DIES)
    result = run_pytest(
        tmp_path,
        "-n",
        "2",
        "-p",
        "no:randomly",
        "--fairmind-provider=good",
        "--fairmind-json=report.json",
        timeout=180,
    )
    assert result.rc == 1, result.out  # the crashed test is a failure
    assert "INTERNALERROR" not in result.out
    report = result.report()
    assert sorted(report["models"]) == [f"m{i}" for i in range(8)]
    for i in range(8):
        assert report["models"][f"m{i}"]["metrics"] == {"sex/demographic_parity_ratio": 0.8 + i / 100}
    assert "dying" not in report["models"]
    [notice] = [n for n in report["notices"] if "crashed" in n]
    assert notice.startswith("xdist worker gw")
    assert "records of the tests it finished are included" in notice
    assert notice in result.out
    # The provider ran once, in the controller, with every surviving model.
    assert (tmp_path / "logged-good.txt").read_text() == ",".join(f"m{i}" for i in range(8)) + "\n"
    assert report["providers"]["good"]["ok"] is True
    [entry] = result.entries()
    assert entry.read_text(encoding="utf-8").count('"sex/demographic_parity_ratio"') == 8
    assert not wait_no_processes(tmp_path), "a worker outlived the session"
