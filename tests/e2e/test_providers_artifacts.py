"""Scans, evidence-aware gates, the four verdicts and group tables of every task, as the providers
log them, read back with the real MLflow client (tags, artifacts listed and downloaded) and from
wandb's offline ``.wandb`` files.

One hand-built session (no pytest plugin involved) with a model per verdict; its group rows and
scan come from the real ``assess`` and ``scan``, so the columns checked are the metrics' own.
"""

from __future__ import annotations

import json
import math
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import WandbEnv, artifact_paths, copy_store, mlflow_client, read_runs, runs_of

from pytest_fairmind.isolation import IsolatedProvider
from pytest_fairmind.metrics import assess
from pytest_fairmind.plots import (
    GATE_COLUMNS,
    SCAN_COLUMNS,
    chart_families,
    conditions_text,
    gate_entry,
    matplotlib_available,
    plain,
    value_columns,
)
from pytest_fairmind.providers.base import ProviderSettings
from pytest_fairmind.providers.mlflow import MlflowProvider
from pytest_fairmind.result import VERDICTS, GateResult, ModelResult, SessionResult
from pytest_fairmind.subgroup_scan import scan

RNG = np.random.default_rng(11)
N = 800
FEATURES = {"sex": RNG.choice(["female", "male"], N), "age": RNG.choice(["<30", "30-60", ">60"], N)}
Y = RNG.integers(0, 2, N)
# Young women are selected less often: the scan finds them.
HARMED = (FEATURES["sex"] == "female") & (FEATURES["age"] == "<30")
PRED = (RNG.random(N) < np.where(HARMED, 0.2, 0.55)).astype(int)
SCORE = np.clip(0.3 * Y + 0.7 * RNG.random(N), 0.0, 1.0)


def _by_group(**kwargs: Any) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [dict(row) for row in assess(**kwargs).by_group]


def _gates() -> dict[str, list[GateResult]]:
    key = "sex.age/demographic_parity_difference"
    return {
        "pass": [GateResult(f"{key}<=0.5", key, 0.21, "<=0.5", "pass")],
        "fail": [
            GateResult(
                f"{key}<=0.1", key, 0.31, "<=0.1", "fail",
                evidence="interval", ci_low=0.22, ci_high=math.inf,
                p_value=0.001, p_adjusted=0.002, alpha=0.025,
            ),
            GateResult(
                "accuracy~0.02", "accuracy", 0.7, "baseline 0.75 - 0.02", "fail",
                rule="regression", baseline=0.75, change=-0.05, direction="higher",
            ),
        ],
        "inconclusive": [
            GateResult(
                "r2_score_group_min>=0.5", "r2_score_group_min", 0.55, ">=0.5", "inconclusive",
                evidence="interval", ci_low=0.41, ci_high=0.69, p_value=0.2, p_adjusted=0.2, alpha=0.05,
            )
        ],
        "interrupted": [],
    }  # fmt: skip


def make_session() -> SessionResult:
    """A model per verdict; the group tables of every task; a scan on the failing model."""
    binary = _by_group(y_true=Y, y_pred=PRED, sensitive_features=FEATURES)
    binary[0]["ci"] = {"selection_rate": [0.1, 0.4], "impact_ratio": [0.3, 0.9]}
    scores = _by_group(y_true=Y, y_score=SCORE, sensitive_features=FEATURES)
    regression = _by_group(
        y_true=SCORE, y_pred=SCORE + RNG.normal(0, 0.1, N), sensitive_features=FEATURES, task="regression"
    )
    regression[1]["r2_score"] = math.nan  # undefined: an empty cell, "undefined" on the chart
    yc = RNG.integers(0, 3, N)
    labels = (yc + (RNG.random(N) < 0.3)) % 3
    multiclass = _by_group(
        y_true=yc, y_pred=labels, sensitive_features={"sex": FEATURES["sex"]}, task="multiclass"
    )
    found = scan(Y, PRED, features=FEATURES, min_support=30, top=6).report_entry()
    groups = {
        "pass": {"sex.age": binary},
        "fail": {"sex.age": binary, "scores/sex.age": scores},
        "inconclusive": {"sex.age": regression},
        "interrupted": {"sex": multiclass},
    }
    gates = _gates()
    models = {}
    for verdict in VERDICTS:
        name = f"model-{verdict}"
        models[name] = ModelResult(
            name=name,
            metrics={"accuracy": 0.7, "scan/selection_rate.significant": 1.0},
            groups=groups[verdict],
            gates=gates[verdict],
            scans={"scan": found} if verdict == "fail" else {},
            verdict=verdict,
        )
    return SessionResult(
        id=f"s-{uuid.uuid4().hex[:12]}",
        project=f"proj-{uuid.uuid4().hex[:8]}",
        started="2026-03-01T10:00:00+00:00",
        finished="2026-03-01T10:02:00+00:00",
        models=models,
    )


SESSION = make_session()


def expected_charts(scope_file: str, rows: list[dict[str, Any]]) -> set[str]:
    if not matplotlib_available():
        return set()
    return {f"fairmind/groups/{scope_file}.{family}.png" for family, _, _ in chart_families(rows)}


# --------------------------------------------------------------------------- MLflow


@pytest.fixture(scope="module")
def mlflow_logged(tmp_path_factory: pytest.TempPathFactory, mlflow_store_template: Path) -> tuple[str, Any]:
    """The session logged once to a ready SQLite store (module-scoped: the tests only read)."""
    folder = tmp_path_factory.mktemp("mlflow-artifacts")
    uri = copy_store(mlflow_store_template, folder / "mlflow.db")
    settings = ProviderSettings(project=SESSION.project, mlflow_uri=uri, workdir=str(folder))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # MLflow puts a new experiment's artifacts under ./mlruns
        outcome = MlflowProvider(settings).log(SESSION, timeout=120)
    assert outcome.ok, outcome.error
    return uri, outcome


def test_mlflow_verdict_tags_carry_all_four(mlflow_logged: tuple[str, Any]) -> None:
    uri, outcome = mlflow_logged
    runs = runs_of(uri, SESSION.project, session_id=SESSION.id)
    verdicts = {r.data.tags["fairmind.model"]: r.data.tags["fairmind.verdict"] for r in runs}
    assert verdicts == {f"model-{v}": v for v in VERDICTS}
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(outcome.runs) == sorted(verdicts)


def test_mlflow_artifacts_listed(mlflow_logged: tuple[str, Any]) -> None:
    uri, outcome = mlflow_logged
    fail = SESSION.models["model-fail"]
    paths = artifact_paths(uri, outcome.runs["model-fail"].id)
    assert paths == {
        "fairmind/result.json",
        "fairmind/gates.json",
        "fairmind/scans/scan.json",
        "fairmind/groups/sex.age.json",
        "fairmind/groups/scores_sex.age.json",
        *expected_charts("sex.age", fail.groups["sex.age"]),
        *expected_charts("scores_sex.age", fail.groups["scores/sex.age"]),
    }
    if matplotlib_available():  # the score family: ranking and calibration charts
        assert "fairmind/groups/scores_sex.age.ranking.png" in paths
    interrupted = artifact_paths(uri, outcome.runs["model-interrupted"].id)
    assert "fairmind/gates.json" not in interrupted and not any("scans/" in p for p in interrupted)


def test_mlflow_gates_json_holds_every_field(mlflow_logged: tuple[str, Any], tmp_path: Path) -> None:
    uri, outcome = mlflow_logged
    client = mlflow_client(uri)
    for verdict in ("pass", "fail", "inconclusive"):
        model = SESSION.models[f"model-{verdict}"]
        local = client.download_artifacts(
            outcome.runs[model.name].id, "fairmind/gates.json", str(tmp_path / verdict)
        )
        doc = json.loads(Path(local).read_text(encoding="utf-8"))
        assert doc["model"] == model.name and doc["verdict"] == verdict
        assert len(doc["gates"]) == len(model.gates)
        for entry, gate in zip(doc["gates"], model.gates, strict=True):
            assert list(entry) == list(GATE_COLUMNS)
            for field in GateResult.__dataclass_fields__:
                want = getattr(gate, field)
                assert entry[field] == ("inf" if want == math.inf else want), (verdict, field)
            assert entry["passed"] is (gate.outcome != "fail")


def test_mlflow_scan_and_group_tables_downloaded(mlflow_logged: tuple[str, Any], tmp_path: Path) -> None:
    uri, outcome = mlflow_logged
    client = mlflow_client(uri)
    fail = SESSION.models["model-fail"]
    folder = Path(client.download_artifacts(outcome.runs[fail.name].id, "fairmind", str(tmp_path)))
    scan_doc = json.loads((folder / "scans" / "scan.json").read_text(encoding="utf-8"))
    assert scan_doc == {"scope": "scan", **fail.scans["scan"]}  # the entry as recorded
    assert (
        scan_doc["rows"][0]["conditions"] == {"sex": "female", "age": "<30"}
        and scan_doc["rows"][0]["significant"]
    )
    scores = json.loads((folder / "groups" / "scores_sex.age.json").read_text(encoding="utf-8"))
    assert scores["scope"] == "scores/sex.age"
    assert scores["rows"] == plain(fail.groups["scores/sex.age"])
    binary = json.loads((folder / "groups" / "sex.age.json").read_text(encoding="utf-8"))
    assert binary["rows"][0]["ci"] == {"selection_rate": [0.1, 0.4], "impact_ratio": [0.3, 0.9]}
    interrupted = SESSION.models["model-interrupted"]
    run_id = outcome.runs[interrupted.name].id
    local = client.download_artifacts(run_id, "fairmind/groups/sex.json", str(tmp_path / "mc"))
    rows = json.loads(Path(local).read_text(encoding="utf-8"))["rows"]
    assert [r["class"] for r in rows] == [r["class"] for r in interrupted.groups["sex"]]
    regression = SESSION.models["model-inconclusive"]
    local = client.download_artifacts(
        outcome.runs[regression.name].id, "fairmind/groups/sex.age.json", str(tmp_path / "reg")
    )
    rows = json.loads(Path(local).read_text(encoding="utf-8"))["rows"]
    assert rows[1]["r2_score"] is None  # NaN: null, as in the report


# --------------------------------------------------------------------------- W&B


@pytest.fixture
def wandb_runs(wandb_env: WandbEnv) -> dict[str, Any]:
    settings = ProviderSettings(workdir=str(wandb_env.root.parent))
    outcome = IsolatedProvider("wandb", "pytest_fairmind.providers.wandb:WandbProvider", settings).log(
        SESSION, timeout=120
    )
    assert outcome.ok, outcome.error
    return read_runs(str(wandb_env.wandb_dir))


def test_wandb_runs(wandb_runs: dict[str, Any]) -> None:
    """One offline run: verdict tags and summary for all four verdicts, the gate table with every
    field, the scan table, group tables derived from each task's rows, a chart per family."""
    assert sorted(wandb_runs) == sorted(SESSION.models)
    for name, model in SESSION.models.items():
        run = wandb_runs[name]
        assert run.tags[0] == model.verdict and run.summary["fairmind.verdict"] == model.verdict
        if model.gates:
            table = run.table("fairmind/gates")
            assert table["columns"] == list(GATE_COLUMNS)
            for cells, gate in zip(table["data"], model.gates, strict=True):
                want = {
                    k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in gate_entry(gate).items()
                }
                assert dict(zip(table["columns"], cells, strict=True)) == want
        else:
            assert "fairmind/gates" not in run.summary
        for scope, rows in model.groups.items():
            table = run.table(f"{scope}/by_group")
            head = ["class", "count"] if "class" in rows[0] else ["count"]
            ci = [
                f"{c}.ci_{end}"
                for c in value_columns(rows)
                for end in ("low", "high")
                if any(c in r.get("ci", {}) for r in rows)
            ]
            assert [c for c in table["columns"] if not c.endswith(("ci_low", "ci_high"))] == [
                *rows[0]["group"], *head, *value_columns(rows)
            ]  # fmt: skip
            assert sorted(c for c in table["columns"] if c.endswith(("ci_low", "ci_high"))) == sorted(ci)
            charts = {f"{scope}/by_group_chart.{f}" for f, _, _ in chart_families(rows)}
            images = set(run.media_keys("image-file"))
            assert charts <= images if matplotlib_available() else not images
    fail = wandb_runs["model-fail"]
    scan_table = fail.table("scans/scan")
    assert scan_table["columns"] == list(SCAN_COLUMNS)
    entry = SESSION.models["model-fail"].scans["scan"]
    assert [r[0] for r in scan_table["data"]] == [conditions_text(r["conditions"]) for r in entry["rows"]]
    assert [r[-1] for r in scan_table["data"]] == [r["significant"] for r in entry["rows"]]
    assert [r[7] for r in scan_table["data"]] == pytest.approx([r["q_value"] for r in entry["rows"]])
    binary = fail.table("sex.age/by_group")
    selection = binary["columns"].index("selection_rate.ci_low")
    assert binary["data"][0][selection : selection + 2] == [0.1, 0.4]
    regression = wandb_runs["model-inconclusive"].table("sex.age/by_group")
    assert regression["data"][1][regression["columns"].index("r2_score")] is None
