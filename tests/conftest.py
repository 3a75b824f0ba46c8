"""Shared by every test folder (``unit/``, ``session/``, ``e2e/``): pytester, and each test's
environment cleared of the variables that configure the plugin.

The helpers all tests use are plain functions and classes in ``tests/helpers.py``; fixtures live
in the conftest of the folder that needs them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections.abc import Iterator
from typing import Any

import numpy
import pytest
from helpers import CHARTS_VAR, PLUGIN_ENV_VARS, make_migrated_store, store_template_path

pytest_plugins = ["pytester"]

#: Plugins of the test environment no inner session uses, left out of the pytest processes a
#: test starts: importing them costs 0.5-3 s per process (xdist workers included).
INNER_ADDOPTS = "-p no:hypothesispytest -p no:anyio"

#: A pytester test drops the modules imported while it ran; numpy, a C extension, cannot be
#: imported a second time in a process, so it is imported here, before any test runs.
assert numpy.__version__


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work stealing: xdist's default hands each worker a share of the tests up front, and with
    this suite's mix of 10 ms unit tests and 20 s end-to-end ones, one worker sat idle for the last
    three minutes of a run while the other worked through its share (measured: 266 s vs 441 s)."""
    if config.getoption("dist") != "load":  # a --dist the caller chose stays
        return None
    from xdist.scheduler import WorkStealingScheduling

    return WorkStealingScheduling(config, log)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist, the controller (which runs no test) makes the run's migrated MLflow store
    template while the workers start and collect. Made by the first worker that needed it, it
    kept both workers waiting 6-12 s: one on the process migrating it, the other on its lock."""
    config = session.config
    factory = getattr(config, "_tmp_path_factory", None)  # what xdist reads the base temp from
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None) or factory is None:
        return
    if "not e2e" in (config.option.markexpr or "") or importlib.util.find_spec("mlflow") is None:
        return
    template = store_template_path(factory.getbasetemp())

    def make() -> None:
        with contextlib.suppress(Exception):  # a worker that needs it tries again and says why
            make_migrated_store(template)

    threading.Thread(target=make, name="mlflow-store-template", daemon=True).start()


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``slow`` tests (heavy simulations) count as ``e2e``: the quick loop ``-m "not e2e"`` leaves
    them out too."""
    slow = []
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.e2e)
            slow.append(item)
    # The simulations run first: under xdist a long test collected last keeps one worker busy
    # while the other idles at the end of the run.
    if slow:
        first = set(map(id, slow))
        items[:] = [*slow, *(item for item in items if id(item) not in first)]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test (nor an inner session it runs in-process) sees the developer's fairmind, MLflow,
    W&B or CI settings; a test sets what it needs with ``monkeypatch``."""
    for name in PLUGIN_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    # Bytecode caches: every pytest process a test starts imports our package, xdist and
    # pytest-html through pytest's assertion rewriter, which recompiles them (0.25 s of CPU a
    # process, hundreds of processes) unless it may cache the result; a machine that sets
    # PYTHONDONTWRITEBYTECODE would have them compiled again in each.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    # Per-group charts cost each provider process about half a second (matplotlib) and 0.1 s a
    # chart; only the tests that look at charts draw them (the ``charts`` fixture).
    monkeypatch.setenv(CHARTS_VAR, "false")
    # Inner sessions (and their xdist workers) start faster without the plugins they never use;
    # sessions run with ``helpers.subprocess_env`` block them on their command line instead.
    monkeypatch.setenv("PYTEST_ADDOPTS", INNER_ADDOPTS)
    yield


@pytest.fixture
def charts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions of this test draw per-group charts (the default a user gets; off elsewhere)."""
    monkeypatch.delenv(CHARTS_VAR, raising=False)


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's ``pytester``, with :data:`INNER_ADDOPTS` again (pytester clears ``PYTEST_ADDOPTS``):
    an inner session under xdist starts about four times faster without those plugins."""
    monkeypatch.setenv("PYTEST_ADDOPTS", INNER_ADDOPTS)
    return pytester
