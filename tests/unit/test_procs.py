"""The /proc reader shared by provider isolation and the W&B provider (no process is started)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_fairmind import procs

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux /proc")


@linux
def test_read_stat_of_this_process() -> None:
    stat = procs.read_stat()
    assert stat is not None
    assert stat.pid == os.getpid() and stat.ppid == os.getppid()
    assert stat.name == Path(f"/proc/{os.getpid()}/comm").read_text(encoding="utf-8").strip()
    assert procs.read_stat(os.getpid()) == stat


@linux
def test_this_process_is_among_its_parents_descendants_and_children() -> None:
    stats = procs.processes()
    assert os.getpid() in {s.pid for s in stats}
    assert os.getpid() in procs.descendants(os.getppid())
    me = procs.read_stat()
    assert me is not None
    assert os.getpid() in procs.children_named(os.getppid(), me.name)
    assert procs.children_named(os.getppid(), "no-such-name") == []


@linux
def test_process_age_is_a_plausible_number_of_seconds() -> None:
    age = procs.process_age()
    assert age is not None and 0.0 <= age < 7 * 24 * 3600


def test_missing_processes_read_as_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(procs, "_PROC", str(tmp_path / "absent"))
    assert procs.read_stat() is None
    assert procs.processes() == []
    assert procs.descendants(1) == []
    assert procs.process_age() is None
    procs.kill([])  # nothing to kill is no error


def test_a_stat_line_with_spaces_and_parentheses_in_the_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "4242"
    folder.mkdir()
    fields = ["S", "17", *["0"] * 17, "12345", "0"]  # state, ppid, ..., starttime (field 22)
    (folder / "stat").write_text(f"4242 (odd (name) x) {' '.join(fields)}\n", encoding="utf-8")
    (tmp_path / "uptime").write_text("1000.0 5.0\n", encoding="ascii")
    monkeypatch.setattr(procs, "_PROC", str(tmp_path))
    stat = procs.read_stat(4242)
    assert stat == procs.ProcStat(pid=4242, name="odd (name) x", ppid=17, start_ticks=12345)
    assert procs.descendants(17) == [4242] and procs.children_named(17, "odd (name) x") == [4242]
    age = procs.process_age(4242)
    assert age is not None and age == pytest.approx(max(0.0, 1000.0 - 12345 / os.sysconf("SC_CLK_TCK")))
