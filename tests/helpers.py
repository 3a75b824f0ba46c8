"""What the tests share: plain functions and classes, no fixtures (those live in the conftests).

Sections, in order:

* environment: the variables an inner session must not see, and :func:`subprocess_env`, the
  environment of a session run in a subprocess;
* reports: reading and validating ``--fairmind-json`` reports and history entries;
* conftest snippets: test providers for inner sessions (:func:`providers_conftest`,
  :func:`third_party_conftest`) and a two-model test module (:data:`TWO_MODELS`);
* processes: pytest and ``fairmind`` in subprocesses (:func:`run_pytest`, :func:`run_fairmind`,
  :func:`background_pytest`) and the processes they leave behind, read from ``/proc``;
* network: :func:`free_port` and :class:`StalledListener`;
* MLflow: a real ``mlflow server``, already-migrated SQLite stores, reading runs back;
* W&B: the sandbox of a test and the reader of offline ``.wandb`` run files.

Nothing here imports mlflow or wandb at import time: in-process pytester runs drop the modules
imported during a test, and those libraries do not survive being imported twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import glob
import importlib
import importlib.metadata
import json
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import jsonschema
import pytest

# --------------------------------------------------------------------------- environment

#: ``fairmind_plots``' environment twin: the suite's sessions draw no charts unless a test asks
#: (the ``charts`` fixture), see ``conftest.clean_env``.
CHARTS_VAR = "FAIRMIND_PLOTS"

#: Variables that configure the plugin, its providers or the CI summary: an inner session run
#: in-process (pytester) must not see the developer's (the root conftest clears them per test).
PLUGIN_ENV_VARS = (
    "FAIRMIND_PROVIDER",
    CHARTS_VAR,
    "FAIRMIND_PROJECT",
    "FAIRMIND_GATES",
    "FAIRMIND_GATE_ACTION",
    "FAIRMIND_BASELINE",
    "FAIRMIND_JSON",
    "FAIRMIND_TIMEOUT",
    "FAIRMIND_STRICT",
    "FAIRMIND_EVIDENCE",
    "FAIRMIND_INCONCLUSIVE",
    "FAIRMIND_MULTIPLE_TESTING",
    "FAIRMIND_CI",
    "FAIRMIND_N_BOOT",
    "FAIRMIND_JUNIT",
    "FAIRMIND_HTML",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "WANDB_MODE",
    "WANDB_PROJECT",
    "WANDB_API_KEY",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_ACTIONS",
    "PYTEST_ADDOPTS",
    "PYTEST_XDIST_AUTO_NUM_WORKERS",
)

#: Set in every session :func:`subprocess_env` builds; children inherit it, so ``/proc`` tells
#: our processes from others'.
MARKER_VAR = "FAIRMIND_RELIABILITY_MARKER"

#: Prefixes of variables that would point a subprocess session at the developer's services.
_SCRUBBED_PREFIXES = ("MLFLOW_", "WANDB_", "FAIRMIND_", "PYTEST_", "GITHUB_")


def subprocess_env(folder: Path, **extra: str) -> dict[str, str]:
    """The environment of a session run in a subprocess in ``folder``: none of the developer's
    tracking settings or secrets, wandb sandboxed under ``folder``, :data:`MARKER_VAR` set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    for name in list(env):
        if name.endswith(("_TOKEN", "_KEY", "_PASSWORD", "_SECRET")):
            del env[name]  # only the secrets a test sets itself
    env.update(
        {
            MARKER_VAR: str(folder),
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
    if CHARTS_VAR in os.environ:  # charts off, as in the test's own process
        env[CHARTS_VAR] = os.environ[CHARTS_VAR]
    (folder / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(extra)
    return env


# --------------------------------------------------------------------------- reports

REPORT = "report.json"

#: pytest's outcome words, as the report's ``tests[].outcome`` holds them (see docs/report.md).
OUTCOME_WORDS = {"passed", "failed", "skipped", "error", "xfailed", "xpassed"}


def schema() -> dict[str, Any]:
    """The JSON Schema shipped in the package (``pytest_fairmind/report.schema.json``)."""
    text = resources.files("pytest_fairmind").joinpath("report.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-standard JSON token {token!r} in a report")


def strict_loads(text: str) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and ``-Infinity``."""
    return json.loads(text, parse_constant=_reject_constant)


def validate(doc: dict[str, Any]) -> dict[str, Any]:
    """Validate a report document against the shipped schema and its date format."""
    jsonschema.Draft202012Validator.check_schema(schema())
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    session = doc["session"]
    started = dt.datetime.fromisoformat(session["started"])
    if session["finished"] is not None:
        assert dt.datetime.fromisoformat(session["finished"]) >= started
    return doc


def load_report(path: Path) -> dict[str, Any]:
    """Read a report or history entry as strict UTF-8 JSON and validate it against the schema."""
    text = path.read_bytes().decode("utf-8")  # strict UTF-8
    doc: dict[str, Any] = strict_loads(text)
    return validate(doc)


def load(path: Path) -> dict[str, Any]:
    """A JSON file as it is (no validation)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def run_with_report(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run pytest in-process with ``--fairmind-json`` and return the result and the validated report."""
    path = pytester.path / REPORT
    if path.exists():
        path.unlink()
    result = pytester.runpytest(f"--fairmind-json={REPORT}", *args)
    assert path.is_file(), result.stdout.str() + result.stderr.str()
    return result, load_report(path)


def history_entries(history_dir: Path) -> list[Path]:
    """The session entries of a history folder (``.fairmind`` by default), oldest first; the
    temp files of a write in progress are not entries."""
    sessions = history_dir / "sessions"
    if not sessions.is_dir():
        return []
    return sorted(p for p in sessions.iterdir() if p.suffix == ".json" and not p.name.startswith("."))


def gate_results(doc: dict[str, Any], model: str) -> list[dict[str, Any]]:
    gates: list[dict[str, Any]] = doc["models"][model]["gates"]
    return gates


def outcomes(doc: dict[str, Any], model: str) -> dict[str, str]:
    return {t["nodeid"]: t["outcome"] for t in doc["models"][model]["tests"]}


def usage_error(result: pytest.RunResult) -> str:
    """The single ``ERROR:`` line of a usage error (exit code 4), asserting there is exactly one."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    lines = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(lines) == 1, result.stderr.str()
    assert "passed" not in result.stdout.str() and "failed" not in result.stdout.str()
    return lines[0]


# --------------------------------------------------------------------------- conftest snippets

#: A conftest with test providers. ``probe`` works (and writes what it received to
#: ``<name>.log.jsonl``), ``boom`` raises, ``slow`` hangs, ``xyzprov`` needs a missing package.
#: ``target()`` shows the settings the factory received, so the report header shows precedence.
PROVIDERS_CONFTEST = textwrap.dedent(
    """
    from __future__ import annotations

    import json
    import os
    import time

    from pytest_fairmind.result import ProviderOutcome, RunRef

    FAKE_BUILTINS = {fake_builtins!r}


    class Probe:
        def __init__(self, name, settings, behaviour):
            self.name = name
            self.settings = settings
            self.behaviour = behaviour
            with open("factory.log", "a", encoding="utf-8") as fh:
                fh.write(f"{{name}} {{os.getpid()}}\\n")

        def target(self):
            s = self.settings
            return (
                f"project={{s.project}} uri={{s.mlflow_uri}} mode={{s.wandb_mode}} timeout={{s.timeout:g}} "
                f"plots={{s.plots}}"
            )

        def log(self, session, *, timeout):
            if self.behaviour == "raise":
                raise RuntimeError("probe exploded")
            if self.behaviour == "hang":
                time.sleep(60)
                return ProviderOutcome(ok=True)
            line = {{
                "pid": os.getpid(),
                "session": session.id,
                "project": session.project,
                "timeout": timeout,
                "models": {{
                    name: {{"verdict": m.verdict, "metrics": m.metrics, "tests": len(m.tests)}}
                    for name, m in session.models.items()
                }},
            }}
            with open(f"{{self.name}}.log.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\\n")
            runs = {{
                model: RunRef(id=f"{{self.name}}-{{i}}", url=f"https://tracker.example/{{i}}", path=None)
                for i, model in enumerate(session.models)
            }}
            return ProviderOutcome(ok=True, runs=runs)


    def _factory(name, behaviour):
        return lambda settings: Probe(name, settings, behaviour)


    def pytest_fairmind_register_providers(registry):
        registry.register("probe", _factory("probe", "ok"))
        registry.register("probe2", _factory("probe2", "ok"))
        registry.register("boom", _factory("boom", "raise"))
        registry.register("slow", _factory("slow", "hang"))
        registry.register(
            "xyzprov", _factory("xyzprov", "ok"), requires=("no_such_module_xyz",), extra="xyz"
        )
        if FAKE_BUILTINS:  # stand-ins for mlflow/wandb: a later registration replaces the built-in
            registry.register("mlflow", _factory("mlflow", "ok"))
            registry.register("wandb", _factory("wandb", "ok"))
    """
)


def providers_conftest(pytester: pytest.Pytester, *, fake_builtins: bool = False, extra: str = "") -> None:
    pytester.makeconftest(PROVIDERS_CONFTEST.format(fake_builtins=fake_builtins) + textwrap.dedent(extra))


def provider_log(pytester: pytest.Pytester, name: str) -> list[dict[str, Any]]:
    path = pytester.path / f"{name}.log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


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


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- processes

PYTEST = [sys.executable, "-m", "pytest"]
FAIRMIND = [sys.executable, "-m", "pytest_fairmind.cli"]

#: Plugins of the test environment a session does not need (hypothesis alone costs ~1-3 s to import).
_UNUSED_PLUGINS = ("cacheprovider", "hypothesispytest", "benchmark", "anyio")
#: ``-p no:NAME`` for each of them: plugins of the test environment a session a test starts (or a
#: user's project) has no use for; hypothesis' alone costs a second a process.
BLOCKED_PLUGIN_ARGS = tuple(arg for name in _UNUSED_PLUGINS for arg in ("-p", f"no:{name}"))


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

    def report(self, name: str = REPORT) -> dict[str, Any]:
        return load(self.folder / name)

    def entries(self) -> list[Path]:
        return history_entries(self.folder / ".fairmind")


def run(
    cmd: Sequence[str], folder: Path, env: Mapping[str, str] | None = None, *, timeout: float = 120
) -> Result:
    """``cmd`` in ``folder`` (environment: :func:`subprocess_env` unless given), run to the end."""
    start = time.monotonic()
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=folder,
            env=dict(env) if env is not None else subprocess_env(folder),
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


def pytest_cmd(*args: str) -> list[str]:
    return [*PYTEST, *BLOCKED_PLUGIN_ARGS, "-q", "-o", "console_output_style=classic", *args]


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
        env=dict(env) if env is not None else subprocess_env(folder),
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


@dataclass
class _Process:
    pid: int
    comm: str  # the executable's name, as the kernel keeps it (15 characters at most)
    environ: bytes  # NUL-separated NAME=value entries

    def cmdline(self) -> str:
        with open(f"/proc/{self.pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()


def _live_processes() -> Iterator[_Process]:
    """Every live (non-zombie) process whose environment we may read, this one excepted."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
            if stat.rpartition(")")[2].split()[0] == "Z":
                continue  # a zombie has exited; only its parent's wait is missing
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except (OSError, IndexError):
            continue
        yield _Process(int(entry), stat[stat.find("(") + 1 : stat.rfind(")")], environ)


def our_processes(folder: Path) -> list[str]:
    """Live processes started for ``folder`` (by :func:`subprocess_env`): '<pid> <command line>'."""
    marker = f"{MARKER_VAR}={folder}".encode()
    found = []
    for proc in _live_processes():
        if marker in proc.environ.split(b"\0"):
            with contextlib.suppress(OSError):
                found.append(f"{proc.pid} {proc.cmdline()}")
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


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# --------------------------------------------------------------------------- network


def free_port() -> int:
    """A loopback port nothing listens on right now: a connection is refused at once (or a
    server may bind it; it can be taken between this call and the bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class StalledListener:
    """``127.0.0.1:PORT`` that accepts connections, reads what it is sent and never answers.

    It notes when a client first reached it (:attr:`first_accept`) and when the client let go
    of its last connection (:attr:`last_release`, when the client closed it or its process
    ended), so a test can bound how long a client stayed stuck in a request without counting the
    start-up before it (which depends on how loaded the machine is). Times are ``time.monotonic()``.
    """

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = threading.Event()  # set at the first connection
        self.released = threading.Event()  # set while connections came and none is held
        self.first_accept: float | None = None
        self.last_release: float | None = None
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
                readable, _, _ = select.select([self._sock, *self._held], [], [], 0.05)
            except (OSError, ValueError):
                continue
            now = time.monotonic()
            for sock in readable:
                if sock is self._sock:
                    self._accept(now)
                else:
                    self._read(sock, now)

    def _accept(self, now: float) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        self._held.append(conn)
        self.connections += 1
        if self.first_accept is None:
            self.first_accept = now
        self.released.clear()
        self.accepted.set()

    def _read(self, conn: socket.socket, now: float) -> None:
        try:
            data = conn.recv(65536)  # the request: read and ignored
        except BlockingIOError:
            return
        except OSError:
            data = b""  # reset by the client
        if data:
            return
        self._held.remove(conn)
        conn.close()
        if not self._held:
            self.last_release = now
            self.released.set()

    def held_seconds(self, *, wait: float = 5.0) -> float:
        """Seconds from the first connection until the client let go of the last one (waiting
        up to ``wait`` seconds for that; still held then: until now)."""
        assert self.first_accept is not None, "nobody reached the listener"
        self.released.wait(wait)
        end = self.last_release if self.released.is_set() and self.last_release else time.monotonic()
        return end - self.first_accept

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


# --------------------------------------------------------------------------- MLflow

SERVER_START_TIMEOUT = 90.0  # seconds; ~10 s on a quiet 2-core machine, slower under load

_ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')

#: Run in a fresh interpreter: creating the store runs MLflow's migrations (seconds, more on a
#: loaded machine), which is why it is done once per test process and copied after.
_MIGRATE = """
import sys, warnings
warnings.simplefilter("ignore")
from mlflow import MlflowClient
MlflowClient(tracking_uri=sys.argv[1]).search_experiments()
"""


def mlflow_command() -> list[str]:
    """The `mlflow` CLI of the interpreter running the tests."""
    script = Path(sys.executable).parent / "mlflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlflow"]


def mlflow_server_env(**extra: str) -> dict[str, str]:
    """The environment of an `mlflow server`: quiet, lean, pointed at no other store."""
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


def store_template_path(run_basetemp: Path) -> Path:
    """Where the run's migrated MLflow store template lives: beside the xdist workers' base temps
    (in the run's own base temp), so that the controller and every worker agree on it."""
    return run_basetemp / "mlflow-template" / "template.db"


def make_migrated_store(db: Path) -> Path:
    """An empty SQLite store with MLflow's current schema at ``db``, created by a child process
    unless it is there already. Processes that share ``db`` (xdist workers) create it once: the
    first takes the lock beside it, the others wait for it and find the store made."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if db.is_file():
            return db
        partial = db.with_name(db.name + ".partial")
        partial.unlink(missing_ok=True)
        done = subprocess.run(
            [sys.executable, "-c", _MIGRATE, f"sqlite:///{partial}"],
            cwd=db.parent,
            env=mlflow_server_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0 and partial.is_file(), done.stderr[-3000:]
        partial.replace(db)  # whole or absent, never half made
    return db


class MlflowStore(Protocol):
    """The ``mlflow_store`` fixture: ``mlflow_store(folder, name="mlflow.db") -> uri`` puts a ready
    store at ``folder / name``."""

    def __call__(self, folder: Path, name: str = "mlflow.db") -> str: ...


def copy_store(template: Path, db: Path) -> str:
    """Put a copy of the migrated store ``template`` at ``db`` and return its URI.

    The copy is what a first use would have created with ``db``'s folder as working directory:
    the default experiment's artifacts go to ``<folder>/mlruns/0`` (the only path in the store).
    """
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, db)
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
            (str(db.parent / "mlruns" / "0"),),
        )
    return f"sqlite:///{db}"


@dataclass
class MlflowServer:
    """A running `mlflow server`: its URI and files. Its uvicorn access log is kept so tests and
    the benchmark can count HTTP requests."""

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


def start_mlflow_server(
    folder: Path, *, timeout: float = SERVER_START_TIMEOUT, template: Path | None = None
) -> MlflowServer:
    """Start a lean server (one worker, no job execution) with a SQLite backend and proxied
    artifacts under ``folder``; wait for /health. With ``template`` (a migrated store), a new
    store starts as a copy of it instead of being migrated by the server."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "server.db"
    if template is not None and not db.exists():
        copy_store(template, db)
    last_error = ""
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        log_path = folder / f"server-{port}.log"
        cmd = [
            *mlflow_command(),
            "server",
            "--backend-store-uri",
            f"sqlite:///{db}",
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
                env=mlflow_server_env(),
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
    """Stop a server by its process group id."""
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


# --------------------------------------------------------------------------- W&B: the sandbox

#: Variables that would point wandb at a real account, project or directory of the developer's.
WANDB_VARS = (
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
    """Where wandb writes during one test: everything under the test's ``tmp_path``."""

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


def core_processes_for(marker: str) -> list[int]:
    """Live ``wandb-core`` processes whose environment mentions ``marker`` (a test's folder).

    Other sessions on the machine may run wandb too; the environment tells ours apart.
    """
    return [p.pid for p in _live_processes() if p.comm == "wandb-core" and marker.encode() in p.environ]


def wait_no_core(marker: str, grace: float = 0.0) -> list[int]:
    """Our wandb-core processes still alive after ``grace`` seconds (empty when none)."""
    deadline = time.monotonic() + grace
    while True:
        left = core_processes_for(marker)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


# --------------------------------------------------------------------------- W&B: offline run files
#
# wandb 0.31 writes no summary JSON for offline runs: everything is in the ``run-<id>.wandb``
# file, a LevelDB-log framed stream of ``wandb.proto.wandb_internal_pb2.Record`` messages:
#
# * a 7-byte file header: ``:W&B``, magic ``0xBEE1`` (uint16 LE), version ``0`` (uint8);
# * 32 KiB blocks counted from the start of the file (header included); a block tail shorter than
#   a chunk header is zero padding;
# * each chunk: a 7-byte header (CRC-32 uint32 LE, length uint16 LE, type uint8: 1 full, 2 first,
#   3 middle, 4 last) and its data. The CRC is zlib's CRC-32 of the data seeded with the CRC of
#   the type byte (what wandb-core writes; checked against 0.31.0, it is not CRC-32C).
#
# The layout is wandb's internal format, so the reader is pinned: SUPPORTED_WANDB is the range it
# is known to read, and a file with another header fails loudly instead of misreading.

#: wandb versions whose offline file this reader supports: [low, high). Verified on 0.31.0.
SUPPORTED_WANDB = ((0, 22), (0, 40))

HEADER = struct.Struct("<4sHB")
HEADER_IDENT = b":W&B"
HEADER_MAGIC = 0xBEE1
HEADER_VERSION = 0
CHUNK = struct.Struct("<IHB")
BLOCK_SIZE = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_TYPE_CRC = [zlib.crc32(bytes([t])) for t in range(256)]


class WandbFileError(ValueError):
    """The file is not a ``.wandb`` log this reader understands."""


def wandb_version() -> tuple[int, ...] | None:
    """The installed wandb version, read from its metadata (importing wandb is not needed)."""
    try:
        version = importlib.metadata.version("wandb")
    except importlib.metadata.PackageNotFoundError:
        return None
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def unsupported_reason() -> str | None:
    """Why the installed wandb cannot be read back by this module, or None when it can."""
    version = wandb_version()
    if version is None:
        return "wandb is not installed"
    low, high = SUPPORTED_WANDB
    if not (low <= version[:2] < high):
        shown = ".".join(map(str, version))
        return (
            f"wandb {shown} is outside the range the .wandb reader supports "
            f"({'.'.join(map(str, low))} <= v < {'.'.join(map(str, high))}); update tests/helpers.py"
        )
    return None


def iter_payloads(path: str) -> Iterator[bytes]:
    """The serialized records of a ``.wandb`` file, chunks reassembled and CRC-checked."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < HEADER.size:
        raise WandbFileError(f"{path}: too short for a .wandb header")
    ident, magic, version = HEADER.unpack_from(data)
    if (ident, magic, version) != (HEADER_IDENT, HEADER_MAGIC, HEADER_VERSION):
        raise WandbFileError(f"{path}: unknown header {ident!r} {magic:#x} v{version}")
    pos = HEADER.size
    pending: bytearray | None = None
    while pos < len(data):
        left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE
        if left_in_block < CHUNK.size:
            pos += left_in_block  # padding
            continue
        if pos + CHUNK.size > len(data):
            break  # a torn tail (the writer was killed): what came before is still good
        crc, length, kind = CHUNK.unpack_from(data, pos)
        pos += CHUNK.size
        if kind == 0 and length == 0:
            pos += left_in_block - CHUNK.size  # zero fill to the end of the block
            continue
        chunk = data[pos : pos + length]
        pos += length
        if len(chunk) < length:
            break
        if zlib.crc32(chunk, _TYPE_CRC[kind]) & 0xFFFFFFFF != crc:
            raise WandbFileError(f"{path}: CRC mismatch at offset {pos - length - CHUNK.size}")
        if kind == FULL:
            yield bytes(chunk)
        elif kind == FIRST:
            pending = bytearray(chunk)
        elif kind in (MIDDLE, LAST):
            if pending is None:
                raise WandbFileError(f"{path}: continuation chunk without a first chunk")
            pending += chunk
            if kind == LAST:
                yield bytes(pending)
                pending = None
        else:
            raise WandbFileError(f"{path}: unknown chunk type {kind}")


_PROTO: dict[str, Any] = {}


def _proto(name: str) -> Any:
    """``Record`` and ``MessageToDict``, imported once and kept here.

    ``pytester`` drops modules imported during a test from ``sys.modules``; importing the
    generated protobuf modules a second time would then fail (duplicate descriptors), so the
    first import must be the only one.
    """
    if not _PROTO:
        with warnings.catch_warnings():  # importing wandb adds filters of its own
            json_format = importlib.import_module("google.protobuf.json_format")
            wandb_internal_pb2 = importlib.import_module("wandb.proto.wandb_internal_pb2")
        _PROTO.update(Record=wandb_internal_pb2.Record, MessageToDict=json_format.MessageToDict)
    return _PROTO[name]


def iter_records(path: str) -> Iterator[Any]:
    """``wandb_internal_pb2.Record`` messages of a ``.wandb`` file, in order."""
    record_type = _proto("Record")
    for payload in iter_payloads(path):
        record = record_type()
        record.ParseFromString(payload)
        yield record


@dataclass
class WandbRun:
    """One offline run as its ``.wandb`` file tells it."""

    dir: str
    id: str = ""
    name: str = ""
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    environment: list[dict[str, Any]] = field(default_factory=list)  # metadata: args, program...
    record_types: list[str] = field(default_factory=list)
    exited: bool = False

    def table(self, key: str) -> dict[str, Any]:
        """The table logged under ``key`` (``{"columns": [...], "data": [[...]]}``) from the run files."""
        ref = self.summary[key]
        assert isinstance(ref, dict) and ref.get("_type") in ("table-file", "table"), ref
        with open(os.path.join(self.dir, "files", ref["path"]), encoding="utf-8") as fh:
            loaded: dict[str, Any] = json.load(fh)
        return loaded

    def media_keys(self, kind: str) -> list[str]:
        """Summary keys holding media of ``kind`` (``table-file``, ``image-file``)."""
        return sorted(k for k, v in self.summary.items() if isinstance(v, dict) and v.get("_type") == kind)

    @property
    def metrics(self) -> dict[str, Any]:
        """Summary entries that are not wandb's own (``_runtime``...) or media."""
        return {k: v for k, v in self.summary.items() if not k.startswith("_") and not isinstance(v, dict)}


def _json(text: str) -> Any:
    return json.loads(text)  # wandb writes Infinity / -Infinity / NaN tokens; json reads them


def _apply(target: dict[str, Any], item: Any) -> None:
    keys = [item.key] if item.key else list(item.nested_key)
    node = target
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = _json(item.value_json)


def _remove(target: dict[str, Any], item: Any) -> None:
    keys = [item.key] if item.key else list(item.nested_key)
    node = target
    for key in keys[:-1]:
        node = node.get(key, {})
    node.pop(keys[-1], None)


def read_run(path: str) -> WandbRun:
    """A run from its directory (``offline-run-*``) or its ``.wandb`` file."""
    message_to_dict = _proto("MessageToDict")
    if os.path.isdir(path):
        files = glob.glob(os.path.join(path, "run-*.wandb"))
        if len(files) != 1:
            raise WandbFileError(f"{path}: expected one run-*.wandb file, found {len(files)}")
        file = files[0]
    else:
        file = path
    run = WandbRun(dir=os.path.dirname(file))
    for record in iter_records(file):
        kind = record.WhichOneof("record_type")
        run.record_types.append(kind or "")
        if kind == "run":
            r = record.run
            run.id, run.project, run.entity = r.run_id, r.project, r.entity
            run.group, run.job_type, run.name, run.notes = r.run_group, r.job_type, r.display_name, r.notes
            run.tags = list(r.tags)
            for item in r.config.update:
                _apply(run.config, item)
        elif kind == "config":
            for item in record.config.update:
                _apply(run.config, item)
            for item in record.config.remove:
                _remove(run.config, item)
        elif kind == "summary":
            for item in record.summary.update:
                _apply(run.summary, item)
            for item in record.summary.remove:
                _remove(run.summary, item)
        elif kind == "history":
            step: dict[str, Any] = {}
            for item in record.history.item:
                _apply(step, item)
            run.history.append(step)
        elif kind == "environment":
            run.environment.append(message_to_dict(record.environment))
        elif kind == "exit":
            run.exited = True
    run.config.pop("_wandb", None)
    return run


def offline_run_dirs(wandb_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(wandb_dir, "offline-run-*")))


def read_runs(wandb_dir: str) -> dict[str, WandbRun]:
    """Every offline run under ``wandb_dir`` by run name; a name seen twice is an error."""
    runs: dict[str, WandbRun] = {}
    for directory in offline_run_dirs(wandb_dir):
        run = read_run(directory)
        if run.name in runs:
            raise AssertionError(f"two runs named {run.name!r}: {runs[run.name].dir} and {run.dir}")
        runs[run.name] = run
    return runs


def all_bytes(*roots: str) -> Iterator[tuple[str, bytes]]:
    """Every file under ``roots`` as bytes, ``.wandb`` files also as their reassembled records.

    For secret scans: a string split across a 32 KiB block boundary is whole again in a record.
    """
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    continue
                with open(path, "rb") as fh:
                    yield path, fh.read()
                if name.endswith(".wandb"):
                    for payload in iter_payloads(path):
                        yield f"{path} (record)", payload
