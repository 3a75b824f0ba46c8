"""pytest killed while a provider is inside a request: nothing is lost, nothing is left running,
and the saved session replays to exactly one run per model.

The signal is sent only once the stalled listener has accepted the provider's connection, so the
provider is provably blocked inside an HTTP request (no sleeps, no timing guesses).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import (
    TWO_MODELS,
    MlflowStore,
    StalledListener,
    background_pytest,
    history_entries,
    kill_our_processes,
    load,
    read_runs,
    run_fairmind,
    runs_of,
    subprocess_env,
    unsupported_reason,
    wait_for,
    wait_no_processes,
    write,
)

from pytest_fairmind.dispatch import INTERRUPTED_ERROR, PENDING_ERROR

REACH_TIMEOUT = 90.0  # seconds for pytest + the provider process to reach the listener (busy CI)


def _kill_while_logging(project: Path, sig: signal.Signals, provider: str = "mlflow") -> int:
    """Run the session against a stalled MLflow or W&B (online, fake key) 'server', send ``sig``
    to pytest once the provider is blocked in its request; return pytest's exit code. The
    listener stays open (the provider stays blocked) until no process of the session is left:
    the provider process (and wandb-core) must end because pytest is gone, not because a
    request failed."""
    with StalledListener() as stall:
        if provider == "mlflow":
            env = subprocess_env(project)
            args = ["--fairmind-provider=mlflow", f"--fairmind-mlflow-uri={stall.url}"]
        else:
            env = subprocess_env(project, WANDB_API_KEY="f" * 40, WANDB_BASE_URL=stall.url)
            args = ["--fairmind-provider=wandb"]
        with background_pytest(
            project,
            *args,
            "--fairmind-project=signals",
            "--fairmind-timeout=120",  # the signal, not the budget, ends this session
            "--fairmind-json=report.json",
            env=env,
        ) as proc:
            reached = stall.accepted.wait(REACH_TIMEOUT)
            output = (project / "pytest-output.txt").read_text()
            assert reached, f"the provider never reached the listener:\n{output}"
            assert proc.poll() is None, output
            [entry] = history_entries(project / ".fairmind")  # saved before the provider was called
            assert load(entry)["providers"][provider]["error"] == PENDING_ERROR
            os.kill(proc.pid, sig)  # pytest only: its provider process must notice on its own
            rc = proc.wait(timeout=30)
            left = wait_no_processes(project, grace=5)
            assert not left, f"left behind after {sig.name}: {left}"
    return rc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT], ids=lambda s: s.name)
def test_signal_during_logging_loses_nothing_and_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    write(tmp_path, "test_models.py", TWO_MODELS)
    rc = _kill_while_logging(tmp_path, sig)
    output = (tmp_path / "pytest-output.txt").read_text()
    [entry] = history_entries(tmp_path / ".fairmind")
    saved = load(entry)
    assert saved["providers"]["mlflow"]["ok"] is False
    if sig == signal.SIGINT:
        # Ctrl-C / a CI cancel at session end abandons the providers; the session then ends as
        # usual: exit code of the tests, report written, summary says what to replay.
        assert rc == 0, output
        assert "Traceback" not in output and "INTERNALERROR" not in output
        assert "mlflow: FAILED: interrupted (Ctrl-C) while logging; abandoned" in output
        assert "fairmind replay .fairmind/sessions/" in output
        assert load(tmp_path / "report.json")["providers"]["mlflow"]["error"] == INTERRUPTED_ERROR
        assert saved["providers"]["mlflow"]["error"] == INTERRUPTED_ERROR
    else:
        assert rc == -sig, output
        assert saved["providers"]["mlflow"]["error"] == PENDING_ERROR
        assert not (tmp_path / "report.json").exists()
    assert set(saved["models"]) == {"credit", "churn"}
    assert saved["models"]["credit"]["metrics"] == {
        "sex/demographic_parity_ratio": 0.85,
        "sex/equalized_odds_difference": 0.05,
    }
    # No payload (which carries the tracking URI, credentials included) stays in the temp folder.
    leftovers = [p for p in (tmp_path / "tmp").rglob("*") if p.is_file()]
    assert not leftovers, leftovers


def test_sigterm_then_replay_twice_gives_one_run_per_model(tmp_path: Path, mlflow_store: MlflowStore) -> None:
    write(tmp_path, "test_models.py", TWO_MODELS)
    rc = _kill_while_logging(tmp_path, signal.SIGTERM)
    assert rc == -signal.SIGTERM
    assert not wait_no_processes(tmp_path, grace=5)
    [entry] = history_entries(tmp_path / ".fairmind")
    saved = load(entry)
    assert saved["providers"]["mlflow"]["error"] == PENDING_ERROR
    session_id = saved["session"]["id"]

    uri = mlflow_store(tmp_path / "replay")
    first = run_fairmind(tmp_path, "replay", str(entry), "--mlflow-uri", uri, "--timeout", "90")
    assert first.rc == 0, first.out
    assert f"session {session_id} (2 model(s))" in first.out
    assert "mlflow: 2 run(s)" in first.out
    assert first.out.count(": run ") == 2, first.out
    updated = load(entry)  # the history entry now says where the runs went
    assert updated["providers"]["mlflow"]["ok"] is True
    assert set(updated["providers"]["mlflow"]["runs"]) == {"credit", "churn"}

    # Replaying again: nothing failed any more, so nothing to do; forced, every model is skipped.
    second = run_fairmind(tmp_path, "replay", str(entry), "--mlflow-uri", uri, "--timeout", "90")
    assert second.rc == 0, second.out
    assert "nothing to replay" in second.out
    forced = run_fairmind(
        tmp_path, "replay", str(entry), "--provider", "mlflow", "--mlflow-uri", uri, "--timeout", "90"
    )
    assert forced.rc == 0, forced.out
    assert forced.out.count("already logged") == 2, forced.out

    runs = runs_of(uri, "signals")
    assert sorted(r.data.tags["fairmind.model"] for r in runs) == ["churn", "credit"]
    for run in runs:
        model = run.data.tags["fairmind.model"]
        assert run.info.run_name == model
        assert run.info.status == "FINISHED"
        assert run.data.tags["fairmind.session"] == session_id
        assert run.data.tags["fairmind.verdict"] == saved["models"][model]["verdict"]
        assert run.data.metrics == saved["models"][model]["metrics"]
        assert run.data.params == {k: str(v) for k, v in saved["models"][model]["params"].items()}
    assert not wait_no_processes(tmp_path, grace=5)


STUCK_PROVIDER = '''
import os, pathlib, re

class Stuck:
    """Holds the GIL in one C call for hours: no Python thread or signal handler can run."""
    name = "stuck"
    def __init__(self, settings):
        self.settings = settings
    def target(self):
        return "nowhere"
    def log(self, session, *, timeout):
        pathlib.Path(self.settings.workdir, "started").write_text("yes")
        os.nice(19)  # it spins for up to 12 s: the rest of the test run keeps its cores
        if session.project == "regex":
            re.match(r"(a|aa)+$", "a" * 80 + "b")  # catastrophic backtracking in C (checks signals)
        else:
            sum(range(10**15))  # a C loop that neither releases the GIL nor runs signal handlers
'''

PARENT = """
import sys
from pytest_fairmind.isolation import IsolatedProvider
from pytest_fairmind.providers.base import ProviderSettings
from pytest_fairmind.result import SessionResult

provider = IsolatedProvider("stuck", "stuck_provider:Stuck", ProviderSettings(workdir=sys.argv[2]))
session = SessionResult(id="s", project=sys.argv[3], started="2026-01-01")
outcome = provider.log(session, timeout=float(sys.argv[1]))
print(outcome.error, flush=True)
"""


@pytest.mark.parametrize(
    ("stuck", "parent_dies"),
    [("regex", False), ("regex", True), ("c-loop", True)],
    ids=["regex-parent-alive", "regex-parent-killed", "c-loop-parent-killed"],
)
def test_a_provider_process_stuck_in_c_code_is_still_bounded(
    tmp_path: Path, stuck: str, parent_dies: bool
) -> None:
    """A provider child whose main thread never releases the GIL (so the watchdog thread cannot
    run): the parent kills it at the budget; if the parent was killed first, pytest's death
    signal (PR_SET_PDEATHSIG) ends it, and where not even a signal handler can run (a C loop),
    the kernel alarm ends it 10 s after the budget."""
    write(tmp_path, "stuck_provider.py", STUCK_PROVIDER)
    write(tmp_path, "parent.py", PARENT)
    env = subprocess_env(tmp_path, PYTHONPATH=str(tmp_path))
    budget = 2.0
    proc = subprocess.Popen(
        [sys.executable, "parent.py", str(budget), str(tmp_path), stuck],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(lambda: (tmp_path / "started").exists() or proc.poll() is not None, 60)
        assert (tmp_path / "started").exists(), proc.communicate()[0]
        if parent_dies:
            proc.kill()
            proc.wait(10)
            start = time.monotonic()
            bound = 3.0 if stuck == "regex" else budget + 10 + 5
            left = wait_no_processes(tmp_path, grace=bound)
            assert not left, f"the stuck provider process outlived pytest by {bound} s: {left}"
            assert time.monotonic() - start <= bound + 1
        else:
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0
            assert out.decode().strip() == "timed out after 2 s (--fairmind-timeout); abandoned"
            assert not wait_no_processes(tmp_path, grace=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        kill_our_processes(tmp_path)


def test_sigterm_during_wandb_online_then_offline_replay(tmp_path: Path) -> None:
    """W&B online blocked on a stalled server (wandb-core inside a request), pytest SIGTERMed:
    no provider process and no wandb-core left; the session replays offline, idempotently."""
    reason = unsupported_reason()
    if reason:
        pytest.skip(reason)
    write(tmp_path, "test_models.py", TWO_MODELS)
    rc = _kill_while_logging(tmp_path, signal.SIGTERM, provider="wandb")
    assert rc == -signal.SIGTERM
    [entry] = history_entries(tmp_path / ".fairmind")
    session_id = load(entry)["session"]["id"]
    for attempt in (1, 2):
        replay = run_fairmind(
            tmp_path, "replay", str(entry), "--provider", "wandb", "--wandb-mode", "offline"
        )
        assert replay.rc == 0, replay.out
        word = ": run " if attempt == 1 else "already logged"
        assert replay.out.count(word) == 2, replay.out
    runs = read_runs(str(tmp_path / "wb" / "wandb"))
    assert sorted(runs) == ["churn", "credit"]
    assert {run.group for run in runs.values()} == {session_id}
    assert not wait_no_processes(tmp_path, grace=5)
