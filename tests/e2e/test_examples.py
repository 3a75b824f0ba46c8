"""The examples are run by the test suite, so they cannot rot.

Each example is copied to a temporary folder and run there in a pytest subprocess (as a user
runs it), so its history, MLflow store and W&B runs never land in the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import BLOCKED_PLUGIN_ARGS, PYTEST, MlflowStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LEFTOVERS = (".fairmind", "mlflow.db", "mlruns", "wandb", "__pycache__", ".pytest_cache", ".benchmarks")
# Variables of the calling environment that would change what the example does.
_ENV_PREFIXES = ("FAIRMIND_", "MLFLOW_", "WANDB_", "PYTEST_", "GITHUB_STEP_SUMMARY")

pytest.importorskip("sklearn", reason="the credit example needs scikit-learn (pip install -e '.[test]')")
pytest.importorskip("pandas", reason="the credit example needs pandas (pip install -e '.[test]')")


@dataclass
class ExampleRun:
    folder: Path
    returncode: int
    output: str
    report: dict[str, Any]


def run_example(
    name: str, where: Path, *args: str, timeout: float = 300, store: MlflowStore | None = None
) -> ExampleRun:
    """The example run in a copy of its folder; with ``store``, its default ``./mlflow.db`` is a
    ready store, as after a first run (a new one is created in test_mlflow_e2e)."""
    folder = where / name
    shutil.copytree(EXAMPLES / name, folder, ignore=shutil.ignore_patterns(*LEFTOVERS))
    if store is not None:
        store(folder)
    report = where / f"{name}-report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES)}
    done = subprocess.run(
        [*PYTEST, *BLOCKED_PLUGIN_ARGS, f"--fairmind-json={report}", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert report.is_file(), f"no report written; pytest said:\n{output}"
    return ExampleRun(folder, done.returncode, output, json.loads(report.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory) -> ExampleRun:
    """The credit example without providers (fast): gates and report only."""
    return run_example("credit", tmp_path_factory.mktemp("credit"), "--fairmind-provider=none")


def test_credit_gate_fails_the_session_for_the_biased_model(credit: ExampleRun) -> None:
    assert credit.returncode == 1, credit.output
    assert "10 passed" in credit.output  # every test passed: exit code 1 comes from the gates
    assert "gate FAILED: credit-biased: sex/demographic_parity_ratio" in credit.output
    assert "gate FAILED: credit-mitigated" not in credit.output
    table = {
        line.split()[0]: line.split()[1] for line in credit.output.splitlines() if line.startswith("credit-")
    }
    assert table == {"credit-biased": "FAIL", "credit-mitigated": "PASS"}


def test_credit_report(credit: ExampleRun) -> None:
    report = credit.report
    assert report["schema"] == "pytest-fairmind/1"
    assert report["session"]["project"] == "credit-scoring"
    assert report["session"]["exitstatus"] == 1
    assert report["providers"] == {}
    assert report["gates_not_evaluated"] == []
    models = report["models"]
    assert {name: m["verdict"] for name, m in models.items()} == {
        "credit-biased": "fail",
        "credit-mitigated": "pass",
    }
    biased_scan = models["credit-biased"]["scans"]["scan"]
    assert biased_scan["metric"] == "true_positive_rate" and biased_scan["subgroups_tested"] > 0
    assert models["credit-mitigated"]["metrics"]["scan/true_positive_rate.significant"] == 0
    assert models["credit-biased"]["metrics"]["scan/true_positive_rate.significant"] >= 1
    for model in models.values():
        assert len(model["tests"]) == 5
        assert {t["outcome"] for t in model["tests"]} == {"passed"}
        assert {scope: len(rows) for scope, rows in model["groups"].items()} == {
            "sex": 2,
            "age_band": 3,
            "sex.age_band": 6,
        }
        # The gated metric is fairlearn's ratio of the lowest to the highest selection rate.
        for scope, rows in model["groups"].items():
            rates = [row["selection_rate"] for row in rows]
            assert model["metrics"][f"{scope}/demographic_parity_ratio"] == pytest.approx(
                min(rates) / max(rates), abs=1e-9
            )
        low, high = (
            model["metrics"]["sex/demographic_parity_ratio.ci_low"],
            model["metrics"]["sex/demographic_parity_ratio.ci_high"],
        )
        assert low <= model["metrics"]["sex/demographic_parity_ratio"] <= high
        assert model["metrics"]["performance/roc_auc"] >= 0.75
        assert model["tags"] == {"team": "credit-risk"}

    biased, mitigated = models["credit-biased"], models["credit-mitigated"]
    failed = {g["key"] for g in biased["gates"] if not g["passed"]}
    assert {
        "sex/demographic_parity_ratio",
        "age_band/demographic_parity_ratio",
        "sex.age_band/demographic_parity_ratio",
        "sex/equalized_odds_difference",
    } <= failed
    # Margins, so that the example stays a clear demonstration (not a coin flip near the bound).
    assert biased["metrics"]["sex/demographic_parity_ratio"] < 0.7
    assert mitigated["gates"] and all(g["passed"] for g in mitigated["gates"])
    for scope in ("sex", "age_band", "sex.age_band"):
        assert mitigated["metrics"][f"{scope}/demographic_parity_ratio"] > 0.85
        assert mitigated["metrics"][f"{scope}/equalized_odds_difference"] < 0.15
    assert mitigated["params"]["performance/mitigation"].startswith("per-group thresholds")
    assert biased["params"]["performance/mitigation"] == "none"
    # The session is in the local history, which `fairmind check last` reads.
    assert list((credit.folder / ".fairmind" / "sessions").glob("*.json"))


def test_credit_report_gates_again_with_fairmind_check(credit: ExampleRun, tmp_path: Path) -> None:
    """The CI recipe of the README: gate a saved session without rerunning the tests."""
    report = credit.folder.parent / "credit-report.json"

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest_fairmind.cli", "check", str(report), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )

    own = check()
    assert own.returncode == 1, own.stdout + own.stderr
    assert "credit-biased" in own.stdout and "FAIL" in own.stdout
    looser = check("--gate", "credit-mitigated:demographic_parity_ratio >= 0.8")
    assert looser.returncode == 0, looser.stdout + looser.stderr


def test_minimal_example(tmp_path: Path) -> None:
    run = run_example("minimal", tmp_path, "--fairmind-provider=none")
    assert run.returncode == 0, run.output
    model = run.report["models"]["loan-rules-v1"]
    assert model["verdict"] == "pass"
    assert model["metrics"]["approval_rate_ratio"] == pytest.approx(0.875)
    assert model["metrics"]["approval_rate.a"] == pytest.approx(0.8)
    assert model["metrics"]["incomes.count"] == 20
    assert set(model["metrics"]) >= {f"incomes.{s}" for s in ("mean", "min", "max", "std")}
    assert model["metrics"]["spread/income_range.a"] == pytest.approx(3.7)
    assert model["params"] == {"rule": "income >= 2.0 and debt <= 3 x income"}
    assert [g["passed"] for g in model["gates"]] == [True]


@pytest.mark.usefixtures("charts")  # as a user runs it: charts drawn
def test_credit_example_logs_to_mlflow_and_wandb(tmp_path: Path, mlflow_store: MlflowStore) -> None:
    """The README's first command: the embedded MLflow store and offline W&B runs."""
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    run = run_example(
        "credit",
        tmp_path,
        "--fairmind-provider=mlflow,wandb",
        "--fairmind-wandb-mode=offline",
        "--fairmind-timeout=240",
        store=mlflow_store,
    )
    assert run.returncode == 1, run.output
    providers = run.report["providers"]
    models = {"credit-biased", "credit-mitigated"}
    for name in ("mlflow", "wandb"):
        assert providers[name]["ok"], (name, providers[name]["error"], run.output)
        assert set(providers[name]["runs"]) == models
    assert "mlflow ui" in run.output and "wandb sync" in run.output

    store = run.folder / "mlflow.db"
    assert store.is_file()
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT runs.name, tags.value FROM runs JOIN experiments USING (experiment_id) "
            "JOIN tags ON tags.run_uuid = runs.run_uuid "
            "WHERE experiments.name = 'credit-scoring' AND tags.key = 'fairmind.verdict'"
        ).fetchall()
    assert sorted(rows) == [("credit-biased", "fail"), ("credit-mitigated", "pass")]

    offline = sorted((run.folder / "wandb").glob("offline-run-*"))
    assert len(offline) == 2, offline
    for folder in offline:
        assert list(folder.glob("*.wandb")), folder
