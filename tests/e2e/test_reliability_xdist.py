"""Under pytest-xdist: a worker killed with ``os._exit`` loses only what it had not finished, the
summary names the lost worker, and providers still run once, in the controller."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_pytest, third_party_conftest, wait_no_processes, write

pytest.importorskip("xdist")

WORKER_DIES = """
import os
import pytest

@pytest.mark.parametrize("i", range(8))
def test_records(fairmind, i):
    fairmind.record({"demographic_parity_ratio": 0.8 + i / 100}, model=f"m{i}", scope="sex")

def test_worker_dies(fairmind, worker_id):
    fairmind.record({"lost": 1.0}, model="dying")  # its value dies with the worker; its model does not
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
    assert sorted(report["models"]) == ["dying", *(f"m{i}" for i in range(8))]
    for i in range(8):
        assert report["models"][f"m{i}"]["metrics"] == {"sex/demographic_parity_ratio": 0.8 + i / 100}
    # The model whose only test crashed the worker is listed as failed, with the lost test named.
    dying = report["models"]["dying"]
    assert dying["verdict"] == "fail" and dying["metrics"] == {}
    assert dying["tests"] == [{"nodeid": "test_workers.py::test_worker_dies", "outcome": "failed"}]
    [lost] = [n for n in report["notices"] if n.startswith("lost test ")]
    assert "test_workers.py::test_worker_dies" in lost and "'dying'" in lost
    [notice] = [n for n in report["notices"] if n.startswith("xdist worker gw")]
    assert notice.startswith("xdist worker gw")
    assert "records of the tests it finished are included" in notice
    assert notice in result.out
    # The provider ran once, in the controller, with every model.
    assert (tmp_path / "logged-good.txt").read_text() == ",".join(
        ["dying", *(f"m{i}" for i in range(8))]
    ) + "\n"
    assert report["providers"]["good"]["ok"] is True
    [entry] = result.entries()
    assert entry.read_text(encoding="utf-8").count('"sex/demographic_parity_ratio"') == 8
    assert not wait_no_processes(tmp_path), "a worker outlived the session"
