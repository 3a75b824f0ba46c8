"""End to end: `pytest --fairmind-provider=mlflow` sessions (in subprocesses) read back with MlflowClient.

The inner sessions run with plain ``subprocess`` in ``tmp_path`` rather than through the
``pytester`` fixture: pytester restores ``sys.modules`` after each test, which tears mlflow's lazily
imported modules apart for the read-back of the next test.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import MlflowServer, MlflowStore, artifact_paths, mlflow_client, runs_of

FLOAT_MAX = sys.float_info.max
TIMEOUT = "--fairmind-timeout=180"  # a loaded 2-core CI machine can take a while to create a store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # reading back with mlflow here

TESTS = textwrap.dedent(
    """
    import math
    import pytest

    @pytest.mark.parametrize("i", range(4))
    def test_scores(fairmind, i):
        fairmind.record({"part": {f"s{i}": i / 3}, "nan_metric": math.nan, "inf_metric": math.inf},
                        model=f"model_{i % 2}", params={"kind": "logreg", "notes": None})

    def test_groups(fairmind):
        y_true = [0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0]
        y_pred = [0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0]
        sex = ["F", "F", "F", "F", "F", "F", "M", "M", "M", "M", "M", "M"]
        fairmind.assess(y_true, y_pred, sensitive_features={"sex": sex}, model="model_0")
        fairmind.record({"accuracy_check": 1.0}, model="model_2", tags={"owner": "team-a"})
    """
)


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.ret = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def fnmatch_lines(self, patterns: list[str]) -> None:
        pytest.LineMatcher(self.out.splitlines()).fnmatch_lines(patterns)


def run_pytest(folder: Path, *args: str, timeout: float = 600) -> Result:
    """An inner pytest session in ``folder`` (a fresh interpreter, as a user would run it)."""
    (folder / "test_bias.py").write_text(TESTS, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, TIMEOUT],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc)


def load_report(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def assert_metrics_equal_report(run: Any, model_doc: dict[str, Any]) -> None:
    nonfinite = model_doc["nonfinite"]
    assert set(run.data.metrics) == set(model_doc["metrics"])
    for key, value in model_doc["metrics"].items():
        got = run.data.metrics[key]
        if value is not None:
            assert got == value, key
        elif nonfinite[key] == "nan":
            assert math.isnan(got), key
        else:  # MLflow's SQL stores keep +-inf as +-max float
            assert got == (FLOAT_MAX if nonfinite[key] == "inf" else -FLOAT_MAX), key


def check_session(uri: str, report: dict[str, Any], project: str = "fairmind") -> dict[str, Any]:
    """Exactly one FINISHED run per model of the report's session, equal to the report."""
    session_id = report["session"]["id"]
    outcome = report["providers"]["mlflow"]
    assert outcome["ok"], outcome["error"]
    runs = runs_of(uri, project, session_id=session_id)
    by_model: dict[str, list[Any]] = {}
    for run in runs:
        by_model.setdefault(run.data.tags["fairmind.model"], []).append(run)
    assert sorted(by_model) == sorted(report["models"])
    assert all(len(rs) == 1 for rs in by_model.values()), {m: len(rs) for m, rs in by_model.items()}
    for name, (run,) in by_model.items():
        model_doc = report["models"][name]
        assert run.info.status == "FINISHED"
        assert run.info.run_name == name
        assert outcome["runs"][name]["id"] == run.info.run_id
        assert run.data.tags["fairmind.verdict"] == model_doc["verdict"]
        assert_metrics_equal_report(run, model_doc)
        for key, value in model_doc["params"].items():
            assert run.data.params[key] == str(value), key
    return {m: rs[0] for m, rs in by_model.items()}


@pytest.mark.usefixtures("charts")  # a user's default: the run has its charts
def test_default_store_one_run_per_model_under_W_error(tmp_path: Path) -> None:
    """`-W error`: MLflow/SQLAlchemy warnings change nothing and print nothing; no "View run" lines."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "fair-branch"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=tmp_path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.strip()
    result = run_pytest(tmp_path, "-W", "error", "--fairmind-provider=mlflow", "--fairmind-json=r.json")
    assert result.ret == 0, result.out + result.err
    for noise in ("Warning", "warnings summary", "View run", "INFO mlflow", "alembic"):
        assert noise not in result.out + result.err, noise
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    report = load_report(tmp_path / "r.json")
    runs = check_session(uri, report)
    assert report["providers"]["mlflow"]["runs"]["model_0"]["path"] == str(db)
    assert report["providers"]["mlflow"]["runs"]["model_0"]["url"] is None
    result.fnmatch_lines(["*mlflow: 3 run(s)*", f"*mlflow ui --backend-store-uri {uri}*"])

    m0 = runs["model_0"]
    assert m0.data.params["notes"] == "None"
    assert m0.data.tags["fairmind.session"] == report["session"]["id"]
    assert runs["model_2"].data.tags["owner"] == "team-a"
    assert m0.data.tags["mlflow.source.git.commit"] == head == m0.data.tags["git.commit"]
    assert m0.data.tags["mlflow.source.git.branch"] == "fair-branch"
    paths = artifact_paths(uri, m0.info.run_id)
    assert {"fairmind/result.json", "fairmind/groups/sex.json", "fairmind/groups/sex.rates.png"} <= paths
    assert artifact_paths(uri, runs["model_1"].info.run_id) == {"fairmind/result.json"}


def test_xdist_session_then_a_second_session_adds_runs(tmp_path: Path, mlflow_store: MlflowStore) -> None:
    uri = mlflow_store(tmp_path)  # the sessions' default ./mlflow.db, ready
    first = run_pytest(tmp_path, "-n", "2", "--fairmind-provider=mlflow", "--fairmind-json=one.json")
    assert first.ret == 0, first.out + first.err
    report = load_report(tmp_path / "one.json")
    check_session(uri, report)
    # No other runs at all: workers never log.
    assert len(runs_of(uri, "fairmind", deleted=True)) == 3
    session_ids = [report["session"]["id"]]

    second = run_pytest(tmp_path, "--fairmind-provider=mlflow", "--fairmind-json=two.json")
    assert second.ret == 0, second.out + second.err
    report = load_report(tmp_path / "two.json")
    check_session(uri, report)
    session_ids.append(report["session"]["id"])
    assert session_ids[0] != session_ids[1]
    runs = runs_of(uri, "fairmind")
    assert len(runs) == 6
    assert sorted(r.data.tags["fairmind.session"] for r in runs) == sorted(session_ids * 3)


def test_real_server_via_env_project_and_ci_url(
    tmp_path: Path, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    monkeypatch.setenv("CI_JOB_URL", "https://ci.example/jobs/77")
    project = f"e2e-{time.time_ns()}"
    result = run_pytest(
        tmp_path, "--fairmind-provider=mlflow", f"--fairmind-project={project}", "--fairmind-json=r.json"
    )
    assert result.ret == 0, result.out + result.err
    report = load_report(tmp_path / "r.json")
    runs = check_session(mlflow_server.uri, report, project=project)
    ref = report["providers"]["mlflow"]["runs"]["model_0"]
    experiment_id = runs["model_0"].info.experiment_id
    assert ref["url"] == f"{mlflow_server.uri}/#/experiments/{experiment_id}/runs/{ref['id']}"
    result.fnmatch_lines([f"*{ref['url']}*"])
    assert runs["model_0"].data.tags["ci.job_url"] == "https://ci.example/jobs/77"
    assert not (tmp_path / "mlflow.db").exists()


EVIDENCE_TESTS = textwrap.dedent(
    """
    import numpy as np
    import pytest

    rng = np.random.default_rng(3)
    n = 2000
    sex = rng.choice(["F", "M"], n)
    age = rng.choice(["<30", "30-60", ">60"], n)
    y = rng.integers(0, 2, n)
    harmed = (sex == "F") & (age == "<30")
    pred = (rng.random(n) < np.where(harmed, 0.25, 0.55)).astype(int)

    @pytest.mark.fairmind(model="credit", gates=[
        "sex/demographic_parity_difference <= 0.5",
        "sex/demographic_parity_difference <= 0.001",
        "scan/selection_rate.significant <= 0",
    ])
    def test_credit(fairmind):
        fairmind.assess(y, pred, sensitive_features={"sex": sex}, scope="sex", n_boot=200)
        fairmind.scan(y, pred, features={"sex": sex, "age": age})
    """
)


def test_interval_gates_and_scan_reach_the_run(tmp_path: Path, mlflow_store: MlflowStore) -> None:
    """The whole path: `scan` and interval gates recorded by a session end up in the run's
    `fairmind/gates.json` and `fairmind/scans/scan.json`, equal to the session report."""
    uri = mlflow_store(tmp_path)
    (tmp_path / "test_evidence.py").write_text(EVIDENCE_TESTS, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_evidence.py", TIMEOUT,
         "--fairmind-provider=mlflow", "--fairmind-json=r.json", "--fairmind-evidence=interval"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a gate failed
    report = load_report(tmp_path / "r.json")
    (run,) = check_session(uri, report).values()
    model_doc = report["models"]["credit"]
    assert run.data.tags["fairmind.verdict"] == model_doc["verdict"] == "fail"
    assert {"fairmind/gates.json", "fairmind/scans/scan.json"} <= artifact_paths(uri, run.info.run_id)
    client = mlflow_client(uri)
    folder = Path(client.download_artifacts(run.info.run_id, "fairmind", str(tmp_path / "down")))
    gates = json.loads((folder / "gates.json").read_text(encoding="utf-8"))["gates"]
    by_expr = {(g["expr"], g["key"]): g for g in gates}
    assert len(by_expr) == len(model_doc["gates"])
    for entry in model_doc["gates"]:
        logged = by_expr[(entry["expr"], entry["key"])]
        for field, value in entry.items():
            assert logged[field] == value, field  # every field of the report's entry, as it is
    interval = [g for g in gates if g["evidence"] == "interval"]
    assert interval and all(g["p_value"] is not None and g["alpha"] is not None for g in interval)
    assert {g["outcome"] for g in gates} >= {"pass", "fail"}
    scan_doc = json.loads((folder / "scans" / "scan.json").read_text(encoding="utf-8"))
    assert scan_doc == {"scope": "scan", **model_doc["scans"]["scan"]}
    assert scan_doc["rows"][0]["conditions"] == {"sex": "F", "age": "<30"}
