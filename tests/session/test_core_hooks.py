"""SPEC section 7 (as far as the core goes): pluggy hooks, third-party providers, the time budget,
and the plugin's warnings under the user's filters."""

from __future__ import annotations

import json
import os
import time

import pytest
from helpers import (
    history_entries,
    load_report,
    provider_log,
    providers_conftest,
    run_with_report,
)

from pytest_fairmind.exceptions import FairmindWarning
from pytest_fairmind.providers.base import Provider, ProviderRegistry, ProviderSettings, project_for
from pytest_fairmind.result import ProviderOutcome, SessionResult

RECORDING = """
    def test_credit(fairmind):
        fairmind.record({"demographic_parity_ratio": 0.9, "accuracy": 0.8}, model="credit", scope="sex")

    def test_fraud(fairmind):
        fairmind.record({"accuracy": 0.7}, model="fraud")
"""

THIRD_PARTY = """
    from pytest_fairmind.result import ProviderOutcome, RunRef


    class NotebookProvider:
        name = "notebook"

        def __init__(self, settings):
            self.settings = settings

        def target(self):
            return "notebook.jsonl"

        def log(self, session, *, timeout):
            with open("notebook.jsonl", "a") as fh:
                for model_name, model in session.models.items():
                    keys = sorted(model.metrics)
                    fh.write(f"{session.id} {session.project} {model_name} {model.verdict} {keys}\\n")
            return ProviderOutcome(
                ok=True,
                runs={m: RunRef(id=f"nb-{m}", path=f"notebook.jsonl#{m}") for m in session.models},
            )


    def pytest_fairmind_register_providers(registry):
        registry.register("notebook", NotebookProvider, description="a line per model")
"""


def test_third_party_provider_from_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(THIRD_PARTY)
    pytester.makepyfile(RECORDING)
    result, doc = run_with_report(
        pytester, "--fairmind-provider=notebook", "--fairmind-project=acme", "--fairmind-gate=accuracy>=0.75"
    )
    assert result.ret == 1  # fraud's accuracy gate failed; results are logged all the same
    result.stdout.fnmatch_lines(
        ["fairmind: providers: notebook (notebook.jsonl); gates: 1 from options/ini (marker gates are added*"]
    )
    lines = (pytester.path / "notebook.jsonl").read_text().splitlines()
    session_id = doc["session"]["id"]
    assert lines == [
        f"{session_id} acme credit pass ['sex/accuracy', 'sex/demographic_parity_ratio']",
        f"{session_id} acme fraud fail ['accuracy']",
    ]  # each run carries the verdict
    assert doc["providers"] == {
        "notebook": {
            "ok": True,
            "error": None,
            "runs": {
                "credit": {"id": "nb-credit", "url": None, "path": "notebook.jsonl#credit"},
                "fraud": {"id": "nb-fraud", "url": None, "path": "notebook.jsonl#fraud"},
            },
            "target": "notebook.jsonl",
        }
    }
    result.stdout.fnmatch_lines(["notebook: 2 run(s)*", "  credit: run nb-credit notebook.jsonl#credit"])


def test_builtin_providers_register_through_the_same_hook() -> None:
    from pytest_fairmind import providers

    registry = ProviderRegistry()
    providers.pytest_fairmind_register_providers(registry=registry)
    assert {"mlflow", "wandb"} <= set(registry.names())
    assert registry.get("mlflow").extra == "mlflow"  # type: ignore[union-attr]
    assert registry.get("wandb").extra == "wandb"  # type: ignore[union-attr]


def test_provider_protocol_is_small_and_runtime_checkable() -> None:
    class Minimal:
        name = "minimal"

        def target(self) -> str:
            return "nowhere"

        def log(self, session: SessionResult, *, timeout: float) -> ProviderOutcome:
            return ProviderOutcome(ok=True)

    assert isinstance(Minimal(), Provider)
    settings = ProviderSettings()
    assert settings.project is None and settings.timeout == 30.0  # None: no project was given
    assert project_for("minimal", settings.project, environ={}) == "fairmind"


def test_registry_rejects_reserved_names() -> None:
    registry = ProviderRegistry()
    for bad in ("", "none", "a,b"):
        with pytest.raises(ValueError):
            registry.register(bad, lambda s: None)  # type: ignore[arg-type,return-value]


def test_failing_provider_is_reported_and_changes_no_exit_code(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(RECORDING)
    result, doc = run_with_report(pytester, "--fairmind-provider=boom,probe")
    assert result.ret == 0
    assert doc["session"]["exitstatus"] == 0
    assert doc["providers"]["boom"]["ok"] is False
    assert doc["providers"]["boom"]["error"] == "RuntimeError: probe exploded"
    assert doc["providers"]["probe"]["ok"] is True  # one provider's failure never stops another
    assert len(provider_log(pytester, "probe")) == 1
    result.stdout.fnmatch_lines(["boom: FAILED: RuntimeError: probe exploded*", "*fairmind replay*"])
    # the history keeps the failed provider for replay
    entry = load_report(history_entries(pytester.path / ".fairmind")[0])
    assert entry["providers"]["boom"]["ok"] is False


def test_failing_provider_fails_the_session_when_strict(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(RECORDING)
    ok, _ = run_with_report(pytester, "--fairmind-provider=probe", "--fairmind-strict")
    assert ok.ret == 0, ok.stdout.str()
    result, doc = run_with_report(pytester, "--fairmind-provider=boom", "--fairmind-strict")
    result.assert_outcomes(passed=2)
    assert result.ret == 1
    assert doc["session"]["exitstatus"] == 1
    result.stdout.fnmatch_lines(["boom: FAILED: RuntimeError: probe exploded*"])
    pytester.makeini("[pytest]\nfairmind_strict = true\n")  # the ini twin, too
    assert pytester.runpytest("--fairmind-provider=boom").ret == 1


def test_hanging_provider_is_abandoned_at_the_timeout(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(RECORDING)
    start = time.monotonic()
    result, doc = run_with_report(pytester, "--fairmind-provider=slow,probe", "--fairmind-timeout=0.5")
    elapsed = time.monotonic() - start
    assert elapsed < 30, elapsed  # the provider sleeps 60 s: the session did not wait for it
    assert result.ret == 0
    slow = doc["providers"]["slow"]
    assert slow["ok"] is False and "timed out" in slow["error"] and "--fairmind-timeout" in slow["error"]
    assert doc["providers"]["probe"]["ok"] is True
    assert provider_log(pytester, "probe")[0]["timeout"] <= 0.5  # the providers share one budget
    result.stdout.fnmatch_lines(["slow: FAILED: timed out*"])
    entry = load_report(history_entries(pytester.path / ".fairmind")[0])
    assert entry["providers"]["slow"]["ok"] is False  # stays in the history for replay
    result, _ = run_with_report(
        pytester, "--fairmind-provider=slow", "--fairmind-timeout=0.3", "--fairmind-strict"
    )
    assert result.ret == 1


def test_model_result_hook_adds_a_metric_that_gates_see(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import os

        def pytest_fairmind_model_result(result, session):
            with open("hook.log", "a") as fh:
                fh.write(f"{os.getpid()} {result.name} {session.id}\\n")
            if result.name == "credit":
                result.metrics["derived/worst_ratio"] = 0.4
                result.tags["amended"] = "yes"
        """
    )
    pytester.makepyfile(RECORDING)
    result, doc = run_with_report(pytester, "-n", "2", "--fairmind-gate=worst_ratio>=0.5")
    result.assert_outcomes(passed=2)
    assert result.ret == 1
    credit = doc["models"]["credit"]
    assert credit["metrics"]["derived/worst_ratio"] == 0.4
    assert credit["tags"] == {"amended": "yes"}
    assert [(g["key"], g["passed"]) for g in credit["gates"]] == [("derived/worst_ratio", False)]
    assert credit["verdict"] == "fail"
    result.stdout.fnmatch_lines(["gate FAILED: credit: derived/worst_ratio = 0.4, bound >= 0.5*"])
    calls = (pytester.path / "hook.log").read_text().splitlines()
    # once per model, in the aggregating process only (not in the xdist workers)
    assert sorted(line.split()[1] for line in calls) == ["credit", "fraud"]
    assert {line.split()[0] for line in calls} == {str(os.getpid())}
    assert {line.split()[2] for line in calls} == {doc["session"]["id"]}


def test_logged_hook_is_called_with_outcomes(pytester: pytest.Pytester) -> None:
    providers_conftest(
        pytester,
        extra="""
        def pytest_fairmind_logged(session):
            with open("logged.json", "a") as fh:
                fh.write(json.dumps({
                    "id": session.id,
                    "exitstatus": session.exitstatus,
                    "providers": {n: [o.ok, o.error, sorted(o.runs)] for n, o in session.providers.items()},
                }) + "\\n")
        """,
    )
    pytester.makepyfile(RECORDING)
    _, doc = run_with_report(pytester, "--fairmind-provider=probe,boom")
    calls = [json.loads(line) for line in (pytester.path / "logged.json").read_text().splitlines()]
    assert calls == [
        {
            "id": doc["session"]["id"],
            "exitstatus": 0,
            "providers": {
                "probe": [True, None, ["credit", "fraud"]],
                "boom": [False, "RuntimeError: probe exploded", []],
            },
        }
    ]


def test_logged_hook_is_called_without_providers(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_fairmind_logged(session):
            open("logged.txt", "w").write(",".join(sorted(session.models)))
        """
    )
    pytester.makepyfile(RECORDING)
    assert pytester.runpytest().ret == 0
    assert (pytester.path / "logged.txt").read_text() == "credit,fraud"


# --- warnings --------------------------------------------------------------------------------------

COLLIDING = """
    def test_a(fairmind):
        fairmind.record({"ratio": 0.8}, model="m")

    def test_b(fairmind):
        fairmind.record({"ratio": 0.9}, model="m")
"""


def test_collision_warning_under_w_error_fails_cleanly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(COLLIDING)
    result, doc = run_with_report(pytester, "-W", "error")
    assert result.ret == 1
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*FairmindWarning turned into an error: model 'm': metric 'ratio'*"])
    assert doc["session"]["exitstatus"] == 1
    assert doc["models"]["m"]["metrics"] == {"ratio": 0.9}
    assert [c["key"] for c in doc["models"]["m"]["collisions"]] == ["ratio"]


def test_collision_warning_error_from_ini_filter(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfilterwarnings =\n    error::pytest_fairmind.FairmindWarning\n")
    pytester.makepyfile(COLLIDING)
    assert pytester.runpytest().ret == 1


def test_w_error_session_without_problems_passes(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(RECORDING)
    result, _ = run_with_report(
        pytester, "-W", "error", "--fairmind-provider=probe", "--fairmind-gate=accuracy>=0.5"
    )
    assert result.ret == 0, result.stdout.str()
    assert "warning" not in result.stdout.lines[-1]


def test_collision_warning_can_be_ignored(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(COLLIDING)
    result, doc = run_with_report(pytester, "-W", "ignore::pytest_fairmind.FairmindWarning")
    assert result.ret == 0
    assert "FairmindWarning" not in result.stdout.str()
    assert doc["models"]["m"]["collisions"]  # still listed in the report


def test_session_with_warnings_plugin_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(COLLIDING)
    # without pytest's warnings plugin the warning goes through Python's own machinery (here: ours)
    with pytest.warns(FairmindWarning, match="'ratio'"):
        result, doc = run_with_report(pytester, "-p", "no:warnings")
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    assert doc["models"]["m"]["metrics"] == {"ratio": 0.9}
    assert [c["key"] for c in doc["models"]["m"]["collisions"]] == ["ratio"]


def test_provider_whose_target_raises_cannot_break_pytest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_fairmind.result import ProviderOutcome

        class Broken:
            name = "broken"

            def target(self):
                raise RuntimeError("no target")

            def log(self, session, *, timeout):
                return ProviderOutcome(ok=True)

        def pytest_fairmind_register_providers(registry):
            registry.register("broken", lambda settings: Broken())
        """
    )
    pytester.makepyfile(RECORDING)
    result, doc = run_with_report(pytester, "--fairmind-provider=broken")
    assert result.ret == 0
    assert "INTERNALERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(["fairmind: providers: broken (target unknown: RuntimeError: no target); *"])
    assert doc["providers"]["broken"]["ok"] is True


def test_a_hook_amending_results_with_numpy_values(pytester: pytest.Pytester) -> None:
    """``pytest_fairmind_model_result`` may add numpy numbers (a metric computed with numpy):
    they are saved and reported like recorded ones, never an INTERNALERROR."""
    pytester.makeconftest(
        """
        import numpy as np

        def pytest_fairmind_model_result(result, session):
            result.metrics["n_rows"] = np.int64(3)
            result.metrics["auc"] = np.float32(0.5)
        """
    )
    pytester.makepyfile(
        """
        def test_a(fairmind):
            fairmind.record({"accuracy": 0.5}, model="m")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--fairmind-json=r.json")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == 0
    metrics = json.loads((pytester.path / "r.json").read_text())["models"]["m"]["metrics"]
    assert metrics == {"accuracy": 0.5, "n_rows": 3.0, "auc": 0.5}
