"""Shared helpers for the plugin-core acceptance tests (``tests/test_core_*.py``).

Import ``clean_env`` into a test module to get it as an autouse fixture there: inner pytest runs
(``pytester``) must not see the outer environment's fairmind, MLflow, W&B or CI variables.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import hypothesis  # noqa: F401  (imported once here: in-process runs would re-import it every time)
import jsonschema
import pytest

#: Variables that configure the plugin or the CI summary; cleared for every inner run.
ENV_VARS = (
    "FAIRMIND_PROVIDER",
    "FAIRMIND_PROJECT",
    "FAIRMIND_GATES",
    "FAIRMIND_GATE_ACTION",
    "FAIRMIND_BASELINE",
    "FAIRMIND_JSON",
    "FAIRMIND_TIMEOUT",
    "FAIRMIND_STRICT",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "WANDB_MODE",
    "WANDB_PROJECT",
    "WANDB_API_KEY",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_ACTIONS",
    "PYTEST_ADDOPTS",
    "PYTEST_XDIST_AUTO_NUM_WORKERS",
)

REPORT = "report.json"

#: pytest's outcome words, as SPEC section 6 wants them in ``tests[].outcome``.
OUTCOME_WORDS = {"passed", "failed", "skipped", "error", "xfailed", "xpassed"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield


def schema() -> dict[str, Any]:
    """The JSON Schema shipped in the package (``pytest_fairmind/report.schema.json``)."""
    text = resources.files("pytest_fairmind").joinpath("report.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-standard JSON token {token!r} in a report")


def strict_loads(text: str) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and ``-Infinity``."""
    return json.loads(text, parse_constant=_reject_constant)


def validate(doc: dict[str, Any]) -> dict[str, Any]:
    """Validate a report document against the shipped schema and the SPEC's date format."""
    jsonschema.Draft202012Validator.check_schema(schema())
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    session = doc["session"]
    started = dt.datetime.fromisoformat(session["started"])
    if session["finished"] is not None:
        assert dt.datetime.fromisoformat(session["finished"]) >= started
    return doc


def load_report(path: Path) -> dict[str, Any]:
    """Read a report or history entry as strict UTF-8 JSON and validate it against the schema."""
    text = path.read_bytes().decode("utf-8")  # strict UTF-8
    doc: dict[str, Any] = strict_loads(text)
    return validate(doc)


def run_with_report(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run pytest in-process with ``--fairmind-json`` and return the result and the validated report."""
    path = pytester.path / REPORT
    if path.exists():
        path.unlink()
    result = pytester.runpytest(f"--fairmind-json={REPORT}", *args)
    assert path.is_file(), result.stdout.str() + result.stderr.str()
    return result, load_report(path)


def history_entries(folder: Path) -> list[Path]:
    sessions = folder / "sessions"
    return sorted(sessions.glob("*.json")) if sessions.is_dir() else []


def gate_results(doc: dict[str, Any], model: str) -> list[dict[str, Any]]:
    gates: list[dict[str, Any]] = doc["models"][model]["gates"]
    return gates


def outcomes(doc: dict[str, Any], model: str) -> dict[str, str]:
    return {t["nodeid"]: t["outcome"] for t in doc["models"][model]["tests"]}


def usage_error(result: pytest.RunResult) -> str:
    """The single ``ERROR:`` line of a usage error (exit code 4), asserting there is exactly one."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    lines = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(lines) == 1, result.stderr.str()
    assert "passed" not in result.stdout.str() and "failed" not in result.stdout.str()
    return lines[0]


#: A conftest with test providers. ``probe`` works (and writes what it received to
#: ``<name>.log.jsonl``), ``boom`` raises, ``slow`` hangs, ``xyzprov`` needs a missing package.
#: ``target()`` shows the settings the factory received, so the report header shows precedence.
PROVIDERS_CONFTEST = textwrap.dedent(
    """
    from __future__ import annotations

    import json
    import os
    import time

    from pytest_fairmind.result import ProviderOutcome, RunRef

    FAKE_BUILTINS = {fake_builtins!r}


    class Probe:
        def __init__(self, name, settings, behaviour):
            self.name = name
            self.settings = settings
            self.behaviour = behaviour
            with open("factory.log", "a", encoding="utf-8") as fh:
                fh.write(f"{{name}} {{os.getpid()}}\\n")

        def target(self):
            s = self.settings
            return (
                f"project={{s.project}} uri={{s.mlflow_uri}} mode={{s.wandb_mode}} timeout={{s.timeout:g}} "
                f"plots={{s.plots}}"
            )

        def log(self, session, *, timeout):
            if self.behaviour == "raise":
                raise RuntimeError("probe exploded")
            if self.behaviour == "hang":
                time.sleep(8)
                return ProviderOutcome(ok=True)
            line = {{
                "pid": os.getpid(),
                "session": session.id,
                "project": session.project,
                "timeout": timeout,
                "models": {{
                    name: {{"verdict": m.verdict, "metrics": m.metrics, "tests": len(m.tests)}}
                    for name, m in session.models.items()
                }},
            }}
            with open(f"{{self.name}}.log.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\\n")
            runs = {{
                model: RunRef(id=f"{{self.name}}-{{i}}", url=f"https://tracker.example/{{i}}", path=None)
                for i, model in enumerate(session.models)
            }}
            return ProviderOutcome(ok=True, runs=runs)


    def _factory(name, behaviour):
        return lambda settings: Probe(name, settings, behaviour)


    def pytest_fairmind_register_providers(registry):
        registry.register("probe", _factory("probe", "ok"))
        registry.register("probe2", _factory("probe2", "ok"))
        registry.register("boom", _factory("boom", "raise"))
        registry.register("slow", _factory("slow", "hang"))
        registry.register(
            "xyzprov", _factory("xyzprov", "ok"), requires=("no_such_module_xyz",), extra="xyz"
        )
        if FAKE_BUILTINS:  # stand-ins for mlflow/wandb: a later registration replaces the built-in
            registry.register("mlflow", _factory("mlflow", "ok"))
            registry.register("wandb", _factory("wandb", "ok"))
    """
)


def providers_conftest(pytester: pytest.Pytester, *, fake_builtins: bool = False, extra: str = "") -> None:
    pytester.makeconftest(PROVIDERS_CONFTEST.format(fake_builtins=fake_builtins) + textwrap.dedent(extra))


def provider_log(pytester: pytest.Pytester, name: str) -> list[dict[str, Any]]:
    path = pytester.path / f"{name}.log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
