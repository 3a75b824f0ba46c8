"""``-W error``, ``PYTHONWARNINGS=error`` and ``-p no:warnings`` sessions behave like plain ones,
with the real providers enabled: MLflow's, SQLAlchemy's and wandb's warnings never become errors,
never change the exit code and never fill the user's warning summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import TWO_MODELS, copy_store, run_pytest, subprocess_env, write

VARIANTS = {
    "plain": ([], {}),
    "W-error": (["-W", "error"], {}),
    "PYTHONWARNINGS-error": ([], {"PYTHONWARNINGS": "error"}),
    "no-warnings-plugin": (["-p", "no:warnings"], {}),
}

GATE = "--fairmind-gate=churn:accuracy>=0.9"  # fails: the exit code must still be exactly 1


def _summary(out: str) -> list[str]:
    """The fairmind part of the terminal output, run ids and timings masked."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if " fairmind: " in line and line.startswith("-"))
    masked = [
        re.sub(r"\b[0-9a-f]{32}\b|fm-[0-9a-f]{24}|\d{14,}|\d{8}_\d{6}", "<id>", line)
        for line in lines[start:]
    ]
    return [re.sub(r" in [\d.]+s|^report: .*", "<masked>", line) for line in masked]


@pytest.fixture(scope="module")
def sessions(
    tmp_path_factory: pytest.TempPathFactory, mlflow_store_template: Path
) -> dict[str, tuple[int, str, dict[str, object]]]:
    folder = tmp_path_factory.mktemp("warnings")
    write(folder, "test_models.py", TWO_MODELS)
    uri = copy_store(mlflow_store_template, folder / "mlflow.db")
    results = {}
    for name, (args, extra_env) in VARIANTS.items():
        env = subprocess_env(folder, **extra_env)
        result = run_pytest(
            folder,
            *args,
            "--fairmind-provider=mlflow,wandb",
            f"--fairmind-mlflow-uri={uri}",
            "--fairmind-wandb-mode=offline",
            "--fairmind-timeout=120",
            GATE,
            f"--fairmind-json={name}.json",
            env=env,
        )
        results[name] = (result.rc, result.out, result.report(f"{name}.json"))
    return results


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_warning_filters_change_nothing(
    sessions: dict[str, tuple[int, str, dict[str, object]]], variant: str
) -> None:
    rc, out, report = sessions[variant]
    assert rc == 1, out  # the failed gate, and nothing else
    assert "INTERNALERROR" not in out
    assert "warnings summary" not in out, out
    for word in ("mlflow", "sqlalchemy", "alembic", "wandb", "pydantic"):
        assert not re.search(rf"{word}\S*Warning|{word}/\S+\.py:\d+: \w*Warning", out, re.IGNORECASE), out
    providers = report["providers"]
    assert isinstance(providers, dict)
    for name in ("mlflow", "wandb"):
        assert providers[name]["ok"] is True, (variant, providers[name])
    _, plain_out, _ = sessions["plain"]
    assert _summary(out) == _summary(plain_out)
