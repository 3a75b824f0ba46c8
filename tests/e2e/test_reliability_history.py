"""The local history in real subprocess sessions: atomic under kill, an unwritable folder is a
notice, and what it saved replays to the same runs (session id, metrics equal to the report) in
MLflow and W&B. (Saved before any provider is called, and pruned: tests/session/test_core_report.py.)"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    TWO_MODELS,
    MlflowStore,
    load,
    mlflow_client,
    read_runs,
    run_fairmind,
    run_pytest,
    runs_of,
    subprocess_env,
    third_party_conftest,
    unsupported_reason,
    write,
)

from pytest_fairmind import history

FLOAT_MAX = sys.float_info.max  # what MLflow's SQL store keeps for +-inf

#: Non-finite metrics, a per-group table with an undefined rate, params and tags.
RICH = """
import pytest

@pytest.mark.fairmind(model="scorer")
def test_assess(fairmind):
    y_true = [1, 0, 1, 1, 0, 0, 1, 0, 0, 0]
    y_pred = [1, 0, 0, 1, 1, 0, 1, 0, 0, 1]
    sex = ["F", "F", "F", "F", "F", "M", "M", "M", "M", "M"]
    age = ["young"] * 5 + ["old"] * 5  # "old" has one actual positive, "young" three
    fairmind.assess(y_true, y_pred, sensitive_features={"sex": sex})
    fairmind.assess([0, 0, 0, 1], [0, 1, 0, 1], sensitive_features=["a", "a", "b", "b"], scope="tiny")

@pytest.mark.fairmind(model="scorer")
def test_extremes(fairmind):
    fairmind.record({"loss": float("nan"), "ratio": float("inf"), "gap": float("-inf"), "n": 3},
                    params={"threshold": "0.5", "balanced": True}, tags={"team": "risk"})

@pytest.mark.fairmind(model="team/clf ünï")
def test_other(fairmind):
    fairmind.record({"accuracy": 0.75})
"""


def _mlflow_value(value: float | None, word: str | None) -> float:
    """A report metric as MLflow's SQL store gives it back (inf is stored as +-float max)."""
    if value is not None:
        return value
    return {"nan": math.nan, "inf": FLOAT_MAX, "-inf": -FLOAT_MAX}[word or "nan"]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _read_mlflow(uri: str, project: str) -> list[Any]:
    with warnings.catch_warnings():  # SQLAlchemy deprecations of MLflow's own store
        warnings.simplefilter("ignore")
        return runs_of(uri, project)


def test_an_unwritable_history_folder_is_a_notice_not_a_crash(tmp_path: Path) -> None:
    write(tmp_path, "test_models.py", TWO_MODELS)
    write(tmp_path, "blocker", "a file where the history folder should be\n")
    write(tmp_path, "pytest.ini", "[pytest]\nfairmind_history = blocker\n")
    result = run_pytest(tmp_path, "--fairmind-json=report.json")
    assert result.rc == 0, result.out
    assert "INTERNALERROR" not in result.out
    report = result.report()
    assert set(report["models"]) == {"credit", "churn"}
    assert any(n.startswith("could not save the session in ") for n in report["notices"]), report["notices"]
    assert "could not save the session in " in result.out


WRITER = """
import json, sys
from pathlib import Path
from pytest_fairmind.history import atomic_write
path = Path(sys.argv[1])
docs = [json.dumps({"version": v, "pad": "x" * 4_000_000}) for v in ("a", "b")]
i = 0
print("ready", flush=True)
while True:
    atomic_write(path, docs[i % 2])
    i += 1
"""


def test_a_kill_mid_write_leaves_a_whole_entry(tmp_path: Path) -> None:
    """SIGKILL a process rewriting a 4 MB entry in a loop: the entry is always one whole version."""
    path = tmp_path / "sessions" / "20260101000000000000-killed.json"
    history.atomic_write(path, json.dumps({"version": "old", "pad": ""}))
    temps: list[Path] = []
    # Three kills at different points of the loop; more (up to ten) only until one has landed inside
    # a write and left its temp file: a kill between two writes (rare, but seen under load) leaves none.
    for kill in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            stdout=subprocess.PIPE,
            env=subprocess_env(tmp_path),
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep((0.05, 0.2, 0.35)[kill % 3])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        assert json.loads(path.read_text(encoding="utf-8"))["version"] in ("old", "a", "b")
        temps = list(path.parent.glob(".*.tmp"))
        if kill >= 2 and temps:
            break
    # A killed write leaves its temp file behind: never taken for an entry, removed by a later
    # save once stale (an hour; a concurrent session may be writing a fresh one).
    assert history.entries(tmp_path) == [path]
    assert temps, "expected the temp file of a killed write"
    history.prune(tmp_path, keep=10)
    assert list(path.parent.glob(".*.tmp")) == temps  # fresh: left alone
    history.prune(tmp_path, keep=10, stale_after=0)
    assert list(path.parent.glob(".*.tmp")) == []
    assert history.entries(tmp_path) == [path]


def test_replay_logs_the_same_runs_to_mlflow_and_wandb(tmp_path: Path, mlflow_store: MlflowStore) -> None:
    """A session whose provider failed, replayed from the history to MLflow and W&B (offline),
    twice: one run per model in each, carrying the session id and exactly the report's numbers."""
    reason = unsupported_reason()
    if reason:
        pytest.skip(reason)
    write(tmp_path, "conftest.py", third_party_conftest({"nope": "fail"}))
    write(tmp_path, "test_rich.py", RICH)
    result = run_pytest(tmp_path, "--fairmind-provider=nope", "--fairmind-json=report.json")
    assert result.rc == 0, result.out
    report = result.report()
    session_id = report["session"]["id"]
    nonfinite = report["models"]["scorer"]["nonfinite"]
    assert {"loss": "nan", "ratio": "inf", "gap": "-inf"}.items() <= nonfinite.items()
    assert nonfinite["tiny/equalized_odds_difference"] == "nan"  # group "a" has no actual positive
    [entry] = result.entries()

    uri = mlflow_store(tmp_path / "store")
    args = ["replay", "last", "--provider", "mlflow,wandb", "--mlflow-uri", uri, "--wandb-mode", "offline"]
    first = run_fairmind(tmp_path, *args, "--timeout", "120")
    assert first.rc == 0, first.out
    assert first.out.count(": run ") == 4, first.out  # 2 models x 2 providers
    second = run_fairmind(tmp_path, *args, "--timeout", "120")
    assert second.rc == 0, second.out
    assert second.out.count("already logged") == 4, second.out
    saved = load(entry)
    assert saved["providers"]["mlflow"]["ok"] and saved["providers"]["wandb"]["ok"]
    assert saved["providers"]["nope"]["ok"] is False  # not replayed: not asked for

    # MLflow: one finished run per model with the session's identity and the report's numbers.
    runs = _read_mlflow(uri, report["session"]["project"])
    assert sorted(r.info.run_name for r in runs) == sorted(report["models"])
    for run in runs:
        model = report["models"][run.info.run_name]
        assert run.info.status == "FINISHED"
        assert run.data.tags["fairmind.session"] == session_id
        assert run.data.tags["fairmind.verdict"] == model["verdict"]
        assert set(run.data.metrics) == set(model["metrics"])
        for key, value in model["metrics"].items():
            expected = _mlflow_value(value, model["nonfinite"].get(key))
            assert _same(run.data.metrics[key], expected), (key, run.data.metrics[key], expected)
        # The artifacts carry the model's full result, as the report has it.
        folder = tmp_path / "artifacts" / run.info.run_id
        folder.mkdir(parents=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            local = mlflow_client(uri).download_artifacts(run.info.run_id, "fairmind", str(folder))
        artifact = json.loads((Path(local) / "result.json").read_text(encoding="utf-8"))
        assert artifact["session"]["id"] == session_id
        assert artifact["result"] == model
        for scope, rows in model["groups"].items():
            assert any(
                json.loads(p.read_text(encoding="utf-8")) == {"scope": scope, "rows": rows}
                for p in (Path(local) / "groups").glob("*.json")
            ), scope

    # W&B offline: one run per model, grouped by the session, the same summary numbers.
    wandb_runs = read_runs(str(tmp_path / "wb" / "wandb"))
    assert sorted(wandb_runs) == sorted(report["models"])
    for name, run in wandb_runs.items():
        model = report["models"][name]
        assert run.group == session_id
        assert run.job_type == "fairness"
        assert set(model["metrics"]) <= set(run.metrics)
        for key, value in model["metrics"].items():
            # W&B keeps +-inf and stores NaN as null, as the report does.
            word = model["nonfinite"].get(key)
            expected = {"inf": math.inf, "-inf": -math.inf}.get(word or "", value)
            assert run.metrics[key] == expected, (key, run.metrics[key], expected)
        assert run.metrics["fairmind.verdict"] == model["verdict"]
        assert run.config == {k: v for k, v in model["params"].items()}
