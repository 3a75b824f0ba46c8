"""The ``fairmind`` command: replay, check and status (SPEC section 8).

Exit codes: 0 success, 1 a gate or a provider failed, 2 bad usage or an unreadable file. Sessions
come from real pytest runs; providers are real (MLflow in its child process, a closed port, a
listener that never answers).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers import (
    TWO_MODELS,
    MlflowStore,
    StalledListener,
    free_port,
    history_entries,
    load,
    run_fairmind,
    run_pytest,
    third_party_conftest,
    write,
)

from pytest_fairmind import cli
from pytest_fairmind.report import SCHEMA

GATED = (
    TWO_MODELS
    + """
@pytest.mark.fairmind(model="credit", gates=["equalized_odds_difference<=0.1"])
def test_marker_gate(fairmind):
    fairmind.record({"accuracy": 0.9})
"""
)
INI_GATES = """[pytest]
fairmind_gates =
    credit:demographic_parity_ratio >= 0.8
    churn:0.9 <= accuracy <= 1
    nothing_matches_this <= 1
"""


def fairmind(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose one session (in the history) has a failed gate, a passed one, a marker gate
    and an unevaluated one; the cwd is the project."""
    write(tmp_path, "test_models.py", GATED)
    write(tmp_path, "pytest.ini", INI_GATES)
    result = run_pytest(tmp_path, "--fairmind-json=report.json")
    assert result.rc == 1, result.out  # churn's accuracy gate fails
    monkeypatch.chdir(tmp_path)
    for name in (
        "MLFLOW_TRACKING_URI",
        "FAIRMIND_PROVIDER",
        "FAIRMIND_HISTORY",
        "WANDB_MODE",
        "WANDB_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "pytest-output.txt").write_text(result.out)
    return tmp_path


def _summary_lines(pytest_output: str) -> list[str]:
    """The verdict table and gate lines pytest printed after its fairmind separator."""
    lines = pytest_output.splitlines()
    start = next(i for i, line in enumerate(lines) if " fairmind: " in line and line.startswith("-"))
    end = next(i for i, line in enumerate(lines) if line.startswith("report: "))
    return lines[start + 1 : end]


# --------------------------------------------------------------------------- check


def test_check_prints_the_same_verdict_table_and_fails_on_a_failed_gate(
    gated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = fairmind(capsys, "check", "last")
    assert code == 1, out + err
    lines = out.splitlines()
    assert lines[0].startswith("fairmind check: ")
    assert "(session " in lines[0] and "4 gate(s))" in lines[0]
    assert lines[1:] == _summary_lines((gated / "pytest-output.txt").read_text())
    assert "gate FAILED: churn: accuracy = 0.75, bound >= 0.9 and <= 1 [churn:0.9 <= accuracy <= 1]" in out
    assert "gate not evaluated (matched no metric): nothing_matches_this <= 1" in out
    # The report file gives the same answer as the history entry.
    assert fairmind(capsys, "check", "report.json")[:2] == (
        code,
        out.replace(_entry_path(gated), "report.json"),
    )


def _entry_path(project: Path) -> str:
    [entry] = history_entries(project / ".fairmind")
    return str(entry.relative_to(project))


def test_check_with_other_gates_and_strict(gated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = fairmind(capsys, "check", "report.json", "--gate", "accuracy>=0.7")
    assert code == 0, out
    assert "FAIL" not in out
    code, out, _ = fairmind(capsys, "check", "report.json", "--gate", "credit:demographic_parity_ratio>=0.9")
    assert code == 1
    assert "gate FAILED: credit: sex/demographic_parity_ratio = 0.85, bound >= 0.9" in out
    # A gate that matches nothing is listed; only --strict makes it fail.
    assert fairmind(capsys, "check", "report.json", "--gate", "no_such_metric<1")[0] == 0
    assert fairmind(capsys, "check", "report.json", "--gate", "no_such_metric<1", "--strict")[0] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "missing.json"], "missing.json: no such file"),
        (["check", "garbage.json"], "garbage.json: cannot read the session"),
        (["check", "other.json"], "not a pytest-fairmind report"),
        (["check", "report.json", "--gate", "accuracy == 1"], "operators are <=, <, >=, >"),
        (["check", "last", "--history", "empty-history"], "no session in the history folder empty-history"),
        (["replay", "missing.json"], "missing.json: no such file"),
        (["replay", "garbage.json"], "garbage.json: cannot read the session"),
        (["replay", "report.json", "--provider", "nosuch"], "unknown provider 'nosuch'"),
        (["replay", "report.json", "--timeout", "0"], "--timeout must be > 0"),
        (["status", "--provider", "nosuch"], "unknown provider 'nosuch'"),
        (["replay"], "the following arguments are required: PATH"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_usage_and_unreadable_files_exit_2(
    gated: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    write(gated, "garbage.json", '{"schema": "pytest-fairmind/1", "session": ')
    write(gated, "other.json", json.dumps({"schema": "something-else/3"}))
    code, out, err = fairmind(capsys, *args)
    assert code == 2, out + err
    assert message in err
    assert "Traceback" not in out + err


def test_check_and_replay_as_a_console_script(gated: Path) -> None:
    """The installed command (a subprocess, as CI runs it) gives the same exit codes."""
    assert run_fairmind(gated, "check", "last").rc == 1
    assert run_fairmind(gated, "check", "last", "--gate", "accuracy>=0").rc == 0
    assert run_fairmind(gated, "check", "nope.json").rc == 2
    assert run_fairmind(gated, "replay", "last").rc == 0  # no provider failed: nothing to do


# --------------------------------------------------------------------------- replay


def test_replay_reports_failures_with_exit_1_and_leaves_report_files_alone(
    gated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"http://user:canary-pass-987@127.0.0.1:{free_port()}"
    before = (gated / "report.json").read_bytes()
    start = time.monotonic()
    code, out, err = fairmind(capsys, "replay", "report.json", "--provider", "mlflow", "--mlflow-uri", uri)
    assert code == 1, out + err
    assert time.monotonic() - start < 30
    assert "mlflow: FAILED: cannot reach http://***@127.0.0.1:" in out
    assert "canary-pass-987" not in out + err
    assert (gated / "report.json").read_bytes() == before  # only history entries are updated


def test_replay_skips_providers_only_pytest_knows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_store: MlflowStore
) -> None:
    """A provider registered by a conftest failed: replay cannot build it outside pytest; it says
    so, exits 1, and still replays the others with --provider."""
    write(tmp_path, "conftest.py", third_party_conftest({"nope": "fail"}))
    write(tmp_path, "test_models.py", TWO_MODELS)
    assert run_pytest(tmp_path, "--fairmind-provider=nope").rc == 0
    default = run_fairmind(tmp_path, "replay", "last")
    assert default.rc == 1, default.out
    assert "provider 'nope' failed in this session but is not installed as a package" in default.out
    forced = run_fairmind(
        tmp_path,
        "replay",
        ".fairmind/sessions",  # a folder: every entry in it
        "--provider",
        "mlflow",
        "--mlflow-uri",
        mlflow_store(tmp_path),
        "--timeout",
        "120",
    )
    assert forced.rc == 0, forced.out
    assert "mlflow: 2 run(s)" in forced.out
    [entry] = history_entries(tmp_path / ".fairmind")
    providers = load(entry)["providers"]
    assert providers["mlflow"]["ok"] is True and providers["nope"]["ok"] is False


def test_replay_of_a_session_without_failures_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    doc = {
        "schema": SCHEMA,
        "session": {"id": "s1", "project": "p", "started": "2026-01-01T00:00:00+00:00"},
        "providers": {},
        "models": {"m": {"metrics": {"a": 1.0}}},
    }
    write(tmp_path, "s.json", json.dumps(doc))
    code, out, _ = fairmind(capsys, "replay", "s.json")
    assert code == 0
    assert "no provider failed in this session; nothing to replay" in out


# --------------------------------------------------------------------------- status


def test_status_closed_port_exit_1_and_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "canary-tok-123456")
    port = free_port()
    uri = f"http://user:canary-pass-987@127.0.0.1:{port}"
    code, out, err = fairmind(capsys, "status", "--provider", "mlflow", "--mlflow-uri", uri)
    assert code == 1, out + err
    assert f"mlflow: installed, configured, NOT reachable: cannot reach http://***@127.0.0.1:{port}" in out
    assert f"writes to http://***@127.0.0.1:{port}" in out
    assert "canary-pass-987" not in out + err
    assert "canary-tok-123456" not in out + err
    # The same store, not configured: reported, but not an error.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    code, out, _ = fairmind(capsys, "status")
    assert code == 0, out
    assert "mlflow: installed, not configured, NOT reachable" in out
    assert "canary-pass-987" not in out


def test_status_stalled_server_is_bounded_by_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with StalledListener() as stall:
        code, out, _ = fairmind(
            capsys, "status", "--provider", "mlflow", "--mlflow-uri", stall.url, "--timeout", "1"
        )
        end = time.monotonic()
        assert stall.first_accept is not None, "the check never reached the listener"
    assert code == 1, out
    assert f"NOT reachable: no answer from {stall.url}: timed out" in out
    # Counted from when the check reached the listener (imports before depend on the machine's load).
    assert end - stall.first_accept < 1 + 3, end - stall.first_accept


def test_status_local_store_and_env_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAIRMIND_PROVIDER", "mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, out, _ = fairmind(capsys, "status")
    assert code == 0, out
    assert "configured providers: mlflow" in out
    assert f"mlflow: installed, configured, reachable; writes to sqlite:///{tmp_path}/mlflow.db" in out


@pytest.mark.parametrize("server", ["closed", "stalled"])
def test_status_wandb_online_unreachable_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], server: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_API_KEY", "f" * 40)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with StalledListener() as stall:
        base = stall.url if server == "stalled" else f"http://127.0.0.1:{free_port()}"
        monkeypatch.setenv("WANDB_BASE_URL", base)
        start = time.monotonic()
        code, out, _ = fairmind(capsys, "status", "--provider", "wandb", "--timeout", "1")
        end = time.monotonic()
    # Stalled: counted from when the check reached the listener; refused: the whole call, which
    # includes imports whose time depends on the machine's load (a generous bound).
    seconds = end - (stall.first_accept or start)
    bound = 1 + 3 if stall.first_accept is not None else 1 + 10
    assert code == 1, out
    wandb_line = next(line for line in out.splitlines() if line.startswith("wandb: "))
    assert wandb_line.startswith("wandb: installed, configured, NOT reachable"), wandb_line
    assert f"writes to online: {base}" in wandb_line
    assert "f" * 40 not in out
    assert seconds < bound, seconds
