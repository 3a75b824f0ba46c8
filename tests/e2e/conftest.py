"""End-to-end tests: real MLflow stores and servers, real wandb offline, real subprocess sessions.

Every test collected below this folder carries the ``e2e`` marker, so ``-m "not e2e"`` is the quick loop.

MLflow stores: creating a SQLite store runs MLflow's migrations, seconds apiece (more under
load). So each test process (each xdist worker) creates one empty, migrated store once
(``mlflow_store_template``) and a test that needs a store gets a copy of it. Tests about the first
use of a store (it is created, or it is not) use ``mlflow_fresh_sqlite_uri`` or no fixture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import (
    WANDB_VARS,
    MlflowServer,
    MlflowStore,
    StalledListener,
    WandbEnv,
    copy_store,
    make_migrated_store,
    start_mlflow_server,
    stop_mlflow_server,
    store_template_path,
    unsupported_reason,
)

_HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


# --------------------------------------------------------------------------- MLflow


@pytest.fixture(scope="session")
def mlflow_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite store with MLflow's schema, created once per test run (the xdist workers
    share it: the folder of their base temps is the run's); never used directly, only copied
    (see ``mlflow_store``)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return make_migrated_store(store_template_path(shared))  # under xdist, begun by the controller


@pytest.fixture
def mlflow_store(mlflow_store_template: Path) -> MlflowStore:
    """``mlflow_store(folder, name="mlflow.db") -> uri``: a ready store at ``folder / name``, as
    if a first session had created it there. Put it in a session's folder before the session
    starts, and its ``./mlflow.db`` default store is already migrated."""

    def put(folder: Path, name: str = "mlflow.db") -> str:
        return copy_store(mlflow_store_template, folder / name)

    return put


@pytest.fixture
def mlflow_sqlite_uri(mlflow_store: MlflowStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ready (empty, migrated) SQLite store in ``tmp_path``; the cwd moves there too, because
    MLflow puts the artifacts of experiments it creates under ``./mlruns`` of the working directory."""
    monkeypatch.chdir(tmp_path)
    return mlflow_store(tmp_path)


@pytest.fixture
def mlflow_fresh_sqlite_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite URI in ``tmp_path`` with no store behind it yet (first use creates it); the cwd
    moves there too."""
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, mlflow_store_template: Path
) -> Iterator[MlflowServer]:
    """A real `mlflow server` for this test session (one per xdist worker), on a ready store."""
    try:
        server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), template=mlflow_store_template)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        stop_mlflow_server(server.proc)


# --------------------------------------------------------------------------- W&B


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WandbEnv:
    """A wandb sandbox: no key, no netrc, every wandb directory under ``tmp_path``."""
    reason = unsupported_reason()
    if reason:
        pytest.skip(reason)
    env = WandbEnv(
        root=tmp_path / "wb",
        data=tmp_path / "wb-data",
        cache=tmp_path / "wb-cache",
        config=tmp_path / "wb-config",
        netrc=tmp_path / "netrc",
    )
    for name in WANDB_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_DIR", str(env.root))
    monkeypatch.setenv("WANDB_DATA_DIR", str(env.data))
    monkeypatch.setenv("WANDB_ARTIFACT_DIR", str(env.data / "artifacts"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(env.cache))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(env.config))
    monkeypatch.setenv("NETRC", str(env.netrc))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return env


# --------------------------------------------------------------------------- network


@pytest.fixture
def stalled_listener() -> Iterator[StalledListener]:
    """A loopback 'server' that accepts connections and never answers (see ``StalledListener``)."""
    with StalledListener() as listener:
        yield listener


# --------------------------------------------------------------------------- browser

#: Chromium binaries tried in order (``FAIRMIND_CHROMIUM`` first): Debian's package, then others.
CHROMIUM_CANDIDATES = (
    "/usr/bin/chromium",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)
#: Headless, offline, no first-run work: nothing is fetched, nothing outlives the call.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
)


@dataclass
class Browser:
    """Headless Chromium with a throw-away profile: the DOM after load, and screenshots."""

    binary: str
    profile: Path

    def _run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        command = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        return done

    def dump_dom(self, page: Path) -> str:
        """The serialised DOM once the page has loaded (what the browser made of the file)."""
        return self._run("--dump-dom", page.resolve().as_uri()).stdout

    def screenshot(self, page: Path, out: Path, *, width: int = 1400, height: int = 2400) -> Path:
        self._run(f"--window-size={width},{height}", f"--screenshot={out}", page.resolve().as_uri())
        assert out.is_file(), f"no screenshot written to {out}"
        return out


def find_chromium() -> str | None:
    for name in (os.environ.get("FAIRMIND_CHROMIUM"), *CHROMIUM_CANDIDATES):
        if name and (found := shutil.which(name)):
            return found
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    """Headless Chromium with a new profile under ``tmp_path``; skipped when none is installed
    (Debian: ``apt-get install chromium``; ``FAIRMIND_CHROMIUM`` names another binary)."""
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set FAIRMIND_CHROMIUM)")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    return Browser(binary, profile)
