"""Secrets never written: canary values in the environment, in the MLflow URI and inside a
recorded param are looked for, byte by byte, everywhere the plugin and the providers write:
terminal output, the report, the history, the CI job summary, the MLflow store (params, tags,
artifacts read back, and the server's own files) and W&B's offline run files (raw bytes and
reassembled records)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    MlflowServer,
    all_bytes,
    artifact_paths,
    free_port,
    mlflow_client,
    read_runs,
    run_fairmind,
    run_pytest,
    runs_of,
    subprocess_env,
    write,
)

from pytest_fairmind.redact import redact_obj, redact_text, redact_uri, secret_values

TOKEN = "canary-tok-123456"
PASSWORD = "canary-pass-987"
WANDB_KEY = "canary-wandb-key-" + "0" * 23  # 40 characters, like a real key
ENV_SECRETS = {
    "MY_SERVICE_TOKEN": TOKEN,
    "WANDB_API_KEY": WANDB_KEY,
    "DB_PASSWORD": "canary-dbpw-4242",
    "SIGNING_SECRET": "canary-sec-777",
    "DEPLOY_KEY": "canary-key-31337",
}
CANARIES = [TOKEN, PASSWORD, WANDB_KEY, *ENV_SECRETS.values()]

LEAKY_TEST = f"""
import os
import pytest

@pytest.mark.fairmind(model="credit")
def test_leaky(fairmind):
    fairmind.record(
        {{"demographic_parity_ratio": 0.9}},
        scope="sex",
        params={{"service_token": os.environ["MY_SERVICE_TOKEN"],
                 "endpoint": "https://svc:{PASSWORD}@internal.example/api",
                 "note": "key is " + os.environ["DEPLOY_KEY"]}},
        tags={{"owner": "risk", "auth": "Bearer " + os.environ["MY_SERVICE_TOKEN"]}},
    )
    fairmind.assess([1, 0, 1, 0], [1, 0, 0, 0], sensitive_features={{"sex": ["F", "F", "M", "M"]}})

@pytest.mark.fairmind(model="churn")
def test_other(fairmind):
    fairmind.record({{"accuracy": 0.8}}, params={{"db": os.environ["DB_PASSWORD"]}})
"""


def _leaks(name: str, data: bytes | str) -> list[str]:
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    return [f"{canary!r} in {name}" for canary in CANARIES if canary.encode() in raw]


def _files(*roots: Path) -> Iterator[tuple[str, bytes]]:
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            for file in names:
                path = Path(dirpath, file)
                if not path.is_symlink():
                    yield str(path), path.read_bytes()


def test_redaction_units() -> None:
    env = {
        **ENV_SECRETS,
        "PLAIN": "not-a-secret",
        "SHORT_TOKEN": "abc",
        "DB_URL": f"postgres://u:{PASSWORD}@db/x",
    }
    found = secret_values(env)
    assert set(ENV_SECRETS.values()) <= set(found)
    assert PASSWORD in found  # a credential inside any variable's URI
    assert "not-a-secret" not in found and "abc" not in found  # too short to redact safely
    assert redact_uri(f"http://user:{PASSWORD}@127.0.0.1:5000/x?y=1") == "http://***@127.0.0.1:5000/x?y=1"
    assert redact_uri("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
    text = f"failed: https://a:{PASSWORD}@h/p token={TOKEN}"
    assert redact_text(text, found) == "failed: https://***@h/p token=***"
    nested = redact_obj({TOKEN: [f"x{TOKEN}y", {"k": (PASSWORD,)}], "n": 1.5}, extra_secrets=found)
    assert nested == {"***": ["x***y", {"k": ["***"]}], "n": 1.5}


def test_redaction_is_linear_on_huge_values() -> None:
    """A 1 MB param used to take an hour to redact (a quadratic regex), in pytest and in the
    provider process alike."""
    import time

    huge = "y" * 1_000_000
    start = time.monotonic()
    assert redact_text(huge, []) == huge
    assert redact_text("a://" + huge + "@host", []) == "a://***@host"
    assert redact_obj({"p": huge + "@x" + f"http://u:{PASSWORD}@h"})["p"].endswith("http://***@h")
    assert time.monotonic() - start < 2


@pytest.fixture
def leaky_project(tmp_path: Path) -> Path:
    write(tmp_path, "test_leaky.py", LEAKY_TEST)
    return tmp_path


def test_no_secret_reaches_any_output(
    leaky_project: Path, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = leaky_project
    uri = f"http://user:{PASSWORD}@127.0.0.1:{mlflow_server.port}"
    shown = f"http://***@127.0.0.1:{mlflow_server.port}"
    summary = project / "step-summary.md"
    env = subprocess_env(project, **ENV_SECRETS, GITHUB_STEP_SUMMARY=str(summary))
    result = run_pytest(
        project,
        "-rA",
        "-v",
        "--fairmind-provider=mlflow,wandb",
        f"--fairmind-mlflow-uri={uri}",
        "--fairmind-wandb-mode=offline",
        "--fairmind-project=secrets",
        "--fairmind-timeout=120",
        "--fairmind-json=report.json",
        env=env,
    )
    assert result.rc == 0, result.out
    report = result.report()
    assert report["providers"]["mlflow"]["ok"], report["providers"]["mlflow"]
    assert report["providers"]["wandb"]["ok"], report["providers"]["wandb"]
    # URIs are shown with the credentials replaced, in the header and the summary.
    assert f"fairmind: providers: mlflow ({shown})" in result.out
    assert f"mlflow: 2 run(s) -> {shown}" in result.out
    assert report["providers"]["mlflow"]["target"] == shown
    # Recorded values that hold a secret keep their shape, with the secret replaced.
    params = report["models"]["credit"]["params"]
    assert params["sex/service_token"] == "***"
    assert params["sex/endpoint"] == "https://***@internal.example/api"
    assert params["sex/note"] == "key is ***"
    assert report["models"]["credit"]["tags"]["auth"] == "Bearer ***"

    leaks = _leaks("terminal output", result.out)
    leaks += [leak for name, data in _files(project / ".fairmind") for leak in _leaks(name, data)]
    leaks += _leaks("report", (project / "report.json").read_bytes())
    leaks += _leaks("GITHUB_STEP_SUMMARY", summary.read_bytes())
    leaks += [leak for name, data in _files(project / "tmp") for leak in _leaks(name, data)]

    # MLflow, read back through the API: params, tags, artifacts.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = runs_of(mlflow_server.uri, "secrets", session_id=report["session"]["id"])
        assert sorted(r.info.run_name for r in runs) == ["churn", "credit"]
        client = mlflow_client(mlflow_server.uri)
        for run in runs:
            leaks += _leaks(f"run {run.info.run_name} params", repr(run.data.params))
            leaks += _leaks(f"run {run.info.run_name} tags", repr(run.data.tags))
            leaks += _leaks(f"run {run.info.run_name} metrics", repr(run.data.metrics))
            paths = artifact_paths(mlflow_server.uri, run.info.run_id)
            assert "fairmind/result.json" in paths
            local = client.download_artifacts(run.info.run_id, "fairmind", str(project / "downloaded"))
            leaks += [leak for name, data in _files(Path(local)) for leak in _leaks(name, data)]
        [credit] = [r for r in runs if r.info.run_name == "credit"]
        assert credit.data.params["sex/service_token"] == "***"
        assert credit.data.tags["auth"] == "Bearer ***"
    # ... and the server's own store (SQLite file, artifact folder), byte by byte.
    leaks += [leak for name, data in _files(mlflow_server.folder) for leak in _leaks(name, data)]

    # W&B offline run files: raw bytes and the records reassembled across block boundaries.

    wandb_dirs = [project / d for d in ("wb", "wb-data", "wb-cache", "wb-config") if (project / d).exists()]
    leaks += [leak for name, data in all_bytes(*map(str, wandb_dirs)) for leak in _leaks(name, data)]
    wandb_runs = read_runs(str(project / "wb" / "wandb"))
    assert wandb_runs["credit"].config["sex/service_token"] == "***"
    assert "auth:Bearer ***" in wandb_runs["credit"].tags, wandb_runs["credit"].tags

    assert not leaks, "\n".join(leaks)


def test_no_secret_in_failures_status_or_replay(leaky_project: Path) -> None:
    """Errors quote the URI they failed on; the quote is redacted everywhere it goes."""
    project = leaky_project
    port = free_port()
    uri = f"http://user:{PASSWORD}@127.0.0.1:{port}"
    env = subprocess_env(project, **ENV_SECRETS)
    result = run_pytest(
        project,
        "--fairmind-provider=mlflow",
        f"--fairmind-mlflow-uri={uri}",
        "--fairmind-json=r.json",
        env=env,
    )
    assert result.rc == 0, result.out
    error = result.report("r.json")["providers"]["mlflow"]["error"]
    assert error == f"cannot reach http://***@127.0.0.1:{port}: connection refused"
    status = run_fairmind(project, "status", "--provider", "mlflow,wandb", "--mlflow-uri", uri, env=env)
    assert status.rc == 1
    assert f"http://***@127.0.0.1:{port}" in status.out
    replay = run_fairmind(project, "replay", "last", "--mlflow-uri", uri, "--timeout", "60", env=env)
    assert replay.rc == 1
    assert f"mlflow: FAILED: cannot reach http://***@127.0.0.1:{port}" in replay.out
    leaks = _leaks("pytest output", result.out) + _leaks("status", status.out) + _leaks("replay", replay.out)
    leaks += [
        leak for name, data in _files(project) for leak in _leaks(name, data) if "test_leaky" not in name
    ]
    assert not leaks, "\n".join(leaks)
