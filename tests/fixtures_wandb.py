"""W&B fixtures and the reader for offline `.wandb` run files (see ``wandb_records``)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from wandb_records import unsupported_reason

#: Variables that would point wandb at a real account, project or directory of the developer's.
_WANDB_VARS = (
    "WANDB_API_KEY",
    "WANDB_IDENTITY_TOKEN_FILE",
    "WANDB_MODE",
    "WANDB_BASE_URL",
    "WANDB_ENTITY",
    "WANDB_PROJECT",
    "WANDB_RUN_ID",
    "WANDB_RUN_GROUP",
    "WANDB_JOB_TYPE",
    "WANDB_TAGS",
    "WANDB_NAME",
    "WANDB_NOTES",
    "WANDB_RESUME",
    "FAIRMIND_PROVIDER",
    "FAIRMIND_PROJECT",
)


@dataclass
class WandbEnv:
    """Where wandb writes during one test: everything under ``tmp_path``."""

    root: Path  # WANDB_DIR: runs go to root / "wandb"
    data: Path  # WANDB_DATA_DIR: staged table artifacts
    cache: Path
    config: Path
    netrc: Path  # NETRC: absent unless a test writes it

    @property
    def wandb_dir(self) -> Path:
        return self.root / "wandb"

    def scan_roots(self) -> list[str]:
        return [str(p) for p in (self.root, self.data, self.cache, self.config) if p.exists()]


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
    for name in _WANDB_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_DIR", str(env.root))
    monkeypatch.setenv("WANDB_DATA_DIR", str(env.data))
    monkeypatch.setenv("WANDB_ARTIFACT_DIR", str(env.data / "artifacts"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(env.cache))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(env.config))
    monkeypatch.setenv("NETRC", str(env.netrc))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return env


def core_processes_for(marker: str) -> list[int]:
    """Live ``wandb-core`` processes whose environment mentions ``marker`` (our tmp_path).

    Other sessions on the machine may run wandb too; the environment tells ours apart.
    """
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="utf-8") as fh:
                if fh.read().strip() != "wandb-core":
                    continue
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                if fh.read().rpartition(")")[2].split()[0] == "Z":
                    continue  # a zombie has exited; only its parent's wait is missing
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker.encode() in fh.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def wait_no_core(marker: str, grace: float = 0.0) -> list[int]:
    """Our wandb-core processes still alive after ``grace`` seconds (empty when none)."""
    deadline = time.monotonic() + grace
    while True:
        left = core_processes_for(marker)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


@pytest.fixture
def stalled_server() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` that accepts connections and never answers."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


@pytest.fixture
def closed_port() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
