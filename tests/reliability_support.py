"""Shared parts of the reliability/security tests (issue 6): real faults, no mocks.

* :class:`StalledListener`: a TCP listener that accepts and never answers, and tells when it has
  accepted (so a test can signal pytest while a provider is provably inside a request).
* :func:`closed_port`: a loopback port nothing listens on.
* :class:`Session`: a pytest session in a subprocess (own environment, own folder), run to the end
  or started in the background, with its report, history and leftover processes at hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PYTEST = [sys.executable, "-m", "pytest"]
FAIRMIND = [sys.executable, "-m", "pytest_fairmind.cli"]
#: Set in every session we start; children inherit it, so /proc tells our processes from others'.
MARKER_VAR = "FAIRMIND_RELIABILITY_MARKER"

#: Variables that would point a session at the developer's own services or settings.
_SCRUBBED_PREFIXES = ("MLFLOW_", "WANDB_", "FAIRMIND_", "PYTEST_", "GITHUB_")


class StalledListener:
    """``127.0.0.1:PORT`` that accepts connections and never sends a byte."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = threading.Event()
        self.first_accept: float | None = None  # time.monotonic() of the first connection
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="stalled-listener", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._held.append(conn)
            self.connections += 1
            if self.first_accept is None:
                self.first_accept = time.monotonic()
            self.accepted.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            with contextlib.suppress(OSError):
                conn.close()
        self._sock.close()

    def __enter__(self) -> StalledListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def closed_port() -> int:
    """A loopback port with no listener (connection refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(folder: Path, **extra: str) -> dict[str, str]:
    """The environment for a session in ``folder``: no tracking settings of the developer, wandb
    sandboxed under ``folder``, the marker set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    for name in list(env):
        if name.endswith(("_TOKEN", "_KEY", "_PASSWORD", "_SECRET")):
            del env[name]  # only the secrets a test sets itself
    env.update(
        {
            MARKER_VAR: str(folder),
            "PYTHONDONTWRITEBYTECODE": "1",
            "WANDB_DIR": str(folder / "wb"),
            "WANDB_DATA_DIR": str(folder / "wb-data"),
            "WANDB_CACHE_DIR": str(folder / "wb-cache"),
            "WANDB_CONFIG_DIR": str(folder / "wb-config"),
            "WANDB_ARTIFACT_DIR": str(folder / "wb-data" / "artifacts"),
            "NETRC": str(folder / "no-netrc"),
            "WANDB_SILENT": "true",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "TMPDIR": str(folder / "tmp"),  # temp files of the session, ours to inspect
        }
    )
    (folder / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(extra)
    return env


@dataclass
class Result:
    """A finished command: exit code, merged output and wall time."""

    rc: int
    out: str
    seconds: float
    folder: Path
    history: Path = field(init=False)

    def __post_init__(self) -> None:
        self.history = self.folder / ".fairmind" / "sessions"

    def report(self, name: str = "report.json") -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.folder / name).read_text(encoding="utf-8"))
        return data

    def entries(self) -> list[Path]:
        return history_entries(self.folder)


def history_entries(folder: Path) -> list[Path]:
    sessions = folder / ".fairmind" / "sessions"
    if not sessions.is_dir():
        return []
    return sorted(p for p in sessions.iterdir() if p.suffix == ".json" and not p.name.startswith("."))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def run(
    cmd: Sequence[str], folder: Path, env: Mapping[str, str] | None = None, *, timeout: float = 120
) -> Result:
    start = time.monotonic()
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=folder,
            env=dict(env) if env is not None else clean_env(folder),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        kill_our_processes(folder)  # provider processes live in sessions of their own
        raise
    return Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), time.monotonic() - start, folder)


#: Plugins of the test environment a session does not need (hypothesis alone costs ~1-3 s to import).
_UNUSED_PLUGINS = ("cacheprovider", "hypothesispytest", "benchmark", "anyio")


def pytest_cmd(*args: str) -> list[str]:
    blocked = [arg for name in _UNUSED_PLUGINS for arg in ("-p", f"no:{name}")]
    return [*PYTEST, *blocked, "-q", "-o", "console_output_style=classic", *args]


def run_pytest(
    folder: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> Result:
    return run(pytest_cmd(*args), folder, env, timeout=timeout)


def run_fairmind(
    folder: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> Result:
    return run([*FAIRMIND, *args], folder, env, timeout=timeout)


@contextlib.contextmanager
def background_pytest(
    folder: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """pytest started in its own process group; whatever is left of the group is killed after."""
    log = open(folder / "pytest-output.txt", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        pytest_cmd(*args),
        cwd=folder,
        env=dict(env) if env is not None else clean_env(folder),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
        kill_our_processes(folder)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- processes


def _state(pid: str) -> str:
    with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
        return fh.read().rpartition(")")[2].split()[0]


def our_processes(folder: Path) -> list[str]:
    """Live (non-zombie) processes started for ``folder``: '<pid> <command line>'."""
    marker = f"{MARKER_VAR}={folder}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker not in fh.read().split(b"\0"):
                    continue
            if _state(entry) == "Z":
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        found.append(f"{entry} {cmdline}")
    return found


def wait_no_processes(folder: Path, grace: float = 5.0) -> list[str]:
    """Our processes still alive after ``grace`` seconds (empty when all are gone)."""
    deadline = time.monotonic() + grace
    while True:
        left = our_processes(folder)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def kill_our_processes(folder: Path) -> None:
    """After a failed test: end whatever of ``folder``'s session is still running."""
    for line in our_processes(folder):
        with contextlib.suppress(OSError):
            os.kill(int(line.split()[0]), signal.SIGKILL)


def wait_for(predicate: Any, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# --------------------------------------------------------------------------- test-file snippets

#: A test module recording for two models (numbers chosen to be checked exactly).
TWO_MODELS = """
import pytest

@pytest.mark.fairmind(model="credit")
def test_credit(fairmind):
    fairmind.record({"demographic_parity_ratio": 0.85, "equalized_odds_difference": 0.05}, scope="sex",
                    params={"threshold": "0.5"}, tags={"team": "risk"})

@pytest.mark.fairmind(model="churn")
def test_churn(fairmind):
    fairmind.record({"accuracy": 0.75})
    fairmind.record({"demographic_parity_difference": 0.125}, scope="age")
"""


def third_party_conftest(providers: Mapping[str, str]) -> str:
    """A conftest registering providers ``name -> behaviour`` (``ok``, ``raise``, ``sleep``,
    ``bad-return``, ``fail``, ``exit``, ``malformed``, ``silent-fail``, ``vandal``: clears the
    session it is given, ``peek``: copy the history entry, then log)."""
    return (
        """
import os, sys, time
from pytest_fairmind.result import ProviderOutcome, RunRef

class Probe:
    def __init__(self, name, behaviour, settings):
        self.name, self.behaviour, self.settings = name, behaviour, settings
    def target(self):
        return f"memory://{self.name}"
    def log(self, session, *, timeout):
        b = self.behaviour
        if b == "raise":
            raise RuntimeError(f"{self.name} exploded")
        if b == "sleep":
            time.sleep(600)
        if b == "bad-return":
            return {"ok": True}
        if b == "fail":
            return ProviderOutcome(ok=False, error=f"{self.name}: server said no")
        if b == "exit":
            raise SystemExit(3)
        if b == "malformed":
            return ProviderOutcome(ok=True, error=ValueError("not text"), runs={"credit": "run-1"})
        if b == "silent-fail":
            return ProviderOutcome(ok=False)
        if b == "vandal":  # changes what it was given
            session.models.clear()
            session.id = "changed"
            return ProviderOutcome(ok=True)
        if b == "peek":  # what the history holds while providers run
            import glob, shutil
            for path in glob.glob(os.path.join(self.settings.workdir, ".fairmind", "sessions", "*.json")):
                shutil.copy(path, os.path.join(self.settings.workdir, f"peek-{self.name}.json"))
        with open(f"logged-{self.name}.txt", "a") as fh:
            fh.write(",".join(sorted(session.models)) + "\\n")
        return ProviderOutcome(ok=True, runs={m: RunRef(id=f"{self.name}-{m}") for m in session.models})

PROVIDERS = """
        + repr(dict(providers))
        + """

def pytest_fairmind_register_providers(registry):
    for name, behaviour in PROVIDERS.items():
        registry.register(name, lambda settings, n=name, b=behaviour: Probe(n, b, settings))
"""
    )
