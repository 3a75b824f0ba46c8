"""The ``mlflow`` baseline source against real MLflow (issue 8): sessions log their runs with
``--fairmind-provider=mlflow`` to a SQLite store in the test's folder, and the next session (or
``fairmind check``) takes its baseline from those runs."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from helpers import MlflowStore, free_port, load_report

from pytest_fairmind.gating import sources
from pytest_fairmind.report import dumps
from pytest_fairmind.result import ModelResult, SessionResult

if importlib.util.find_spec("mlflow") is None:  # not imported here: in-process pytester runs and
    pytest.skip("mlflow is not installed", allow_module_level=True)  # C extensions do not mix

FAIRMIND = [str(Path(sys.executable).with_name("fairmind"))]
KEY = "sex/equalized_odds_difference"
PROJECT = "fairness"

INNER = """
import json
from pathlib import Path

CONFIG = json.loads((Path(__file__).parent / "values.json").read_text())


def test_sex(fairmind):
    for model, values in CONFIG.items():
        fairmind.record(values, model=model, scope="sex")


def test_other():
    pass
"""


def setup_project(pytester: pytest.Pytester, mlflow_store: MlflowStore | None = None) -> str:
    """The project's tests and its store URI; with ``mlflow_store``, ``./mlflow.db`` is a ready store."""
    pytester.makepyfile(test_fair=INNER)
    if mlflow_store is not None:
        return mlflow_store(pytester.path)
    return f"sqlite:///{pytester.path / 'mlflow.db'}"


def set_values(pytester: pytest.Pytester, **models: dict[str, float]) -> None:
    (pytester.path / "values.json").write_text(json.dumps(models), encoding="utf-8")


def run(pytester: pytest.Pytester, uri: str, *args: str, xdist: bool = False) -> pytest.RunResult:
    return pytester.runpytest(
        "-p", "no:cacheprovider",
        *(("-n", "2") if xdist else ()),
        "--fairmind-provider=mlflow",
        f"--fairmind-mlflow-uri={uri}",
        f"--fairmind-project={PROJECT}",
        "--fairmind-baseline=mlflow",
        "--fairmind-gate=equalized_odds_difference ~ 0.05",
        "--fairmind-timeout=120",
        "--fairmind-json=report.json",
        *args,
    )  # fmt: skip


def row(result: pytest.RunResult, model: str = "credit") -> list[str]:
    for line in result.stdout.lines:
        cells = re.split(r"\s{2,}", line.strip())
        if cells[:2] == [model, KEY]:
            return cells
    raise AssertionError(result.stdout.str())


VERDICTS = """
import json, sys, warnings
warnings.simplefilter("ignore")
from mlflow import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1])
exp = client.get_experiment_by_name(sys.argv[2])
runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
print(json.dumps([[r.data.tags["fairmind.model"], r.data.tags["fairmind.verdict"]] for r in runs]))
"""


def verdicts(uri: str) -> list[list[str]]:
    """(model, verdict) of the runs in the experiment, oldest first (asked from a child process)."""
    done = subprocess.run(
        [sys.executable, "-c", VERDICTS, uri, PROJECT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found: list[list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def logged(pytester: pytest.Pytester, uri: str) -> dict[str, Any]:
    doc = load_report(pytester.path / "report.json")
    assert doc["providers"]["mlflow"]["ok"], doc["providers"]
    return doc


class QueryProcesses:
    """The baseline query processes that the sessions (run in this process) start."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: list[list[str]] = []
        real = subprocess.run

        def run(args: list[str], **kwargs: Any) -> Any:
            if "pytest_fairmind.gating.mlflow_query" in args:
                self.started.append(list(args))
            return real(args, **kwargs)

        fake = types.SimpleNamespace(**{**vars(subprocess), "run": run})
        monkeypatch.setattr(sources, "subprocess", fake)


def test_mlflow_baseline_over_a_sequence_of_builds(
    pytester: pytest.Pytester, mlflow_store: MlflowStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first build, a worsened one (under xdist: the baseline query runs in the aggregating
    process either way, and each path is exercised), its rerun, and ``fairmind check`` of it.
    The sessions ask MLflow in their provider's warm process, which has mlflow imported already:
    no query process of its own."""
    queries = QueryProcesses(monkeypatch)
    uri = setup_project(pytester, mlflow_store)
    set_values(pytester, credit={"equalized_odds_difference": 0.1, "accuracy": 0.9})
    first = run(pytester, uri, xdist=False)
    assert first.ret == 0, first.stdout.str()
    first.stdout.fnmatch_lines(
        [f"warning: no baseline (no finished run in the MLflow experiment '{PROJECT}': first run?)*"]
    )
    logged(pytester, uri)

    set_values(
        pytester,
        credit={"equalized_odds_difference": 0.3, "accuracy": 0.95},
        newcomer={"equalized_odds_difference": 0.2},
    )
    second = run(pytester, uri, xdist=True)
    assert second.ret == 1, second.stdout.str()
    assert row(second)[2:5] == ["0.1", "0.3", "+0.2 (+200.0%)"] and row(second)[-1] == "WORSE"
    assert row(second, "newcomer")[2] == "no baseline"
    second.stdout.fnmatch_lines(
        ["*newcomer: sex/equalized_odds_difference (new model: not in the baseline)*"]
    )
    doc = logged(pytester, uri)
    gate = next(g for g in doc["models"]["credit"]["gates"] if g["key"] == KEY)
    assert (gate["baseline"], gate["value"], gate["passed"]) == (0.1, 0.3, False)
    # the regressed run was logged anyway (docs/baseline.md), with its verdict
    assert [v for m, v in verdicts(uri) if m == "credit"] == ["pass", "fail"]

    # Rerunning the regressed build: its run is the newest, but its regressed metric is no baseline.
    again = run(pytester, uri)
    assert again.ret == 1, again.stdout.str()
    assert row(again)[2] == "0.1"
    doc = logged(pytester, uri)
    assert queries.started == []

    # fairmind check of the last report: its own run is in MLflow now and is left out.
    done = subprocess.run(
        [*FAIRMIND, "check", "report.json", "--baseline", "mlflow", "--mlflow-uri", uri],
        capture_output=True, text=True, cwd=pytester.path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"session {doc['session']['id']}" in done.stdout
    rows = [re.split(r"\s{2,}", line.strip()) for line in done.stdout.splitlines()]
    assert [r[2:4] for r in rows if r[:2] == ["credit", KEY]] == [["0.1", "0.3"]]
    # the metrics that did not regress come from the newest run
    args = ["check", "report.json", "--baseline", "mlflow", "--mlflow-uri", uri, "--gate", "accuracy ~ 0"]
    done = subprocess.run([*FAIRMIND, *args], capture_output=True, text=True, cwd=pytester.path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"credit\s+sex/accuracy\s+0\.95\s+0\.95\s", done.stdout), done.stdout


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_mlflow_unreachable_is_a_missing_baseline(pytester: pytest.Pytester, strict: bool) -> None:
    setup_project(pytester)
    set_values(pytester, credit={"equalized_odds_difference": 0.1})
    uri = f"http://127.0.0.1:{free_port()}"
    result = pytester.runpytest(
        "-p", "no:cacheprovider",
        f"--fairmind-mlflow-uri={uri}",
        "--fairmind-baseline=mlflow",
        "--fairmind-gate=equalized_odds_difference ~ 0.05",
        "--fairmind-timeout=60",
        *(["--fairmind-strict"] if strict else []),
    )  # fmt: skip
    assert result.ret == (1 if strict else 0), result.stdout.str()
    result.stdout.fnmatch_lines(
        ["warning: no baseline (mlflow: MLflow did not answer: *) for 1 metric(s): credit: *"]
    )
    assert row(result)[2] == "no baseline"


def test_check_mlflow_baseline_without_a_store(tmp_path: Path) -> None:
    session = SessionResult(id="s", project=PROJECT, started="2025-01-01T00:00:00+00:00",
                            models={"credit": ModelResult("credit", metrics={KEY: 0.2})})  # fmt: skip
    report = tmp_path / "r.json"
    report.write_text(dumps(session), encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    args = [
        *FAIRMIND,
        "check",
        str(report),
        "--baseline",
        "mlflow",
        "--mlflow-uri",
        uri,
        "--gate",
        "*_difference ~ 0",
    ]
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"no finished run in the MLflow experiment '{PROJECT}': first run?" in done.stdout
    done = subprocess.run([*args, "--strict"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    assert not (tmp_path / "empty.db").exists()  # a baseline is read: no store is created for it
