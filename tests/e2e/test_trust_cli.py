"""Issue 12, the ``fairmind`` command: replay goes where the session failed, replays of one entry
exclude each other, unreadable files are skipped, malformed files are usage errors, and ``check``
re-gates what a warn-only session let through.

Everything runs as a user would run it: real pytest sessions and ``fairmind`` commands in
subprocesses, a real ``mlflow server`` (down while the session runs, up for the replay) and real
SQLite stores.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    FAIRMIND,
    TWO_MODELS,
    MlflowServer,
    MlflowStore,
    Result,
    free_port,
    history_entries,
    load,
    run_fairmind,
    run_pytest,
    runs_of,
    subprocess_env,
    write,
)

from pytest_fairmind import history, report
from pytest_fairmind.result import GateResult, ModelResult, ProviderOutcome, SessionResult

if importlib.util.find_spec("mlflow") is None:
    pytest.skip("mlflow is not installed", allow_module_level=True)

MODELS = ("credit", "churn")


# --------------------------------------------------------------------------- a port that comes up


class Forwarder:
    """``127.0.0.1:port`` forwarding every connection to ``upstream``: the tracking server the
    session failed against is "down" until this starts listening on its port."""

    def __init__(self, port: int, upstream: int) -> None:
        self.port, self.upstream = port, upstream
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(64)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
            except OSError:
                client.close()
                continue
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@contextlib.contextmanager
def server_up(port: int, server: MlflowServer) -> Iterator[None]:
    forwarder = Forwarder(port, server.port)
    try:
        yield
    finally:
        forwarder.close()


def cli_env(folder: Path) -> dict[str, str]:
    """The session environment, with the ``fairmind`` script of this interpreter on PATH."""
    env = subprocess_env(folder)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def failed_session(folder: Path, port: int, project: str, *extra: str) -> Result:
    """A session whose MLflow server (``http://127.0.0.1:port``, given on the command line) is down."""
    write(folder, "test_models.py", TWO_MODELS)
    result = run_pytest(
        folder,
        "--fairmind-provider=mlflow",
        f"--fairmind-mlflow-uri=http://127.0.0.1:{port}",
        f"--fairmind-project={project}",
        "--fairmind-timeout=120",
        *extra,
        env=cli_env(folder),
    )
    assert result.rc == 0, result.out  # a provider that fails changes no exit code without strict
    assert "mlflow: FAILED: " in result.out, result.out
    return result


def session_runs(uri: str, project: str, session_id: str) -> dict[str, int]:
    """model -> how many runs the session has in the experiment."""
    counts: dict[str, int] = {}
    for run in runs_of(uri, project, session_id=session_id):
        model = run.data.tags["fairmind.model"]
        counts[model] = counts.get(model, 0) + 1
    return counts


# --------------------------------------------------------------------------- item 2


def test_the_printed_replay_command_logs_to_the_server_the_session_failed_against(
    tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    port = free_port()
    project = f"trust-replay-{tmp_path.name}"
    session = failed_session(tmp_path, port, project)
    [hint] = [line for line in session.out.splitlines() if "log it later with: " in line]
    command = hint.split("log it later with: ", 1)[1]
    [entry] = session.entries()
    session_id = load(entry)["session"]["id"]

    with server_up(port, mlflow_server):
        done = subprocess.run(  # the command exactly as printed, by a shell
            ["bash", "-c", command],
            cwd=tmp_path,
            env=cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"mlflow: 2 run(s) -> http://127.0.0.1:{port}" in done.stdout
        assert session_runs(mlflow_server.uri, project, session_id) == dict.fromkeys(MODELS, 1)
        assert not (tmp_path / "mlflow.db").exists()  # nothing went to the default store
        assert load(entry)["providers"]["mlflow"]["ok"] is True
        again = run_fairmind(tmp_path, "replay", str(entry), "--provider", "mlflow", env=cli_env(tmp_path))
        assert again.rc == 0 and "already logged" in again.out, again.out
        assert session_runs(mlflow_server.uri, project, session_id) == dict.fromkeys(MODELS, 1)


def test_replay_flags_still_win_over_the_recorded_target(tmp_path: Path, mlflow_store: MlflowStore) -> None:
    port = free_port()
    failed_session(tmp_path, port, "flags-win")
    store = mlflow_store(tmp_path, "other.db")
    done = run_fairmind(tmp_path, "replay", "last", "--mlflow-uri", store, env=cli_env(tmp_path))
    assert done.rc == 0, done.out
    assert f"-> {store}" in done.out
    assert set(
        session_runs(store, "flags-win", load(history_entries(tmp_path / ".fairmind")[0])["session"]["id"])
    ) == set(MODELS)


# --------------------------------------------------------------------------- item 3


def test_two_replays_of_one_entry_at_once_log_one_run_per_model(
    tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    port = free_port()
    project = f"trust-concurrent-{tmp_path.name}"
    failed_session(tmp_path, port, project)
    [entry] = history_entries(tmp_path / ".fairmind")
    session_id = load(entry)["session"]["id"]
    with server_up(port, mlflow_server):
        procs = [
            subprocess.Popen(
                [*FAIRMIND, "replay", str(entry), "--timeout", "120"],
                cwd=tmp_path,
                env=cli_env(tmp_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert session_runs(mlflow_server.uri, project, session_id) == dict.fromkeys(MODELS, 1), outputs
    # One logged the runs; the other waited, then found nothing left to replay.
    assert sum("mlflow: 2 run(s)" in out for out in outputs) == 1, outputs
    assert sum("nothing to replay" in out for out in outputs) == 1, outputs


# --------------------------------------------------------------------------- item 5


def _saved(folder: Path, sid: str, started: str, store: str, *, project: str = "p") -> Path:
    """A history entry whose MLflow provider (target: ``store``) failed."""
    session = SessionResult(
        id=sid,
        project=project,
        started=started,
        finished=started,
        exitstatus=0,
        models={"credit": ModelResult("credit", metrics={"sex/demographic_parity_ratio": 0.7})},
        providers={"mlflow": ProviderOutcome(ok=False, error="cannot reach the store", target=store)},
    )
    return history.save(folder / ".fairmind", session)


def test_replay_of_a_folder_skips_unreadable_files_and_replays_the_rest(
    tmp_path: Path, mlflow_store: MlflowStore
) -> None:
    store = mlflow_store(tmp_path, "store.db")
    _saved(tmp_path, "aaaa1111", "2026-01-01T00:00:01+00:00", store)
    _saved(tmp_path, "bbbb2222", "2026-01-01T00:00:03+00:00", store)
    sessions = tmp_path / ".fairmind" / "sessions"
    write(sessions, "20260101000000-corrupt.json", '{"schema": "pytest-fairmind/1", "sess')  # sorts first
    write(sessions, "20260101000002-foreign.json", json.dumps({"name": "some other tool"}))
    done = run_fairmind(tmp_path, "replay", str(sessions), "--timeout", "120")
    assert done.rc == 2, done.out  # a file was skipped
    assert "skipped " in done.out and "20260101000000-corrupt.json: cannot read the session" in done.out
    assert "20260101000002-foreign.json: cannot read the session" in done.out
    assert "2 file(s) skipped" in done.out and "Traceback" not in done.out
    for sid in ("aaaa1111", "bbbb2222"):
        assert set(session_runs(store, "p", sid)) == {"credit"}, done.out


def _gated_entry(folder: Path, sid: str, started: str, project: str, ratio: float) -> Path:
    gate = GateResult("credit:demographic_parity_ratio >= 0.8", "sex/demographic_parity_ratio", ratio,
                      ">= 0.8", "pass" if ratio >= 0.8 else "fail")  # fmt: skip
    model = ModelResult("credit", metrics={"sex/demographic_parity_ratio": ratio}, gates=[gate])
    session = SessionResult(id=sid, project=project, started=started, models={"credit": model})
    return history.save(folder / ".fairmind", session)


def test_check_last_is_the_newest_readable_session(tmp_path: Path) -> None:
    _gated_entry(tmp_path, "old0fail", "2026-01-01T00:00:01+00:00", "p", 0.5)
    _gated_entry(tmp_path, "other0ok", "2026-01-01T00:00:02+00:00", "q", 0.9)
    sessions = tmp_path / ".fairmind" / "sessions"
    write(sessions, "20260101000003-corrupt.json", "\x00\x01 not json")
    write(sessions, "20260101000004-foreign.json", json.dumps([1, 2, 3]))
    done = run_fairmind(tmp_path, "check", "last")
    assert done.rc == 0, done.out  # session other0ok: its gate passes
    assert "(session other0ok, project q" in done.out
    assert done.out.count("cannot read the session") == 2 and "Traceback" not in done.out
    # With the project known (FAIRMIND_PROJECT), the newest readable session of that project.
    of_p = run_fairmind(tmp_path, "check", "last", env={**subprocess_env(tmp_path), "FAIRMIND_PROJECT": "p"})
    assert of_p.rc == 1 and "(session old0fail, project p" in of_p.out, of_p.out


# --------------------------------------------------------------------------- item 8


@pytest.mark.parametrize("timeout", ["inf"])  # 1e10 and 1e300 take the same clamp (test_trust_session)
def test_replay_with_an_unbounded_timeout(tmp_path: Path, mlflow_store: MlflowStore, timeout: str) -> None:
    store = mlflow_store(tmp_path, "store.db")
    _saved(tmp_path, "cccc3333", "2026-01-01T00:00:01+00:00", store)
    done = run_fairmind(tmp_path, "replay", "last", "--timeout", timeout)
    assert done.rc == 0, done.out
    assert "Traceback" not in done.out and set(session_runs(store, "p", "cccc3333")) == {"credit"}
    check = run_fairmind(tmp_path, "check", "last", "--baseline", "mlflow", "--mlflow-uri", store,
                         "--gate", "demographic_parity_ratio ~ 0.1", "--timeout", timeout)  # fmt: skip
    assert check.rc == 0 and "Traceback" not in check.out, check.out


@pytest.mark.parametrize("command", ["replay", "check"])
def test_a_nan_timeout_is_bad_usage(tmp_path: Path, command: str) -> None:
    _gated_entry(tmp_path, "dddd4444", "2026-01-01T00:00:01+00:00", "p", 0.9)
    done = run_fairmind(tmp_path, command, "last", "--timeout", "nan")
    assert done.rc == 2, done.out
    assert done.out.strip().splitlines() == [
        "fairmind: error: --timeout must be > 0 seconds (inf: no limit), got nan"
    ]


# --------------------------------------------------------------------------- item 9


def _valid_doc() -> dict[str, Any]:
    model = ModelResult("credit", metrics={"sex/demographic_parity_ratio": 0.9})
    session = SessionResult(id="eeee5555", project="p", started="2026-01-01T00:00:01+00:00",
                            models={"credit": model})  # fmt: skip
    doc: dict[str, Any] = json.loads(report.dumps(session))
    return doc


def _malformed(kind: str) -> str:
    doc = _valid_doc()
    if kind == "400-digit integer":
        return json.dumps(doc).replace("0.9", "9" * 400)
    if kind == "200k nested arrays":
        return json.dumps(doc).replace("0.9", "[" * 200_000 + "]" * 200_000)
    if kind == "wrong types":
        doc["models"]["credit"]["gates"] = [7]  # an AttributeError in the old decoder
        return json.dumps(doc)
    if kind == "models is a list":
        doc["models"] = [1, 2]
        return json.dumps(doc)
    if kind == "session is a number":
        doc["session"] = 7
        return json.dumps(doc)
    if kind == "NaN token":
        return json.dumps(doc).replace("0.9", "NaN")
    if kind == "lone surrogate":
        return json.dumps(doc).replace('"credit"', '"cr\\udcffedit"')
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["400-digit integer", "200k nested arrays", "wrong types", "models is a list", "session is a number",
     "NaN token", "not UTF-8", "lone surrogate", "over 64 MiB"],
)  # fmt: skip
@pytest.mark.parametrize("command", ["check", "replay"])
def test_a_malformed_report_is_one_line_and_exit_2(tmp_path: Path, kind: str, command: str) -> None:
    path = tmp_path / "bad.json"
    if kind == "over 64 MiB":
        text = json.dumps(_valid_doc())
        path.write_text(text[:-1] + ', "pad": "' + "x" * (64 * 1024 * 1024) + '"}', encoding="utf-8")
    elif kind == "not UTF-8":
        path.write_bytes(json.dumps(_valid_doc()).encode().replace(b"credit", b"cr\xffedit"))
    else:
        path.write_text(_malformed(kind), encoding="utf-8")
    done = run_fairmind(tmp_path, command, "bad.json")
    assert done.rc == 2, done.out
    lines = done.out.strip().splitlines()
    assert "Traceback" not in done.out
    assert lines[0].startswith("fairmind: ") and "bad.json: cannot read the session (" in lines[0], lines
    assert len(lines) <= 2 and len(lines[0]) < 400, lines  # replay adds "1 file(s) skipped"


# --------------------------------------------------------------------------- items 10, 11, 12

RULES = """[pytest]
fairmind_gates =
    equalized_odds_difference ~ 0.02
"""


def test_check_of_a_warn_only_session_fails_its_regression_rules(tmp_path: Path) -> None:
    write(tmp_path, "pytest.ini", RULES)
    write(tmp_path, "test_models.py", TWO_MODELS)
    assert run_pytest(tmp_path, "--fairmind-json=base.json").rc == 0
    write(tmp_path, "test_models.py", TWO_MODELS.replace('"equalized_odds_difference": 0.05',
                                                         '"equalized_odds_difference": 0.2'))  # fmt: skip
    warned = run_pytest(
        tmp_path, "--fairmind-gate-action=warn", "--fairmind-baseline=base.json", "--fairmind-json=r.json"
    )
    assert warned.rc == 0 and "gate failed (warn only)" in warned.out, warned.out
    done = run_fairmind(tmp_path, "check", "r.json")
    assert done.rc == 1, done.out
    assert re.search(r"credit\s+sex/equalized_odds_difference\s+0\.05\s+0\.2\s.*WORSE", done.out), done.out
    assert (
        "gate FAILED: credit: sex/equalized_odds_difference = 0.2, bound <= 0.07 (baseline 0.05" in done.out
    )
    # an explicit --baseline still wins over the recorded one
    assert run_fairmind(tmp_path, "check", "r.json", "--baseline", "r.json").rc == 0


def test_check_names_its_own_strict_flag_and_says_why_strict_failed(tmp_path: Path) -> None:
    write(tmp_path, "pytest.ini", RULES)
    write(tmp_path, "test_models.py", TWO_MODELS)
    assert run_pytest(tmp_path, "--fairmind-json=r.json").rc == 0  # no baseline: a warning only
    lenient = run_fairmind(tmp_path, "check", "r.json")
    assert lenient.rc == 0, lenient.out
    assert "not compared, not a failure (it is with --strict)" in lenient.out
    assert "--fairmind-strict" not in lenient.out and "strict: FAILED" not in lenient.out
    strict = run_fairmind(tmp_path, "check", "r.json", "--strict", "--gate", "nothing_matches <= 1",
                          "--gate", "equalized_odds_difference ~ 0.02")  # fmt: skip
    assert strict.rc == 1, strict.out
    assert "these regression rules FAILED (--strict)" in strict.out
    [line] = [line for line in strict.out.splitlines() if line.startswith("strict: FAILED because ")]
    assert "1 gate(s) not evaluated (nothing_matches <= 1)" in line and "no baseline for 1 metric(s)" in line


@pytest.mark.parametrize(
    ("value", "suggestion"), [("lastt", "last"), ("mlfow", "mlflow"), ("bse", "base.json")]
)
def test_check_with_a_misspelt_baseline_is_bad_usage(tmp_path: Path, value: str, suggestion: str) -> None:
    _gated_entry(tmp_path, "ffff6666", "2026-01-01T00:00:01+00:00", "p", 0.9)
    write(tmp_path, "base.json", report.dumps(report.load(str(history_entries(tmp_path / ".fairmind")[0]))))
    done = run_fairmind(tmp_path, "check", "last", "--baseline", value)
    assert done.rc == 2, done.out
    assert f"did you mean {suggestion!r}?" in done.out and "Traceback" not in done.out
    # a path that does not exist yet is a first run: a notice, not an error
    first = run_fairmind(tmp_path, "check", "last", "--baseline", "./new-baseline.json",
                         "--gate", "demographic_parity_ratio ~ 0.1")  # fmt: skip
    assert first.rc == 0 and "new-baseline.json: no such file" in first.out, first.out
