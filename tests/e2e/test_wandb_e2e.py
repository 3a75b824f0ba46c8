"""End to end: ``pytest --fairmind-provider=wandb`` in a real subprocess, runs read back offline."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import StalledListener, WandbEnv, all_bytes, offline_run_dirs, read_runs, wait_no_core

FAKE_KEY = "f" * 40
MODELS = ("alpha", "beta", "gamma")

BIAS_TESTS = """
import pytest

@pytest.mark.parametrize("model", ["alpha", "beta", "gamma"])
def test_assess(fairmind, model):
    y_true = [1, 0, 1, 1, 0, 1, 0, 0]
    y_pred = [1, 0, 0, 1, 1, 1, 0, 1]
    sex = ["F", "F", "F", "M", "M", "M", "F", "M"]
    fairmind.assess(y_true, y_pred, sensitive_features={"sex": sex}, model=model)

@pytest.mark.parametrize("model", ["alpha", "beta", "gamma"])
def test_extra(fairmind, model):
    fairmind.record(
        {"auc": 0.7 if model != "beta" else float("nan"), "latency": {"p50": 12}},
        model=model, params={"family": "gbm", "calibrated": model == "alpha"}, tags={"owner": "risk"},
    )
"""


def run_pytest(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any], float]:
    pytester.makepyfile(test_bias=BIAS_TESTS)
    report = pytester.path / "report.json"
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--fairmind-provider=wandb", f"--fairmind-json={report}", *args
    )
    elapsed = time.monotonic() - started
    return result, json.loads(report.read_text(encoding="utf-8")), elapsed


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_one_run_per_model_matching_the_report(
    pytester: pytest.Pytester, wandb_env: WandbEnv, xdist: tuple[str, ...]
) -> None:
    gate = "--fairmind-gate=gamma:sex/demographic_parity_ratio>=0.8"
    result, report, _ = run_pytest(pytester, gate, *xdist)
    assert result.ret == 1, result.stdout.str()  # gamma's gate failed
    provider = report["providers"]["wandb"]
    assert provider["ok"], provider
    assert provider["note"] == f"uploadable with: wandb sync {wandb_env.wandb_dir}/offline-run-*"
    result.stdout.fnmatch_lines(["*uploadable with: wandb sync *offline-run-*"])

    runs = read_runs(str(wandb_env.wandb_dir))  # fails on a model logged twice
    assert sorted(runs) == sorted(MODELS) == sorted(report["models"])
    session = report["session"]
    for name, model in report["models"].items():
        run = runs[name]
        ref = provider["runs"][name]
        assert (run.id, run.dir) == (ref["id"], ref["path"])
        assert run.project == session["project"] == "fairmind"
        assert run.group == session["id"]
        assert run.job_type == "fairness"
        assert run.config == model["params"]
        assert run.tags[0] == model["verdict"] and "owner:risk" in run.tags
        metrics = run.metrics
        assert metrics.pop("fairmind.verdict") == model["verdict"]
        assert metrics.pop("fairmind.session") == session["id"]
        assert metrics == model["metrics"]  # null in the report is null (NaN) in W&B too
        table = run.table("sex/by_group")
        assert [row[0] for row in table["data"]] == [g["group"]["sex"] for g in model["groups"]["sex"]]
        column = table["columns"].index("selection_rate")
        assert [row[column] for row in table["data"]] == [g["selection_rate"] for g in model["groups"]["sex"]]
    assert report["models"]["gamma"]["verdict"] == "fail"
    assert report["models"]["beta"]["nonfinite"] == {"auc": "nan"}
    assert runs["beta"].summary["auc"] is None  # W&B's JSON has no NaN: null, as in the report
    assert wait_no_core(str(wandb_env.root)) == []
    if xdist:
        return
    # A replay of the session (its runs are there already) is idempotent: no new run folder.
    before = offline_run_dirs(str(wandb_env.wandb_dir))
    assert len(before) == len(MODELS)
    replay = subprocess.run(
        [sys.executable, "-m", "pytest_fairmind.cli", "replay", "report.json", "--provider", "wandb"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert offline_run_dirs(str(wandb_env.wandb_dir)) == before


def test_disabled_writes_nothing(pytester: pytest.Pytester, wandb_env: WandbEnv) -> None:
    result, report, _ = run_pytest(pytester, "--fairmind-wandb-mode=disabled")
    assert result.ret == 0, result.stdout.str()
    assert report["providers"]["wandb"]["ok"] and report["providers"]["wandb"]["runs"] == {}
    result.stdout.fnmatch_lines(["*disabled*"])
    assert not wandb_env.wandb_dir.exists()
    assert [p for root in wandb_env.scan_roots() for p in Path(root).rglob("*")] == []


def test_command_line_secrets_stay_out_of_the_runs(
    pytester: pytest.Pytester, wandb_env: WandbEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    canaries = ("canary-cli-pw-7777", "canary-env-token-8888")
    monkeypatch.setenv("MY_SERVICE_TOKEN", canaries[1])
    result, report, _ = run_pytest(
        pytester, f"--fairmind-mlflow-uri=http://alice:{canaries[0]}@mlflow.invalid"
    )
    assert result.ret == 0, result.stdout.str()
    assert len(read_runs(str(wandb_env.wandb_dir))) == len(MODELS)
    text = result.stdout.str() + result.stderr.str() + json.dumps(report)
    leaks = [
        path for path, blob in all_bytes(*wandb_env.scan_roots()) if any(c.encode() in blob for c in canaries)
    ]
    assert leaks == []
    assert not any(c in text for c in canaries)


def test_stalled_online_server_is_abandoned_at_the_timeout(
    pytester: pytest.Pytester,
    wandb_env: WandbEnv,
    stalled_listener: StalledListener,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", stalled_listener.url)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    baseline, _, quick = run_pytest(pytester, "--fairmind-wandb-mode=disabled")
    assert baseline.ret == 0
    result, report, elapsed = run_pytest(pytester, "--fairmind-timeout=3")
    assert result.ret == 0, result.stdout.str()  # not strict: a provider failure is a summary line
    provider = report["providers"]["wandb"]
    # The provider gives up by itself ("time budget"), or on a loaded machine the parent kills it.
    assert not provider["ok"] and ("time budget" in provider["error"] or "timed out" in provider["error"])
    assert provider["target"].startswith("online: http://127.0.0.1:")
    # Cut at the 3 s budget: counted from when W&B reached the stalled server to when its process
    # let go of it (the session's start-up before depends on the machine's load), and overall no
    # more than a generous margin over the same session without W&B.
    if stalled_listener.accepted.is_set():
        held = stalled_listener.held_seconds()
        assert held < 3 + 5, f"held {held:.1f} s"
    assert elapsed < quick + 3 + 30, f"{elapsed:.1f} s against {quick:.1f} s without W&B"
    assert FAKE_KEY not in result.stdout.str() + json.dumps(report)
    assert wait_no_core(str(wandb_env.root), grace=0.5) == []


INTERRUPTED_TESTS = """
def test_recorded(fairmind):
    fairmind.record({"accuracy": 0.9}, model="alpha")
    fairmind.scan([0, 1] * 40, [0, 1, 1, 1] * 20, features={"sex": ["F", "M"] * 40}, model="alpha",
                  min_support=10)

def test_stopped(fairmind):
    raise KeyboardInterrupt
"""


def test_interrupted_session_logs_its_verdict_and_scan(
    pytester: pytest.Pytester, wandb_env: WandbEnv
) -> None:
    """Ctrl-C: the models recorded so far are logged with the verdict ``interrupted`` (run tag and
    summary), and the scan's table with them."""
    pytester.makepyfile(test_stop=INTERRUPTED_TESTS)
    report_path = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--fairmind-provider=wandb", f"--fairmind-json={report_path}"
    )
    assert result.ret == 2, result.stdout.str()
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["providers"]["wandb"]["ok"], report["providers"]["wandb"]
    assert report["models"]["alpha"]["verdict"] == "interrupted"
    run = read_runs(str(wandb_env.wandb_dir))["alpha"]
    assert run.tags[0] == "interrupted" and run.summary["fairmind.verdict"] == "interrupted"
    table = run.table("scans/scan")
    rows = report["models"]["alpha"]["scans"]["scan"]["rows"]
    assert len(rows) == 2 and rows[0]["significant"]  # sex=F against sex=M: 0.5 against 1.0
    assert [r[0] for r in table["data"]] == [
        ", ".join(f"{k}={v}" for k, v in r["conditions"].items()) for r in rows
    ]
    assert [r[table["columns"].index("q_value")] for r in table["data"]] == [r["q_value"] for r in rows]
