"""Fault injection with real parts: a closed port, a listener that never answers, a real MLflow
server killed mid-session, W&B online with a fake key and no network. Each asserts bounded time,
the exit code, the report and history, and that no provider process or wandb-core is left."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from helpers import (
    TWO_MODELS,
    StalledListener,
    background_pytest,
    free_port,
    load,
    run_fairmind,
    run_pytest,
    runs_of,
    start_mlflow_server,
    stop_mlflow_server,
    subprocess_env,
    third_party_conftest,
    wait_no_processes,
    write,
)

FAKE_WANDB_KEY = "f" * 40


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "test_models.py", TWO_MODELS)
    return tmp_path


def _assert_saved_for_replay(project: Path, provider: str, error: str) -> dict[str, object]:
    [entry] = sorted((project / ".fairmind" / "sessions").glob("*.json"))
    saved = load(entry)
    outcome = saved["providers"][provider]
    assert outcome["ok"] is False
    assert error in outcome["error"]
    assert set(saved["models"]) == {"credit", "churn"}
    assert saved["models"]["credit"]["metrics"]["sex/demographic_parity_ratio"] == 0.85
    return saved


def test_mlflow_closed_port_fails_fast(project: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    result = run_pytest(
        project,
        "--fairmind-provider=mlflow",
        f"--fairmind-mlflow-uri={uri}",
        "--fairmind-timeout=120",
        "--fairmind-json=report.json",
    )
    assert result.rc == 0, result.out  # not strict: a summary line, no exit code change
    outcome = result.report()["providers"]["mlflow"]
    assert outcome["ok"] is False
    assert outcome["error"] == f"cannot reach {uri}: connection refused"
    assert f"mlflow: FAILED: cannot reach {uri}: connection refused" in result.out
    # Fails fast: no waiting for the 120 s budget, no retry storm (MLflow's retry defaults take
    # minutes); start-up of pytest and of the provider process included (~3 s on a quiet machine).
    assert result.seconds < 60, result.seconds
    _assert_saved_for_replay(project, "mlflow", "connection refused")
    assert not wait_no_processes(project)

    strict = run_pytest(
        project, "--fairmind-provider=mlflow", f"--fairmind-mlflow-uri={uri}", "--fairmind-strict"
    )
    assert strict.rc == 1, strict.out


def test_mlflow_stalled_server_is_cut_at_the_timeout(
    project: Path, stalled_listener: StalledListener
) -> None:
    stall = stalled_listener
    budget = 12  # the provider process must import mlflow and connect within it, on a busy machine too
    start = time.monotonic()
    result = run_pytest(
        project,
        "--fairmind-provider=mlflow",
        f"--fairmind-mlflow-uri={stall.url}",
        f"--fairmind-timeout={budget}",
        "--fairmind-json=report.json",
        "--fairmind-strict",
    )
    assert stall.accepted.is_set(), "the provider never reached the listener"
    held = stall.held_seconds()
    released = (stall.last_release or time.monotonic()) - start
    assert result.rc == 1, result.out  # strict: a failed provider fails the session
    outcome = result.report()["providers"]["mlflow"]
    assert outcome["ok"] is False
    # The provider's own request timeout (derived from the budget) or, when the provider process
    # started too slowly for that, the kill at the deadline.
    assert outcome["error"] in (
        f"no answer from {stall.url}: timed out",
        f"timed out after {budget} s (--fairmind-timeout); abandoned",
    ), outcome["error"]
    assert "2 passed" in result.out
    # Cut at the budget, not MLflow's 120 s request timeout: measured from when the provider
    # reached the listener, since the start-up before (pytest, the provider process importing
    # mlflow) depends on the machine's load and the budget already runs during it.
    assert held < budget + 10, held
    # And really held in the request until about the end of the budget, not failed fast.
    assert released > budget - 1, released
    _assert_saved_for_replay(project, "mlflow", "timed out")
    assert not wait_no_processes(project)


@pytest.mark.parametrize("server", ["stalled", "closed"])
def test_wandb_online_with_a_fake_key_and_no_network(project: Path, server: str) -> None:
    """W&B online (a 40-character key) against no network, beside a working provider: W&B fails
    within the budget, the other logs anyway, nothing of wandb is left running. (The other is a
    conftest provider: MLflow's start-up alone can take longer than a small budget on a busy CI.)"""
    write(project, "conftest.py", third_party_conftest({"good": "ok"}))
    with StalledListener() as stall:
        base = stall.url if server == "stalled" else f"http://127.0.0.1:{free_port()}"
        env = subprocess_env(project, WANDB_API_KEY=FAKE_WANDB_KEY, WANDB_BASE_URL=base)
        start = time.monotonic()
        result = run_pytest(
            project,
            "--fairmind-provider=wandb,good",
            "--fairmind-timeout=4",
            "--fairmind-json=report.json",
            env=env,
        )
        seconds = time.monotonic() - start
        # Within the 4 s budget, counted from when W&B reached the stalled server (if it got that
        # far): the start-up before depends on the machine's load, and the budget runs during it.
        held = stall.held_seconds() if stall.accepted.is_set() else 0.0
    assert result.rc == 0, result.out
    providers = result.report()["providers"]
    assert providers["wandb"]["ok"] is False, providers["wandb"]
    assert providers["wandb"]["error"]
    assert providers["wandb"]["target"].startswith(f"online: {base}")
    assert providers["good"]["ok"] is True, providers["good"]
    assert set(providers["good"]["runs"]) == {"credit", "churn"}
    assert held < 4 + 10, held
    assert seconds < 4 + 60, seconds  # W&B's own retries would take minutes
    assert FAKE_WANDB_KEY not in result.out
    assert FAKE_WANDB_KEY not in (project / "report.json").read_text()
    _assert_saved_for_replay(project, "wandb", "")
    assert not wait_no_processes(project), "a provider process or wandb-core outlived the session"


N_MODELS = 40
MANY_MODELS = f"""
import pytest

@pytest.mark.parametrize("i", range({N_MODELS}))
def test_model(fairmind, i):
    fairmind.record({{"demographic_parity_ratio": 0.5 + i / 100, "accuracy": 0.9}}, model=f"m{{i:02d}}",
                    scope="sex", params={{"index": str(i)}})
"""


def test_mlflow_server_killed_mid_session_then_replayed(tmp_path: Path, mlflow_store_template: Path) -> None:
    """A real server dies while the provider is logging (after its first run was created):
    the provider fails within the budget, nothing is lost, and a replay to a restarted server
    (same store) leaves exactly one finished run per model, also after a second replay."""
    project = tmp_path / "project"
    write(project, "test_many.py", MANY_MODELS)
    store = tmp_path / "server"
    server = start_mlflow_server(store, template=mlflow_store_template)
    try:
        proc_env = subprocess_env(project)
        with background_pytest(
            project,
            "--fairmind-provider=mlflow",
            f"--fairmind-mlflow-uri={server.uri}",
            "--fairmind-project=killed",
            "--fairmind-timeout=30",
            "--fairmind-json=report.json",
            env=proc_env,
        ) as proc:
            mark = 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if any("/runs/create" in line for line in server.log_lines()[mark:]):
                    break
                time.sleep(0.02)
            else:
                pytest.fail(
                    "the provider never created a run:\n" + (project / "pytest-output.txt").read_text()
                )
            os.killpg(server.proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            rc = proc.wait(timeout=60)
            after_kill = time.monotonic() - killed_at
        out = (project / "pytest-output.txt").read_text()
        assert rc == 0, out
        outcome = load(project / "report.json")["providers"]["mlflow"]
        assert outcome["ok"] is False
        # refused, reset or a broken read, depending on the moment of the kill
        assert f"127.0.0.1:{server.port}" in outcome["error"], outcome["error"]
        assert f"of {N_MODELS} models logged" in outcome["error"], outcome["error"]
        assert len(outcome["runs"]) < N_MODELS
        assert after_kill < 20, after_kill  # a dead server is given up on quickly, not at 30 s
        assert not wait_no_processes(project)
    finally:
        stop_mlflow_server(server.proc)

    restarted = start_mlflow_server(store)  # same SQLite store and artifacts, a new port
    try:
        first = run_fairmind(project, "replay", "last", "--mlflow-uri", restarted.uri, "--timeout", "60")
        assert first.rc == 0, first.out
        assert f"({N_MODELS} model(s))" in first.out
        second = run_fairmind(
            project,
            "replay",
            "last",
            "--provider",
            "mlflow",
            "--mlflow-uri",
            restarted.uri,
            "--timeout",
            "60",
        )
        assert second.rc == 0, second.out
        assert second.out.count("already logged") == N_MODELS, second.out
        runs = runs_of(restarted.uri, "killed")
        names = sorted(r.data.tags["fairmind.model"] for r in runs)
        assert names == [f"m{i:02d}" for i in range(N_MODELS)]
        assert {r.info.status for r in runs} == {"FINISHED"}
        assert len({r.data.tags["fairmind.session"] for r in runs}) == 1
        for r in runs:
            i = int(r.data.tags["fairmind.model"][1:])
            assert r.data.metrics["sex/demographic_parity_ratio"] == pytest.approx(0.5 + i / 100)
            assert r.data.params["sex/index"] == str(i)
    finally:
        stop_mlflow_server(restarted.proc)
