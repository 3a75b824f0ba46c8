"""The MLflow provider against real MLflow: an embedded SQLite store and a real `mlflow server`.

Sessions are built by hand here (no pytest plugin involved); tests/test_mlflow_e2e.py covers the
whole path from `fairmind.record` to the runs.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import MlflowServer, StalledListener, artifact_paths, free_port, mlflow_client, runs_of

from pytest_fairmind.isolation import IsolatedProvider
from pytest_fairmind.plots import group_chart_png, matplotlib_available
from pytest_fairmind.providers.base import ProviderSettings
from pytest_fairmind.providers.mlflow import (
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_LENGTH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
    PARAM_TRUNCATION_MARKER,
    MlflowProvider,
    build_payload,
    default_tracking_uri,
    iso_to_millis,
    plan_batches,
    resolve_tracking_uri,
    run_url,
    safe_file_name,
    valid_key,
)
from pytest_fairmind.report import model_to_dict
from pytest_fairmind.result import GateResult, ModelResult, SessionResult
from pytest_fairmind.result import TestOutcome as Outcome

IMPL = "pytest_fairmind.providers.mlflow:MlflowProvider"
FLOAT_MAX = sys.float_info.max  # what MLflow's SQL stores keep for +-inf

GROUP_ROWS = [
    {
        "group": {"sex": "F"},
        "count": 120,
        "selection_rate": 0.4,
        "true_positive_rate": 0.7,
        "false_positive_rate": 0.1,
        "accuracy": 0.8,
    },
    {
        "group": {"sex": "M"},
        "count": 80,
        "selection_rate": 0.55,
        "true_positive_rate": math.nan,  # 0/0: stays NaN, drawn as n/a
        "false_positive_rate": 0.2,
        "accuracy": 0.75,
    },
]


def make_session(
    models: dict[str, ModelResult] | None = None, *, project: str | None = None, session_id: str | None = None
) -> SessionResult:
    session = SessionResult(
        id=session_id or f"s-{uuid.uuid4().hex[:12]}",
        project=project or f"proj-{uuid.uuid4().hex[:8]}",
        started="2026-03-01T10:00:00+00:00",
        finished="2026-03-01T10:02:00+00:00",
        git={"commit": "0123abcd", "branch": "main", "dirty": True},
        context={"ci.job_url": "https://ci.example/jobs/42", "pytest.version": "9.0"},
    )
    session.models = models if models is not None else {"clf": rich_model("clf")}
    return session


def rich_model(name: str) -> ModelResult:
    return ModelResult(
        name=name,
        metrics={
            "sex/demographic_parity_difference": 0.15,
            "sex/demographic_parity_ratio": 0.727,
            "accuracy": 0.8125,
            "sex/equalized_odds_difference": math.nan,
            "loss.max": math.inf,
            "loss.min": -math.inf,
            "count": 200.0,
        },
        params={
            "model.kind": "logreg",
            "threshold": "0.5",
            "notes": None,
            "balanced": True,
            "long": "x" * 7000,
        },
        tags={"team": "risk", "dataset": "adult-v2"},
        groups={"sex": GROUP_ROWS, "train/sex.age": GROUP_ROWS[:1]},
        tests=[Outcome("tests/test_bias.py::test_sex", "passed")],
        gates=[GateResult("accuracy>=0.8", "accuracy", 0.8125, ">=0.8", "pass")],
        verdict="pass",
    )


def simple_model(name: str, n_metrics: int = 5, n_params: int = 2) -> ModelResult:
    return ModelResult(
        name=name,
        metrics={f"metric_{i}": i / 7 for i in range(n_metrics)},
        params={f"param_{i}": f"value {i}" for i in range(n_params)},
    )


def provider(uri: str, project: str = "unused", **kw: Any) -> MlflowProvider:
    return MlflowProvider(ProviderSettings(project=project, mlflow_uri=uri, **kw))


def by_model(runs: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for run in runs:
        out.setdefault(run.data.tags["fairmind.model"], []).append(run)
    return out


# --------------------------------------------------------------------------- pure helpers


class TestUris:
    def test_default_is_sqlite_in_workdir(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        settings = ProviderSettings(workdir=str(tmp_path))
        assert resolve_tracking_uri(settings) == f"sqlite:///{tmp_path}/mlflow.db"
        assert default_tracking_uri(str(tmp_path)) == f"sqlite:///{tmp_path}/mlflow.db"
        assert MlflowProvider(settings).target() == f"sqlite:///{tmp_path}/mlflow.db"

    def test_precedence_settings_then_env(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env-host:5000")
        assert resolve_tracking_uri(ProviderSettings(workdir=str(tmp_path))) == "http://env-host:5000"
        settings = ProviderSettings(mlflow_uri="http://opt-host:5000", workdir=str(tmp_path))
        assert resolve_tracking_uri(settings) == "http://opt-host:5000"

    def test_relative_sqlite_is_anchored_at_workdir(self, tmp_path: Path) -> None:
        settings = ProviderSettings(mlflow_uri="sqlite:///runs/x.db?timeout=5", workdir=str(tmp_path))
        assert resolve_tracking_uri(settings) == f"sqlite:///{tmp_path}/runs/x.db?timeout=5"

    def test_target_and_urls_hide_credentials(self) -> None:
        p = provider("https://alice:s3cr3t-pw@mlflow.example:8443/base/")
        assert p.target() == "https://***@mlflow.example:8443/base/"
        url = run_url(p.tracking_uri, "7", "abc")
        assert url == "https://***@mlflow.example:8443/base/#/experiments/7/runs/abc"
        assert "s3cr3t" not in (url or "")
        assert run_url("sqlite:////tmp/x.db", "1", "abc") is None

    def test_iso_to_millis(self) -> None:
        assert iso_to_millis("1970-01-01T00:00:01Z") == 1000
        assert iso_to_millis("1970-01-01T00:00:01.5+00:00") == 1500
        assert iso_to_millis("not a date") is None
        assert iso_to_millis(None) is None


class TestPayload:
    def test_keys_at_mlflow_limits(self) -> None:
        assert valid_key("k" * 250)
        assert not valid_key("k" * 251)
        for bad in ("", "a//b", "a/", "/a", "../a", "a/./b", "a?b"):
            assert not valid_key(bad), bad
        for good in ("sex/demographic_parity_ratio", "a b-c.d_e", "train/sex.age/x"):
            assert valid_key(good), good

    def test_params_tags_and_truncation(self) -> None:
        session = make_session()
        payload = build_payload(session, session.models["clf"], secrets=[])
        assert payload.identity_tags == {
            "fairmind.model": "clf",
            "fairmind.session": session.id,
            "fairmind.verdict": "pass",
        }
        assert payload.params["notes"] == "None"
        assert payload.params["balanced"] == "True"
        long = payload.params["long"]
        assert len(long) == MAX_PARAM_LENGTH and long.endswith(PARAM_TRUNCATION_MARKER)
        assert payload.full_params["long"] == "x" * 7000
        assert payload.tags["ci.job_url"] == "https://ci.example/jobs/42"
        assert payload.tags["mlflow.source.git.commit"] == "0123abcd"
        assert payload.tags["mlflow.source.git.branch"] == "main"
        assert payload.tags["git.commit"] == "0123abcd"
        assert payload.tags["git.dirty"] == "true"
        assert payload.tags["team"] == "risk"
        assert math.isnan(payload.metrics["sex/equalized_odds_difference"])
        assert payload.skipped_keys == []

    def test_user_tags_cannot_fake_identity(self) -> None:
        model = simple_model("m")
        model.tags = {"fairmind.session": "other", "fairmind.verdict": "pass"}
        model.verdict = "fail"
        session = make_session({"m": model})
        payload = build_payload(session, model, secrets=[])
        assert payload.identity_tags["fairmind.session"] == session.id
        assert payload.identity_tags["fairmind.verdict"] == "fail"
        assert "fairmind.session" not in payload.tags

    def test_secrets_are_redacted(self) -> None:
        model = simple_model("m")
        model.params = {"conn": "postgresql://bob:hunter2-pw@db/x", "token": "abc-TOPSECRET-123"}
        payload = build_payload(make_session({"m": model}), model, secrets=["TOPSECRET"])
        assert "hunter2" not in payload.params["conn"]
        assert "TOPSECRET" not in payload.params["token"]

    def test_batches_within_limits(self) -> None:
        metrics = {f"m{i}": float(i) for i in range(2500)}
        params = {f"p{i}": "v" for i in range(250)}
        tags = {f"t{i}": "v" for i in range(150)}
        batches = plan_batches(metrics, params, tags)
        for b in batches:
            assert len(b.metrics) <= MAX_METRICS_PER_BATCH
            assert len(b.params) <= MAX_PARAMS_PER_BATCH
            assert len(b.tags) <= MAX_TAGS_PER_BATCH
            assert b.entities() <= MAX_ENTITIES_PER_BATCH
        assert sorted(k for b in batches for k, _ in b.metrics) == sorted(metrics)
        assert sorted(k for b in batches for k, _ in b.params) == sorted(params)
        assert sorted(k for b in batches for k, _ in b.tags) == sorted(tags)
        assert len(batches) == 3  # 2900 entities: the fewest possible

    def test_batches_respect_request_size(self) -> None:
        params = {f"p{i:03d}": "é" * MAX_PARAM_LENGTH for i in range(100)}  # escapes to 6 bytes/char
        batches = plan_batches({}, params, {})
        assert len(batches) > 1
        for b in batches:
            assert len(json.dumps({"params": [{"key": k, "value": v} for k, v in b.params]})) < 1_000_000

    def test_common_case_is_one_batch(self) -> None:
        metrics = {f"metric_{i}": 0.5 for i in range(200)}
        params = {f"param_{i}": "x" for i in range(20)}
        assert len(plan_batches(metrics, params, {"a": "b"})) == 1

    def test_safe_file_names(self) -> None:
        taken: set[str] = set()
        assert safe_file_name("train/sex", taken) == "train_sex"
        assert safe_file_name("train_sex", taken) == "train_sex-2"
        assert safe_file_name("..", taken) == "__"
        assert safe_file_name("a:b\\c", taken) == "a_b_c"


class TestPlots:
    def test_chart_is_a_png(self, tmp_path: Path) -> None:
        path = tmp_path / "c.png"
        assert group_chart_png("sex", GROUP_ROWS, str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_undefined_rates_and_counts(self, tmp_path: Path) -> None:
        rows = [{**GROUP_ROWS[1], "true_positive_rate": math.nan, "count": math.nan}]
        assert group_chart_png("s", rows, str(tmp_path / "c.png"))

    def test_nothing_without_rows_or_matplotlib(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert not group_chart_png("sex", [], str(tmp_path / "a.png"))
        monkeypatch.setitem(sys.modules, "matplotlib", None)  # what find_spec sees when it is absent
        assert not matplotlib_available()
        assert not group_chart_png("sex", GROUP_ROWS, str(tmp_path / "b.png"))
        assert not (tmp_path / "b.png").exists()


# --------------------------------------------------------------------------- SQLite store


class TestSqlite:
    def test_one_run_per_model_with_everything(self, mlflow_sqlite_uri: str) -> None:
        models = {"clf": rich_model("clf"), "gbm": rich_model("gbm")}
        models["gbm"].verdict = "fail"
        session = make_session(models)
        outcome = provider(mlflow_sqlite_uri).log(session, timeout=60)
        assert outcome.ok, outcome.error
        db_path = mlflow_sqlite_uri[len("sqlite:///") :]
        assert outcome.target == mlflow_sqlite_uri
        assert outcome.note and f"mlflow ui --backend-store-uri {mlflow_sqlite_uri}" in outcome.note

        runs = by_model(runs_of(mlflow_sqlite_uri, session.project))
        assert sorted(runs) == ["clf", "gbm"] and all(len(r) == 1 for r in runs.values())
        for name, (run,) in runs.items():
            ref = outcome.runs[name]
            assert ref.id == run.info.run_id and ref.url is None and ref.path == db_path
            assert not ref.skipped
            assert run.info.status == "FINISHED"
            assert run.info.run_name == name
            assert run.info.start_time == iso_to_millis(session.started)
            assert run.info.end_time == iso_to_millis(session.finished)
            tags = run.data.tags
            assert tags["fairmind.model"] == name
            assert tags["fairmind.session"] == session.id
            assert tags["fairmind.verdict"] == ("fail" if name == "gbm" else "pass")
            assert tags["ci.job_url"] == "https://ci.example/jobs/42"
            assert tags["mlflow.source.git.commit"] == "0123abcd"
            assert tags["team"] == "risk"
            assert "mlflow.parentRunId" not in tags

            metrics = run.data.metrics
            expected = session.models[name].metrics
            assert set(metrics) == set(expected)
            for key, value in expected.items():
                if math.isnan(value):
                    assert math.isnan(metrics[key])
                elif math.isinf(value):
                    assert metrics[key] == math.copysign(FLOAT_MAX, value)
                else:
                    assert metrics[key] == value

            params = run.data.params
            assert params["model.kind"] == "logreg"
            assert params["notes"] == "None"
            assert params["balanced"] == "True"
            assert params["long"].endswith(PARAM_TRUNCATION_MARKER) and len(params["long"]) == 6000

            charts = {
                f"fairmind/groups/{scope}.{family}.png"
                for scope in ("sex", "train_sex.age")
                for family in ("rates", "accuracy")  # the columns of GROUP_ROWS: two families
            }
            assert artifact_paths(mlflow_sqlite_uri, run.info.run_id) == {
                "fairmind/result.json",
                "fairmind/params.json",
                "fairmind/gates.json",
                "fairmind/groups/sex.json",
                "fairmind/groups/train_sex.age.json",
                *(charts if matplotlib_available() else ()),
            }

    def test_artifact_contents(self, mlflow_sqlite_uri: str, tmp_path: Path) -> None:
        session = make_session()
        outcome = provider(mlflow_sqlite_uri).log(session, timeout=60)
        assert outcome.ok, outcome.error
        run_id = outcome.runs["clf"].id
        folder = Path(mlflow_client(mlflow_sqlite_uri).download_artifacts(run_id, "fairmind", str(tmp_path)))
        params = json.loads((folder / "params.json").read_text())
        assert params["long"] == "x" * 7000
        group = json.loads((folder / "groups" / "sex.json").read_text())
        assert group["scope"] == "sex"
        assert group["rows"] == model_to_dict(session.models["clf"])["groups"]["sex"]  # as in the report
        assert group["rows"][0] == GROUP_ROWS[0]
        result = json.loads((folder / "result.json").read_text())
        assert result["schema"] == "pytest-fairmind/1"
        assert result["session"]["id"] == session.id
        assert result["result"]["metrics"]["accuracy"] == 0.8125
        assert result["result"]["nonfinite"]["loss.max"] == "inf"
        assert result["result"]["params"]["long"] == "x" * 7000

    def test_no_groups_no_charts(self, mlflow_sqlite_uri: str) -> None:
        session = make_session({"m": simple_model("m")})
        outcome = provider(mlflow_sqlite_uri).log(session, timeout=60)
        assert outcome.ok, outcome.error
        assert artifact_paths(mlflow_sqlite_uri, outcome.runs["m"].id) == {"fairmind/result.json"}

    def test_plots_off_keeps_tables(self, mlflow_sqlite_uri: str) -> None:
        session = make_session()
        outcome = provider(mlflow_sqlite_uri, plots=False).log(session, timeout=60)
        assert outcome.ok, outcome.error
        paths = artifact_paths(mlflow_sqlite_uri, outcome.runs["clf"].id)
        assert "fairmind/groups/sex.json" in paths and not any(p.endswith(".png") for p in paths)

    def test_idempotent(self, mlflow_sqlite_uri: str) -> None:
        session = make_session({"a": simple_model("a"), "b": simple_model("b")})
        first = provider(mlflow_sqlite_uri).log(session, timeout=60)
        second = provider(mlflow_sqlite_uri).log(session, timeout=60)
        assert first.ok and second.ok, (first.error, second.error)
        assert all(ref.skipped for ref in second.runs.values())
        assert {m: r.id for m, r in first.runs.items()} == {m: r.id for m, r in second.runs.items()}
        runs = by_model(runs_of(mlflow_sqlite_uri, session.project))
        assert {m: len(r) for m, r in runs.items()} == {"a": 1, "b": 1}

    def test_partial_run_is_replaced(self, mlflow_sqlite_uri: str) -> None:
        session = make_session({"a": simple_model("a"), "b": simple_model("b")})
        client = mlflow_client(mlflow_sqlite_uri)
        experiment_id = client.create_experiment(session.project)
        # What a provider process killed after create_run leaves behind.
        partial = client.create_run(
            experiment_id, run_name="a", tags={"fairmind.model": "a", "fairmind.session": session.id}
        )
        outcome = provider(mlflow_sqlite_uri).log(session, timeout=60)
        assert outcome.ok, outcome.error
        assert outcome.runs["a"].id != partial.info.run_id and not outcome.runs["a"].skipped
        runs = by_model(runs_of(mlflow_sqlite_uri, session.project))
        assert {m: len(r) for m, r in runs.items()} == {"a": 1, "b": 1}
        assert client.get_run(partial.info.run_id).info.lifecycle_stage == "deleted"

    def test_second_session_adds_runs(self, mlflow_sqlite_uri: str) -> None:
        first = make_session({"a": simple_model("a")})
        second = make_session({"a": simple_model("a")}, project=first.project)
        for session in (first, second):
            outcome = provider(mlflow_sqlite_uri).log(session, timeout=60)
            assert outcome.ok, outcome.error
        runs = runs_of(mlflow_sqlite_uri, first.project)
        assert len(runs) == 2
        assert {r.data.tags["fairmind.session"] for r in runs} == {first.id, second.id}
        assert len(runs_of(mlflow_sqlite_uri, first.project, session_id=second.id)) == 1

    def test_limits_chunking_and_long_keys(self, mlflow_sqlite_uri: str) -> None:
        model = simple_model("big", n_metrics=2500, n_params=250)
        long_key = "k" * 249 + "z"  # 250 characters: MLflow's maximum
        model.metrics[long_key] = 1.5
        model.params["p" * 250] = "long key"
        model.tags = {f"tag_{i}": str(i) for i in range(150)} | {"t" * 250: "long key"}
        session = make_session({"big": model})
        outcome = provider(mlflow_sqlite_uri).log(session, timeout=120)
        assert outcome.ok, outcome.error
        (run,) = runs_of(mlflow_sqlite_uri, session.project)
        assert len(run.data.metrics) == 2501 and run.data.metrics[long_key] == 1.5
        assert len(run.data.params) == 251 and run.data.params["p" * 250] == "long key"
        assert run.data.tags["t" * 250] == "long key" and run.data.tags["tag_149"] == "149"
        assert run.data.metrics["metric_2499"] == 2499 / 7

    def test_unstorable_keys_are_reported_not_fatal(self, mlflow_sqlite_uri: str) -> None:
        model = simple_model("m")
        model.metrics["a//b"] = 1.0
        model.params["k" * 251] = "x"
        session = make_session({"m": model})
        outcome = provider(mlflow_sqlite_uri).log(session, timeout=60)
        assert not outcome.ok
        assert outcome.error and "'a//b'" in outcome.error and "2 key(s)" in outcome.error
        (run,) = runs_of(mlflow_sqlite_uri, session.project)
        assert run.info.status == "FINISHED"
        assert set(run.data.metrics) == set(simple_model("m").metrics)

    def test_deleted_experiment_is_a_clear_failure(self, mlflow_sqlite_uri: str) -> None:
        session = make_session({"m": simple_model("m")})
        client = mlflow_client(mlflow_sqlite_uri)
        client.delete_experiment(client.create_experiment(session.project))
        outcome = provider(mlflow_sqlite_uri).log(session, timeout=60)
        assert not outcome.ok and outcome.error and "deleted" in outcome.error

    def test_out_of_time_reports_partial_progress(self, mlflow_sqlite_uri: str) -> None:
        session = make_session({f"m{i}": simple_model(f"m{i}") for i in range(3)})
        outcome = provider(mlflow_sqlite_uri).log(session, timeout=0.0)
        assert not outcome.ok
        assert outcome.error and "out of time" in outcome.error and "fairmind replay" in outcome.error

    def test_file_store_refused_with_a_hint(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
        monkeypatch.chdir(tmp_path)
        p = provider(f"file://{tmp_path}/mlruns")
        assert "MLFLOW_ALLOW_FILE_STORE" in (p.check(5) or "")
        outcome = p.log(make_session({"m": simple_model("m")}), timeout=30)
        assert not outcome.ok and "MLFLOW_ALLOW_FILE_STORE" in (outcome.error or "")

    def test_empty_session_touches_nothing(self, mlflow_fresh_sqlite_uri: str, tmp_path: Path) -> None:
        outcome = provider(mlflow_fresh_sqlite_uri).log(make_session({}), timeout=30)
        assert outcome.ok and outcome.runs == {}
        assert not (tmp_path / "mlflow.db").exists()

    def test_check_local(self, tmp_path: Path) -> None:
        assert provider(f"sqlite:///{tmp_path}/new/sub/mlflow.db").check(5) is None
        (tmp_path / "afile").write_text("")
        assert "not a folder" in (provider(f"sqlite:///{tmp_path}/afile/mlflow.db").check(5) or "")

    def test_in_process_log_is_quiet_and_restores_env(
        self, mlflow_sqlite_uri: str, capfd: pytest.CaptureFixture[str]
    ) -> None:
        before = {
            k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
        }
        outcome = provider(mlflow_sqlite_uri).log(make_session(), timeout=60)
        assert outcome.ok, outcome.error
        out, err = capfd.readouterr()
        assert out == "" and err == ""
        assert {k: os.environ.get(k) for k in before} == before


# --------------------------------------------------------------------------- isolation, -W error


def run_python(code: str, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "MLFLOW_TRACKING_URI")}
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_LOG_SCRIPT = """
import json, math, sys
from pytest_fairmind.providers.base import ProviderSettings
from pytest_fairmind.isolation import IsolatedProvider
from pytest_fairmind.providers.mlflow import MlflowProvider
from pytest_fairmind.result import ModelResult, SessionResult
mode, uri = sys.argv[1], sys.argv[2]
settings = ProviderSettings(project="werror", mlflow_uri=uri or None)
session = SessionResult(id=mode, project="werror", started="2026-01-01T00:00:00Z",
    models={"m": ModelResult("m", metrics={"a": 1.0, "b": math.nan}, params={"p": "x" * 7000},
        groups={"sex": [{"group": {"sex": "F"}, "count": 3, "selection_rate": 0.5,
            "true_positive_rate": math.nan, "false_positive_rate": 0.0, "accuracy": 1.0}]})})
if mode == "isolated":
    p = IsolatedProvider("mlflow", "pytest_fairmind.providers.mlflow:MlflowProvider", settings)
else:
    p = MlflowProvider(settings)
o = p.log(session, timeout=90)
print(json.dumps({"ok": o.ok, "error": o.error, "runs": {m: r.id for m, r in o.runs.items()}}))
"""


class TestIsolation:
    @pytest.mark.parametrize("mode", ["isolated", "in-process"])
    def test_W_error_sees_no_warning_and_no_noise(self, tmp_path: Path, mode: str) -> None:
        """Fresh interpreters under `-W error`: mlflow/sqlalchemy warnings (import time included)
        neither raise nor print, and MLflow's stdout lines do not appear."""
        proc = run_python(_LOG_SCRIPT, mode, "", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        (line,) = proc.stdout.splitlines()
        result = json.loads(line)
        assert result["ok"], result["error"]
        runs = runs_of(f"sqlite:///{tmp_path}/mlflow.db", "werror")
        assert [r.info.run_id for r in runs] == [result["runs"]["m"]]
        assert (tmp_path / "mlruns").is_dir()  # artifacts beside the default store, as MLflow does

    def test_isolated_against_server(self, mlflow_server: MlflowServer, tmp_path: Path) -> None:
        session = make_session({"a": rich_model("a"), "b": simple_model("b")})
        p = IsolatedProvider(
            "mlflow", IMPL, ProviderSettings(project=session.project, mlflow_uri=mlflow_server.uri)
        )
        outcome = p.log(session, timeout=60)
        assert outcome.ok, outcome.error
        runs = by_model(runs_of(mlflow_server.uri, session.project))
        assert {m: [r.info.run_id for r in rs] for m, rs in runs.items()} == {
            m: [ref.id for ref in [outcome.runs[m]]] for m in ("a", "b")
        }
        again = p.log(session, timeout=60)
        assert again.ok and all(ref.skipped for ref in again.runs.values())


# --------------------------------------------------------------------------- real server


class TestServer:
    def test_runs_urls_and_artifacts(self, mlflow_server: MlflowServer) -> None:
        session = make_session({"clf": rich_model("clf"), "m2": simple_model("m2")})
        outcome = provider(mlflow_server.uri).log(session, timeout=60)
        assert outcome.ok, outcome.error
        assert outcome.target == mlflow_server.uri and outcome.note is None
        experiment = mlflow_client(mlflow_server.uri).get_experiment_by_name(session.project)
        runs = by_model(runs_of(mlflow_server.uri, session.project))
        assert sorted(runs) == ["clf", "m2"]
        for name, (run,) in runs.items():
            ref = outcome.runs[name]
            assert ref.url == f"{mlflow_server.uri}/#/experiments/{experiment.experiment_id}/runs/{ref.id}"
            assert ref.path is None and run.info.run_id == ref.id
            assert run.info.status == "FINISHED"
            assert run.data.tags["fairmind.session"] == session.id
        clf = runs["clf"][0]
        assert math.isnan(clf.data.metrics["sex/equalized_odds_difference"])
        assert clf.data.metrics["loss.max"] == FLOAT_MAX
        assert clf.data.params["long"].endswith(PARAM_TRUNCATION_MARKER)
        assert "fairmind/groups/sex.rates.png" in artifact_paths(mlflow_server.uri, clf.info.run_id)

    def test_http_requests_per_model(self, mlflow_server: MlflowServer) -> None:
        """A record-only model (200 metrics, 20 params) costs 4 requests: create, log-batch,
        result.json upload, update; the session adds the experiment lookup/creation and one search."""
        n_models = 5
        models = {f"m{i}": simple_model(f"m{i}", n_metrics=200, n_params=20) for i in range(n_models)}
        session = make_session(models)
        mark = mlflow_server.mark()
        outcome = provider(mlflow_server.uri).log(session, timeout=60)
        assert outcome.ok, outcome.error
        requests = mlflow_server.requests_since(mark)
        per_run = [
            r for r in requests if "/runs/create" in r[1] or "/log-batch" in r[1] or "/runs/update" in r[1]
        ]
        uploads = [r for r in requests if r[0] == "PUT"]
        assert len(per_run) == 3 * n_models and len(uploads) == n_models
        assert len(requests) <= 4 * n_models + 3, requests
        assert all(status == 200 for _, _, status in per_run + uploads)

    def test_no_view_run_lines(self, mlflow_server: MlflowServer, capfd: pytest.CaptureFixture[str]) -> None:
        outcome = provider(mlflow_server.uri).log(make_session({"m": simple_model("m")}), timeout=60)
        assert outcome.ok, outcome.error
        out, err = capfd.readouterr()
        assert "View run" not in out and out == "" and err == ""

    def test_concurrent_sessions_share_one_new_experiment(self, mlflow_server: MlflowServer) -> None:
        project = f"race-{uuid.uuid4().hex[:8]}"
        sessions = [make_session({"m": simple_model("m")}, project=project) for _ in range(3)]
        outcomes: list[Any] = [None] * len(sessions)

        def log(i: int) -> None:
            p = IsolatedProvider(
                "mlflow", IMPL, ProviderSettings(project=project, mlflow_uri=mlflow_server.uri)
            )
            outcomes[i] = p.log(sessions[i], timeout=60)

        threads = [threading.Thread(target=log, args=(i,)) for i in range(len(sessions))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        names = [e.name for e in mlflow_client(mlflow_server.uri).search_experiments() if e.name == project]
        assert names == [project]
        assert len(runs_of(mlflow_server.uri, project)) == 3

    def test_check(self, mlflow_server: MlflowServer) -> None:
        assert provider(mlflow_server.uri, project="never-created").check(5) is None


class TestUnreachable:
    def test_closed_port_fails_fast_in_process(self) -> None:
        uri = f"http://127.0.0.1:{free_port()}"
        start = time.monotonic()
        outcome = provider(uri).log(make_session(), timeout=120)
        elapsed = time.monotonic() - start
        assert not outcome.ok and outcome.runs == {}
        assert outcome.error == f"cannot reach {uri}: connection refused"
        # Far from the budget (mlflow's defaults would retry for minutes); importing mlflow
        # included, so the bound is generous for a loaded machine.
        assert elapsed < 30, elapsed

    def test_closed_port_fails_fast_isolated(self) -> None:
        uri = f"http://127.0.0.1:{free_port()}"
        p = IsolatedProvider("mlflow", IMPL, ProviderSettings(mlflow_uri=uri))
        start = time.monotonic()
        outcome = p.log(make_session(), timeout=120)
        assert time.monotonic() - start < 45  # far from the budget; the provider process's start-up included
        assert not outcome.ok and "connection refused" in (outcome.error or "")

    def test_credentials_never_in_errors(self) -> None:
        port = free_port()
        p = provider(f"http://alice:pw-Very-Secret@127.0.0.1:{port}")
        outcome = p.log(make_session(), timeout=30)
        assert not outcome.ok and "pw-Very-Secret" not in (outcome.error or "")
        assert "pw-Very-Secret" not in (p.check(2) or "") and p.check(2)

    @pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
    def test_silent_server_is_bounded_by_the_timeout(
        self, isolated: bool, stalled_listener: StalledListener
    ) -> None:
        """A server that accepts connections and never answers costs at most the budget."""
        settings = ProviderSettings(mlflow_uri=stalled_listener.url)
        p: Any = IsolatedProvider("mlflow", IMPL, settings) if isolated else MlflowProvider(settings)
        start = time.monotonic()
        outcome = p.log(make_session(), timeout=4)
        elapsed = time.monotonic() - start
        assert not outcome.ok and outcome.runs == {}
        assert "timed out" in (outcome.error or ""), outcome.error
        # The budget counts from the call (start-up and imports included); past it, only the kill
        # or the provider's own return, a little slower on a loaded machine.
        assert elapsed < 4 + 5, elapsed
