"""Trust in what the providers log (issue 12, provider side), against the real parts: real SQLite
stores created by MLflow itself, a real `mlflow server` in Chromium, real wandb offline, real
provider child processes killed for real.

Item numbers are the issue's: 1 concurrent first use of a store, 3 runs another process writes,
4 long non-ASCII names, 20 keys that hold a secret, 21 leftovers of a killed child, 22 warm-up,
23 the experiment kind MLflow's UI reads. Item 19 (redaction) is in tests/unit/test_redact.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    MlflowServer,
    MlflowStore,
    WandbEnv,
    artifact_paths,
    core_processes_for,
    mlflow_client,
    mlflow_command,
    mlflow_server_env,
    read_runs,
    run_pytest,
    runs_of,
    subprocess_env,
    wait_for,
    wait_no_core,
    write,
)

from pytest_fairmind import locks, procs
from pytest_fairmind.dispatch import start_providers
from pytest_fairmind.isolation import CallFailed, IsolatedProvider, NotWarm
from pytest_fairmind.providers.base import ProviderSettings
from pytest_fairmind.providers.mlflow import (
    EXPERIMENT_KIND,
    TAG_EXPERIMENT_KIND,
    TAG_WRITER,
    UI_RUNS_QUERY,
    MlflowProvider,
    safe_file_name,
    sqlite_store_problem,
)
from pytest_fairmind.providers.wandb import COMPLETE_MARKER, fit_key, run_id, run_lock_path, wandb_dir
from pytest_fairmind.result import ModelResult, ProviderOutcome, SessionResult

MLFLOW = "pytest_fairmind.providers.mlflow:MlflowProvider"
WANDB = "pytest_fairmind.providers.wandb:WandbProvider"
QUERY = "pytest_fairmind.gating.mlflow_query"
ROWS = [
    {"group": {"sex": "F"}, "count": 10, "selection_rate": 0.5, "accuracy": 0.8},
    {"group": {"sex": "M"}, "count": 12, "selection_rate": 0.4, "accuracy": 0.75},
]
LONG_SCOPE = "é" * 140  # 140 characters, 280 bytes in UTF-8: a valid scope, too long a file name


def model(name: str, scope: str = "sex", **metrics: float) -> ModelResult:
    return ModelResult(
        name=name,
        metrics={f"{scope}/demographic_parity_ratio": 0.8, **metrics},
        params={"threshold": "0.5"},
        groups={scope: [dict(r) for r in ROWS]},
    )


def session_of(*models: ModelResult, project: str = "trust", session_id: str | None = None) -> SessionResult:
    return SessionResult(
        id=session_id or f"s-{uuid.uuid4().hex[:12]}",
        project=project,
        started="2026-03-01T10:00:00+00:00",
        finished="2026-03-01T10:02:00+00:00",
        models={m.name: m for m in models},
    )


def isolated(name: str, **settings: Any) -> IsolatedProvider:
    return IsolatedProvider(name, MLFLOW if name == "mlflow" else WANDB, ProviderSettings(**settings))


def db_path(uri: str) -> str:
    return uri[len("sqlite:///") :]


def all_runs(uri: str, project: str) -> list[Any]:
    """Every run of the experiment, deleted ones included."""
    return runs_of(uri, project, deleted=True)


def isolation_children(parent: int) -> list[int]:
    """Provider child processes (``python -m pytest_fairmind.isolation``) of ``parent``."""
    found = []
    for stat in procs.processes():
        if stat.ppid != parent:
            continue
        try:
            cmdline = Path(f"/proc/{stat.pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"pytest_fairmind.isolation" in cmdline:
            found.append(stat.pid)
    return found


def has_imported_pydantic(pid: int) -> bool:
    """Whether the process has loaded pydantic's compiled core (mlflow and wandb import it; the
    provider modules of pytest-fairmind do not): the tracking library is imported."""
    try:
        return "_pydantic_core" in Path(f"/proc/{pid}/maps").read_text(errors="replace")
    except OSError:
        return False


@pytest.fixture
def own_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TMPDIR of this test's own (for us and every process we start), to see what is left in it."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile caches the folder it found first
    return tmp


@pytest.fixture
def live_process() -> Iterator[subprocess.Popen[bytes]]:
    """A real process that stays alive until the test kills it (a writer still at work)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


# --------------------------------------------------------------------------- item 1: first use

FIRST_USE = textwrap.dedent(
    """
    import json, os, sys, time, uuid, warnings
    warnings.simplefilter("ignore")
    from pytest_fairmind.providers.base import ProviderSettings
    from pytest_fairmind.providers.mlflow import MlflowProvider
    from pytest_fairmind.result import ModelResult, SessionResult
    import mlflow  # imported before the start line: the race is on creating the store
    folder, go, out = sys.argv[1:4]
    session = SessionResult(id=f"s-{uuid.uuid4().hex[:12]}", project="race",
                            started="2026-03-01T10:00:00+00:00", finished="2026-03-01T10:01:00+00:00")
    session.models = {m: ModelResult(name=m, metrics={"accuracy": 0.5}) for m in ("credit", "churn")}
    while not os.path.exists(go):
        time.sleep(0.005)
    outcome = MlflowProvider(ProviderSettings(workdir=folder)).log(session, timeout=240)
    with open(out, "w") as fh:
        json.dump({"session": session.id, "ok": outcome.ok, "error": outcome.error,
                   "runs": sorted(outcome.runs)}, fh)
    """
)


def test_three_sessions_at_once_on_a_fresh_store_leave_it_healthy(tmp_path: Path) -> None:
    """Item 1: three processes logging at the same moment to the default ``./mlflow.db``, which
    does not exist yet, each creating it the way MLflow does (its migrations, in each process).
    Unserialised, the migrations collide and break the store for good."""
    write(tmp_path, "first_use.py", FIRST_USE)
    env = subprocess_env(tmp_path)
    go = tmp_path / "go"
    procs_ = [
        subprocess.Popen(
            [sys.executable, "first_use.py", str(tmp_path), str(go), f"out-{i}.json"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(3)
    ]
    try:
        # Everyone has imported mlflow and waits for the start line (their modules are loaded).
        assert wait_for(lambda: all(has_imported_pydantic(p.pid) for p in procs_), 240)
        go.write_text("go")
        errors = [p.communicate(timeout=300)[1].decode() for p in procs_]
    finally:
        for p in procs_:
            p.kill()
    assert all(p.returncode == 0 for p in procs_), errors
    outcomes = [json.loads((tmp_path / f"out-{i}.json").read_text()) for i in range(3)]
    assert [o["error"] for o in outcomes] == [None, None, None]
    assert all(o["ok"] and o["runs"] == ["churn", "credit"] for o in outcomes)
    db = tmp_path / "mlflow.db"
    assert sqlite_store_problem(str(db)) is None
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert not [t for t in tables if t.startswith("_alembic_tmp_")]
        assert len(list(conn.execute("SELECT version_num FROM alembic_version"))) == 1
    uri = f"sqlite:///{db}"
    runs = runs_of(uri, "race")
    pairs = sorted((r.data.tags["fairmind.session"], r.data.tags["fairmind.model"]) for r in runs)
    assert pairs == sorted((o["session"], m) for o in outcomes for m in ("churn", "credit"))
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert not (tmp_path / "mlflow.db.lock").exists()  # the lock goes with its last holder


@pytest.mark.parametrize("damage", ["leftover-migration-table", "no-schema-version"])
def test_a_damaged_store_is_reported_with_how_to_repair_it(
    tmp_path: Path, mlflow_store: MlflowStore, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """Item 1: ``fairmind status`` (the provider's check) and logging notice a damaged store and
    say how to repair it; the repair they print works. The damage is what concurrent first uses
    leave (as the test above provokes without the lock), put there directly so it is certain."""
    monkeypatch.chdir(tmp_path)
    uri = mlflow_store(tmp_path)
    path = db_path(uri)
    with sqlite3.connect(path) as conn:
        if damage == "leftover-migration-table":
            conn.execute("CREATE TABLE _alembic_tmp_tags (key VARCHAR(250), value VARCHAR(8000))")
        else:
            conn.execute("DELETE FROM alembic_version")
    provider = isolated("mlflow", mlflow_uri=uri, workdir=str(tmp_path))

    problem = provider.check(5)
    assert problem is not None and path in problem and "damaged" in problem, problem
    outcome = provider.log(session_of(model("credit")), timeout=120)
    assert not outcome.ok and outcome.error is not None
    assert path in outcome.error and "damaged" in outcome.error, outcome.error
    with sqlite3.connect(path) as conn:  # not handed to MLflow: nothing was written
        assert list(conn.execute("SELECT COUNT(*) FROM runs")) == [(0,)]

    if damage == "leftover-migration-table":
        # The repair as printed: drop the leftover table, then let MLflow finish its migration.
        assert f'sqlite3 {path} "DROP TABLE _alembic_tmp_tags" && mlflow db upgrade {uri}' in problem
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE _alembic_tmp_tags")
        upgraded = subprocess.run(
            [*mlflow_command(), "db", "upgrade", uri],
            env=mlflow_server_env(),
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert upgraded.returncode == 0, upgraded.stderr[-2000:]
    else:
        assert "delete it" in problem  # no schema version to upgrade from: a new store
        os.unlink(path)
    assert provider.check(5) is None
    outcome = provider.log(session_of(model("credit")), timeout=180)
    assert outcome.ok, outcome.error
    assert [r.data.tags["fairmind.model"] for r in runs_of(uri, "trust")] == ["credit"]


# --------------------------------------------------------------------------- item 3: live writers


def test_a_run_another_process_is_writing_is_never_deleted(
    mlflow_sqlite_uri: str, live_process: subprocess.Popen[bytes]
) -> None:
    """Item 3: a run left RUNNING is deleted as partial only when its writer (tag
    ``fairmind.writer``: pid, machine, deadline) cannot be writing it any more."""
    session = session_of(model("credit"), model("churn"))
    client = mlflow_client(mlflow_sqlite_uri)
    experiment_id = client.create_experiment(session.project)
    writing = client.create_run(
        experiment_id,
        run_name="credit",
        tags={
            "fairmind.model": "credit",
            "fairmind.session": session.id,
            TAG_WRITER: locks.writer_mark(300, pid=live_process.pid).text(),
        },
    )
    provider = MlflowProvider(ProviderSettings(project=session.project, mlflow_uri=mlflow_sqlite_uri))

    outcome = provider.log(session, timeout=8)  # waits a share of the budget for the writer
    assert client.get_run(writing.info.run_id).info.lifecycle_stage == "active"
    assert client.get_run(writing.info.run_id).info.status == "RUNNING"
    assert not outcome.ok and outcome.error is not None
    assert "being written by another process" in outcome.error
    assert f"pid {live_process.pid}" in outcome.error
    assert sorted(outcome.runs) == ["churn"]  # the wait cost the other model nothing

    live_process.kill()  # the writer dies: its run is abandoned now
    live_process.wait(10)
    outcome = provider.log(session, timeout=60)
    assert outcome.ok, outcome.error
    assert outcome.runs["churn"].skipped and not outcome.runs["credit"].skipped
    assert client.get_run(writing.info.run_id).info.lifecycle_stage == "deleted"
    runs = runs_of(mlflow_sqlite_uri, session.project)
    assert sorted(r.data.tags["fairmind.model"] for r in runs) == ["churn", "credit"]
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_a_run_whose_writer_ran_out_of_time_is_abandoned(mlflow_sqlite_uri: str) -> None:
    """Item 3: a writer that is alive but past its deadline (it was killed at the budget on another
    machine, say) no longer holds its run; nor does a run without a mark (older versions)."""
    session = session_of(model("credit"), model("churn"))
    client = mlflow_client(mlflow_sqlite_uri)
    experiment_id = client.create_experiment(session.project)
    expired = locks.writer_mark(0)
    expired = locks.Writer(expired.host, expired.pid, expired.space, expired.started, time.time() - 1)
    stale = [
        client.create_run(
            experiment_id,
            run_name=name,
            tags={"fairmind.model": name, "fairmind.session": session.id, **tags},
        ).info.run_id
        for name, tags in (("credit", {TAG_WRITER: expired.text()}), ("churn", {}))
    ]
    outcome = MlflowProvider(ProviderSettings(mlflow_uri=mlflow_sqlite_uri)).log(session, timeout=60)
    assert outcome.ok, outcome.error
    assert {client.get_run(r).info.lifecycle_stage for r in stale} == {"deleted"}


def test_two_replays_of_one_session_at_once_make_one_run_per_model(
    tmp_path: Path, mlflow_store: MlflowStore
) -> None:
    """Item 3: the same session logged by two provider processes at the same moment (two replays,
    or a session and a replay): one run per model, none deleted, neither process fails."""
    uri = mlflow_store(tmp_path)
    session = session_of(*(model(f"m{i}") for i in range(8)))
    providers = [isolated("mlflow", mlflow_uri=uri, workdir=str(tmp_path)) for _ in range(2)]
    outcomes: list[ProviderOutcome | None] = [None, None]

    def log(i: int) -> None:
        outcomes[i] = providers[i].log(session, timeout=180)

    threads = [threading.Thread(target=log, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert all(o is not None and o.ok for o in outcomes), [o and o.error for o in outcomes]
    runs = all_runs(uri, session.project)
    assert sorted(r.data.tags["fairmind.model"] for r in runs) == [f"m{i}" for i in range(8)]
    assert {(r.info.status, r.info.lifecycle_stage) for r in runs} == {("FINISHED", "active")}
    first, second = outcomes
    assert first is not None and second is not None
    for name in session.models:  # each model logged once, found by the other
        assert first.runs[name].id == second.runs[name].id
        assert [first.runs[name].skipped, second.runs[name].skipped].count(True) == 1


HOLD = textwrap.dedent(
    """
    import sys, time
    from pytest_fairmind import locks
    with locks.exclusive(sys.argv[1]):
        print("held", flush=True)
        time.sleep(600)
    """
)


def _holder(path: str) -> subprocess.Popen[str]:
    """A real process holding the lock at ``path`` until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, path], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_wandb_run_folder_being_written_is_never_removed(wandb_env: WandbEnv) -> None:
    """Item 3, W&B offline: the folder of a run another process is writing (it holds the run's
    lock) is not taken for a partial one; once that writer is gone, it is."""
    session = session_of(model("credit"), model("churn"), project="fm-trust")
    rid = run_id(session.id, "credit")
    directory = wandb_dir(str(wandb_env.root))
    partial = Path(directory, f"offline-run-20260301_100000-{rid}")
    partial.mkdir(parents=True)
    (partial / "run-being-written.wandb").write_bytes(b"...")
    holder = _holder(run_lock_path(directory, rid))
    try:
        outcome = isolated("wandb", wandb_mode="offline", workdir=str(wandb_env.root.parent)).log(
            session, timeout=20
        )
        assert partial.is_dir()  # not removed under its writer
        assert not outcome.ok and outcome.error and "being written by another process" in outcome.error
        assert sorted(outcome.runs) == ["churn"]
    finally:
        holder.kill()
        holder.wait(10)
    outcome = isolated("wandb", wandb_mode="offline", workdir=str(wandb_env.root.parent)).log(
        session, timeout=60
    )
    assert outcome.ok, outcome.error
    assert not partial.exists()
    ref = outcome.runs["credit"]
    assert ref.path and (Path(ref.path) / COMPLETE_MARKER).exists()
    assert sorted(read_runs(directory)) == ["churn", "credit"]
    assert not Path(run_lock_path(directory, rid)).exists()


def test_replays_of_one_entry_exclude_each_other(tmp_path: Path) -> None:
    """Item 3: ``lock_entry`` (what ``fairmind replay`` holds per saved session) is exclusive,
    waits with a timeout, and is free the moment its holder dies, however it dies."""
    entry = tmp_path / "sessions" / "20260301100000-abc.json"
    entry.parent.mkdir()
    entry.write_text("{}")
    holder = _holder(locks.entry_lock_path(str(entry)))
    try:
        start = time.monotonic()
        with (
            pytest.raises(locks.LockTimeout, match="being replayed"),
            locks.lock_entry(str(entry), timeout=0.5),
        ):
            pass
        assert 0.4 < time.monotonic() - start < 5
    finally:
        holder.kill()  # SIGKILL: no clean-up code runs, the kernel releases the lock
        holder.wait(10)
    with locks.lock_entry(str(entry), timeout=5):
        assert Path(locks.entry_lock_path(str(entry))).exists()
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name]  # no lock file left


# --------------------------------------------------------------------------- item 4: long names


def test_a_long_non_ascii_scope_is_logged_to_mlflow_and_stops_nobody(
    tmp_path: Path, mlflow_sqlite_uri: str
) -> None:
    """Item 4: artifact names are cut by bytes and kept unique; one model's trouble never stops
    the next model."""
    session = session_of(model("poisoned", LONG_SCOPE), model("plain"))
    outcome = isolated("mlflow", mlflow_uri=mlflow_sqlite_uri, workdir=str(tmp_path)).log(
        session, timeout=120
    )
    assert outcome.ok, outcome.error
    assert sorted(outcome.runs) == ["plain", "poisoned"]
    client = mlflow_client(mlflow_sqlite_uri)
    poisoned = outcome.runs["poisoned"].id
    tables = [p for p in artifact_paths(mlflow_sqlite_uri, poisoned) if p.startswith("fairmind/groups/")]
    assert tables and all(len(Path(p).name.encode()) <= 255 for p in tables)
    [table] = [p for p in tables if p.endswith(".json")]
    local = client.download_artifacts(poisoned, table, str(tmp_path))
    assert json.loads(Path(local).read_text(encoding="utf-8"))["scope"] == LONG_SCOPE
    assert client.get_run(poisoned).data.metrics == {f"{LONG_SCOPE}/demographic_parity_ratio": 0.8}
    assert "fairmind/groups/sex.json" in artifact_paths(mlflow_sqlite_uri, outcome.runs["plain"].id)


def test_a_long_non_ascii_scope_is_logged_to_wandb_and_stops_nobody(wandb_env: WandbEnv) -> None:
    session = session_of(model("poisoned", LONG_SCOPE), model("plain"), project="fm-trust")
    outcome = isolated("wandb", wandb_mode="offline", workdir=str(wandb_env.root.parent)).log(
        session, timeout=120
    )
    assert outcome.ok, outcome.error
    runs = read_runs(str(wandb_env.wandb_dir))
    assert sorted(runs) == ["plain", "poisoned"]
    [key] = runs["poisoned"].media_keys("table-file")
    assert key == fit_key(f"{LONG_SCOPE}/by_group") and key.startswith("é" * 70)
    assert [row[0] for row in runs["poisoned"].table(key)["data"]] == ["F", "M"]
    assert runs["poisoned"].metrics[f"{LONG_SCOPE}/demographic_parity_ratio"] == 0.8
    assert runs["plain"].media_keys("table-file") == ["sex/by_group"]


def test_cut_names_stay_apart() -> None:
    """Two long scopes that differ only at their end get two names, each within the bytes."""
    taken: set[str] = set()
    names = [safe_file_name(LONG_SCOPE + tail, taken) for tail in ("a", "b", "a/b", "a_b")]
    assert len(set(names)) == 4 and all(len(n.encode()) <= 150 for n in names)
    keys = {fit_key(f"{LONG_SCOPE}{tail}/by_group") for tail in ("a", "b")}
    assert len(keys) == 2 and all(len(part.encode()) <= 150 for k in keys for part in k.split("/"))


# --------------------------------------------------------------------------- item 20: secret keys

SECRET = "sekret-pw-123"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", SECRET)  # no underscore before PASSWORD: a secret too


def leaky_model() -> ModelResult:
    """A model whose keys hold the secret (as a hook amending results could make it)."""
    return ModelResult(
        name="leaky",
        metrics={f"{SECRET}_rate": 0.5, "ok_rate": 0.25},
        params={f"{SECRET}_param": "x", "dsn": f"postgres://u:{SECRET}@db/x"},
    )


def _no_secret_in(*roots: Path) -> None:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path


def test_a_key_holding_a_secret_is_left_out_of_mlflow_not_mangled(
    tmp_path: Path, mlflow_sqlite_uri: str, secret_env: None
) -> None:
    """Item 20: values are redacted; a key holding a secret is neither sent nor redacted into a
    key MLflow refuses: it is left out, and the outcome says so (keys are refused when recorded)."""
    session = session_of(leaky_model())
    outcome = isolated("mlflow", mlflow_uri=mlflow_sqlite_uri, workdir=str(tmp_path)).log(
        session, timeout=120
    )
    assert not outcome.ok and outcome.error is not None
    assert "2 key(s) holding a secret value were left out" in outcome.error, outcome.error
    assert "MLflow cannot store" not in outcome.error
    [run] = runs_of(mlflow_sqlite_uri, session.project)
    assert run.data.metrics == {"ok_rate": 0.25}
    assert run.data.params == {"dsn": "postgres://***@db/x"}
    _no_secret_in(tmp_path)


def test_a_key_holding_a_secret_is_left_out_of_wandb(wandb_env: WandbEnv, secret_env: None) -> None:
    session = session_of(leaky_model(), project="fm-trust")
    outcome = isolated("wandb", wandb_mode="offline", workdir=str(wandb_env.root.parent)).log(
        session, timeout=120
    )
    assert not outcome.ok and outcome.error and "key(s) holding a secret value were left out" in outcome.error
    run = read_runs(str(wandb_env.wandb_dir))["leaky"]
    assert not [k for k in [*run.summary, *run.config] if "***" in k or SECRET in k]
    assert run.metrics["ok_rate"] == 0.25
    assert run.config == {"dsn": "postgres://***@db/x"}
    _no_secret_in(*map(Path, wandb_env.scan_roots()))


# --------------------------------------------------------------------------- item 21: leftovers


def test_a_killed_wandb_child_leaves_nothing_in_the_temp_folder(
    wandb_env: WandbEnv, own_tmpdir: Path
) -> None:
    """Item 21: the provider child SIGKILLed mid-log (no clean-up of its own can run): its chart
    scratch, wandb's media and artifact staging folders, wandb-core's socket folder and
    wandb-core itself are gone after ``log`` returns; another session's folders are not touched."""
    others = [
        own_tmpdir / "fairmind-wandb-othersession",
        own_tmpdir / "wandb-1-2-3",
        own_tmpdir / "fairmind-x",
    ]
    for folder in others:
        folder.mkdir()
        (folder / "live").write_text("another session's")
    session = session_of(*(model(f"m{i}") for i in range(6)), project="fm-trust")
    provider = isolated("wandb", wandb_mode="offline", workdir=str(wandb_env.root.parent))
    marker = str(wandb_env.root)  # in wandb-core's environment (WANDB_DIR): ours, not another's
    box: dict[str, ProviderOutcome] = {}
    thread = threading.Thread(target=lambda: box.update(outcome=provider.log(session, timeout=120)))
    thread.start()
    try:
        assert wait_for(lambda: core_processes_for(marker), 120), "wandb-core never started"
        [child] = isolation_children(os.getpid())
        os.kill(child, signal.SIGKILL)  # mid-log: wandb-core runs, the scratch folders exist
    finally:
        thread.join(60)
    outcome = box["outcome"]
    assert not outcome.ok and outcome.error and "provider process died" in outcome.error
    assert not wait_no_core(marker, grace=10)
    assert sorted(p.name for p in own_tmpdir.iterdir()) == sorted(p.name for p in others)
    assert all((folder / "live").exists() for folder in others)


# --------------------------------------------------------------------------- item 22: warm-up


def test_warm_providers_import_early_and_create_the_store_only_once_something_was_recorded(
    tmp_path: Path, own_tmpdir: Path
) -> None:
    """Item 22: started at session start, the child imports mlflow while the tests run and
    touches no store; told that something was recorded, it creates the store and the experiment;
    at session end it only logs, and ends."""
    provider = isolated("mlflow", workdir=str(tmp_path))  # the default store, ./mlflow.db
    started = start_providers([provider], explicit_project="warm")
    try:
        children = isolation_children(os.getpid())
        assert len(children) == 1, (children, provider.warm_error)
        [child] = children
        assert wait_for(lambda: has_imported_pydantic(child), 180), "the child never imported mlflow"
        time.sleep(0.5)
        assert not (tmp_path / "mlflow.db").exists()  # nothing recorded yet: no store
        started.recorded()

        def experiment_created() -> bool:
            if not (tmp_path / "mlflow.db").exists():
                return False
            try:  # read while MLflow may still be creating it
                with sqlite3.connect(tmp_path / "mlflow.db") as conn:
                    return bool(list(conn.execute("SELECT 1 FROM experiments WHERE name = 'warm'")))
            except sqlite3.Error:
                return False

        assert wait_for(experiment_created, 180), "the store was not created while 'tests ran'"
        assert sqlite_store_problem(str(tmp_path / "mlflow.db")) is None
        # the mlflow baseline is asked in the same warm child, which then still logs
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        asked = started.warm_process("mlflow")
        assert asked is provider
        answer = asked.call(f"{QUERY}:bounded_query", [uri, "warm", "", 60.0], timeout=60)
        assert answer == {} and isolation_children(os.getpid()) == [child]
        outcome = started.log(session_of(model("credit"), project="warm"), timeout=60)["mlflow"]
    finally:
        started.close()
    assert outcome.ok, outcome.error
    assert started.warm_process("mlflow") is None  # closed
    assert isolation_children(os.getpid()) == []
    assert list(own_tmpdir.iterdir()) == []
    runs = runs_of(uri, "warm")
    assert [r.data.tags["fairmind.model"] for r in runs] == ["credit"]


FAKE_IMPL = """
from pytest_fairmind.result import ProviderOutcome


class Fake:
    name = "fake"

    def __init__(self, settings):
        pass

    def target(self):
        return "memory://fake"

    def log(self, session, *, timeout):
        return ProviderOutcome(ok=True, note="logged")
"""


def test_a_call_in_the_warm_child_answers_fails_or_times_out_and_logging_goes_on(
    tmp_path: Path, own_tmpdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fake_impl.py").write_text(FAKE_IMPL, encoding="utf-8")
    monkeypatch.syspath_prepend(tmp_path)  # the child finds it in its working folder
    provider = IsolatedProvider("fake", "fake_impl:Fake", ProviderSettings(workdir=str(tmp_path)))
    with pytest.raises(NotWarm):  # nothing started: the caller asks elsewhere
        provider.call("os.path:join", ["a", "b"], timeout=5)
    provider.warm_up()
    try:
        [child] = isolation_children(os.getpid())
        assert provider.call("os.path:join", ["a", "b"], timeout=60) == os.path.join("a", "b")
        with pytest.raises(CallFailed, match="JSONDecodeError"):
            provider.call("json:loads", ["{"], timeout=60)
        assert isolation_children(os.getpid()) == [child]  # one child answered all three
        with pytest.raises(TimeoutError):
            provider.call("time:sleep", [600], timeout=1)
        assert wait_for(lambda: isolation_children(os.getpid()) == [], 10)  # that child ended
        with pytest.raises(NotWarm):
            provider.call("os.path:join", ["a", "b"], timeout=5)
        outcome = provider.log(session_of(model("credit")), timeout=60)  # in a fresh child
    finally:
        provider.close()
    assert outcome.ok and outcome.note == "logged", outcome.error
    assert isolation_children(os.getpid()) == []
    assert list(own_tmpdir.iterdir()) == []


def test_warm_providers_that_do_not_log_end_and_leave_nothing(tmp_path: Path, own_tmpdir: Path) -> None:
    providers = [isolated("mlflow", workdir=str(tmp_path)), isolated("wandb", workdir=str(tmp_path))]
    started = start_providers(providers)
    children = isolation_children(os.getpid())
    assert len(children) == 2, (children, [(p.name, p.warm_error) for p in providers])
    started.close()
    assert wait_for(lambda: not isolation_children(os.getpid()), 10)
    assert list(own_tmpdir.iterdir()) == []
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "wandb").exists()


SESSION_TESTS = textwrap.dedent(
    """
    import os, sqlite3, time
    from pathlib import Path

    from pytest_fairmind import procs


    def isolation_children(parent):
        out = []
        for stat in procs.processes():
            if stat.ppid == parent:
                try:
                    cmd = Path(f"/proc/{stat.pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"pytest_fairmind.isolation" in cmd:
                    out.append(stat.pid)
        return out


    def test_records(fairmind):
        fairmind.record({"accuracy": 0.9}, model="credit")


    def test_the_store_is_created_while_tests_run(fairmind):
        fairmind.record({"accuracy": 0.8}, model="churn")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if Path("mlflow.db").exists():
                with sqlite3.connect("mlflow.db") as conn:
                    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                    if "experiments" in tables and list(
                        conn.execute("SELECT 1 FROM experiments WHERE name = 'warm-session'")
                    ):
                        return
            time.sleep(0.1)
        raise AssertionError("no store was created while the tests ran")


    def test_only_the_process_that_logs_has_a_provider_process():
        if os.environ.get("PYTEST_XDIST_WORKER"):
            assert isolation_children(os.getpid()) == []  # a worker starts nothing
            assert len(isolation_children(os.getppid())) == 1  # the controller does
        else:
            assert len(isolation_children(os.getpid())) == 1
    """
)

COLLECT_CONFTEST = textwrap.dedent(
    """
    import os
    from pathlib import Path

    from pytest_fairmind import procs


    def pytest_collection_finish(session):
        kids = [s.pid for s in procs.processes() if s.ppid == os.getpid()
                and b"pytest_fairmind.isolation" in Path(f"/proc/{s.pid}/cmdline").read_bytes()]
        Path("children-at-collection.txt").write_text(str(len(kids)))
    """
)


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_a_session_creates_its_store_while_its_tests_run(tmp_path: Path, xdist: bool) -> None:
    """Item 22 through pytest: the store and the experiment exist before the last test ends; the
    session end logs; an xdist worker starts no provider process (the controller has one)."""
    write(tmp_path, "test_warm.py", SESSION_TESTS)
    args = ["--fairmind-provider=mlflow", "--fairmind-project=warm-session", "--fairmind-json=report.json"]
    result = run_pytest(tmp_path, *args, *(["-n", "2"] if xdist else ["-p", "no:xdist"]), timeout=400)
    assert result.rc == 0, result.out
    assert "3 passed" in result.out
    outcome = result.report()["providers"]["mlflow"]
    assert outcome["ok"] and sorted(outcome["runs"]) == ["churn", "credit"], outcome


def test_collect_only_starts_no_provider_process(tmp_path: Path) -> None:
    write(tmp_path, "test_warm.py", SESSION_TESTS)
    write(tmp_path, "conftest.py", COLLECT_CONFTEST)
    result = run_pytest(tmp_path, "--co", "--fairmind-provider=mlflow,wandb", "-p", "no:xdist")
    assert result.rc == 0, result.out
    assert (tmp_path / "children-at-collection.txt").read_text() == "0"
    assert not (tmp_path / "mlflow.db").exists()


# --------------------------------------------------------------------------- item 23: experiment kind


def test_experiments_are_tagged_for_model_development(mlflow_sqlite_uri: str) -> None:
    """Item 23: the experiment the provider creates, or finds untagged, is a model-development
    experiment for MLflow; a kind someone else chose is kept."""
    client = mlflow_client(mlflow_sqlite_uri)
    client.create_experiment("untagged")
    client.create_experiment("genai", tags={TAG_EXPERIMENT_KIND: "genai_development"})
    for project in ("created", "untagged", "genai"):
        provider = MlflowProvider(ProviderSettings(mlflow_uri=mlflow_sqlite_uri))
        outcome = provider.log(session_of(model("credit"), project=project), timeout=60)
        assert outcome.ok, outcome.error
    kinds = {
        name: client.get_experiment_by_name(name).tags.get(TAG_EXPERIMENT_KIND)
        for name in ("created", "untagged", "genai")
    }
    assert kinds == {"created": EXPERIMENT_KIND, "untagged": EXPERIMENT_KIND, "genai": "genai_development"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def _chromium_text(url: str, profile: Path) -> str:
    binary = os.environ.get("FAIRMIND_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(binary) and not shutil.which(binary):
        pytest.skip("no Chromium installed")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
    done = subprocess.run(
        [binary, *flags, f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    parser = _Text()
    parser.feed(done.stdout)
    return " | ".join(parser.parts)


@pytest.mark.slow
def test_the_mlflow_ui_shows_the_runs_of_our_experiment(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    """Item 23 in a real browser: the experiment the provider created is tagged as model
    development, and the page our link opens lists its runs, not the GenAI overview.

    MLflow 3.17's UI chooses an experiment's page from its GenAI / Model training switch (the
    query ``workflowType`` or the switch's remembered state), not from the experiment's kind: so
    the local store's note links with ``?workflowType=machine_learning`` (docs/providers.md)."""
    project = f"ui-{uuid.uuid4().hex[:8]}"
    outcome = MlflowProvider(ProviderSettings(mlflow_uri=mlflow_server.uri)).log(
        session_of(model("credit-model"), model("churn-model"), project=project), timeout=60
    )
    assert outcome.ok, outcome.error
    experiment = mlflow_client(mlflow_server.uri).get_experiment_by_name(project)
    assert experiment.tags[TAG_EXPERIMENT_KIND] == EXPERIMENT_KIND
    text = _chromium_text(
        f"{mlflow_server.uri}/#/experiments/{experiment.experiment_id}{UI_RUNS_QUERY}", tmp_path / "profile"
    )
    assert "credit-model" in text and "churn-model" in text, text[:2000]
    assert "matching run" in text, text[:2000]  # the runs table's footer
    assert "No data available for the selected time range" not in text  # the GenAI overview's charts
