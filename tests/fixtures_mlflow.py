"""MLflow fixtures: a real `mlflow server` on a free loopback port (session scope), SQLite stores.

The server starts lean (one worker, no job execution) and is stopped by its process group id.
Its uvicorn access log is kept so tests and the benchmark can count HTTP requests.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SERVER_START_TIMEOUT = 90.0  # seconds; ~10 s on a quiet 2-core machine, slower under load

_ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mlflow_command() -> list[str]:
    """The `mlflow` CLI of the interpreter running the tests."""
    script = Path(sys.executable).parent / "mlflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlflow"]


def quiet_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env.update(
        PYTHONWARNINGS="ignore",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class MlflowServer:
    """A running `mlflow server`: its URI and files."""

    uri: str
    port: int
    folder: Path
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()

    def requests_since(self, mark: int, *, settle: float = 0.3) -> list[tuple[str, str, int]]:
        """(method, path, status) of the requests logged after line ``mark`` of the log."""
        time.sleep(settle)  # uvicorn writes the access line just after answering
        out = []
        for line in self.log_lines()[mark:]:
            m = _ACCESS_LINE.search(line)
            if m:
                out.append((m["method"], m["path"], int(m["status"])))
        return out

    def mark(self) -> int:
        return len(self.log_lines())


def healthy(uri: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_mlflow_server(folder: Path, *, timeout: float = SERVER_START_TIMEOUT) -> MlflowServer:
    """Start a server with a SQLite backend and proxied artifacts under ``folder``; wait for /health."""
    folder.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        log_path = folder / f"server-{port}.log"
        cmd = [
            *mlflow_command(),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'server.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=folder,
                env=quiet_env(),
                start_new_session=True,  # its own process group: uvicorn's worker goes with it
            )
        uri = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if healthy(uri):
                return MlflowServer(uri=uri, port=port, folder=folder, log_path=log_path, proc=proc)
            time.sleep(0.3)
        stop_mlflow_server(proc)
        last_error = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"mlflow server did not start within {timeout:g} s:\n{last_error}")


def stop_mlflow_server(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # Leftover workers of the group, if the parent went first.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real `mlflow server` for this test session (one per xdist worker)."""
    try:
        server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        stop_mlflow_server(server.proc)


@pytest.fixture
def mlflow_sqlite_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite store in ``tmp_path``; the cwd moves there too, because MLflow puts the
    artifacts of experiments it creates under ``./mlruns`` of the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def mlflow_client(uri: str) -> Any:
    """An MlflowClient for reading back (imported lazily: the plugin itself never imports mlflow)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def runs_of(uri: str, project: str, *, session_id: str | None = None, deleted: bool = False) -> list[Any]:
    """Runs of the experiment ``project`` (all active ones, or one session's), oldest first."""
    from mlflow.entities import ViewType

    client = mlflow_client(uri)
    experiment = client.get_experiment_by_name(project)
    if experiment is None:
        return []
    filter_string = f"tags.`fairmind.session` = '{session_id}'" if session_id else ""
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=filter_string,
        run_view_type=ViewType.ALL if deleted else ViewType.ACTIVE_ONLY,
        max_results=5000,
        order_by=["attributes.start_time ASC"],
    )
    return list(runs)


def artifact_paths(uri: str, run_id: str, path: str = "fairmind") -> set[str]:
    """Every artifact file under ``path`` of a run, recursively."""
    client = mlflow_client(uri)
    found: set[str] = set()
    stack = [path]
    while stack:
        for info in client.list_artifacts(run_id, stack.pop()):
            if info.is_dir:
                stack.append(info.path)
            else:
                found.add(info.path)
    return found
